/* lockorder.c: the per-thread record of held locks behind lockorder.h. */
#include "lockorder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int (*pl_gil_held_hook)(void);

#ifdef NDEBUG

int pl_lock_held(const void *lock)
{
    (void)lock;
    return 1;
}

int pl_lock_check_self_test(const char *which)
{
    return strcmp(which, "order") == 0 || strcmp(which, "gil") == 0 ? 0 : -1;
}

#else

/* The locks this thread holds, in a heap block per thread (pthread key), not
 * in _Thread_local storage: the module is dlopen'ed, so its thread-local
 * block is freed by whichever thread next needs it, and ThreadSanitizer sees
 * that free race with the dead thread's last write (Python threads are never
 * joined). A key's destructor frees the block in the exiting thread itself. */
typedef struct {
    int n, cap;
    struct held_lock {
        const void *lock;
        int rank;
    } * locks;
} held_set;

static pthread_key_t held_key;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;

static void free_held(void *p)
{
    held_set *h = p;
    free(h->locks);
    free(h);
}

static void make_key(void)
{
    if (pthread_key_create(&held_key, free_held) != 0)
        abort();
}

static held_set *mine(void)
{
    held_set *h;

    pthread_once(&held_once, make_key);
    h = pthread_getspecific(held_key);
    if (h == NULL) {
        h = calloc(1, sizeof *h);
        if (h == NULL || pthread_setspecific(held_key, h) != 0)
            abort();
    }
    return h;
}

static void lock_order_failure(const char *what, const void *lock, int rank)
{
    held_set *h = mine();
    fprintf(stderr,
            "promptlab: lock order violation: %s (lock %p, rank %d; %d held, top rank %d)\n", what,
            lock, rank, h->n, h->n > 0 ? h->locks[h->n - 1].rank : 0);
    abort();
}

void pl_lock_acquired(const void *lock, int rank)
{
    held_set *h = mine();

    for (int i = 0; i < h->n; i++) {
        if (h->locks[i].lock == lock)
            lock_order_failure("a lock taken twice by one thread", lock, rank);
        if (h->locks[i].rank > rank)
            lock_order_failure("a lock taken after one that comes later in lockorder.h", lock,
                               rank);
    }
    if (h->n == h->cap) { /* the fork handler holds every database's lock at once */
        int cap = h->cap ? h->cap * 2 : 16;
        struct held_lock *grown = realloc(h->locks, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            lock_order_failure("out of memory recording a lock", lock, rank);
        h->locks = grown;
        h->cap = cap;
    }
    h->locks[h->n].lock = lock;
    h->locks[h->n].rank = rank;
    h->n++;
}

void pl_lock_released(const void *lock)
{
    held_set *h = mine();

    for (int i = h->n - 1; i >= 0; i--) {
        if (h->locks[i].lock == lock) {
            h->locks[i] = h->locks[h->n - 1]; /* the order of release is free */
            h->n--;
            return;
        }
    }
    lock_order_failure("a lock released that this thread does not hold", lock, 0);
}

int pl_lock_held(const void *lock)
{
    held_set *h = mine();

    for (int i = 0; i < h->n; i++)
        if (h->locks[i].lock == lock)
            return 1;
    return 0;
}

int pl_lock_check_self_test(const char *which)
{
    static pthread_mutex_t late = PTHREAD_MUTEX_INITIALIZER, early = PTHREAD_MUTEX_INITIALIZER;

    if (strcmp(which, "order") == 0) {
        pl_mutex_lock(&late, PL_LOCK_SETTINGS);
        pl_mutex_lock(&early, PL_LOCK_REGISTRY); /* aborts */
        pl_mutex_unlock(&early);
        pl_mutex_unlock(&late);
        return 0;
    }
    if (strcmp(which, "gil") == 0) {
        PL_ASSERT_NO_GIL(); /* aborts: the binding calls this with the GIL held */
        return 0;
    }
    return -1;
}

#endif
