/* params.h: converting Python parameters for SQLite, then binding them.
 *
 * Conversion needs the GIL; binding must not need it, because statements are
 * stepped with the GIL released. So parameters are converted first into a
 * pl_batch of C values (text and blobs point into Python objects that the
 * batch keeps alive), and bound later from C alone. Values: None, int, float,
 * str, bytes-like, datetime/date (their str()), dict and list (json.dumps()).
 */
#ifndef PL_PARAMS_H
#define PL_PARAMS_H

#include "module.h"

#include <sqlite3.h>

#define PL_PARAM_UNSUPPORTED 100 /* a value SQLite cannot store; error if bound */

typedef struct {
    int type;            /* SQLITE_NULL/INTEGER/FLOAT/TEXT/BLOB or PL_PARAM_UNSUPPORTED */
    const char *key;     /* name in a mapping row (UTF-8), else NULL */
    Py_ssize_t keylen;
    union {
        sqlite3_int64 i;
        double d;
        struct {
            const char *p;   /* text, blob, or the type name when unsupported */
            Py_ssize_t n;
        } s;
    } v;
} pl_param;

typedef struct {
    Py_ssize_t nrows;
    Py_ssize_t *offsets;   /* row r is params[offsets[r] .. offsets[r + 1]) */
    char *named;           /* per row: 1 when the row was a mapping */
    pl_param *params;
    Py_ssize_t nparams, cap;
    PyObject **keep;       /* strong references that keep text and blobs alive */
    Py_ssize_t nkeep, capkeep;
    Py_ssize_t rows_cap;
    const char *path;      /* the database, for messages */
    PyObject *json_dumps;  /* json.dumps, looked up on the first dict or list */
} pl_batch;

/* Convert `params`: for execute (many = 0) None, a sequence or a mapping; for
 * executemany a sequence or iterable of those. `path` names the database in
 * messages and must outlive the batch. Returns 0, or -1 with an exception set
 * (the batch is released either way on error). GIL held. */
int pl_batch_build(pl_state *st, pl_batch *b, PyObject *params, int many, const char *path);

/* Drop the batch's references and memory. GIL held. */
void pl_batch_release(pl_batch *b);

/* The statement's parameter names, resolved once per batch, and where each
 * was found in the previous row (rows of a batch usually share a key order). */
#define PL_BIND_CACHED 64
typedef struct {
    int n; /* parameter count; -1 until the first row is bound */
    const char *name[PL_BIND_CACHED];
    size_t len[PL_BIND_CACHED];
    Py_ssize_t hint[PL_BIND_CACHED];
} pl_bindmap;

void pl_bindmap_init(pl_bindmap *map);

/* Bind row `row` of the batch to `stmt`; `map` belongs to this statement for
 * the whole batch. Returns 0, or -1 with `err` set (ProgrammingError: wrong
 * count, missing name, unsupported type). No GIL. */
int pl_batch_bind(const pl_batch *b, Py_ssize_t row, sqlite3_stmt *stmt, pl_bindmap *map,
                  const char *path, pl_err *err);

#endif
