/* inspect.c: migrations() and database_revision(): reading without writing. */
#include "inspect.h"
#include "migrate.h"
#include "setup.h"

#include <errno.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>

/* One migration as a dict. */
static PyObject *migration_dict(const pl_migration *m)
{
    return Py_BuildValue("{s:s,s:z,s:s,s:s,s:s,s:s,s:s,s:s}", "revision", m->revision,
                         "parent", m->parent[0] ? m->parent : NULL, "message", m->message,
                         "created", m->created, "filename", m->filename, "checksum",
                         m->checksum, "up", m->up, "down", m->down);
}

static PyObject *py_migrations(PyObject *module, PyObject *unused)
{
    pl_state *st = PyModule_GetState(module);
    const pl_chain *chain;
    PyObject *list;
    pl_err err;

    (void)unused;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    chain = pl_setup_chain(&err);
    Py_END_ALLOW_THREADS
    if (chain == NULL)
        return pl_raise(st, &err);
    list = PyList_New(chain->count);
    if (list == NULL)
        return NULL;
    for (int i = 0; i < chain->count; i++) {
        PyObject *d = migration_dict(&chain->items[i]);
        if (d == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, d);
    }
    return list;
}

static PyObject *py_migrations_dir(PyObject *module, PyObject *unused)
{
    char dir[PATH_MAX];
    (void)module;
    (void)unused;
    return PyUnicode_DecodeFSDefault(pl_setup_migrations_dir(dir, sizeof dir));
}

/* Read the revision of an existing file through a read-only connection.
 * Fills *exists; returns 0 or -1 with `err`. GIL released. */
static int read_revision(const char *path, int *exists, pl_db_version *v, pl_err *err)
{
    struct stat st;
    pl_conn c = {0};
    int rc;

    *exists = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return pl_err_set(err, PL_E_PATH, path, "cannot inspect the file (%s).", strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return pl_err_set(err, PL_E_PATH, path,
                          "this is a folder, not a database file; add a file name.");
    *exists = 1;
    rc = sqlite3_open_v2(path, &c.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, NULL);
    c.path = path;
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, c.db, path, "opening the database read-only");
        sqlite3_close_v2(c.db);
        return -1;
    }
    sqlite3_busy_timeout(c.db, pl_busy_timeout_ms());
    rc = pl_read_version(&c, v, err);
    sqlite3_close_v2(c.db);
    return rc;
}

static PyObject *py_database_revision(PyObject *module, PyObject *path_obj)
{
    pl_state *st = PyModule_GetState(module);
    char abs[PATH_MAX + 1];
    pl_db_version v;
    pl_err err;
    int exists = 0, rc;

    if (pl_abs_path_from_object(st, path_obj, abs, sizeof abs) < 0)
        return NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = read_revision(abs, &exists, &v, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(st, &err);
    if (!exists)
        return Py_BuildValue("{s:O,s:s}", "exists", Py_False, "path", abs);
    return Py_BuildValue("{s:O,s:s,s:z,s:i,s:i}", "exists", Py_True, "path", abs, "revision",
                         v.revision[0] ? v.revision : NULL, "version_rows", v.version_rows,
                         "other_tables", v.other_tables);
}

PyMethodDef pl_inspect_methods[] = {
    {"migrations", py_migrations, METH_NOARGS,
     "migrations()\n--\n\nThe migration chain in use, first to head, as dicts; "
     "MigrationError when the files are invalid."},
    {"migrations_dir", py_migrations_dir, METH_NOARGS,
     "migrations_dir()\n--\n\nThe folder the migration files are read from."},
    {"database_revision", py_database_revision, METH_O,
     "database_revision(db_file)\n--\n\nRead a database's revision without writing to it:\n"
     "a dict with exists, path, revision (None at base), version_rows, other_tables."},
    {NULL, NULL, 0, NULL},
};
