/* query.h: one-shot statements on a pl_conn (prepare, bind, step, finalize).
 *
 * The engine's own statements (schema checks, the admin user, PRAGMAs) run
 * once per initialization; they bypass the statement cache of pl_conn_prepare
 * and are finalized at once. Every error is reported through a pl_err that
 * names the file and `what` was being done. Like every pl_conn call, these run
 * with the GIL released.
 *
 * Row loops use the iterator:
 *
 *     pl_query q;
 *     if (pl_query_start(&q, c, sql, "reading the schema", err) < 0)
 *         return -1;
 *     while ((rc = pl_query_next(&q, err)) > 0)
 *         use(sqlite3_column_text(q.st, 0));
 *     pl_query_end(&q);
 *     if (rc < 0)
 *         return -1;
 */
#ifndef PL_QUERY_H
#define PL_QUERY_H

#include <stddef.h>
#include <sqlite3.h>

#include "conn.h"
#include "error.h"

typedef struct pl_query {
    sqlite3 *db;
    const char *path; /* the file named in errors (borrowed; may be NULL) */
    sqlite3_stmt *st; /* NULL once ended (or when the prepare failed) */
    const char *what; /* the step, for error messages (static) */
} pl_query;

/* Prepare the first statement of `sql` on `c` into `q`. Returns 0, or -1 with
 * `err` set (and q->st NULL: pl_query_end is still allowed). */
int pl_query_start(pl_query *q, pl_conn *c, const char *sql, const char *what, pl_err *err);

/* The same on a handle that is no pl_conn (the in-memory schema catalog, a
 * database being catalogued); errors name `path` (may be NULL). */
int pl_query_start_db(pl_query *q, sqlite3 *db, const char *path, const char *sql, const char *what,
                      pl_err *err);

/* Bind text parameter i (1-based), SQLITE_STATIC: `value` must outlive the
 * query. Returns 0, or -1 with `err` set. */
int pl_query_bind_text(pl_query *q, int i, const char *value, pl_err *err);

/* Bind an integer, a double, or a copy of `value` (a column of another
 * statement) to parameter i. Return 0, or -1 with `err` set. */
int pl_query_bind_int(pl_query *q, int i, int value, pl_err *err);
int pl_query_bind_double(pl_query *q, int i, double value, pl_err *err);
int pl_query_bind_value(pl_query *q, int i, const sqlite3_value *value, pl_err *err);

/* Rewind a statement that ran to its end (its bindings stay), to run it again.
 * Its errors were reported by pl_query_next. */
void pl_query_reset(pl_query *q);

/* Step: 1 when a row is ready in q->st, 0 when the statement is done, -1 with
 * `err` set on an error. */
int pl_query_next(pl_query *q, pl_err *err);

/* Finalize the statement (once; an ended or failed query is allowed). */
void pl_query_end(pl_query *q);

/* Run `sql` (one statement) with texts[0:n] bound to parameters 1..n
 * (SQLITE_STATIC: they must outlive the call) to its end, ignoring any rows.
 * Returns 0 or -1 with `err` set. */
int pl_query_run_texts(pl_conn *c, const char *sql, const char *const *texts, int n,
                       const char *what, pl_err *err);

/* Copy the first column of the first row as text into out[0:size] ("" for
 * NULL, cut to fit); *found tells whether a row came back (out is left as it
 * was when none did). Returns 0 or -1 with `err` set. */
int pl_query_text(pl_conn *c, const char *sql, char *out, size_t size, int *found, const char *what,
                  pl_err *err);

/* The first column of the first row as an integer into *out (0 when no row
 * came back). Returns 0 or -1 with `err` set. */
int pl_query_int(pl_conn *c, const char *sql, long long *out, const char *what, pl_err *err);

#endif
