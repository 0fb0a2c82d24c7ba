/* password.h: bcrypt password hashes through the system's libcrypt (libxcrypt).
 *
 * Hashes are "$2b$" bcrypt, the format passlib wrote for the original
 * PromptLab, so old hashes verify too. Hashing is slow on purpose (about a
 * quarter second at 12 rounds): call these with the GIL released.
 */
#ifndef PL_PASSWORD_H
#define PL_PASSWORD_H

#include <stddef.h>
#include "error.h"

/* Stored for an admin that has no password yet; no password verifies against it. */
#define PL_UNUSABLE_PASSWORD "!"

#define PL_HASH_MAX 128

/* bcrypt cost (log2 of the rounds) for stored passwords: about a quarter
 * second here. The cost in use is pl_password_rounds() (a test suite may
 * lower it); hash_password's docstring (module.c) quotes this value. */
#define PL_PASSWORD_ROUNDS 12

/* A numeric constant as a string literal (for docstrings). */
#define PL_STRINGIFY_(x) #x
#define PL_STRINGIFY(x) PL_STRINGIFY_(x)

/* The costs bcrypt accepts. */
#define PL_BCRYPT_MIN_ROUNDS 4
#define PL_BCRYPT_MAX_ROUNDS 31

/* Room for pl_password_check's reason (a clause of about 100 bytes). */
#define PL_PASSWORD_WHY_MAX 160

/* The rule for a password PromptLab stores (admin and studio users alike):
 * 8 to 72 bytes of UTF-8 and no NUL byte. bcrypt reads only the first 72
 * bytes, so a longer password would be cut without a word. */
#define PL_PASSWORD_MIN_BYTES 8
#define PL_PASSWORD_MAX_BYTES 72

/* 0 when password[0:len] follows the rule; else -1 with what is wrong in
 * `why` (a clause such as "is 3 bytes long; a password must be ..."), to
 * follow the name of the password's source. */
int pl_password_check(const char *password, size_t len, char *why, size_t size);

/* Hash `password` with a fresh salt at cost `rounds` (PL_BCRYPT_MIN_ROUNDS to
 * PL_BCRYPT_MAX_ROUNDS) into out.
 * Returns 0, or -1 with `err` set. */
int pl_password_hash(const char *password, int rounds, char out[PL_HASH_MAX], pl_err *err);

/* The bcrypt cost for new stored hashes: PL_PASSWORD_ROUNDS unless a test
 * suite set another one. Lock-free (an atomic load). */
int pl_password_rounds(void);

/* For test suites only: make `rounds` (PL_BCRYPT_MIN_ROUNDS to
 * PL_BCRYPT_MAX_ROUNDS) the cost of new hashes, process-wide. A hash carries
 * its cost, so verification is unaffected. Returns the previous cost, or -1
 * (nothing changed) when `rounds` is out of range. */
int pl_password_set_rounds_for_tests(int rounds);

/* 1 when `password` matches bcrypt hash `hash`, 0 otherwise (also for any
 * hash that is not bcrypt, such as the unusable marker). */
int pl_password_verify(const char *password, const char *hash);

#endif
