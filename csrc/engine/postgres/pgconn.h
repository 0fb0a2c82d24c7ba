/* pgconn.h: connecting to a PostgreSQL server with libpq (issue 15), and
 * turning libpq's failures into PromptLab's error kinds.
 *
 * A database is named by a URL, postgresql://user:password@host:port/dbname?...
 * in libpq's own syntax, so libpq's conventions work: PGPASSWORD, ~/.pgpass,
 * PGSSLMODE, service files. The URL may hold the password; what PromptLab
 * shows (messages, the `path` of errors) is pl_pg_shown(): user, host, port
 * and database, never the password.
 *
 * Engine layer: no Python.h. Called without the GIL (libpq blocks). */
#ifndef PL_PGCONN_H
#define PL_PGCONN_H

#include "error.h"

#include "pq.h"
#include <stddef.h>

/* Room for a shown URL: user, host or socket folder, port and database. */
#define PL_PG_SHOWN_MAX 1024

/* Whether `text` names a PostgreSQL database: "postgresql://" or "postgres://". */
int pl_pg_is_url(const char *text);

/* Connect to the server and database `url` names. Returns the connection, or
 * NULL with `err` filled: its kind says what failed (ServerUnavailable,
 * Authentication, DatabaseNotFound, PermissionDenied, DatabasePath for a URL
 * that is not valid), its message names the server and database and says what
 * to do; `err->path` is the shown URL. */
PGconn *pl_pg_connect(const char *url, pl_err *err);

/* The connection's URL as PromptLab shows it (`out`, always terminated):
 * postgresql://user@host:port/dbname, or postgresql://user@/dbname?host=/folder&port=N
 * for a Unix socket. */
void pl_pg_shown(PGconn *conn, char *out, size_t size);

/* Record the failure of a statement run for `what`: `r` is its result, or
 * NULL when libpq returned none (the connection's message is used). The kind
 * comes from the SQLSTATE (or the connection's state when the server went
 * away). Returns -1. */
int pl_pg_err_from_result(pl_err *err, PGconn *conn, const PGresult *r, const char *what);

#endif
