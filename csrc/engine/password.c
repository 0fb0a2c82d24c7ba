/* password.c: bcrypt via crypt_gensalt_rn/crypt_rn (reentrant, thread safe). */
#include "password.h"
#include "alloc.h"
#include "lockorder.h"

#include <crypt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pl_password_check(const char *password, size_t len, char *why, size_t size)
{
    if (len < PL_PASSWORD_MIN_BYTES || len > PL_PASSWORD_MAX_BYTES) {
        snprintf(why, size,
                 "is %zu byte%s long; a password must be %d to %d bytes (UTF-8), because "
                 "bcrypt reads only the first %d",
                 len, len == 1 ? "" : "s", PL_PASSWORD_MIN_BYTES, PL_PASSWORD_MAX_BYTES,
                 PL_PASSWORD_MAX_BYTES);
        return -1;
    }
    /* Only now: len is known to be within the caller's buffer. */
    if (memchr(password, '\0', len) != NULL) {
        snprintf(why, size, "contains a NUL byte, which a password cannot hold");
        return -1;
    }
    return 0;
}

static atomic_int rounds_in_use = PL_PASSWORD_ROUNDS;

int pl_password_rounds(void)
{
    return atomic_load(&rounds_in_use);
}

int pl_password_set_rounds_for_tests(int rounds)
{
    if (rounds < PL_BCRYPT_MIN_ROUNDS || rounds > PL_BCRYPT_MAX_ROUNDS)
        return -1;
    return atomic_exchange(&rounds_in_use, rounds);
}

int pl_password_hash(const char *password, int rounds, char out[PL_HASH_MAX], pl_err *err)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *data;
    const char *hashed;

    PL_ASSERT_NO_GIL();
    if (rounds < PL_BCRYPT_MIN_ROUNDS || rounds > PL_BCRYPT_MAX_ROUNDS)
        return pl_err_set(err, PL_E_PROGRAMMING, NULL,
                          "bcrypt rounds must be between %d and %d, not %d", PL_BCRYPT_MIN_ROUNDS,
                          PL_BCRYPT_MAX_ROUNDS, rounds);
    /* NULL random bytes: libxcrypt draws the salt from the OS. */
    if (crypt_gensalt_rn("$2b$", (unsigned long)rounds, NULL, 0, setting, sizeof setting) == NULL)
        return pl_err_set(err, PL_E_DATABASE, NULL,
                          "cannot generate a bcrypt salt: this system's libcrypt lacks bcrypt "
                          "support");
    data = pl_calloc(1, sizeof *data);
    if (data == NULL)
        return pl_err_set(err, PL_E_NOMEM, NULL, "out of memory hashing a password");
    hashed = crypt_rn(password, setting, data, (int)sizeof *data);
    if (hashed == NULL || hashed[0] == '*' || strlen(hashed) >= PL_HASH_MAX) {
        explicit_bzero(data, sizeof *data);
        free(data);
        return pl_err_set(err, PL_E_DATABASE, NULL, "bcrypt hashing failed");
    }
    strcpy(out, hashed);
    explicit_bzero(data, sizeof *data);
    free(data);
    return 0;
}

int pl_password_verify(const char *password, const char *hash)
{
    struct crypt_data *data;
    const char *got;
    size_t n;
    unsigned char diff = 0;

    if (strncmp(hash, "$2b$", 4) != 0 && strncmp(hash, "$2a$", 4) != 0 &&
        strncmp(hash, "$2y$", 4) != 0)
        return 0;
    data = pl_calloc(1, sizeof *data);
    if (data == NULL)
        return 0;
    got = crypt_rn(password, hash, data, (int)sizeof *data);
    n = strlen(hash);
    if (got == NULL || got[0] == '*' || strlen(got) != n) {
        explicit_bzero(data, sizeof *data);
        free(data);
        return 0;
    }
    for (size_t i = 0; i < n; i++) /* constant time in the hash length */
        diff |= (unsigned char)(got[i] ^ hash[i]);
    explicit_bzero(data, sizeof *data);
    free(data);
    return diff == 0;
}
