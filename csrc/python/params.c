/* params.c: parameter conversion (with the GIL) and binding (without it). */
#include "params.h"
#include "compat.h"
#include "pyutil.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

static int keep(pl_batch *b, PyObject *obj)
{
    if (b->nkeep == b->capkeep) {
        Py_ssize_t cap = b->capkeep ? b->capkeep * 2 : 16;
        PyObject **k = PyMem_Realloc(b->keep, (size_t)cap * sizeof *k);
        if (k == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->keep = k;
        b->capkeep = cap;
    }
    b->keep[b->nkeep++] = Py_NewRef(obj);
    return 0;
}

static pl_param *next_param(pl_batch *b)
{
    if (b->nparams == b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 16;
        pl_param *p = PyMem_Realloc(b->params, (size_t)cap * sizeof *p);
        if (p == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        b->params = p;
        b->cap = cap;
    }
    pl_param *p = &b->params[b->nparams++];
    memset(p, 0, sizeof *p);
    return p;
}

/* Text and blobs point into Python objects that must outlive the batch: the
 * batch keeps a reference to `str` unless `need_keep` is 0 (the object is
 * already kept alive through its row, an immutable tuple the batch holds). */
static int set_text(pl_batch *b, pl_param *p, PyObject *str, int need_keep)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(str, &n);
    if (s == NULL)
        return -1;
    if (need_keep && keep(b, str) < 0)
        return -1;
    p->type = SQLITE_TEXT;
    p->v.s.p = s;
    p->v.s.n = n;
    return 0;
}

static int set_blob(pl_batch *b, pl_param *p, PyObject *bytes, int need_keep)
{
    if (need_keep && keep(b, bytes) < 0)
        return -1;
    p->type = SQLITE_BLOB;
    p->v.s.p = PyBytes_AS_STRING(bytes);
    p->v.s.n = PyBytes_GET_SIZE(bytes);
    return 0;
}

/* json.dumps(v, allow_nan=False): a new reference, or NULL with an exception. */
static PyObject *dumps_strict(PyObject *dumps, PyObject *v)
{
    PyObject *args = PyTuple_Pack(1, v), *kwargs = Py_BuildValue("{s:O}", "allow_nan", Py_False);
    PyObject *text = NULL;

    if (args != NULL && kwargs != NULL)
        text = PyObject_Call(dumps, args, kwargs);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return text;
}

/* A copy of the dicts and lists in `v` with every NaN or infinite float
 * replaced by None; other values are shared. New reference, or NULL. */
static PyObject *finite_copy(PyObject *v)
{
    PyObject *out = NULL;

    if (PyFloat_Check(v))
        return Py_NewRef(isfinite(PyFloat_AS_DOUBLE(v)) ? v : Py_None);
    if (!PyDict_Check(v) && !PyList_Check(v))
        return Py_NewRef(v);
    if (Py_EnterRecursiveCall(" while storing a value as JSON"))
        return NULL;
    if (PyList_Check(v)) {
        Py_ssize_t n = PyList_GET_SIZE(v);
        out = PyList_New(n);
        for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
            PyObject *item = finite_copy(PyList_GET_ITEM(v, i));
            if (item == NULL)
                Py_CLEAR(out);
            else
                PyList_SET_ITEM(out, i, item);
        }
    } else {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        out = PyDict_New();
        while (out != NULL && PyDict_Next(v, &pos, &key, &value)) {
            PyObject *item = finite_copy(value);
            if (item == NULL || PyDict_SetItem(out, key, item) < 0)
                Py_CLEAR(out);
            Py_XDECREF(item);
        }
    }
    Py_LeaveRecursiveCall();
    return out;
}

/* JSON text of a dict or list. JSON has no NaN or Infinity (json.dumps would
 * write bare words that SQLite's JSON functions reject, so the whole value
 * would drop out of averages): such numbers are stored as null, which
 * averages skip. New reference, or NULL with an exception. */
static PyObject *json_text(PyObject *dumps, PyObject *v)
{
    PyObject *text = dumps_strict(dumps, v), *finite;

    if (text != NULL || !PyErr_ExceptionMatches(PyExc_ValueError))
        return text;
    PyErr_Clear(); /* "Out of range float values are not JSON compliant" */
    finite = finite_copy(v);
    if (finite == NULL)
        return NULL;
    text = dumps_strict(dumps, finite);
    Py_DECREF(finite);
    return text;
}

/* set(b, p, obj) for a new reference `obj` made by the caller (NULL when
 * making it failed, with an exception set), which this releases: `set`
 * (set_text or set_blob) keeps what it needs. */
static int set_new(int (*set)(pl_batch *, pl_param *, PyObject *, int), pl_batch *b, pl_param *p,
                   PyObject *obj)
{
    int rc;

    if (obj == NULL)
        return -1;
    rc = set(b, p, obj, 1);
    Py_DECREF(obj);
    return rc;
}

/* An int: SQLite's 64 bits, or a ProgrammingError. */
static int convert_int(pl_state *st, pl_batch *b, pl_param *p, PyObject *v, Py_ssize_t index)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);

    if (overflow != 0) {
        pl_raise_kind(st, PL_E_PROGRAMMING, b->path,
                      "parameter %zd: the integer %R does not fit in SQLite's 64 bits; "
                      "store it as text.",
                      index, v);
        return -1;
    }
    if (x == -1 && PyErr_Occurred())
        return -1;
    p->type = SQLITE_INTEGER;
    p->v.i = x;
    return 0;
}

/* A float: NaN is refused, since SQLite would store NULL without a word. */
static int convert_float(pl_state *st, pl_batch *b, pl_param *p, PyObject *v, Py_ssize_t index)
{
    p->type = SQLITE_FLOAT;
    p->v.d = PyFloat_AS_DOUBLE(v);
    if (isnan(p->v.d)) {
        pl_raise_kind(st, PL_E_PROGRAMMING, b->path,
                      "parameter %zd (parameter set %zd) is NaN, which SQLite cannot store "
                      "(it would become NULL); pass None, or a number.",
                      index, b->base + b->nrows + 1);
        return -1;
    }
    return 0;
}

/* A str, as UTF-8; text with a lone surrogate is a ProgrammingError. */
static int convert_str(pl_state *st, pl_batch *b, pl_param *p, PyObject *v, Py_ssize_t index,
                       int kept)
{
    if (set_text(b, p, v, !kept) == 0)
        return 0;
    if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
        PyErr_Clear(); /* a lone surrogate: not UTF-8 */
        pl_raise_kind(st, PL_E_PROGRAMMING, b->path,
                      "parameter %zd (parameter set %zd) is text that cannot be stored as "
                      "UTF-8 (it holds a lone surrogate, such as '\\ud800'); fix or drop "
                      "that character.",
                      index, b->base + b->nrows + 1);
    }
    return -1;
}

/* A dict or list as JSON text, as json.dumps() writes it: the columns
 * PromptLab keeps structured data in (model, asset, evaluation) hold JSON.
 * Strict JSON: NaN or Infinity would be written as bare words that SQLite's
 * JSON functions reject, and the value would drop out of averages. A value
 * json cannot encode is a ProgrammingError quoting json's reason. */
static int convert_json(pl_state *st, pl_batch *b, pl_param *p, PyObject *v, Py_ssize_t index)
{
    PyObject *text;

    if (b->json_dumps == NULL && (b->json_dumps = pl_import_attr("json", "dumps")) == NULL)
        return -1;
    text = json_text(b->json_dumps, v);
    if (text == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(PyExc_TypeError) ||
            PyErr_ExceptionMatches(PyExc_RecursionError)) {
            PyObject *why = pl_exc_take();
            pl_raise_kind(st, PL_E_PROGRAMMING, b->path,
                          "parameter %zd (parameter set %zd, a %s) cannot be stored as "
                          "JSON: %S.",
                          index, b->base + b->nrows + 1, Py_TYPE(v)->tp_name, why ? why : Py_None);
            Py_XDECREF(why);
        }
        return -1;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "json.dumps() returned %.100s, not str",
                     Py_TYPE(text)->tp_name);
        Py_DECREF(text);
        return -1;
    }
    return set_new(set_text, b, p, text);
}

/* A type SQLite cannot store: reported when bound (where the parameter's
 * name is known); the type's name is copied, since binding runs without the
 * GIL. */
static int convert_unsupported(pl_batch *b, pl_param *p, PyObject *v)
{
    PyObject *name = PyBytes_FromString(Py_TYPE(v)->tp_name);
    int rc;

    if (name == NULL)
        return -1;
    rc = keep(b, name);
    Py_DECREF(name);
    if (rc < 0)
        return -1;
    p->type = PL_PARAM_UNSUPPORTED;
    p->v.s.p = PyBytes_AS_STRING(name);
    return 0;
}

/* datetime.date, imported on the first parameter of a type that is not one
 * of the common ones: most programs never bind a date, and importing datetime
 * at start-up costs a script about a millisecond (issue 16). Set once, by
 * compare-and-swap: without a GIL two threads may import it together.
 * Borrowed reference (the module state owns it), or NULL with an exception. */
static PyObject *date_type(pl_state *st)
{
    PyObject *known = __atomic_load_n(&st->date_type, __ATOMIC_ACQUIRE), *made;

    if (known != NULL)
        return known;
    made = pl_import_attr("datetime", "date");
    if (made == NULL)
        return NULL;
    if (!__atomic_compare_exchange_n(&st->date_type, &known, made, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        Py_DECREF(made); /* another thread's is kept; `known` is it */
        return known;
    }
    return made;
}

/* Convert one value. Returns 0, or -1 with an exception set. */
static int convert_value(pl_state *st, pl_batch *b, pl_param *p, PyObject *v, Py_ssize_t index,
                         int kept)
{
    if (v == Py_None) {
        p->type = SQLITE_NULL;
        return 0;
    }
    if (PyLong_Check(v))
        return convert_int(st, b, p, v, index);
    if (PyFloat_Check(v))
        return convert_float(st, b, p, v, index);
    if (PyUnicode_Check(v))
        return convert_str(st, b, p, v, index, kept);
    if (PyBytes_Check(v))
        return set_blob(b, p, v, !kept);
    if (PyByteArray_Check(v) || PyMemoryView_Check(v))
        return set_new(set_blob, b, p, PyBytes_FromObject(v));
    if (PyDict_Check(v) || PyList_Check(v))
        return convert_json(st, b, p, v, index);
    /* str() of a datetime is "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]", the form
     * SQLAlchemy stored and SQLite's date functions read. */
    PyObject *date = date_type(st);
    if (date == NULL)
        return -1;
    if (PyObject_TypeCheck(v, (PyTypeObject *)date))
        return set_new(set_text, b, p, PyObject_Str(v));
    return convert_unsupported(b, p, v);
}

static int add_row_start(pl_batch *b)
{
    if (b->nrows + 2 > b->rows_cap) {
        Py_ssize_t cap = b->rows_cap ? b->rows_cap * 2 : 8;
        Py_ssize_t *o = PyMem_Realloc(b->offsets, (size_t)cap * sizeof *o);
        if (o == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->offsets = o;
        b->rows_cap = cap;
    }
    b->offsets[b->nrows] = b->nparams;
    return 0;
}

/* Values of a mapping row, looked up by the statement's parameter names (the
 * first mapping row asks the session for them) and stored positionally: keys
 * the statement does not name are never read. */
static int add_mapping_row(pl_state *st, pl_batch *b, PyObject *row)
{
    if (b->names == NULL) {
        b->names = b->describe(b->describe_ctx);
        if (b->names == NULL)
            return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(b->names);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyTuple_GET_ITEM(b->names, i), *value;
        int rc;

        if (key == Py_None) {
            pl_raise_kind(st, PL_E_PROGRAMMING, b->path,
                          "the statement uses positional '?' parameters; pass a sequence of "
                          "values, not a mapping.");
            return -1;
        }
        if (PyDict_CheckExact(row)) {
#if PY_VERSION_HEX >= 0x030D0000
            if (PyDict_GetItemRef(row, key, &value) < 0)
                return -1;
#else
            value = Py_XNewRef(PyDict_GetItemWithError(row, key));
#endif
        } else {
            value = PyObject_GetItem(row, key);
            if (value == NULL && PyErr_ExceptionMatches(PyExc_KeyError))
                PyErr_Clear();
        }
        if (value == NULL) {
            if (!PyErr_Occurred())
                pl_raise_kind(st, PL_E_PROGRAMMING, b->path,
                              "no value for the named parameter :%U (parameter set %zd); "
                              "add the key '%U' to the mapping.",
                              key, b->base + b->nrows + 1, key);
            return -1;
        }
        pl_param *p = next_param(b);
        rc = p == NULL ? -1 : convert_value(st, b, p, value, i + 1, 0);
        Py_DECREF(value);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int add_sequence_row(pl_state *st, pl_batch *b, PyObject *row)
{
    PyObject *seq;
    int rc = -1;

    /* A tuple cannot change: keeping it keeps its items alive, one reference
     * per row instead of one per value. A list is copied into a tuple first:
     * converting a value can run Python code (str() of a datetime subclass,
     * json.dumps) that could change the list under us. */
    if (PyTuple_Check(row))
        seq = Py_NewRef(row);
    else if (PyList_Check(row))
        seq = PyList_AsTuple(row);
    else
        seq = PySequence_Tuple(row);
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "parameters must be a sequence or a mapping");
        }
        return -1;
    }
    if (keep(b, seq) < 0)
        goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        pl_param *p = next_param(b);
        if (p == NULL || convert_value(st, b, p, PyTuple_GET_ITEM(seq, i), i + 1, 1) < 0)
            goto done;
    }
    rc = 0;
done:
    Py_DECREF(seq);
    return rc;
}

static int add_row(pl_state *st, pl_batch *b, PyObject *row)
{
    int rc;

    if (add_row_start(b) < 0)
        return -1;
    if (row == Py_None)
        rc = 0;
    else if (PyDict_Check(row) || (!PyTuple_Check(row) && !PyList_Check(row) &&
                                   PyMapping_Check(row) && PyObject_HasAttrString(row, "keys")))
        rc = add_mapping_row(st, b, row);
    else if (PyUnicode_Check(row) || PyBytes_Check(row)) {
        PyErr_SetString(PyExc_TypeError,
                        "parameters must be a sequence or a mapping, not a string; "
                        "wrap a single value as (value,)");
        rc = -1;
    } else
        rc = add_sequence_row(st, b, row);
    if (rc == 0) {
        b->nrows++;
        b->offsets[b->nrows] = b->nparams;
    }
    return rc;
}

static _Atomic Py_ssize_t chunk_rows = PL_BATCH_CHUNK_ROWS;

Py_ssize_t pl_batch_set_chunk_rows(Py_ssize_t n)
{
    return atomic_exchange(&chunk_rows, n >= 1 ? n : 1);
}

/* Convert parameter sets from b->iter until the chunk is full or the
 * iterator ends (then b->iter is dropped and b->more cleared). */
static int fill_chunk(pl_state *st, pl_batch *b)
{
    Py_ssize_t limit = atomic_load(&chunk_rows);
    PyObject *row;

    while (b->nrows < limit && (row = PyIter_Next(b->iter)) != NULL) {
        int rc = add_row(st, b, row);
        Py_DECREF(row);
        if (rc < 0)
            return -1;
    }
    if (PyErr_Occurred())
        return -1;
    if (b->nrows < limit) {
        Py_CLEAR(b->iter);
        b->more = 0;
    }
    if (b->offsets == NULL && add_row_start(b) < 0) /* zero rows: keep offsets[0] valid */
        return -1;
    return 0;
}

int pl_batch_build(pl_state *st, pl_batch *b, PyObject *params, int many, const char *path,
                   pl_describe_fn describe, void *describe_ctx)
{
    memset(b, 0, sizeof *b);
    b->path = path;
    b->describe = describe;
    b->describe_ctx = describe_ctx;
    if (!many) {
        if (add_row(st, b, params) < 0)
            goto fail;
        return 0;
    }
    b->iter = PyObject_GetIter(params);
    if (b->iter == NULL)
        goto fail;
    b->more = 1;
    if (fill_chunk(st, b) < 0)
        goto fail;
    return 0;
fail:
    pl_batch_release(b);
    return -1;
}

/* Drop the converted values, keeping what later chunks reuse. */
static void release_values(pl_batch *b)
{
    for (Py_ssize_t i = 0; i < b->nkeep; i++)
        Py_DECREF(b->keep[i]);
    b->nkeep = 0;
    b->nparams = 0;
    b->base += b->nrows;
    b->nrows = 0;
}

int pl_batch_next(pl_state *st, pl_batch *b)
{
    release_values(b);
    if (fill_chunk(st, b) < 0) {
        pl_batch_release(b);
        return -1;
    }
    return 0;
}

void pl_batch_release(pl_batch *b)
{
    Py_CLEAR(b->iter);
    Py_CLEAR(b->json_dumps);
    Py_CLEAR(b->names);
    for (Py_ssize_t i = 0; i < b->nkeep; i++)
        Py_DECREF(b->keep[i]);
    PyMem_Free(b->keep);
    PyMem_Free(b->params);
    PyMem_Free(b->offsets);
    memset(b, 0, sizeof *b);
}

/* Bind one converted value at 1-based position i. */
static int bind_one(sqlite3_stmt *stmt, int i, const pl_param *p, const char *path, pl_err *err)
{
    int rc;

    switch (p->type) {
    case SQLITE_NULL:
        rc = sqlite3_bind_null(stmt, i);
        break;
    case SQLITE_INTEGER:
        rc = sqlite3_bind_int64(stmt, i, p->v.i);
        break;
    case SQLITE_FLOAT:
        rc = sqlite3_bind_double(stmt, i, p->v.d);
        break;
    case SQLITE_TEXT:
        rc = sqlite3_bind_text64(stmt, i, p->v.s.p, (sqlite3_uint64)p->v.s.n, SQLITE_STATIC,
                                 SQLITE_UTF8);
        break;
    case SQLITE_BLOB:
        rc = sqlite3_bind_blob64(stmt, i, p->v.s.p, (sqlite3_uint64)p->v.s.n, SQLITE_STATIC);
        break;
    default: {
        const char *name = sqlite3_bind_parameter_name(stmt, i);
        char what[64];
        if (name != NULL)
            snprintf(what, sizeof what, "%.50s", name);
        else
            snprintf(what, sizeof what, "%d", i);
        return pl_err_set(err, PL_E_PROGRAMMING, path,
                          "parameter %s has type '%s', which SQLite cannot store; pass None, "
                          "int, float, str, bytes, a datetime, or a dict or list (stored as "
                          "JSON text).",
                          what, p->v.s.p);
    }
    }
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, rc, sqlite3_db_handle(stmt), path, "binding a parameter");
    return 0;
}

int pl_batch_bind(const pl_batch *b, Py_ssize_t row, sqlite3_stmt *stmt, const char *path,
                  pl_err *err)
{
    const pl_param *p = b->params + b->offsets[row];
    Py_ssize_t k = b->offsets[row + 1] - b->offsets[row];
    int n = sqlite3_bind_parameter_count(stmt);

    if (k != n)
        return pl_err_set(err, PL_E_PROGRAMMING, path,
                          "the statement has %d parameter(s) but %zd value(s) were given.", n, k);
    for (int i = 0; i < n; i++)
        if (bind_one(stmt, i + 1, &p[i], path, err) < 0)
            return -1;
    return 0;
}
