/* migrate.c: revision bookkeeping and the upgrade loop. */
#include "migrate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Bookkeeping tables: Alembic's version table (so tools and the original
 * PromptLab recognise the revision) and our history with checksums. */
static const char BOOKKEEPING_SQL[] =
    "CREATE TABLE IF NOT EXISTS alembic_version ("
    " version_num VARCHAR(32) NOT NULL,"
    " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));"
    "CREATE TABLE IF NOT EXISTS promptlab_migrations ("
    " revision VARCHAR(32) NOT NULL PRIMARY KEY,"
    " checksum TEXT NOT NULL,"
    " message TEXT NOT NULL DEFAULT '',"
    " applied_at TEXT NOT NULL,"
    " duration_ms REAL NOT NULL);";

int pl_read_version(pl_conn *c, pl_db_version *out, pl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc, has_version_table = 0;

    memset(out, 0, sizeof *out);
    out->version_rows = -1;
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT name FROM sqlite_schema WHERE type = 'table'"
                            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "reading the schema");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (name != NULL && strcmp(name, "alembic_version") == 0)
            has_version_table = 1;
        else if (name != NULL && strcmp(name, "promptlab_migrations") != 0)
            out->other_tables++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "reading the schema");
    if (!has_version_table)
        return 0;
    out->version_rows = 0;
    rc = sqlite3_prepare_v2(c->db, "SELECT version_num FROM alembic_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "reading alembic_version");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (out->version_rows++ == 0)
            snprintf(out->revision, sizeof out->revision, "%s", v ? v : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "reading alembic_version");
    return 0;
}

int pl_migrate_check(const pl_db_version *v, const pl_chain *chain, const char *path,
                     pl_err *err)
{
    const char *head = chain->count > 0 ? chain->items[chain->count - 1].revision : "base";

    if (v->version_rows > 1)
        return pl_err_set(err, PL_E_MIGRATION, path,
                          "alembic_version holds %d rows (several heads); PromptLab keeps one "
                          "linear history. The file was left unchanged.",
                          v->version_rows);
    if (pl_chain_index(chain, v->revision) == -2)
        return pl_err_set(err, PL_E_UNKNOWN_REVISION, path,
                          "the database is at revision %s, which this version of PromptLab "
                          "does not know (its newest is %s): it was written by a newer "
                          "PromptLab. Upgrade PromptLab to open it; the file was left "
                          "unchanged.",
                          v->revision, head);
    if (v->revision[0] == '\0' && v->other_tables > 0)
        return pl_err_set(err, PL_E_MIGRATION, path,
                          "the database holds %d table(s) but no PromptLab revision, and its "
                          "layout is not one PromptLab recognises. It was left unchanged; "
                          "pass the path of a PromptLab database or of a new file.",
                          v->other_tables);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Run every statement of `sql`, one at a time, so that a failure names the
 * statement. Returns 0 or -1 with `err` naming the revision and statement. */
static int run_script(pl_conn *c, const char *sql, const pl_migration *m, const char *section,
                      pl_err *err)
{
    const char *p = sql;

    while (*p != '\0') {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(c->db, p, -1, &st, &tail);
        if (rc == SQLITE_OK && st != NULL) {
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                ;
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK) {
            int len = (int)(tail && tail > p ? tail - p : (int)strlen(p));
            while (len > 0 && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) {
                p++;
                len--;
            }
            char what[PL_ERR_MSG_MAX / 2];
            snprintf(what, sizeof what, "migration %s (%s), %s section, statement \"%.*s\"",
                     m->revision, m->filename, section, len > 600 ? 600 : len, p);
            rc = sqlite3_extended_errcode(c->db);
            sqlite3_finalize(st);
            pl_err_from_sqlite(err, rc, c->db, c->path, what);
            if (err->kind != PL_E_BUSY && err->kind != PL_E_FULL && err->kind != PL_E_READONLY)
                err->kind = PL_E_MIGRATION;
            return -1;
        }
        sqlite3_finalize(st);
        if (tail == NULL || tail == p)
            break;
        p = tail;
    }
    return 0;
}

/* Rows returned by PRAGMA foreign_key_check: 0, a count, or -1 on error. */
static int foreign_key_violations(pl_conn *c, pl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc, n = 0;

    rc = sqlite3_prepare_v2(c->db, "PRAGMA foreign_key_check", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "checking foreign keys");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        n++;
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "checking foreign keys");
    return n;
}

/* Record that `m` was applied, replacing the version row. */
static int record_revision(pl_conn *c, const pl_migration *m, double elapsed, pl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (pl_conn_exec(c, "DELETE FROM alembic_version", "updating alembic_version", err) < 0)
        return -1;
    rc = sqlite3_prepare_v2(c->db, "INSERT INTO alembic_version (version_num) VALUES (?)", -1,
                            &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, m->revision, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "updating alembic_version");
    rc = sqlite3_prepare_v2(c->db,
                            "INSERT OR REPLACE INTO promptlab_migrations"
                            " (revision, checksum, message, applied_at, duration_ms)"
                            " VALUES (?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'), ?)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, m->revision, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, m->checksum, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, m->message, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, elapsed);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE)
        return pl_err_from_sqlite(err, rc, c->db, c->path, "recording the migration");
    return 0;
}

/* One transaction: apply the migration after the database's current revision
 * if it is below `target`. Sets *done when nothing was left to apply. */
static int step_up(pl_conn *c, const pl_chain *chain, int target, int *done, pl_err *err)
{
    pl_db_version v;
    const pl_migration *m;
    double started;
    int idx, bad;

    *done = 0;
    /* Rebuilding a table (the documented ALTER TABLE procedure) needs foreign
     * keys off; the pragma is ignored inside a transaction. */
    if (pl_conn_exec(c, "PRAGMA foreign_keys=OFF", "preparing a migration", err) < 0)
        return -1;
    if (pl_conn_exec(c, "BEGIN IMMEDIATE", "locking the database for a migration", err) < 0)
        goto fail;
    /* Re-read after taking the lock: another process may have migrated. */
    if (pl_read_version(c, &v, err) < 0 || pl_migrate_check(&v, chain, c->path, err) < 0)
        goto fail;
    idx = pl_chain_index(chain, v.revision);
    if (idx >= target) {
        *done = 1;
        if (pl_conn_exec(c, "COMMIT", "finishing the migration check", err) < 0)
            goto fail;
        goto out;
    }
    m = &chain->items[idx + 1];
    started = now_ms();
    if (pl_conn_exec(c, BOOKKEEPING_SQL, "creating the version tables", err) < 0)
        goto fail;
    if (run_script(c, m->up, m, "up", err) < 0)
        goto fail;
    bad = foreign_key_violations(c, err);
    if (bad < 0)
        goto fail;
    if (bad > 0) {
        pl_err_set(err, PL_E_MIGRATION, c->path,
                   "migration %s (%s) left %d row(s) violating foreign keys; it was rolled "
                   "back and the database stays at the previous revision.",
                   m->revision, m->filename, bad);
        goto fail;
    }
    if (record_revision(c, m, now_ms() - started, err) < 0)
        goto fail;
    if (pl_conn_exec(c, "COMMIT", "committing the migration", err) < 0)
        goto fail;
out:
    return pl_conn_exec(c, "PRAGMA foreign_keys=ON", "finishing a migration", err);
fail:
    pl_conn_rollback_quietly(c);
    sqlite3_exec(c->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    return -1;
}

int pl_migrate_up(pl_conn *c, const pl_chain *chain, int target, int *applied, pl_err *err)
{
    int count = 0, done = 0;

    while (!done) {
        if (step_up(c, chain, target, &done, err) < 0) {
            if (applied != NULL)
                *applied = count;
            return -1;
        }
        if (!done)
            count++;
    }
    if (applied != NULL)
        *applied = count;
    return 0;
}
