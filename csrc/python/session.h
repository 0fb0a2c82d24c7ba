/* session.h: the Session type: a unit of work on one pooled connection. */
#ifndef PL_SESSION_H
#define PL_SESSION_H

#include "database.h"
#include "module.h"
#include "result.h"

/* A new session on `db`; steals the reference to db (also on failure). */
PyObject *pl_session_new(pl_state *st, pl_database *db);

/* Read the next chunk into the cursor's builder: 1 when more rows may follow,
 * 0 at the end (the last rows are in the builder), -1 with an exception set
 * (the statement has ended). ProgrammingError from a thread other than the
 * one that opened the cursor. GIL held, no lock held. */
int pl_cursor_chunk(pl_cursor *c);

/* Where the cursor's rows go (pl_result_builder: its Result's row list). */
pl_result_builder *pl_cursor_builder(pl_cursor *c);

/* End the statement if it has not ended (releasing the session), drop the
 * cursor. From any thread, while no other call on the cursor runs. GIL held. */
void pl_cursor_free(pl_cursor *c);

int pl_session_register(PyObject *module, pl_state *st);

#endif
