/* error.c: building pl_err values and mapping SQLite result codes to kinds. */
#include "error.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pl_err_clear(pl_err *err)
{
    err->kind = PL_OK;
    err->sqlite_rc = 0;
    err->path[0] = '\0';
    err->msg[0] = '\0';
}

static void set_path(pl_err *err, const char *path)
{
    if (path == NULL) {
        err->path[0] = '\0';
        return;
    }
    snprintf(err->path, sizeof err->path, "%s", path);
}

int pl_err_set(pl_err *err, pl_errkind kind, const char *path, const char *fmt, ...)
{
    char text[PL_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    err->kind = kind;
    err->sqlite_rc = 0;
    set_path(err, path);
    if (path != NULL && path[0] != '\0')
        snprintf(err->msg, sizeof err->msg, "%s: %s", path, text);
    else
        snprintf(err->msg, sizeof err->msg, "%s", text);
    return -1;
}

void pl_err_prefix(pl_err *err, const char *prefix)
{
    char old[PL_ERR_MSG_MAX];
    size_t skip = 0;
    size_t plen = strlen(err->path);

    /* The message already starts with "<path>: "; keep that in front. */
    if (plen > 0 && strncmp(err->msg, err->path, plen) == 0 && err->msg[plen] == ':')
        skip = plen + 2;
    if (skip > strlen(err->msg)) /* the message was cut right after the path */
        skip = strlen(err->msg);
    snprintf(old, sizeof old, "%s", err->msg + skip);
    if (plen > 0)
        snprintf(err->msg, sizeof err->msg, "%s: %s: %s", err->path, prefix, old);
    else
        snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}

/* The exception kind for a primary SQLite result code. */
static pl_errkind kind_for(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return PL_E_INVALID;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return PL_E_BUSY;
    case SQLITE_READONLY:
        return PL_E_READONLY;
    case SQLITE_FULL:
        return PL_E_FULL;
    case SQLITE_CONSTRAINT:
        return PL_E_INTEGRITY;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return PL_E_PATH;
    case SQLITE_INTERRUPT: /* only PromptLab's progress handler interrupts: conn.c */
        return PL_E_TIMEOUT;
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_MISUSE:
        return PL_E_PROGRAMMING;
    case SQLITE_NOMEM:
        return PL_E_NOMEM;
    default:
        return PL_E_DATABASE;
    }
}

/* What the user can do about an error of this code, or "" when the SQLite
 * message says enough. */
static const char *advice_for(int rc)
{
    switch (rc) {
    case SQLITE_READONLY_DBMOVED:
        return " The file was moved, replaced or deleted while it was open; "
               "restore it and open a new session.";
    case SQLITE_IOERR_DELETE_NOENT:
        return " A file next to the database disappeared; check that nothing else deletes it.";
    }
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
        return " It is not a SQLite database; it was left unchanged. Pass the path of a "
               "PromptLab database or of a new file.";
    case SQLITE_CORRUPT:
        return " The file is damaged; it was left unchanged. Restore it from a backup.";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return " Another connection held the lock for longer than the busy timeout; "
               "retry, or stop the process that holds it.";
    case SQLITE_READONLY:
        return " The database cannot be written; check the permissions of the file and "
               "its folder.";
    case SQLITE_FULL:
        return " The disk (or the database's size limit) is full; free space and retry. "
               "Data committed before is intact.";
    case SQLITE_CANTOPEN:
        return " Check that the folder exists, is writable, and that the path is a file.";
    case SQLITE_PERM:
        return " Permission denied; check the permissions of the file and its folder.";
    case SQLITE_IOERR:
        return " An input/output error occurred; check the disk and the file system.";
    case SQLITE_INTERRUPT:
        return " The statement ran longer than its time limit (Session.statement_timeout, or "
               "PROMPTLAB_STATEMENT_TIMEOUT_MS) and was stopped; a write's transaction was "
               "rolled back. Raise the limit, or narrow the query.";
    }
    return "";
}

/* An I/O error's kind follows the operating system's reason when there is one:
 * a read-only file system or a full disk deserve their own exception. */
static pl_errkind kind_for_io(int rc, int sys_errno)
{
    if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN) {
        if (sys_errno == EROFS)
            return PL_E_READONLY;
        if (sys_errno == ENOSPC || sys_errno == EDQUOT)
            return PL_E_FULL;
        if (sys_errno == EMFILE || sys_errno == ENFILE)
            return PL_E_DATABASE;
    }
    return kind_for(rc);
}

/* Room for " [OS error N: strerror text]". */
#define OS_REASON_MAX 160

int pl_err_from_sqlite(pl_err *err, int rc, struct sqlite3 *db, const char *path, const char *what)
{
    const char *detail = NULL;
    int sys_errno = db != NULL ? sqlite3_system_errno(db) : 0;
    pl_errkind kind = kind_for_io(rc, sys_errno);
    char os_reason[OS_REASON_MAX] = "";

    /* The connection's message is only meaningful when it describes `rc`. */
    if (db != NULL && sqlite3_extended_errcode(db) == rc)
        detail = sqlite3_errmsg(db);
    if (detail == NULL)
        detail = sqlite3_errstr(rc);
    if (sys_errno != 0 && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN ||
                           (rc & 0xff) == SQLITE_FULL))
        snprintf(os_reason, sizeof os_reason, " [OS error %d: %s]", sys_errno, strerror(sys_errno));
    pl_err_set(err, kind, path, "%s failed: %s (SQLite code %d)%s.%s", what, detail, rc, os_reason,
               (sys_errno == EMFILE || sys_errno == ENFILE) && os_reason[0] != '\0'
                   ? " This process has too many files open. Close the sessions it no "
                     "longer uses, lower PROMPTLAB_MAX_IDLE_CONNECTIONS (idle connections "
                     "kept, three descriptors each), or raise the limit (ulimit -n)."
               : kind == PL_E_READONLY ? advice_for(SQLITE_READONLY)
               : kind == PL_E_FULL     ? advice_for(SQLITE_FULL)
                                       : advice_for(rc));
    err->sqlite_rc = rc;
    return -1;
}
