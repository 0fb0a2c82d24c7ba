/* fault.c: _core._fail_allocations_after(n), the hook of the fault-injection
 * tests (tests/test_fault_injection.py) into the engine's allocation wrapper
 * (alloc.h), only in builds with assertions; and, in every build, the chunk
 * size hooks of the streaming tests (tests/test_streaming.py). */
#include "fault.h"
#include "alloc.h"
#include "params.h"
#include "result.h"
#include "rowbuf.h"

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

/* _stream_chunk_rows(n): rows per read chunk and parameter sets per
 * executemany chunk from now, so that tests reach many chunks with few rows. */
static PyObject *py_stream_chunk_rows(PyObject *module, PyObject *arg)
{
    long n = PyLong_AsLong(arg);

    (void)module;
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 1 || n > 1000000000L) {
        PyErr_SetString(PyExc_ValueError, "_stream_chunk_rows: 1 <= n <= 10**9");
        return NULL;
    }
    pl_batch_set_chunk_rows((Py_ssize_t)n);
    return PyLong_FromLong(pl_rowbuf_set_chunk_rows((int)n));
}

static PyObject *py_stream_chunks(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(pl_result_chunks_built());
}

PyMethodDef pl_fault_methods[] = {
    {"_stream_chunk_rows", py_stream_chunk_rows, METH_O,
     "_stream_chunk_rows(n)\n--\n\n"
     "For tests: read results n rows at a time and run executemany n parameter\n"
     "sets at a time from now (default 1024 and 1024). Returns the previous\n"
     "rows per read chunk."},
    {"_stream_chunks", py_stream_chunks, METH_NOARGS,
     "_stream_chunks()\n--\n\n"
     "For tests: the number of row chunks built into Results since the\n"
     "previous call."},
#if PL_ALLOC_FAULTS
    {"_fail_allocations_after", py_fail_allocations_after, METH_O,
     "_fail_allocations_after(n)\n--\n\n"
     "For tests (builds with assertions only): make the n-th allocation of the C\n"
     "engine from now fail, once; 0 disarms. Returns the number of engine\n"
     "allocations made since the previous call."},
#endif
    {NULL, NULL, 0, NULL},
};
