/* pgcopy.c: every row of a SQLite file into PostgreSQL, all or nothing. */
#include "pgcopy.h"
#include "lockorder.h"
#include "migrate.h"
#include "password.h"
#include "pgconn.h"
#include "pgmigrate.h"
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The file's tables but bookkeeping, parents before the tables whose foreign
 * keys name them; tables of custom migrations after ours, by name. */
static const char TABLES_SQL[] =
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    " AND name NOT IN ('alembic_version', 'promptlab_migrations')"
    " ORDER BY CASE name WHEN 'users' THEN 0 WHEN 'assets' THEN 1 WHEN 'experiments' THEN 2"
    " WHEN 'experiment_result' THEN 3 WHEN 'experiment_summary' THEN 4"
    " WHEN 'experiment_metric' THEN 5 ELSE 6 END, name";

/* Room for one table's quoted column list. */
#define COLUMNS_MAX 4096

/* Run `sql` on the destination; 0, or -1 with `err` naming `what`. */
static int dst_exec(PGconn *dst, const char *sql, const char *what, pl_err *err)
{
    PGresult *r = PQexec(dst, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK
                 ? 0
                 : pl_pg_err_from_result(err, dst, r, what);
    PQclear(r);
    return rc;
}

/* The first value of the first row of `sql` on the destination, as a number. */
static int dst_count(PGconn *dst, const char *sql, long long *out, const char *what, pl_err *err)
{
    PGresult *r = PQexec(dst, sql);
    int rc = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        rc = pl_pg_err_from_result(err, dst, r, what);
    else
        *out = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Append one value of the source row in COPY's text format. Returns 0, or -1
 * with `err` for a value PostgreSQL's text cannot hold (a NUL byte). */
static int append_value(sqlite3_str *line, sqlite3_stmt *st, int i, const char *table,
                        long long row, pl_err *err)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        sqlite3_str_appendall(line, "\\N");
        return 0;
    case SQLITE_INTEGER:
        sqlite3_str_appendf(line, "%lld", sqlite3_column_int64(st, i));
        return 0;
    case SQLITE_FLOAT: /* 17 digits: the same double on the other side */
        sqlite3_str_appendf(line, "%!.17g", sqlite3_column_double(st, i));
        return 0;
    default: { /* text, and blobs of text written by older releases */
        const char *p = (const char *)sqlite3_column_blob(st, i);
        int n = sqlite3_column_bytes(st, i);
        for (int k = 0; k < n; k++) {
            char ch = p[k];
            if (ch == '\0')
                return pl_err_set(err, PL_E_INVALID, NULL,
                                  "table %s, row %lld, column %s holds a NUL byte, which "
                                  "PostgreSQL's text cannot hold; nothing was copied.",
                                  table, row, sqlite3_column_name(st, i));
            if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r')
                sqlite3_str_appendf(line, "\\%c",
                                    ch == '\\'   ? '\\'
                                    : ch == '\t' ? 't'
                                    : ch == '\n' ? 'n'
                                                 : 'r');
            else
                sqlite3_str_appendchar(line, 1, ch);
        }
        return 0;
    }
    }
}

/* Send every row of `q` (a SELECT of the source table) to the COPY in
 * progress; *rows receives their number. Ends the COPY either way. */
static int send_rows(pl_query *q, PGconn *dst, const char *table, long long *rows, pl_err *err)
{
    int rc;

    *rows = 0;
    while ((rc = pl_query_next(q, err)) > 0) {
        sqlite3_str *line = sqlite3_str_new(NULL);
        int n = sqlite3_column_count(q->st);
        (*rows)++;
        for (int i = 0; i < n && rc > 0; i++) {
            if (i > 0)
                sqlite3_str_appendchar(line, 1, '\t');
            if (append_value(line, q->st, i, table, *rows, err) < 0)
                rc = -1;
        }
        sqlite3_str_appendchar(line, 1, '\n');
        int len = sqlite3_str_length(line);
        char *text = sqlite3_str_finish(line);
        if (rc > 0 && (text == NULL || PQputCopyData(dst, text, len) != 1))
            rc = text == NULL ? pl_err_set(err, PL_E_NOMEM, NULL, "out of memory copying")
                              : pl_pg_err_from_result(err, dst, NULL, "sending rows");
        sqlite3_free(text);
        if (rc < 0)
            break;
    }
    PQputCopyEnd(dst, rc < 0 ? "PromptLab stopped the copy" : NULL);
    PGresult *r;
    int server_rc = 0;
    while ((r = PQgetResult(dst)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0 && server_rc == 0)
            server_rc = pl_pg_err_from_result(err, dst, r, table);
        PQclear(r);
    }
    return rc < 0 || server_rc < 0 ? -1 : 0;
}

/* The file's columns of `table`, quoted and comma-separated, in *out
 * (sqlite3_free it). Returns 0, or -1 with `err`. */
static int column_list(pl_conn *src, const char *table, char **out, pl_err *err)
{
    sqlite3_str *cols = sqlite3_str_new(NULL);
    pl_query q;
    int rc, n = 0;

    *out = NULL;
    if (pl_query_start(&q, src, "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
                       "reading the columns", err) < 0) {
        sqlite3_free(sqlite3_str_finish(cols));
        return -1;
    }
    rc = pl_query_bind_text(&q, 1, table, err);
    while (rc == 0 && (rc = pl_query_next(&q, err)) > 0) {
        if (n++ > 0)
            sqlite3_str_appendall(cols, ", ");
        sqlite3_str_appendf(cols, "\"%w\"", (const char *)sqlite3_column_text(q.st, 0));
        rc = 0;
    }
    pl_query_end(&q);
    *out = sqlite3_str_finish(cols);
    if (rc == 0 && *out == NULL)
        rc = pl_err_set(err, PL_E_NOMEM, NULL, "out of memory reading the columns of %s", table);
    return rc < 0 ? -1 : 0;
}

/* Copy one table: COPY ... FROM STDIN on the destination, fed with the rows of
 * a SELECT of the same columns on the file. *rows receives their number. */
static int copy_table(pl_conn *src, PGconn *dst, const char *table, long long *rows, pl_err *err)
{
    char *list = NULL, *select = NULL, *copy = NULL;
    PGresult *r;
    pl_query q;
    int rc = -1;

    if (column_list(src, table, &list, err) < 0)
        return -1;
    select = sqlite3_mprintf("SELECT %s FROM \"%w\"", list, table);
    copy = sqlite3_mprintf("COPY \"%w\" (%s) FROM STDIN", table, list);
    if (select == NULL || copy == NULL) {
        pl_err_set(err, PL_E_NOMEM, NULL, "out of memory copying %s", table);
        goto done;
    }
    r = PQexec(dst, copy);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        pl_pg_err_from_result(err, dst, r, table);
        PQclear(r);
        goto done;
    }
    PQclear(r);
    if (pl_query_start(&q, src, select, "reading the rows", err) < 0) {
        PQputCopyEnd(dst, "PromptLab stopped the copy");
        while ((r = PQgetResult(dst)) != NULL)
            PQclear(r);
        goto done;
    }
    rc = send_rows(&q, dst, table, rows, err);
    pl_query_end(&q);
done:
    sqlite3_free(list);
    sqlite3_free(select);
    sqlite3_free(copy);
    return rc;
}

/* After the rows: the table holds as many rows as the file's, and each
 * identity column's sequence continues after its largest value. */
static int check_table(PGconn *dst, const char *table, long long rows, pl_err *err)
{
    char sql[512], shown[PL_PG_SHOWN_MAX];
    long long got = -1;
    PGresult *r;

    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table);
    if (dst_count(dst, sql, &got, "counting the copied rows", err) < 0)
        return -1;
    if (got != rows) {
        pl_pg_shown(dst, shown, sizeof shown);
        return pl_err_set(err, PL_E_DATABASE, shown,
                          "table %s holds %lld rows after the copy, the file %lld; nothing "
                          "was copied.",
                          table, got, rows);
    }
    const char *values[] = {table};
    r = PQexecParams(dst,
                     "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                     " current_schema() AND table_name = $1 AND is_identity = 'YES'",
                     1, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pl_pg_err_from_result(err, dst, r, "reading identity columns");
        PQclear(r);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *col = PQgetvalue(r, i, 0);
        snprintf(sql, sizeof sql,
                 "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'),"
                 " COALESCE((SELECT max(\"%s\") FROM \"%s\"), 0) + 1, false)",
                 table, col, col, table);
        rc = dst_exec(dst, sql, "moving an identity sequence", err);
    }
    PQclear(r);
    return rc;
}

/* Both sides at the same revision, and one PromptLab knows. */
static int check_revisions(pl_conn *src, PGconn *dst, pl_err *err)
{
    pl_db_version from, to;
    char shown[PL_PG_SHOWN_MAX];

    if (pl_read_version(src, &from, err) < 0 || pl_pg_read_version(dst, &to, err) < 0)
        return -1;
    if (from.revision[0] != '\0' && strcmp(from.revision, to.revision) == 0)
        return 0;
    pl_pg_shown(dst, shown, sizeof shown);
    return pl_err_set(err, PL_E_MIGRATION, NULL,
                      "the file %s is at revision %s and the database %s at %s; bring both to "
                      "the same revision first (promptlab db migrate -d FILE, and -d URL).",
                      src->path, from.revision[0] ? from.revision : "base", shown,
                      to.revision[0] ? to.revision : "base");
}

/* The file's table names, in copying order, into report->name. Names are
 * kept to letters, digits and '_' (they are spliced into SQL). */
static int list_tables(pl_conn *src, pl_pgcopy_report *report, pl_err *err)
{
    pl_query q;
    int rc;

    report->count = 0;
    if (pl_query_start(&q, src, TABLES_SQL, "listing the tables", err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0) {
        const char *name = (const char *)sqlite3_column_text(q.st, 0);
        if (report->count == PL_PGCOPY_TABLES_MAX || strlen(name) >= sizeof report->name[0] ||
            name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")]) {
            rc = pl_err_set(err, PL_E_DATABASE, src->path,
                            "table %s cannot be copied (more than %d tables, or a name other "
                            "than letters, digits and '_'); nothing was copied.",
                            name, PL_PGCOPY_TABLES_MAX);
            break;
        }
        snprintf(report->name[report->count], sizeof report->name[0], "%s", name);
        report->rows[report->count++] = 0;
    }
    pl_query_end(&q);
    return rc < 0 ? -1 : 0;
}

/* The destination holds no rows of its own: lock its tables against writers,
 * check each is empty, and remove the admin `db init` made without a password
 * (the file's users come instead). */
static int claim_destination(PGconn *dst, const pl_pgcopy_report *report, pl_err *err)
{
    char sql[256], shown[PL_PG_SHOWN_MAX];

    for (int i = 0; i < report->count; i++) {
        long long rows = 0;
        snprintf(sql, sizeof sql, "LOCK TABLE \"%s\" IN EXCLUSIVE MODE", report->name[i]);
        if (dst_exec(dst, sql, "locking the tables", err) < 0)
            return -1;
        snprintf(sql, sizeof sql,
                 strcmp(report->name[i], "users") == 0
                     ? "SELECT count(*) FROM \"%s\" WHERE NOT (username = 'admin' AND "
                       "password_hash = '" PL_UNUSABLE_PASSWORD "')"
                     : "SELECT count(*) FROM \"%s\"",
                 report->name[i]);
        if (dst_count(dst, sql, &rows, "checking that the database is empty", err) < 0)
            return -1;
        if (rows > 0) {
            pl_pg_shown(dst, shown, sizeof shown);
            return pl_err_set(err, PL_E_DATABASE, shown,
                              "the database already holds rows (table %s: %lld); copy into a "
                              "new database (createdb, then promptlab db init -d URL). "
                              "Nothing was copied.",
                              report->name[i], rows);
        }
    }
    return dst_exec(dst,
                    "DELETE FROM users WHERE username = 'admin' AND password_hash = "
                    "'" PL_UNUSABLE_PASSWORD "'",
                    "removing the placeholder admin", err);
}

int pl_pg_copy_from_sqlite(pl_conn *src, PGconn *dst, pl_pgcopy_report *report, pl_err *err)
{
    int rc = -1;

    PL_ASSERT_NO_GIL();
    /* One read transaction: the rows of a single moment, while writers go on. */
    if (pl_conn_exec(src, "BEGIN", "reading the file", err) < 0)
        return -1;
    if (dst_exec(dst, "BEGIN", "starting the copy", err) < 0)
        goto done;
    if (check_revisions(src, dst, err) < 0 || list_tables(src, report, err) < 0 ||
        claim_destination(dst, report, err) < 0)
        goto done;
    for (int i = 0; i < report->count; i++)
        if (copy_table(src, dst, report->name[i], &report->rows[i], err) < 0 ||
            check_table(dst, report->name[i], report->rows[i], err) < 0)
            goto done;
    rc = dst_exec(dst, "COMMIT", "committing the copy", err);
done:
    if (rc < 0)
        PQclear(PQexec(dst, "ROLLBACK")); /* the error above is the one reported */
    pl_conn_rollback_quietly(src);
    return rc;
}
