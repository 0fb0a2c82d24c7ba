/* nest.h: joining child rows to their parent rows in C, after both queries ran.
 *
 * A one-to-many join written as one SELECT makes SQLite read every parent
 * column again for each child row (get_experiments: 10 of 16 columns). Run as
 * two queries instead (parents; children in the same parent order), the rows
 * are joined here, in one pass, without the GIL: each output row takes the
 * columns named in `columns` from its parent or from its child, and the parent
 * cells of consecutive rows point at the same bytes, so result.c builds each
 * parent value once and shares it.
 */
#ifndef PL_NEST_H
#define PL_NEST_H

#include "rowbuf.h"

/* Join `children` to `parents` into `out` (initialized, empty). Column 0 of
 * both is the join key (an integer); children must come grouped by parent, in
 * the parents' order; a parent without children gives no row. The `n` output
 * columns are named in `columns` (UTF-8); each must be a non-key column of the
 * parents or of the children (parents first). Takes over the children's
 * memory (children is left empty). Returns 0 or -1 with `err` set. */
int pl_rowbuf_nest(pl_rowbuf *out, pl_rowbuf *parents, pl_rowbuf *children,
                   const char *const *columns, int n, const char *path, pl_err *err);

#endif
