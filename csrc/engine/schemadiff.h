/* schemadiff.h: the one comparison of two schemas recorded in a catalog.
 *
 * Two sources of a catalog (schema.h), an "expected" one and an "actual" one,
 * are compared item by item; every difference becomes a row of the catalog's
 * table cat_diff (kind, tbl, name, expected, actual), in a stable order:
 *
 *   kind "table"            name: the table; expected/actual: its column
 *                           names in order, NULL on the side that lacks it
 *                           (both set: the column order differs, with
 *                           PL_DIFF_COLUMN_ORDER only)
 *   kind "column"           tbl, name; each side's declaration as compared
 *                           ("VARCHAR(10) NOT NULL DEFAULT 2 REFERENCES p.id")
 *   kind "index"            tbl, name; each side's "(columns)" [+ " UNIQUE"]
 *   kind "constraint"       tbl; name: a multi-column UNIQUE or FOREIGN KEY
 *                           as SQL (or "PRIMARY KEY" with PL_DIFF_LAYOUT)
 *   kind "view-or-trigger"  name; each side's SQL
 *
 * What is compared: declared types and DEFAULT expressions as normalized
 * (pl_schema_normalize_*), NOT NULL, primary-key position, AUTOINCREMENT,
 * single-column UNIQUE and REFERENCES, named indexes (columns, UNIQUE),
 * multi-column UNIQUE and FOREIGN KEY clauses, views and triggers (their SQL,
 * blanks collapsed). Names are compared without regard to case. Column order
 * is not compared (ALTER TABLE ADD COLUMN appends) unless asked for. Columns,
 * indexes and constraints are compared only for tables both sides hold.
 *
 * This is the rule for recognising a layout (schema.c), for drift in
 * `promptlab db status` and for `promptlab db revision` (through the binding).
 * Nothing here needs Python or the GIL; the catalog is in memory.
 */
#ifndef PL_SCHEMADIFF_H
#define PL_SCHEMADIFF_H

#include <sqlite3.h>

#include "error.h"

/* Compare only what recognising a layout needs: tables, column names, and
 * each table's primary key (a "constraint" named PRIMARY KEY). */
#define PL_DIFF_LAYOUT 0x01
/* A legacy_* table that only the expected side holds is no difference. */
#define PL_DIFF_LEGACY_MISSING_OK 0x02
/* A legacy_* table that only the actual side holds is no difference. */
#define PL_DIFF_LEGACY_EXTRA_OK 0x04
/* legacy_* tables are not compared at all. */
#define PL_DIFF_NO_LEGACY 0x08
/* An actual table is compared only when some source >= 0 (a revision of the
 * chain) holds a table of that name: other tables are the user's. */
#define PL_DIFF_KNOWN_ONLY 0x10
/* For a table both sides hold, report the column order when the expected
 * columns are not the actual ones it keeps, in their order, followed by the
 * ones it adds: what ALTER TABLE ADD COLUMN cannot produce. */
#define PL_DIFF_COLUMN_ORDER 0x20

/* No source (pl_diff_spec.aside). */
#define PL_DIFF_NO_SOURCE (-2)

typedef struct {
    int expected; /* source number of the schema that should be */
    int actual;   /* source number of the schema that is */
    int aside;    /* actual tables this source holds and `expected` does not are
                   * left out (PL_DIFF_NO_SOURCE: none) */
    int flags;    /* PL_DIFF_* */
} pl_diff_spec;

/* Compare the two sources of `spec` in catalog `cat`, replacing the rows of
 * cat_diff with their differences (and those of cat_items, its scratch
 * table). Returns how many there are, or -1 with `err` set (cat_diff is then
 * unspecified). */
int pl_schema_diff(sqlite3 *cat, const pl_diff_spec *spec, pl_err *err);

/* How many rows of cat_diff `where` (an SQL condition over its columns; NULL:
 * all) selects. Returns the count, or -1 with `err` set. */
int pl_schema_diff_count(sqlite3 *cat, const char *where, pl_err *err);

#endif
