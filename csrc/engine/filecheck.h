/* filecheck.h: checks on a database file before PromptLab writes to it.
 *
 * Shared by initialization (initialize.c) and the migrate/downgrade commands
 * (migcmd.c): a file that is not ours, truncated or damaged is refused and left
 * byte for byte as it is. Both functions touch the disk: GIL released.
 */
#ifndef PL_FILECHECK_H
#define PL_FILECHECK_H

#include "conn.h"
#include "error.h"

/* The longest quick_check answer quoted in a message (the rest is cut). */
#define PL_CHECK_MESSAGE_MAX 512

/* Before SQLite opens it: refuse a path that is not a regular file, a file
 * without the SQLite header, or one shorter than its header says (truncated,
 * when no WAL or hot journal could hold the missing pages). *exists tells
 * whether there is a file; a missing or empty one is fine. The header is read
 * through SQLite, never through a descriptor of our own, so this is safe on a
 * file that the process holds open (see read_head in filecheck.c). Returns 0
 * or -1. */
int pl_check_file(const char *path, int *exists, pl_err *err);

/* Refuse a database whose schema holds a trigger or view: PromptLab creates
 * none, and refuses to write where code it did not create would run inside
 * its statements (connections also deny such code at prepare time: conn.c).
 * The message lists up to five of them and how to inspect and remove them.
 * Returns 0 or -1 with `err` (ForeignSchemaError). */
int pl_check_no_foreign_code(pl_conn *c, pl_err *err);

/* PRAGMA quick_check on an open connection: a damaged database is refused
 * with a one-line message. One pass over the file. Returns 0 or -1. */
int pl_check_not_damaged(pl_conn *c, pl_err *err);

#endif
