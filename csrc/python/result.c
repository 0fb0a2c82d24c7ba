/* result.c: Result: iteration, fetchone/fetchall/all/first/one/scalar. */
#include "result.h"
#include "row.h"
#include "session.h"
#include "rowmapping.h"
#include "pyutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

typedef struct {
    PyObject_HEAD PyObject *rows; /* list of Row */
    Py_ssize_t pos;               /* next row for iteration and fetchone */
    PyObject *columns;            /* tuple of names */
    Py_ssize_t rowcount;
    PyObject *lastrowid; /* int or None */
    /* all()/fetchall() of every row hands the list itself to the caller (no
     * copy: at 1M rows a copy is 8 MB more at the peak) and keeps an empty
     * one; `handed` rows were handed out so, the first of them is `first`. */
    Py_ssize_t handed;
    PyObject *first;
} ResultObject;

PyObject *pl_cell_value(const char *arena, const pl_cell *cell)
{
    switch (cell->type) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(cell->v.i);
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(cell->v.d);
    case SQLITE_TEXT: {
        const char *p = arena + cell->v.s.off;
        PyObject *s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)cell->v.s.len, NULL);
        if (s == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            /* Text written by another program need not be UTF-8: keep the
             * row readable rather than failing the whole query. */
            PyErr_Clear();
            s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)cell->v.s.len, "replace");
        }
        return s;
    }
    case SQLITE_BLOB:
        return PyBytes_FromStringAndSize(arena + cell->v.s.off, (Py_ssize_t)cell->v.s.len);
    default:
        return Py_NewRef(Py_None);
    }
}

/* True when two copied values are equal in type and bytes. */
static int same_cell(const pl_rowbuf *rb, const pl_cell *a, const pl_cell *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case SQLITE_NULL:
        return 1;
    case SQLITE_INTEGER:
        return a->v.i == b->v.i;
    case SQLITE_FLOAT:
        return 0; /* NaN and -0.0 make equality subtle; floats are cheap to build */
    default:
        /* rowbuf.c stores a value equal to the previous row's at the same offset. */
        return a->v.s.len == b->v.s.len &&
               (a->v.s.off == b->v.s.off || a->v.s.len == 0 ||
                memcmp(rb->arena + a->v.s.off, rb->arena + b->v.s.off, a->v.s.len) == 0);
    }
}

/* True when the cached field names are `names`, in order. */
static int names_match(PyObject *fields, const char *const *names, int ncols)
{
    if (PyTuple_GET_SIZE(fields) != ncols)
        return 0;
    for (int i = 0; i < ncols; i++) {
        const char *u = PyUnicode_AsUTF8(PyTuple_GET_ITEM(fields, i));
        if (u == NULL) {
            PyErr_Clear();
            return 0;
        }
        if (strcmp(u, names[i]) != 0)
            return 0;
    }
    return 1;
}

/* The row shape (row.h: field-name tuple and name -> position dict) for these
 * columns (new reference). Results of one SQL text share it: cached per text
 * in the module state (at most 256 texts), checked against the actual names
 * since a schema change can alter what "SELECT *" returns. Returns NULL with
 * an exception set on error. */
static PyObject *shape_for(pl_state *st, PyObject *sql, const char *const *names, int ncols)
{
    PyObject *fields = NULL, *shape = NULL;

    if (sql != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        if (PyDict_GetItemRef(st->columns_cache, sql, &shape) < 0)
            return NULL;
#else
        shape = Py_XNewRef(PyDict_GetItemWithError(st->columns_cache, sql));
        if (shape == NULL && PyErr_Occurred())
            return NULL;
#endif
        if (shape != NULL && names_match(PyTuple_GET_ITEM(shape, 0), names, ncols))
            return shape;
        Py_CLEAR(shape);
    }
    fields = PyTuple_New(ncols);
    if (fields == NULL)
        return NULL;
    for (int i = 0; i < ncols; i++) {
        PyObject *name = PyUnicode_DecodeUTF8(names[i], (Py_ssize_t)strlen(names[i]), "replace");
        if (name == NULL)
            goto fail;
        PyUnicode_InternInPlace(&name); /* attribute lookups compare by identity first */
        PyTuple_SET_ITEM(fields, i, name);
    }
    shape = pl_row_shape_new(fields);
    if (shape == NULL)
        goto fail;
    Py_CLEAR(fields);
    if (sql != NULL) {
        if (PyDict_GET_SIZE(st->columns_cache) >= 256)
            PyDict_Clear(st->columns_cache);
        if (PyDict_SetItem(st->columns_cache, sql, shape) < 0)
            goto fail;
    }
    return shape;
fail:
    Py_XDECREF(shape);
    Py_XDECREF(fields);
    return NULL;
}

/* An empty Result (no columns yet). */
static ResultObject *result_alloc(pl_state *st)
{
    ResultObject *res = (ResultObject *)st->result_type->tp_alloc(st->result_type, 0);
    if (res == NULL)
        return NULL;
    res->rowcount = -1;
    res->lastrowid = Py_NewRef(Py_None);
    res->rows = PyList_New(0);
    if (res->rows == NULL)
        Py_CLEAR(res);
    return res;
}

static _Atomic long chunks_built;

long pl_result_chunks_built(void)
{
    return atomic_exchange(&chunks_built, 0);
}

int pl_result_builder_init(pl_state *st, pl_result_builder *b, PyTypeObject *row_type, int nparent)
{
    memset(b, 0, sizeof *b);
    b->row_type = row_type;
    b->result = (PyObject *)result_alloc(st);
    if (b->result == NULL)
        return -1;
    if (nparent > 0) {
        b->nparent = nparent;
        b->parent_values = PyMem_Calloc((size_t)nparent, sizeof *b->parent_values);
        if (b->parent_values == NULL) {
            Py_CLEAR(b->result);
            PyErr_NoMemory();
            return -1;
        }
    }
    b->current = (size_t)-1;
    return 0;
}

/* Set the Result's columns once. */
static int builder_columns(pl_state *st, pl_result_builder *b, PyObject *sql,
                           const char *const *names, int ncols)
{
    ResultObject *res = (ResultObject *)b->result;
    if (res->columns != NULL)
        return 0;
    b->shape = shape_for(st, sql, names, ncols);
    if (b->shape == NULL)
        return -1;
    res->columns = Py_NewRef(PyTuple_GET_ITEM(b->shape, 0));
    return 0;
}

/* Make room for `n` more rows at the end of the list; returns the first new
 * index (the new slots hold None until set) or -1. */
static Py_ssize_t grow_rows(ResultObject *res, size_t n)
{
    PyObject *rows = res->rows;
    Py_ssize_t start = PyList_GET_SIZE(rows);
    PyObject *more = PyList_New((Py_ssize_t)n);
    if (more == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        PyList_SET_ITEM(more, (Py_ssize_t)i, Py_NewRef(Py_None));
    int rc = PyList_SetSlice(rows, start, start, more);
    Py_DECREF(more);
    return rc < 0 ? -1 : start;
}

int pl_result_builder_add(pl_state *st, pl_result_builder *b, PyObject *sql, const pl_rowbuf *rb)
{
    ResultObject *res = (ResultObject *)b->result;
    int ncols = rb->ncols < 0 ? 0 : rb->ncols;
    Py_ssize_t start;

    if (rb->nrows == 0)
        return 0;
    if (builder_columns(st, b, sql, (const char *const *)rb->names, ncols) < 0 ||
        (start = grow_rows(res, rb->nrows)) < 0)
        return -1;
    atomic_fetch_add(&chunks_built, 1);
    RowObject *prev = NULL;
    for (size_t r = 0; r < rb->nrows; r++) {
        RowObject *row = (RowObject *)pl_row_new(b->row_type, b->shape, ncols);
        if (row == NULL)
            return -1;
        Py_SETREF(PyList_GET_ITEM(res->rows, start + (Py_ssize_t)r), (PyObject *)row);
        const pl_cell *cells = rb->cells + r * (size_t)ncols;
        for (int c = 0; c < ncols; c++) {
            /* Joined rows repeat their parent's values (an experiment's model,
             * template, user for each of its results): share the object. */
            if (prev != NULL && same_cell(rb, &cells[c], &cells[c - ncols]))
                row->values[c] = Py_NewRef(prev->values[c]);
            else
                row->values[c] = pl_cell_value(rb->arena, &cells[c]);
            if (row->values[c] == NULL)
                return -1;
        }
        prev = row;
    }
    return 0;
}

int pl_result_builder_add_nested(pl_state *st, pl_result_builder *b, PyObject *sql,
                                 const pl_rowbuf *parents, const pl_rowbuf *children,
                                 const pl_nest_map *map, const char *const *names)
{
    ResultObject *res = (ResultObject *)b->result;
    int n = map->ncols;
    Py_ssize_t start;

    if (children->nrows == 0)
        return 0;
    if (builder_columns(st, b, sql, names, n) < 0 || (start = grow_rows(res, children->nrows)) < 0)
        return -1;
    atomic_fetch_add(&chunks_built, 1);
    for (size_t r = 0; r < children->nrows; r++) {
        if (map->parent_of[r] != b->current) {
            /* A new parent: its values, built once and shared by its children
             * (in this chunk and the next ones). */
            b->current = map->parent_of[r];
            const pl_cell *parent = parents->cells + b->current * (size_t)parents->ncols;
            for (int c = 0; c < n && c < b->nparent; c++) {
                if (map->source[c] > 0) {
                    Py_XSETREF(b->parent_values[c],
                               pl_cell_value(parents->arena, &parent[map->source[c]]));
                    if (b->parent_values[c] == NULL)
                        return -1;
                }
            }
        }
        RowObject *row = (RowObject *)pl_row_new(b->row_type, b->shape, n);
        if (row == NULL)
            return -1;
        Py_SETREF(PyList_GET_ITEM(res->rows, start + (Py_ssize_t)r), (PyObject *)row);
        const pl_cell *child = children->cells + r * (size_t)children->ncols;
        for (int c = 0; c < n; c++) {
            int from = map->source[c];
            row->values[c] = from > 0 ? Py_NewRef(b->parent_values[c])
                                      : pl_cell_value(children->arena, &child[-from]);
            if (row->values[c] == NULL)
                return -1;
        }
    }
    return 0;
}

PyObject *pl_result_builder_finish(pl_state *st, pl_result_builder *b, PyObject *sql,
                                   const char *const *names, int ncols, Py_ssize_t rowcount,
                                   long long lastrowid, int has_lastrowid)
{
    ResultObject *res = (ResultObject *)b->result;
    PyObject *out = NULL;

    if (builder_columns(st, b, sql, names, ncols < 0 ? 0 : ncols) < 0)
        goto done;
    res->rowcount = rowcount;
    if (has_lastrowid) {
        PyObject *id = PyLong_FromLongLong(lastrowid);
        if (id == NULL)
            goto done;
        Py_SETREF(res->lastrowid, id);
    }
    out = Py_NewRef(b->result);
done:
    pl_result_builder_clear(b);
    return out;
}

void pl_result_builder_clear(pl_result_builder *b)
{
    for (int c = 0; b->parent_values != NULL && c < b->nparent; c++)
        Py_XDECREF(b->parent_values[c]);
    PyMem_Free(b->parent_values);
    Py_XDECREF(b->shape);
    Py_XDECREF(b->result);
    memset(b, 0, sizeof *b);
}

static void result_dealloc(ResultObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_XDECREF(self->rows);
    Py_XDECREF(self->columns);
    Py_XDECREF(self->lastrowid);
    Py_XDECREF(self->first);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int result_traverse(ResultObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->rows);
    Py_VISIT(self->first);
    return 0;
}

/* The next unread row (new reference), or NULL without an exception at the end. */
static PyObject *next_row(ResultObject *self)
{
    PyObject *row = NULL;
#ifdef Py_BEGIN_CRITICAL_SECTION
    Py_BEGIN_CRITICAL_SECTION(self)
        ;
#endif
        if (self->pos < PyList_GET_SIZE(self->rows))
            row = Py_NewRef(PyList_GET_ITEM(self->rows, self->pos++));
#ifdef Py_END_CRITICAL_SECTION
    Py_END_CRITICAL_SECTION();
#endif
    return row;
}

/* The unread rows as a new list, marking them read. When none was read, the
 * list is the Result's own, handed over (an empty one takes its place). */
static PyObject *rest(ResultObject *self)
{
    PyObject *list = NULL, *empty = PyList_New(0);

    if (empty == NULL)
        return NULL;
#ifdef Py_BEGIN_CRITICAL_SECTION
    Py_BEGIN_CRITICAL_SECTION(self)
        ;
#endif
        Py_ssize_t n = PyList_GET_SIZE(self->rows);
        if (self->pos == 0 && n > 0) {
            if (self->handed == 0)
                self->first = Py_NewRef(PyList_GET_ITEM(self->rows, 0));
            self->handed += n;
            list = self->rows;
            self->rows = Py_NewRef(empty);
        } else {
            list = PyList_GetSlice(self->rows, self->pos, n);
            self->pos = n;
        }
#ifdef Py_END_CRITICAL_SECTION
    Py_END_CRITICAL_SECTION();
#endif
    Py_DECREF(empty);
    return list;
}

/* Every row, read or not: how many, and the first (borrowed, NULL when none). */
static Py_ssize_t row_total(ResultObject *self)
{
    return self->handed + PyList_GET_SIZE(self->rows);
}

static PyObject *first_row(ResultObject *self)
{
    if (self->first != NULL)
        return self->first;
    return PyList_GET_SIZE(self->rows) > 0 ? PyList_GET_ITEM(self->rows, 0) : NULL;
}

static PyObject *result_iternext(ResultObject *self)
{
    return next_row(self);
}

static PyObject *result_fetchone(ResultObject *self, PyObject *unused)
{
    PyObject *row = next_row(self);
    (void)unused;
    return row != NULL ? row : Py_NewRef(Py_None);
}

static PyObject *result_fetchall(ResultObject *self, PyObject *unused)
{
    (void)unused;
    return rest(self);
}

static PyObject *result_first(ResultObject *self, PyObject *unused)
{
    PyObject *row = first_row(self);
    (void)unused;
    return Py_NewRef(row != NULL ? row : Py_None);
}

static PyObject *result_one(ResultObject *self, PyObject *unused)
{
    Py_ssize_t n = row_total(self);
    (void)unused;
    if (n != 1) {
        pl_raise_kind(pl_state_of(Py_TYPE(self)), PL_E_PROGRAMMING, NULL,
                      "one() expected exactly one row, the query returned %zd", n);
        return NULL;
    }
    return Py_NewRef(first_row(self));
}

static PyObject *result_scalar(ResultObject *self, PyObject *unused)
{
    RowObject *row = (RowObject *)first_row(self);
    (void)unused;
    if (row == NULL || Py_SIZE(row) == 0)
        Py_RETURN_NONE;
    return Py_NewRef(row->values[0]);
}

/* A new Result whose rows are the unread rows as RowMappings; they count as
 * read here (as SQLAlchemy's Result.mappings() consumes its result). */
static PyObject *result_mappings(ResultObject *self, PyObject *unused)
{
    pl_state *st = pl_state_of(Py_TYPE(self));
    PyObject *rows = rest(self);
    ResultObject *res;
    (void)unused;

    if (rows == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *m = pl_rowmapping_from_row(st, (RowObject *)PyList_GET_ITEM(rows, i));
        if (m == NULL) {
            Py_DECREF(rows);
            return NULL;
        }
        Py_SETREF(PyList_GET_ITEM(rows, i), m);
    }
    res = (ResultObject *)st->result_type->tp_alloc(st->result_type, 0);
    if (res == NULL) {
        Py_DECREF(rows);
        return NULL;
    }
    res->rows = rows;
    res->columns = Py_NewRef(self->columns);
    res->rowcount = self->rowcount;
    res->lastrowid = Py_NewRef(self->lastrowid);
    return (PyObject *)res;
}

static Py_ssize_t result_length(ResultObject *self)
{
    return row_total(self);
}

static PyObject *result_get_rowcount(ResultObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->rowcount);
}

static PyObject *result_get_lastrowid(ResultObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->lastrowid);
}

static PyObject *result_get_columns(ResultObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->columns);
}

static PyMethodDef result_methods[] = {
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS,
     "Result[Row], Result[RowMapping]: a generic alias for annotations (PEP 585)."},
    {"fetchone", (PyCFunction)result_fetchone, METH_NOARGS, "The next row, or None."},
    {"fetchall", (PyCFunction)result_fetchall, METH_NOARGS, "The rows not read yet."},
    {"all", (PyCFunction)result_fetchall, METH_NOARGS, "The rows not read yet."},
    {"first", (PyCFunction)result_first, METH_NOARGS, "The first row, or None."},
    {"one", (PyCFunction)result_one, METH_NOARGS,
     "The only row; ProgrammingError when there are none or several."},
    {"scalar", (PyCFunction)result_scalar, METH_NOARGS,
     "The first column of the first row, or None."},
    {"mappings", (PyCFunction)result_mappings, METH_NOARGS,
     "The unread rows as RowMappings (row['column'], dict(row)), in a new Result."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef result_getset[] = {
    {"rowcount", (getter)result_get_rowcount, NULL,
     "Rows changed by INSERT/UPDATE/DELETE (summed by executemany); -1 for a query.", NULL},
    {"lastrowid", (getter)result_get_lastrowid, NULL,
     "The rowid of the last row inserted by this call, or None.", NULL},
    {"columns", (getter)result_get_columns, NULL, "The column names.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot result_slots[] = {
    {Py_tp_dealloc, result_dealloc},
    {Py_tp_traverse, result_traverse},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, result_iternext},
    {Py_tp_methods, result_methods},
    {Py_tp_getset, result_getset},
    {Py_sq_length, result_length},
    {Py_tp_doc, "The rows and counts of one Session.execute() call."},
    {0, NULL},
};

static PyType_Spec result_spec = {
    .name = "promptlab.sqlite.Result",
    .basicsize = sizeof(ResultObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = result_slots,
};

/* RowIterator: what execute_iter and execute_nested_iter return. It holds
 * their cursor and the Python rows of one chunk at a time (in the cursor's
 * builder), so memory stays bounded however many rows the query returns. */
typedef struct {
    PyObject_HEAD pl_cursor *cursor; /* NULL once exhausted or closed */
    Py_ssize_t pos;                  /* the next row in the current chunk */
    pthread_t owner;                 /* the thread that opened it */
    atomic_int busy;                 /* a next() or close() is running */
} RowIterObject;

PyObject *pl_result_iter_new(pl_state *st, pl_cursor *cursor)
{
    RowIterObject *it = (RowIterObject *)st->rowiter_type->tp_alloc(st->rowiter_type, 0);
    if (it == NULL) {
        pl_cursor_free(cursor);
        return NULL;
    }
    it->cursor = cursor;
    it->owner = pthread_self();
    atomic_init(&it->busy, 0);
    return (PyObject *)it;
}

/* Mark the iterator in use, or raise ProgrammingError: a call from another
 * thread while one runs (next() releases the GIL while it steps). */
static int iter_enter(RowIterObject *self)
{
    int idle = 0;
    if (atomic_compare_exchange_strong(&self->busy, &idle, 1))
        return 0;
    pl_raise_kind(pl_state_of(Py_TYPE(self)), PL_E_PROGRAMMING, NULL,
                  "this iterator is in use by another call; read it from one thread");
    return -1;
}

static void iter_leave(RowIterObject *self)
{
    atomic_store(&self->busy, 0);
}

static void iter_drop(RowIterObject *self)
{
    pl_cursor *c = self->cursor;
    self->cursor = NULL;
    pl_cursor_free(c);
}

static PyObject *rowiter_next(RowIterObject *self)
{
    PyObject *row = NULL;

    if (self->cursor == NULL)
        return NULL;
    if (!pthread_equal(self->owner, pthread_self())) {
        pl_raise_kind(pl_state_of(Py_TYPE(self)), PL_E_PROGRAMMING, NULL,
                      "this iterator was opened on another thread; read its rows on that "
                      "thread, or open a session and an iterator on this one.");
        return NULL;
    }
    if (iter_enter(self) < 0)
        return NULL;
    while (self->cursor != NULL) {
        PyObject *rows = ((ResultObject *)pl_cursor_builder(self->cursor)->result)->rows;
        Py_ssize_t n = PyList_GET_SIZE(rows);
        if (self->pos < n) {
            row = Py_NewRef(PyList_GET_ITEM(rows, self->pos++));
            break;
        }
        /* The chunk is read: drop it, read the next one. */
        if (n > 0 && PyList_SetSlice(rows, 0, n, NULL) < 0)
            break;
        self->pos = 0;
        int rc = pl_cursor_chunk(self->cursor);
        if (rc < 0 || (rc == 0 && PyList_GET_SIZE(rows) == 0))
            iter_drop(self); /* an error (raised) or the end */
    }
    iter_leave(self);
    return row;
}

static PyObject *rowiter_close(RowIterObject *self, PyObject *unused)
{
    (void)unused;
    if (iter_enter(self) < 0)
        return NULL;
    iter_drop(self);
    iter_leave(self);
    Py_RETURN_NONE;
}

static PyObject *rowiter_enter(RowIterObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *rowiter_exit(RowIterObject *self, PyObject *args)
{
    (void)args;
    PyObject *r = rowiter_close(self, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static void rowiter_dealloc(RowIterObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    iter_drop(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef rowiter_methods[] = {
    {"close", (PyCFunction)rowiter_close, METH_NOARGS,
     "close()\n--\n\nEnd the query now and release the session (as exhausting the "
     "iterator does); the iterator then yields nothing more."},
    {"__enter__", (PyCFunction)rowiter_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)rowiter_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot rowiter_slots[] = {
    {Py_tp_dealloc, rowiter_dealloc},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, rowiter_next},
    {Py_tp_methods, rowiter_methods},
    {Py_tp_doc, "The rows of Session.execute_iter()/execute_nested_iter(), a chunk at a time; "
                "close() (or a with block) ends the query early."},
    {0, NULL},
};

static PyType_Spec rowiter_spec = {
    .name = "promptlab.sqlite.RowIterator",
    .basicsize = sizeof(RowIterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = rowiter_slots,
};

int pl_result_register(PyObject *module, pl_state *st)
{
    if (pl_type_register(module, &result_spec, &st->result_type) < 0)
        return -1;
    return pl_type_register(module, &rowiter_spec, &st->rowiter_type);
}
