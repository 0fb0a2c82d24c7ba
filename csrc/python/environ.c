/* environ.c: PROMPTLAB_* variables from os.environ into the engine's settings. */
#include "environ.h"
#include "settings.h"

/* The value of `name` in os.environ as bytes (file system encoding), a new
 * reference; Py_None when it is not set; NULL with an exception. Through the
 * mapping: a name that is not set costs a KeyError raised in Python code
 * (os._Environ.__getitem__), about 1 us; see environ_value for the usual way. */
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

/* The same as environ_bytes, read from os.environ._data when there is one:
 * the dict behind os.environ on POSIX, which its __setitem__ and __delitem__
 * keep equal to the mapping, keyed and valued by the names and values
 * encoded as PyUnicode_FSConverter encodes them. A dict lookup raises
 * nothing for a missing name, so a get_session() costs no exception. */
static PyObject *environ_value(pl_state *st, size_t i, const char *name)
{
    if (st->environ_data != NULL) {
        PyObject *key = PyTuple_GET_ITEM(st->environ_keys, (Py_ssize_t)i), *value;
#if PY_VERSION_HEX >= 0x030D0000
        /* A strong reference: another thread may change os.environ meanwhile
         * where there is no GIL. */
        if (PyDict_GetItemRef(st->environ_data, key, &value) < 0)
            return NULL;
#else
        value = Py_XNewRef(PyDict_GetItemWithError(st->environ_data, key));
        if (value == NULL && PyErr_Occurred())
            return NULL;
#endif
        if (value == NULL)
            return Py_NewRef(Py_None);
        if (PyBytes_CheckExact(value))
            return value;
        Py_DECREF(value);
    }
    return environ_bytes(st, name);
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

int pl_environ_setup(pl_state *st)
{
    PyObject *data;

    st->environ_keys = PyTuple_New((Py_ssize_t)N_NAMES);
    if (st->environ_keys == NULL)
        return -1;
    for (size_t i = 0; i < N_NAMES; i++) {
        PyObject *key = PyBytes_FromString(NAMES[i]);
        if (key == NULL)
            return -1;
        PyTuple_SET_ITEM(st->environ_keys, (Py_ssize_t)i, key);
    }
    data = PyObject_GetAttrString(st->environ, "_data");
    if (data == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear(); /* not os._Environ: every read goes through the mapping */
    }
    if (data != NULL && PyDict_CheckExact(data))
        st->environ_data = data;
    else
        Py_XDECREF(data);
    return pl_environ_refresh(st);
}

int pl_environ_refresh(pl_state *st)
{
    PyObject *values[N_NAMES] = {NULL};
    int rc = -1;

    assert(PyGILState_Check());
    for (size_t i = 0; i < N_NAMES; i++)
        if ((values[i] = environ_value(st, i, NAMES[i])) == NULL)
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
