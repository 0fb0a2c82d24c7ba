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

/* The variables, in the order of pl_settings_text's fields. */
static const char *const NAMES[] = {"PROMPTLAB_BUSY_TIMEOUT_MS", "PROMPTLAB_MIGRATIONS_DIR",
                                    "PROMPTLAB_ADMIN_PASSWORD",  "PROMPTLAB_STATEMENT_TIMEOUT_MS",
                                    "PROMPTLAB_FILE_MODE",       "PROMPTLAB_MAX_IDLE_CONNECTIONS"};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

int pl_environ_refresh(pl_state *st)
{
    PyObject *values[N_NAMES] = {NULL};
    int rc = -1;

    assert(PyGILState_Check());
    for (size_t i = 0; i < N_NAMES; i++)
        if ((values[i] = environ_bytes(st, NAMES[i])) == NULL)
            goto done;
    pl_settings_text text = {text_of(values[0]), text_of(values[1]), text_of(values[2]),
                             text_of(values[3]), text_of(values[4]), text_of(values[5])};
    /* A short, non-blocking leaf lock: fine to take with the GIL held. */
    pl_settings_store(&text);
    rc = 0;
done:
    for (size_t i = 0; i < N_NAMES; i++)
        Py_XDECREF(values[i]);
    return rc;
}
