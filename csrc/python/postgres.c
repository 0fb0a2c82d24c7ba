/* postgres.c: the binding's PostgreSQL functions, until sessions run on
 * PostgreSQL (issue 15): _core._postgres_probe(url) connects through the
 * engine (csrc/engine/postgres/pgconn.c), reads who and where it is, and
 * disconnects (for the tests of the connection layer and its errors); and the
 * admin's first password on a PostgreSQL database. */
#include "postgres.h"
#include "environ.h"
#include "filecheck.h"
#include "inspect.h"
#include "migrate.h"
#include "paths.h"
#include "pgadmin.h"
#include "pgcopy.h"
#include "pgmigrate.h"
#include "pgconn.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* What the probe read, filled without the GIL. */
typedef struct {
    char shown[PL_PG_SHOWN_MAX];
    char database[256], user[256];
    int server_version;
} probe_result;

static int probe(const char *url, probe_result *out, pl_err *err)
{
    PGconn *conn = pl_pg_connect(url, err);
    PGresult *r;
    int rc = -1;

    if (conn == NULL)
        return -1;
    pl_pg_shown(conn, out->shown, sizeof out->shown);
    r = PQexec(conn, "SELECT current_database(), current_user");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pl_pg_err_from_result(err, conn, r, "reading the database's name");
        goto done;
    }
    snprintf(out->database, sizeof out->database, "%s", PQgetvalue(r, 0, 0));
    snprintf(out->user, sizeof out->user, "%s", PQgetvalue(r, 0, 1));
    out->server_version = PQserverVersion(conn);
    rc = 0;
done:
    PQclear(r);
    PQfinish(conn);
    return rc;
}

static PyObject *py_postgres_probe(PyObject *module, PyObject *arg)
{
    pl_state *st = PyModule_GetState(module);
    probe_result result;
    const char *url;
    pl_err err;
    int rc;

    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "_postgres_probe: a URL string, not %T", arg);
    url = PyUnicode_AsUTF8(arg); /* the caller's reference keeps it alive */
    if (url == NULL)
        return NULL;
    if (!pl_pg_is_url(url))
        return PyErr_Format(PyExc_ValueError,
                            "_postgres_probe: a postgresql:// or postgres:// URL");
    memset(&result, 0, sizeof result);
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = probe(url, &result, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(st, &err);
    return Py_BuildValue("{sssssssi}", "url", result.shown, "database", result.database, "user",
                         result.user, "server_version", result.server_version);
}

PyObject *pl_postgres_set_first_admin_password(pl_state *st, const char *url, const char *password)
{
    PGconn *conn = NULL;
    pl_err err;
    int rc = -1, set = 0;

    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    conn = pl_pg_connect(url, &err);
    if (conn != NULL) {
        rc = pl_pg_set_first_admin_password(conn, password, &set, &err);
        PQfinish(conn);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(st, &err);
    return PyBool_FromLong(set);
}

/* What _postgres_copy does without the GIL: open the file read-only, bring an
 * empty destination to the file's revision, copy. */
typedef struct {
    const char *path, *url, *dir;
    char shown[PL_PG_SHOWN_MAX];
    pl_pgcopy_report report;
} copy_job;

static int bring_to_revision(PGconn *dst, pl_conn *src, const char *dir, pl_err *err)
{
    pl_db_version from, to;
    pl_chain *chain;
    int moved = 0, rc = 0;

    if (pl_read_version(src, &from, err) < 0 || pl_pg_read_version(dst, &to, err) < 0)
        return -1;
    if (to.revision[0] != '\0' || to.other_tables > 0 || from.revision[0] == '\0')
        return 0; /* the copy itself says what does not match */
    chain = pl_inspect_load_chain(dir, err);
    if (chain == NULL)
        return -1;
    if (pl_migrate_check(&from, chain, src->path, err) < 0 ||
        pl_pg_migrate(dst, chain, pl_chain_index(chain, from.revision), &moved, err) < 0)
        rc = -1;
    pl_chain_free(chain);
    return rc;
}

static int run_copy(copy_job *j, pl_err *err)
{
    pl_conn src;
    PGconn *dst;
    int exists = 0, rc = -1;

    memset(&src, 0, sizeof src);
    if (pl_check_file(j->path, &exists, err) < 0)
        return -1;
    if (!exists)
        return pl_err_set(err, PL_E_PATH, j->path, "no database file is there; check the path.");
    if (pl_conn_open_readonly(&src, j->path, err) < 0)
        return -1;
    dst = pl_pg_connect(j->url, err);
    if (dst != NULL) {
        pl_pg_shown(dst, j->shown, sizeof j->shown);
        rc = bring_to_revision(dst, &src, j->dir, err) < 0
                 ? -1
                 : pl_pg_copy_from_sqlite(&src, dst, &j->report, err);
        PQfinish(dst);
    }
    pl_conn_close_readonly(&src);
    return rc;
}

/* _postgres_copy(db_file, url, directory=None): every row of the SQLite file
 * into the PostgreSQL database (pgcopy.h). Returns {"url": shown, "tables":
 * [(name, rows), ...]}. */
static PyObject *py_postgres_copy(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db_file", "url", "directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *path_obj, *dir_obj = Py_None, *dir = NULL, *tables = NULL, *result = NULL;
    char abs[PATH_MAX + 1];
    copy_job j;
    pl_err err;
    int rc;

    memset(&j, 0, sizeof j);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Os|O:_postgres_copy", kwlist, &path_obj, &j.url,
                                     &dir_obj) ||
        pl_environ_refresh(st) < 0 || pl_abs_path_from_object(st, path_obj, abs, sizeof abs) < 0 ||
        pl_refuse_memory(st, abs) < 0 || pl_inspect_dir_arg(dir_obj, &dir) < 0)
        return NULL;
    if (!pl_pg_is_url(j.url)) {
        Py_XDECREF(dir);
        return PyErr_Format(PyExc_ValueError, "the destination must be a postgresql:// URL");
    }
    j.path = abs;
    j.dir = dir ? PyBytes_AS_STRING(dir) : NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = run_copy(&j, &err);
    Py_END_ALLOW_THREADS
    Py_XDECREF(dir);
    if (rc < 0)
        return pl_raise(st, &err);
    tables = PyList_New(0);
    for (int i = 0; tables != NULL && i < j.report.count; i++) {
        PyObject *item = Py_BuildValue("(sL)", j.report.name[i], j.report.rows[i]);
        if (item == NULL || PyList_Append(tables, item) < 0)
            Py_CLEAR(tables);
        Py_XDECREF(item);
    }
    if (tables != NULL)
        result = Py_BuildValue("{s:s,s:N}", "url", j.shown, "tables", tables);
    return result;
}

/* What _postgres_revision reads without the GIL. */
typedef struct {
    const char *url, *dir;
    char shown[PL_PG_SHOWN_MAX];
    pl_db_version v;
    PGresult *history; /* NULL: no history table */
} revision_job;

static int read_revision(revision_job *j, pl_err *err)
{
    PGconn *conn = pl_pg_connect(j->url, err);
    pl_chain *chain = NULL;
    int rc = -1;

    if (conn == NULL)
        return -1;
    pl_pg_shown(conn, j->shown, sizeof j->shown);
    chain = pl_inspect_load_chain(j->dir, err);
    if (chain != NULL && pl_pg_read_version(conn, &j->v, err) == 0 &&
        pl_migrate_check(&j->v, chain, j->shown, err) == 0 &&
        pl_pg_read_history(conn, &j->history, err) == 0)
        rc = 0;
    pl_chain_free(chain);
    PQfinish(conn);
    return rc;
}

/* The history rows as a list of (revision, checksum, message, applied_at,
 * duration_ms) tuples, or None without a history table. */
static PyObject *history_list(const PGresult *r)
{
    PyObject *list;

    if (r == NULL)
        Py_RETURN_NONE;
    list = PyList_New(0);
    for (int i = 0; list != NULL && i < PQntuples(r); i++) {
        PyObject *row =
            Py_BuildValue("(ssssd)", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                          PQgetvalue(r, i, 3), atof(PQgetvalue(r, i, 4)));
        if (row == NULL || PyList_Append(list, row) < 0)
            Py_CLEAR(list);
        Py_XDECREF(row);
    }
    return list;
}

/* _postgres_revision(url, directory=None): database_revision() for a
 * PostgreSQL database (no layout detection: PostgreSQL has no older ones). */
static PyObject *py_postgres_revision(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"url", "directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *dir_obj = Py_None, *dir = NULL, *history;
    revision_job j;
    pl_err err;
    int rc;

    memset(&j, 0, sizeof j);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|O:_postgres_revision", kwlist, &j.url,
                                     &dir_obj) ||
        pl_environ_refresh(st) < 0 || pl_inspect_dir_arg(dir_obj, &dir) < 0)
        return NULL;
    j.dir = dir ? PyBytes_AS_STRING(dir) : NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = read_revision(&j, &err);
    Py_END_ALLOW_THREADS
    Py_XDECREF(dir);
    if (rc < 0) {
        PQclear(j.history);
        return pl_raise(st, &err);
    }
    history = history_list(j.history);
    PQclear(j.history);
    if (history == NULL)
        return NULL;
    return Py_BuildValue("{s:O,s:s,s:z,s:i,s:i,s:O,s:N}", "exists", Py_True, "path", j.shown,
                         "revision", j.v.revision[0] ? j.v.revision : NULL, "version_rows",
                         j.v.version_rows, "other_tables", j.v.other_tables, "detected", Py_None,
                         "history", history);
}

PyMethodDef pl_postgres_methods[] = {
    {"_postgres_probe", py_postgres_probe, METH_O,
     "_postgres_probe(url)\n--\n\n"
     "For tests, until sessions run on PostgreSQL: connect to the database `url`\n"
     "names, read its name and user, disconnect. Returns {url (shown, without the\n"
     "password), database, user, server_version}; raises the typed errors of a\n"
     "failed connection."},
    {"_postgres_copy", (PyCFunction)(void (*)(void))py_postgres_copy, METH_VARARGS | METH_KEYWORDS,
     "_postgres_copy(db_file, url, directory=None)\n--\n\n"
     "Copy every row of the SQLite file into the PostgreSQL database (`promptlab db\n"
     "copy`): an empty destination is first brought to the file's revision; all rows\n"
     "or none, checked by counts. Returns {url (without the password), tables:\n"
     "[(name, rows), ...]}."},
    {"_postgres_revision", (PyCFunction)(void (*)(void))py_postgres_revision,
     METH_VARARGS | METH_KEYWORDS,
     "_postgres_revision(url, directory=None)\n--\n\n"
     "database_revision() for a PostgreSQL database: {exists, path (the URL without\n"
     "the password), revision, version_rows, other_tables, detected (None), history}."},
    {NULL, NULL, 0, NULL},
};
