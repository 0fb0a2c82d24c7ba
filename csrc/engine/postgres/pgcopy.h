/* pgcopy.h: copying a PromptLab SQLite file into a PostgreSQL database
 * (`promptlab db copy -d FILE --to URL`, issue 15 item 8).
 *
 * The file is read in one read transaction (a snapshot, while others may go
 * on writing), and every row of every table of it is sent with COPY in one
 * transaction on the server, which checks that each table then holds as many
 * rows as the file's before it commits: all rows or none. Both sides must be
 * at the same revision, and the destination must hold no rows of its own (a
 * database `db init` just made, whose admin has no password yet, is empty).
 * Identity columns continue after the copied ids.
 *
 * Engine layer: no Python.h; call without the GIL. */
#ifndef PL_PGCOPY_H
#define PL_PGCOPY_H

#include "conn.h"
#include "error.h"

#include "pq.h"

/* Tables copied, and the rows of each. */
#define PL_PGCOPY_TABLES_MAX 64
typedef struct {
    int count;
    char name[PL_PGCOPY_TABLES_MAX][64];
    long long rows[PL_PGCOPY_TABLES_MAX];
} pl_pgcopy_report;

/* Copy every row of the SQLite database `src` (open read-only) into `dst`.
 * Fills `report`. Returns 0, or -1 with `err`; the destination is then left
 * as it was. */
int pl_pg_copy_from_sqlite(pl_conn *src, PGconn *dst, pl_pgcopy_report *report, pl_err *err);

#endif
