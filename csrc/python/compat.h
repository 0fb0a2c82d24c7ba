/* compat.h: one spelling for CPython APIs that changed between 3.11 and 3.13. */
#ifndef PL_COMPAT_H
#define PL_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Take the exception being raised (a new reference, its traceback attached),
 * leaving none set; NULL when none is. PyErr_GetRaisedException on 3.12+,
 * where PyErr_Fetch is deprecated; before, PyErr_Fetch normalized. */
static inline PyObject *pl_exc_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Raise `exc` again (a reference taken by pl_exc_take; stolen). NULL clears
 * nothing and raises nothing. */
static inline void pl_exc_give(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL)
        return;
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

/* `obj` as a C int: -1 with an exception set (OverflowError, TypeError) when
 * it is no int or out of range. PyLong_AsInt is public from 3.13 on. */
static inline int pl_long_as_int(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_AsInt(obj);
#else
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow != 0 || v > INT_MAX || v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return -1;
    }
    return (int)v;
#endif
}

/* The value of `key` in `dict` as a new reference in *out: 1 found, 0 not
 * there, -1 with an exception. PyDict_GetItemRef from 3.13 on, where another
 * thread may change the dict with no GIL between the lookup and the incref. */
static inline int pl_dict_get_ref(PyObject *dict, PyObject *key, PyObject **out)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_GetItemRef(dict, key, out);
#else
    *out = Py_XNewRef(PyDict_GetItemWithError(dict, key));
    return *out != NULL ? 1 : PyErr_Occurred() ? -1 : 0;
#endif
}

/* A critical section on `obj` (free-threaded builds, 3.13+): other threads'
 * critical sections on it wait. Where the GIL serializes, nothing. Do not
 * return or jump out of one: call a function inside it instead. */
#ifdef Py_BEGIN_CRITICAL_SECTION
#define PL_BEGIN_CRITICAL(obj) Py_BEGIN_CRITICAL_SECTION(obj)
#define PL_END_CRITICAL()                                                                          \
    Py_END_CRITICAL_SECTION                                                                        \
    ()
#else
#define PL_BEGIN_CRITICAL(obj) {
#define PL_END_CRITICAL() }
#endif

#endif
