/* tally.h: TraceTally, the aggregates of the records trace_experiment stores,
 * tallied while executemany iterates over them (see tally.c). */
#ifndef PL_TALLY_H
#define PL_TALLY_H

#include "module.h"

/* Adds the type TraceTally to `module`. 0, or -1 with an exception. */
int pl_tally_register(PyObject *module);

#endif
