/* pyutil.h: small helpers for the binding's types (Python.h side only). */
#ifndef PL_PYUTIL_H
#define PL_PYUTIL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Create the heap type of `spec` for `module` into *out (a new reference kept
 * by the module state) and add it to the module. Returns 0 or -1 with an
 * exception set. */
static inline int pl_type_register(PyObject *module, PyType_Spec *spec, PyTypeObject **out)
{
    *out = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (*out == NULL)
        return -1;
    return PyModule_AddType(module, *out);
}

/* `module_name`.`attr` (importing the module): a new reference, or NULL with
 * an exception set. */
static inline PyObject *pl_import_attr(const char *module_name, const char *attr)
{
    PyObject *module = PyImport_ImportModule(module_name), *value;

    if (module == NULL)
        return NULL;
    value = PyObject_GetAttrString(module, attr);
    Py_DECREF(module);
    return value;
}

/* f(tmp), where tmp is a new reference made for the call (NULL when making it
 * failed, with an exception set), which this releases. */
static inline PyObject *pl_apply_new(PyObject *tmp, PyObject *(*f)(PyObject *))
{
    PyObject *r;

    if (tmp == NULL)
        return NULL;
    r = f(tmp);
    Py_DECREF(tmp);
    return r;
}

/* PyObject_RichCompare(mine, theirs, op) of two new references made for the
 * comparison (either NULL when making it failed, with an exception set),
 * which this releases. */
static inline PyObject *pl_compare_new(PyObject *mine, PyObject *theirs, int op)
{
    PyObject *r = mine != NULL && theirs != NULL ? PyObject_RichCompare(mine, theirs, op) : NULL;

    Py_XDECREF(mine);
    Py_XDECREF(theirs);
    return r;
}

#endif
