/* lockorder.h: every lock of the C core, the order they nest in, and the
 * debug checks that hold the code to it.
 *
 * The order. A thread may take a lock only while every lock it already holds
 * comes earlier in this list (several database locks are held at once only
 * by the fork handler, in registry order):
 *
 *   1. PL_LOCK_SESSION   a Session's mutex (session.c): held across that
 *                        session's SQLite calls, so it comes first
 *   2. PL_LOCK_CHAIN     the loaded migration chain (initialize.c)
 *   3. PL_LOCK_REGISTRY  the registry of databases (registry.c)
 *   4. PL_LOCK_DATABASE  one database's state and pool (database.c)
 *   5. PL_LOCK_LIVE      every open connection, for fork (conn.c)
 *      (SQLite's static mutexes, taken only by the fork handler, here)
 *   6. PL_LOCK_BUFPOOL   reusable result buffers (bufpool.c), a leaf
 *   7. PL_LOCK_SETTINGS  the PROMPTLAB_* settings (settings.c), a leaf
 *
 * The fork handler (fork.c) takes 2 to 7 in this order before fork() and
 * releases them after. Two rules span the GIL, which is not in the list:
 * never wait for any of these locks while holding the GIL, and never call
 * into Python while holding one. Engine functions that may block or touch
 * the disk assert that the GIL is not held (PL_ASSERT_NO_GIL).
 *
 * Checks. In builds without NDEBUG (PROMPTLAB_DEBUG=1 and the sanitizer
 * builds), each thread records the locks it holds: taking a lock out of
 * order, or twice, fails an assertion, and "Requires: X held" in a contract
 * is `assert(pl_lock_held(&X))`. In release builds all of it compiles away.
 */
#ifndef PL_LOCKORDER_H
#define PL_LOCKORDER_H

#include <assert.h>
#include <pthread.h>

enum {
    PL_LOCK_SESSION = 1,
    PL_LOCK_CHAIN,
    PL_LOCK_REGISTRY,
    PL_LOCK_DATABASE,
    PL_LOCK_LIVE,
    PL_LOCK_BUFPOOL,
    PL_LOCK_SETTINGS,
};

/* Set by the binding at import: 1 when the calling thread holds the GIL.
 * The engine cannot include Python.h; this hook is how it asks. */
extern int (*pl_gil_held_hook)(void);

#ifdef NDEBUG
#define PL_LOCK_ACQUIRED(lock, rank) ((void)0)
#define PL_LOCK_RELEASED(lock) ((void)0)
#define PL_ASSERT_NO_GIL() ((void)0)
#else
/* Record that this thread took `lock` (of `rank`); asserts the order. */
void pl_lock_acquired(const void *lock, int rank);
/* Record that this thread let go of `lock`; asserts that it held it. */
void pl_lock_released(const void *lock);
#define PL_LOCK_ACQUIRED(lock, rank) pl_lock_acquired((lock), (rank))
#define PL_LOCK_RELEASED(lock) pl_lock_released(lock)
#define PL_ASSERT_NO_GIL() assert(pl_gil_held_hook == NULL || !pl_gil_held_hook())
#endif

/* For tests of debug builds: break rule `which` on purpose, so that the check
 * fails and the process aborts ("order": two locks out of order; "gil": an
 * engine assertion reached with the GIL held, which the caller holds).
 * Returns -1 for an unknown rule, and 0 in release builds (no checks). */
int pl_lock_check_self_test(const char *which);

/* 1 when this thread holds `lock` (debug builds); always 1 in release builds,
 * where it is only used inside assert(). */
int pl_lock_held(const void *lock);

/* pthread_mutex_lock/unlock with the debug record. */
static inline void pl_mutex_lock(pthread_mutex_t *m, int rank)
{
    pthread_mutex_lock(m);
    PL_LOCK_ACQUIRED(m, rank);
}

static inline int pl_mutex_trylock(pthread_mutex_t *m, int rank)
{
    int rc = pthread_mutex_trylock(m);
    if (rc == 0)
        PL_LOCK_ACQUIRED(m, rank);
    (void)rank;
    return rc;
}

static inline void pl_mutex_unlock(pthread_mutex_t *m)
{
    PL_LOCK_RELEASED(m);
    pthread_mutex_unlock(m);
}

#endif
