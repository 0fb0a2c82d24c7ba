/* rowbuf.c: growing buffers of copied SQLite values. */
#include "rowbuf.h"
#include "alloc.h"
#include "bufpool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int chunk_rows = PL_ROWBUF_CHUNK_ROWS;

int pl_rowbuf_full(const pl_rowbuf *rb)
{
    return rb->nrows >= (size_t)atomic_load_explicit(&chunk_rows, memory_order_relaxed) ||
           rb->used >= PL_ROWBUF_CHUNK_BYTES;
}

int pl_rowbuf_set_chunk_rows(int n)
{
    return atomic_exchange(&chunk_rows, n >= 1 ? n : 1);
}

void pl_rowbuf_clear_rows(pl_rowbuf *rb)
{
    rb->nrows = 0;
    rb->used = 0;
}

void pl_rowbuf_init(pl_rowbuf *rb)
{
    memset(rb, 0, sizeof *rb);
    rb->ncols = -1;
}

static int nomem(pl_err *err, const char *path)
{
    return pl_err_set(err, PL_E_NOMEM, path, "out of memory reading query results");
}

int pl_rowbuf_columns(pl_rowbuf *rb, sqlite3_stmt *stmt, const char *path, pl_err *err)
{
    int n;

    if (rb->ncols >= 0)
        return 0;
    n = sqlite3_column_count(stmt);
    /* Copies (the statement may be reset or finalized before the names are
     * read), all in one block: names[i] point into names_block. */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(stmt, i);
        total += (name ? strlen(name) : 0) + 1;
    }
    rb->names = pl_calloc(n > 0 ? (size_t)n : 1, sizeof *rb->names);
    rb->names_block = pl_malloc(total > 0 ? total : 1);
    if (rb->names == NULL || rb->names_block == NULL)
        return nomem(err, path);
    rb->ncols = n;
    char *p = rb->names_block;
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(stmt, i);
        size_t len = name ? strlen(name) : 0;
        memcpy(p, name ? name : "", len + 1);
        rb->names[i] = p;
        p += len + 1;
    }
    return 0;
}

static int arena_put(pl_rowbuf *rb, const void *data, size_t len, size_t *off)
{
    if (rb->used + len > rb->arena_cap &&
        pl_buf_grow((void **)&rb->arena, &rb->arena_cap, rb->used, rb->used + len, 65536) < 0)
        return -1;
    if (len > 0)
        memcpy(rb->arena + rb->used, data, len);
    *off = rb->used;
    rb->used += len;
    return 0;
}

int pl_rowbuf_append(pl_rowbuf *rb, sqlite3_stmt *stmt, const char *path, pl_err *err)
{
    size_t need = (rb->nrows + 1) * (size_t)rb->ncols;
    const pl_cell *prev;
    pl_cell *row;

    if (need > rb->cells_cap) {
        size_t bytes = rb->cells_cap * sizeof *rb->cells;
        size_t used = rb->nrows * (size_t)rb->ncols * sizeof *rb->cells;
        if (pl_buf_grow((void **)&rb->cells, &bytes, used, need * sizeof *rb->cells,
                        64 * sizeof *rb->cells) < 0)
            return nomem(err, path);
        rb->cells_cap = bytes / sizeof *rb->cells;
    }
    row = rb->cells + rb->nrows * (size_t)rb->ncols;
    prev = rb->nrows > 0 ? row - rb->ncols : NULL;
    for (int i = 0; i < rb->ncols; i++) {
        pl_cell *cell = &row[i];
        const void *data;
        if (pl_cell_read(stmt, i, cell, &data) < 0)
            return nomem(err, path);
        if (cell->type != SQLITE_TEXT && cell->type != SQLITE_BLOB)
            continue;
        size_t len = cell->v.s.len;
        /* Joined rows repeat their parent's values: point at the copy the
         * previous row made (result.c then shares the object too). */
        if (prev != NULL && prev[i].type == cell->type && prev[i].v.s.len == len &&
            (len == 0 || memcmp(rb->arena + prev[i].v.s.off, data, len) == 0)) {
            cell->v.s = prev[i].v.s;
            continue;
        }
        if (arena_put(rb, data, len, &cell->v.s.off) < 0)
            return nomem(err, path);
    }
    rb->nrows++;
    return 0;
}

int pl_cell_read(sqlite3_stmt *stmt, int i, pl_cell *cell, const void **bytes)
{
    sqlite3_value *v = sqlite3_column_value(stmt, i);

    *bytes = NULL;
    cell->type = sqlite3_value_type(v);
    switch (cell->type) {
    case SQLITE_INTEGER:
        cell->v.i = sqlite3_value_int64(v);
        return 0;
    case SQLITE_FLOAT:
        cell->v.d = sqlite3_value_double(v);
        return 0;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
        /* The bytes first, then their length: SQLite's documented order. */
        *bytes =
            cell->type == SQLITE_TEXT ? (const void *)sqlite3_value_text(v) : sqlite3_value_blob(v);
        cell->v.s.off = 0;
        cell->v.s.len = (size_t)sqlite3_value_bytes(v);
        return *bytes == NULL && cell->v.s.len > 0 ? -1 : 0;
    default:
        cell->type = SQLITE_NULL;
        return 0;
    }
}

void pl_rowbuf_free(pl_rowbuf *rb)
{
    free(rb->names);
    free(rb->names_block);
    pl_buf_release(rb->cells, rb->cells_cap * sizeof *rb->cells);
    pl_buf_release(rb->arena, rb->arena_cap);
    pl_rowbuf_init(rb);
}
