/* inspect.c: reading migrations, revisions and schemas without writing. */
#include "inspect.h"
#include "environ.h"
#include "filecheck.h"
#include "migrate.h"
#include "schema.h"
#include "initialize.h"

#include <limits.h>
#include <string.h>

pl_chain *pl_inspect_load_chain(const char *directory, pl_err *err)
{
    char dir[PATH_MAX];

    if (directory != NULL && directory[0] != '\0')
        return pl_chain_load(directory, err);
    if (pl_initialize_known_migrations_dir(dir, sizeof dir, err) < 0)
        return NULL;
    return pl_chain_load(dir, err);
}

int pl_inspect_dir_arg(PyObject *obj, PyObject **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (!PyUnicode_FSConverter(obj, out))
        return -1;
    return 0;
}

/* One migration as a dict (up_postgresql/down_postgresql None when the file
 * has no PostgreSQL sections). */
static PyObject *migration_dict(const pl_migration *m)
{
    return Py_BuildValue(
        "{s:s,s:z,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:z,s:z,s:s}", "revision", m->revision, "parent",
        m->parent[0] ? m->parent : NULL, "message", m->message, "created", m->created, "filename",
        m->filename, "checksum", m->checksum, "up", m->up, "down", m->down, "reversible",
        pl_migration_reversible(m) ? Py_True : Py_False, "up_postgresql", m->up_postgresql,
        "down_postgresql", m->down_postgresql, "checksum_postgresql", m->checksum_postgresql);
}

static PyObject *py_migrations(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *dir_obj = Py_None, *dir = NULL, *list = NULL;
    pl_chain *chain;
    pl_err err;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:migrations", kwlist, &dir_obj) ||
        pl_environ_refresh(st) < 0 || pl_inspect_dir_arg(dir_obj, &dir) < 0)
        return NULL;
    pl_err_clear(&err);
    const char *d = dir ? PyBytes_AS_STRING(dir) : NULL;
    Py_BEGIN_ALLOW_THREADS
    chain = pl_inspect_load_chain(d, &err);
    Py_END_ALLOW_THREADS
    Py_XDECREF(dir);
    if (chain == NULL)
        return pl_raise(st, &err);
    list = PyList_New(chain->count);
    for (int i = 0; list != NULL && i < chain->count; i++) {
        PyObject *m = migration_dict(&chain->items[i]);
        if (m == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, m);
    }
    pl_chain_free(chain);
    return list;
}

static PyObject *py_migrations_dir(PyObject *module, PyObject *unused)
{
    char dir[PATH_MAX];
    (void)unused;
    if (pl_environ_refresh(PyModule_GetState(module)) < 0)
        return NULL;
    return PyUnicode_DecodeFSDefault(pl_initialize_migrations_dir(dir, sizeof dir));
}

/* Open an existing file read-only into *c (c->db NULL when the file does not
 * exist). Returns 0 or -1 with `err`. GIL released. */
static int open_readonly(const char *path, pl_conn *c, pl_err *err)
{
    int exists = 0;

    memset(c, 0, sizeof *c);
    c->path = path;
    if (pl_check_file(path, &exists, err) < 0)
        return -1;
    if (!exists)
        return 0;
    return pl_conn_open_readonly(c, path, err);
}

/* A Python value for column `i` of the current row. */
static PyObject *column_value(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_column_double(st, i));
    case SQLITE_TEXT:
        return PyUnicode_DecodeUTF8((const char *)sqlite3_column_text(st, i),
                                    sqlite3_column_bytes(st, i), "replace");
    case SQLITE_BLOB:
        return PyBytes_FromStringAndSize(sqlite3_column_blob(st, i), sqlite3_column_bytes(st, i));
    default:
        return Py_NewRef(Py_None);
    }
}

/* The rows of `sql` (with ?1 = src) on the in-memory catalog, as a list of
 * tuples. The catalog is memory only: this runs with the GIL held. */
static PyObject *catalog_rows(pl_state *st, sqlite3 *cat, const char *sql, int src)
{
    sqlite3_stmt *q = NULL;
    PyObject *list = NULL, *row = NULL;
    pl_err err;
    int rc;

    rc = sqlite3_prepare_v2(cat, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(&err, rc, cat, NULL, "reading the schema catalog");
        return pl_raise(st, &err);
    }
    rc = sqlite3_bind_int(q, 1, src);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(&err, rc, cat, NULL, "reading the schema catalog");
        pl_raise(st, &err);
        goto fail;
    }
    list = PyList_New(0);
    if (list == NULL)
        goto fail;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int n = sqlite3_column_count(q);
        row = PyTuple_New(n);
        if (row == NULL)
            goto fail;
        for (int i = 0; i < n; i++) {
            PyObject *v = column_value(q, i);
            if (v == NULL)
                goto fail;
            PyTuple_SET_ITEM(row, i, v);
        }
        if (PyList_Append(list, row) < 0)
            goto fail;
        Py_CLEAR(row);
    }
    if (rc != SQLITE_DONE) {
        pl_err_from_sqlite(&err, rc, cat, NULL, "reading the schema catalog");
        pl_raise(st, &err);
        goto fail;
    }
    sqlite3_finalize(q);
    return list;
fail:
    Py_XDECREF(row);
    Py_XDECREF(list);
    sqlite3_finalize(q);
    return NULL;
}

/* The schema recorded as source `src`, as a dict of lists of tuples:
 * objects (type, name, tbl, sql), columns (tbl, cid, name, type, notnull,
 * default, pk), indexes (tbl, name, unique, origin, partial, sql),
 * index_columns (index, seqno, name), foreign_keys (tbl, id, seq, table,
 * from, to, on_update, on_delete). */
static PyObject *catalog_dict(pl_state *st, sqlite3 *cat, int src)
{
    static const char *const parts[][2] = {
        {"objects", "SELECT type, name, tbl, sql FROM cat_objects WHERE src = ?1 ORDER BY rowid"},
        {"columns", "SELECT tbl, cid, name, type, not_null, dflt, pk FROM cat_columns"
                    " WHERE src = ?1 ORDER BY rowid"},
        {"indexes", "SELECT tbl, name, uniq, origin, partial, sql FROM cat_indexes"
                    " WHERE src = ?1 ORDER BY rowid"},
        {"index_columns", "SELECT idx, seqno, name FROM cat_index_columns WHERE src = ?1"
                          " ORDER BY rowid"},
        {"foreign_keys", "SELECT tbl, id, seq, ref, from_col, to_col, on_update, on_delete"
                         " FROM cat_foreign_keys WHERE src = ?1 ORDER BY rowid"},
    };
    PyObject *d = PyDict_New();

    for (size_t i = 0; d != NULL && i < sizeof parts / sizeof parts[0]; i++) {
        PyObject *rows = catalog_rows(st, cat, parts[i][1], src);
        if (rows == NULL || PyDict_SetItemString(d, parts[i][0], rows) < 0)
            Py_CLEAR(d);
        Py_XDECREF(rows);
    }
    return d;
}

/* What database_revision() gathers with the GIL released. */
typedef struct {
    const char *path;
    const char *dir;
    int exists;
    pl_db_version v;
    int has_history;
    char detected[PL_REVISION_MAX + 1];
    sqlite3 *cat; /* history rows */
} revision_look;

/* Fill `lk` from the file at lk->path, read-only: where it stands on the chain
 * in lk->dir (pl_migrate_locate: version, the check that the chain can handle
 * it, and the recognised revision of a database without one), and its history
 * (copied into a new catalog lk->cat, closed by the caller). A missing file
 * leaves lk->exists 0. Returns 0 or -1 with `err` (the refusals of
 * pl_migrate_check among them). Call with the GIL released. */
static int look_revision(revision_look *lk, pl_err *err)
{
    pl_conn c;
    pl_chain *chain = NULL;
    int rc = -1, idx, detected = 0;

    if (open_readonly(lk->path, &c, err) < 0)
        return -1;
    if (c.db == NULL)
        return 0;
    lk->exists = 1;
    chain = pl_inspect_load_chain(lk->dir, err);
    if (chain == NULL || pl_migrate_locate(&c, chain, &lk->v, &idx, &detected, err) < 0)
        goto done;
    if (detected)
        snprintf(lk->detected, sizeof lk->detected, "%s", chain->items[idx].revision);
    lk->cat = pl_catalog_open(err);
    if (lk->cat == NULL)
        goto done;
    if (sqlite3_table_column_metadata(c.db, "main", "promptlab_migrations", "revision", NULL, NULL,
                                      NULL, NULL, NULL) == SQLITE_OK) {
        lk->has_history = 1;
        if (pl_catalog_copy(lk->cat, c.db, lk->path,
                            "SELECT revision, checksum, message, applied_at, duration_ms"
                            " FROM promptlab_migrations ORDER BY applied_at, rowid",
                            "INSERT INTO cat_history VALUES (?1, ?2, ?3, ?4, ?5, ?6)", 0, err) < 0)
            goto done;
    }
    rc = 0;
done:
    pl_chain_free(chain);
    pl_conn_close_readonly(&c);
    return rc;
}

static PyObject *py_database_revision(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db_file", "directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *path_obj, *dir_obj = Py_None, *dir = NULL, *history = NULL, *result = NULL;
    char abs[PATH_MAX + 1];
    revision_look lk;
    pl_err err;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:database_revision", kwlist, &path_obj,
                                     &dir_obj))
        return NULL;
    if (pl_environ_refresh(st) < 0 || pl_abs_path_from_object(st, path_obj, abs, sizeof abs) < 0 ||
        pl_refuse_memory(st, abs) < 0 || pl_inspect_dir_arg(dir_obj, &dir) < 0)
        return NULL;
    memset(&lk, 0, sizeof lk);
    lk.path = abs;
    lk.dir = dir ? PyBytes_AS_STRING(dir) : NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = look_revision(&lk, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        pl_raise(st, &err);
        goto done;
    }
    if (!lk.exists) {
        result =
            Py_BuildValue("{s:O,s:N}", "exists", Py_False, "path", PyUnicode_DecodeFSDefault(abs));
        goto done;
    }
    history = catalog_rows(st, lk.cat,
                           "SELECT revision, checksum, message, applied_at, duration_ms"
                           " FROM cat_history WHERE src = ?1 ORDER BY rowid",
                           0);
    if (history == NULL)
        goto done;
    result = Py_BuildValue(
        "{s:O,s:N,s:z,s:i,s:i,s:z,s:O}", "exists", Py_True, "path", PyUnicode_DecodeFSDefault(abs),
        "revision", lk.v.revision[0] ? lk.v.revision : NULL, "version_rows", lk.v.version_rows,
        "other_tables", lk.v.other_tables, "detected", lk.detected[0] ? lk.detected : NULL,
        "history", lk.has_history ? history : Py_None);
done:
    Py_XDECREF(history);
    Py_XDECREF(dir);
    sqlite3_close(lk.cat);
    return result;
}

/* Catalogue an existing database file read-only into *cat. GIL released. */
static int look_schema(const char *path, sqlite3 **cat, pl_err *err)
{
    pl_conn c;
    int rc = -1;

    if (open_readonly(path, &c, err) < 0)
        return -1;
    if (c.db == NULL)
        return pl_err_set(err, PL_E_PATH, path, "no database file is there; check the path.");
    *cat = pl_catalog_open(err);
    if (*cat != NULL && pl_catalog_add(*cat, c.db, path, PL_CATALOG_LIVE, err) == 0)
        rc = 0;
    pl_conn_close_readonly(&c);
    return rc;
}

static PyObject *py_database_schema(PyObject *module, PyObject *path_obj)
{
    pl_state *st = PyModule_GetState(module);
    char abs[PATH_MAX + 1];
    sqlite3 *cat = NULL;
    PyObject *result = NULL;
    pl_err err;
    int rc;

    if (pl_environ_refresh(st) < 0 || pl_abs_path_from_object(st, path_obj, abs, sizeof abs) < 0 ||
        pl_refuse_memory(st, abs) < 0)
        return NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = look_schema(abs, &cat, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        pl_raise(st, &err);
    else
        result = catalog_dict(st, cat, PL_CATALOG_LIVE);
    sqlite3_close(cat);
    return result;
}

/* Catalogue what the chain in `dir` produces up to `revision` (NULL: head,
 * "base": nothing). *index receives the chain index. GIL released. */
static int look_chain(const char *dir, const char *revision, sqlite3 **cat, int *index, pl_err *err)
{
    pl_chain *chain = pl_inspect_load_chain(dir, err);
    int rc = -1;

    if (chain == NULL)
        return -1;
    if (revision == NULL || strcmp(revision, "head") == 0)
        *index = chain->count - 1;
    else if (strcmp(revision, "base") == 0)
        *index = -1;
    else
        *index = pl_chain_index(chain, revision);
    if (*index < -1) {
        pl_err_set(err, PL_E_MIGRATION, NULL,
                   "revision %s is not one of the migrations in %s; pass a revision id, "
                   "'head' or 'base'.",
                   revision, chain->dir);
        goto done;
    }
    *cat = pl_catalog_open(err);
    if (*cat != NULL && pl_catalog_add_chain(*cat, chain, *index, err) == 0)
        rc = 0;
done:
    pl_chain_free(chain);
    return rc;
}

static PyObject *py_chain_schema(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"revision", "directory", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *dir_obj = Py_None, *dir = NULL, *result = NULL;
    const char *revision = NULL;
    sqlite3 *cat = NULL;
    pl_err err;
    int rc, index = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|zO:chain_schema", kwlist, &revision,
                                     &dir_obj) ||
        pl_environ_refresh(st) < 0 || pl_inspect_dir_arg(dir_obj, &dir) < 0)
        return NULL;
    const char *d = dir ? PyBytes_AS_STRING(dir) : NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = look_chain(d, revision, &cat, &index, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        pl_raise(st, &err);
    else
        result = catalog_dict(st, cat, index);
    sqlite3_close(cat);
    Py_XDECREF(dir);
    return result;
}

/* The UTF-8 text of `arg`, a str without NUL characters (NULL with an
 * exception otherwise); *len receives its length. Borrowed from `arg`. */
static const char *text_arg(PyObject *arg, const char *what, Py_ssize_t *len)
{
    const char *text;

    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(arg)->tp_name);
        return NULL;
    }
    text = PyUnicode_AsUTF8AndSize(arg, len);
    if (text != NULL && (Py_ssize_t)strlen(text) != *len) {
        PyErr_Format(PyExc_ValueError, "%s contains a NUL character", what);
        return NULL;
    }
    return text;
}

/* `arg` as normalized by `normalize` (schema.h), a new str. */
static PyObject *normalized(PyObject *arg, const char *what,
                            void (*normalize)(sqlite3_str *, const char *))
{
    Py_ssize_t len;
    const char *text = text_arg(arg, what, &len);
    sqlite3_str *s;
    PyObject *result;

    if (text == NULL)
        return NULL;
    s = sqlite3_str_new(NULL);
    normalize(s, text);
    if (sqlite3_str_errcode(s) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        return PyErr_NoMemory();
    }
    len = sqlite3_str_length(s);
    char *out = sqlite3_str_finish(s);
    result = PyUnicode_DecodeUTF8(out ? out : "", len, "replace");
    sqlite3_free(out);
    return result;
}

static PyObject *py_normalize_type(PyObject *module, PyObject *arg)
{
    return normalized(arg, "a declared type", pl_schema_normalize_type);
}

static PyObject *py_normalize_default(PyObject *module, PyObject *arg)
{
    return normalized(arg, "a DEFAULT expression", pl_schema_normalize_default);
}

static PyObject *py_is_legacy_table(PyObject *module, PyObject *arg)
{
    Py_ssize_t len;
    const char *name = text_arg(arg, "a table name", &len);

    if (name == NULL)
        return NULL;
    return PyBool_FromLong(pl_schema_is_legacy(name));
}

static PyObject *py_is_sql_keyword(PyObject *module, PyObject *arg)
{
    Py_ssize_t len;
    const char *name = text_arg(arg, "a name", &len);

    if (name == NULL)
        return NULL;
    return PyBool_FromLong(len <= INT_MAX && sqlite3_keyword_check(name, (int)len));
}

PyMethodDef pl_inspect_methods[] = {
    {"migrations", (PyCFunction)(void (*)(void))py_migrations, METH_VARARGS | METH_KEYWORDS,
     "migrations(directory=None)\n--\n\nThe migration chain in `directory` (default: the "
     "folder in use), first to head, read from disk now, as dicts; MigrationError when the "
     "files are invalid."},
    {"migrations_dir", py_migrations_dir, METH_NOARGS,
     "migrations_dir()\n--\n\nThe folder the migration files are read from."},
    {"database_revision", (PyCFunction)(void (*)(void))py_database_revision,
     METH_VARARGS | METH_KEYWORDS,
     "database_revision(db_file, directory=None)\n--\n\nRead a database's revision without "
     "writing to it:\na dict with exists, path, revision (None at base), version_rows, "
     "other_tables,\ndetected (the revision a database without one matches, else None) and "
     "history\n(rows of promptlab_migrations, None without that table). MigrationError for "
     "several\nversion rows or tables that match no layout, UnknownRevisionError for a "
     "revision\nthe chain in `directory` does not know."},
    {"database_schema", py_database_schema, METH_O,
     "database_schema(db_file)\n--\n\nThe schema of an existing database, read-only, as a "
     "dict of row lists\n(objects, columns, indexes, index_columns, foreign_keys)."},
    {"chain_schema", (PyCFunction)(void (*)(void))py_chain_schema, METH_VARARGS | METH_KEYWORDS,
     "chain_schema(revision=None, directory=None)\n--\n\nThe schema the migrations produce up "
     "to `revision` (None or 'head': all,\n'base': none), applied to an empty in-memory "
     "database; same shape as database_schema()."},
    {"normalize_type", py_normalize_type, METH_O,
     "normalize_type(sql_type)\n--\n\nA declared type as schemas are compared: upper case, "
     "blanks trimmed, one space\nbetween words and none around '(', ')' and ','."},
    {"normalize_default", py_normalize_default, METH_O,
     "normalize_default(expr)\n--\n\nA DEFAULT expression as schemas are compared: without "
     "outer blanks and\nenclosing parentheses ('((2))' and '2' are the same default)."},
    {"is_legacy_table", py_is_legacy_table, METH_O,
     "is_legacy_table(name)\n--\n\nTrue for a table named legacy_* (any case): values kept "
     "from older layouts,\nmade by the migrations and never declared in the models."},
    {"is_sql_keyword", py_is_sql_keyword, METH_O,
     "is_sql_keyword(name)\n--\n\nTrue when `name` is a keyword of the SQLite PromptLab runs "
     "on\n(sqlite3_keyword_check), so an identifier of that name must be quoted."},
    {NULL, NULL, 0, NULL},
};
