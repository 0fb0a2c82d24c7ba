/* migcmd.c: migrate(), downgrade() and migration_script() for the command line. */
#include "migcmd.h"
#include "environ.h"
#include "filecheck.h"
#include "inspect.h"
#include "migrate.h"
#include "paths.h"
#include "pgconn.h"
#include "pgmigrate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One command on one database file: inputs, then what it did. */
typedef struct {
    char path[PATH_MAX + 1];     /* PostgreSQL: the URL, which may hold the password */
    int postgres;                /* path is a postgresql:// URL */
    char shown[PL_PG_SHOWN_MAX]; /* PostgreSQL: the URL without the password */
    const char *dir;             /* migrations folder, NULL: the one in use */
    const char *target;          /* NULL: head (upgrades only) */
    int down;                    /* run down sections */
    int backup;                  /* take a backup before changing a database with data */
    int script_only;             /* produce the SQL, change nothing */
    char before[PL_REVISION_MAX + 1];
    char after[PL_REVISION_MAX + 1];
    char detected[PL_REVISION_MAX + 1];
    int count;
    char backup_path[PATH_MAX + 96];
    char *script; /* sqlite3_free */
} mig_job;

static const char *rev_name(const pl_chain *chain, int index)
{
    return index >= 0 ? chain->items[index].revision : "base";
}

/* Turn the target spelling into a chain index: a revision id or a unique
 * prefix of one, "head", "base", or a relative "-N" / "+N" from `current`.
 * The target must lie in the command's direction. Returns 0 or -1. */
static int resolve_target(const pl_chain *chain, const mig_job *j, int current, int *out,
                          pl_err *err)
{
    const char *spec = j->target;
    int t = -2;

    if (spec == NULL || strcmp(spec, "head") == 0) {
        if (j->down)
            return pl_err_set(err, PL_E_MIGRATION, j->path,
                              "a downgrade needs a target: a revision, -1 (one step) or "
                              "'base'.");
        t = chain->count - 1;
    } else if (strcmp(spec, "base") == 0) {
        t = -1;
    } else if ((spec[0] == '-' || spec[0] == '+') && spec[1] >= '0' && spec[1] <= '9') {
        char *end = NULL;
        long n = strtol(spec + 1, &end, 10);
        if (*end != '\0')
            return pl_err_set(err, PL_E_MIGRATION, j->path,
                              "'%s' is not a step count; pass a revision, 'base', 'head', "
                              "-N or +N.",
                              spec);
        if (n <= chain->count + 1)
            t = current + (spec[0] == '-' ? -(int)n : (int)n);
        if (t < -1 || t >= chain->count)
            return pl_err_set(err, PL_E_MIGRATION, j->path,
                              "the database is at %s; %s steps from there leave the chain "
                              "(%d migration(s), %s to %s).",
                              rev_name(chain, current), spec, chain->count, rev_name(chain, 0),
                              rev_name(chain, chain->count - 1));
    } else {
        int matches = 0;
        size_t n = strlen(spec);
        for (int i = 0; i < chain->count; i++) {
            if (strcmp(chain->items[i].revision, spec) == 0) {
                t = i;
                matches = 1;
                break;
            }
            if (n >= 4 && strncmp(chain->items[i].revision, spec, n) == 0) {
                t = i;
                matches++;
            }
        }
        if (matches != 1)
            return pl_err_set(err, PL_E_MIGRATION, j->path,
                              "%s revision '%s' in %s (head is %s); pass a full revision id "
                              "from `promptlab db status`, 'head' or 'base'.",
                              matches ? "more than one migration starts with" : "there is no", spec,
                              chain->dir, rev_name(chain, chain->count - 1));
    }
    if (!j->down && t < current)
        return pl_err_set(err, PL_E_MIGRATION, j->path,
                          "the database is at revision %s, past %s; to go back, run "
                          "`promptlab db downgrade -d FILE -r %s`.",
                          rev_name(chain, current), rev_name(chain, t), rev_name(chain, t));
    if (j->down && t > current)
        return pl_err_set(err, PL_E_MIGRATION, j->path,
                          "the database is at revision %s, before %s; to go forward, run "
                          "`promptlab db migrate -d FILE --to %s`.",
                          rev_name(chain, current), rev_name(chain, t), rev_name(chain, t));
    *out = t;
    return 0;
}

/* Room for a backup's UTC time stamp, "YYYYMMDDTHHMMSSZ" (16 characters for
 * any four-digit year) and its NUL, with some to spare. */
#define BACKUP_STAMP_MAX 32

/* A new file name next to the database for a backup at `rev`. */
static void backup_name(const mig_job *j, const char *rev, int attempt, char *out, size_t size)
{
    char stamp[BACKUP_STAMP_MAX];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    if (attempt == 0)
        snprintf(out, size, "%s.%s-%s.bak", j->path, rev, stamp);
    else
        snprintf(out, size, "%s.%s-%s-%d.bak", j->path, rev, stamp, attempt + 1);
}

/* Back the database of `c` up into a new file named after `rev`; its path is
 * left in j->backup_path. Returns 0 or -1 with `err` (no file left behind). */
static int take_backup(pl_conn *c, mig_job *j, const char *rev, pl_err *err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        backup_name(j, rev, attempt, j->backup_path, sizeof j->backup_path);
        if (access(j->backup_path, F_OK) != 0)
            return pl_migrate_backup(c, j->backup_path, err);
    }
    return pl_err_set(err, PL_E_DATABASE, j->path, "cannot find a free name for a backup.");
}

/* The SQL a command would run, reading the database read-only. */
static int script_job(mig_job *j, const pl_chain *chain, int exists, pl_err *err)
{
    pl_conn c = {0};
    pl_db_version v;
    int idx = -1, detected = 0, target, rc = -1;

    if (exists) {
        if (pl_conn_open_readonly(&c, j->path, err) < 0 ||
            pl_migrate_locate(&c, chain, &v, &idx, &detected, err) < 0)
            goto done;
    }
    if (resolve_target(chain, j, idx, &target, err) < 0)
        goto done;
    j->script = pl_migrate_script(chain, j->path, idx, target, detected, err);
    if (j->script != NULL)
        rc = 0;
done:
    pl_conn_close_readonly(&c);
    return rc;
}

/* run_job() for a PostgreSQL database: one locked transaction (pgmigrate.h).
 * Backups and printed scripts are SQLite's features for now. */
static int run_postgres_job(mig_job *j, const pl_chain *chain, pl_err *err)
{
    PGconn *conn;
    pl_db_version v;
    int idx, target, rc = -1;

    if (j->backup || j->script_only)
        return pl_err_set(err, PL_E_MIGRATION, NULL,
                          "%s is not available for PostgreSQL databases yet; %s",
                          j->backup ? "--backup" : "--sql",
                          j->backup ? "take one with pg_dump first." : "run without --sql.");
    conn = pl_pg_connect(j->path, err);
    if (conn == NULL)
        return -1;
    pl_pg_shown(conn, j->shown, sizeof j->shown);
    if (pl_pg_read_version(conn, &v, err) < 0 || pl_migrate_check(&v, chain, j->shown, err) < 0)
        goto done;
    snprintf(j->before, sizeof j->before, "%s", v.revision);
    idx = pl_chain_index(chain, v.revision);
    if (resolve_target(chain, j, idx, &target, err) < 0 ||
        pl_pg_migrate(conn, chain, target, &j->count, err) < 0 ||
        pl_pg_read_version(conn, &v, err) < 0)
        goto done;
    snprintf(j->after, sizeof j->after, "%s", v.revision);
    rc = 0;
done:
    PQfinish(conn);
    return rc;
}

/* Run the command `j` describes and fill in its results. Call with the GIL
 * released. Returns 0, or -1 with `err` set: a file that is not ours, a layout
 * PromptLab does not know and a database from a newer PromptLab are refused
 * before anything is written; a failing step leaves the last completed
 * revision. */
static int run_job(mig_job *j, pl_err *err)
{
    pl_chain *chain = NULL;
    pl_conn *c = NULL;
    pl_db_version v;
    int exists = 0, idx = -1, detected = 0, target, readonly, rc = -1;

    chain = pl_inspect_load_chain(j->dir, err);
    if (chain == NULL)
        return -1;
    if (j->postgres) {
        rc = run_postgres_job(j, chain, err);
        goto done;
    }
    if (!j->down && !j->script_only) {
        /* Like initialize_database: missing folders are created. */
        char *canon = pl_path_canonical(j->path, err);
        if (canon == NULL)
            goto done;
        snprintf(j->path, sizeof j->path, "%s", canon);
        free(canon);
    }
    if (pl_check_file(j->path, &exists, err) < 0)
        goto done;
    if (j->script_only) {
        rc = script_job(j, chain, exists, err);
        goto done;
    }
    if (!exists && j->down) {
        pl_err_set(err, PL_E_PATH, j->path, "no database file is there; check the path.");
        goto done;
    }
    c = pl_conn_open(j->path, !j->down, err);
    if (c == NULL)
        goto done;
    c->timeout_ms = 0; /* a migration runs to its end: no statement time limit */
    /* Decide whether the file is ours before anything is written to it. */
    if (pl_migrate_locate(c, chain, &v, &idx, &detected, err) < 0 ||
        pl_check_no_foreign_code(c, err) < 0)
        goto done;
    snprintf(j->before, sizeof j->before, "%s", v.revision);
    if (detected)
        snprintf(j->detected, sizeof j->detected, "%s", rev_name(chain, idx));
    if (resolve_target(chain, j, idx, &target, err) < 0)
        goto done;
    int changes = target != idx || detected;
    readonly = sqlite3_db_readonly(c->db, "main") == 1;
    if (changes && readonly) {
        pl_err_set(err, PL_E_READONLY, j->path,
                   "the database needs changes but is read-only; make the file and its "
                   "folder writable, then retry.");
        goto done;
    }
    if (changes && v.other_tables > 0 && pl_check_not_damaged(c, err) < 0)
        goto done;
    /* The backup is taken before the file is switched to WAL, so it holds the
     * database exactly as it was. */
    if (j->backup && changes && v.other_tables > 0 &&
        take_backup(c, j, detected ? "legacy" : rev_name(chain, idx), err) < 0)
        goto done;
    if (!readonly && pl_conn_enable_wal(c, err) < 0)
        goto done;
    if (changes && (j->down ? pl_migrate_down(c, chain, target, &j->count, err)
                            : pl_migrate_up(c, chain, target, &j->count, err)) < 0)
        goto done;
    if (pl_read_version(c, &v, err) < 0)
        goto done;
    snprintf(j->after, sizeof j->after, "%s", v.revision);
    rc = 0;
done:
    pl_conn_close(c);
    pl_chain_free(chain);
    return rc;
}

/* Parse the common arguments into `j` (directory into *dir). Returns 0 or -1. */
static int parse_job(pl_state *st, PyObject *path_obj, PyObject *dir_obj, mig_job *j,
                     PyObject **dir)
{
    memset(j, 0, sizeof *j);
    if (pl_environ_refresh(st) < 0)
        return -1;
    const char *url = PyUnicode_Check(path_obj) ? PyUnicode_AsUTF8(path_obj) : NULL;
    if (url != NULL && pl_pg_is_url(url)) {
        if (strlen(url) >= sizeof j->path) {
            PyErr_SetString(PyExc_ValueError, "the PostgreSQL URL is too long");
            return -1;
        }
        snprintf(j->path, sizeof j->path, "%s", url);
        j->postgres = 1;
    } else {
        PyErr_Clear(); /* not text: the path conversion below says what is wrong */
        if (pl_abs_path_from_object(st, path_obj, j->path, sizeof j->path) < 0 ||
            pl_refuse_memory(st, j->path) < 0)
            return -1;
    }
    if (pl_inspect_dir_arg(dir_obj, dir) < 0)
        return -1;
    j->dir = *dir ? PyBytes_AS_STRING(*dir) : NULL;
    return 0;
}

/* run_job() with the GIL released. Requires the GIL. A PostgreSQL URL is
 * wiped afterwards: it may hold the password. */
static int run_released(mig_job *j, pl_err *err)
{
    int rc;
    assert(PyGILState_Check());
    pl_err_clear(err);
    Py_BEGIN_ALLOW_THREADS
    rc = run_job(j, err);
    Py_END_ALLOW_THREADS
    if (j->postgres)
        explicit_bzero(j->path, sizeof j->path);
    return rc;
}

/* The dict a command returns (new reference, NULL with an exception). */
static PyObject *job_result(const mig_job *j, const char *count_key)
{
    /* Paths may hold bytes that are not UTF-8: decoded as the OS does. A
     * PostgreSQL database is shown by its URL without the password. */
    PyObject *backup =
        j->backup_path[0] ? PyUnicode_DecodeFSDefault(j->backup_path) : Py_NewRef(Py_None);
    if (backup == NULL)
        return NULL;
    return Py_BuildValue(
        "{s:N,s:z,s:z,s:z,s:i,s:N}", "path",
        j->postgres ? PyUnicode_FromString(j->shown) : PyUnicode_DecodeFSDefault(j->path), "before",
        j->before[0] ? j->before : NULL, "after", j->after[0] ? j->after : NULL, "detected",
        j->detected[0] ? j->detected : NULL, count_key, j->count, "backup", backup);
}

/* migrate() and downgrade(): the same job in either direction. A downgrade
 * needs its target; an upgrade goes to the head without one. */
static PyObject *run_direction(PyObject *module, PyObject *args, PyObject *kwargs, int down)
{
    static char *kwlist[] = {"db_file", "target", "backup", "directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *path_obj, *dir_obj = Py_None, *dir = NULL, *result = NULL;
    const char *target = NULL;
    int backup = 0;
    mig_job j = {0};
    pl_err err;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, down ? "Os|pO:downgrade" : "O|zpO:migrate",
                                     kwlist, &path_obj, &target, &backup, &dir_obj) ||
        parse_job(st, path_obj, dir_obj, &j, &dir) < 0)
        goto done;
    j.target = target;
    j.backup = backup;
    j.down = down;
    if (run_released(&j, &err) < 0)
        pl_raise(st, &err);
    else
        result = job_result(&j, down ? "undone" : "applied");
done:
    Py_XDECREF(dir);
    return result;
}

static PyObject *py_migrate(PyObject *module, PyObject *args, PyObject *kwargs)
{
    return run_direction(module, args, kwargs, 0);
}

static PyObject *py_downgrade(PyObject *module, PyObject *args, PyObject *kwargs)
{
    return run_direction(module, args, kwargs, 1);
}

static PyObject *py_migration_script(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db_file", "target", "downgrade", "directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *path_obj, *dir_obj = Py_None, *dir = NULL, *result = NULL;
    const char *target = NULL;
    int down = 0;
    mig_job j = {0};
    pl_err err;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|zpO:migration_script", kwlist, &path_obj,
                                     &target, &down, &dir_obj) ||
        parse_job(st, path_obj, dir_obj, &j, &dir) < 0)
        goto done;
    j.target = target;
    j.down = down;
    j.script_only = 1;
    if (run_released(&j, &err) < 0)
        pl_raise(st, &err);
    else
        result = PyUnicode_DecodeUTF8(j.script, (Py_ssize_t)strlen(j.script),
                                      "backslashreplace"); /* a path may not be UTF-8 */
done:
    sqlite3_free(j.script);
    Py_XDECREF(dir);
    return result;
}

PyMethodDef pl_migcmd_methods[] = {
    {"migrate", (PyCFunction)(void (*)(void))py_migrate, METH_VARARGS | METH_KEYWORDS,
     "migrate(db_file, target=None, backup=False, directory=None)\n--\n\n"
     "Apply the pending migrations of db_file up to target (a revision, a unique prefix,\n"
     "'head' or '+N'; None: head), each in its own transaction. A database made by an older\n"
     "PromptLab is recognised and marked first. With backup, a database that holds data is\n"
     "copied first (SQLite's online backup) next to itself. Returns a dict: path, before,\n"
     "after, detected, applied, backup."},
    {"downgrade", (PyCFunction)(void (*)(void))py_downgrade, METH_VARARGS | METH_KEYWORDS,
     "downgrade(db_file, target, backup=False, directory=None)\n--\n\n"
     "Run the down sections of the migrations after target (a revision, a unique prefix,\n"
     "'base' or '-N'), newest first, each in its own transaction. Refuses before changing\n"
     "anything when one of them is irreversible. Returns a dict: path, before, after,\n"
     "detected, undone, backup."},
    {"migration_script", (PyCFunction)(void (*)(void))py_migration_script,
     METH_VARARGS | METH_KEYWORDS,
     "migration_script(db_file, target=None, downgrade=False, directory=None)\n--\n\n"
     "The SQL that migrate() (or downgrade()) would run on db_file, without running it."},
    {NULL, NULL, 0, NULL},
};
