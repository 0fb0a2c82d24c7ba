/* pgmigrate.c: the migration chain on PostgreSQL, in one locked transaction. */
#include "pgmigrate.h"
#include "lockorder.h"
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char BOOKKEEPING_SQL[] = PL_BOOKKEEPING_SQL("DOUBLE PRECISION");

static const char CENSUS_SQL[] =
    "SELECT count(*) FILTER (WHERE tablename NOT IN ('alembic_version', "
    "'promptlab_migrations')), count(*) FILTER (WHERE tablename = 'alembic_version') "
    "FROM pg_tables WHERE schemaname = current_schema()";

static const char RECORD_SQL[] =
    "INSERT INTO promptlab_migrations (revision, checksum, message, applied_at, duration_ms) "
    "VALUES ($1, $2, $3, to_char(clock_timestamp() AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD HH24:MI:SS.MS'), $4::double precision) "
    "ON CONFLICT (revision) DO UPDATE SET checksum = EXCLUDED.checksum, "
    "message = EXCLUDED.message, applied_at = EXCLUDED.applied_at, "
    "duration_ms = EXCLUDED.duration_ms";

/* Run `sql` (no parameters, any number of statements). Returns 0, or -1 with
 * `err` naming `what`. */
static int exec_sql(PGconn *conn, const char *sql, const char *what, pl_err *err)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(r);
    int rc = 0;

    /* A section of comments only is an empty query: nothing to do. */
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY)
        rc = pl_pg_err_from_result(err, conn, r, what);
    PQclear(r);
    return rc;
}

/* Run `sql` with up to four text parameters (NULL ends the list early). */
static int exec_params(PGconn *conn, const char *sql, int n, const char *const *values,
                       const char *what, pl_err *err)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);
    int rc = 0;

    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pl_pg_err_from_result(err, conn, r, what);
    PQclear(r);
    return rc;
}

int pl_pg_read_version(PGconn *conn, pl_db_version *out, pl_err *err)
{
    PGresult *r;
    int has_table;

    PL_ASSERT_NO_GIL();
    memset(out, 0, sizeof *out);
    out->version_rows = -1;
    r = PQexec(conn, CENSUS_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pl_pg_err_from_result(err, conn, r, "reading the tables");
        PQclear(r);
        return -1;
    }
    out->other_tables = atoi(PQgetvalue(r, 0, 0));
    has_table = atoi(PQgetvalue(r, 0, 1)) > 0;
    PQclear(r);
    if (!has_table)
        return 0;
    r = PQexec(conn, "SELECT version_num FROM alembic_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pl_pg_err_from_result(err, conn, r, "reading alembic_version");
        PQclear(r);
        return -1;
    }
    out->version_rows = PQntuples(r);
    if (out->version_rows > 0) {
        const char *v = PQgetvalue(r, 0, 0);
        snprintf(out->revision, sizeof out->revision, "%s", v);
        out->revision_too_long = strlen(v) > PL_REVISION_MAX;
    }
    PQclear(r);
    return 0;
}

int pl_pg_read_history(PGconn *conn, PGresult **out, pl_err *err)
{
    PGresult *r;

    PL_ASSERT_NO_GIL();
    *out = NULL;
    r = PQexec(conn, "SELECT to_regclass('promptlab_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pl_pg_err_from_result(err, conn, r, "reading the migration history");
        PQclear(r);
        return -1;
    }
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return 0;
    r = PQexec(conn, "SELECT revision, checksum, message, applied_at, duration_ms"
                     " FROM promptlab_migrations ORDER BY applied_at, revision");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pl_pg_err_from_result(err, conn, r, "reading the migration history");
        PQclear(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* Make `revision` ("" for base) the one row of alembic_version. */
static int set_version(PGconn *conn, const char *revision, pl_err *err)
{
    const char *values[] = {revision};

    if (exec_sql(conn, "DELETE FROM alembic_version", "updating alembic_version", err) < 0)
        return -1;
    if (revision[0] == '\0')
        return 0; /* base: Alembic's empty table */
    return exec_params(conn, "INSERT INTO alembic_version (version_num) VALUES ($1)", 1, values,
                       "updating alembic_version", err);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Run one section of `m` and record it. Returns 0, or -1 with `err`: a
 * MigrationError naming the file and the section, or the connection's loss. */
static int apply(PGconn *conn, const pl_migration *m, int up, const char *at, pl_err *err)
{
    const char *sql = up ? m->up_postgresql : m->down_postgresql;
    char elapsed[32], what[256];
    double started = now_ms();

    snprintf(what, sizeof what, "migration %s (%s), section '%s'", m->revision, m->filename,
             up ? "-- migrate:up:postgresql" : "-- migrate:down:postgresql");
    if (exec_sql(conn, sql, what, err) < 0) {
        if (err->kind != PL_E_CONNECTION_LOST) {
            size_t len = strlen(err->msg);
            err->kind = PL_E_MIGRATION;
            snprintf(err->msg + len, sizeof err->msg - len,
                     "; the change was rolled back and the database stays at revision %s.", at);
        }
        return -1;
    }
    if (!up) {
        const char *values[] = {m->revision};
        return set_version(conn, m->parent, err) < 0
                   ? -1
                   : exec_params(conn, "DELETE FROM promptlab_migrations WHERE revision = $1", 1,
                                 values, "recording the downgrade", err);
    }
    snprintf(elapsed, sizeof elapsed, "%.3f", now_ms() - started);
    const char *values[] = {m->revision, m->checksum_postgresql, m->message, elapsed};
    if (set_version(conn, m->revision, err) < 0)
        return -1;
    return exec_params(conn, RECORD_SQL, 4, values, "recording the migration", err);
}

/* Under the lock: refuse what cannot be done before changing anything. */
static int check_walk(PGconn *conn, const pl_chain *chain, const pl_db_version *v, int from,
                      int target, pl_err *err)
{
    char shown[PL_PG_SHOWN_MAX];

    pl_pg_shown(conn, shown, sizeof shown);
    if (pl_migrate_check(v, chain, shown, err) < 0)
        return -1;
    if (v->revision[0] == '\0' && v->other_tables > 0)
        return pl_err_set(err, PL_E_FOREIGN_SCHEMA, shown,
                          "the database holds %d table(s) that PromptLab did not make, and no "
                          "revision; PromptLab keeps its store in a database of its own: "
                          "create an empty one (createdb) and pass its URL.",
                          v->other_tables);
    for (int i = from + 1; i <= target; i++)
        if (chain->items[i].up_postgresql == NULL)
            return pl_err_set(err, PL_E_MIGRATION, shown,
                              "migration %s (%s) has no '-- migrate:up:postgresql' section, so "
                              "it cannot run on PostgreSQL; the database stays at revision %s.",
                              chain->items[i].revision, chain->items[i].filename,
                              from >= 0 ? chain->items[from].revision : "base");
    for (int i = from; i > target; i--)
        if (!pl_migration_reversible_postgresql(&chain->items[i]))
            return pl_err_set(err, PL_E_MIGRATION, shown,
                              "migration %s (%s) cannot be undone on PostgreSQL (its "
                              "'-- migrate:down:postgresql' section is empty or missing); the "
                              "database stays at revision %s.",
                              chain->items[i].revision, chain->items[i].filename,
                              chain->items[from].revision);
    return 0;
}

/* Inside the transaction, under the lock: from the revision read now, walk
 * to `target`. */
static int walk(PGconn *conn, const pl_chain *chain, int target, int *moved, pl_err *err)
{
    pl_db_version v;
    int from;

    if (pl_pg_read_version(conn, &v, err) < 0)
        return -1;
    from = pl_chain_index(chain, v.revision);
    if (check_walk(conn, chain, &v, from, target, err) < 0)
        return -1;
    for (int i = from + 1; i <= target; i++, (*moved)++)
        if (apply(conn, &chain->items[i], 1, from >= 0 ? chain->items[from].revision : "base",
                  err) < 0)
            return -1;
    for (int i = from; i > target; i--, (*moved)++)
        if (apply(conn, &chain->items[i], 0, chain->items[from].revision, err) < 0)
            return -1;
    return 0;
}

int pl_pg_migrate(PGconn *conn, const pl_chain *chain, int target, int *moved, pl_err *err)
{
    char lock[96];

    PL_ASSERT_NO_GIL();
    *moved = 0;
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", PL_PG_MIGRATION_LOCK);
    if (exec_sql(conn, "BEGIN", "starting the migration", err) < 0)
        return -1;
    if (exec_sql(conn, lock, "waiting for other migrations", err) < 0 ||
        exec_sql(conn, BOOKKEEPING_SQL, "creating the version tables", err) < 0 ||
        walk(conn, chain, target, moved, err) < 0 ||
        exec_sql(conn, "COMMIT", "committing the migration", err) < 0) {
        PQclear(PQexec(conn, "ROLLBACK")); /* the error above is the one reported */
        *moved = 0;
        return -1;
    }
    return 0;
}
