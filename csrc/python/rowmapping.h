/* rowmapping.h: RowMapping: a result row as a read-only mapping, column -> value. */
#ifndef PL_ROWMAPPING_H
#define PL_ROWMAPPING_H

#include "module.h"
#include "row.h"

/* A RowMapping holding the same fields and values as `row` (new reference). */
PyObject *pl_rowmapping_from_row(pl_state *st, RowObject *row);

int pl_rowmapping_register(PyObject *module, pl_state *st);

#endif
