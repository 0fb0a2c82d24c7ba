/* result.h: the Result type: the rows and counts of one execute() call. */
#ifndef PL_RESULT_H
#define PL_RESULT_H

#include "module.h"
#include "nest.h"
#include "rowbuf.h"

/* One value copied out of SQLite (rowbuf.h; text and blob bytes in `arena`)
 * as a Python object, new reference. Text that is not UTF-8 (written by
 * another program) is decoded with replacement characters rather than failing
 * the whole query. */
PyObject *pl_cell_value(const char *arena, const pl_cell *cell);

/* A Result filled chunk by chunk: statements are stepped in chunks
 * (rowbuf.h), and each chunk's Python rows are added here before the C copy
 * is emptied for the next one. All calls with the GIL held and no lock held;
 * each returns 0/the Result, or -1/NULL with an exception set. */
typedef struct {
    PyObject *result;         /* the Result being filled (owned) */
    PyObject *shape;          /* the rows' shape (row.h), once columns are set */
    PyTypeObject *row_type;   /* st->row_type or st->rowmapping_type */
    PyObject **parent_values; /* nested: the current parent's values, shared */
    int nparent;              /* nested: output columns (parent_values' length) */
    size_t current;           /* nested: the parent row they belong to */
} pl_result_builder;

/* Start an empty Result whose rows will be of `row_type`; `nparent` is the
 * number of output columns of a nested result (0 otherwise). */
int pl_result_builder_init(pl_state *st, pl_result_builder *b, PyTypeObject *row_type, int nparent);

/* Add the rows of a chunk. `sql` (may be NULL) is the statement's text, the
 * key under which its column names are cached. */
int pl_result_builder_add(pl_state *st, pl_result_builder *b, PyObject *sql, const pl_rowbuf *rb);

/* The same for a chunk of children joined by pl_nest_map_build(): one row per
 * child, with the columns named in `names` (UTF-8, as many as map->ncols). */
int pl_result_builder_add_nested(pl_state *st, pl_result_builder *b, PyObject *sql,
                                 const pl_rowbuf *parents, const pl_rowbuf *children,
                                 const pl_nest_map *map, const char *const *names);

/* The finished Result (new reference), with `names` as columns if no chunk
 * set them. `rowcount` is -1 for queries; `has_lastrowid` tells whether
 * lastrowid is meaningful. Clears the builder, also on error. */
PyObject *pl_result_builder_finish(pl_state *st, pl_result_builder *b, PyObject *sql,
                                   const char *const *names, int ncols, Py_ssize_t rowcount,
                                   long long lastrowid, int has_lastrowid);

/* Drop an unfinished builder (safe after finish or a failed init). */
void pl_result_builder_clear(pl_result_builder *b);

/* One call's statement, read chunk by chunk (session.c, session.h); the
 * iterators of execute_iter/execute_nested_iter own one. */
typedef struct pl_cursor pl_cursor;

/* A RowIterator over the rows of `cursor`, which it owns from now (freed here
 * on error). Returns a new reference or NULL with an exception set. */
PyObject *pl_result_iter_new(pl_state *st, pl_cursor *cursor);

/* For tests: the number of chunks added to Results since the last call. */
long pl_result_chunks_built(void);

int pl_result_register(PyObject *module, pl_state *st);

#endif
