/* session.c: Session: execute/executemany/begin/commit/rollback/close.
 *
 * Every call follows the same three steps so that no lock is held while
 * Python runs and no Python runs while a lock is held:
 *   1. with the GIL: convert parameters into C values (params.c);
 *   2. without the GIL, holding the session's mutex: check out the connection,
 *      prepare, bind, step, and copy rows into a C buffer (rowbuf.c);
 *   3. with the GIL, no lock: build the Result and its rows (result.c).
 * The mutex serializes threads that share one session.
 *
 * Steps 2 and 3 alternate in chunks: a statement is stepped until the row
 * buffer holds a chunk (rowbuf.h), the chunk's Python rows are built, the
 * buffer is emptied, and stepping goes on; executemany likewise converts and
 * runs its parameter sets a chunk at a time (params.h). So the C copies never
 * hold more than a chunk. Between chunks the statement is mid-step and the
 * session lock is not held (Python runs): the session is marked `streaming`
 * by the calling thread, and every other use of the session waits until the
 * call ends (session_lock), as it waited on the mutex before; a use from the
 * same thread (a finalizer run while rows are built) is refused.
 *
 * A pl_cursor holds one call's state from start to end. execute, executemany
 * and execute_nested run it to the end before returning; execute_iter and
 * execute_nested_iter return an iterator (result.c) that reads one chunk per
 * step, so that between its chunks the session stays `streaming` for the
 * iterator's thread until the iterator is exhausted, closed or freed.
 */
#include "session.h"
#include "alloc.h"
#include "compat.h"
#include "pyutil.h"
#include "lockorder.h"
#include "fork.h"
#include "nest.h"
#include "params.h"
#include "registry.h"
#include "result.h"
#include "settings.h"
#include "rowbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD pthread_mutex_t lock; /* guards conn and closed; held without the GIL */
    pthread_cond_t idle;                /* signalled when a streaming call ends (lock) */
    int streaming;                      /* a call is between chunks (lock) */
    pthread_t stream_owner;             /* the thread of that call (lock) */
    pl_database *db;                    /* owned C reference, for the session's life */
    pl_conn *conn;                      /* checked out on first use, NULL when none */
    int closed;
    int timeout_ms;         /* statement time limit, 0: none (session lock) */
    unsigned long fork_gen; /* pl_fork_generation() at creation */
} SessionObject;

PyObject *pl_session_new(pl_state *st, pl_database *db)
{
    SessionObject *s = (SessionObject *)st->session_type->tp_alloc(st->session_type, 0);
    if (s == NULL) {
        Py_BEGIN_ALLOW_THREADS
        pl_database_decref(db);
        Py_END_ALLOW_THREADS
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->db = db;
    s->timeout_ms = pl_settings_statement_timeout_ms();
    s->fork_gen = pl_fork_generation();
    return (PyObject *)s;
}

/* A session from before fork(): its lock may have been held by a thread that
 * does not exist in this process, so it is refused without touching it. */
static int inherited(SessionObject *s)
{
    if (s->fork_gen == pl_fork_generation())
        return 0;
    pl_raise_kind(pl_state_of(Py_TYPE(s)), PL_E_PROGRAMMING, s->db->path,
                  "this session was opened before fork(); open a new session in the child "
                  "process with get_session().");
    return 1;
}

/* Take the session lock for a new call, waiting while another thread's call
 * is between chunks. GIL released. Returns 0 with the lock held, or -1 with
 * `err` set and the lock not held when this thread's own call is between
 * chunks (the session is used from code that runs while its rows are built). */
static int session_lock(SessionObject *s, pl_err *err)
{
    pl_mutex_lock(&s->lock, PL_LOCK_SESSION);
    while (s->streaming && !pthread_equal(s->stream_owner, pthread_self()))
        pthread_cond_wait(&s->idle, &s->lock);
    if (s->streaming) {
        pl_mutex_unlock(&s->lock);
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                          "this session is in the middle of a call on this thread (reading "
                          "its rows, or an open iterator of execute_iter/execute_nested_iter: "
                          "exhaust or close() it first); use another session from code that "
                          "runs meanwhile.");
    }
    return 0;
}

/* Make sure the session has a usable connection. Requires the session lock;
 * GIL released. */
static int ensure_conn(SessionObject *s, pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    if (s->closed)
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                          "this session is closed; open a new one with get_session().");
    if (s->conn != NULL && s->conn->fork_gen != pl_fork_generation()) {
        s->conn = NULL; /* inherited across fork(): abandoned, never touched */
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                          "this session was opened before fork(); open a new session in the "
                          "child process with get_session().");
    }
    if (s->conn == NULL) {
        s->conn = pl_database_checkout(s->db, err);
        if (s->conn == NULL)
            return -1;
    }
    s->conn->timeout_ms = s->timeout_ms;
    return 0;
}

/* Whether running `stmt` outside a transaction should first open one with
 * BEGIN IMMEDIATE: writes, except statements SQLite refuses in a transaction
 * or that manage transactions themselves. */
static int needs_write_transaction(sqlite3_stmt *stmt)
{
    static const char *const OWN[] = {"PRAGMA", "VACUUM", "ATTACH", "DETACH"};
    char kw[PL_SQL_KEYWORD_MAX];

    if (sqlite3_stmt_readonly(stmt) || pl_sql_controls_transaction(sqlite3_sql(stmt)))
        return 0;
    pl_sql_first_keyword(sqlite3_sql(stmt), kw, sizeof kw);
    for (size_t i = 0; i < sizeof OWN / sizeof OWN[0]; i++)
        if (strcmp(kw, OWN[i]) == 0)
            return 0;
    return 1;
}

typedef struct {
    Py_ssize_t rowcount;
    long long lastrowid;
    int has_lastrowid;
} exec_info;

/* One statement run in chunks (see the top of the file). */
typedef struct {
    SessionObject *s;
    const char *sql;
    Py_ssize_t len;
    int many;           /* executemany: name parameter sets in messages */
    int chunked;        /* stop stepping when the row buffer holds a chunk */
    int started;        /* start_locked ran */
    sqlite3_stmt *stmt; /* the statement in use, NULL before and after */
    Py_ssize_t r;       /* the batch's parameter set being run */
    int stepping;       /* set r is bound and its statement has not ended */
    int is_query, counts_changes;
    int savepoint;       /* SAVEPOINT pl_executemany guards a chunked batch */
    int began;           /* this call opened the write transaction */
    long long paused_at; /* pl_conn_pause_clock() between chunks */
    exec_info info;
} stream;

static void stream_init(stream *sm, SessionObject *s, const char *sql, Py_ssize_t len, int many,
                        int chunked)
{
    memset(sm, 0, sizeof *sm);
    sm->s = s;
    sm->sql = sql;
    sm->len = len;
    sm->many = many;
    sm->chunked = chunked;
    sm->info.rowcount = -1;
}

/* Prepare the statement and open what it needs (a write transaction; for an
 * executemany of more than one chunk inside a transaction, a savepoint, so
 * that a parameter set that fails to convert in a later chunk undoes the
 * earlier chunks, as when the whole batch was converted before running).
 * Requires the session lock; GIL released. Returns 0 or -1 with `err` set. */
static int start_locked(stream *sm, const pl_batch *b, pl_err *err)
{
    SessionObject *s = sm->s;
    sqlite3_stmt *stmt = NULL;
    int tail = 0;

    assert(pl_lock_held(&s->lock));
    sm->started = 1;
    if (ensure_conn(s, err) < 0)
        return -1;
    sqlite3 *db = s->conn->db;
    if (sm->len > 0x7fffffff)
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path, "the SQL text is too long");
    if (pl_conn_prepare(s->conn, sm->sql, (int)sm->len, &stmt, &tail, err) < 0)
        return -1;
    sm->stmt = stmt;
    if (pl_sql_skip_trivia(sm->sql + tail, sm->sql + sm->len, 1) != sm->sql + sm->len)
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                          "execute() runs one statement at a time; split the SQL text or call "
                          "execute() once per statement.");
    if (!sqlite3_stmt_readonly(stmt) && pl_database_check_before_write(s->db, s->conn, err) < 0)
        return -1;
    if (sqlite3_get_autocommit(db) && needs_write_transaction(stmt)) {
        if (pl_conn_exec(s->conn, "BEGIN IMMEDIATE", "starting a write transaction", err) < 0)
            return -1;
        sm->began = 1;
    }
    if (sm->many && b->more && !sqlite3_get_autocommit(db) && !sqlite3_stmt_readonly(stmt)) {
        if (pl_conn_exec(s->conn, "SAVEPOINT pl_executemany", "starting executemany", err) < 0)
            return -1;
        sm->savepoint = 1;
        pl_conn_start_clock(s->conn); /* the batch's clock starts here, as before */
    }
    sm->is_query = sqlite3_column_count(stmt) > 0;
    sm->counts_changes = !sm->is_query && !sqlite3_stmt_readonly(stmt);
    sm->info.rowcount = sm->is_query ? -1 : 0;
    return 0;
}

/* Run the batch's parameter sets from where the last chunk stopped, copying
 * rows into `rows`. Requires the session lock; GIL released. Returns 0 when
 * the sets converted so far have all run, 1 when `rows` holds a chunk (more
 * rows may follow), or -1 with `err` set. */
static int step_locked(stream *sm, const pl_batch *b, pl_rowbuf *rows, pl_err *err)
{
    SessionObject *s = sm->s;
    sqlite3 *db = s->conn->db;

    assert(pl_lock_held(&s->lock));
    for (; sm->r < b->nrows; sm->r++) {
        int step;
        if (!sm->stepping) {
            if (pl_batch_bind(b, sm->r, sm->stmt, s->db->path, err) < 0) {
                if (sm->many) {
                    char where[64];
                    snprintf(where, sizeof where, "executemany(), parameter set %zd",
                             b->base + sm->r + 1);
                    pl_err_prefix(err, where);
                }
                return -1;
            }
            sm->stepping = 1;
        }
        while ((step = sqlite3_step(sm->stmt)) == SQLITE_ROW) {
            /* Column names only after a step: a schema change re-prepares
             * the statement inside sqlite3_step (SELECT * may widen). */
            if (pl_rowbuf_columns(rows, sm->stmt, s->db->path, err) < 0 ||
                pl_rowbuf_append(rows, sm->stmt, s->db->path, err) < 0)
                return -1;
            if (sm->chunked && pl_rowbuf_full(rows))
                return 1;
        }
        sm->stepping = 0;
        if (step != SQLITE_DONE)
            return pl_err_from_sqlite(err, sqlite3_extended_errcode(db), db, s->db->path,
                                      "executing the statement");
        if (sm->counts_changes)
            sm->info.rowcount += (Py_ssize_t)sqlite3_changes64(db);
        if (sm->is_query && pl_rowbuf_columns(rows, sm->stmt, s->db->path, err) < 0)
            return -1; /* a query that returned no row still has columns */
        sqlite3_reset(sm->stmt);
    }
    sm->r = 0;
    return 0;
}

/* Between chunks: mark the session as this thread's until the call ends, and
 * stop the statement's clock. Requires the session lock. */
static void stream_pause(stream *sm)
{
    SessionObject *s = sm->s;
    assert(pl_lock_held(&s->lock));
    s->streaming = 1;
    s->stream_owner = pthread_self();
    sm->paused_at = pl_conn_pause_clock(s->conn);
}

/* Go on after stream_pause: takes the session lock (no wait: no other call
 * can hold it for long, none starts) and restarts the clock. GIL released. */
static void stream_resume(stream *sm)
{
    SessionObject *s = sm->s;
    pl_mutex_lock(&s->lock, PL_LOCK_SESSION);
    assert(s->streaming && pthread_equal(s->stream_owner, pthread_self()));
    pl_conn_resume_clock(s->conn, sm->paused_at);
}

/* End the statement: `rc` is the outcome so far (0 or -1 with `err` set).
 * The savepoint, if any, is undone when `undo` is set, then released; the
 * statement is reset; threads waiting for the session are woken. Requires
 * the session lock; GIL released. Returns `rc`, or -1 when releasing the
 * savepoint of a successful batch fails. */
static int end_locked(stream *sm, int rc, int undo, pl_err *err)
{
    SessionObject *s = sm->s;
    pl_err ignored;

    assert(pl_lock_held(&s->lock));
    pl_err_clear(&ignored);
    if (rc == 0 && sm->stmt != NULL) {
        sm->info.lastrowid = (long long)sqlite3_last_insert_rowid(s->conn->db);
        sm->info.has_lastrowid = sm->info.lastrowid != 0;
    }
    if (sm->stmt != NULL) {
        pl_conn_done(sm->stmt);
        sm->stmt = NULL;
    }
    if (sm->savepoint) {
        sm->savepoint = 0;
        /* After some errors SQLite has rolled the whole transaction back
         * and the savepoint is gone: nothing left to undo or release. */
        if (!sqlite3_get_autocommit(s->conn->db) && undo && sm->began) {
            /* The transaction is this call's: end it, leaving nothing open,
             * as when the batch failed to convert before it began. */
            pl_conn_exec(s->conn, "ROLLBACK", "undoing executemany", &ignored);
        } else if (!sqlite3_get_autocommit(s->conn->db)) {
            if (undo)
                pl_conn_exec(s->conn, "ROLLBACK TO pl_executemany", "undoing executemany",
                             &ignored);
            if (pl_conn_exec(s->conn, "RELEASE pl_executemany", "ending executemany",
                             rc == 0 ? err : &ignored) < 0)
                rc = -1;
        }
    }
    if (s->streaming) {
        s->streaming = 0;
        pthread_cond_broadcast(&s->idle);
    }
    return rc;
}

/* The statement's parameter names, for mapping parameters (pl_describe_fn). */
typedef struct {
    SessionObject *session;
    const char *sql;
    Py_ssize_t len;
    stream *sm; /* the call's statement, once it runs */
} describe_ctx;

/* Copy the parameter names of `stmt` into one malloc'd block of `*n`
 * NUL-terminated strings, "" for a positional parameter. */
static int copy_names(sqlite3_stmt *stmt, const char *path, int *n, char **block, pl_err *err)
{
    size_t total = 0;

    *n = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= *n; i++) {
        const char *name = sqlite3_bind_parameter_name(stmt, i);
        total += (name ? strlen(name) : 1) + 1;
    }
    *block = pl_malloc(total + 1);
    if (*block == NULL)
        return pl_err_set(err, PL_E_NOMEM, path, "out of memory");
    char *p = *block;
    for (int i = 1; i <= *n; i++) {
        const char *name = sqlite3_bind_parameter_name(stmt, i);
        const char *bare = name ? name + 1 : ""; /* without ':', '@' or '$' */
        size_t l = strlen(bare);
        memcpy(p, bare, l + 1);
        p += l + 1;
    }
    return 0;
}

/* Under the session lock, GIL released: prepare (or find) the statement and
 * copy its parameter names (copy_names). Returns 0 or -1 with `err` set. */
static int describe_locked(SessionObject *s, const char *sql, Py_ssize_t len, int *n, char **block,
                           pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    sqlite3_stmt *stmt = NULL;

    if (ensure_conn(s, err) < 0)
        return -1;
    if (len > 0x7fffffff)
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path, "the SQL text is too long");
    if (pl_conn_prepare(s->conn, sql, (int)len, &stmt, NULL, err) < 0)
        return -1;
    return copy_names(stmt, s->db->path, n, block, err);
}

static PyObject *describe(void *arg)
{
    describe_ctx *ctx = arg;
    SessionObject *s = ctx->session;
    char *block = NULL;
    PyObject *names = NULL;
    pl_err err;
    int n = 0, rc;

    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    if (ctx->sm != NULL && ctx->sm->stmt != NULL) {
        /* A later chunk of executemany: the statement is this call's. */
        stream_resume(ctx->sm);
        rc = copy_names(ctx->sm->stmt, s->db->path, &n, &block, &err);
        ctx->sm->paused_at = pl_conn_pause_clock(s->conn);
        pl_mutex_unlock(&s->lock);
    } else if ((rc = session_lock(s, &err)) == 0) {
        rc = describe_locked(s, ctx->sql, ctx->len, &n, &block, &err);
        pl_mutex_unlock(&s->lock);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        free(block);
        return pl_raise(pl_state_of(Py_TYPE(s)), &err);
    }
    names = PyTuple_New(n);
    const char *p = block;
    for (int i = 0; names != NULL && i < n; i++) {
        PyObject *name = *p ? PyUnicode_InternFromString(p) : Py_NewRef(Py_None);
        if (name == NULL)
            Py_CLEAR(names);
        else
            PyTuple_SET_ITEM(names, i, name);
        p += strlen(p) + 1;
    }
    free(block);
    return names;
}

/* The parameters of execute_nested's two statements: the same names in the
 * same order (a mapping's values are bound by position, in the parents'
 * order). Returns 0 or -1 with `err` set. No GIL needed. */
static int same_parameters(sqlite3_stmt *a, sqlite3_stmt *b, const char *path, pl_err *err)
{
    int n = sqlite3_bind_parameter_count(a);
    int same = n == sqlite3_bind_parameter_count(b);
    for (int i = 1; same && i <= n; i++) {
        const char *x = sqlite3_bind_parameter_name(a, i), *y = sqlite3_bind_parameter_name(b, i);
        same = (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
    }
    if (same)
        return 0;
    return pl_err_set(err, PL_E_PROGRAMMING, path,
                      "execute_nested(): both queries must take the same parameters, in the "
                      "same order");
}

/* execute_nested, first part: both queries in one read snapshot. Outside a
 * transaction a deferred BEGIN holds the snapshot from the first query to the
 * last chunk of the second, so no commit in between can give children
 * without their parent. Runs the parents' query whole into `parents` and
 * starts the children's. Requires the session lock; GIL released. Returns 0,
 * or -1 with `err` set and everything ended. */
static int nested_start_locked(stream *p, stream *c, int *began, const pl_batch *b,
                               pl_rowbuf *parents, pl_err *err)
{
    SessionObject *s = p->s;
    int rc;

    assert(pl_lock_held(&s->lock));
    *began = 0;
    if (ensure_conn(s, err) < 0)
        return -1;
    *began = sqlite3_get_autocommit(s->conn->db);
    if (*began && pl_conn_exec(s->conn, "BEGIN", "starting a read transaction", err) < 0) {
        *began = 0;
        return -1;
    }
    rc = start_locked(p, b, err);
    if (rc == 0 && (rc = start_locked(c, b, err)) == 0)
        rc = same_parameters(p->stmt, c->stmt, s->db->path, err);
    if (rc == 0)
        rc = step_locked(p, b, parents, err);
    rc = end_locked(p, rc, 0, err);
    if (rc < 0)
        end_locked(c, -1, 0, err);
    return rc;
}

/* End the read transaction execute_nested opened, if it did (`began`):
 * commit when `rc` is 0, else roll back. Returns `rc`, or -1 when the commit
 * fails. Requires the session lock; GIL released. */
static int nested_end_locked(SessionObject *s, int began, int rc, pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    if (began) {
        pl_err ignored;
        pl_err_clear(&ignored);
        if (rc == 0)
            rc = pl_conn_exec(s->conn, "COMMIT", "ending a read transaction", err);
        else
            pl_conn_exec(s->conn, "ROLLBACK", "ending a read transaction", &ignored);
    }
    return rc;
}

/* A call that failed on the Python side between chunks (an exception is
 * set), or an iterator closed before its end: end its statement, undoing an
 * executemany's earlier chunks when `undo` is set, and the read transaction
 * of execute_nested when `began` is set, in one hold of the lock. GIL held,
 * no lock held; from any thread (no call of the cursor's runs meanwhile). */
static void stream_abort(stream *sm, int undo, int began)
{
    pl_err ignored;

    pl_err_clear(&ignored);
    Py_BEGIN_ALLOW_THREADS
    /* Not stream_resume: an iterator may be dropped on another thread. */
    pl_mutex_lock(&sm->s->lock, PL_LOCK_SESSION);
    assert(sm->s->streaming);
    pl_conn_resume_clock(sm->s->conn, sm->paused_at);
    end_locked(sm, -1, undo, &ignored);
    nested_end_locked(sm->s, began, -1, &ignored);
    pl_mutex_unlock(&sm->s->lock);
    Py_END_ALLOW_THREADS
}

/* One call's statement from start to end, read chunk by chunk: what
 * execute/executemany/execute_nested run to the end before they return, and
 * what the iterators of execute_iter/execute_nested_iter hold between rows
 * (result.h). Heap-allocated: the streams' addresses must not move. */
struct pl_cursor {
    SessionObject *s; /* strong reference */
    pl_state *st;
    int nested;
    stream ps, cs;     /* nested: the parents' query (ps); the rows' statement (cs) */
    describe_ctx dctx; /* parameter names, for mapping parameters */
    pl_batch batch;
    int batch_built;
    pl_rowbuf bufs[2];     /* nested: the parents; the rows of the current chunk */
    PyObject *sql_obj;     /* the text under which column names are cached (strong) */
    PyObject *text[2];     /* the SQL texts sqls point into (strong) */
    PyObject *columns;     /* nested: the output names (a tuple of str, strong) */
    const char **names;    /* nested: their UTF-8, kept by `columns` */
    Py_ssize_t n;          /* nested: output columns */
    size_t parent_pos;     /* nested: pl_nest_map_build's position */
    size_t done_rows;      /* nested: child rows of earlier chunks */
    int began;             /* nested: this call opened the read transaction */
    int finished;          /* the statement has ended (or never started) */
    pthread_t owner;       /* the thread that opened the cursor */
    pl_result_builder out; /* the Python rows */
};

/* The parts common to both kinds of cursor. GIL held. */
static pl_cursor *cursor_alloc(SessionObject *self, PyTypeObject *row_type, int nparent)
{
    pl_state *st = pl_state_of(Py_TYPE(self));
    pl_cursor *c;

    if (inherited(self))
        return NULL;
    c = PyMem_Calloc(1, sizeof *c);
    if (c == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    c->s = (SessionObject *)Py_NewRef(self);
    c->st = st;
    c->owner = pthread_self();
    pl_rowbuf_init(&c->bufs[0]);
    pl_rowbuf_init(&c->bufs[1]);
    if (pl_result_builder_init(st, &c->out, row_type, nparent) < 0) {
        pl_cursor_free(c);
        return NULL;
    }
    return c;
}

/* A cursor over one statement, for execute (many = 0) or executemany. Returns
 * it (not started), or NULL with an exception set. GIL held. */
static pl_cursor *cursor_query(SessionObject *self, PyObject *sql_obj, PyObject *params, int many,
                               PyTypeObject *row_type)
{
    const char *sql;
    Py_ssize_t len;
    pl_cursor *c;

    if (!PyUnicode_Check(sql_obj)) {
        PyErr_Format(PyExc_TypeError, "sql must be a str, not %.100s", Py_TYPE(sql_obj)->tp_name);
        return NULL;
    }
    if ((c = cursor_alloc(self, row_type, 0)) == NULL)
        return NULL;
    c->sql_obj = Py_NewRef(sql_obj);
    c->text[0] = Py_NewRef(sql_obj);
    sql = PyUnicode_AsUTF8AndSize(sql_obj, &len);
    if (sql == NULL)
        goto fail;
    stream_init(&c->cs, self, sql, len, many, 1);
    c->dctx = (describe_ctx){self, sql, len, &c->cs};
    if (pl_batch_build(c->st, &c->batch, params, many, self->db->path, describe, &c->dctx) < 0)
        goto fail;
    c->batch_built = 1;
    return c;
fail:
    pl_cursor_free(c);
    return NULL;
}

/* A cursor over execute_nested's two queries: `params` (None, a sequence or a
 * mapping) are bound to both, which must name the same parameters in the
 * same order. Returns it (not started), or NULL with an exception set. */
static pl_cursor *cursor_nested(SessionObject *self, PyObject *parents_sql, PyObject *children_sql,
                                PyObject *columns, PyObject *params, PyTypeObject *row_type)
{
    const char *sqls[2];
    Py_ssize_t lens[2], n = PyTuple_GET_SIZE(columns);
    pl_cursor *c;

    if (n > 2000) {
        PyErr_SetString(PyExc_ValueError, "execute_nested(): at most 2000 columns");
        return NULL;
    }
    if ((c = cursor_alloc(self, row_type, (int)n)) == NULL)
        return NULL;
    c->nested = 1;
    c->n = n;
    c->sql_obj = Py_NewRef(children_sql);
    c->text[0] = Py_NewRef(parents_sql);
    c->text[1] = Py_NewRef(children_sql);
    c->columns = Py_NewRef(columns);
    for (int i = 0; i < 2; i++)
        if ((sqls[i] = PyUnicode_AsUTF8AndSize(c->text[i], &lens[i])) == NULL)
            goto fail;
    c->names = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof *c->names);
    if (c->names == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(columns, i);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "column names must be str, not %.100s",
                         Py_TYPE(name)->tp_name);
            goto fail;
        }
        if ((c->names[i] = PyUnicode_AsUTF8(name)) == NULL) /* kept by the tuple */
            goto fail;
    }
    stream_init(&c->ps, self, sqls[0], lens[0], 0, 0);
    stream_init(&c->cs, self, sqls[1], lens[1], 0, 1);
    c->dctx = (describe_ctx){self, sqls[0], lens[0], NULL};
    if (pl_batch_build(c->st, &c->batch, params, 0, self->db->path, describe, &c->dctx) < 0)
        goto fail;
    c->batch_built = 1;
    return c;
fail:
    pl_cursor_free(c);
    return NULL;
}

/* Step the cursor's statement for one chunk and add its Python rows to the
 * builder: returns 1 when more rows may follow, 0 when the statement ended
 * (the rows read last are in the builder), or -1 with an exception set and
 * the statement ended. GIL held, no lock held; from the cursor's thread. */
static int cursor_chunk(pl_cursor *c)
{
    SessionObject *self = c->s;
    pl_state *st = c->st;
    int rc, stepped = 0, finished = 0;
    pl_rowbuf *rows = &c->bufs[1];
    pl_nest_map map;
    pl_err err;

    if (c->finished)
        return 0;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    if (!c->cs.started) {
        rc = session_lock(self, &err);
        if (rc == 0 && c->nested) {
            rc = nested_start_locked(&c->ps, &c->cs, &c->began, &c->batch, &c->bufs[0], &err);
            if (rc < 0) {
                nested_end_locked(self, c->began, -1, &err);
                pl_mutex_unlock(&self->lock);
                finished = 1;
            }
        } else if (rc == 0 && (rc = start_locked(&c->cs, &c->batch, &err)) < 0) {
            end_locked(&c->cs, -1, 0, &err);
            pl_mutex_unlock(&self->lock);
            finished = 1;
        } else if (rc < 0)
            finished = 1;
    } else {
        stream_resume(&c->cs);
        rc = 0;
    }
    if (rc == 0) {
        rc = stepped = step_locked(&c->cs, &c->batch, rows, &err);
        if (rc < 0 || (rc == 0 && (c->nested || !c->batch.more))) {
            rc = end_locked(&c->cs, rc, 0, &err);
            if (c->nested)
                rc = nested_end_locked(self, c->began, rc, &err);
            finished = 1;
        } else
            stream_pause(&c->cs);
        pl_mutex_unlock(&self->lock);
    }
    if (rc >= 0 && c->nested) {
        rc = pl_nest_map_build(&map, &c->bufs[0], rows, c->names, (int)c->n, &c->parent_pos,
                               c->done_rows, self->db->path, &err);
    }
    Py_END_ALLOW_THREADS
    c->finished = finished;
    if (rc < 0) {
        pl_raise(st, &err);
        if (!finished)
            stream_abort(&c->cs, 0, c->began);
        c->finished = 1;
        return -1;
    }
    if (c->nested) {
        rc = pl_result_builder_add_nested(st, &c->out, c->sql_obj, &c->bufs[0], rows, &map,
                                          c->names);
        pl_nest_map_free(&map);
    } else
        rc = pl_result_builder_add(st, &c->out, c->sql_obj, rows);
    if (rc < 0) {
        if (!finished)
            stream_abort(&c->cs, 0, c->began);
        c->finished = 1;
        return -1;
    }
    c->done_rows += rows->nrows;
    pl_rowbuf_clear_rows(rows);
    if (finished)
        return 0;
    if (stepped == 0 && pl_batch_next(st, &c->batch) < 0) {
        stream_abort(&c->cs, 1, 0);
        c->finished = 1;
        return -1;
    }
    return 1;
}

void pl_cursor_free(pl_cursor *c)
{
    if (c == NULL)
        return;
    if (c->s != NULL && c->cs.started && !c->finished) {
        if (c->s->fork_gen == pl_fork_generation())
            stream_abort(&c->cs, 0, c->began); /* an iterator closed early */
        /* else inherited across fork(): its statement belongs to a connection
         * this process never touches (fork.h). */
    }
    pl_result_builder_clear(&c->out);
    if (c->batch_built)
        pl_batch_release(&c->batch);
    pl_rowbuf_free(&c->bufs[0]);
    pl_rowbuf_free(&c->bufs[1]);
    PyMem_Free(c->names);
    Py_XDECREF(c->columns);
    Py_XDECREF(c->text[0]);
    Py_XDECREF(c->text[1]);
    Py_XDECREF(c->sql_obj);
    Py_XDECREF(c->s);
    PyMem_Free(c);
}

int pl_cursor_chunk(pl_cursor *c)
{
    if (c->finished)
        return 0;
    if (inherited(c->s))
        return -1;
    if (!pthread_equal(c->owner, pthread_self())) {
        pl_raise_kind(c->st, PL_E_PROGRAMMING, c->s->db->path,
                      "this iterator was opened on another thread; read its rows on that "
                      "thread, or open a session and an iterator on this one.");
        return -1;
    }
    return cursor_chunk(c);
}

pl_result_builder *pl_cursor_builder(pl_cursor *c)
{
    return &c->out;
}

/* Run a cursor to its end and return the Result, or NULL with an exception
 * set. Frees the cursor. */
static PyObject *cursor_run(pl_cursor *c, const char *const *names, int ncols)
{
    PyObject *result = NULL;
    int rc;

    if (c == NULL)
        return NULL;
    while ((rc = cursor_chunk(c)) > 0)
        ;
    if (rc == 0) {
        if (!c->nested) {
            names = (const char *const *)c->bufs[1].names;
            ncols = c->bufs[1].ncols;
        }
        result =
            pl_result_builder_finish(c->st, &c->out, c->sql_obj, names, ncols, c->cs.info.rowcount,
                                     c->cs.info.lastrowid, c->cs.info.has_lastrowid);
    }
    pl_cursor_free(c);
    return result;
}

/* An iterator over a cursor whose first chunk has been read (so that errors
 * of the statement surface at the call, as execute()'s do), or NULL with an
 * exception set. Frees the cursor on error. */
static PyObject *cursor_iter(pl_cursor *c)
{
    if (c == NULL)
        return NULL;
    if (cursor_chunk(c) < 0) {
        pl_cursor_free(c);
        return NULL;
    }
    return pl_result_iter_new(c->st, c); /* owns the cursor, also on error */
}

static PyObject *session_execute(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sql", "params", NULL};
    PyObject *sql, *params = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:execute", kwlist, &sql, &params))
        return NULL;
    return cursor_run(cursor_query(self, sql, params, 0, pl_state_of(Py_TYPE(self))->row_type),
                      NULL, 0);
}

static PyObject *session_executemany(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sql", "seq_of_params", NULL};
    PyObject *sql, *params;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:executemany", kwlist, &sql, &params))
        return NULL;
    return cursor_run(cursor_query(self, sql, params, 1, pl_state_of(Py_TYPE(self))->row_type),
                      NULL, 0);
}

static PyObject *session_execute_iter(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sql", "params", "mappings", NULL};
    pl_state *st = pl_state_of(Py_TYPE(self));
    PyObject *sql, *params = Py_None;
    int mappings = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$p:execute_iter", kwlist, &sql, &params,
                                     &mappings))
        return NULL;
    return cursor_iter(
        cursor_query(self, sql, params, 0, mappings ? st->rowmapping_type : st->row_type));
}

/* execute_nested and execute_nested_iter: their arguments, then the cursor. */
static pl_cursor *nested_args(SessionObject *self, PyObject *args, PyObject *kwargs,
                              const char *format)
{
    static char *kwlist[] = {"parents_sql", "children_sql", "columns", "params", "mappings", NULL};
    pl_state *st = pl_state_of(Py_TYPE(self));
    PyObject *parents, *children, *columns, *params = Py_None;
    int mappings = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, kwlist, &parents, &children,
                                     &PyTuple_Type, &columns, &params, &mappings))
        return NULL;
    return cursor_nested(self, parents, children, columns, params,
                         mappings ? st->rowmapping_type : st->row_type);
}

static PyObject *session_execute_nested(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    pl_cursor *c = nested_args(self, args, kwargs, "UUO!|O$p:execute_nested");
    if (c == NULL)
        return NULL;
    return cursor_run(c, c->names, (int)c->n);
}

static PyObject *session_execute_nested_iter(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    return cursor_iter(nested_args(self, args, kwargs, "UUO!|O$p:execute_nested_iter"));
}

typedef enum { TX_BEGIN, TX_COMMIT, TX_ROLLBACK, TX_CLOSE } tx_op;

/* begin/commit/rollback/close. Requires the session lock; GIL released. */
static int tx_locked(SessionObject *s, tx_op op, pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    switch (op) {
    case TX_BEGIN:
        if (ensure_conn(s, err) < 0)
            return -1;
        if (!sqlite3_get_autocommit(s->conn->db))
            return pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                              "a transaction is already open; commit() or rollback() first.");
        return pl_conn_exec(s->conn, "BEGIN IMMEDIATE", "starting a write transaction", err);
    case TX_COMMIT:
    case TX_ROLLBACK:
        if (s->closed)
            return pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                              "this session is closed; open a new one with get_session().");
        if (s->conn == NULL || sqlite3_get_autocommit(s->conn->db))
            return 0;
        if (s->conn->fork_gen != pl_fork_generation())
            return ensure_conn(s, err);
        if (op == TX_COMMIT)
            return pl_conn_exec(s->conn, "COMMIT", "committing", err);
        return pl_conn_exec(s->conn, "ROLLBACK", "rolling back", err);
    case TX_CLOSE:
        if (!s->closed) {
            pl_database_checkin(s->db, s->conn); /* rolls back what is left open */
            s->conn = NULL;
            s->closed = 1;
        }
        return 0;
    }
    return 0;
}

static PyObject *tx(SessionObject *self, tx_op op)
{
    pl_err err;
    int rc;

    if (inherited(self)) {
        if (op != TX_CLOSE)
            return NULL;
        PyErr_Clear(); /* closing an inherited session forgets it, nothing more */
        self->conn = NULL;
        self->closed = 1;
        Py_RETURN_NONE;
    }
    int close_idle = op == TX_CLOSE && pl_exiting(pl_state_of(Py_TYPE(self)));
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    if ((rc = session_lock(self, &err)) == 0) {
        rc = tx_locked(self, op, &err);
        pl_mutex_unlock(&self->lock);
    }
    if (close_idle)
        pl_registry_close_idle();
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(pl_state_of(Py_TYPE(self)), &err);
    Py_RETURN_NONE;
}

static PyObject *session_begin(SessionObject *self, PyObject *unused)
{
    (void)unused;
    return tx(self, TX_BEGIN);
}

static PyObject *session_commit(SessionObject *self, PyObject *unused)
{
    (void)unused;
    return tx(self, TX_COMMIT);
}

static PyObject *session_rollback(SessionObject *self, PyObject *unused)
{
    (void)unused;
    return tx(self, TX_ROLLBACK);
}

static PyObject *session_close(SessionObject *self, PyObject *unused)
{
    (void)unused;
    return tx(self, TX_CLOSE);
}

static PyObject *session_enter(SessionObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *session_exit(SessionObject *self, PyObject *args)
{
    PyObject *exc_type = Py_None, *exc = Py_None, *tb = Py_None, *r;

    if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &exc_type, &exc, &tb))
        return NULL;
    r = tx(self, exc_type == Py_None ? TX_COMMIT : TX_ROLLBACK);
    if (r == NULL) {
        /* Commit failed: close (which rolls back) and report the commit error. */
        PyObject *commit_error = pl_exc_take();
        PyObject *closed = tx(self, TX_CLOSE);
        Py_XDECREF(closed);
        PyErr_Clear();
        pl_exc_give(commit_error);
        return NULL;
    }
    Py_DECREF(r);
    r = tx(self, TX_CLOSE);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *session_get_path(SessionObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_DecodeFSDefault(self->db->path);
}

static PyObject *session_get_closed(SessionObject *self, void *closure)
{
    int closed;
    (void)closure;
    if (self->fork_gen != pl_fork_generation())
        Py_RETURN_TRUE; /* unusable in this process */
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    closed = self->closed;
    pl_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(closed);
}

static PyObject *session_get_in_transaction(SessionObject *self, void *closure)
{
    int open;
    (void)closure;
    if (self->fork_gen != pl_fork_generation())
        Py_RETURN_FALSE;
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    open = self->conn != NULL && self->conn->fork_gen == pl_fork_generation() &&
           !sqlite3_get_autocommit(self->conn->db);
    pl_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(open);
}

static PyObject *session_get_statement_timeout(SessionObject *self, void *closure)
{
    int ms;
    (void)closure;
    if (self->fork_gen != pl_fork_generation())
        Py_RETURN_NONE; /* unusable in this process */
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    ms = self->timeout_ms;
    pl_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (ms <= 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(ms / 1000.0);
}

static int session_set_statement_timeout(SessionObject *self, PyObject *value, void *closure)
{
    double seconds = 0.0;
    int ms = 0;
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "statement_timeout cannot be deleted; set None");
        return -1;
    }
    if (value != Py_None) {
        seconds = PyFloat_AsDouble(value);
        if (seconds == -1.0 && PyErr_Occurred())
            return -1;
        if (!(seconds > 0.0 && seconds <= 3600.0)) {
            PyErr_SetString(PyExc_ValueError,
                            "statement_timeout is a number of seconds above 0 and at most 3600, "
                            "or None for no limit");
            return -1;
        }
        ms = (int)(seconds * 1000.0 + 0.5);
        if (ms < 1)
            ms = 1;
    }
    if (inherited(self))
        return -1;
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    self->timeout_ms = ms;
    pl_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return 0;
}

static void session_dealloc(SessionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    pl_conn *conn = self->conn;
    pl_database *db = self->db;

    int close_idle = conn != NULL && pl_exiting(pl_state_of(tp));
    PyObject_GC_UnTrack(self);
    self->conn = NULL;
    self->db = NULL;
    /* Nobody else can reach the session now: no lock needed. */
    Py_BEGIN_ALLOW_THREADS
    if (db != NULL) {
        pl_database_checkin(db, conn);
        pl_database_decref(db);
    }
    if (close_idle)
        pl_registry_close_idle();
    Py_END_ALLOW_THREADS
    pthread_cond_destroy(&self->idle);
    pthread_mutex_destroy(&self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int session_traverse(SessionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyMethodDef session_methods[] = {
    {"execute", (PyCFunction)(void (*)(void))session_execute, METH_VARARGS | METH_KEYWORDS,
     "execute(sql, params=None)\n--\n\n"
     "Run one statement with qmark (sequence) or named (mapping) parameters; a write\n"
     "outside a transaction first opens BEGIN IMMEDIATE. Returns a Result."},
    {"executemany", (PyCFunction)(void (*)(void))session_executemany, METH_VARARGS | METH_KEYWORDS,
     "executemany(sql, seq_of_params)\n--\n\nRun one statement once per parameter set."},
    {"execute_nested", (PyCFunction)(void (*)(void))session_execute_nested,
     METH_VARARGS | METH_KEYWORDS,
     "execute_nested(parents_sql, children_sql, columns, params=None, *, mappings=False)\n--\n\n"
     "A one-to-many join as two queries in one read snapshot, joined in C: both\n"
     "return the join key (an integer) first; children come grouped by parent, in\n"
     "the parents' order. Each child row gives one row with the named columns\n"
     "(a tuple of str) taken from its parent or from itself; parents without\n"
     "children give none. Parent values are built once and shared. `params` are\n"
     "bound to both queries, which take the same parameters in the same order.\n"
     "Returns a Result of Rows, or of RowMappings with mappings=True."},
    {"execute_iter", (PyCFunction)(void (*)(void))session_execute_iter,
     METH_VARARGS | METH_KEYWORDS,
     "execute_iter(sql, params=None, *, mappings=False)\n--\n\n"
     "As execute(), but returns an iterator over the rows (Rows, or RowMappings\n"
     "with mappings=True) that builds them a chunk at a time instead of a list of\n"
     "all. Until it is exhausted or closed, the session belongs to it: other calls\n"
     "on the session from this thread raise ProgrammingError, other threads wait.\n"
     "Read it on the thread that opened it."},
    {"execute_nested_iter", (PyCFunction)(void (*)(void))session_execute_nested_iter,
     METH_VARARGS | METH_KEYWORDS,
     "execute_nested_iter(parents_sql, children_sql, columns, params=None, *, mappings=False)\n"
     "--\n\n"
     "As execute_nested(), as an iterator (see execute_iter); the read snapshot is\n"
     "held until it is exhausted or closed."},
    {"begin", (PyCFunction)session_begin, METH_NOARGS,
     "begin()\n--\n\nOpen a write transaction now (BEGIN IMMEDIATE), so that reads\n"
     "before the first write see the same snapshot as the write."},
    {"commit", (PyCFunction)session_commit, METH_NOARGS, "commit()\n--\n\nCommit."},
    {"rollback", (PyCFunction)session_rollback, METH_NOARGS, "rollback()\n--\n\nRoll back."},
    {"close", (PyCFunction)session_close, METH_NOARGS,
     "close()\n--\n\nRoll back what is uncommitted and return the connection to the pool."},
    {"__enter__", (PyCFunction)session_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)session_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef session_getset[] = {
    {"path", (getter)session_get_path, NULL, "The database file.", NULL},
    {"closed", (getter)session_get_closed, NULL, "True after close().", NULL},
    {"in_transaction", (getter)session_get_in_transaction, NULL,
     "True while a transaction is open.", NULL},
    {"statement_timeout", (getter)session_get_statement_timeout,
     (setter)session_set_statement_timeout,
     "Seconds a statement (or an executemany batch) may run before it is stopped with\n"
     "StatementTimeoutError; None for no limit. Starts at PROMPTLAB_STATEMENT_TIMEOUT_MS.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot session_slots[] = {
    {Py_tp_dealloc, session_dealloc},
    {Py_tp_traverse, session_traverse},
    {Py_tp_methods, session_methods},
    {Py_tp_getset, session_getset},
    {Py_tp_doc, "A unit of work on one database; get one from get_session()."},
    {0, NULL},
};

static PyType_Spec session_spec = {
    .name = "promptlab.sqlite.Session",
    .basicsize = sizeof(SessionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = session_slots,
};

int pl_session_register(PyObject *module, pl_state *st)
{
    return pl_type_register(module, &session_spec, &st->session_type);
}
