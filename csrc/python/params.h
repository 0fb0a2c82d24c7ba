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
    int type; /* SQLITE_NULL/INTEGER/FLOAT/TEXT/BLOB or PL_PARAM_UNSUPPORTED */
    union {
        sqlite3_int64 i;
        double d;
        struct {
            const char *p; /* text, blob, or the type name when unsupported */
            Py_ssize_t n;
        } s;
    } v;
} pl_param;

/* Returns the statement's parameter names as a new tuple (str without the
 * ':'/'@'/'$' prefix, or None for a positional parameter), or NULL with an
 * exception set. Called with the GIL, at most once per batch. */
typedef PyObject *(*pl_describe_fn)(void *ctx);

typedef struct {
    Py_ssize_t nrows;    /* converted parameter sets in this chunk */
    Py_ssize_t base;     /* parameter sets of earlier chunks (for messages) */
    PyObject *iter;      /* executemany: the rest of the parameter sets, or NULL */
    int more;            /* executemany: the iterator may give more sets */
    Py_ssize_t *offsets; /* row r is params[offsets[r] .. offsets[r + 1]), positional */
    pl_param *params;
    Py_ssize_t nparams, cap;
    PyObject **keep; /* strong references that keep text and blobs alive */
    Py_ssize_t nkeep, capkeep;
    Py_ssize_t rows_cap;
    const char *path;     /* the database, for messages */
    PyObject *json_dumps; /* json.dumps, looked up on the first dict or list */
    pl_describe_fn describe;
    void *describe_ctx;
    PyObject *names; /* the statement's parameter names, once a mapping row came */
} pl_batch;

/* executemany converts (and binds) at most this many parameter sets at a
 * time: the converted values of a whole batch cost about 200 bytes a set. */
#define PL_BATCH_CHUNK_ROWS 1024

/* Convert `params`: for execute (many = 0) None, a sequence or a mapping; for
 * executemany a sequence or iterable of those. A mapping row gives the values
 * of the statement's named parameters, found with `describe`; its other keys
 * are ignored. `path` names the database in messages and must outlive the
 * batch. Returns 0, or -1 with an exception set (the batch is released either
 * way on error). GIL held. */
int pl_batch_build(pl_state *st, pl_batch *b, PyObject *params, int many, const char *path,
                   pl_describe_fn describe, void *describe_ctx);

/* The first chunk of an executemany batch is converted by pl_batch_build;
 * while b->more is set, pl_batch_next drops the chunk's values and converts
 * the next parameter sets (b->nrows may then be 0: the iterator ended).
 * Returns 0, or -1 with an exception set and the batch released. GIL held. */
int pl_batch_next(pl_state *st, pl_batch *b);

/* For tests: parameter sets per chunk from now (n >= 1); returns the
 * previous value. */
Py_ssize_t pl_batch_set_chunk_rows(Py_ssize_t n);

/* Drop the batch's references and memory. GIL held. */
void pl_batch_release(pl_batch *b);

/* Bind row `row` of the batch to `stmt` (positionally). Returns 0, or -1 with
 * `err` set (ProgrammingError: wrong count, unsupported type). No GIL. */
int pl_batch_bind(const pl_batch *b, Py_ssize_t row, sqlite3_stmt *stmt, const char *path,
                  pl_err *err);

#endif
