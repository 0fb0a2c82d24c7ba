/* migrate.h: reading a database's revision and moving it along the chain.
 *
 * Every migration runs in its own BEGIN IMMEDIATE transaction that re-reads
 * the revision after taking the write lock, so concurrent processes apply each
 * migration exactly once and a crash leaves the last completed revision. The
 * same holds for downgrades (the down sections, newest first). A database
 * with PromptLab tables but no revision (made by an older PromptLab) is
 * recognised by its layout (schema.h) and marked at the matching revision in
 * the transaction of its first step.
 *
 * All functions run SQLite calls: call them with the GIL released.
 */
#ifndef PL_MIGRATE_H
#define PL_MIGRATE_H

#include "conn.h"
#include "error.h"
#include "migfile.h"
#include "revision.h"

/* Read the revision and table census. Returns 0, or -1 with `err` set. */
int pl_read_version(pl_conn *c, pl_db_version *out, pl_err *err);

/* Bits of the `detected` value of pl_migrate_locate: the layout was
 * recognised; and it holds the users table of L3 beside an L2 layout (a 0.1.3
 * file that PromptLab 0.1.11 opened), which the migration to L3 adopts. */
#define PL_DETECTED 1
#define PL_DETECTED_EARLY_USERS 2

/* Where the database of `c` stands on `chain`, without writing: reads the
 * version into *v, checks it, and for a database that holds tables but no
 * revision recognises its layout. *index receives the chain index of its
 * revision (-1: base, an empty database); *detected (may be NULL) is set to
 * PL_DETECTED, with PL_DETECTED_EARLY_USERS where it applies, when that index
 * was recognised from the layout rather than read (0 otherwise). Returns 0, or
 * -1 with `err` set (a layout PromptLab does not know is a MigrationError). */
int pl_migrate_locate(pl_conn *c, const pl_chain *chain, pl_db_version *v, int *index,
                      int *detected, pl_err *err);

/* Apply the pending migrations of `chain` up to index `target` (count-1 for the
 * head), each in its own transaction. `*applied` (may be NULL) receives how
 * many this call applied. Returns 0, or -1 with `err` set and the database at
 * the last revision that completed. */
int pl_migrate_up(pl_conn *c, const pl_chain *chain, int target, int *applied, pl_err *err);

/* Run the down sections of the applied migrations after index `target` (-1:
 * base), newest first, each in its own transaction. Refuses, before changing
 * anything, when one of them has an empty down section (irreversible).
 * `*undone` (may be NULL) receives how many were undone. Returns 0, or -1 with
 * `err` set and the database at the last revision that completed. */
int pl_migrate_down(pl_conn *c, const pl_chain *chain, int target, int *undone, pl_err *err);

/* Copy the database of `c` to the new file `dest` with SQLite's online backup
 * API (a consistent snapshot, readers and writers of the source may go on).
 * `dest` must not exist; on failure it is removed. Returns 0 or -1. */
int pl_migrate_backup(pl_conn *c, const char *dest, pl_err *err);

/* The SQL that moving from index `from` to index `to` would run (upgrading
 * when to > from, downgrading otherwise), transactions and bookkeeping
 * included, with a header naming `path`. `detected` (pl_migrate_locate's)
 * marks a database whose revision `from` was recognised from its layout; the
 * adoption of such a database (see migrate.c) is part of the script. Returns a
 * string to free with sqlite3_free, or NULL with `err` set. Touches no
 * database. */
char *pl_migrate_script(const pl_chain *chain, const char *path, int from, int to, int detected,
                        pl_err *err);

#endif
