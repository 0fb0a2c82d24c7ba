/* migrate.c: revision bookkeeping, the upgrade and downgrade loops, backups. */
#include "migrate.h"
#include "util.h"
#include "lockorder.h"
#include "settings.h"
#include "schema.h"
#include "query.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char BOOKKEEPING_SQL[] = PL_BOOKKEEPING_SQL("REAL");

static const char SET_VERSION_SQL[] = "INSERT INTO alembic_version (version_num) VALUES (?)";
static const char RECORD_SQL[] = "INSERT OR REPLACE INTO promptlab_migrations"
                                 " (revision, checksum, message, applied_at, duration_ms)"
                                 " VALUES (?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'), ?)";
static const char FORGET_SQL[] = "DELETE FROM promptlab_migrations WHERE revision = ?";

/* --- adopting a database of an earlier release ------------------------------
 *
 * A database recognised at the layout of an earlier release (schema.h) is
 * marked at its revision and, in the same transaction, adopted: what those
 * releases stored differently from this package is rewritten once, here, and
 * never by a migration file (a database created by this package at those
 * revisions never needs it, and the files' checksums stay as shipped).
 *
 * - Asset names (L1, PromptLab 0.0.3): experiments.asset referred to the
 *   template and dataset by assets.asset_id ("prompt_template_id",
 *   "dataset_id"); the names are added as "prompt_template_name" and
 *   "dataset_name", which every later release and this package read. The id
 *   keys stay, and so do the ids in legacy_asset_ids (migration 0002).
 * - Times (L1-L3): the releases stamped created_at with Python's naive
 *   datetime.now(), the local time of the machine, while this package (and
 *   SQLite's CURRENT_TIMESTAMP) writes UTC. Values of the shapes Python wrote,
 *   "YYYY-MM-DDTHH:MM:SS[.ffffff]" (isoformat) and "YYYY-MM-DD HH:MM:SS.ffffff"
 *   (str, SQLAlchemy), are read in the local time zone of the process that
 *   upgrades and rewritten in UTC as "YYYY-MM-DD HH:MM:SS" plus the original
 *   fraction, so that old and new rows sort by time. Other values (SQLite's
 *   CURRENT_TIMESTAMP "YYYY-MM-DD HH:MM:SS" is UTC already, dates, other text)
 *   are kept as they are. Columns: created_at of experiments and
 *   experiment_result, of assets up to L2 (0.1.11 stamped assets in UTC) and of
 *   users in L3 or adopted from 0.1.11; deployment_time was always
 *   CURRENT_TIMESTAMP.
 * - The users table that PromptLab 0.1.11 added to a 0.1.3 file (L2) before
 *   failing: its rows are moved aside before migration 0003, which creates
 *   users, and put back, ids and values unchanged, after it. */

#define PL_DATE "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
#define PL_TIME "[0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
#define PL_UTC_OF(col) "strftime('%Y-%m-%d %H:%M:%S', " col ", 'utc')"
/* Rewrite table.created_at from local time to UTC where it has a shape that
 * Python wrote (see above). */
#define PL_LOCAL_TO_UTC(table)                                                                     \
    "UPDATE " table " SET created_at = " PL_UTC_OF(                                                \
        "created_at") " || substr(created_at, 20)\n"                                               \
                      " WHERE typeof(created_at) = 'text'\n"                                       \
                      "   AND (created_at GLOB '" PL_DATE "T" PL_TIME "'\n"                        \
                      "        OR created_at GLOB '" PL_DATE "[T ]" PL_TIME                        \
                      ".[0-9][0-9][0-9][0-9][0-9][0-9]')\n"                                        \
                      "   AND " PL_UTC_OF("created_at") " IS NOT NULL;\n"

/* Add the asset's name next to its id (`key` is prompt_template or dataset). */
#define PL_NAME_FROM_ID(key)                                                                       \
    "UPDATE experiments SET asset = json_set(asset, '$." key "_name', COALESCE(\n"                 \
    "    (SELECT a.asset_name FROM assets a\n"                                                     \
    "      WHERE a.asset_id = json_extract(experiments.asset, '$." key "_id')\n"                   \
    "        AND a.asset_version IS json_extract(experiments.asset, '$." key "_version')\n"        \
    "        AND a.asset_name IS NOT NULL ORDER BY a.rowid LIMIT 1),\n"                            \
    "    (SELECT a.asset_name FROM assets a\n"                                                     \
    "      WHERE a.asset_id = json_extract(experiments.asset, '$." key "_id')\n"                   \
    "        AND a.asset_name IS NOT NULL ORDER BY a.rowid LIMIT 1)))\n"                           \
    " WHERE json_valid(asset) AND json_type(asset) = 'object'\n"                                   \
    "   AND json_type(asset, '$." key "_name') IS NULL\n"                                          \
    "   AND EXISTS (SELECT 1 FROM assets a\n"                                                      \
    "                WHERE a.asset_id = json_extract(experiments.asset, '$." key "_id')\n"         \
    "                  AND a.asset_name IS NOT NULL);\n"

static const char ADOPT_NAMES_SQL[] = PL_NAME_FROM_ID("prompt_template") PL_NAME_FROM_ID("dataset");
static const char ADOPT_TIMES_L2_SQL[] =
    PL_LOCAL_TO_UTC("assets") PL_LOCAL_TO_UTC("experiments") PL_LOCAL_TO_UTC("experiment_result");
static const char ADOPT_TIMES_L3_SQL[] =
    PL_LOCAL_TO_UTC("experiments") PL_LOCAL_TO_UTC("experiment_result") PL_LOCAL_TO_UTC("users");
static const char ADOPT_USERS_AWAY_SQL[] = PL_LOCAL_TO_UTC(
    "users") "CREATE TEMP TABLE promptlab_adopted_users AS SELECT * FROM main.users;\n"
             "DROP TABLE main.users;\n";
static const char ADOPT_USERS_BACK_SQL[] =
    "INSERT INTO main.users (id, username, password_hash, role, status, created_at)\n"
    "    SELECT id, username, password_hash, role, status, created_at\n"
    "    FROM temp.promptlab_adopted_users ORDER BY rowid;\n"
    "DROP TABLE temp.promptlab_adopted_users;\n";

/* Append to `s` the adoption of a database recognised at chain index `idx`
 * with pl_migrate_locate's `detected` bits: `after` 0 gives what runs right
 * after it is marked, `after` 1 what runs after the first migration that
 * follows. Appends nothing for a layout that needs no adoption. */
static void adoption_sql(sqlite3_str *s, const pl_chain *chain, int idx, int detected, int after)
{
    const char *rev = idx >= 0 ? chain->items[idx].revision : "";

    if (!(detected & PL_DETECTED))
        return;
    if (after) {
        if (detected & PL_DETECTED_EARLY_USERS)
            sqlite3_str_appendall(s, ADOPT_USERS_BACK_SQL);
        return;
    }
    if (strcmp(rev, PL_REVISION_L1) == 0)
        sqlite3_str_appendall(s, ADOPT_NAMES_SQL);
    if (strcmp(rev, PL_REVISION_L1) == 0 || strcmp(rev, PL_REVISION_L2) == 0)
        sqlite3_str_appendall(s, ADOPT_TIMES_L2_SQL);
    if (strcmp(rev, PL_REVISION_L3) == 0)
        sqlite3_str_appendall(s, ADOPT_TIMES_L3_SQL);
    if (detected & PL_DETECTED_EARLY_USERS)
        sqlite3_str_appendall(s, ADOPT_USERS_AWAY_SQL);
}

/* Run adoption_sql(..., after) on `c`. Requires the write transaction.
 * Returns 0 or -1 with `err` set. */
static int adopt(pl_conn *c, const pl_chain *chain, int idx, int detected, int after, pl_err *err)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    char *sql;
    int rc = 0;

    assert(!sqlite3_get_autocommit(c->db));
    adoption_sql(s, chain, idx, detected, after);
    if (sqlite3_str_errcode(s) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        return pl_err_set(err, PL_E_NOMEM, c->path, "out of memory adopting the database");
    }
    sql = sqlite3_str_finish(s);
    if (sql != NULL && sql[0] != '\0')
        rc = pl_conn_exec(c, sql, "adopting the database of an earlier PromptLab release", err);
    sqlite3_free(sql);
    if (rc < 0 && err->kind != PL_E_BUSY && err->kind != PL_E_FULL && err->kind != PL_E_READONLY)
        err->kind = PL_E_MIGRATION;
    return rc;
}

/* The refusal to stop a database with PL_DETECTED_EARLY_USERS at its
 * recognised revision (or to downgrade it): its users table can only be
 * adopted by the migration that follows. Returns -1. */
static int early_users_refused(const pl_chain *chain, int idx, const char *path, pl_err *err)
{
    return pl_err_set(err, PL_E_MIGRATION, path,
                      "the database has the layout of revision %s (PromptLab 0.1.3) plus the "
                      "users table that PromptLab 0.1.11 added when it opened the file; that "
                      "table is adopted by the upgrade to revision %s, so the database can "
                      "only be upgraded to %s or later. The file was left unchanged.",
                      chain->items[idx].revision, chain->items[idx + 1].revision,
                      chain->items[idx + 1].revision);
}

/* Count the tables of `c` into `out` (other_tables) and report whether
 * alembic_version is one of them. Returns 0 or -1 with `err` set. */
static int read_tables(pl_conn *c, pl_db_version *out, int *has_version_table, pl_err *err)
{
    pl_query q;
    int rc;

    *has_version_table = 0;
    if (pl_query_start(&q, c,
                       "SELECT name FROM sqlite_schema WHERE type = 'table'"
                       " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                       "reading the schema", err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0) {
        const char *name = (const char *)sqlite3_column_text(q.st, 0);
        if (name != NULL && strcmp(name, "alembic_version") == 0)
            *has_version_table = 1;
        else if (name != NULL && strcmp(name, "promptlab_migrations") != 0)
            out->other_tables++;
    }
    pl_query_end(&q);
    return rc;
}

int pl_read_version(pl_conn *c, pl_db_version *out, pl_err *err)
{
    pl_query q;
    int rc, has_version_table = 0;

    memset(out, 0, sizeof *out);
    out->version_rows = -1;
    if (read_tables(c, out, &has_version_table, err) < 0)
        return -1;
    if (!has_version_table)
        return 0;
    out->version_rows = 0;
    if (pl_query_start(&q, c, "SELECT version_num FROM alembic_version", "reading alembic_version",
                       err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0) {
        const char *v = (const char *)sqlite3_column_text(q.st, 0);
        if (out->version_rows++ == 0)
            snprintf(out->revision, sizeof out->revision, "%s", v ? v : "");
        if (v != NULL && strlen(v) > PL_REVISION_MAX)
            out->revision_too_long = 1; /* no revision of ours is that long */
    }
    pl_query_end(&q);
    return rc;
}

int pl_migrate_locate(pl_conn *c, const pl_chain *chain, pl_db_version *v, int *index,
                      int *detected, pl_err *err)
{
    if (detected != NULL)
        *detected = 0;
    *index = -1;
    if (pl_read_version(c, v, err) < 0 || pl_migrate_check(v, chain, c->path, err) < 0)
        return -1;
    if (v->revision[0] != '\0') {
        *index = pl_chain_index(chain, v->revision);
        return 0;
    }
    if (v->other_tables == 0)
        return 0; /* a new, empty database */
    int early = 0;
    if (pl_schema_detect(c->db, c->path, chain, index, &early, err) < 0)
        return -1;
    if (detected != NULL)
        *detected = PL_DETECTED | (early ? PL_DETECTED_EARLY_USERS : 0);
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
        if (rc == SQLITE_OK && st != NULL && pl_sql_controls_transaction(sqlite3_sql(st))) {
            /* A COMMIT here would end the migration's transaction half-way and
             * release the write lock before the revision is recorded. */
            int len = (int)(tail > p ? tail - p : (int)strlen(p));
            pl_err_set(err, PL_E_MIGRATION, c->path,
                       "migration %s (%s), %s section: \"%.*s\" manages the transaction, but "
                       "each migration already runs in one transaction of its own; remove "
                       "the statement.",
                       m->revision, m->filename, section, len > 200 ? 200 : len, p);
            sqlite3_finalize(st);
            return -1;
        }
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
    pl_query q;
    int rc, n = 0;

    if (pl_query_start(&q, c, "PRAGMA foreign_key_check", "checking foreign keys", err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0)
        n++;
    pl_query_end(&q);
    return rc < 0 ? -1 : n;
}

/* Run one statement `sql` binding, as far as it has parameters, the texts a, b,
 * t (static: they must outlive the call) and the double d. Returns 0 or -1 with
 * `err` naming `what` (also when a bind fails). */
static int exec_bound(pl_conn *c, const char *sql, const char *a, const char *b, const char *t,
                      double d, const char *what, pl_err *err)
{
    const char *const texts[] = {a, b, t};
    pl_query q;
    int rc = 0, n;

    if (pl_query_start(&q, c, sql, what, err) < 0)
        return -1;
    n = sqlite3_bind_parameter_count(q.st);
    for (int i = 0; i < 3 && i < n && rc == 0; i++)
        rc = pl_query_bind_text(&q, i + 1, texts[i], err);
    if (rc == 0 && n >= 4)
        rc = pl_query_bind_double(&q, 4, d, err);
    if (rc == 0 && pl_query_next(&q, err) < 0)
        rc = -1;
    pl_query_end(&q);
    return rc;
}

/* Make `revision` ("" for base) the one row of alembic_version. */
static int set_version(pl_conn *c, const char *revision, pl_err *err)
{
    if (pl_conn_exec(c, "DELETE FROM alembic_version", "updating alembic_version", err) < 0)
        return -1;
    if (revision[0] == '\0')
        return 0; /* base: Alembic's empty table */
    return exec_bound(c, SET_VERSION_SQL, revision, NULL, NULL, 0, "updating alembic_version", err);
}

/* Record that `m` was applied (in `elapsed` ms) and move the version to it. */
static int record_up(pl_conn *c, const pl_migration *m, double elapsed, pl_err *err)
{
    if (set_version(c, m->revision, err) < 0)
        return -1;
    return exec_bound(c, RECORD_SQL, m->revision, m->checksum, m->message, elapsed,
                      "recording the migration", err);
}

/* Record that `m` was undone: the version moves to its parent. */
static int record_down(pl_conn *c, const pl_migration *m, pl_err *err)
{
    if (set_version(c, m->parent, err) < 0)
        return -1;
    return exec_bound(c, FORGET_SQL, m->revision, NULL, NULL, 0, "recording the downgrade", err);
}

/* Mark a database recognised at chain index `index`: the migrations up to it
 * count as applied (duration 0). Requires the write transaction. */
static int stamp(pl_conn *c, const pl_chain *chain, int index, pl_err *err)
{
    assert(!sqlite3_get_autocommit(c->db));
    if (pl_conn_exec(c, BOOKKEEPING_SQL, "creating the version tables", err) < 0)
        return -1;
    for (int i = 0; i <= index; i++)
        if (record_up(c, &chain->items[i], 0.0, err) < 0)
            return -1;
    return 0;
}

static int irreversible(const pl_migration *m, const char *path, const char *at, pl_err *err)
{
    return pl_err_set(err, PL_E_MIGRATION, path,
                      "migration %s (%s) has an empty '-- migrate:down' section, so it cannot "
                      "be undone; the database stays at revision %s. Restore a backup taken "
                      "before it to go further back.",
                      m->revision, m->filename, at);
}

/* Inside the step's write transaction: find the revision (re-read under the
 * lock: another process may have migrated), refuse a database that cannot
 * stop where this step would leave it, and mark and adopt a recognised
 * layout. Sets *idx and *detected. Returns 0 or -1 with `err` set. */
static int locate_under_lock(pl_conn *c, const pl_chain *chain, int target, int dir, int *idx,
                             int *detected, pl_err *err)
{
    pl_db_version v;

    if (pl_migrate_locate(c, chain, &v, idx, detected, err) < 0)
        return -1;
    if ((*detected & PL_DETECTED_EARLY_USERS) && (dir < 0 || *idx >= target))
        return early_users_refused(chain, *idx, c->path, err);
    if (*detected &&
        (stamp(c, chain, *idx, err) < 0 || adopt(c, chain, *idx, *detected, 0, err) < 0))
        return -1;
    return 0;
}

/* Inside the step's write transaction: run the `section` ("up" or "down") of
 * `m`, moving the database from chain index `idx`, and record it. A
 * migration may not add rows that break foreign keys: rows that already broke
 * one (older PromptLab never enforced them) are kept. Returns 0 or -1 with
 * `err` set. */
static int apply_migration(pl_conn *c, const pl_chain *chain, const pl_migration *m, int idx,
                           int detected, int dir, pl_err *err)
{
    const char *section = dir > 0 ? "up" : "down";
    double started = now_ms();
    int before, after;

    if (pl_conn_exec(c, BOOKKEEPING_SQL, "creating the version tables", err) < 0)
        return -1;
    before = foreign_key_violations(c, err);
    if (before < 0 || run_script(c, dir > 0 ? m->up : m->down, m, section, err) < 0)
        return -1;
    if (detected && adopt(c, chain, idx, detected, 1, err) < 0)
        return -1;
    after = foreign_key_violations(c, err);
    if (after < 0)
        return -1;
    if (after > before)
        return pl_err_set(err, PL_E_MIGRATION, c->path,
                          "the %s section of migration %s (%s) left %d more row(s) violating "
                          "foreign keys (PRAGMA foreign_key_check); it was rolled back and the "
                          "database stays at revision %s.",
                          section, m->revision, m->filename, after - before,
                          idx >= 0 ? chain->items[idx].revision : "base");
    return dir > 0 ? record_up(c, m, now_ms() - started, err) : record_down(c, m, err);
}

/* After a failed step: roll back and switch foreign keys on again. The step's
 * error stays the one reported; when foreign keys cannot be switched back on,
 * the message says so (the connection must not be reused then: the callers
 * close it after a failed migration). Returns -1. */
static int step_failed(pl_conn *c, pl_err *err)
{
    pl_err restore;
    size_t len;

    pl_conn_rollback_quietly(c);
    if (pl_conn_exec(c, "PRAGMA foreign_keys=ON", "switching foreign keys back on", &restore) < 0) {
        len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len, " (Then: %s)", restore.msg);
    }
    return -1;
}

/* One transaction that moves the database one migration towards `target`:
 * up (dir > 0) applies the migration after the current revision, down
 * (dir < 0) undoes the current one. The revision is re-read under the lock.
 * Sets *done when the database already was at `target` (a recognised legacy
 * layout is still marked then). On error everything of this step is rolled
 * back, and a connection whose foreign keys could not be switched back on is
 * left so (see step_failed): close it. */
static int step(pl_conn *c, const pl_chain *chain, int target, int dir, int *done, pl_err *err)
{
    const pl_migration *m;
    int idx, detected = 0;

    *done = 0;
    /* Rebuilding a table (the documented ALTER TABLE procedure) needs foreign
     * keys off; the pragma is ignored inside a transaction. */
    if (pl_conn_exec(c, "PRAGMA foreign_keys=OFF", "preparing a migration", err) < 0)
        return step_failed(c, err);
    if (pl_conn_exec(c, "BEGIN IMMEDIATE", "locking the database for a migration", err) < 0 ||
        locate_under_lock(c, chain, target, dir, &idx, &detected, err) < 0)
        return step_failed(c, err);
    if (dir > 0 ? idx >= target : idx <= target) {
        *done = 1;
        if (pl_conn_exec(c, "COMMIT", "finishing the migration check", err) < 0)
            return step_failed(c, err);
    } else {
        m = dir > 0 ? &chain->items[idx + 1] : &chain->items[idx];
        if (dir < 0 && !pl_migration_reversible(m)) {
            irreversible(m, c->path, m->revision, err);
            return step_failed(c, err);
        }
        if (apply_migration(c, chain, m, idx, detected, dir, err) < 0 ||
            pl_conn_exec(c, "COMMIT", "committing the migration", err) < 0)
            return step_failed(c, err);
    }
    return pl_conn_exec(c, "PRAGMA foreign_keys=ON", "finishing a migration", err);
}

/* Step towards `target` until there; *count receives the steps taken. */
static int walk(pl_conn *c, const pl_chain *chain, int target, int dir, int *count, pl_err *err)
{
    int n = 0, done = 0, rc = 0;

    while (!done) {
        if (step(c, chain, target, dir, &done, err) < 0) {
            rc = -1;
            break;
        }
        if (!done)
            n++;
    }
    if (count != NULL)
        *count = n;
    return rc;
}

int pl_migrate_up(pl_conn *c, const pl_chain *chain, int target, int *applied, pl_err *err)
{
    PL_ASSERT_NO_GIL();
    return walk(c, chain, target, 1, applied, err);
}

int pl_migrate_down(pl_conn *c, const pl_chain *chain, int target, int *undone, pl_err *err)
{
    pl_db_version v;
    int idx;

    PL_ASSERT_NO_GIL();
    if (undone != NULL)
        *undone = 0;
    /* Refuse an impossible downgrade before undoing any part of it. */
    if (pl_migrate_locate(c, chain, &v, &idx, NULL, err) < 0)
        return -1;
    for (int i = idx; i > target; i--) {
        if (!pl_migration_reversible(&chain->items[i]))
            return irreversible(&chain->items[i], c->path, chain->items[idx].revision, err);
    }
    return walk(c, chain, target, -1, undone, err);
}

int pl_migrate_backup(pl_conn *c, const char *dest, pl_err *err)
{
    sqlite3 *out = NULL;
    sqlite3_backup *b = NULL;
    struct stat st;
    int fd, rc, waited = 0, limit = pl_settings_busy_timeout_ms(), created = 0;
    mode_t mode = 0600;

    /* The only descriptor the core opens itself on a database-to-be: a new
     * file (O_EXCL), which no connection can hold yet, so closing it drops no
     * lock (README, "Files belong to SQLite"). SQLite writes its pages. */
    if (stat(c->path, &st) == 0)
        mode = st.st_mode & 0666;
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return pl_err_set(err, errno == EEXIST ? PL_E_DATABASE : PL_E_PATH, c->path,
                          "cannot create the backup file %s (%s); check that its folder is "
                          "writable.",
                          dest, strerror(errno));
    close(fd);
    created = 1;
    rc = sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, out, dest, "opening the backup file");
        goto fail;
    }
    b = sqlite3_backup_init(out, "main", c->db, "main");
    if (b == NULL) {
        pl_err_from_sqlite(err, sqlite3_extended_errcode(out), out, dest, "starting the backup");
        goto fail;
    }
    /* All pages in one step: one consistent snapshot of the source. */
    while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        if (waited >= limit)
            break;
        pl_sleep_ms(10);
        waited += 10;
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        pl_err_from_sqlite(err, rc, NULL, c->path, "copying the database to the backup");
        pl_err_prefix(err, dest);
        goto fail;
    }
    rc = sqlite3_close(out);
    out = NULL;
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, NULL, dest, "closing the backup file");
        goto fail;
    }
    return 0;
fail:
    sqlite3_close(out);
    if (created)
        unlink(dest);
    return -1;
}

/* `text` for a "-- " comment line: line breaks become spaces, so that a file
 * name or path cannot start a line of SQL in the printed script. */
static const char *one_line(const char *text, char *buf, size_t size)
{
    size_t i = 0;
    for (; text[i] != '\0' && i + 1 < size; i++)
        buf[i] = (text[i] == '\n' || text[i] == '\r') ? ' ' : text[i];
    buf[i] = '\0';
    return buf;
}

/* Append the statements recording that `m` was applied, as literal SQL. */
static void script_record_up(sqlite3_str *s, const pl_migration *m)
{
    sqlite3_str_appendf(s,
                        "DELETE FROM alembic_version;\n"
                        "INSERT INTO alembic_version (version_num) VALUES (%Q);\n"
                        "INSERT OR REPLACE INTO promptlab_migrations"
                        " (revision, checksum, message, applied_at, duration_ms)\n"
                        "    VALUES (%Q, %Q, %Q, strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now'), 0);\n",
                        m->revision, m->revision, m->checksum, m->message);
}

/* Room for a file name or message in a comment line of the script (cut to fit). */
#define SCRIPT_NAME_MAX 1024

/* Append the steps of one migration of the script: chain step `i` towards
 * `dir` (the migration after i going up, i itself going down), in its own
 * transaction unless `open_adoption` (the transaction that marked a
 * recognised database is still open: it closes after this step, with the
 * rest of the adoption). Returns 0, or -1 when the migration cannot be undone
 * (said in a comment: the script stops there). */
static int script_migration(sqlite3_str *s, const pl_chain *chain, int i, int dir, int from,
                            int detected, int open_adoption)
{
    const pl_migration *m = &chain->items[dir > 0 ? i + 1 : i];
    const char *section = dir > 0 ? m->up : m->down;
    char safe_file[SCRIPT_NAME_MAX], safe_msg[SCRIPT_NAME_MAX];

    if (dir < 0 && !pl_migration_reversible(m)) {
        sqlite3_str_appendf(s,
                            "\n-- Migration %s (%s) has an empty down section: it cannot "
                            "be undone,\n-- so the downgrade stops with an error here.\n",
                            m->revision, one_line(m->filename, safe_file, sizeof safe_file));
        return -1;
    }
    sqlite3_str_appendf(s, "\n-- %s %s -> %s: %s (%s)\n%s%s", dir > 0 ? "Upgrade" : "Downgrade",
                        dir > 0 ? (i >= 0 ? chain->items[i].revision : "base") : m->revision,
                        dir > 0 ? m->revision : (m->parent[0] ? m->parent : "base"),
                        one_line(m->message, safe_msg, sizeof safe_msg),
                        one_line(m->filename, safe_file, sizeof safe_file),
                        open_adoption ? "" : "BEGIN IMMEDIATE;\n", BOOKKEEPING_SQL);
    sqlite3_str_appendall(s, section);
    if (section[0] != '\0' && section[strlen(section) - 1] != '\n')
        sqlite3_str_appendchar(s, 1, '\n');
    if (open_adoption)
        adoption_sql(s, chain, from, detected, 1);
    if (dir > 0) {
        script_record_up(s, m);
    } else {
        sqlite3_str_appendall(s, "DELETE FROM alembic_version;\n");
        if (m->parent[0] != '\0')
            sqlite3_str_appendf(s, "INSERT INTO alembic_version (version_num) VALUES (%Q);\n",
                                m->parent);
        sqlite3_str_appendf(s, "DELETE FROM promptlab_migrations WHERE revision = %Q;\n",
                            m->revision);
    }
    sqlite3_str_appendall(s, "COMMIT;\n");
    return 0;
}

/* Append the marking and adoption of a database recognised at chain index
 * `from` (as step() does it in the transaction of its first step). Returns 1
 * when that transaction is left open for the first migration of an upgrade,
 * 0 when it was committed here. */
static int script_adoption(sqlite3_str *s, const pl_chain *chain, int from, int to, int detected)
{
    char safe_file[SCRIPT_NAME_MAX];

    sqlite3_str_appendf(s,
                        "\n-- The database has no revision; its tables match revision %s "
                        "(%s):\n-- mark it there and adopt what the release that wrote it "
                        "stored differently.\nBEGIN IMMEDIATE;\n%s",
                        chain->items[from].revision,
                        one_line(chain->items[from].filename, safe_file, sizeof safe_file),
                        BOOKKEEPING_SQL);
    for (int i = 0; i <= from; i++)
        script_record_up(s, &chain->items[i]);
    adoption_sql(s, chain, from, detected, 0);
    if (to > from)
        return 1;
    sqlite3_str_appendall(s, "COMMIT;\n");
    return 0;
}

char *pl_migrate_script(const pl_chain *chain, const char *path, int from, int to, int detected,
                        pl_err *err)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    const char *from_rev = from >= 0 ? chain->items[from].revision : "base";
    const char *to_rev = to >= 0 ? chain->items[to].revision : "base";
    int dir = to >= from ? 1 : -1, open_adoption = 0;
    char safe_path[PL_ERR_PATH_MAX];

    sqlite3_str_appendf(s,
                        "-- PromptLab: the SQL that would %s %s from %s to %s.\n"
                        "-- Nothing was run. Each migration is one transaction; foreign keys\n"
                        "-- are off during it and PRAGMA foreign_key_check may not report more\n"
                        "-- rows after it than before.\n\n"
                        "PRAGMA foreign_keys=OFF;\n",
                        dir > 0 ? "upgrade" : "downgrade",
                        one_line(path, safe_path, sizeof safe_path), from_rev, to_rev);
    if ((detected & PL_DETECTED_EARLY_USERS) && from >= 0 && to <= from) {
        sqlite3_free(sqlite3_str_finish(s));
        early_users_refused(chain, from, path, err);
        return NULL;
    }
    if (detected && from >= 0)
        open_adoption = script_adoption(s, chain, from, to, detected);
    if (from == to)
        sqlite3_str_appendall(s, "\n-- Nothing to do: the database is already there.\n");
    for (int i = from; i != to; i += dir) {
        if (script_migration(s, chain, i, dir, from, detected, open_adoption) < 0)
            break;
        open_adoption = 0;
    }
    sqlite3_str_appendall(s, "\nPRAGMA foreign_keys=ON;\n");
    if (sqlite3_str_errcode(s) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        pl_err_set(err, PL_E_NOMEM, path, "out of memory writing the migration SQL");
        return NULL;
    }
    return sqlite3_str_finish(s);
}
