/* manager.h: the DatabaseManager type (one instance per interpreter). */
#ifndef PL_MANAGER_H
#define PL_MANAGER_H

#include "module.h"

/* Create the type and the instance, add both to the module. */
int pl_manager_register(PyObject *module, pl_state *st);

/* set_admin_password_if_unusable(db_file, password) -> bool, a module
 * function: initialize db_file, then hash `password` and give it to the admin
 * while the admin has no usable password (pl_database_set_first_admin_password),
 * with the GIL released. ValueError when the password breaks the rule. */
PyObject *pl_manager_set_admin_password_if_unusable(PyObject *module, PyObject *args);

#endif
