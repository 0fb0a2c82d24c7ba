/* pq.h: libpq, loaded the first time PostgreSQL is used (dlopen), not when
 * _core is imported. Linked, it would load OpenSSL, Kerberos, LDAP and GnuTLS
 * (about twenty libraries: measured +4 MiB and +5 ms on every import) into
 * every process, most of which only use SQLite.
 *
 * The engine's PostgreSQL files include this instead of <libpq-fe.h>: the PQ*
 * names they call are macros for the pointers of pl_pq, which pl_pq_load()
 * fills once per process (pl_pg_connect calls it before anything else).
 * Engine layer: no Python.h. */
#ifndef PL_PQ_H
#define PL_PQ_H

#include "error.h"

#include <libpq-fe.h>

/* The libpq functions PromptLab calls, as pointers, by their names. */
typedef struct {
    PGconn *(*PQconnectdbParams)(const char *const *keywords, const char *const *values,
                                 int expand_dbname);
    void (*PQfinish)(PGconn *conn);
    ConnStatusType (*PQstatus)(const PGconn *conn);
    char *(*PQerrorMessage)(const PGconn *conn);
    char *(*PQuser)(const PGconn *conn);
    char *(*PQhost)(const PGconn *conn);
    char *(*PQport)(const PGconn *conn);
    char *(*PQdb)(const PGconn *conn);
    int (*PQconnectionNeedsPassword)(const PGconn *conn);
    int (*PQserverVersion)(const PGconn *conn);
    PQnoticeProcessor (*PQsetNoticeProcessor)(PGconn *conn, PQnoticeProcessor proc, void *arg);
    PQconninfoOption *(*PQconninfoParse)(const char *conninfo, char **errmsg);
    void (*PQconninfoFree)(PQconninfoOption *connOptions);
    void (*PQfreemem)(void *ptr);
    PGresult *(*PQexec)(PGconn *conn, const char *query);
    PGresult *(*PQexecParams)(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                              const char *const *paramValues, const int *paramLengths,
                              const int *paramFormats, int resultFormat);
    PGresult *(*PQgetResult)(PGconn *conn);
    ExecStatusType (*PQresultStatus)(const PGresult *res);
    char *(*PQresultErrorField)(const PGresult *res, int fieldcode);
    int (*PQntuples)(const PGresult *res);
    char *(*PQgetvalue)(const PGresult *res, int tup_num, int field_num);
    char *(*PQcmdTuples)(PGresult *res);
    void (*PQclear)(PGresult *res);
    int (*PQputCopyData)(PGconn *conn, const char *buffer, int nbytes);
    int (*PQputCopyEnd)(PGconn *conn, const char *errormsg);
} pl_pq_api;

/* The list above, for the loader. */
#define PL_PQ_FUNCTIONS(X)                                                                         \
    X(PQconnectdbParams)                                                                           \
    X(PQfinish)                                                                                    \
    X(PQstatus)                                                                                    \
    X(PQerrorMessage)                                                                              \
    X(PQuser)                                                                                      \
    X(PQhost)                                                                                      \
    X(PQport)                                                                                      \
    X(PQdb)                                                                                        \
    X(PQconnectionNeedsPassword)                                                                   \
    X(PQserverVersion)                                                                             \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQconninfoParse)                                                                             \
    X(PQconninfoFree)                                                                              \
    X(PQfreemem)                                                                                   \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQgetResult)                                                                                 \
    X(PQresultStatus)                                                                              \
    X(PQresultErrorField)                                                                          \
    X(PQntuples)                                                                                   \
    X(PQgetvalue)                                                                                  \
    X(PQcmdTuples)                                                                                 \
    X(PQclear)                                                                                     \
    X(PQputCopyData)                                                                               \
    X(PQputCopyEnd)

extern pl_pq_api pl_pq;

/* Load libpq (libpq.so.5) and its functions, once per process; thread-safe.
 * Returns 0, or -1 with `err` (ServerUnavailableError) saying libpq is not
 * installed. */
int pl_pq_load(pl_err *err);

/* Calls through the pointers (pq.c itself names the fields). */
#ifndef PL_PQ_LOADER
#define PQconnectdbParams pl_pq.PQconnectdbParams
#define PQfinish pl_pq.PQfinish
#define PQstatus pl_pq.PQstatus
#define PQerrorMessage pl_pq.PQerrorMessage
#define PQuser pl_pq.PQuser
#define PQhost pl_pq.PQhost
#define PQport pl_pq.PQport
#define PQdb pl_pq.PQdb
#define PQconnectionNeedsPassword pl_pq.PQconnectionNeedsPassword
#define PQserverVersion pl_pq.PQserverVersion
#define PQsetNoticeProcessor pl_pq.PQsetNoticeProcessor
#define PQconninfoParse pl_pq.PQconninfoParse
#define PQconninfoFree pl_pq.PQconninfoFree
#define PQfreemem pl_pq.PQfreemem
#define PQexec pl_pq.PQexec
#define PQexecParams pl_pq.PQexecParams
#define PQgetResult pl_pq.PQgetResult
#define PQresultStatus pl_pq.PQresultStatus
#define PQresultErrorField pl_pq.PQresultErrorField
#define PQntuples pl_pq.PQntuples
#define PQgetvalue pl_pq.PQgetvalue
#define PQcmdTuples pl_pq.PQcmdTuples
#define PQclear pl_pq.PQclear
#define PQputCopyData pl_pq.PQputCopyData
#define PQputCopyEnd pl_pq.PQputCopyEnd

#endif
#endif
