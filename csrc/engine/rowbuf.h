/* rowbuf.h: result rows copied out of SQLite in C, before any Python object exists.
 *
 * Statements are stepped with the GIL released and the session locked, so the
 * values are copied into this buffer; Python rows are built from it afterwards
 * (result.c), with the GIL held and no lock held.
 */
#ifndef PL_ROWBUF_H
#define PL_ROWBUF_H

#include <sqlite3.h>
#include <stddef.h>

#include "error.h"

typedef struct {
    int type; /* SQLITE_NULL/INTEGER/FLOAT/TEXT/BLOB */
    union {
        sqlite3_int64 i;
        double d;
        struct {
            size_t off; /* into the arena */
            size_t len;
        } s;
    } v;
} pl_cell;

typedef struct {
    int ncols;         /* -1 until the first statement's columns are known */
    char **names;      /* ncols UTF-8 names, pointing into names_block */
    char *names_block; /* owned copies of the names */
    size_t nrows;
    pl_cell *cells; /* nrows * ncols */
    size_t cells_cap;
    char *arena; /* text and blob bytes */
    size_t used, arena_cap;
} pl_rowbuf;

/* Read column i of the current row of `stmt` into `cell`: its type, and its
 * number, or, for text and blobs, the length (cell->v.s.len) and *bytes (valid
 * until the next step; the caller copies them and sets cell->v.s.off).
 * Returns 0, or -1 when SQLite could not allocate the bytes. */
int pl_cell_read(sqlite3_stmt *stmt, int i, pl_cell *cell, const void **bytes);

void pl_rowbuf_init(pl_rowbuf *rb);

/* Record the column names of `stmt` (only the first call has an effect).
 * Returns 0 or -1 with `err` set. */
int pl_rowbuf_columns(pl_rowbuf *rb, sqlite3_stmt *stmt, const char *path, pl_err *err);

/* Copy the current row of `stmt`. Returns 0 or -1 with `err` set. */
int pl_rowbuf_append(pl_rowbuf *rb, sqlite3_stmt *stmt, const char *path, pl_err *err);

/* Chunks. A statement is stepped in chunks: rows are copied until the buffer
 * is full (pl_rowbuf_full), their Python rows are built, and the buffer is
 * emptied (pl_rowbuf_clear_rows) for the next chunk, so the C copy never holds
 * more than one chunk. Full: PL_ROWBUF_CHUNK_BYTES of text and blobs, or
 * pl_rowbuf_chunk_rows rows (PL_ROWBUF_CHUNK_ROWS unless a test changed it). */
#define PL_ROWBUF_CHUNK_ROWS 1024
#define PL_ROWBUF_CHUNK_BYTES ((size_t)256 * 1024)

/* 1 when the buffer holds a complete chunk. */
int pl_rowbuf_full(const pl_rowbuf *rb);

/* For tests: the rows per chunk from now (n >= 1); returns the previous
 * value. Process-wide, atomic. */
int pl_rowbuf_set_chunk_rows(int n);

/* Forget the rows but keep the column names and the memory, for the next chunk. */
void pl_rowbuf_clear_rows(pl_rowbuf *rb);

void pl_rowbuf_free(pl_rowbuf *rb);

#endif
