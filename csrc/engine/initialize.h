/* initialize.h: what initializing one database file does, and the migration chain.
 *
 * pl_initialize_database() runs once per database per process (the state machine in
 * database.c sees to that): it refuses files that are not ours without
 * touching them, switches the file to WAL, applies pending migrations, and
 * makes sure the default admin user exists. GIL released throughout.
 */
#ifndef PL_INITIALIZE_H
#define PL_INITIALIZE_H

#include "conn.h"
#include "error.h"
#include "migfile.h"

/* Initialize the database at canonical `path`. On success *out receives an
 * open connection (for the pool) and 0 is returned; on failure -1 with `err`
 * set, and a file that is not a PromptLab database is left byte for byte.
 * *checked tells whether the file was found undamaged (quick_check) or is
 * new; when 0, its first write must check it (pl_database_check_before_write). */
int pl_initialize_database(const char *path, pl_conn **out, int *checked, pl_err *err);

/* The one writer of the admin's password hash `use` (initialization's
 * PROMPTLAB_ADMIN_PASSWORD and the generated password of `promptlab db init`
 * alike), in one BEGIN IMMEDIATE transaction on `c`: with `create`, insert the
 * admin with `use` when there is no admin row; then, unless `use` is the
 * unusable marker, give it `use` while its hash is the unusable marker. Both
 * statements are no-ops when another process got there first. *set (may be
 * NULL) tells whether a row changed. Returns 0, or -1 with `err` set and the
 * transaction rolled back. GIL released. */
int pl_initialize_write_admin(pl_conn *c, const char *use, int create, int *set, pl_err *err);

/* The folder of shipped migrations, set once by the module at import. */
void pl_initialize_set_default_dir(const char *dir);

/* The folder in use: $PROMPTLAB_MIGRATIONS_DIR when set, else the default.
 * Writes into buf; returns buf. */
const char *pl_initialize_migrations_dir(char *buf, size_t size);

/* The same, or -1 with a MigrationError in `err` when no folder is known. */
int pl_initialize_known_migrations_dir(char *buf, size_t size, pl_err *err);

/* The migration chain of the folder in use, loaded once and kept until the
 * folder changes. The chain stays valid until pl_initialize_forget_chain(); callers
 * hold no lock while using it, so it is never freed while the process runs
 * (a forgotten chain is kept on a list). Returns NULL with `err` set. */
const pl_chain *pl_initialize_chain(pl_err *err);

/* After reset_initialization: reload the chain on next use if its folder's
 * files changed (names, sizes, modification times). */
void pl_initialize_forget_chain(void);

/* Fork support for the chain's lock. */
void pl_initialize_lock_for_fork(void);
void pl_initialize_unlock_after_fork(void);
void pl_initialize_reinit_in_child(void);

#endif
