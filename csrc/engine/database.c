/* database.c: the initialization state machine and the connection pool. */
#include "database.h"
#include "alloc.h"
#include "lockorder.h"
#include "filecheck.h"
#include "fork.h"
#include "paths.h"
#include "registry.h"
#include "settings.h"
#include "initialize.h"
#include "password.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Idle pooled connections of the process, over all databases, and the clock
 * that stamps a connection when it becomes idle (for least recently used). */
static atomic_int idle_total;
static atomic_ullong idle_clock;

/* Detach the idle list. Requires db->lock (or the last reference). */
static pl_conn *take_idle_locked(pl_database *db)
{
    assert(pl_lock_held(&db->lock) || atomic_load(&db->refcnt) == 0);
    pl_conn *idle = db->idle;
    atomic_fetch_sub(&idle_total, db->n_idle);
    db->idle = NULL;
    db->n_idle = 0;
    return idle;
}

/* Close a detached list of connections; those inherited across fork() are
 * abandoned, never closed. Touches the disk: no lock held, GIL released. */
static void close_all(pl_conn *list)
{
    while (list != NULL) {
        pl_conn *next = list->next;
        if (list->fork_gen == pl_fork_generation())
            pl_conn_close(list);
        list = next;
    }
}

pl_database *pl_database_new(const char *path)
{
    pl_database *db = pl_calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    db->path = pl_strdup(path);
    if (db->path == NULL) {
        free(db);
        return NULL;
    }
    atomic_init(&db->refcnt, 1);
    atomic_init(&db->state, PL_DB_NEW);
    pthread_mutex_init(&db->lock, NULL);
    pthread_cond_init(&db->cond, NULL);
    return db;
}

void pl_database_incref(pl_database *db)
{
    atomic_fetch_add_explicit(&db->refcnt, 1, memory_order_relaxed);
}

void pl_database_decref(pl_database *db)
{
    if (db == NULL || atomic_fetch_sub_explicit(&db->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    pl_registry_unlink_live(db);
    close_all(take_idle_locked(db)); /* the last reference: nobody else holds the lock */
    close_all(db->anchor);
    free(db->failure);
    pthread_mutex_destroy(&db->lock);
    pthread_cond_destroy(&db->cond);
    free(db->path);
    free(db);
}

/* Put an open connection into the idle list, or return it when the pool is
 * full. Requires db->lock. */
static pl_conn *pool_push_locked(pl_database *db, pl_conn *c)
{
    assert(pl_lock_held(&db->lock));
    if (db->n_idle >= PL_POOL_IDLE_MAX || db->forgotten)
        return c;
    c->idle_since = atomic_fetch_add(&idle_clock, 1);
    c->next = db->idle;
    db->idle = c;
    db->n_idle++;
    atomic_fetch_add(&idle_total, 1);
    return NULL;
}

int pl_database_ensure_ready(pl_database *db, pl_err *err)
{
    PL_ASSERT_NO_GIL();
    pl_conn *conn = NULL, *extra = NULL;
    int rc;

    if (pl_database_is_ready(db))
        return 0;
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    for (;;) {
        int state = atomic_load(&db->state);
        if (state == PL_DB_READY) {
            pl_mutex_unlock(&db->lock);
            return 0;
        }
        if (state == PL_DB_INITIALIZING) {
            unsigned long mine = db->attempt;
            while (atomic_load(&db->state) == PL_DB_INITIALIZING && db->attempt == mine)
                pthread_cond_wait(&db->cond, &db->lock);
            if (atomic_load(&db->state) == PL_DB_FAILED && db->attempt == mine &&
                db->failure != NULL) {
                *err = *db->failure;
                pl_mutex_unlock(&db->lock);
                return -1;
            }
            continue;
        }
        /* NEW, or FAILED by an earlier attempt: this thread initializes. */
        db->attempt++;
        atomic_store(&db->state, PL_DB_INITIALIZING);
        break;
    }
    pl_mutex_unlock(&db->lock);

    int checked = 0;
    rc = pl_initialize_database(db->path, &conn, &checked, err);
    if (rc == 0)
        atomic_store(&db->checked, checked);

    struct stat st;
    if (rc == 0 && !pl_path_is_memory(db->path) && stat(db->path, &st) == 0) { /* it exists now */
        db->dev = (unsigned long long)st.st_dev;
        db->ino = (unsigned long long)st.st_ino;
        conn->dev = db->dev;
        conn->ino = db->ino;
    }
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    if (rc == 0) {
        free(db->failure);
        db->failure = NULL;
        if (pl_path_is_memory(db->path) && db->anchor == NULL)
            db->anchor = conn; /* the last connection to close would free the database */
        else
            extra = pool_push_locked(db, conn);
        atomic_store_explicit(&db->state, PL_DB_READY, memory_order_release);
    } else {
        if (db->failure == NULL)
            db->failure = pl_malloc(sizeof *db->failure);
        if (db->failure != NULL)
            *db->failure = *err;
        atomic_store(&db->state, PL_DB_FAILED);
    }
    pthread_cond_broadcast(&db->cond);
    pl_mutex_unlock(&db->lock);
    pl_conn_close(extra);
    return rc;
}

/* Check that the path still names the file that was initialized. */
static int check_identity(pl_database *db, pl_err *err)
{
    struct stat st;

    if (db->dev == 0 && db->ino == 0)
        return 0; /* identity unknown (stat failed after setup): nothing to compare */
    if (stat(db->path, &st) != 0) {
        if (errno == ENOENT)
            return pl_err_set(err, PL_E_DATABASE, db->path,
                              "the database file was deleted while PromptLab had it open. "
                              "Restore it, or call reset_initialization() and initialize a "
                              "new file.");
        return pl_err_set(err, PL_E_PATH, db->path, "cannot inspect the database file (%s).",
                          strerror(errno));
    }
    if ((unsigned long long)st.st_dev != db->dev || (unsigned long long)st.st_ino != db->ino)
        return pl_err_set(err, PL_E_DATABASE, db->path,
                          "the database file was replaced by another file while PromptLab had "
                          "it open; its connections still point at the old one. Call "
                          "reset_initialization() and initialize it again to use the new file.");
    return 0;
}

pl_conn *pl_database_checkout(pl_database *db, pl_err *err)
{
    pl_conn *c;

    PL_ASSERT_NO_GIL();
    if (check_identity(db, err) < 0)
        return NULL;

    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    /* A database forgotten by reset_initialization() before fork() is not
     * reached by the fork handlers: skip connections inherited that way. */
    while ((c = db->idle) != NULL) {
        db->idle = c->next;
        db->n_idle--;
        atomic_fetch_sub(&idle_total, 1);
        c->next = NULL;
        if (c->fork_gen == pl_fork_generation())
            break;
    }
    pl_mutex_unlock(&db->lock);
    if (c != NULL)
        return c;
    return pl_conn_open(db->path, 0, err);
}

void pl_database_checkin(pl_database *db, pl_conn *c)
{
    if (c == NULL)
        return;
    if (c->fork_gen != pl_fork_generation())
        return; /* inherited from the parent: abandoned, never used or closed */
    pl_conn_rollback_quietly(c);
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    c = pool_push_locked(db, c);
    pl_mutex_unlock(&db->lock);
    pl_conn_close(c);
    if (atomic_load(&idle_total) > pl_settings_max_idle())
        pl_registry_trim_idle(pl_settings_max_idle());
}

int pl_database_check_before_write(pl_database *db, pl_conn *c, pl_err *err)
{
    int rc;

    if (atomic_load_explicit(&db->checked, memory_order_acquire))
        return 0;
    c->deadline_ns = 0; /* the check is not the caller's statement: no time limit */
    rc = pl_check_not_damaged(c, err);
    pl_conn_start_clock(c); /* the statement's own limit starts now */
    if (rc < 0)
        return -1;
    atomic_store_explicit(&db->checked, 1, memory_order_release);
    return 0;
}

int pl_database_set_first_admin_password(pl_database *db, const char *password, int *set,
                                         pl_err *err)
{
    char hashed[PL_HASH_MAX];
    pl_conn *c;
    int rc = -1;

    PL_ASSERT_NO_GIL();
    *set = 0;
    /* Slow: hashed before a connection or the write lock is taken. */
    if (pl_password_hash(password, pl_password_rounds(), hashed, err) < 0)
        return -1;
    c = pl_database_checkout(db, err);
    if (c == NULL)
        goto done;
    if (pl_database_check_before_write(db, c, err) == 0)
        rc = pl_initialize_write_admin(c, hashed, 0, set, err);
    pl_database_checkin(db, c);
done:
    explicit_bzero(hashed, sizeof hashed);
    return rc;
}

int pl_database_idle_total(void)
{
    return atomic_load(&idle_total);
}

unsigned long long pl_database_oldest_idle(pl_database *db)
{
    unsigned long long oldest = ULLONG_MAX;
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    for (pl_conn *c = db->idle; c != NULL; c = c->next) /* newest first: the tail is oldest */
        if (c->next == NULL)
            oldest = c->idle_since;
    pl_mutex_unlock(&db->lock);
    return oldest;
}

pl_conn *pl_database_take_oldest_idle(pl_database *db)
{
    pl_conn **link, *c = NULL;
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    for (link = &db->idle; *link != NULL; link = &(*link)->next) {
        if ((*link)->next == NULL) {
            c = *link;
            *link = NULL;
            db->n_idle--;
            atomic_fetch_sub(&idle_total, 1);
            break;
        }
    }
    pl_mutex_unlock(&db->lock);
    return c;
}

void pl_database_lock_for_fork(pl_database *db)
{
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
}

void pl_database_forget(pl_database *db)
{
    pl_conn *idle, *anchor;

    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    db->forgotten = 1;
    idle = take_idle_locked(db);
    anchor = db->anchor;
    db->anchor = NULL;
    pl_mutex_unlock(&db->lock);
    close_all(idle);
    close_all(anchor);
}

void pl_database_close_idle_locked(pl_database *db)
{
    close_all(take_idle_locked(db));
}

pl_conn *pl_database_take_idle(pl_database *db)
{
    pl_conn *idle;
    pl_mutex_lock(&db->lock, PL_LOCK_DATABASE);
    idle = take_idle_locked(db);
    pl_mutex_unlock(&db->lock);
    return idle;
}

void pl_database_close_list(pl_conn *list)
{
    close_all(list);
}

void pl_database_unlock_after_fork(pl_database *db)
{
    pl_mutex_unlock(&db->lock);
}

void pl_database_reinit_in_child(pl_database *db)
{
    /* The forking thread took this lock before fork() and is the child's only
     * thread: it unlocks it. Threads that waited on the condition variable do
     * not exist here, so it starts afresh. Connections are not inherited, and
     * an unfinished initialization is redone by whoever asks next. */
    atomic_fetch_sub(&idle_total, db->n_idle); /* abandoned, never closed here */
    db->anchor = NULL;
    db->idle = NULL;
    db->n_idle = 0;
    if (atomic_load(&db->state) == PL_DB_INITIALIZING)
        atomic_store(&db->state, PL_DB_NEW);
    pthread_cond_init(&db->cond, NULL);
    pl_mutex_unlock(&db->lock);
}
