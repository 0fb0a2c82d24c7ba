/* environ.c: PROMPTLAB_* variables from os.environ into the engine's settings. */
#include "environ.h"
#include "settings.h"

/* The value of `name` in os.environ as bytes (file system encoding), a new
 * reference; Py_None when it is not set; NULL with an exception. */
static PyObject *environ_bytes(pl_state *st, const char *name)
{
    PyObject *value = PyMapping_GetItemString(st->environ, name), *bytes = NULL;

    if (value == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            return NULL;
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    if (!PyUnicode_FSConverter(value, &bytes))
        bytes = NULL;
    Py_DECREF(value);
    return bytes;
}

static const char *text_of(PyObject *bytes)
{
    return bytes == Py_None ? NULL : PyBytes_AS_STRING(bytes);
}

int pl_environ_refresh(pl_state *st)
{
    PyObject *busy = NULL, *dir = NULL, *password = NULL, *statement = NULL;
    int rc = -1;

    assert(PyGILState_Check());
    busy = environ_bytes(st, "PROMPTLAB_BUSY_TIMEOUT_MS");
    dir = busy ? environ_bytes(st, "PROMPTLAB_MIGRATIONS_DIR") : NULL;
    password = dir ? environ_bytes(st, "PROMPTLAB_ADMIN_PASSWORD") : NULL;
    statement = password ? environ_bytes(st, "PROMPTLAB_STATEMENT_TIMEOUT_MS") : NULL;
    if (statement != NULL) {
        /* A short, non-blocking leaf lock: fine to take with the GIL held. */
        pl_settings_store(text_of(busy), text_of(dir), text_of(password), text_of(statement));
        rc = 0;
    }
    Py_XDECREF(busy);
    Py_XDECREF(dir);
    Py_XDECREF(password);
    Py_XDECREF(statement);
    return rc;
}
