/* error.h: errors that are built without the GIL and raised with it.
 *
 * Work that runs with the GIL released (opening, migrating, stepping) cannot
 * create Python exceptions, so it fills a pl_err. The caller, holding the GIL
 * again, turns it into the matching exception with pl_err_raise(). SQLite
 * result codes are mapped to exception kinds in one place: pl_err_from_sqlite().
 */
#ifndef PL_ERROR_H
#define PL_ERROR_H

#include <stddef.h>

typedef enum {
    PL_OK = 0,
    PL_E_DATABASE,         /* DatabaseError: anything not listed below */
    PL_E_INVALID,          /* InvalidDatabaseError: not SQLite, truncated, corrupt */
    PL_E_PATH,             /* DatabasePathError: directory, folder, permission, bad name */
    PL_E_BUSY,             /* DatabaseBusyError: lock not obtained within the timeout */
    PL_E_READONLY,         /* ReadOnlyDatabaseError */
    PL_E_FULL,             /* DiskFullError */
    PL_E_INTEGRITY,        /* IntegrityError: a constraint failed */
    PL_E_PROGRAMMING,      /* ProgrammingError: bad SQL, bad parameters, misuse */
    PL_E_MIGRATION,        /* MigrationError */
    PL_E_UNKNOWN_REVISION, /* UnknownRevisionError */
    PL_E_FOREIGN_SCHEMA,   /* ForeignSchemaError: a trigger or view PromptLab did not create */
    PL_E_TIMEOUT,          /* StatementTimeoutError: a statement ran past its time limit */
    PL_E_UNAVAILABLE,      /* ServerUnavailableError: the database server cannot be reached */
    PL_E_CONNECTION_LOST,  /* ConnectionLostError: the connection broke during a call */
    PL_E_AUTH,             /* AuthenticationError: the server refused the credentials */
    PL_E_NO_DATABASE,      /* DatabaseNotFoundError: the server has no such database */
    PL_E_PERMISSION,       /* PermissionDeniedError: the role may not do this */
    PL_E_NOMEM,            /* MemoryError */
    PL_E_KIND_COUNT
} pl_errkind;

#define PL_ERR_MSG_MAX 2048
#define PL_ERR_PATH_MAX 4096

typedef struct {
    pl_errkind kind;
    int sqlite_rc;              /* extended result code, or 0 */
    char path[PL_ERR_PATH_MAX]; /* the database file, or "" */
    char msg[PL_ERR_MSG_MAX];   /* complete message, naming the file */
} pl_err;

/* Reset to "no error". */
void pl_err_clear(pl_err *err);

/* Record an error of `kind` about `path` (may be NULL): the message is
 * "<path>: <formatted text>". Returns -1 so callers can `return pl_err_set(...)`. */
int pl_err_set(pl_err *err, pl_errkind kind, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the SQLite error `rc` reported by connection `db` (may be NULL) while
 * doing `what`, choosing the kind from the result code and adding what the
 * user can do about it. Returns -1. */
struct sqlite3;
int pl_err_from_sqlite(pl_err *err, int rc, struct sqlite3 *db, const char *path, const char *what);

/* Add context in front of an existing message: "<path>: <prefix>: <old text>". */
void pl_err_prefix(pl_err *err, const char *prefix);

#endif
