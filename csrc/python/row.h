/* row.h: the Row type: one result row with attribute, key and index access. */
#ifndef PL_ROW_H
#define PL_ROW_H

#include "module.h"

typedef struct {
    PyObject_VAR_HEAD PyObject *fields; /* tuple of column names, shared by the rows of a result */
    PyObject *index;                    /* dict: column name -> position, shared */
    PyObject *values[1];                /* ob_size owned references */
} RowObject;

/* A row of `n` values, all NULL: the caller fills values[] with new references
 * before the row is used. `type` is the Row or the RowMapping type (same
 * layout). `fields` and `index` are borrowed (and kept). */
PyObject *pl_row_new(PyTypeObject *type, PyObject *fields, PyObject *index, Py_ssize_t n);

/* __reduce__ for Row and RowMapping: (promptlab._core._rebuild_row,
 * (is_mapping, fields, values)), so that rows pickle and copy.deepcopy works. */
PyObject *pl_row_reduce(RowObject *self, PyObject *unused);

/* _rebuild_row(is_mapping, fields, values): a Row or RowMapping again, for
 * pickle. Module-level (row.c exports it through pl_row_methods). */
extern PyMethodDef pl_row_module_methods[];

/* Shared with RowMapping (rowmapping.c), which has the same layout. */
void pl_row_dealloc(RowObject *self);
PyObject *pl_row_getattro(RowObject *self, PyObject *name);

/* The value of column `key` (borrowed), or NULL: with an exception set only
 * when the lookup itself failed (a key that is not a str is no column). */
PyObject *pl_row_lookup(RowObject *self, PyObject *key);

/* keys(): the column names as a new list. */
PyObject *pl_row_keys(RowObject *self, PyObject *unused);

/* A new dict of column name -> value, or NULL with an exception set. */
PyObject *pl_row_as_dict(RowObject *self);

int pl_row_register(PyObject *module, pl_state *st);

#endif
