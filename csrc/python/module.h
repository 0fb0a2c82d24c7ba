/* module.h: the state of the promptlab._core module and raising its errors.
 *
 * Multi-phase initialization: each interpreter that imports the module gets
 * its own pl_state with its own heap types, exceptions and manager instance.
 * The databases themselves live in the process-wide C registry (registry.h).
 */
#ifndef PL_MODULE_H
#define PL_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "error.h"

/* Oldest SQLite we run on: SQLITE_OPEN_EXRESCODE and RENAME COLUMN. */
#define PL_SQLITE_MIN_VERSION 3037000
#define PL_SQLITE_MIN_VERSION_TEXT "3.37.0"

typedef struct {
    PyTypeObject *manager_type;
    PyTypeObject *session_type;
    PyTypeObject *result_type;
    PyTypeObject *rowiter_type;
    PyTypeObject *row_type;
    PyTypeObject *rowmapping_type;
    PyObject *errors[PL_E_KIND_COUNT]; /* exception class per error kind */
    PyObject *manager;                 /* the DatabaseManager instance */
    PyObject *date_type;               /* datetime.date, for parameters (set on first use) */
    PyObject *columns_cache;           /* SQL text -> (field names, name index) */
    PyObject *environ;                 /* os.environ, read by environ.c */
    PyObject *environ_data;            /* os.environ._data (bytes -> bytes), or NULL */
    PyObject *environ_keys;            /* the PROMPTLAB_* names as bytes (environ.c) */
    int exiting;                       /* the atexit hook has run (module.c) */
} pl_state;

/* Every object reference of pl_state but `errors`, for the module's traverse
 * and clear: a field added to the state is added here too. */
#define PL_STATE_OBJECTS(X)                                                                        \
    X(manager_type)                                                                                \
    X(session_type)                                                                                \
    X(result_type)                                                                                 \
    X(rowiter_type)                                                                                \
    X(row_type)                                                                                    \
    X(rowmapping_type)                                                                             \
    X(manager)                                                                                     \
    X(date_type)                                                                                   \
    X(columns_cache)                                                                               \
    X(environ)                                                                                     \
    X(environ_data)                                                                                \
    X(environ_keys)

extern PyModuleDef pl_module_def;

static inline pl_state *pl_state_of(PyTypeObject *tp)
{
    return (pl_state *)PyType_GetModuleState(tp);
}

/* Whether this interpreter is shutting down, for sessions given back then:
 * their connections are closed at once, not pooled, so that the last one to
 * a file checkpoints it. True once the module's atexit hook has run (it
 * closes the idle connections; atexit callbacks run before the interpreter
 * starts finalizing) and, on 3.13+, once Py_IsFinalizing() says so. Before
 * 3.13 the only spelling of the latter is the private _Py_IsFinalizing(),
 * and sys.is_finalizing() is a call into Python from deallocation: the flag
 * is public API only and also covers sessions closed by atexit callbacks
 * that run after ours. GIL held. */
static inline int pl_exiting(pl_state *st)
{
#if PY_VERSION_HEX >= 0x030D0000
    if (Py_IsFinalizing())
        return 1;
#endif
    return st->exiting;
}

/* Raise the exception for `err` (path and SQLite code attached). Returns NULL. */
PyObject *pl_raise(pl_state *st, const pl_err *err);

/* Raise exception kind `kind` with a message formatted by PyUnicode_FromFormat
 * (so %R and %S work), prefixed with "<path>: " when `path` is given. Returns NULL. */
PyObject *pl_raise_kind(pl_state *st, pl_errkind kind, const char *path, const char *fmt, ...);

/* Convert a user's path (str, bytes or os.PathLike) into an absolute spelling
 * in buf (no file system access besides getcwd). Returns 0, or -1 with a
 * DatabasePathError set. */
int pl_abs_path_from_object(pl_state *st, PyObject *obj, char *buf, size_t size);

/* Raise DatabasePathError and return -1 when `abs` names the in-memory
 * database, which commands that inspect or migrate a file cannot use. */
int pl_refuse_memory(pl_state *st, const char *abs);

#endif
