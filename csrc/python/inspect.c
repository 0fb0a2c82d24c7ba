/* inspect.c: reading migrations, revisions and schemas without writing. */
#include "inspect.h"
#include "environ.h"
#include "filecheck.h"
#include "migrate.h"
#include "schema.h"
#include "schemadiff.h"
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

/* Record the schema of the existing database file at `path`, read-only, in
 * `cat` as source `src`. Returns 0 or -1 with `err` set. GIL released. */
static int add_database(sqlite3 *cat, const char *path, int src, pl_err *err)
{
    pl_conn c;
    int rc;

    if (open_readonly(path, &c, err) < 0)
        return -1;
    if (c.db == NULL)
        return pl_err_set(err, PL_E_PATH, path, "no database file is there; check the path.");
    rc = pl_catalog_add(cat, c.db, path, src, err);
    pl_conn_close_readonly(&c);
    return rc;
}

/* Catalogue an existing database file read-only into *cat. GIL released. */
static int look_schema(const char *path, sqlite3 **cat, pl_err *err)
{
    *cat = pl_catalog_open(err);
    if (*cat == NULL)
        return -1;
    return add_database(*cat, path, PL_CATALOG_LIVE, err);
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

/* The chain index of `revision` (NULL or "head": the last, "base": -1), or
 * -2 with `err` set when the chain does not know it. */
static int revision_index(const pl_chain *chain, const char *revision, pl_err *err)
{
    int index;

    if (revision == NULL || strcmp(revision, "head") == 0)
        return chain->count - 1;
    if (strcmp(revision, "base") == 0)
        return -1;
    index = pl_chain_index(chain, revision);
    if (index < -1) {
        pl_err_set(err, PL_E_MIGRATION, NULL,
                   "revision %s is not one of the migrations in %s; pass a revision id, "
                   "'head' or 'base'.",
                   revision, chain->dir);
        return -2;
    }
    return index;
}

/* Catalogue what the chain in `dir` produces up to `revision` (NULL: head,
 * "base": nothing). *index receives the chain index. GIL released. */
static int look_chain(const char *dir, const char *revision, sqlite3 **cat, int *index, pl_err *err)
{
    pl_chain *chain = pl_inspect_load_chain(dir, err);
    int rc = -1;

    if (chain == NULL)
        return -1;
    *index = revision_index(chain, revision, err);
    if (*index < -1)
        goto done;
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

/* The sides schema_differences() compares. */
enum { SIDE_DATABASE, SIDE_REVISION, SIDE_SQL, SIDE_CATALOG };

typedef struct {
    int type;                /* SIDE_* */
    const char *text;        /* SIDE_REVISION (NULL: head), SIDE_SQL; borrowed */
    char path[PATH_MAX + 1]; /* SIDE_DATABASE */
    PyObject *catalog;       /* SIDE_CATALOG; borrowed */
    int src;                 /* its source in the catalog */
} diff_side;

/* What schema_differences() gathers: the two sides, then the catalog. */
typedef struct {
    diff_side side[2];
    const char *dir;
    pl_diff_spec spec;
    sqlite3 *cat;
} diff_job;

/* Read `arg`, a (kind, value) tuple, into `side`, catalogued as source `src`
 * unless it is a revision of the chain. Returns 0, or -1 with an exception. */
static int parse_side(pl_state *st, PyObject *arg, const char *which, diff_side *side, int src)
{
    const char *kind;
    Py_ssize_t len;
    PyObject *value;

    memset(side, 0, sizeof *side);
    side->src = src;
    if (!PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(arg, 0))) {
        PyErr_Format(PyExc_TypeError, "%s must be a (kind, value) tuple, not %.100s", which,
                     Py_TYPE(arg)->tp_name);
        return -1;
    }
    kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(arg, 0));
    value = PyTuple_GET_ITEM(arg, 1);
    if (kind == NULL)
        return -1;
    if (strcmp(kind, "database") == 0) {
        side->type = SIDE_DATABASE;
        if (pl_abs_path_from_object(st, value, side->path, sizeof side->path) < 0)
            return -1;
        return pl_refuse_memory(st, side->path);
    }
    if (strcmp(kind, "revision") == 0 || strcmp(kind, "sql") == 0) {
        side->type = kind[0] == 'r' ? SIDE_REVISION : SIDE_SQL;
        if (side->type == SIDE_REVISION && value == Py_None)
            return 0;
        side->text =
            text_arg(value, side->type == SIDE_SQL ? "a schema script" : "a revision", &len);
        return side->text == NULL ? -1 : 0;
    }
    if (strcmp(kind, "catalog") == 0 && PyDict_Check(value)) {
        side->type = SIDE_CATALOG;
        side->catalog = value;
        return 0;
    }
    PyErr_Format(PyExc_ValueError,
                 "%s must be ('database', path), ('revision', id or None), ('sql', script) or "
                 "('catalog', dict), not (%R, %.100s)",
                 which, PyTuple_GET_ITEM(arg, 0), Py_TYPE(value)->tp_name);
    return -1;
}

/* Open job->cat and record the database, script and revision sides in it
 * (the chain once, up to the later revision). Returns 0 or -1 with `err`
 * set. GIL released. */
static int catalog_sides(diff_job *job, pl_err *err)
{
    pl_chain *chain = NULL;
    int rc = -1, upto = -1;

    job->cat = pl_catalog_open(err);
    if (job->cat == NULL)
        return -1;
    for (int i = 0; i < 2; i++) {
        diff_side *side = &job->side[i];
        if (side->type == SIDE_DATABASE) {
            if (add_database(job->cat, side->path, side->src, err) < 0)
                goto done;
        } else if (side->type == SIDE_SQL) {
            if (pl_catalog_add_script(job->cat, side->text, side->src, err) < 0)
                goto done;
        } else if (side->type == SIDE_REVISION) {
            if (chain == NULL && (chain = pl_inspect_load_chain(job->dir, err)) == NULL)
                goto done;
            int index = revision_index(chain, side->text, err);
            if (index < -1)
                goto done;
            side->src = index >= 0 ? index : side->src; /* base: an empty source */
            upto = index > upto ? index : upto;
        }
    }
    if (upto >= 0 && pl_catalog_add_chain(job->cat, chain, upto, err) < 0)
        goto done;
    rc = 0;
done:
    pl_chain_free(chain);
    return rc;
}

/* Bind `value` (None, int, float or str) to parameter i of `q`. Returns
 * SQLITE_OK, another SQLite code, or -1 with an exception. */
static int bind_object(sqlite3_stmt *q, int i, PyObject *value)
{
    Py_ssize_t len;
    const char *text;

    if (value == Py_None)
        return sqlite3_bind_null(q, i);
    if (PyLong_Check(value)) {
        long long n = PyLong_AsLongLong(value);
        return n == -1 && PyErr_Occurred() ? -1 : sqlite3_bind_int64(q, i, n);
    }
    if (PyFloat_Check(value))
        return sqlite3_bind_double(q, i, PyFloat_AS_DOUBLE(value));
    text = text_arg(value, "a catalog value", &len);
    if (text == NULL)
        return -1;
    return sqlite3_bind_text64(q, i, text, (sqlite3_uint64)len, SQLITE_TRANSIENT, SQLITE_UTF8);
}

/* Insert `rows` (a sequence of tuples of the catalog's shape) with `sql`, ?1
 * being `src`. Returns 0 or -1 with an exception. The catalog is memory
 * only: this runs with the GIL held, over a tuple copy of `rows`. */
static int insert_rows(pl_state *st, sqlite3 *cat, const char *sql, PyObject *rows, int src)
{
    sqlite3_stmt *q = NULL;
    PyObject *copy = PySequence_Tuple(rows);
    pl_err err;
    int rc = SQLITE_OK, n;

    if (copy == NULL)
        return -1;
    if ((rc = sqlite3_prepare_v2(cat, sql, -1, &q, NULL)) != SQLITE_OK)
        goto fail;
    n = sqlite3_bind_parameter_count(q) - 1;
    for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(copy); r++) {
        PyObject *row = PyTuple_GET_ITEM(copy, r);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != n) {
            PyErr_Format(PyExc_ValueError, "a catalog row must be a tuple of %d values", n);
            goto fail;
        }
        rc = sqlite3_bind_int(q, 1, src);
        for (int i = 0; rc == SQLITE_OK && i < n; i++)
            rc = bind_object(q, i + 2, PyTuple_GET_ITEM(row, i));
        if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_DONE)
            rc = sqlite3_reset(q);
        if (rc != SQLITE_OK)
            goto fail;
    }
    sqlite3_finalize(q);
    Py_DECREF(copy);
    return 0;
fail:
    if (rc > 0 && !PyErr_Occurred()) {
        pl_err_from_sqlite(&err, rc, cat, NULL, "recording a schema catalog");
        pl_raise(st, &err);
    }
    sqlite3_finalize(q);
    Py_DECREF(copy);
    return -1;
}

/* Record `catalog`, shaped as database_schema() returns it, in `cat` as
 * source `src`. Returns 0 or -1 with an exception. GIL held. */
static int add_catalog(pl_state *st, sqlite3 *cat, PyObject *catalog, int src)
{
    static const char *const parts[][2] = {
        {"objects", "INSERT INTO cat_objects VALUES (?1, ?2, ?3, ?4, ?5)"},
        {"columns", "INSERT INTO cat_columns VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
        {"indexes", "INSERT INTO cat_indexes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
        {"index_columns", "INSERT INTO cat_index_columns VALUES (?1, ?2, ?3, ?4)"},
        {"foreign_keys",
         "INSERT INTO cat_foreign_keys VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
    };

    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        PyObject *rows = PyMapping_GetItemString(catalog, parts[i][0]);
        if (rows == NULL) {
            if (PyErr_ExceptionMatches(PyExc_KeyError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "a catalog needs its %s rows", parts[i][0]);
            }
            return -1;
        }
        int rc = insert_rows(st, cat, parts[i][1], rows, src);
        Py_DECREF(rows);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The PL_DIFF_* flags of the `legacy` argument, or -1 with an exception. */
static int legacy_flags(const char *legacy)
{
    if (strcmp(legacy, "missing") == 0)
        return PL_DIFF_LEGACY_MISSING_OK;
    if (strcmp(legacy, "one-sided") == 0)
        return PL_DIFF_LEGACY_MISSING_OK | PL_DIFF_LEGACY_EXTRA_OK;
    if (strcmp(legacy, "ignore") == 0)
        return PL_DIFF_NO_LEGACY;
    if (strcmp(legacy, "compare") == 0)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "legacy must be 'missing', 'one-sided', 'ignore' or 'compare', not '%s'", legacy);
    return -1;
}

/* Catalogue both sides of `job` and compare them (pl_schema_diff). Returns
 * 0 or -1 with an exception. */
static int run_job(pl_state *st, diff_job *job)
{
    pl_err err;
    int rc;

    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = catalog_sides(job, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        pl_raise(st, &err);
        return -1;
    }
    for (int i = 0; i < 2; i++)
        if (job->side[i].type == SIDE_CATALOG &&
            add_catalog(st, job->cat, job->side[i].catalog, job->side[i].src) < 0)
            return -1;
    job->spec.expected = job->side[0].src;
    job->spec.actual = job->side[1].src;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_schema_diff(job->cat, &job->spec, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        pl_raise(st, &err);
        return -1;
    }
    return 0;
}

static PyObject *py_schema_differences(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"expected", "actual", "directory", "legacy", "column_order", NULL};
    pl_state *st = PyModule_GetState(module);
    PyObject *expected, *actual, *dir_obj = Py_None, *dir = NULL, *result = NULL;
    const char *legacy = "missing";
    int column_order = 0, flags;
    diff_job job;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O$sp:schema_differences", kwlist, &expected,
                                     &actual, &dir_obj, &legacy, &column_order))
        return NULL;
    memset(&job, 0, sizeof job);
    flags = legacy_flags(legacy);
    if (flags < 0 || pl_environ_refresh(st) < 0 ||
        parse_side(st, expected, "expected", &job.side[0], -3) < 0 ||
        parse_side(st, actual, "actual", &job.side[1], PL_CATALOG_LIVE) < 0 ||
        pl_inspect_dir_arg(dir_obj, &dir) < 0)
        goto done;
    job.dir = dir ? PyBytes_AS_STRING(dir) : NULL;
    job.spec.aside = PL_DIFF_NO_SOURCE;
    job.spec.flags = flags | (column_order ? PL_DIFF_COLUMN_ORDER : 0);
    if (run_job(st, &job) < 0)
        goto done;
    result = catalog_rows(st, job.cat,
                          "SELECT kind, tbl, name, expected, actual FROM cat_diff"
                          " WHERE ?1 = ?1 ORDER BY rowid",
                          0);
done:
    sqlite3_close(job.cat);
    Py_XDECREF(dir);
    return result;
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
    {"schema_differences", (PyCFunction)(void (*)(void))py_schema_differences,
     METH_VARARGS | METH_KEYWORDS,
     "schema_differences(expected, actual, directory=None, *, legacy='missing', "
     "column_order=False)\n--\n\nHow schema `actual` differs from schema `expected`, by the "
     "comparator that also\nrecognises layouts: a list of (kind, table, name, expected, actual) "
     "tuples,\nkind one of 'table', 'column', 'index', 'constraint', 'view-or-trigger', and\n"
     "expected/actual what each side has (None: it lacks it). A side is ('database',\npath), "
     "('revision', id, 'head', 'base' or None: what the migrations in\n`directory` produce), "
     "('sql', script: declarations run on an empty database)\nor ('catalog', a dict shaped like "
     "database_schema()). `legacy`: a legacy_*\ntable only the expected side holds is no "
     "difference ('missing'), nor one\nonly one side holds ('one-sided'); 'ignore' leaves "
     "them out, 'compare' compares\nthem. `column_order` also reports a table whose columns "
     "are not the actual\nones in their order followed by the new ones (kind 'table', both "
     "sides set)."},
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
