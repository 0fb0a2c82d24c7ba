/* database.h: one database file in this process: its state and connection pool.
 *
 * State machine: NEW -> INITIALIZING -> READY, or -> FAILED (the next caller
 * retries). Exactly one thread initializes; the others wait on the condition
 * variable. The state is read with an atomic load, so a ready database costs
 * no lock. A pl_database is reference counted (atomically) and freed when the
 * registry and every session have let go of it.
 *
 * Locks: `lock` guards everything but `state` and `refcnt`; it is held only for
 * short sections that neither call SQLite nor Python. Every function that may
 * block or touch the disk must be called with the GIL released.
 */
#ifndef PL_DATABASE_H
#define PL_DATABASE_H

#include <pthread.h>
#include <stdatomic.h>

#include "conn.h"
#include "error.h"

enum { PL_DB_NEW, PL_DB_INITIALIZING, PL_DB_READY, PL_DB_FAILED };

/* Idle connections kept per database; more are closed when handed back. */
#define PL_POOL_IDLE_MAX 8

typedef struct pl_database {
    atomic_long refcnt;
    atomic_int state;
    char *path; /* canonical absolute path, immutable */
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* signalled when an initialization ends */
    unsigned long attempt; /* number of the current/last initialization */
    pl_err *failure;       /* why attempt number `attempt` failed */
    pl_conn *idle;         /* pooled connections, all of this fork generation */
    int n_idle;
    int forgotten;               /* dropped by reset: no pooling, connections close */
    unsigned long long dev, ino; /* the file's identity once READY (immutable after) */
    atomic_int checked;          /* quick_check passed in this process (or a new file) */
    pl_conn *anchor;             /* ":memory:": a connection kept open (never pooled, never
                                  * trimmed) so the database lives while it is registered */
    struct pl_database *next;    /* registered list link (registry lock) */
    struct pl_database *live_next, *live_prev; /* every live database (registry lock) */
} pl_database;

/* A new database for canonical `path` (copied), state NEW, one reference. */
pl_database *pl_database_new(const char *path);

void pl_database_incref(pl_database *db);

/* Drop a reference; the last one closes the pooled connections (disk I/O:
 * call with the GIL released) and frees the database. NULL is allowed. */
void pl_database_decref(pl_database *db);

static inline int pl_database_is_ready(pl_database *db)
{
    return atomic_load_explicit(&db->state, memory_order_acquire) == PL_DB_READY;
}

/* Make the database ready: initialize it, or wait for the thread that is
 * doing so. Returns 0, or -1 with `err` set (the initializer's error for the
 * threads that waited on that attempt). GIL released. */
int pl_database_ensure_ready(pl_database *db, pl_err *err);

/* A connection for a session: an idle one, or a new one. Refuses when the
 * file was deleted or replaced since initialization (the pooled connections
 * would still read the old file). Returns NULL with `err` set on failure.
 * GIL released. */
pl_conn *pl_database_checkout(pl_database *db, pl_err *err);

/* Hand a connection back: an open transaction is rolled back, and the
 * connection is kept for reuse or closed. A connection inherited across fork()
 * is abandoned, never touched. GIL released. */
void pl_database_checkin(pl_database *db, pl_conn *c);

/* After reset_initialization(): close the idle connections now and every
 * connection handed back later. GIL released. */
void pl_database_forget(pl_database *db);

/* Before the first write of this process to the database: PRAGMA
 * quick_check on `c`, once (a damaged file is never modified; InvalidDatabaseError).
 * Costs one pass over the file, once per process, and only for processes
 * that write. Returns 0 or -1 with `err`. GIL released. */
int pl_database_check_before_write(pl_database *db, pl_conn *c, pl_err *err);

/* Hash `password` (bcrypt, pl_password_rounds()) and give it to the admin
 * user of the ready database `db` while the admin has no usable password
 * (pl_initialize_write_admin, without creating an admin). *set tells whether
 * it was set: 0 when the admin already had a password (another process may
 * have been first) or there is no admin row. Returns 0, or -1 with `err` set.
 * GIL released. */
int pl_database_set_first_admin_password(pl_database *db, const char *password, int *set,
                                         pl_err *err);

/* Fork support, called by the registry from the atfork handlers. Before
 * fork() the idle connections are closed, so that the child inherits no SQLite
 * file state (SQLite keeps per-file lock bookkeeping in process memory, and a
 * child that inherits it believes it holds locks it does not). */
void pl_database_lock_for_fork(pl_database *db);
void pl_database_close_idle_locked(pl_database *db);
/* Idle pooled connections of the process, over all databases. */
int pl_database_idle_total(void);

/* The idle_since stamp of the database's least recently used idle
 * connection, or ULLONG_MAX when it has none. Takes db->lock. */
unsigned long long pl_database_oldest_idle(pl_database *db);

/* Detach the least recently used idle connection (NULL when none); the
 * caller closes it, with no lock held. Takes db->lock. */
pl_conn *pl_database_take_oldest_idle(pl_database *db);

/* Detach and return the idle connections (a list through ->next). */
pl_conn *pl_database_take_idle(pl_database *db);
/* Close a detached list; connections from before fork() are abandoned. */
void pl_database_close_list(pl_conn *list);
void pl_database_unlock_after_fork(pl_database *db);
void pl_database_reinit_in_child(pl_database *db);

#endif
