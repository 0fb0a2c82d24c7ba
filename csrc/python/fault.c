/* fault.c: _core._fail_allocations_after(n), the hook of the fault-injection
 * tests (tests/test_fault_injection.py) into the engine's allocation wrapper
 * (alloc.h). Only in builds with assertions; release builds lack it. */
#include "fault.h"
#include "alloc.h"

#if PL_ALLOC_FAULTS
static PyObject *py_fail_allocations_after(PyObject *module, PyObject *arg)
{
    long n = PyLong_AsLong(arg);

    (void)module;
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "_fail_allocations_after: n >= 0 (0 disarms)");
        return NULL;
    }
    return PyLong_FromLong(pl_alloc_fail_after(n));
}
#endif

PyMethodDef pl_fault_methods[] = {
#if PL_ALLOC_FAULTS
    {"_fail_allocations_after", py_fail_allocations_after, METH_O,
     "_fail_allocations_after(n)\n--\n\n"
     "For tests (builds with assertions only): make the n-th allocation of the C\n"
     "engine from now fail, once; 0 disarms. Returns the number of engine\n"
     "allocations made since the previous call."},
#endif
    {NULL, NULL, 0, NULL},
};
