/* migfile.h: parsing one migration file and loading the chain of them.
 *
 * A migration file is plain SQL with a header of "-- key: value" comment lines
 * and two sections:
 *
 *     -- revision: 402e541d4c74
 *     -- parent: base
 *     -- message: initial schema
 *     -- created: 2025-03-01 00:00:00
 *
 *     -- migrate:up
 *     CREATE TABLE ...;
 *
 *     -- migrate:down
 *     DROP TABLE ...;
 *
 * "parent: base" marks the first migration. An empty down section means the
 * migration cannot be undone.
 *
 * What runs on PostgreSQL may follow, in two more sections (issue 15): SQL
 * that differs between the backends stays in the same revision file.
 *
 *     -- migrate:up:postgresql
 *     CREATE TABLE ...;
 *
 *     -- migrate:down:postgresql
 *     DROP TABLE ...;
 *
 * Nothing here needs Python or the GIL.
 */
#ifndef PL_MIGFILE_H
#define PL_MIGFILE_H

#include <stddef.h>
#include "error.h"

#define PL_REVISION_MAX 32

typedef struct {
    char revision[PL_REVISION_MAX + 1];
    char parent[PL_REVISION_MAX + 1]; /* "" for the first migration */
    char *message;                    /* owned, "" when absent */
    char *created;                    /* owned, "" when absent */
    char *up;                         /* owned SQL, may be "" */
    char *down;                       /* owned SQL, "" when irreversible */
    char *up_postgresql;              /* owned SQL for PostgreSQL, NULL: no such section */
    char *down_postgresql;            /* owned SQL, NULL with up_postgresql */
    char *filename;                   /* owned, the file's base name */
    char checksum[17];                /* FNV-1a (64-bit, hex) of the SQLite part: the text
                                         before '-- migrate:up:postgresql', or all of it */
    char checksum_postgresql[17];     /* FNV-1a of the whole file */
} pl_migration;

/* Parse `text` (len bytes) read from `filename`. On success fills *out (free it
 * with pl_migration_free) and returns 0; otherwise returns -1 with `err` naming
 * the file and the line. */
int pl_migration_parse(const char *text, size_t len, const char *filename, pl_migration *out,
                       pl_err *err);

void pl_migration_free(pl_migration *m);

/* A validated linear chain, ordered from the first migration to the head. */
typedef struct {
    char *dir;
    int count;
    pl_migration *items;
} pl_chain;

/* Read and validate every "*.sql" file in `dir`: duplicate revisions, a missing
 * parent, two first migrations, two heads, and cycles are errors naming the
 * files. Returns a new chain (free with pl_chain_free) or NULL with `err` set. */
pl_chain *pl_chain_load(const char *dir, pl_err *err);

/* Order `n` parsed migrations into a chain (takes ownership of `items` and of
 * their contents, also on error). Exposed for the parser's fuzz target. */
pl_chain *pl_chain_build(const char *dir, pl_migration *items, int n, pl_err *err);

void pl_chain_free(pl_chain *chain);

/* Index of `revision` in the chain, -1 for "" (base), -2 when unknown. */
int pl_chain_index(const pl_chain *chain, const char *revision);

/* True when the down section of `m` holds SQL; an empty one (only blanks,
 * comments and semicolons) marks a migration that cannot be undone. */
int pl_migration_reversible(const pl_migration *m);

/* The same on PostgreSQL: its down section holds SQL, or its up section holds
 * none (nothing to undo). False when the file has no PostgreSQL sections. */
int pl_migration_reversible_postgresql(const pl_migration *m);

/* True when `s` is a valid revision id: 1 to 32 of [A-Za-z0-9_]. */
int pl_revision_valid(const char *s, size_t len);

#endif
