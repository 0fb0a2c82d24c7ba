/* migrate.h: reading a database's revision and applying migrations to it.
 *
 * Every migration runs in its own BEGIN IMMEDIATE transaction that re-reads
 * the revision after taking the write lock, so concurrent processes apply each
 * migration exactly once and a crash leaves the last completed revision.
 * All functions run SQLite calls: call them with the GIL released.
 */
#ifndef PL_MIGRATE_H
#define PL_MIGRATE_H

#include "conn.h"
#include "error.h"
#include "migfile.h"

/* What a database holds, read in one read transaction. */
typedef struct {
    char revision[PL_REVISION_MAX + 1]; /* "" when there is no version (base) */
    int version_rows;                   /* rows in alembic_version (-1: no table) */
    int other_tables;                   /* tables that are not bookkeeping */
} pl_db_version;

/* Read the revision and table census. Returns 0, or -1 with `err` set. */
int pl_read_version(pl_conn *c, pl_db_version *out, pl_err *err);

/* Check that a database at `v` can be brought forward by `chain` without
 * guessing: its revision is known, and a database without a revision holds no
 * tables. Returns 0, or -1 with `err` (UnknownRevisionError, MigrationError). */
int pl_migrate_check(const pl_db_version *v, const pl_chain *chain, const char *path,
                     pl_err *err);

/* Apply the pending migrations of `chain` up to index `target` (count-1 for the
 * head), each in its own transaction. `*applied` (may be NULL) receives how
 * many this call applied. Returns 0, or -1 with `err` set and the database at
 * the last revision that completed. */
int pl_migrate_up(pl_conn *c, const pl_chain *chain, int target, int *applied, pl_err *err);

#endif
