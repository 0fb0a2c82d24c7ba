/* fault.h: _core._fail_allocations_after, for the fault-injection tests. */
#ifndef PL_FAULT_H
#define PL_FAULT_H

#include "module.h"

/* The module functions of fault.c: _fail_allocations_after in builds with
 * assertions; none in release builds. Added with PyModule_AddFunctions. */
extern PyMethodDef pl_fault_methods[];

#endif
