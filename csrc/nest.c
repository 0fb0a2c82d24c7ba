/* nest.c: the parent/child row join (see nest.h). */
#include "nest.h"

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

/* out->names and out->names_block: copies of `columns`. */
static int copy_names(pl_rowbuf *out, const char *const *columns, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += strlen(columns[i]) + 1;
    out->names = calloc(n > 0 ? (size_t)n : 1, sizeof *out->names);
    out->names_block = malloc(total > 0 ? total : 1);
    if (out->names == NULL || out->names_block == NULL)
        return -1;
    char *p = out->names_block;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(columns[i]) + 1;
        memcpy(p, columns[i], len);
        out->names[i] = p;
        p += len;
    }
    out->ncols = n;
    return 0;
}

int pl_rowbuf_nest(pl_rowbuf *out, pl_rowbuf *parents, pl_rowbuf *children,
                   const char *const *columns, int n, const char *path, pl_err *err)
{
    int *source = NULL;
    size_t base, p = 0;
    int rc = -1;

    if (parents->ncols < 1 || children->ncols < 1)
        return pl_err_set(err, PL_E_PROGRAMMING, path,
                          "both queries must return the join key as their first column");
    source = malloc((n > 0 ? (size_t)n : 1) * sizeof *source);
    if (source == NULL)
        goto nomem;
    for (int c = 0; c < n; c++) {
        source[c] = find_source(parents, children, columns[c]);
        if (source[c] == 0) {
            pl_err_set(err, PL_E_PROGRAMMING, path, "no query returns a column named \"%s\"",
                       columns[c]);
            goto done;
        }
    }
    if (copy_names(out, columns, n) < 0)
        goto nomem;

    /* One arena: the children's, taken over, then the parents' bytes after it. */
    base = children->used;
    if (children->arena_cap < base + parents->used) {
        char *a = realloc(children->arena, base + parents->used + 1);
        if (a == NULL)
            goto nomem;
        children->arena = a;
        children->arena_cap = base + parents->used + 1;
    }
    if (parents->used > 0)
        memcpy(children->arena + base, parents->arena, parents->used);
    out->arena = children->arena;
    out->used = base + parents->used;
    out->arena_cap = children->arena_cap;
    children->arena = NULL;
    children->used = children->arena_cap = 0;

    out->cells_cap = children->nrows * (size_t)n;
    out->cells = malloc((out->cells_cap > 0 ? out->cells_cap : 1) * sizeof *out->cells);
    if (out->cells == NULL)
        goto nomem;
    for (size_t r = 0; r < children->nrows; r++) {
        const pl_cell *child = children->cells + r * (size_t)children->ncols;
        if (child[0].type != SQLITE_INTEGER) {
            pl_err_set(err, PL_E_PROGRAMMING, path,
                       "the join key (first column) must be an integer "
                       "(row %zu of the second query)", r + 1);
            goto done;
        }
        /* Children come in the parents' order: the parent only moves forward. */
        while (p < parents->nrows &&
               !same_key(&parents->cells[p * (size_t)parents->ncols], &child[0]))
            p++;
        if (p == parents->nrows) {
            pl_err_set(err, PL_E_PROGRAMMING, path,
                       "a child row has no parent row before it in the parents' order "
                       "(row %zu of the second query)", r + 1);
            goto done;
        }
        const pl_cell *parent = parents->cells + p * (size_t)parents->ncols;
        pl_cell *row = out->cells + r * (size_t)n;
        for (int c = 0; c < n; c++) {
            if (source[c] > 0) {
                row[c] = parent[source[c]];
                if (row[c].type == SQLITE_TEXT || row[c].type == SQLITE_BLOB)
                    row[c].v.s.off += base;
            } else {
                row[c] = child[-source[c]];
            }
        }
        out->nrows++;
    }
    rc = 0;
    goto done;
nomem:
    pl_err_set(err, PL_E_NOMEM, path, "out of memory joining query results");
done:
    free(source);
    return rc;
}
