/* query.c: one-shot statements on a pl_conn (see query.h). */
#include "query.h"
#include "lockorder.h"

#include <stdio.h>

/* Report `rc` from a call on q's connection. The connection's extended code
 * is kept when it is the same error (a connection opened read-only does not
 * return extended codes from every call). Returns -1. */
static int fail(const pl_query *q, int rc, pl_err *err)
{
    int code = sqlite3_extended_errcode(q->db);

    if ((code & 0xff) != (rc & 0xff))
        code = rc;
    return pl_err_from_sqlite(err, code, q->db, q->path, q->what);
}

int pl_query_start_db(pl_query *q, sqlite3 *db, const char *path, const char *sql, const char *what,
                      pl_err *err)
{
    int rc;

    PL_ASSERT_NO_GIL();
    q->db = db;
    q->path = path;
    q->st = NULL;
    q->what = what;
    rc = sqlite3_prepare_v2(db, sql, -1, &q->st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(q->st);
        q->st = NULL;
        return fail(q, rc, err);
    }
    if (q->st == NULL)
        return pl_err_set(err, PL_E_PROGRAMMING, path, "%s: the SQL text holds no statement", what);
    return 0;
}

int pl_query_start(pl_query *q, pl_conn *c, const char *sql, const char *what, pl_err *err)
{
    return pl_query_start_db(q, c->db, c->path, sql, what, err);
}

/* The outcome of a sqlite3_bind_* call: 0, or -1 with `err` set. */
static int bound(pl_query *q, int rc, pl_err *err)
{
    return rc == SQLITE_OK ? 0 : fail(q, rc, err);
}

int pl_query_bind_text(pl_query *q, int i, const char *value, pl_err *err)
{
    return bound(q, sqlite3_bind_text(q->st, i, value, -1, SQLITE_STATIC), err);
}

int pl_query_bind_int(pl_query *q, int i, int value, pl_err *err)
{
    return bound(q, sqlite3_bind_int(q->st, i, value), err);
}

int pl_query_bind_double(pl_query *q, int i, double value, pl_err *err)
{
    return bound(q, sqlite3_bind_double(q->st, i, value), err);
}

int pl_query_bind_value(pl_query *q, int i, const sqlite3_value *value, pl_err *err)
{
    return bound(q, sqlite3_bind_value(q->st, i, value), err);
}

void pl_query_reset(pl_query *q)
{
    sqlite3_reset(q->st);
}

int pl_query_next(pl_query *q, pl_err *err)
{
    int rc = sqlite3_step(q->st);

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return fail(q, rc, err);
}

void pl_query_end(pl_query *q)
{
    sqlite3_finalize(q->st);
    q->st = NULL;
}

int pl_query_run_texts(pl_conn *c, const char *sql, const char *const *texts, int n,
                       const char *what, pl_err *err)
{
    pl_query q;
    int rc = 0;

    if (pl_query_start(&q, c, sql, what, err) < 0)
        return -1;
    for (int i = 0; i < n && rc == 0; i++)
        rc = pl_query_bind_text(&q, i + 1, texts[i], err);
    while (rc == 0 && (rc = pl_query_next(&q, err)) > 0)
        rc = 0;
    pl_query_end(&q);
    return rc;
}

/* Start `sql` and step once: 1 with the first row in q->st (end q after
 * reading it), 0 when there is none, -1 with `err` set (q ended in both). */
static int first_row(pl_query *q, pl_conn *c, const char *sql, const char *what, pl_err *err)
{
    int rc;

    if (pl_query_start(q, c, sql, what, err) < 0)
        return -1;
    rc = pl_query_next(q, err);
    if (rc <= 0)
        pl_query_end(q);
    return rc;
}

int pl_query_text(pl_conn *c, const char *sql, char *out, size_t size, int *found, const char *what,
                  pl_err *err)
{
    pl_query q;
    int rc = first_row(&q, c, sql, what, err);

    *found = rc > 0;
    if (rc > 0) {
        const char *v = (const char *)sqlite3_column_text(q.st, 0);
        snprintf(out, size, "%s", v ? v : "");
        pl_query_end(&q);
    }
    return rc < 0 ? -1 : 0;
}

int pl_query_int(pl_conn *c, const char *sql, long long *out, const char *what, pl_err *err)
{
    pl_query q;
    int rc = first_row(&q, c, sql, what, err);

    *out = rc > 0 ? sqlite3_column_int64(q.st, 0) : 0;
    if (rc > 0)
        pl_query_end(&q);
    return rc < 0 ? -1 : 0;
}
