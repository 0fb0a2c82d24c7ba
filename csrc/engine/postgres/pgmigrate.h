/* pgmigrate.h: moving a PostgreSQL database along the migration chain
 * (issue 15 item 3), with the PostgreSQL sections of the migration files.
 *
 * The whole move is one transaction that first takes a transaction-scoped
 * advisory lock (the same key in every PromptLab process, on any host) and
 * then re-reads the revision: concurrent upgrades apply each migration
 * exactly once, and with PostgreSQL's transactional DDL an interrupted or
 * failed upgrade leaves the revision the database had before it. The
 * bookkeeping is SQLite's: alembic_version and the promptlab_migrations
 * history (with each file's whole-file checksum).
 *
 * Engine layer: no Python.h; call without the GIL. */
#ifndef PL_PGMIGRATE_H
#define PL_PGMIGRATE_H

#include "error.h"
#include "migfile.h"
#include "revision.h"

#include "pq.h"

/* The advisory lock every PromptLab process takes around a migration: "promptlb". */
#define PL_PG_MIGRATION_LOCK 0x70726f6d70746c62LL

/* Read the revision and the census of the current schema's tables (no lock).
 * Returns 0, or -1 with `err`. */
int pl_pg_read_version(PGconn *conn, pl_db_version *out, pl_err *err);

/* The rows of promptlab_migrations (revision, checksum, message, applied_at,
 * duration_ms), oldest first, in *out (PQclear it); *out NULL when the table
 * does not exist. Returns 0, or -1 with `err`. */
int pl_pg_read_history(PGconn *conn, PGresult **out, pl_err *err);

/* Move the database to chain index `target` (-1: base), up or down, in one
 * transaction under the advisory lock; *moved receives the migrations applied
 * or undone. A database whose tables PromptLab did not make, a revision the
 * chain does not know, a migration without a PostgreSQL section, or (going
 * down) one that cannot be undone are refused before anything changes.
 * Returns 0, or -1 with `err`; the database then keeps its revision. */
int pl_pg_migrate(PGconn *conn, const pl_chain *chain, int target, int *moved, pl_err *err);

#endif
