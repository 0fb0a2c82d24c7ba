/* revision.h: where a database stands on the migration chain, on either
 * backend: its alembic_version and a census of its tables, and the check that
 * this PromptLab can handle that revision. */
#ifndef PL_REVISION_H
#define PL_REVISION_H

#include "error.h"
#include "migfile.h"

/* The bookkeeping tables: Alembic's version table (so tools and the original
 * PromptLab recognise the revision) and our history with checksums.
 * `REAL_TYPE` is the backend's name for a floating-point column. */
#define PL_BOOKKEEPING_SQL(REAL_TYPE)                                                              \
    "CREATE TABLE IF NOT EXISTS alembic_version (\n"                                               \
    "    version_num VARCHAR(32) NOT NULL,\n"                                                      \
    "    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));\n"                             \
    "CREATE TABLE IF NOT EXISTS promptlab_migrations (\n"                                          \
    "    revision VARCHAR(32) NOT NULL PRIMARY KEY,\n"                                             \
    "    checksum TEXT NOT NULL,\n"                                                                \
    "    message TEXT NOT NULL DEFAULT '',\n"                                                      \
    "    applied_at TEXT NOT NULL,\n"                                                              \
    "    duration_ms " REAL_TYPE " NOT NULL);\n"

/* What a database holds, read in one read transaction. */
typedef struct {
    char revision[PL_REVISION_MAX + 1]; /* "" when there is no version (base) */
    int version_rows;                   /* rows in alembic_version (-1: no table) */
    int other_tables;                   /* tables that are not bookkeeping */
    int revision_too_long;              /* alembic_version held more than 32 characters */
} pl_db_version;

/* Check that the revision in `v` can be handled by `chain`: one version row at
 * most, and a revision the chain knows. Returns 0, or -1 with `err`
 * (UnknownRevisionError for a database written by a newer PromptLab). */
int pl_migrate_check(const pl_db_version *v, const pl_chain *chain, const char *path, pl_err *err);

#endif
