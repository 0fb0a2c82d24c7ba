/* session.h: the Session type: a unit of work on one pooled connection. */
#ifndef PL_SESSION_H
#define PL_SESSION_H

#include "database.h"
#include "module.h"

/* A new session on `db`; steals the reference to db (also on failure). */
PyObject *pl_session_new(pl_state *st, pl_database *db);

int pl_session_register(PyObject *module, pl_state *st);

#endif
