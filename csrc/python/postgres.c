/* postgres.c: the binding's PostgreSQL functions, until sessions run on
 * PostgreSQL (issue 15): _core._postgres_probe(url) connects through the
 * engine (csrc/engine/postgres/pgconn.c), reads who and where it is, and
 * disconnects (for the tests of the connection layer and its errors); and the
 * admin's first password on a PostgreSQL database. */
#include "postgres.h"
#include "pgadmin.h"
#include "pgconn.h"

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
    if (conn != NULL)
        rc = pl_pg_set_first_admin_password(conn, password, &set, &err);
    PQfinish(conn);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(st, &err);
    return PyBool_FromLong(set);
}

PyMethodDef pl_postgres_methods[] = {
    {"_postgres_probe", py_postgres_probe, METH_O,
     "_postgres_probe(url)\n--\n\n"
     "For tests, until sessions run on PostgreSQL: connect to the database `url`\n"
     "names, read its name and user, disconnect. Returns {url (shown, without the\n"
     "password), database, user, server_version}; raises the typed errors of a\n"
     "failed connection."},
    {NULL, NULL, 0, NULL},
};
