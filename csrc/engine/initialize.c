/* initialize.c: initializing a database file: checks, WAL, migrations, admin user. */
#include "initialize.h"
#include "alloc.h"
#include "util.h"
#include "lockorder.h"
#include "settings.h"
#include "filecheck.h"
#include "migrate.h"
#include "password.h"
#include "paths.h"
#include "query.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static char *default_dir;
static pl_chain *current_chain;

/* Chains replaced while the process runs: a caller may still be using one
 * (pl_initialize_chain hands out borrowed pointers), so they are kept, reachable,
 * until exit. Replacement only happens on reset_initialization() or when the
 * migrations folder changes, so this list stays short. */
typedef struct retired_chain {
    pl_chain *chain;
    struct retired_chain *next;
} retired_chain;
static retired_chain *retired;
static unsigned long long current_signature; /* folder_signature() of current_chain */
static int recheck_folder;                   /* set by reset: compare signatures */

void pl_initialize_set_default_dir(const char *dir)
{
    pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
    free(default_dir);
    default_dir = pl_strdup(dir);
    pl_mutex_unlock(&chain_lock);
}

const char *pl_initialize_migrations_dir(char *buf, size_t size)
{
    if (pl_settings_migrations_dir(buf, size)[0] == '\0') {
        pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
        snprintf(buf, size, "%s", default_dir ? default_dir : "");
        pl_mutex_unlock(&chain_lock);
    }
    return buf;
}

int pl_initialize_known_migrations_dir(char *buf, size_t size, pl_err *err)
{
    if (pl_initialize_migrations_dir(buf, size)[0] != '\0')
        return 0;
    return pl_err_set(err, PL_E_MIGRATION, NULL,
                      "the folder of PromptLab's migration files is unknown; reinstall "
                      "PromptLab or set PROMPTLAB_MIGRATIONS_DIR.");
}

/* Move the current chain to the retired list. Requires chain_lock. */
static void retire_chain_locked(void)
{
    assert(pl_lock_held(&chain_lock));
    retired_chain *node;

    if (current_chain == NULL)
        return;
    node = pl_malloc(sizeof *node);
    if (node == NULL)
        return; /* keep using it: better stale than freed under a reader */
    node->chain = current_chain;
    node->next = retired;
    retired = node;
    current_chain = NULL;
}

/* A fingerprint of the "*.sql" files in `dir` (names, sizes, modification
 * times), order independent: tells whether the folder changed since the chain
 * was loaded without parsing it again. */
static unsigned long long folder_signature(const char *dir)
{
    unsigned long long sig = 0;
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[PATH_MAX + NAME_MAX + 2]; /* dir "/" name */
        struct stat st;

        if (n <= 4 || e->d_name[0] == '.' || strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        unsigned long long h = pl_fnv1a(PL_FNV_OFFSET, e->d_name, n);
        h = pl_fnv1a_mix(h, (unsigned long long)st.st_size);
        h = pl_fnv1a_mix(h, (unsigned long long)st.st_mtim.tv_sec);
        h = pl_fnv1a_mix(h, (unsigned long long)st.st_mtim.tv_nsec);
        sig += h;
    }
    closedir(d);
    return sig;
}

const pl_chain *pl_initialize_chain(pl_err *err)
{
    char dir[PATH_MAX];
    pl_chain *chain;
    unsigned long long sig;

    if (pl_initialize_known_migrations_dir(dir, sizeof dir, err) < 0)
        return NULL;
    pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
    int cached = current_chain != NULL && strcmp(current_chain->dir, dir) == 0;
    int check = recheck_folder;
    chain = current_chain;
    pl_mutex_unlock(&chain_lock);
    if (cached && !check)
        return chain;
    /* File I/O without the lock; two threads may both load: one wins. */
    sig = folder_signature(dir);
    if (cached) {
        pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
        if (current_chain == chain && sig == current_signature) {
            recheck_folder = 0;
            pl_mutex_unlock(&chain_lock);
            return chain;
        }
        pl_mutex_unlock(&chain_lock);
    }
    chain = pl_chain_load(dir, err);
    if (chain == NULL)
        return NULL;
    pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
    if (current_chain != NULL && strcmp(current_chain->dir, dir) == 0 && current_signature == sig &&
        !recheck_folder) {
        pl_chain *winner = current_chain;
        pl_mutex_unlock(&chain_lock);
        pl_chain_free(chain);
        return winner;
    }
    retire_chain_locked();
    current_chain = chain;
    current_signature = sig;
    recheck_folder = 0;
    pl_mutex_unlock(&chain_lock);
    return chain;
}

void pl_initialize_forget_chain(void)
{
    /* Reload on next use only if the folder changed: keeps resets cheap. */
    pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
    recheck_folder = 1;
    pl_mutex_unlock(&chain_lock);
}

void pl_initialize_lock_for_fork(void)
{
    pl_mutex_lock(&chain_lock, PL_LOCK_CHAIN);
}

void pl_initialize_unlock_after_fork(void)
{
    pl_mutex_unlock(&chain_lock);
}

void pl_initialize_reinit_in_child(void)
{
    pl_mutex_unlock(&chain_lock); /* taken by the forking thread */
}

/* The steps named in error messages. */
#define ADMIN_STEP "creating the admin user"
#define READ_STEP "reading the database"

int pl_initialize_write_admin(pl_conn *c, const char *use, int create, int *set, pl_err *err)
{
    const char *const args[] = {use, PL_UNUSABLE_PASSWORD};
    int changed = 0;

    PL_ASSERT_NO_GIL();
    if (pl_conn_exec(c, "BEGIN IMMEDIATE", ADMIN_STEP, err) < 0)
        return -1;
    if (create) {
        if (pl_query_run_texts(c,
                               "INSERT INTO users (username, password_hash, role, status)"
                               " SELECT 'admin', ?1, 'admin', 1 WHERE NOT EXISTS"
                               " (SELECT 1 FROM users WHERE username = 'admin')",
                               args, 1, ADMIN_STEP, err) < 0)
            goto fail;
        changed = sqlite3_changes(c->db) > 0;
    }
    if (strcmp(use, PL_UNUSABLE_PASSWORD) != 0) {
        if (pl_query_run_texts(c,
                               "UPDATE users SET password_hash = ?1"
                               " WHERE username = 'admin' AND password_hash = ?2",
                               args, 2, ADMIN_STEP, err) < 0)
            goto fail;
        changed = changed || sqlite3_changes(c->db) > 0;
    }
    if (pl_conn_exec(c, "COMMIT", ADMIN_STEP, err) < 0)
        goto fail;
    if (set != NULL)
        *set = changed;
    return 0;
fail:
    pl_conn_rollback_quietly(c);
    return -1;
}

/* Make sure the default admin exists; give it PROMPTLAB_ADMIN_PASSWORD while
 * it has no usable password. The variable is checked against the password
 * rule only where it is used (a database whose admin has a password ignores
 * it), and hashed before the write lock is taken. */
static int ensure_admin(pl_conn *c, int *checked, pl_err *err)
{
    /* One byte more than the rule allows; env_len is the full length. */
    char env[PL_PASSWORD_MAX_BYTES + 2], why[PL_PASSWORD_WHY_MAX];
    char current[PL_HASH_MAX + 8], hashed[PL_HASH_MAX] = PL_UNUSABLE_PASSWORD;
    long env_len = pl_settings_admin_password(env, sizeof env);
    int found = 0, rc = -1;

    long long has_users = 0;
    if (pl_query_int(c, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='users'",
                     &has_users, READ_STEP, err) < 0)
        goto done;
    if (has_users == 0) { /* a custom migration chain without users */
        rc = 0;
        goto done;
    }
    if (pl_query_text(c, "SELECT password_hash FROM users WHERE username = 'admin'", current,
                      sizeof current, &found, READ_STEP, err) < 0)
        goto done;
    int want_password = env_len > 0 && (!found || strcmp(current, PL_UNUSABLE_PASSWORD) == 0);
    if (found && !want_password) {
        rc = 0;
        goto done;
    }
    if (want_password) {
        if (pl_password_check(env, (size_t)env_len, why, sizeof why) < 0) {
            pl_err_set(err, PL_E_DATABASE, c->path,
                       "PROMPTLAB_ADMIN_PASSWORD %s. Set another one, or unset it and let "
                       "'promptlab db init' generate one.",
                       why);
            goto done;
        }
        if (pl_password_hash(env, pl_password_rounds(), hashed, err) < 0) {
            pl_err_prefix(err, "hashing PROMPTLAB_ADMIN_PASSWORD");
            goto done;
        }
    }
    /* The first write of this process to the file: not to a damaged one. */
    if (!*checked && pl_check_not_damaged(c, err) < 0)
        goto done;
    *checked = 1;
    rc = pl_initialize_write_admin(c, hashed, 1, NULL, err);
done:
    explicit_bzero(env, sizeof env);
    return rc;
}

/* Before PromptLab first writes to an existing database (switching it to WAL,
 * or migrating it), make sure it is not damaged: a damaged file is refused and
 * left as it is, never "repaired" by our writes. Costs one pass over the file.
 * An up-to-date WAL database is not written here, so it is not checked here:
 * its first write in this process checks it (pl_database_check_before_write).
 * Sets *checked when the check ran. */
static int check_before_first_write(pl_conn *c, int up_to_date, int *checked, pl_err *err)
{
    char value[PL_JOURNAL_MODE_MAX] = "";
    int found = 0;

    if (pl_query_text(c, "PRAGMA journal_mode", value, sizeof value, &found, READ_STEP, err) < 0)
        return -1;
    if (up_to_date && strcmp(value, "wal") == 0)
        return 0;
    if (pl_check_not_damaged(c, err) < 0)
        return -1;
    *checked = 1;
    return 0;
}

int pl_initialize_database(const char *path, pl_conn **out, int *checked, pl_err *err)
{
    int exists = 0;
    const pl_chain *chain;
    pl_db_version v;
    pl_conn *c = NULL;

    PL_ASSERT_NO_GIL();
    *out = NULL;
    int memory = pl_path_is_memory(path); /* no file to check; memdb has no WAL */
    if (!memory && pl_check_file(path, &exists, err) < 0)
        return -1;
    chain = pl_initialize_chain(err);
    if (chain == NULL)
        return -1;
    c = pl_conn_open(path, 1, err);
    if (c == NULL)
        return -1;
    c->timeout_ms = 0; /* an upgrade runs to its end: no statement time limit */
    /* Decide whether the file is ours before anything is written to it: the
     * layout of an older PromptLab's database (tables, no revision) is
     * recognised here, read-only, and marked at its revision by the first
     * migration step, under the write lock. Anything else is refused. */
    int at = -1, detected = 0;
    if (pl_migrate_locate(c, chain, &v, &at, &detected, err) < 0 ||
        pl_check_no_foreign_code(c, err) < 0)
        goto fail;
    int head = chain->count - 1;
    int up_to_date = at == head && !detected;
    if (!up_to_date && sqlite3_db_readonly(c->db, "main") == 1) {
        pl_err_set(err, PL_E_READONLY, path,
                   "the database needs migrations but is read-only; make the file and its "
                   "folder writable, then retry.");
        goto fail;
    }
    /* A new file (no tables of its own yet) has nothing to be damaged. */
    *checked = v.other_tables == 0;
    if (v.other_tables > 0 && check_before_first_write(c, up_to_date, checked, err) < 0)
        goto fail;
    if (!memory && sqlite3_db_readonly(c->db, "main") != 1 && pl_conn_enable_wal(c, err) < 0)
        goto fail;
    if (!up_to_date && pl_migrate_up(c, chain, head, NULL, err) < 0)
        goto fail;
    if (sqlite3_db_readonly(c->db, "main") != 1 && ensure_admin(c, checked, err) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    pl_conn_close(c);
    return -1;
}
