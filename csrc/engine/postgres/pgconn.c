/* pgconn.c: connecting to PostgreSQL and classifying libpq's failures. */
#include "pgconn.h"
#include "lockorder.h"

#include <stdio.h>
#include <string.h>

int pl_pg_is_url(const char *text)
{
    return strncmp(text, "postgresql://", 13) == 0 || strncmp(text, "postgres://", 11) == 0;
}

void pl_pg_shown(PGconn *conn, char *out, size_t size)
{
    const char *user = PQuser(conn), *host = PQhost(conn), *port = PQport(conn);
    const char *db = PQdb(conn);

    user = user != NULL ? user : "";
    host = host != NULL ? host : "";
    port = port != NULL ? port : "";
    db = db != NULL ? db : "";
    if (host[0] == '/') /* a Unix socket's folder: a query parameter in a URL */
        snprintf(out, size, "postgresql://%s@/%s?host=%s&port=%s", user, db, host, port);
    else
        snprintf(out, size, "postgresql://%s@%s:%s/%s", user, host, port, db);
}

/* The first line of libpq's message after "failed: " (its reason), in `out`. */
static void reason_of(const char *message, char *out, size_t size)
{
    const char *start = strstr(message, "failed: ");
    size_t len;

    start = start != NULL ? start + 8 : message;
    while (strncmp(start, "FATAL:", 6) == 0 || *start == ' ')
        start += *start == ' ' ? 1 : 6;
    len = strcspn(start, "\n");
    snprintf(out, size, "%.*s", (int)len, start);
}

/* Fill `err` for a connection that failed: the kind from libpq's message
 * (there is no SQLSTATE for a failed start-up). Returns -1. */
static int connect_failed(PGconn *conn, pl_err *err)
{
    char shown[PL_PG_SHOWN_MAX], reason[512];
    const char *message = PQerrorMessage(conn), *db = PQdb(conn), *user = PQuser(conn);

    pl_pg_shown(conn, shown, sizeof shown);
    reason_of(message, reason, sizeof reason);
    if (PQconnectionNeedsPassword(conn) || strstr(message, "password authentication failed") ||
        strstr(message, "no password supplied") || strstr(message, "role \""))
        return pl_err_set(err, PL_E_AUTH, shown,
                          "the server refused user \"%s\" (%s); check the password (in the URL, "
                          "PGPASSWORD or ~/.pgpass) and the user name.",
                          user != NULL ? user : "", reason);
    if (strstr(message, "database \"") && strstr(message, "does not exist"))
        return pl_err_set(err, PL_E_NO_DATABASE, shown,
                          "the server has no database \"%s\"; create it (createdb %s) or fix "
                          "the name in the URL.",
                          db != NULL ? db : "", db != NULL ? db : "");
    if (strstr(message, "permission denied") || strstr(message, "not permitted to log in"))
        return pl_err_set(err, PL_E_PERMISSION, shown,
                          "the server does not let user \"%s\" connect (%s); grant it CONNECT "
                          "on the database and LOGIN, or use another user.",
                          user != NULL ? user : "", reason);
    return pl_err_set(err, PL_E_UNAVAILABLE, shown,
                      "cannot connect to the PostgreSQL server (%s); start it, or check the "
                      "host and port, and retry.",
                      reason);
}

/* Server notices ("relation already exists, skipping") are not the user's
 * business: libpq would print them on stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *pl_pg_connect(const char *url, pl_err *err)
{
    /* expand_dbname = 1: the URL's own settings win over the keys before it.
     * The server checks every second that the client is still there, so a
     * killed process's transaction (and its locks) end within a second, not
     * when its statement finishes. */
    const char *keys[] = {"application_name", "options", "dbname", NULL};
    const char *values[] = {"promptlab", "-c client_connection_check_interval=1000", url, NULL};
    char *parse_error = NULL;
    PQconninfoOption *parsed;
    PGconn *conn;

    PL_ASSERT_NO_GIL();
    if (pl_pq_load(err) < 0)
        return NULL;
    parsed = PQconninfoParse(url, &parse_error);
    if (parsed == NULL) {
        /* libpq's reason names the part it could not read, which may be the
         * password: not repeated here. */
        PQfreemem(parse_error);
        return pl_err_set(err, PL_E_PATH, NULL,
                          "this is not a valid PostgreSQL URL; write it as "
                          "postgresql://user@host:port/dbname (see libpq's \"Connection "
                          "URIs\"; special characters percent-encoded)."),
               NULL;
    }
    PQconninfoFree(parsed);
    conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL)
        return pl_err_set(err, PL_E_NOMEM, NULL, "out of memory while connecting"), NULL;
    if (PQstatus(conn) != CONNECTION_OK) {
        connect_failed(conn, err);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    return conn;
}

/* The kind of a SQLSTATE (PostgreSQL's "Appendix A. Error Codes"). */
static pl_errkind kind_of_sqlstate(const char *state)
{
    static const struct {
        const char *prefix;
        pl_errkind kind;
    } KINDS[] = {
        {"08", PL_E_CONNECTION_LOST}, {"28", PL_E_AUTH},        {"3D000", PL_E_NO_DATABASE},
        {"42501", PL_E_PERMISSION},   {"57014", PL_E_TIMEOUT},  {"57P", PL_E_UNAVAILABLE},
        {"53100", PL_E_FULL},         {"25006", PL_E_READONLY}, {"40", PL_E_BUSY},
        {"55P03", PL_E_BUSY},         {"23", PL_E_INTEGRITY},   {"42", PL_E_PROGRAMMING},
        {"22", PL_E_PROGRAMMING},     {"53200", PL_E_NOMEM},
    };
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (strncmp(state, KINDS[i].prefix, strlen(KINDS[i].prefix)) == 0)
            return KINDS[i].kind;
    return PL_E_DATABASE;
}

int pl_pg_err_from_result(pl_err *err, PGconn *conn, const PGresult *r, const char *what)
{
    char shown[PL_PG_SHOWN_MAX];
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    pl_errkind kind;

    pl_pg_shown(conn, shown, sizeof shown);
    if (PQstatus(conn) == CONNECTION_BAD) { /* the server went away: no SQLSTATE */
        char reason[512];
        reason_of(primary != NULL ? primary : PQerrorMessage(conn), reason, sizeof reason);
        return pl_err_set(err, PL_E_CONNECTION_LOST, shown,
                          "%s: the connection to the server was lost (%s); the server rolled "
                          "back the transaction in progress. Retry once the server is up.",
                          what, reason);
    }
    kind = state != NULL ? kind_of_sqlstate(state) : PL_E_DATABASE;
    return pl_err_set(err, kind, shown, "%s: %s (SQLSTATE %s)", what,
                      primary != NULL ? primary : PQerrorMessage(conn),
                      state != NULL ? state : "none");
}
