/* rowmapping.c: RowMapping, what Result.mappings() gives: a row as a read-only
 * mapping, as SQLAlchemy's RowMapping (which the original get_experiments()
 * returned): row["column"], iteration over the column names, `name in row`,
 * len(row), dict(row), keys()/values()/items()/get(), equality with a dict.
 * row.column works too. Same layout as Row (row.h). */
#include "rowmapping.h"
#include "pyutil.h"

#include <stddef.h>

PyObject *pl_rowmapping_from_row(pl_state *st, RowObject *row)
{
    Py_ssize_t n = Py_SIZE(row);
    RowObject *m = (RowObject *)pl_row_new(st->rowmapping_type, row->shape, n);

    if (m == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        m->values[i] = Py_NewRef(row->values[i]);
    return (PyObject *)m;
}

static PyObject *mapping_subscript(RowObject *self, PyObject *key)
{
    PyObject *value = pl_row_lookup(self, key);
    if (value != NULL)
        return Py_NewRef(value);
    if (!PyErr_Occurred())
        PyErr_SetObject(PyExc_KeyError, key);
    return NULL;
}

static int mapping_contains(RowObject *self, PyObject *key)
{
    if (pl_row_lookup(self, key) != NULL)
        return 1;
    return PyErr_Occurred() ? -1 : 0;
}

static Py_ssize_t mapping_length(RowObject *self)
{
    return Py_SIZE(self);
}

static PyObject *mapping_iter(RowObject *self)
{
    return PyObject_GetIter(PL_ROW_FIELDS(self));
}

static PyObject *mapping_values(RowObject *self, PyObject *unused)
{
    PyObject *list = PyList_New(Py_SIZE(self));
    (void)unused;
    for (Py_ssize_t i = 0; list != NULL && i < Py_SIZE(self); i++)
        PyList_SET_ITEM(list, i, Py_NewRef(self->values[i]));
    return list;
}

static PyObject *mapping_items(RowObject *self, PyObject *unused)
{
    PyObject *list = PyList_New(Py_SIZE(self));
    (void)unused;
    for (Py_ssize_t i = 0; list != NULL && i < Py_SIZE(self); i++) {
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(PL_ROW_FIELDS(self), i), self->values[i]);
        if (pair == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, pair);
    }
    return list;
}

static PyObject *mapping_get(RowObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *value;

    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get expected 1 or 2 arguments, got %zd", nargs);
        return NULL;
    }
    value = pl_row_lookup(self, args[0]);
    if (value != NULL)
        return Py_NewRef(value);
    if (PyErr_Occurred())
        return NULL;
    return Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

/* Equal to a dict or a RowMapping with the same items, as dict equality. */
static PyObject *mapping_richcompare(RowObject *self, PyObject *other, int op)
{
    PyObject *mine;

    if ((op != Py_EQ && op != Py_NE) || !(PyDict_Check(other) || Py_TYPE(other) == Py_TYPE(self)))
        Py_RETURN_NOTIMPLEMENTED;
    mine = pl_row_as_dict(self);
    if (mine == NULL)
        return NULL;
    return pl_compare_new(
        mine, PyDict_Check(other) ? Py_NewRef(other) : pl_row_as_dict((RowObject *)other), op);
}

static PyObject *mapping_repr(RowObject *self)
{
    return pl_apply_new(pl_row_as_dict(self), PyObject_Repr);
}

static PyMethodDef mapping_methods[] = {
    {"__reduce__", (PyCFunction)pl_row_reduce, METH_NOARGS, "For pickle and copy."},
    {"keys", (PyCFunction)pl_row_keys, METH_NOARGS, "The column names, in order."},
    {"values", (PyCFunction)mapping_values, METH_NOARGS, "The values, in column order."},
    {"items", (PyCFunction)mapping_items, METH_NOARGS, "(name, value) pairs, in order."},
    {"get", (PyCFunction)(void (*)(void))mapping_get, METH_FASTCALL,
     "get(name, default=None)\n--\n\nThe value of column `name`, or `default`."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot mapping_slots[] = {
    {Py_tp_dealloc, pl_row_dealloc},
    {Py_tp_getattro, pl_row_getattro},
    {Py_tp_iter, mapping_iter},
    {Py_tp_richcompare, mapping_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_repr, mapping_repr},
    {Py_tp_methods, mapping_methods},
    {Py_mp_length, mapping_length},
    {Py_mp_subscript, mapping_subscript},
    {Py_sq_contains, mapping_contains},
    {Py_tp_doc, "A result row as a read-only mapping: row['column'], iteration over the "
                "column names, dict(row), keys()/values()/items()/get()."},
    {0, NULL},
};

static PyType_Spec mapping_spec = {
    .name = "promptlab.sqlite.RowMapping",
    .basicsize = (int)offsetof(RowObject, values),
    .itemsize = (int)sizeof(PyObject *),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_MAPPING,
    .slots = mapping_slots,
};

int pl_rowmapping_register(PyObject *module, pl_state *st)
{
    return pl_type_register(module, &mapping_spec, &st->rowmapping_type);
}
