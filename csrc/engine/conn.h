/* conn.h: one SQLite connection with its settings and prepared-statement cache.
 *
 * A pl_conn is used by one thread at a time (its owner: a session, or the
 * initializer); it carries no lock of its own. Every function here may touch
 * the disk and must be called with the GIL released.
 */
#ifndef PL_CONN_H
#define PL_CONN_H

#include <sqlite3.h>
#include "error.h"
#include "sqltext.h" /* pl_sql_skip_trivia */

#define PL_STMT_CACHE_SIZE 32

/* Room for a journal mode's name ("truncate", "wal", ...) and its NUL. */
#define PL_JOURNAL_MODE_MAX 16

typedef struct pl_stmt_entry {
    unsigned long hash;
    char *sql; /* owned copy of the statement text */
    int len;
    int tail;           /* offset where the first statement ends */
    sqlite3_stmt *stmt; /* NULL when the slot is free */
    unsigned long last_used;
} pl_stmt_entry;

typedef struct pl_conn {
    sqlite3 *db;
    const char *path;       /* borrowed from the owning database */
    unsigned long fork_gen; /* pl_fork_generation() when opened */
    unsigned long use_clock;
    pl_stmt_entry cache[PL_STMT_CACHE_SIZE];
    struct pl_conn *next;          /* link in the database's idle list */
    unsigned long long idle_since; /* when it became idle (a process-wide count) */
    unsigned long long dev, ino;   /* the file's identity when opened (0, 0 if unknown) */
    int timeout_ms;                /* statement time limit; -1: PROMPTLAB_STATEMENT_TIMEOUT_MS */
    long long deadline_ns;         /* CLOCK_MONOTONIC end of the current statement, 0: none */
    struct pl_conn *live_next, *live_prev; /* every open pl_conn of the process */
} pl_conn;

/* Open `path` read-write (creating it when `create` is set), with a busy
 * timeout and foreign keys on. Returns a new connection, or NULL with `err` set.
 * `path` must outlive the connection. */
pl_conn *pl_conn_open(const char *path, int create, pl_err *err);

/* Switch the file to WAL, retrying while another process holds the lock, for at
 * most the busy timeout. Returns 0 or -1 with `err` set. */
int pl_conn_enable_wal(pl_conn *c, pl_err *err);

/* Start the time limit of a statement (or a batch) about to run on `c`: its
 * own timeout_ms, or the process default. Called by pl_conn_prepare and
 * pl_conn_exec; past the limit SQLite stops the statement (SQLITE_INTERRUPT,
 * raised as StatementTimeoutError). */
void pl_conn_start_clock(pl_conn *c);

/* Stop the statement's clock while its rows are handed over between chunks
 * (time outside SQLite does not count against the limit): returns the time
 * to give back to pl_conn_resume_clock when stepping goes on. */
long long pl_conn_pause_clock(const pl_conn *c);
void pl_conn_resume_clock(pl_conn *c, long long paused_at);

/* A prepared statement for sql[0:len], from the cache when it is there. The
 * statement stays owned by the cache: reset it with pl_conn_done() after use.
 * `*tail_out` (may be NULL) receives the offset where the first statement ends.
 * Returns 0, or -1 with `err` set. */
int pl_conn_prepare(pl_conn *c, const char *sql, int len, sqlite3_stmt **out, int *tail_out,
                    pl_err *err);

/* Reset a statement returned by pl_conn_prepare and clear its bindings. */
void pl_conn_done(sqlite3_stmt *stmt);

/* Run one or more statements without results (sqlite3_exec). `what` names the
 * step in the error message. Returns 0 or -1 with `err` set. */
int pl_conn_exec(pl_conn *c, const char *sql, const char *what, pl_err *err);

/* Roll back an open transaction, if any; errors are ignored (used on cleanup). */
void pl_conn_rollback_quietly(pl_conn *c);

/* Finalize cached statements and close. NULL is allowed. */
void pl_conn_close(pl_conn *c);

/* Refuse a file that a fork left unusable in this process (see
 * pl_fork_taint): SQLite's state for it was copied mid-use. Returns 0 or -1. */
int pl_conn_check_not_tainted(const char *path, pl_err *err);

/* Open an existing file read-only into the caller's `c` (zeroed here; no
 * statement cache, no pragmas), with the busy timeout, known to fork handling.
 * Close it with pl_conn_close_readonly. Returns 0 or -1 with `err` set. */
int pl_conn_open_readonly(pl_conn *c, const char *path, pl_err *err);
void pl_conn_close_readonly(pl_conn *c);

/* The first keyword of a statement (after spaces and comments), upper-cased
 * into buf (cut to fit: PL_SQL_KEYWORD_MAX holds every keyword compared). */
#define PL_SQL_KEYWORD_MAX 16
void pl_sql_first_keyword(const char *sql, char *buf, size_t size);

/* 1 when the statement is BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT or RELEASE. */
int pl_sql_controls_transaction(const char *sql);

/* Fork support: lock the list of open connections before fork(), unlock it
 * after; in the child, mark the files of the connections still open in the
 * parent as unusable (SQLite's lock bookkeeping for them was inherited) and
 * forget those connections, which are abandoned, never closed. */
void pl_conn_lock_live(void);
void pl_conn_unlock_live(void);
void pl_conn_taint_live_in_child(void);

#endif
