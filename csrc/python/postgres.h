/* postgres.h: the binding's PostgreSQL functions (issue 15), until sessions
 * run on PostgreSQL: _core._postgres_probe(url), and the admin's first
 * password for set_admin_password_if_unusable(). */
#ifndef PL_POSTGRES_H
#define PL_POSTGRES_H

#include "module.h"

extern PyMethodDef pl_postgres_methods[];

/* set_admin_password_if_unusable() for a PostgreSQL URL: True when this call
 * gave the admin `password`. Requires the GIL (released inside). */
PyObject *pl_postgres_set_first_admin_password(pl_state *st, const char *url, const char *password);

#endif
