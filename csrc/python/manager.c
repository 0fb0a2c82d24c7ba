/* manager.c: DatabaseManager: initialize_database, the default database, sessions. */
#include "manager.h"
#include "pgconn.h"
#include "postgres.h"
#include "environ.h"
#include "password.h"
#include "pyutil.h"
#include "registry.h"
#include "session.h"

#include <limits.h>

typedef struct {
    PyObject_HEAD
} ManagerObject;

/* Initialize the database named by `path_obj`. Returns 0 with *out set to
 * the database (a new C reference), or -1 with an exception set. When `out`
 * is NULL the caller wants no reference: a database already initialized then
 * returns through the fast path without releasing the GIL. */
static int initialize(pl_state *st, PyObject *path_obj, pl_database **out)
{
    char abs[PATH_MAX + 1];
    pl_database *db = NULL;
    pl_err err;
    int rc = -1;

    if (pl_abs_path_from_object(st, path_obj, abs, sizeof abs) < 0)
        return -1;
    if (out == NULL && pl_registry_try_ready(abs) == 1)
        return 0; /* ready: no reference taken */
    if (pl_environ_refresh(st) < 0)
        return -1;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    db = pl_registry_get(abs, &err);
    if (db != NULL) {
        rc = pl_database_ensure_ready(db, &err);
        if (rc == 0) {
            pl_registry_offer_default(db);
        } else {
            pl_database_decref(db);
            db = NULL;
        }
    }
    Py_END_ALLOW_THREADS
    if (db == NULL) {
        pl_raise(st, &err);
        return -1;
    }
    if (out != NULL) {
        *out = db;
    } else {
        Py_BEGIN_ALLOW_THREADS
        pl_database_decref(db);
        Py_END_ALLOW_THREADS
    }
    return 0;
}

PyObject *pl_manager_set_admin_password_if_unusable(PyObject *module, PyObject *args)
{
    pl_state *st = PyModule_GetState(module);
    PyObject *path;
    const char *password;
    Py_ssize_t len;
    char why[PL_PASSWORD_WHY_MAX];
    pl_database *db = NULL;
    pl_err err;
    int rc, set = 0;

    if (!PyArg_ParseTuple(args, "Os#:set_admin_password_if_unusable", &path, &password, &len))
        return NULL;
    if (pl_password_check(password, (size_t)len, why, sizeof why) < 0)
        return PyErr_Format(PyExc_ValueError, "The admin password %s.", why);
    if (PyUnicode_Check(path) && PyUnicode_AsUTF8(path) != NULL &&
        pl_pg_is_url(PyUnicode_AsUTF8(path)))
        return pl_postgres_set_first_admin_password(st, PyUnicode_AsUTF8(path), password);
    PyErr_Clear();
    if (initialize(st, path, &db) < 0)
        return NULL;
    pl_err_clear(&err);
    Py_BEGIN_ALLOW_THREADS
    rc = pl_database_set_first_admin_password(db, password, &set, &err);
    pl_database_decref(db);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(st, &err);
    return PyBool_FromLong(set);
}

static PyObject *manager_initialize_database(PyObject *self, PyObject *path)
{
    if (initialize(pl_state_of(Py_TYPE(self)), path, NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *manager_get_session(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db_file", NULL};
    pl_state *st = pl_state_of(Py_TYPE(self));
    PyObject *path = Py_None;
    pl_database *db;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:get_session", kwlist, &path))
        return NULL;
    if (path == Py_None) {
        db = pl_registry_default();
        if (db == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "Session not initialized. Call init_engine first.");
            return NULL;
        }
    } else {
        if (initialize(st, path, &db) < 0)
            return NULL;
    }
    return pl_session_new(st, db); /* takes the reference */
}

static PyObject *manager_is_initialized(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyBool_FromLong(pl_registry_default_ready());
}

static PyObject *manager_reset_initialization(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    pl_registry_reset();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *manager_get_is_ready(PyObject *self, void *closure)
{
    (void)closure;
    return manager_is_initialized(self, NULL);
}

/* The default database's path as str, or None. */
static PyObject *default_path(int as_url)
{
    pl_database *db = pl_registry_default();
    PyObject *path, *result;

    if (db == NULL)
        Py_RETURN_NONE;
    path = PyUnicode_DecodeFSDefault(db->path);
    Py_BEGIN_ALLOW_THREADS
    pl_database_decref(db);
    Py_END_ALLOW_THREADS
    if (path == NULL || !as_url)
        return path;
    result = PyUnicode_FromFormat("sqlite:///%U", path);
    Py_DECREF(path);
    return result;
}

static PyObject *manager_get_database_url(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return default_path(1);
}

static PyObject *manager_get_database_path(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return default_path(0);
}

static PyObject *manager_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    pl_state *st = pl_state_of(type);

    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "DatabaseManager() takes no arguments");
        return NULL;
    }
    if (st->manager != NULL)
        return Py_NewRef(st->manager);
    return type->tp_alloc(type, 0);
}

static int manager_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void manager_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef manager_methods[] = {
    {"initialize_database", manager_initialize_database, METH_O,
     "initialize_database(db_file)\n--\n\n"
     "Create the file and its folders if missing, apply pending migrations and make sure\n"
     "the admin user exists. Any spelling of an initialized path returns at once.\n"
     "The first database initialized becomes the default for get_session()."},
    {"get_session", (PyCFunction)(void (*)(void))manager_get_session, METH_VARARGS | METH_KEYWORDS,
     "get_session(db_file=None)\n--\n\n"
     "A Session on the default database, or on db_file (initialized first)."},
    {"is_initialized", manager_is_initialized, METH_NOARGS,
     "is_initialized()\n--\n\nTrue once a default database is ready."},
    {"reset_initialization", manager_reset_initialization, METH_NOARGS,
     "reset_initialization()\n--\n\n"
     "Forget every database (open sessions keep working); the next initialization\n"
     "checks its file again. Meant for tests."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef manager_getset[] = {
    {"is_ready", manager_get_is_ready, NULL, "True once a default database is ready.", NULL},
    {"database_url", manager_get_database_url, NULL,
     "'sqlite:///' + the default database's path, or None.", NULL},
    {"database_path", manager_get_database_path, NULL,
     "Absolute path of the default database, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot manager_slots[] = {
    {Py_tp_new, manager_new},
    {Py_tp_dealloc, manager_dealloc},
    {Py_tp_traverse, manager_traverse},
    {Py_tp_methods, manager_methods},
    {Py_tp_getset, manager_getset},
    {Py_tp_doc, "DatabaseManager()\n--\n\n"
                "The registry of PromptLab databases; every call returns the one instance."},
    {0, NULL},
};

static PyType_Spec manager_spec = {
    .name = "promptlab.sqlite.DatabaseManager",
    .basicsize = sizeof(ManagerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = manager_slots,
};

int pl_manager_register(PyObject *module, pl_state *st)
{
    if (pl_type_register(module, &manager_spec, &st->manager_type) < 0)
        return -1;
    st->manager = st->manager_type->tp_alloc(st->manager_type, 0);
    if (st->manager == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "db_manager", st->manager);
}
