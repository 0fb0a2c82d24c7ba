/* session.c: Session: execute/executemany/begin/commit/rollback/close.
 *
 * Every call follows the same three steps so that no lock is held while
 * Python runs and no Python runs while a lock is held:
 *   1. with the GIL: convert parameters into C values (params.c);
 *   2. without the GIL, holding the session's mutex: check out the connection,
 *      prepare, bind, step, and copy rows into a C buffer (rowbuf.c);
 *   3. with the GIL, no lock: build the Result and its rows (result.c).
 * The mutex serializes threads that share one session.
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

/* Step 2 of execute: everything that touches SQLite. Requires the session
 * lock; GIL released. Returns 0 or -1 with `err` set. */
static int run_locked(SessionObject *s, const char *sql, Py_ssize_t len, const pl_batch *b,
                      int many, pl_rowbuf *rows, exec_info *info, pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    sqlite3_stmt *stmt = NULL;
    int tail = 0, rc = -1, is_query;
    sqlite3 *db;

    if (ensure_conn(s, err) < 0)
        return -1;
    db = s->conn->db;
    if (len > 0x7fffffff)
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path, "the SQL text is too long");
    if (pl_conn_prepare(s->conn, sql, (int)len, &stmt, &tail, err) < 0)
        return -1;
    if (pl_sql_skip_trivia(sql + tail, sql + len, 1) != sql + len) {
        pl_err_set(err, PL_E_PROGRAMMING, s->db->path,
                   "execute() runs one statement at a time; split the SQL text or call "
                   "execute() once per statement.");
        goto done;
    }
    if (!sqlite3_stmt_readonly(stmt) && pl_database_check_before_write(s->db, s->conn, err) < 0)
        goto done;
    if (sqlite3_get_autocommit(db) && needs_write_transaction(stmt) &&
        pl_conn_exec(s->conn, "BEGIN IMMEDIATE", "starting a write transaction", err) < 0)
        goto done;
    is_query = sqlite3_column_count(stmt) > 0;
    int counts_changes = !is_query && !sqlite3_stmt_readonly(stmt);
    info->rowcount = is_query ? -1 : 0;
    for (Py_ssize_t r = 0; r < b->nrows; r++) {
        int step;
        if (pl_batch_bind(b, r, stmt, s->db->path, err) < 0) {
            if (many) {
                char where[64];
                snprintf(where, sizeof where, "executemany(), parameter set %zd", r + 1);
                pl_err_prefix(err, where);
            }
            goto done;
        }
        while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
            /* Column names only after a step: a schema change re-prepares
             * the statement inside sqlite3_step (SELECT * may widen). */
            if (pl_rowbuf_columns(rows, stmt, s->db->path, err) < 0 ||
                pl_rowbuf_append(rows, stmt, s->db->path, err) < 0)
                goto done;
        }
        if (step != SQLITE_DONE) {
            pl_err_from_sqlite(err, sqlite3_extended_errcode(db), db, s->db->path,
                               "executing the statement");
            goto done;
        }
        if (counts_changes)
            info->rowcount += (Py_ssize_t)sqlite3_changes64(db);
        if (is_query && pl_rowbuf_columns(rows, stmt, s->db->path, err) < 0)
            goto done; /* a query that returned no row still has columns */
        sqlite3_reset(stmt);
    }
    info->lastrowid = (long long)sqlite3_last_insert_rowid(db);
    info->has_lastrowid = info->lastrowid != 0;
    rc = 0;
done:
    pl_conn_done(stmt);
    return rc;
}

/* The statement's parameter names, for mapping parameters (pl_describe_fn). */
typedef struct {
    SessionObject *session;
    const char *sql;
    Py_ssize_t len;
} describe_ctx;

/* Under the session lock, GIL released: prepare (or find) the statement and
 * copy its parameter names into one malloc'd block of `*n` NUL-terminated
 * strings, "" for a positional parameter. Returns 0 or -1 with `err` set. */
static int describe_locked(SessionObject *s, const char *sql, Py_ssize_t len, int *n, char **block,
                           pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    sqlite3_stmt *stmt = NULL;
    size_t total = 0;

    if (ensure_conn(s, err) < 0)
        return -1;
    if (len > 0x7fffffff)
        return pl_err_set(err, PL_E_PROGRAMMING, s->db->path, "the SQL text is too long");
    if (pl_conn_prepare(s->conn, sql, (int)len, &stmt, NULL, err) < 0)
        return -1;
    *n = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= *n; i++) {
        const char *name = sqlite3_bind_parameter_name(stmt, i);
        total += (name ? strlen(name) : 1) + 1;
    }
    *block = pl_malloc(total + 1);
    if (*block == NULL)
        return pl_err_set(err, PL_E_NOMEM, s->db->path, "out of memory");
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
    pl_mutex_lock(&s->lock, PL_LOCK_SESSION);
    rc = describe_locked(s, ctx->sql, ctx->len, &n, &block, &err);
    pl_mutex_unlock(&s->lock);
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

/* execute/executemany: the three steps described at the top of the file. */
static PyObject *run(SessionObject *self, PyObject *sql_obj, PyObject *params, int many)
{
    pl_state *st = pl_state_of(Py_TYPE(self));
    exec_info info = {-1, 0, 0};
    const char *sql;
    Py_ssize_t len;
    pl_rowbuf rows;
    pl_batch batch;
    pl_err err;
    int rc;

    if (inherited(self))
        return NULL;
    if (!PyUnicode_Check(sql_obj)) {
        PyErr_Format(PyExc_TypeError, "sql must be a str, not %.100s", Py_TYPE(sql_obj)->tp_name);
        return NULL;
    }
    sql = PyUnicode_AsUTF8AndSize(sql_obj, &len);
    if (sql == NULL)
        return NULL;
    describe_ctx dctx = {self, sql, len};
    if (pl_batch_build(st, &batch, params, many, self->db->path, describe, &dctx) < 0)
        return NULL;
    pl_rowbuf_init(&rows);
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    rc = run_locked(self, sql, len, &batch, many, &rows, &info, &err);
    pl_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    pl_batch_release(&batch);
    PyObject *result = NULL;
    if (rc < 0)
        pl_raise(st, &err);
    else
        result = pl_result_new(st, sql_obj, &rows, info.rowcount, info.lastrowid,
                               info.has_lastrowid, st->row_type);
    pl_rowbuf_free(&rows);
    return result;
}

static PyObject *session_execute(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sql", "params", NULL};
    PyObject *sql, *params = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:execute", kwlist, &sql, &params))
        return NULL;
    return run(self, sql, params, 0);
}

static PyObject *session_executemany(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sql", "seq_of_params", NULL};
    PyObject *sql, *params;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:executemany", kwlist, &sql, &params))
        return NULL;
    return run(self, sql, params, 1);
}

/* execute_nested, step 2: both queries in one read snapshot. Outside a
 * transaction a deferred BEGIN holds the snapshot from the first query to the
 * second, so no commit in between can give children without their parent.
 * Requires the session lock; GIL released. Returns 0 or -1 with `err` set. */
static int nested_locked(SessionObject *s, const char *sqls[2], const Py_ssize_t lens[2],
                         const pl_batch *b, pl_rowbuf bufs[2], pl_err *err)
{
    assert(pl_lock_held(&s->lock));
    exec_info info = {-1, 0, 0};
    int began, rc = 0;

    if (ensure_conn(s, err) < 0)
        return -1;
    began = sqlite3_get_autocommit(s->conn->db);
    if (began && pl_conn_exec(s->conn, "BEGIN", "starting a read transaction", err) < 0)
        return -1;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = run_locked(s, sqls[i], lens[i], b, 0, &bufs[i], &info, err);
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

static PyObject *session_execute_nested(SessionObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"parents_sql", "children_sql", "columns", "mappings", NULL};
    int mappings = 0;
    pl_state *st = pl_state_of(Py_TYPE(self));
    PyObject *sql_objs[2], *columns, *result = NULL;
    const char *sqls[2], **names = NULL;
    Py_ssize_t lens[2], n;
    pl_rowbuf bufs[2];
    pl_nest_map map;
    pl_batch batch;
    pl_err err;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "UUO!|$p:execute_nested", kwlist, &sql_objs[0],
                                     &sql_objs[1], &PyTuple_Type, &columns, &mappings))
        return NULL;
    if (inherited(self))
        return NULL;
    n = PyTuple_GET_SIZE(columns);
    if (n > 2000) {
        PyErr_SetString(PyExc_ValueError, "execute_nested(): at most 2000 columns");
        return NULL;
    }
    for (int i = 0; i < 2; i++)
        if ((sqls[i] = PyUnicode_AsUTF8AndSize(sql_objs[i], &lens[i])) == NULL)
            return NULL;
    names = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof *names);
    if (names == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t c = 0; c < n; c++) {
        PyObject *name = PyTuple_GET_ITEM(columns, c);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "column names must be str, not %.100s",
                         Py_TYPE(name)->tp_name);
            goto done_names;
        }
        if ((names[c] = PyUnicode_AsUTF8(name)) == NULL) /* kept by the tuple */
            goto done_names;
    }
    if (pl_batch_build(st, &batch, Py_None, 0, self->db->path, NULL, NULL) < 0)
        goto done_names;
    pl_rowbuf_init(&bufs[0]);
    pl_rowbuf_init(&bufs[1]);
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    rc = nested_locked(self, sqls, lens, &batch, bufs, &err);
    pl_mutex_unlock(&self->lock);
    if (rc == 0)
        rc = pl_nest_map_build(&map, &bufs[0], &bufs[1], names, (int)n, self->db->path, &err);
    Py_END_ALLOW_THREADS
    pl_batch_release(&batch);
    if (rc < 0)
        pl_raise(st, &err);
    else {
        result = pl_result_new_nested(st, sql_objs[1], &bufs[0], &bufs[1], &map, names,
                                      mappings ? st->rowmapping_type : st->row_type);
        pl_nest_map_free(&map);
    }
    pl_rowbuf_free(&bufs[0]);
    pl_rowbuf_free(&bufs[1]);
done_names:
    PyMem_Free(names);
    return result;
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
    pl_mutex_lock(&self->lock, PL_LOCK_SESSION);
    rc = tx_locked(self, op, &err);
    pl_mutex_unlock(&self->lock);
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
     "execute_nested(parents_sql, children_sql, columns, *, mappings=False)\n--\n\n"
     "A one-to-many join as two queries in one read snapshot, joined in C: both\n"
     "return the join key (an integer) first; children come grouped by parent, in\n"
     "the parents' order. Each child row gives one row with the named columns\n"
     "(a tuple of str) taken from its parent or from itself; parents without\n"
     "children give none. Parent values are built once and shared. Returns a Result\n"
     "of Rows, or of RowMappings with mappings=True."},
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
