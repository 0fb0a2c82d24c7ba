/* row.c: Row: row.column, row["column"], row[0], len(row), row._asdict(). */
#include "row.h"
#include "pyutil.h"

#include <stddef.h>
#include <string.h>

PyObject *pl_row_shape_new(PyObject *fields)
{
    PyObject *index = PyDict_New(), *shape = NULL;

    for (Py_ssize_t i = 0; index != NULL && i < PyTuple_GET_SIZE(fields); i++) {
        PyObject *name = PyTuple_GET_ITEM(fields, i), *pos;
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "column names are str");
            Py_CLEAR(index);
            break;
        }
        if (PyDict_GetItemWithError(index, name) != NULL)
            continue; /* the first column of a name wins */
        if (PyErr_Occurred()) {
            Py_CLEAR(index);
            break;
        }
        pos = PyLong_FromSsize_t(i);
        if (pos == NULL || PyDict_SetItem(index, name, pos) < 0)
            Py_CLEAR(index);
        Py_XDECREF(pos);
    }
    if (index != NULL)
        shape = PyTuple_Pack(2, fields, index);
    Py_XDECREF(index);
    return shape;
}

PyObject *pl_row_new(PyTypeObject *type, PyObject *shape, Py_ssize_t n)
{
    /* Not tp_alloc: PyType_GenericAlloc allocates one item more than asked
     * (a sentinel), 168 bytes for 16 columns, in the 176-byte class. */
    size_t size = offsetof(RowObject, values) + (size_t)n * sizeof(PyObject *);
    RowObject *row = PyObject_Malloc(size);
    if (row == NULL)
        return PyErr_NoMemory();
    PyObject_InitVar((PyVarObject *)row, type, n); /* a reference to the heap type */
    memset(row->values, 0, (size_t)n * sizeof(PyObject *));
    row->shape = Py_NewRef(shape);
    return (PyObject *)row;
}

void pl_row_dealloc(RowObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++)
        Py_XDECREF(self->values[i]);
    Py_XDECREF(self->shape);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static Py_ssize_t row_length(RowObject *self)
{
    return Py_SIZE(self);
}

static PyObject *row_item(RowObject *self, Py_ssize_t i)
{
    if (i < 0 || i >= Py_SIZE(self)) {
        PyErr_SetString(PyExc_IndexError, "row index out of range");
        return NULL;
    }
    return Py_NewRef(self->values[i]);
}

static PyObject *row_as_tuple(RowObject *self)
{
    PyObject *t = PyTuple_New(Py_SIZE(self));
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(self->values[i]));
    return t;
}

PyObject *pl_row_lookup(RowObject *self, PyObject *key)
{
    PyObject *pos;

    if (!PyUnicode_Check(key))
        return NULL;
    pos = PyDict_GetItemWithError(PL_ROW_INDEX(self), key);
    return pos != NULL ? self->values[PyLong_AsSsize_t(pos)] : NULL;
}

static PyObject *row_subscript(RowObject *self, PyObject *key)
{
    if (PyUnicode_Check(key)) {
        PyObject *value = pl_row_lookup(self, key);
        if (value == NULL && !PyErr_Occurred())
            PyErr_Format(PyExc_KeyError, "%R: no such column; the columns are %R", key,
                         PL_ROW_FIELDS(self));
        return Py_XNewRef(value);
    }
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += Py_SIZE(self);
        return row_item(self, i);
    }
    if (PySlice_Check(key)) {
        PyObject *t = row_as_tuple(self), *r;
        if (t == NULL)
            return NULL;
        r = PyObject_GetItem(t, key);
        Py_DECREF(t);
        return r;
    }
    PyErr_Format(PyExc_TypeError, "row indices must be int, str or slice, not %.100s",
                 Py_TYPE(key)->tp_name);
    return NULL;
}

PyObject *pl_row_getattro(RowObject *self, PyObject *name)
{
    /* Columns first: this is the hot path (asset.asset_name). */
    PyObject *value = pl_row_lookup(self, name);

    if (value != NULL)
        return Py_NewRef(value);
    if (PyErr_Occurred())
        return NULL;
    return PyObject_GenericGetAttr((PyObject *)self, name);
}

static int row_contains(RowObject *self, PyObject *value)
{
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++) {
        int eq = PyObject_RichCompareBool(self->values[i], value, Py_EQ);
        if (eq != 0)
            return eq;
    }
    return 0;
}

/* A start or stop argument of index(), as tuple.index reads it: an int (or
 * an object with __index__), clamped to the Py_ssize_t range. Returns 0, or
 * -1 with an exception set. */
static int slice_bound(PyObject *obj, Py_ssize_t *out)
{
    if (!PyIndex_Check(obj)) {
        PyErr_SetString(PyExc_TypeError,
                        "slice indices must be integers or have an __index__ method");
        return -1;
    }
    *out = PyNumber_AsSsize_t(obj, NULL); /* NULL: clamp instead of raising */
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* row.index(value, start=0, stop=sys.maxsize, /): as tuple.index. */
static PyObject *row_index(RowObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n = Py_SIZE(self), start = 0, stop = PY_SSIZE_T_MAX;

    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "index expected 1 to 3 arguments, got %zd", nargs);
        return NULL;
    }
    if ((nargs >= 2 && slice_bound(args[1], &start) < 0) ||
        (nargs >= 3 && slice_bound(args[2], &stop) < 0))
        return NULL;
    if (start < 0) {
        start += n;
        if (start < 0)
            start = 0;
    }
    if (stop < 0)
        stop += n;
    for (Py_ssize_t i = start; i < stop && i < n; i++) {
        int eq = PyObject_RichCompareBool(self->values[i], args[0], Py_EQ);
        if (eq > 0)
            return PyLong_FromSsize_t(i);
        if (eq < 0)
            return NULL;
    }
    PyErr_SetString(PyExc_ValueError, "row.index(x): x not in row");
    return NULL;
}

/* row.count(value): as tuple.count. */
static PyObject *row_count(RowObject *self, PyObject *value)
{
    Py_ssize_t count = 0;

    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++) {
        int eq = PyObject_RichCompareBool(self->values[i], value, Py_EQ);
        if (eq < 0)
            return NULL;
        count += eq;
    }
    return PyLong_FromSsize_t(count);
}

static PyObject *row_iter(RowObject *self)
{
    return pl_apply_new(row_as_tuple(self), PyObject_GetIter);
}

PyObject *pl_row_keys(RowObject *self, PyObject *unused)
{
    (void)unused;
    return PySequence_List(PL_ROW_FIELDS(self));
}

PyObject *pl_row_as_dict(RowObject *self)
{
    PyObject *d = PyDict_New();
    for (Py_ssize_t i = 0; d != NULL && i < Py_SIZE(self); i++)
        if (PyDict_SetItem(d, PyTuple_GET_ITEM(PL_ROW_FIELDS(self), i), self->values[i]) < 0)
            Py_CLEAR(d);
    return d;
}

static PyObject *row_asdict(RowObject *self, PyObject *unused)
{
    (void)unused;
    return pl_row_as_dict(self);
}

static PyObject *row_get_fields(RowObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(PL_ROW_FIELDS(self));
}

static PyObject *row_get_mapping(RowObject *self, void *closure)
{
    (void)closure;
    return row_asdict(self, NULL);
}

static PyObject *row_richcompare(RowObject *self, PyObject *other, int op)
{
    PyObject *theirs;

    if (Py_TYPE(other) == Py_TYPE(self))
        theirs = row_as_tuple((RowObject *)other);
    else if (PyTuple_Check(other))
        theirs = Py_NewRef(other);
    else
        Py_RETURN_NOTIMPLEMENTED;
    if (theirs == NULL)
        return NULL;
    return pl_compare_new(row_as_tuple(self), theirs, op);
}

static Py_hash_t row_hash(RowObject *self)
{
    PyObject *t = row_as_tuple(self);
    Py_hash_t h;
    if (t == NULL)
        return -1;
    h = PyObject_Hash(t);
    Py_DECREF(t);
    return h;
}

static PyObject *row_repr(RowObject *self)
{
    PyObject *parts = NULL, *sep = NULL, *joined = NULL, *result = NULL;
    Py_ssize_t n = Py_SIZE(self);

    if (Py_ReprEnter((PyObject *)self) != 0)
        return PyUnicode_FromString("Row(...)");
    parts = PyList_New(n);
    if (parts == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyUnicode_FromFormat("%U=%R", PyTuple_GET_ITEM(PL_ROW_FIELDS(self), i),
                                              self->values[i]);
        if (item == NULL)
            goto done;
        PyList_SET_ITEM(parts, i, item);
    }
    sep = PyUnicode_FromString(", ");
    if (sep == NULL)
        goto done;
    joined = PyUnicode_Join(sep, parts);
    if (joined == NULL)
        goto done;
    result = PyUnicode_FromFormat("Row(%U)", joined);
done:
    Py_XDECREF(parts);
    Py_XDECREF(sep);
    Py_XDECREF(joined);
    Py_ReprLeave((PyObject *)self);
    return result;
}

PyObject *pl_row_reduce(RowObject *self, PyObject *unused)
{
    pl_state *st = pl_state_of(Py_TYPE(self));
    PyObject *module = PyType_GetModule(Py_TYPE(self)), *rebuild, *values, *result;
    Py_ssize_t n = Py_SIZE(self);

    (void)unused;
    if (module == NULL)
        return NULL;
    rebuild = PyObject_GetAttrString(module, "_rebuild_row");
    if (rebuild == NULL)
        return NULL;
    values = PyTuple_New(n);
    if (values == NULL) {
        Py_DECREF(rebuild);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(values, i, Py_NewRef(self->values[i]));
    result = Py_BuildValue("(N(ONN))", rebuild,
                           Py_TYPE(self) == st->rowmapping_type ? Py_True : Py_False,
                           Py_NewRef(PL_ROW_FIELDS(self)), values);
    return result;
}

static PyObject *rebuild_row(PyObject *module, PyObject *args)
{
    pl_state *st = PyModule_GetState(module);
    PyObject *fields, *values, *shape;
    RowObject *row;
    int mapping;
    Py_ssize_t n;

    if (!PyArg_ParseTuple(args, "pO!O!:_rebuild_row", &mapping, &PyTuple_Type, &fields,
                          &PyTuple_Type, &values))
        return NULL;
    n = PyTuple_GET_SIZE(values);
    if (PyTuple_GET_SIZE(fields) != n) {
        PyErr_SetString(PyExc_ValueError, "_rebuild_row: as many fields as values, please");
        return NULL;
    }
    shape = pl_row_shape_new(fields);
    if (shape == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "_rebuild_row: field names are str");
        }
        return NULL;
    }
    row = (RowObject *)pl_row_new(mapping ? st->rowmapping_type : st->row_type, shape, n);
    Py_DECREF(shape);
    if (row == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        row->values[i] = Py_NewRef(PyTuple_GET_ITEM(values, i));
    return (PyObject *)row;
}

PyMethodDef pl_row_module_methods[] = {
    {"_rebuild_row", rebuild_row, METH_VARARGS,
     "_rebuild_row(is_mapping, fields, values)\n--\n\nA Row or RowMapping again (pickle)."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef row_methods[] = {
    {"__reduce__", (PyCFunction)pl_row_reduce, METH_NOARGS, "For pickle and copy."},
    {"keys", (PyCFunction)pl_row_keys, METH_NOARGS, "The column names, in order."},
    {"_asdict", (PyCFunction)row_asdict, METH_NOARGS, "A dict of column name -> value."},
    {"index", (PyCFunction)(void (*)(void))row_index, METH_FASTCALL,
     "index($self, value, start=0, stop=sys.maxsize, /)\n--\n\n"
     "The first position of value (between start and stop), as tuple.index;\n"
     "ValueError when it is not there."},
    {"count", (PyCFunction)row_count, METH_O,
     "count($self, value, /)\n--\n\nHow many values equal value, as tuple.count."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef row_getset[] = {
    {"_fields", (getter)row_get_fields, NULL, "The column names, as a tuple.", NULL},
    {"_mapping", (getter)row_get_mapping, NULL, "A dict of column name -> value.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot row_slots[] = {
    {Py_tp_dealloc, pl_row_dealloc},
    {Py_tp_getattro, pl_row_getattro},
    {Py_tp_iter, row_iter},
    {Py_tp_richcompare, row_richcompare},
    {Py_tp_hash, row_hash},
    {Py_tp_repr, row_repr},
    {Py_tp_methods, row_methods},
    {Py_tp_getset, row_getset},
    {Py_mp_length, row_length},
    {Py_mp_subscript, row_subscript},
    {Py_sq_length, row_length},
    {Py_sq_item, row_item},
    {Py_sq_contains, row_contains},
    {Py_tp_doc, "A result row: row.column, row['column'], row[0], len(row), row._asdict()."},
    {0, NULL},
};

static PyType_Spec row_spec = {
    .name = "promptlab.sqlite.Row",
    .basicsize = (int)offsetof(RowObject, values),
    .itemsize = (int)sizeof(PyObject *),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = row_slots,
};

int pl_row_register(PyObject *module, pl_state *st)
{
    if (pl_type_register(module, &row_spec, &st->row_type) < 0)
        return -1;
    return PyModule_AddFunctions(module, pl_row_module_methods);
}
