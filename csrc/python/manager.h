/* manager.h: the DatabaseManager type (one instance per interpreter). */
#ifndef PL_MANAGER_H
#define PL_MANAGER_H

#include "module.h"

/* Create the type and the instance, add both to the module. */
int pl_manager_register(PyObject *module, pl_state *st);

#endif
