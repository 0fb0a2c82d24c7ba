/* pgadmin.h: the admin user's first password on a PostgreSQL database (the
 * counterpart of pl_initialize_write_admin for SQLite). Engine layer; call
 * without the GIL. */
#ifndef PL_PGADMIN_H
#define PL_PGADMIN_H

#include "error.h"

#include "pq.h"

/* Hash `password` and make it the admin's, only while the admin has no usable
 * password (so that two processes racing here never both set one). *set says
 * whether this call set it. Returns 0, or -1 with `err`. */
int pl_pg_set_first_admin_password(PGconn *conn, const char *password, int *set, pl_err *err);

#endif
