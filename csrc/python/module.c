/* module.c: promptlab._core: module state, exceptions, import-time checks. */
#include "module.h"
#include "environ.h"
#include "fault.h"
#include "fork.h"
#include "lockorder.h"
#include "inspect.h"
#include "lookup.h"
#include "migcmd.h"
#include "manager.h"
#include "paths.h"
#include "registry.h"
#include "password.h"
#include "pgconn.h"
#include "postgres.h"
#include "result.h"
#include "row.h"
#include "rowmapping.h"
#include "session.h"
#include "settings.h"
#include "tally.h"
#include "initialize.h"
#include "pyutil.h"
#include "compat.h"

#include <ctype.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#if SQLITE_VERSION_NUMBER < PL_SQLITE_MIN_VERSION
#error "PromptLab needs SQLite 3.37.0 or newer (install libsqlite3-dev 3.37+)"
#endif

static const struct {
    pl_errkind kind;
    const char *name; /* qualified name */
    pl_errkind base;  /* PL_OK: the root DatabaseError derives from Exception */
    const char *doc;
} ERROR_SPECS[] = {
    {PL_E_DATABASE, "promptlab.sqlite.DatabaseError", PL_OK,
     "Root of PromptLab's database errors; `path` names the file."},
    {PL_E_INVALID, "promptlab.sqlite.InvalidDatabaseError", PL_E_DATABASE,
     "The file is not a SQLite database, or it is damaged. It is never modified."},
    {PL_E_PATH, "promptlab.sqlite.DatabasePathError", PL_E_DATABASE,
     "The path cannot hold a database (folder, permissions, length, NUL, type)."},
    {PL_E_BUSY, "promptlab.sqlite.DatabaseBusyError", PL_E_DATABASE,
     "Another connection held a lock for longer than the busy timeout."},
    {PL_E_READONLY, "promptlab.sqlite.ReadOnlyDatabaseError", PL_E_DATABASE,
     "The database cannot be written."},
    {PL_E_FULL, "promptlab.sqlite.DiskFullError", PL_E_DATABASE,
     "The disk or the database's size limit is full."},
    {PL_E_INTEGRITY, "promptlab.sqlite.IntegrityError", PL_E_DATABASE,
     "A constraint failed: duplicate key, NOT NULL or foreign key."},
    {PL_E_PROGRAMMING, "promptlab.sqlite.ProgrammingError", PL_E_DATABASE,
     "Misuse: invalid SQL, wrong parameters, a closed session."},
    {PL_E_MIGRATION, "promptlab.sqlite.MigrationError", PL_E_DATABASE,
     "A migration file is invalid or a migration failed."},
    {PL_E_UNKNOWN_REVISION, "promptlab.sqlite.UnknownRevisionError", PL_E_MIGRATION,
     "The database was written by a newer PromptLab; it is left unchanged."},
    {PL_E_FOREIGN_SCHEMA, "promptlab.sqlite.ForeignSchemaError", PL_E_INVALID,
     "The database holds a trigger or view that PromptLab did not create; PromptLab\n"
     "refuses to write to it rather than run that code inside its statements."},
    {PL_E_TIMEOUT, "promptlab.sqlite.StatementTimeoutError", PL_E_DATABASE,
     "A statement ran longer than its time limit (Session.statement_timeout or\n"
     "PROMPTLAB_STATEMENT_TIMEOUT_MS) and was stopped."},
    {PL_E_UNAVAILABLE, "promptlab.sqlite.ServerUnavailableError", PL_E_DATABASE,
     "The database server cannot be reached: it is not running, is starting or\n"
     "shutting down, or the host or port is wrong. `path` names the server and\n"
     "database, never the password."},
    {PL_E_CONNECTION_LOST, "promptlab.sqlite.ConnectionLostError", PL_E_UNAVAILABLE,
     "The connection to the database server broke during a call; the server rolled\n"
     "back the transaction in progress."},
    {PL_E_AUTH, "promptlab.sqlite.AuthenticationError", PL_E_DATABASE,
     "The database server refused the user name or password."},
    {PL_E_NO_DATABASE, "promptlab.sqlite.DatabaseNotFoundError", PL_E_DATABASE,
     "The database server has no database of that name."},
    {PL_E_PERMISSION, "promptlab.sqlite.PermissionDeniedError", PL_E_DATABASE,
     "The database server does not let this user do that (connect, create, write)."},
};

/* Raise exception kind `kind` with `message` (a str, consumed) and the
 * attributes path and sqlite_errorcode. Returns NULL. */
static PyObject *raise_message(pl_state *st, pl_errkind kind, PyObject *message, const char *path,
                               int sqlite_rc)
{
    PyObject *type, *exc, *value;

    if (message == NULL)
        return NULL;
    if (kind == PL_E_NOMEM) {
        Py_DECREF(message);
        return PyErr_NoMemory();
    }
    type = (kind > PL_OK && kind < PL_E_KIND_COUNT) ? st->errors[kind] : NULL;
    if (type == NULL)
        type = st->errors[PL_E_DATABASE];
    if (type == NULL) /* the module is being torn down */
        type = PyExc_RuntimeError;
    exc = PyObject_CallOneArg(type, message);
    Py_DECREF(message);
    if (exc == NULL)
        return NULL;
    value = (path != NULL && path[0]) ? PyUnicode_DecodeFSDefault(path) : Py_NewRef(Py_None);
    if (value == NULL || PyObject_SetAttrString(exc, "path", value) < 0)
        goto fail;
    Py_DECREF(value);
    value = sqlite_rc ? PyLong_FromLong(sqlite_rc) : Py_NewRef(Py_None);
    if (value == NULL || PyObject_SetAttrString(exc, "sqlite_errorcode", value) < 0)
        goto fail;
    Py_DECREF(value);
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
    return NULL;
fail:
    Py_XDECREF(value);
    Py_DECREF(exc);
    return NULL;
}

PyObject *pl_raise(pl_state *st, const pl_err *err)
{
    /* Paths in the message may hold bytes that are not UTF-8. */
    PyObject *message =
        PyUnicode_DecodeUTF8(err->msg, (Py_ssize_t)strlen(err->msg), "backslashreplace");
    return raise_message(st, err->kind, message, err->path, err->sqlite_rc);
}

PyObject *pl_raise_kind(pl_state *st, pl_errkind kind, const char *path, const char *fmt, ...)
{
    PyObject *text, *message;
    va_list ap;

    va_start(ap, fmt);
    text = PyUnicode_FromFormatV(fmt, ap); /* understands %R, %S, %zd */
    va_end(ap);
    if (text == NULL || path == NULL || path[0] == '\0')
        return raise_message(st, kind, text, path, 0);
    message = PyUnicode_FromFormat("%s: %U", path, text);
    Py_DECREF(text);
    return raise_message(st, kind, message, path, 0);
}

/* A database named by URL: "sqlite:///path" (and "sqlite:///:memory:") is the
 * path; a URL of another backend is refused by name, never taken as a folder
 * named "postgresql:". Moves *s and *n past the prefix. Returns 0, or -1 with
 * DatabasePathError set. */
static int url_to_path(pl_state *st, const char **s, Py_ssize_t *n)
{
    static const char SQLITE_URL[] = "sqlite:///";
    const char *p = *s;
    Py_ssize_t i = 0;

    if (*n >= (Py_ssize_t)(sizeof SQLITE_URL - 1) &&
        memcmp(p, SQLITE_URL, sizeof SQLITE_URL - 1) == 0) {
        *s += sizeof SQLITE_URL - 1;
        *n -= (Py_ssize_t)(sizeof SQLITE_URL - 1);
        return 0;
    }
    /* RFC 3986 scheme: a letter, then letters, digits, '+', '-', '.' */
    if (*n == 0 || !isalpha((unsigned char)p[0]))
        return 0;
    while (i < *n && (isalnum((unsigned char)p[i]) || p[i] == '+' || p[i] == '-' || p[i] == '.'))
        i++;
    if (i + 3 > *n || memcmp(p + i, "://", 3) != 0)
        return 0;
    char scheme[48]; /* shown, never the rest of the URL: it may hold a password */
    snprintf(scheme, sizeof scheme, "%.*s", (int)(i > 40 ? 40 : i), p);
    if (pl_pg_is_url(p))
        pl_raise_kind(st, PL_E_PATH, NULL,
                      "PostgreSQL databases are made, migrated, read and filled by "
                      "`promptlab db init`, `db migrate`, `db downgrade`, `db status` and "
                      "`db copy` in this version; sessions, the tracer and the studio do "
                      "not open them yet. Pass a file path or a 'sqlite:///path' URL.");
    else
        pl_raise_kind(st, PL_E_PATH, NULL,
                      "'%s://' URLs name a database backend this PromptLab is not built "
                      "with; pass a file path or a 'sqlite:///path' URL.",
                      scheme);
    return -1;
}

int pl_abs_path_from_object(pl_state *st, PyObject *obj, char *buf, size_t size)
{
    PyObject *encoded = NULL, *fspath = NULL;
    const char *s = NULL;
    Py_ssize_t n = 0;
    pl_err err;
    int rc = -1;

    if (PyUnicode_Check(obj)) {
        s = PyUnicode_AsUTF8AndSize(obj, &n);
        if (s == NULL) {
            /* Undecodable file names arrive as surrogate escapes. */
            PyErr_Clear();
            encoded = PyUnicode_EncodeFSDefault(obj);
        } else if (url_to_path(st, &s, &n) < 0) {
            return -1;
        }
    } else if (PyBytes_Check(obj)) {
        encoded = Py_NewRef(obj);
    } else {
        /* An __fspath__ that raised says what went wrong itself. */
        int has_fspath = PyObject_HasAttrString((PyObject *)Py_TYPE(obj), "__fspath__");
        fspath = PyOS_FSPath(obj);
        if (fspath == NULL) {
            if (has_fspath)
                return -1;
            PyErr_Clear();
            pl_raise_kind(st, PL_E_PATH, NULL,
                          "The database path must be a str, bytes or os.PathLike, not %.100s; "
                          "pass the path of the database file.",
                          Py_TYPE(obj)->tp_name);
            return -1;
        }
        rc = pl_abs_path_from_object(st, fspath, buf, size);
        Py_DECREF(fspath);
        return rc;
    }
    if (s == NULL) {
        if (encoded == NULL)
            return -1;
        s = PyBytes_AS_STRING(encoded);
        n = PyBytes_GET_SIZE(encoded);
    }
    if (memchr(s, '\0', (size_t)n) != NULL) {
        pl_raise_kind(st, PL_E_PATH, NULL,
                      "The database path %R contains a NUL byte, which no file name can "
                      "hold; remove it.",
                      obj);
        goto done;
    }
    if (pl_path_absolute(s, (size_t)n, buf, size, &err) < 0) {
        pl_raise(st, &err);
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(encoded);
    return rc;
}

int pl_refuse_memory(pl_state *st, const char *abs)
{
    if (!pl_path_is_memory(abs))
        return 0;
    pl_raise_kind(st, PL_E_PATH, abs,
                  "this names the in-memory database of one process; migration and "
                  "inspection commands need a database file.");
    return -1;
}

/* hash_password(password, rounds=None): rounds None is the cost in use
 * (pl_password_rounds). */
static PyObject *py_hash_password(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"password", "rounds", NULL};
    pl_state *st = PyModule_GetState(module);
    const char *password;
    PyObject *rounds_obj = Py_None;
    int rounds, rc;
    char out[PL_HASH_MAX];
    pl_err err;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|O:hash_password", kwlist, &password,
                                     &rounds_obj))
        return NULL;
    if (rounds_obj == Py_None) {
        rounds = pl_password_rounds();
    } else {
        rounds = pl_long_as_int(rounds_obj);
        if (rounds == -1 && PyErr_Occurred())
            return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pl_password_hash(password, rounds, out, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return pl_raise(st, &err);
    return PyUnicode_FromString(out);
}

/* _set_bcrypt_rounds_for_tests(n): see pl_password_set_rounds_for_tests. */
static PyObject *py_set_bcrypt_rounds_for_tests(PyObject *module, PyObject *arg)
{
    int rounds = pl_long_as_int(arg), previous;

    (void)module;
    if (rounds == -1 && PyErr_Occurred())
        return NULL;
    previous = pl_password_set_rounds_for_tests(rounds);
    if (previous < 0)
        return PyErr_Format(PyExc_ValueError, "bcrypt rounds must be between %d and %d, not %d",
                            PL_BCRYPT_MIN_ROUNDS, PL_BCRYPT_MAX_ROUNDS, rounds);
    return PyLong_FromLong(previous);
}

static PyObject *py_check_password(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"password", "name", NULL};
    const char *password, *name = "The password";
    Py_ssize_t len;
    char why[PL_PASSWORD_WHY_MAX];

    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s#|s:check_password", kwlist, &password, &len,
                                     &name))
        return NULL;
    if (pl_password_check(password, (size_t)len, why, sizeof why) < 0)
        return PyErr_Format(PyExc_ValueError, "%s %s.", name, why);
    Py_RETURN_NONE;
}

/* admin_password_from_environment(): PROMPTLAB_ADMIN_PASSWORD as the engine
 * reads it (settings.h), None when unset or empty; ValueError when it breaks
 * the password rule. For commands that refuse a bad value before any file is
 * made; initialization itself checks it only where it uses it. */
static PyObject *py_admin_password_from_environment(PyObject *module, PyObject *unused)
{
    /* One byte more than the rule allows; len is the full length. */
    char value[PL_PASSWORD_MAX_BYTES + 2], why[PL_PASSWORD_WHY_MAX];
    PyObject *result = NULL;
    long len;

    (void)unused;
    if (pl_environ_refresh(PyModule_GetState(module)) < 0)
        return NULL;
    len = pl_settings_admin_password(value, sizeof value);
    if (len <= 0)
        result = Py_NewRef(Py_None);
    else if (pl_password_check(value, (size_t)len, why, sizeof why) < 0)
        PyErr_Format(PyExc_ValueError, "PROMPTLAB_ADMIN_PASSWORD %s.", why);
    else
        result = PyUnicode_DecodeFSDefaultAndSize(value, len);
    explicit_bzero(value, sizeof value);
    return result;
}

/* _lock_check_self_test(which): see pl_lock_check_self_test. For tests. */
static PyObject *py_lock_check_self_test(PyObject *module, PyObject *arg)
{
    const char *which = PyUnicode_AsUTF8(arg);
    (void)module;
    if (which == NULL)
        return NULL;
    if (pl_lock_check_self_test(which) < 0)
        return PyErr_Format(PyExc_ValueError, "unknown check %R", arg);
    Py_RETURN_NONE;
}

static PyObject *py_verify_password(PyObject *module, PyObject *args)
{
    const char *password, *hash;
    int ok;

    (void)module;
    if (!PyArg_ParseTuple(args, "ss:verify_password", &password, &hash))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    ok = pl_password_verify(password, hash);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

static PyObject *py_close_idle_connections(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    pl_registry_close_idle();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* At interpreter exit: from now on sessions close their connections instead
 * of pooling them (pl_exiting), and the idle ones close now. */
static PyObject *py_at_exit(PyObject *module, PyObject *unused)
{
    pl_state *st = PyModule_GetState(module);

    st->exiting = 1;
    return py_close_idle_connections(module, unused);
}

/* Not in the module's method table: only atexit calls it. */
static PyMethodDef at_exit_def = {"_at_exit", py_at_exit, METH_NOARGS,
                                  "Close idle connections at interpreter exit."};

/* Register `hook` with `module_name.function_name`, as its one positional
 * argument or, when `keyword` is given, as that named argument. */
static int register_hook(PyObject *hook, const char *module_name, const char *function_name,
                         const char *keyword)
{
    PyObject *target = PyImport_ImportModule(module_name), *register_fn = NULL;
    PyObject *args = NULL, *kwargs = NULL, *r = NULL;
    if (target == NULL)
        return -1;
    register_fn = PyObject_GetAttrString(target, function_name);
    if (register_fn != NULL) {
        args = keyword ? PyTuple_New(0) : PyTuple_Pack(1, hook);
        kwargs = keyword ? Py_BuildValue("{s:O}", keyword, hook) : NULL;
        if (args != NULL && (keyword == NULL || kwargs != NULL))
            r = PyObject_Call(register_fn, args, kwargs);
    }
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(register_fn);
    Py_DECREF(target);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Idle pooled connections are closed:
 * - before os.fork(), with the GIL released, so the pthread_atfork handler
 *   (which runs with the GIL held) rarely has any left to close;
 * - at interpreter exit: closing the last connection to a file checkpoints
 *   its WAL into the file and removes the -wal and -shm files, so the
 *   database is complete in its one file once the program ends (otherwise
 *   the rows of a run could sit in the -wal and a copy of the .db alone
 *   would miss them). */
static int register_close_hooks(PyObject *module)
{
    PyObject *before_fork = PyObject_GetAttrString(module, "_close_idle_connections");
    PyObject *at_exit = PyCFunction_NewEx(&at_exit_def, module, NULL);
    int rc = -1;

    if (before_fork != NULL && at_exit != NULL &&
        register_hook(before_fork, "os", "register_at_fork", "before") == 0)
        rc = register_hook(at_exit, "atexit", "register", NULL);
    Py_XDECREF(before_fork);
    Py_XDECREF(at_exit);
    return rc;
}

#ifndef PL_SANITIZE
#define PL_SANITIZE "" /* the -fsanitize= list of a sanitizer build (setup.py) */
#endif

#ifdef NDEBUG
#define DEBUG_CHECKS 0
#else
#define DEBUG_CHECKS 1 /* assertions: lock order, locks held, no GIL in the engine */
#endif

static PyMethodDef module_methods[] = {
    {"hash_password", (PyCFunction)(void (*)(void))py_hash_password, METH_VARARGS | METH_KEYWORDS,
     "hash_password(password, rounds=None)\n--\n\n"
     "bcrypt ($2b$) hash of password at cost rounds (None: the cost for stored\n"
     "passwords, " PL_STRINGIFY(
         PL_PASSWORD_ROUNDS) ", unless _set_bcrypt_rounds_for_tests changed it)."},
    {"_set_bcrypt_rounds_for_tests", py_set_bcrypt_rounds_for_tests, METH_O,
     "_set_bcrypt_rounds_for_tests(rounds)\n--\n\n"
     "For test suites only: make rounds (" PL_STRINGIFY(PL_BCRYPT_MIN_ROUNDS) " to " PL_STRINGIFY(
         PL_BCRYPT_MAX_ROUNDS) ") the bcrypt cost of new password\n"
                               "hashes in this process; returns the previous cost. Hashes carry "
                               "their cost,\n"
                               "so verification is unaffected."},
    {"set_admin_password_if_unusable", pl_manager_set_admin_password_if_unusable, METH_VARARGS,
     "set_admin_password_if_unusable(db_file, password)\n--\n\n"
     "Initialize db_file, then give its admin user password (bcrypt-hashed, the GIL\n"
     "released) while the admin has no usable password. Returns whether it was set:\n"
     "False when the admin already had one (another process may have been first) or\n"
     "there is no admin user. ValueError when password breaks the password rule."},
    {"_close_idle_connections", py_close_idle_connections, METH_NOARGS,
     "_close_idle_connections()\n--\n\n"
     "Close idle pooled connections (run before os.fork() and at exit)."},
    {"_lock_check_self_test", py_lock_check_self_test, METH_O,
     "_lock_check_self_test(which)\n--\n\n"
     "For tests: break a lock rule on purpose ('order' or 'gil'). In builds with\n"
     "assertions (_debug_checks) the process aborts; otherwise nothing happens."},
    {"admin_password_from_environment", py_admin_password_from_environment, METH_NOARGS,
     PyDoc_STR("admin_password_from_environment() -> str | None\n\nPROMPTLAB_ADMIN_PASSWORD "
               "as initialization reads it; None when unset or empty. ValueError when it "
               "breaks the password rule.")},
    {"check_password", (PyCFunction)(void (*)(void))py_check_password, METH_VARARGS | METH_KEYWORDS,
     "check_password(password, name='The password')\n--\n\n"
     "Raise ValueError, starting with name, unless password is 8 to 72 bytes of UTF-8\n"
     "without a NUL byte: the rule for every password PromptLab stores."},
    {"verify_password", py_verify_password, METH_VARARGS,
     "verify_password(password, password_hash)\n--\n\n"
     "True when password matches the bcrypt hash."},
    {NULL, NULL, 0, NULL},
};

/* Point the migration loader at the migrations shipped beside this module:
 * <package>/migrations/versions, or ../migrations/versions in a source tree. */
static int set_migrations_dir(PyObject *module)
{
    PyObject *file = PyModule_GetFilenameObject(module);
    PyObject *bytes = NULL;
    char dir[PATH_MAX], candidate[PATH_MAX];
    char *slash;

    if (file == NULL) {
        PyErr_Clear();
        return 0; /* no __file__ (embedded): PROMPTLAB_MIGRATIONS_DIR is needed */
    }
    if (!PyUnicode_FSConverter(file, &bytes)) {
        Py_DECREF(file);
        return -1;
    }
    Py_DECREF(file);
    snprintf(dir, sizeof dir, "%s", PyBytes_AS_STRING(bytes));
    Py_DECREF(bytes);
    slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(candidate, sizeof candidate, "%s/migrations/versions", dir);
    if (access(candidate, F_OK) != 0) {
        char alt[PATH_MAX];
        snprintf(alt, sizeof alt, "%s/../migrations/versions", dir);
        if (access(alt, F_OK) == 0)
            snprintf(candidate, sizeof candidate, "%s", alt);
    }
    pl_initialize_set_default_dir(candidate);
    return 0;
}

static int add_errors(PyObject *module, pl_state *st)
{
    for (size_t i = 0; i < sizeof ERROR_SPECS / sizeof ERROR_SPECS[0]; i++) {
        PyObject *base =
            ERROR_SPECS[i].base == PL_OK ? PyExc_Exception : st->errors[ERROR_SPECS[i].base];
        PyObject *dict = Py_BuildValue("{sOsO}", "path", Py_None, "sqlite_errorcode", Py_None);
        if (dict == NULL)
            return -1;
        PyObject *exc =
            PyErr_NewExceptionWithDoc(ERROR_SPECS[i].name, ERROR_SPECS[i].doc, base, dict);
        Py_DECREF(dict);
        if (exc == NULL)
            return -1;
        st->errors[ERROR_SPECS[i].kind] = exc;
        const char *short_name = strrchr(ERROR_SPECS[i].name, '.') + 1;
        if (PyModule_AddObjectRef(module, short_name, exc) < 0)
            return -1;
    }
    return 0;
}

static int module_exec(PyObject *module)
{
    pl_state *st = PyModule_GetState(module);

    if (sqlite3_libversion_number() < PL_SQLITE_MIN_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "PromptLab needs SQLite %s or newer, but this process loaded SQLite %s; "
                     "upgrade the system's libsqlite3.",
                     PL_SQLITE_MIN_VERSION_TEXT, sqlite3_libversion());
        return -1;
    }
    if (!sqlite3_threadsafe()) {
        PyErr_SetString(PyExc_ImportError,
                        "PromptLab needs a thread-safe SQLite build (SQLITE_THREADSAFE=1 or 2).");
        return -1;
    }
    if (pl_fork_install() != 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
        return -1;
    }
    if (add_errors(module, st) < 0)
        return -1;
    st->columns_cache = PyDict_New();
    if (st->columns_cache == NULL)
        return -1;
    st->environ = pl_import_attr("os", "environ");
    if (st->environ == NULL || pl_environ_setup(st) < 0)
        return -1;
    pl_gil_held_hook = PyGILState_Check; /* for the engine's debug assertions */
    if (pl_row_register(module, st) < 0 || pl_rowmapping_register(module, st) < 0 ||
        pl_result_register(module, st) < 0 || pl_session_register(module, st) < 0 ||
        pl_manager_register(module, st) < 0 || pl_lookup_register(module, st) < 0 ||
        pl_tally_register(module) < 0)
        return -1;
    if (set_migrations_dir(module) < 0 || PyModule_AddFunctions(module, pl_inspect_methods) < 0 ||
        PyModule_AddFunctions(module, pl_migcmd_methods) < 0)
        return -1;
    if (PyModule_AddFunctions(module, pl_fault_methods) < 0 ||
        PyModule_AddFunctions(module, pl_postgres_methods) < 0)
        return -1;
    if (register_close_hooks(module) < 0)
        return -1;
    if (PyModule_AddStringConstant(module, "sqlite_version", sqlite3_libversion()) < 0 ||
        PyModule_AddStringConstant(module, "UNUSABLE_PASSWORD", PL_UNUSABLE_PASSWORD) < 0 ||
        PyModule_AddIntConstant(module, "PASSWORD_MIN_BYTES", PL_PASSWORD_MIN_BYTES) < 0 ||
        PyModule_AddIntConstant(module, "PASSWORD_MAX_BYTES", PL_PASSWORD_MAX_BYTES) < 0 ||
        PyModule_AddObjectRef(module, "_debug_checks", DEBUG_CHECKS ? Py_True : Py_False) < 0 ||
        PyModule_AddStringConstant(module, "_sanitize", PL_SANITIZE) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    pl_state *st = PyModule_GetState(module);
#define VISIT(field) Py_VISIT(st->field);
    PL_STATE_OBJECTS(VISIT)
#undef VISIT
    for (int i = 0; i < PL_E_KIND_COUNT; i++)
        Py_VISIT(st->errors[i]);
    return 0;
}

static int module_clear(PyObject *module)
{
    pl_state *st = PyModule_GetState(module);
#define CLEAR(field) Py_CLEAR(st->field);
    PL_STATE_OBJECTS(CLEAR)
#undef CLEAR
    for (int i = 0; i < PL_E_KIND_COUNT; i++)
        Py_CLEAR(st->errors[i]);
    return 0;
}

static void module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* Shared state is C data behind our own mutexes; the GIL protects nothing. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyModuleDef pl_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "promptlab._core",
    .m_doc = "The C core of PromptLab's database layer.",
    .m_size = sizeof(pl_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModuleDef_Init(&pl_module_def);
}
