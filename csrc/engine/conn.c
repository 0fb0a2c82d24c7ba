/* conn.c: opening connections with PromptLab's settings, and the statement cache. */
#include "conn.h"
#include "alloc.h"
#include "util.h"
#include "lockorder.h"
#include "settings.h"
#include "fork.h"
#include "paths.h"
#include "query.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* promptlab_now(): the current UTC time as 'YYYY-MM-DD HH:MM:SS.fff', the
 * format of the schema's created_at DEFAULT, for statements that stamp many
 * rows: strftime() in the DEFAULT costs about 2 us a row. The part up to the
 * seconds is formatted once per second per thread; the milliseconds by hand. */
#define NOW_SECONDS_LEN 19 /* "YYYY-MM-DD HH:MM:SS" */
#define NOW_LEN 23         /* and ".fff" */
static void sql_now(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static _Thread_local time_t cached_second = (time_t)-1;
    static _Thread_local char cached[NOW_SECONDS_LEN + 1];
    struct timespec ts;
    char out[NOW_LEN];

    (void)argc;
    (void)argv;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_second) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof cached, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_second = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000L;
    memcpy(out, cached, NOW_SECONDS_LEN);
    out[NOW_SECONDS_LEN] = '.';
    out[NOW_SECONDS_LEN + 1] = (char)('0' + ms / 100);
    out[NOW_SECONDS_LEN + 2] = (char)('0' + ms / 10 % 10);
    out[NOW_SECONDS_LEN + 3] = (char)('0' + ms % 10);
    sqlite3_result_text(ctx, out, NOW_LEN, SQLITE_TRANSIENT);
}

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_conn *live_head;

/* The identity of the file at `path`, or 0/0 when there is none yet. */
static void file_identity(const char *path, unsigned long long *dev, unsigned long long *ino)
{
    struct stat st;
    if (!pl_path_is_memory(path) && stat(path, &st) == 0) {
        *dev = (unsigned long long)st.st_dev;
        *ino = (unsigned long long)st.st_ino;
    } else {
        *dev = *ino = 0;
    }
}

/* Make the connection known to fork handling. */
static void track(pl_conn *c)
{
    file_identity(c->path, &c->dev, &c->ino);
    pl_mutex_lock(&live_lock, PL_LOCK_LIVE);
    PL_DLIST_PUSH(live_head, c, live_prev, live_next);
    pl_mutex_unlock(&live_lock);
}

static void untrack(pl_conn *c)
{
    pl_mutex_lock(&live_lock, PL_LOCK_LIVE);
    PL_DLIST_UNLINK(live_head, c, live_prev, live_next);
    pl_mutex_unlock(&live_lock);
}

void pl_conn_lock_live(void)
{
    pl_mutex_lock(&live_lock, PL_LOCK_LIVE);
}

void pl_conn_unlock_live(void)
{
    pl_mutex_unlock(&live_lock);
}

void pl_conn_taint_live_in_child(void)
{
    for (pl_conn *c = live_head; c != NULL; c = c->live_next) {
        if (c->dev == 0 && c->ino == 0) /* opened before the file existed */
            file_identity(c->path, &c->dev, &c->ino);
        if (c->dev != 0 || c->ino != 0)
            pl_fork_taint(c->dev, c->ino);
    }
    live_head = NULL;
    pl_mutex_unlock(&live_lock); /* taken by the forking thread */
}

static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SQLite's progress handler, every PROGRESS_STEPS virtual machine steps:
 * non-zero stops the statement with SQLITE_INTERRUPT. */
#define PROGRESS_STEPS 10000
static int past_deadline(void *arg)
{
    const pl_conn *c = arg;
    return c->deadline_ns != 0 && monotonic_ns() > c->deadline_ns;
}

void pl_conn_start_clock(pl_conn *c)
{
    int limit = c->timeout_ms >= 0 ? c->timeout_ms : pl_settings_statement_timeout_ms();
    c->deadline_ns = limit > 0 ? monotonic_ns() + (long long)limit * 1000000LL : 0;
}

long long pl_conn_pause_clock(const pl_conn *c)
{
    (void)c;
    return monotonic_ns();
}

void pl_conn_resume_clock(pl_conn *c, long long paused_at)
{
    if (c->deadline_ns != 0)
        c->deadline_ns += monotonic_ns() - paused_at;
}

/* Create a missing database file, empty, with PromptLab's mode (0600 unless
 * PROMPTLAB_FILE_MODE says otherwise; the umask applies on top) before
 * SQLite opens it: SQLite would make it 0644, and its -wal and -shm copy the
 * file's mode. O_EXCL: an existing file is never touched, and a new inode is
 * one no connection can hold, so this close() drops no lock (README, "Files
 * belong to SQLite"). A read-only file system is reported as such; other
 * failures are left for sqlite3_open_v2 to report. Returns 0 or -1. */
static int create_file(const char *path, pl_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)pl_settings_file_mode());

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == EROFS)
        return pl_err_set(err, PL_E_READONLY, path,
                          "the folder is on a read-only file system, so the database cannot "
                          "be created there; choose a writable location.");
    return 0;
}

/* The in-memory database lives in this process's memory. A child of fork()
 * has a copy of it that another thread may have been changing at that
 * instant: the child refuses it instead of trusting that copy. */
static atomic_ulong memory_generation = ATOMIC_VAR_INIT(~0UL);

static int memory_crossed_fork(const char *path, pl_err *err)
{
    unsigned long none = ~0UL, now = pl_fork_generation();
    atomic_compare_exchange_strong(&memory_generation, &none, now);
    if (atomic_load(&memory_generation) == now)
        return 0;
    return pl_err_set(err, PL_E_DATABASE, path,
                      "the in-memory database belongs to the parent of this forked process "
                      "and does not cross fork(); use a database file to share data with "
                      "child processes.");
}

int pl_conn_check_not_tainted(const char *path, pl_err *err)
{
    unsigned long long dev, ino;
    file_identity(path, &dev, &ino);
    if ((dev != 0 || ino != 0) && pl_fork_is_tainted(dev, ino))
        return pl_err_set(err, PL_E_DATABASE, path,
                          "this process was forked while its parent had this database open; "
                          "SQLite cannot lock the file correctly here. Close sessions before "
                          "fork(), or start processes with the 'spawn' or 'forkserver' "
                          "method.");
    return 0;
}

int pl_conn_open_readonly(pl_conn *c, const char *path, pl_err *err)
{
    int rc;

    PL_ASSERT_NO_GIL();
    memset(c, 0, sizeof *c);
    c->path = path;
    if (pl_conn_check_not_tainted(path, err) < 0)
        return -1;
    track(c); /* before SQLite touches the file: see pl_conn_open */
    rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, c->db, path, "opening the database read-only");
        sqlite3_close_v2(c->db);
        c->db = NULL;
        untrack(c);
        return -1;
    }
    sqlite3_busy_timeout(c->db, pl_settings_busy_timeout_ms());
    return 0;
}

void pl_conn_close_readonly(pl_conn *c)
{
    if (c->db == NULL)
        return;
    sqlite3_close_v2(c->db);
    c->db = NULL;
    untrack(c); /* after SQLite let go of the file */
}

pl_conn *pl_conn_open(const char *path, int create, pl_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    pl_conn *c;
    int rc;

    PL_ASSERT_NO_GIL();
    if (pl_conn_check_not_tainted(path, err) < 0)
        return NULL;
    const char *target = path;
    if (pl_path_is_memory(path)) {
        if (memory_crossed_fork(path, err) < 0)
            return NULL;
        target = PL_MEMORY_URI;
        flags |= SQLITE_OPEN_URI | SQLITE_OPEN_CREATE;
    } else if (create) {
        flags |= SQLITE_OPEN_CREATE;
        if (create_file(path, err) < 0)
            return NULL;
    }
    c = pl_calloc(1, sizeof *c);
    if (c == NULL) {
        pl_err_set(err, PL_E_NOMEM, path, "out of memory opening the database");
        return NULL;
    }
    c->path = path;
    c->fork_gen = pl_fork_generation();
    c->timeout_ms = -1;
    /* Known to fork handling before SQLite touches the file, and until it has
     * let go of it (pl_conn_close): a fork() while another thread is inside
     * sqlite3_open_v2 or sqlite3_close_v2 copies SQLite's per-file state
     * mid-change, and the child must refuse this file instead of hanging on
     * a mutex that no thread of its own will ever release. */
    track(c);
    rc = sqlite3_open_v2(target, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, c->db, path, "opening the database");
        pl_conn_close(c);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, pl_settings_busy_timeout_ms());
    /* A file may come from anyone. PromptLab creates no triggers and no
     * views, so none runs on its connections: a crafted file could otherwise
     * turn a new user into an admin, or copy completions elsewhere, inside
     * our own writes (initialization refuses such a file outright:
     * pl_check_no_foreign_code). SQL functions in the schema must be
     * harmless (trusted_schema off), and the schema cannot be edited as a
     * table (defensive). */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_progress_handler(c->db, PROGRESS_STEPS, past_deadline, c);
    rc = sqlite3_create_function_v2(c->db, "promptlab_now", 0, SQLITE_UTF8 | SQLITE_INNOCUOUS, NULL,
                                    sql_now, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, c->db, path, "registering promptlab_now()");
        pl_conn_close(c);
        return NULL;
    }
    /* foreign_keys is per connection; synchronous=FULL makes each commit durable
     * through power loss too, at one fsync of the WAL per commit. */
    if (pl_conn_exec(c, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;",
                     "configuring the connection", err) < 0) {
        pl_conn_close(c);
        return NULL;
    }
    return c;
}

int pl_conn_enable_wal(pl_conn *c, pl_err *err)
{
    int waited = 0, limit = pl_settings_busy_timeout_ms();
    int pause = 1;

    for (;;) {
        char mode[PL_JOURNAL_MODE_MAX];
        int found = 0, rc;
        if (pl_query_text(c, "PRAGMA journal_mode=WAL", mode, sizeof mode, &found,
                          "switching to WAL mode", err) == 0) {
            if (found && strcmp(mode, "wal") == 0)
                return 0;
            /* Answered without switching: another connection is mid-change. */
            rc = SQLITE_BUSY;
        } else {
            rc = err->sqlite_rc;
        }
        /* Changing the journal mode can answer BUSY at once, without the busy
         * handler, while another process holds a lock: wait and retry. */
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            return -1;
        if (waited >= limit)
            return pl_err_from_sqlite(err, rc, c->db, c->path, "switching to WAL mode");
        pl_sleep_ms(pause);
        waited += pause;
        if (pause < 32)
            pause *= 2;
    }
}

/* A cheap key for the cache: the length and the first and last 64 bytes
 * (a hit is confirmed with memcmp, so collisions only cost a comparison). */
static unsigned long hash_sql(const char *s, int len)
{
    int head = len < 64 ? len : 64, tail = len > 128 ? len - 64 : head;
    unsigned long long h = pl_fnv1a(PL_FNV_OFFSET ^ (unsigned long long)len, s, (size_t)head);
    return (unsigned long)pl_fnv1a(h, s + tail, (size_t)(len - tail));
}

int pl_conn_prepare(pl_conn *c, const char *sql, int len, sqlite3_stmt **out, int *tail_out,
                    pl_err *err)
{
    unsigned long h = hash_sql(sql, len);
    pl_stmt_entry *victim = &c->cache[0];
    const char *tail = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    c->use_clock++;
    pl_conn_start_clock(c);
    for (int i = 0; i < PL_STMT_CACHE_SIZE; i++) {
        pl_stmt_entry *e = &c->cache[i];
        if (e->stmt != NULL && e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0) {
            e->last_used = c->use_clock;
            *out = e->stmt;
            if (tail_out != NULL)
                *tail_out = e->tail;
            return 0;
        }
        if (e->stmt == NULL || (victim->stmt != NULL && e->last_used < victim->last_used))
            victim = e;
    }
    rc = sqlite3_prepare_v3(c->db, sql, len, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "preparing a statement");
    if (st == NULL)
        return pl_err_set(err, PL_E_PROGRAMMING, c->path, "the SQL text holds no statement");
    if (tail_out != NULL)
        *tail_out = (int)(tail - sql);
    /* Evict the least recently used statement. */
    if (victim->stmt != NULL) {
        sqlite3_finalize(victim->stmt);
        free(victim->sql);
        victim->stmt = NULL;
    }
    victim->sql = pl_malloc(len > 0 ? (size_t)len : 1);
    if (victim->sql == NULL) {
        sqlite3_finalize(st);
        return pl_err_set(err, PL_E_NOMEM, c->path, "out of memory preparing a statement");
    }
    memcpy(victim->sql, sql, len);
    victim->len = len;
    victim->tail = (int)(tail - sql);
    victim->hash = h;
    victim->stmt = st;
    victim->last_used = c->use_clock;
    *out = st;
    return 0;
}

void pl_conn_done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

int pl_conn_exec(pl_conn *c, const char *sql, const char *what, pl_err *err)
{
    char *msg = NULL;
    int rc;

    pl_conn_start_clock(c);
    rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, sqlite3_extended_errcode(c->db), c->db, c->path, what);
    return 0;
}

void pl_conn_rollback_quietly(pl_conn *c)
{
    if (c != NULL && c->db != NULL && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

void pl_conn_close(pl_conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < PL_STMT_CACHE_SIZE; i++) {
        if (c->cache[i].stmt != NULL)
            sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    sqlite3_close_v2(c->db);
    untrack(c); /* only now: see pl_conn_open */
    free(c);
}

void pl_sql_first_keyword(const char *sql, char *buf, size_t size)
{
    size_t n = 0;

    sql = pl_sql_skip_trivia(sql, sql + strlen(sql), 0);
    while (n + 1 < size && isalpha((unsigned char)sql[n])) {
        buf[n] = (char)toupper((unsigned char)sql[n]);
        n++;
    }
    buf[n] = '\0';
}

int pl_sql_controls_transaction(const char *sql)
{
    static const char *const CONTROL[] = {"BEGIN",    "COMMIT",    "END",
                                          "ROLLBACK", "SAVEPOINT", "RELEASE"};
    char kw[PL_SQL_KEYWORD_MAX];

    pl_sql_first_keyword(sql, kw, sizeof kw);
    for (size_t i = 0; i < sizeof CONTROL / sizeof CONTROL[0]; i++)
        if (strcmp(kw, CONTROL[i]) == 0)
            return 1;
    return 0;
}
