/* pgadmin.c: the admin's first password on PostgreSQL. */
#include "pgadmin.h"
#include "lockorder.h"
#include "password.h"
#include "pgconn.h"

#include <stdlib.h>
#include <string.h>

int pl_pg_set_first_admin_password(PGconn *conn, const char *password, int *set, pl_err *err)
{
    char hashed[PL_HASH_MAX];
    const char *values[] = {hashed, PL_UNUSABLE_PASSWORD};
    PGresult *r;
    int rc = 0;

    PL_ASSERT_NO_GIL();
    *set = 0;
    if (pl_password_hash(password, pl_password_rounds(), hashed, err) < 0)
        return -1;
    r = PQexecParams(conn,
                     "UPDATE users SET password_hash = $1"
                     " WHERE username = 'admin' AND password_hash = $2",
                     2, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pl_pg_err_from_result(err, conn, r, "setting the admin user's password");
    else
        *set = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    explicit_bzero(hashed, sizeof hashed);
    return rc;
}
