/* row.h: the Row type: one result row with attribute, key and index access. */
#ifndef PL_ROW_H
#define PL_ROW_H

#include "module.h"

/* One pointer of shape per row, not two (names and index): a row of 16
 * columns is 160 bytes, smaller than a tuple of 16 (168 with its GC header),
 * in pymalloc's 160-byte class rather than the 176-byte one. */
typedef struct {
    PyObject_VAR_HEAD PyObject *shape; /* (fields, index), shared by the rows of a result */
    PyObject *values[1];               /* ob_size owned references */
} RowObject;

/* A row's shape: a 2-tuple of the column names (a tuple of str) and a dict
 * name -> position (of the first column with that name). */
#define PL_ROW_FIELDS(row) PyTuple_GET_ITEM((row)->shape, 0)
#define PL_ROW_INDEX(row) PyTuple_GET_ITEM((row)->shape, 1)

/* A new shape for `fields` (a tuple of str), or NULL with an exception set. */
PyObject *pl_row_shape_new(PyObject *fields);

/* A row of `n` values, all NULL: the caller fills values[] with new references
 * before the row is used. `type` is the Row or the RowMapping type (same
 * layout). `shape` is borrowed (and kept). */
PyObject *pl_row_new(PyTypeObject *type, PyObject *shape, Py_ssize_t n);

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
