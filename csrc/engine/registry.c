/* registry.c: the list of databases, the spelling cache and the default database. */
#include "registry.h"
#include "alloc.h"
#include "util.h"
#include "lockorder.h"
#include "fork.h"
#include "paths.h"
#include "initialize.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Spellings seen by initialize_database(), so that a repeated call with the
 * same path costs a hash lookup instead of a canonicalization. Entries point at
 * databases owned by the list below. */
#define SPELLING_SLOTS 256

typedef struct {
    unsigned long hash;
    char *spelling;
    pl_database *db;
} spelling_entry;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_database *databases;  /* owned references */
static pl_database *live;       /* every pl_database not yet freed */
static pl_database *default_db; /* borrowed from the list */
static spelling_entry spellings[SPELLING_SLOTS];
static int n_spellings;

static unsigned long hash_str(const char *s)
{
    return (unsigned long)pl_fnv1a(PL_FNV_OFFSET, s, strlen(s));
}

/* The slot holding `s`, or the empty slot where it would go. Requires the lock. */
static spelling_entry *spelling_slot(const char *s, unsigned long h)
{
    assert(pl_lock_held(&registry_lock));
    unsigned i = (unsigned)(h % SPELLING_SLOTS);
    for (;;) {
        spelling_entry *e = &spellings[i];
        if (e->spelling == NULL || (e->hash == h && strcmp(e->spelling, s) == 0))
            return e;
        i = (i + 1) % SPELLING_SLOTS;
    }
}

static void spellings_clear_locked(void)
{
    assert(pl_lock_held(&registry_lock));
    for (int i = 0; i < SPELLING_SLOTS; i++) {
        free(spellings[i].spelling);
        spellings[i].spelling = NULL;
        spellings[i].db = NULL;
    }
    n_spellings = 0;
}

/* Remember that spelling `s` names `db`. Requires the lock; failures to
 * allocate only cost the fast path. */
static void spelling_remember_locked(const char *s, unsigned long h, pl_database *db)
{
    spelling_entry *e;

    assert(pl_lock_held(&registry_lock));
    if (n_spellings >= SPELLING_SLOTS / 2)
        spellings_clear_locked();
    e = spelling_slot(s, h);
    if (e->spelling != NULL) {
        e->db = db;
        return;
    }
    e->spelling = pl_strdup(s);
    if (e->spelling == NULL)
        return;
    e->hash = h;
    e->db = db;
    n_spellings++;
}

int pl_registry_try_ready(const char *abs)
{
    unsigned long h = hash_str(abs);
    int ready = 0;

    if (pl_mutex_trylock(&registry_lock, PL_LOCK_REGISTRY) != 0)
        return -1;
    spelling_entry *e = spelling_slot(abs, h);
    if (e->spelling != NULL && pl_database_is_ready(e->db)) {
        if (default_db == NULL)
            default_db = e->db;
        ready = 1;
    }
    pl_mutex_unlock(&registry_lock);
    return ready;
}

pl_database *pl_registry_get(const char *abs, pl_err *err)
{
    unsigned long h = hash_str(abs);
    pl_database *db = NULL;
    char *canonical;

    PL_ASSERT_NO_GIL();

    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    spelling_entry *e = spelling_slot(abs, h);
    if (e->spelling != NULL) {
        db = e->db;
        pl_database_incref(db);
    }
    pl_mutex_unlock(&registry_lock);
    if (db != NULL)
        return db;

    /* Canonicalizing creates folders and resolves links: no lock held. */
    canonical = pl_path_canonical(abs, err);
    if (canonical == NULL)
        return NULL;

    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    for (db = databases; db != NULL; db = db->next)
        if (strcmp(db->path, canonical) == 0)
            break;
    if (db == NULL) {
        db = pl_database_new(canonical);
        if (db == NULL) {
            pl_mutex_unlock(&registry_lock);
            free(canonical);
            pl_err_set(err, PL_E_NOMEM, abs, "out of memory registering the database");
            return NULL;
        }
        db->next = databases;
        databases = db;
        PL_DLIST_PUSH(live, db, live_prev, live_next);
    }
    spelling_remember_locked(abs, h, db);
    pl_database_incref(db);
    pl_mutex_unlock(&registry_lock);
    free(canonical);
    return db;
}

void pl_registry_offer_default(pl_database *db)
{
    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    if (default_db == NULL) {
        /* Only a registered database may become the default: after a reset a
         * session may still hold a forgotten one. */
        for (pl_database *d = databases; d != NULL; d = d->next)
            if (d == db)
                default_db = db;
    }
    pl_mutex_unlock(&registry_lock);
}

int pl_registry_default_ready(void)
{
    int ready;
    pl_mutex_lock(&registry_lock,
                  PL_LOCK_REGISTRY); /* held only for short, non-blocking sections */
    ready = default_db != NULL && pl_database_is_ready(default_db);
    pl_mutex_unlock(&registry_lock);
    return ready;
}

pl_database *pl_registry_default(void)
{
    pl_database *db;

    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    db = default_db;
    if (db != NULL)
        pl_database_incref(db);
    pl_mutex_unlock(&registry_lock);
    return db;
}

void pl_registry_reset(void)
{
    pl_database *list;

    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    list = databases;
    databases = NULL;
    default_db = NULL;
    spellings_clear_locked();
    pl_mutex_unlock(&registry_lock);
    pl_initialize_forget_chain();
    /* Closing connections touches the disk: done unlocked. */
    while (list != NULL) {
        pl_database *next = list->next;
        pl_database_forget(list);
        pl_database_decref(list);
        list = next;
    }
}

void pl_registry_unlink_live(pl_database *db)
{
    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    PL_DLIST_UNLINK(live, db, live_prev, live_next);
    pl_mutex_unlock(&registry_lock);
}

void pl_registry_trim_idle(int max)
{
    while (pl_database_idle_total() > max) {
        pl_database *oldest_db = NULL;
        unsigned long long oldest = ULLONG_MAX;
        pl_conn *c = NULL;

        pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
        for (pl_database *db = live; db != NULL; db = db->live_next) {
            unsigned long long stamp = pl_database_oldest_idle(db);
            if (stamp < oldest) {
                oldest = stamp;
                oldest_db = db;
            }
        }
        if (oldest_db != NULL)
            c = pl_database_take_oldest_idle(oldest_db);
        pl_mutex_unlock(&registry_lock);
        if (c == NULL)
            return; /* nothing left to close (the rest is in use) */
        pl_database_close_list(c);
    }
}

void pl_registry_close_idle(void)
{
    pl_conn *all = NULL;

    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    for (pl_database *db = live; db != NULL; db = db->live_next) {
        pl_conn *idle = pl_database_take_idle(db);
        while (idle != NULL) {
            pl_conn *next = idle->next;
            idle->next = all;
            all = idle;
            idle = next;
        }
    }
    pl_mutex_unlock(&registry_lock);
    pl_database_close_list(all); /* closing touches the disk: no lock held */
}

void pl_registry_lock_all(void)
{
    pl_initialize_lock_for_fork();
    pl_mutex_lock(&registry_lock, PL_LOCK_REGISTRY);
    for (pl_database *db = live; db != NULL; db = db->live_next) {
        pl_database_lock_for_fork(db);
        pl_database_close_idle_locked(db);
    }
}

void pl_registry_unlock_all(void)
{
    for (pl_database *db = live; db != NULL; db = db->live_next)
        pl_database_unlock_after_fork(db);
    pl_mutex_unlock(&registry_lock);
    pl_initialize_unlock_after_fork();
}

void pl_registry_reinit_in_child(void)
{
    for (pl_database *db = live; db != NULL; db = db->live_next)
        pl_database_reinit_in_child(db);
    pl_mutex_unlock(&registry_lock);
    pl_initialize_reinit_in_child();
}
