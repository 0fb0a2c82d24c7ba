/* lookup.h: Lookup: one-row reads without a Session (issue 16, point lookups). */
#ifndef PL_LOOKUP_H
#define PL_LOOKUP_H

#include "module.h"

/* Create the Lookup type and add it to the module. Returns 0 or -1 with an
 * exception set. */
int pl_lookup_register(PyObject *module, pl_state *st);

#endif
