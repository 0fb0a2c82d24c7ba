/* schema.h: what a database's schema is, and which revision a layout matches.
 *
 * A "catalog" is an in-memory SQLite database holding the schema of other
 * databases as rows: objects (tables, views, triggers), columns, indexes with
 * their columns, and foreign keys (the parent's primary-key columns recorded
 * where a key leaves them out), each row tagged with a source number. The
 * live database a command works on is source PL_CATALOG_LIVE; the schema a
 * migration chain produces after its migration i (applied to an empty
 * in-memory database) is source i. Two sources are compared by the one
 * comparator, pl_schema_diff (schemadiff.h).
 *
 * Bookkeeping tables (alembic_version, promptlab_migrations) and SQLite's own
 * tables are never catalogued. Tables named legacy_* (PL_LEGACY_PREFIX) hold
 * values kept from older layouts; recognising a layout ignores them.
 *
 * Declared types and DEFAULT expressions are compared as normalized here
 * (pl_schema_normalize_*), by the one comparator (schemadiff.h) that layout
 * detection and, through the binding, the drift check of `promptlab db
 * status` and `promptlab db revision` use. The catalog's SQL functions:
 * pl_type(x), pl_default(x) (the normalizers), pl_blanks(x) (runs of blanks
 * made one space, none at the ends), pl_quote(name) (an identifier as SQL,
 * quoted unless plain and no keyword) and pl_legacy(name).
 *
 * Nothing here needs Python or the GIL. The catalog itself lives in memory;
 * pl_catalog_add reads the database it is given, which may touch the disk:
 * call it with the GIL released.
 */
#ifndef PL_SCHEMA_H
#define PL_SCHEMA_H

#include <sqlite3.h>

#include "error.h"
#include "migfile.h"

#define PL_CATALOG_LIVE (-1)

/* The revisions whose layouts earlier PromptLab releases wrote (migrations
 * 0001-0003): L1 (0.0.3 early), L2 (0.0.3-0.1.3), L3 (0.1.4-0.1.11). */
#define PL_REVISION_L1 "402e541d4c74"
#define PL_REVISION_L2 "9ab590290932"
#define PL_REVISION_L3 "c84044d14c12"

/* Tables whose name starts with this, in any case, hold values kept from
 * older layouts: made by the migrations, never declared in the models. */
#define PL_LEGACY_PREFIX "legacy_"

/* True when `name` starts with PL_LEGACY_PREFIX, compared without case. */
int pl_schema_is_legacy(const char *name);

/* Append to `out` the declared type `type` (NULL: "") as compared: ASCII upper
 * case, blanks trimmed, inner runs of blanks one space, none around "(", ")"
 * and ",": "varchar ( 10 )" and "VARCHAR(10)" both give "VARCHAR(10)". */
void pl_schema_normalize_type(sqlite3_str *out, const char *type);

/* Append to `out` the DEFAULT expression `expr` as compared: outer blanks and
 * enclosing balanced parentheses removed, any number of them: "((2))", "(2)"
 * and " 2 " all give "2" (PRAGMA table_info reports DEFAULT ((2)) as "(2)"). */
void pl_schema_normalize_default(sqlite3_str *out, const char *expr);

/* A new, empty catalog (close it with sqlite3_close), with the SQL functions
 * named above (NULL for NULL). NULL with `err` set. */
sqlite3 *pl_catalog_open(pl_err *err);

/* Record the schema of database `db` (whose file is `path`, for messages) in
 * `cat` as source `src`. Returns 0, or -1 with `err` set. */
int pl_catalog_add(sqlite3 *cat, sqlite3 *db, const char *path, int src, pl_err *err);

/* Copy the rows of `query`, run on `db`, into the catalog with `insert`, whose
 * first parameter receives `src` and the next ones the row's columns. Returns
 * 0 or -1 with `err` set. */
int pl_catalog_copy(sqlite3 *cat, sqlite3 *db, const char *path, const char *query,
                    const char *insert, int src, pl_err *err);

/* Apply the up sections of chain->items[0..upto] to an empty in-memory
 * database, recording the schema after each one as source i. A migration that
 * fails on an empty database is a MigrationError naming its file. Returns 0 or
 * -1 with `err` set. */
int pl_catalog_add_chain(sqlite3 *cat, const pl_chain *chain, int upto, pl_err *err);

/* Run `script` (declarations, e.g. CREATE TABLE and CREATE INDEX statements)
 * on an empty in-memory database, which can attach no other, and record its
 * schema in `cat` as source `src`: how declarations are compared with a
 * database. A script that fails is a MigrationError with SQLite's message.
 * Returns 0 or -1 with `err` set. */
int pl_catalog_add_script(sqlite3 *cat, const char *script, int src, pl_err *err);

/* Recognise the layout of `db`, a database that holds tables but no revision:
 * *index receives the chain index whose schema it matches. Among the
 * revisions whose tables, column names and primary keys match (pl_schema_diff
 * with PL_DIFF_LAYOUT), the earliest one whose columns, indexes and
 * constraints match exactly (pl_schema_diff in full) wins, else the earliest;
 * so a database is never marked past a migration it still needs. With `early`
 * not NULL, an L2 database that also holds the users table of L3 (a 0.1.3
 * file that PromptLab 0.1.11 opened) is recognised as L2 with *early set to 1
 * (0 otherwise); with `early` NULL it is refused. Returns 0, or -1 with a
 * MigrationError that lists what did not match the closest revision (or says
 * the tables are not PromptLab's). Reads `db` only. */
int pl_schema_detect(sqlite3 *db, const char *path, const pl_chain *chain, int *index, int *early,
                     pl_err *err);

#endif
