/* nest.h: joining child rows to their parent rows in C, after both queries ran.
 *
 * A one-to-many join written as one SELECT makes SQLite read every parent
 * column again for each child row (get_experiments: 10 of 16 columns). Run as
 * two queries instead (parents; children in the same parent order), the rows
 * are matched here, in one pass, without the GIL: the map says, for each output
 * column, which parent or child column it takes, and for each child row, which
 * parent row is its own. result.c then builds the Python rows from the two
 * buffers through the map, each parent value once, shared by its children.
 */
#ifndef PL_NEST_H
#define PL_NEST_H

#include "rowbuf.h"

typedef struct {
    int ncols;         /* output columns */
    int *source;       /* per output column: parent column i as i, child column i as -i */
    size_t *parent_of; /* per child row: the row of its parent (never decreasing) */
} pl_nest_map;

/* Match `children` to `parents`. Column 0 of both is the join key (an
 * integer); children must come grouped by parent, in the parents' order; a
 * parent without children gives no row. The `n` output columns are named in
 * `columns` (UTF-8); each must be a non-key column of the parents or of the
 * children (parents first). Returns 0, or -1 with `err` set and `map` empty.
 *
 * Children may come in chunks, one call per chunk: `*parent_pos` (0 before
 * the first chunk) is where the search for the next child's parent starts,
 * updated here; `first_row` is the number of child rows in earlier chunks
 * (for messages). */
int pl_nest_map_build(pl_nest_map *map, const pl_rowbuf *parents, const pl_rowbuf *children,
                      const char *const *columns, int n, size_t *parent_pos, size_t first_row,
                      const char *path, pl_err *err);

void pl_nest_map_free(pl_nest_map *map);

#endif
