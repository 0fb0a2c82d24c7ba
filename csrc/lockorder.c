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

/* Deep enough for the fork handler, which holds every database lock. */
#define MAX_HELD 4096

static _Thread_local struct {
    const void *lock;
    int rank;
} held[MAX_HELD];
static _Thread_local int n_held;

static void lock_order_failure(const char *what, const void *lock, int rank)
{
    fprintf(stderr,
            "promptlab: lock order violation: %s (lock %p, rank %d; %d held, top rank %d)\n", what,
            lock, rank, n_held, n_held > 0 ? held[n_held - 1].rank : 0);
    abort();
}

void pl_lock_acquired(const void *lock, int rank)
{
    for (int i = 0; i < n_held; i++) {
        if (held[i].lock == lock)
            lock_order_failure("a lock taken twice by one thread", lock, rank);
        if (held[i].rank > rank)
            lock_order_failure("a lock taken after one that comes later in lockorder.h", lock,
                               rank);
    }
    if (n_held >= MAX_HELD)
        lock_order_failure("too many locks held", lock, rank);
    held[n_held].lock = lock;
    held[n_held].rank = rank;
    n_held++;
}

void pl_lock_released(const void *lock)
{
    for (int i = n_held - 1; i >= 0; i--) {
        if (held[i].lock == lock) {
            held[i] = held[n_held - 1]; /* order of release is free */
            n_held--;
            return;
        }
    }
    lock_order_failure("a lock released that this thread does not hold", lock, 0);
}

int pl_lock_held(const void *lock)
{
    for (int i = 0; i < n_held; i++)
        if (held[i].lock == lock)
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
