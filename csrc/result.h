/* result.h: the Result type: the rows and counts of one execute() call. */
#ifndef PL_RESULT_H
#define PL_RESULT_H

#include "module.h"
#include "rowbuf.h"

/* Build a Result from copied rows, each of `row_type` (st->row_type or
 * st->rowmapping_type). `sql` (may be NULL) is the statement's text, the key
 * under which its column names are cached. `rowcount` is -1 for queries;
 * `has_lastrowid` tells whether lastrowid is meaningful. GIL held, no lock held. */
PyObject *pl_result_new(pl_state *st, PyObject *sql, const pl_rowbuf *rb, Py_ssize_t rowcount,
                        long long lastrowid, int has_lastrowid, PyTypeObject *row_type);

int pl_result_setup(PyObject *module, pl_state *st);

#endif
