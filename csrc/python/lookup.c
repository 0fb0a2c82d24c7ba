/* lookup.c: Lookup: one SELECT whose first row becomes a record, read without
 * a Session (issue 16, point lookups).
 *
 * A Lookup is made once per statement (promptlab.store), with the plan of the
 * record its row becomes, and called once per lookup: first(db_file, params).
 * A call does what get_session(db_file), execute(sql, params).first() and
 * close() do, with the same guarantees, without their Python objects:
 *   1. with the GIL: the path and the PROMPTLAB_* settings are read as
 *      get_session() reads them, and the parameters converted (params.c);
 *   2. without the GIL, in one section that takes no lock of its own: the
 *      database is found in the registry (and initialized when it is not
 *      ready, as get_session() does), a connection is checked out of its pool
 *      (pl_database_checkout: refused when the file was deleted or replaced;
 *      connections from before fork() skipped), the statement is taken from
 *      that connection's cache (prepared once per connection, with
 *      SQLITE_PREPARE_PERSISTENT; SQLite prepares it again by itself after a
 *      schema change), bound, stepped once, its row copied into C memory
 *      (row_copy: on the stack unless it is large), reset, and the connection
 *      checked back in. The read is an
 *      autocommit read of its own, as a session's first read is;
 *   3. with the GIL, no lock held: the record is built from the copy.
 * Nothing is kept between calls but the statement in the pooled connection's
 * cache, so fork(), reset_initialization() and a replaced file are handled
 * where sessions handle them: idle connections are closed before fork(), a
 * forgotten database is no longer found in the registry, and the checkout
 * compares the file's identity. The pool hands out the connection given back
 * last, so a thread that looks up again and again reuses one connection and
 * its prepared statement.
 *
 * The plan: (cls, names, kinds[, (attr, owner_plan)]). The first len(names)
 * columns become the fields `names` of a new `cls`, each as stored ('v'), as
 * bool() ('b'), or as a timestamp ('t': text of the form the schema writes,
 * 'YYYY-MM-DD HH:MM:SS[.fff|.ffffff]', becomes a datetime built in C; other
 * text goes to the parse_timestamp callable; a value that is not text stays
 * as it is, as promptlab.sqlite.models.parse_timestamp does). The owner plan
 * takes the columns that follow; its record goes into field `attr`, or None
 * when its first column is NULL (a LEFT JOIN that found no row). The record
 * is made with cls.__new__ and its fields set in order, as a dataclass's
 * __init__ (without __post_init__) sets them, so that it equals the record
 * from_row builds (tests/test_lookups.py). With no plan, first() returns the
 * row's values as a tuple.
 */
#include "lookup.h"
#include "result.h"
#include "database.h"
#include "environ.h"
#include "params.h"
#include "registry.h"
#include "rowbuf.h"
#include "alloc.h"

#include <datetime.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Columns one plan level may take, and owner plans one plan may nest. */
#define PLAN_MAX_COLS 64
#define PLAN_MAX_DEPTH 4

typedef struct plan {
    PyTypeObject *cls;  /* owned */
    PyObject *names;    /* tuple of interned str, owned */
    char *kinds;        /* ncols of 'v', 'b', 't' (PyMem) */
    int ncols;          /* columns of this level */
    PyObject *attr;     /* the owner's field (owned), or NULL */
    struct plan *owner; /* over the columns after this level's, or NULL */
} plan;

typedef struct {
    PyObject_HEAD PyObject *sql; /* str, owned */
    const char *text;            /* its UTF-8, kept by the str */
    int len;
    plan *plan;              /* NULL: a tuple of the values */
    int ncols;               /* columns the plan takes, -1 without a plan */
    PyObject *parse;         /* parse_timestamp, or NULL when no column is 't' */
    PyObject *capsule;       /* datetime.datetime_CAPI, kept while used */
    PyDateTime_CAPI *dt_api; /* from the capsule, or NULL */
} LookupObject;

/* One row copied out of SQLite (pl_cell as rowbuf.h's). A row of up to
 * ROW_CELLS columns and ROW_BYTES of text and blobs, as a lookup's usually
 * is, stays in the struct (on the caller's stack): no allocation. */
#define ROW_CELLS 32
#define ROW_BYTES 4096
typedef struct {
    int ncols;
    pl_cell *cells; /* local_cells or malloc'd */
    char *arena;    /* local_arena or malloc'd: text and blob bytes */
    pl_cell local_cells[ROW_CELLS];
    char local_arena[ROW_BYTES];
} row_copy;

static void row_copy_init(row_copy *r)
{
    r->ncols = 0;
    r->cells = r->local_cells;
    r->arena = r->local_arena;
}

static void row_copy_free(row_copy *r)
{
    if (r->cells != r->local_cells)
        free(r->cells);
    if (r->arena != r->local_arena)
        free(r->arena);
    row_copy_init(r);
}

/* Copy the current row of `stmt` (`n` columns) into `r`. Returns 0, or -1
 * with `err` set (out of memory). No GIL needed. */
static int row_copy_take(row_copy *r, sqlite3_stmt *stmt, int n, const char *path, pl_err *err)
{
    size_t used = 0, cap = ROW_BYTES;

    if (n > ROW_CELLS && (r->cells = pl_malloc((size_t)n * sizeof *r->cells)) == NULL)
        goto nomem;
    for (int i = 0; i < n; i++) {
        pl_cell *cell = &r->cells[i];
        const void *data;
        if (pl_cell_read(stmt, i, cell, &data) < 0)
            goto nomem;
        if (cell->type != SQLITE_TEXT && cell->type != SQLITE_BLOB)
            continue;
        size_t len = cell->v.s.len;
        if (used + len > cap) {
            size_t grown = used + len > 2 * cap ? used + len : 2 * cap;
            char *arena = pl_malloc(grown);
            if (arena == NULL)
                goto nomem;
            memcpy(arena, r->arena, used);
            if (r->arena != r->local_arena)
                free(r->arena);
            r->arena = arena;
            cap = grown;
        }
        if (len > 0)
            memcpy(r->arena + used, data, len);
        cell->v.s.off = used;
        used += len;
    }
    r->ncols = n;
    return 0;
nomem:
    row_copy_free(r);
    return pl_err_set(err, PL_E_NOMEM, path, "out of memory reading query results");
}

static void plan_free(plan *p)
{
    while (p != NULL) {
        plan *next = p->owner;
        Py_XDECREF(p->cls);
        Py_XDECREF(p->names);
        Py_XDECREF(p->attr);
        PyMem_Free(p->kinds);
        PyMem_Free(p);
        p = next;
    }
}

/* Parse `spec` (see the top of the file) into a new plan; *ncols gets the
 * columns it takes in all and *timestamps is set when one of them is 't'.
 * Returns NULL with an exception set on a malformed spec. GIL held. */
static plan *plan_parse(PyObject *spec, int depth, int *ncols, int *timestamps)
{
    PyObject *cls, *names, *kinds, *owner = NULL, *attr = NULL, *owner_spec = NULL;
    plan *p = NULL;
    Py_ssize_t n, klen;
    const char *k;

    if (!PyTuple_Check(spec)) {
        PyErr_Format(PyExc_TypeError, "a Lookup plan is a tuple, not %.100s",
                     Py_TYPE(spec)->tp_name);
        return NULL;
    }
    if (!PyArg_ParseTuple(spec, "O!O!U|O!:Lookup plan", &PyType_Type, &cls, &PyTuple_Type, &names,
                          &kinds, &PyTuple_Type, &owner))
        return NULL;
    if (owner != NULL && !PyArg_ParseTuple(owner, "UO:Lookup owner plan", &attr, &owner_spec))
        return NULL;
    if (((PyTypeObject *)cls)->tp_new == NULL) { /* build() calls it */
        PyErr_Format(PyExc_TypeError,
                     "a Lookup plan's class must be instantiable; %.100s "
                     "is not",
                     ((PyTypeObject *)cls)->tp_name);
        return NULL;
    }
    n = PyTuple_GET_SIZE(names);
    k = PyUnicode_AsUTF8AndSize(kinds, &klen);
    if (k == NULL)
        return NULL;
    if (n < 1 || n > PLAN_MAX_COLS || klen != n || strspn(k, "vbt") != (size_t)n) {
        PyErr_Format(PyExc_ValueError,
                     "a Lookup plan names 1 to %d fields and gives one kind per field "
                     "('v' value, 'b' bool, 't' timestamp): %zd names, kinds %R",
                     PLAN_MAX_COLS, n, kinds);
        return NULL;
    }
    if (owner != NULL && depth >= PLAN_MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "Lookup plans nest at most 4 deep");
        return NULL;
    }
    p = PyMem_Calloc(1, sizeof *p);
    if (p == NULL || (p->kinds = PyMem_Malloc((size_t)n)) == NULL) {
        PyMem_Free(p);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(p->kinds, k, (size_t)n);
    p->ncols = (int)n;
    p->cls = (PyTypeObject *)Py_NewRef(cls);
    if (memchr(k, 't', (size_t)n) != NULL)
        *timestamps = 1;
    p->names = PyTuple_New(n);
    if (p->names == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "field names must be str, not %.100s",
                         Py_TYPE(name)->tp_name);
            goto fail;
        }
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        PyTuple_SET_ITEM(p->names, i, name);
    }
    *ncols += p->ncols;
    if (owner != NULL) {
        p->attr = Py_NewRef(attr);
        PyUnicode_InternInPlace(&p->attr);
        p->owner = plan_parse(owner_spec, depth + 1, ncols, timestamps);
        if (p->owner == NULL)
            goto fail;
    }
    return p;
fail:
    plan_free(p);
    return NULL;
}

/* The number written in s[0:n] (ASCII digits only), or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Split 'YYYY-MM-DD HH:MM:SS' (or 'T' between date and time), optionally
 * with '.fff' or '.ffffff', into f[0..6] (year .. microsecond). Returns 0, or
 * -1 for any other text (left to parse_timestamp). Ranges are checked by the
 * datetime constructor. These forms mean the same to datetime.fromisoformat
 * on every Python this package supports (3.10 and later). */
static int split_timestamp(const char *s, size_t n, int f[7])
{
    static const size_t at[6] = {0, 5, 8, 11, 14, 17}, width[6] = {4, 2, 2, 2, 2, 2};

    if (n != 19 && n != 23 && n != 26)
        return -1;
    if (s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
        s[16] != ':' || (n > 19 && s[19] != '.'))
        return -1;
    for (int i = 0; i < 6; i++)
        if ((f[i] = digits(s + at[i], width[i])) < 0)
            return -1;
    f[6] = 0;
    if (n > 19) {
        if ((f[6] = digits(s + 20, n - 20)) < 0)
            return -1;
        if (n == 23)
            f[6] *= 1000; /* milliseconds */
    }
    return 0;
}

/* A 't' column: see the top of the file. New reference, or NULL with an
 * exception set. */
static PyObject *timestamp_value(LookupObject *self, const row_copy *rb, const pl_cell *cell)
{
    PyObject *text, *out;
    int f[7];

    if (cell->type != SQLITE_TEXT)
        return pl_cell_value(rb->arena, cell);
    if (split_timestamp(rb->arena + cell->v.s.off, cell->v.s.len, f) == 0) {
        out = self->dt_api->DateTime_FromDateAndTime(f[0], f[1], f[2], f[3], f[4], f[5], f[6],
                                                     Py_None, self->dt_api->DateTimeType);
        if (out != NULL || !PyErr_ExceptionMatches(PyExc_ValueError))
            return out;
        PyErr_Clear(); /* out of range (a 30th of February): parse_timestamp decides */
    }
    text = pl_cell_value(rb->arena, cell);
    if (text == NULL)
        return NULL;
    out = PyObject_CallOneArg(self->parse, text);
    Py_DECREF(text);
    return out;
}

/* The record of plan `p` from the copied cells `row` (its first column
 * first). New reference, or NULL with an exception set. GIL held. */
static PyObject *build(LookupObject *self, const plan *p, const row_copy *rb, const pl_cell *row)
{
    PyObject *values[PLAN_MAX_COLS], *owner = NULL, *obj = NULL, *empty = NULL;
    int made = 0;

    for (; made < p->ncols; made++) {
        const pl_cell *cell = &row[made];
        PyObject *v;
        switch (p->kinds[made]) {
        case 'b': {
            int truth = cell->type == SQLITE_NULL ? 0 : -2;
            if (truth == -2) {
                PyObject *raw = pl_cell_value(rb->arena, cell);
                if (raw == NULL)
                    goto done;
                truth = PyObject_IsTrue(raw);
                Py_DECREF(raw);
                if (truth < 0)
                    goto done;
            }
            v = PyBool_FromLong(truth);
            break;
        }
        case 't':
            v = timestamp_value(self, rb, cell);
            break;
        default:
            v = pl_cell_value(rb->arena, cell);
        }
        if (v == NULL)
            goto done;
        values[made] = v;
    }
    if (p->owner != NULL) {
        const pl_cell *first = &row[p->ncols];
        owner = first->type == SQLITE_NULL ? Py_NewRef(Py_None)
                                           : build(self, p->owner, rb, row + p->ncols);
        if (owner == NULL)
            goto done;
    }
    empty = PyTuple_New(0);
    if (empty == NULL)
        goto done;
    obj = p->cls->tp_new(p->cls, empty, NULL);
    if (obj == NULL)
        goto done;
    for (int i = 0; i < p->ncols; i++)
        if (PyObject_SetAttr(obj, PyTuple_GET_ITEM(p->names, i), values[i]) < 0)
            goto fail;
    if (owner != NULL && PyObject_SetAttr(obj, p->attr, owner) < 0)
        goto fail;
    goto done;
fail:
    Py_CLEAR(obj);
done:
    for (int i = 0; i < made; i++)
        Py_DECREF(values[i]);
    Py_XDECREF(owner);
    Py_XDECREF(empty);
    return obj;
}

/* The row's values as a tuple (no plan). */
static PyObject *row_tuple(const row_copy *rb)
{
    PyObject *t = PyTuple_New(rb->ncols);
    for (int i = 0; t != NULL && i < rb->ncols; i++) {
        PyObject *v = pl_cell_value(rb->arena, &rb->cells[i]);
        if (v == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* Step 2 on a checked-out connection: the statement from its cache, bound,
 * stepped once, the row (if any) copied into `rows` (*found set), reset.
 * `ncols` is the plan's width (-1: any). GIL released, no lock held. Returns
 * 0 or -1 with `err` set; the statement is reset either way. */
static int read_row(pl_database *db, pl_conn *c, const LookupObject *self, const pl_batch *b,
                    row_copy *rows, int *found, pl_err *err)
{
    sqlite3_stmt *stmt = NULL;
    int tail = 0, rc, step, n;

    c->timeout_ms = -1; /* PROMPTLAB_STATEMENT_TIMEOUT_MS, as a new session's */
    if (pl_conn_prepare(c, self->text, self->len, &stmt, &tail, err) < 0)
        return -1;
    if (pl_sql_skip_trivia(self->text + tail, self->text + self->len, 1) != self->text + self->len)
        rc = pl_err_set(err, PL_E_PROGRAMMING, db->path,
                        "a Lookup runs one statement; its SQL text holds more than one.");
    else if (!sqlite3_stmt_readonly(stmt) || sqlite3_column_count(stmt) == 0)
        rc = pl_err_set(err, PL_E_PROGRAMMING, db->path,
                        "a Lookup runs one query that only reads; run other statements "
                        "in a session.");
    else
        rc = pl_batch_bind(b, 0, stmt, db->path, err);
    if (rc == 0) {
        step = sqlite3_step(stmt);
        /* After the step: a schema change prepares the statement again in it. */
        n = sqlite3_column_count(stmt);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = pl_err_from_sqlite(err, sqlite3_extended_errcode(c->db), c->db, db->path,
                                    "executing the statement");
        else if (self->ncols >= 0 && n != self->ncols)
            rc = pl_err_set(err, PL_E_PROGRAMMING, db->path,
                            "the lookup's query returns %d columns, but its record takes %d.", n,
                            self->ncols);
        else if (step == SQLITE_ROW) {
            rc = row_copy_take(rows, stmt, n, db->path, err);
            *found = rc == 0;
        }
    }
    pl_conn_done(stmt);
    return rc;
}

/* Step 2 (see the top of the file) on the database named by `abs`, or on
 * `db` (a reference this takes) when it is not NULL: the default database,
 * used as get_session() uses it. GIL released, no lock held. Returns 0 or -1
 * with `err` set. */
static int run(const char *abs, pl_database *db, const LookupObject *self, const pl_batch *b,
               row_copy *rows, int *found, pl_err *err)
{
    pl_conn *c;
    int rc = 0;

    if (db == NULL) {
        db = pl_registry_get(abs, err);
        if (db == NULL)
            return -1;
        rc = pl_database_ensure_ready(db, err);
        if (rc == 0)
            pl_registry_offer_default(db); /* as get_session(db_file) */
    }
    if (rc == 0) {
        c = pl_database_checkout(db, err);
        if (c == NULL) {
            rc = -1;
        } else {
            rc = read_row(db, c, self, b, rows, found, err);
            pl_database_checkin(db, c);
        }
    }
    pl_database_decref(db);
    return rc;
}

static PyObject *lookup_first(LookupObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    pl_state *st = pl_state_of(Py_TYPE(self));
    char abs[PATH_MAX + 1];
    pl_database *db = NULL;
    PyObject *out = NULL;
    row_copy rows;
    pl_batch batch;
    pl_err err;
    int rc, found = 0;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "first() takes db_file and params (%zd given)", nargs);
        return NULL;
    }
    if (!PyTuple_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "params must be a tuple, not %.100s",
                     Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    if (args[0] == Py_None) {
        /* The default database, as get_session() gives it. */
        db = pl_registry_default();
        if (db == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "Session not initialized. Call init_engine first.");
            return NULL;
        }
        snprintf(abs, sizeof abs, "%s", db->path);
    } else if (pl_abs_path_from_object(st, args[0], abs, sizeof abs) < 0 ||
               pl_environ_refresh(st) < 0) {
        return NULL;
    }
    if (pl_batch_build(st, &batch, args[1], 0, abs, NULL, NULL) < 0) {
        if (db != NULL) {
            Py_BEGIN_ALLOW_THREADS
            pl_database_decref(db);
            Py_END_ALLOW_THREADS
        }
        return NULL;
    }
    int close_idle = pl_exiting(st); /* as Session.close() at exit */
    row_copy_init(&rows);
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = run(abs, db, self, &batch, &rows, &found, &err);
    if (close_idle)
        pl_registry_close_idle();
    Py_END_ALLOW_THREADS
    if (rc < 0)
        pl_raise(st, &err);
    else if (!found)
        out = Py_NewRef(Py_None);
    else if (self->plan == NULL)
        out = row_tuple(&rows);
    else
        out = build(self, self->plan, &rows, rows.cells);
    pl_batch_release(&batch);
    row_copy_free(&rows);
    return out;
}

static PyObject *lookup_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sql", "plan", "parse_timestamp", NULL};
    PyObject *sql, *spec = Py_None, *parse = Py_None;
    Py_ssize_t len;
    int timestamps = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|OO:Lookup", kwlist, &sql, &spec, &parse))
        return NULL;
    LookupObject *self = (LookupObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->sql = Py_NewRef(sql);
    self->ncols = -1;
    self->text = PyUnicode_AsUTF8AndSize(sql, &len);
    if (self->text == NULL)
        goto fail;
    if (len > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "the SQL text is too long");
        goto fail;
    }
    self->len = (int)len;
    if (spec != Py_None) {
        self->ncols = 0;
        self->plan = plan_parse(spec, 0, &self->ncols, &timestamps);
        if (self->plan == NULL)
            goto fail;
    }
    if (timestamps) {
        if (!PyCallable_Check(parse)) {
            PyErr_SetString(PyExc_TypeError,
                            "a plan with timestamp fields ('t') needs parse_timestamp, a callable "
                            "for the text that is not 'YYYY-MM-DD HH:MM:SS[.ffffff]'");
            goto fail;
        }
        self->parse = Py_NewRef(parse);
        PyObject *module = PyImport_ImportModule("datetime");
        if (module == NULL)
            goto fail;
        self->capsule = PyObject_GetAttrString(module, "datetime_CAPI");
        Py_DECREF(module);
        if (self->capsule == NULL)
            goto fail;
        self->dt_api = PyCapsule_GetPointer(self->capsule, PyDateTime_CAPSULE_NAME);
        if (self->dt_api == NULL)
            goto fail;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static int lookup_traverse(LookupObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (plan *p = self->plan; p != NULL; p = p->owner) {
        Py_VISIT(p->cls);
        Py_VISIT(p->names);
    }
    Py_VISIT(self->parse);
    Py_VISIT(self->capsule);
    return 0;
}

static int lookup_clear(LookupObject *self)
{
    plan *p = self->plan;
    self->plan = NULL;
    plan_free(p);
    Py_CLEAR(self->parse);
    self->dt_api = NULL;
    Py_CLEAR(self->capsule);
    return 0;
}

static void lookup_dealloc(LookupObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    lookup_clear(self);
    Py_CLEAR(self->sql);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *lookup_get_sql(LookupObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->sql);
}

static PyMethodDef lookup_methods[] = {
    {"first", (PyCFunction)(void (*)(void))lookup_first, METH_FASTCALL,
     "first(db_file, params)\n--\n\n"
     "The first row of the query on db_file (initialized first when needed, as\n"
     "get_session(db_file) does; None: the default database, as get_session())\n"
     "with the qmark params (a tuple), as the plan's record (a tuple of values\n"
     "without a plan), or None when there is no row."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef lookup_getset[] = {
    {"sql", (getter)lookup_get_sql, NULL, "The query.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot lookup_slots[] = {
    {Py_tp_new, lookup_new},
    {Py_tp_dealloc, lookup_dealloc},
    {Py_tp_traverse, lookup_traverse},
    {Py_tp_clear, lookup_clear},
    {Py_tp_methods, lookup_methods},
    {Py_tp_getset, lookup_getset},
    {Py_tp_doc, "Lookup(sql, plan=None, parse_timestamp=None)\n--\n\n"
                "One query whose first row is read without a Session and built into a\n"
                "record by `plan`: (cls, field names, kinds[, (attr, owner plan)]), kinds\n"
                "one letter per field: 'v' as stored, 'b' bool, 't' timestamp."},
    {0, NULL},
};

static PyType_Spec lookup_spec = {
    .name = "promptlab._core.Lookup",
    .basicsize = sizeof(LookupObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = lookup_slots,
};

int pl_lookup_register(PyObject *module, pl_state *st)
{
    (void)st;
    /* datetime.h's per-file PyDateTimeAPI is not used: each Lookup keeps the
     * API of the datetime module of its own interpreter (dt_api). */
    (void)PyDateTimeAPI;
    PyObject *type = PyType_FromModuleAndSpec(module, &lookup_spec, NULL);
    if (type == NULL)
        return -1;
    int rc = PyModule_AddType(module, (PyTypeObject *)type);
    Py_DECREF(type);
    return rc;
}
