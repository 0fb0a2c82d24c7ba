/* result.h: the Result type: the rows and counts of one execute() call. */
#ifndef PL_RESULT_H
#define PL_RESULT_H

#include "module.h"
#include "nest.h"
#include "rowbuf.h"

/* Build a Result from copied rows, each of `row_type` (st->row_type or
 * st->rowmapping_type). `sql` (may be NULL) is the statement's text, the key
 * under which its column names are cached. `rowcount` is -1 for queries;
 * `has_lastrowid` tells whether lastrowid is meaningful. GIL held, no lock held. */
PyObject *pl_result_new(pl_state *st, PyObject *sql, const pl_rowbuf *rb, Py_ssize_t rowcount,
                        long long lastrowid, int has_lastrowid, PyTypeObject *row_type);

/* The same for rows joined by pl_nest_map_build(): one row per child, with
 * the columns named in `names` (UTF-8, as many as map->ncols). */
PyObject *pl_result_new_nested(pl_state *st, PyObject *sql, const pl_rowbuf *parents,
                               const pl_rowbuf *children, const pl_nest_map *map,
                               const char *const *names, PyTypeObject *row_type);

int pl_result_register(PyObject *module, pl_state *st);

#endif
