/* nest.c: the parent/child row match (see nest.h). */
#include "nest.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* Where output column `name` comes from: parent column i (returns i >= 1),
 * child column i (returns -i), or 0 when neither has it. */
static int find_source(const pl_rowbuf *parents, const pl_rowbuf *children, const char *name)
{
    for (int i = 1; i < parents->ncols; i++)
        if (strcmp(parents->names[i], name) == 0)
            return i;
    for (int i = 1; i < children->ncols; i++)
        if (strcmp(children->names[i], name) == 0)
            return -i;
    return 0;
}

static int same_key(const pl_cell *a, const pl_cell *b)
{
    return a->type == SQLITE_INTEGER && b->type == SQLITE_INTEGER && a->v.i == b->v.i;
}

int pl_nest_map_build(pl_nest_map *map, const pl_rowbuf *parents, const pl_rowbuf *children,
                      const char *const *columns, int n, size_t *parent_pos, size_t first_row,
                      const char *path, pl_err *err)
{
    size_t p = *parent_pos;

    memset(map, 0, sizeof *map);
    if (parents->ncols < 1 || children->ncols < 1)
        return pl_err_set(err, PL_E_PROGRAMMING, path,
                          "both queries must return the join key as their first column");
    map->ncols = n;
    map->source = pl_malloc((n > 0 ? (size_t)n : 1) * sizeof *map->source);
    map->parent_of =
        pl_malloc((children->nrows > 0 ? children->nrows : 1) * sizeof *map->parent_of);
    if (map->source == NULL || map->parent_of == NULL) {
        pl_err_set(err, PL_E_NOMEM, path, "out of memory joining query results");
        goto fail;
    }
    for (int c = 0; c < n; c++) {
        map->source[c] = find_source(parents, children, columns[c]);
        if (map->source[c] == 0) {
            pl_err_set(err, PL_E_PROGRAMMING, path, "no query returns a column named \"%s\"",
                       columns[c]);
            goto fail;
        }
    }
    for (size_t r = 0; r < children->nrows; r++) {
        const pl_cell *key = &children->cells[r * (size_t)children->ncols];
        if (key->type != SQLITE_INTEGER) {
            pl_err_set(err, PL_E_PROGRAMMING, path,
                       "the join key (first column) must be an integer "
                       "(row %zu of the second query)",
                       first_row + r + 1);
            goto fail;
        }
        /* Children come in the parents' order: the parent only moves forward. */
        while (p < parents->nrows && !same_key(&parents->cells[p * (size_t)parents->ncols], key))
            p++;
        if (p == parents->nrows) {
            pl_err_set(err, PL_E_PROGRAMMING, path,
                       "a child row has no parent row before it in the parents' order "
                       "(row %zu of the second query)",
                       first_row + r + 1);
            goto fail;
        }
        map->parent_of[r] = p;
    }
    *parent_pos = p;
    return 0;
fail:
    pl_nest_map_free(map);
    return -1;
}

void pl_nest_map_free(pl_nest_map *map)
{
    free(map->source);
    free(map->parent_of);
    memset(map, 0, sizeof *map);
}
