/* fork.c: the fork generation counter and the pthread_atfork handlers. */
#include "fork.h"
#include "registry.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong fork_generation;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_result;

unsigned long pl_fork_generation(void)
{
    return atomic_load_explicit(&fork_generation, memory_order_acquire);
}

/* Paths the child must not open (see pl_fork_taint). Appended to only while
 * the process has one thread; read without a lock afterwards. */
#define MAX_TAINTED 64
static char *tainted[MAX_TAINTED];
static atomic_int n_tainted;

void pl_fork_taint(const char *path)
{
    int n = atomic_load(&n_tainted);
    if (pl_fork_is_tainted(path) || n >= MAX_TAINTED)
        return;
    tainted[n] = strdup(path);
    if (tainted[n] != NULL)
        atomic_store(&n_tainted, n + 1);
}

int pl_fork_is_tainted(const char *path)
{
    int n = atomic_load(&n_tainted);
    for (int i = 0; i < n; i++)
        if (strcmp(tainted[i], path) == 0)
            return 1;
    return 0;
}

/* SQLite's process-wide mutexes, held across fork() so that no other thread
 * is inside an allocation, a file open/close or the PRNG at that instant
 * (the child's copy of such a mutex would stay locked forever). The order is
 * the one SQLite itself nests them in: sqlite3_randomness() holds PRNG and
 * then takes MAIN (sqlite3_vfs_find); MAIN is held around initialization that
 * allocates (MEM); the unix VFS lock (VFS1) is taken after the PRNG in
 * unixOpen and allocates under itself (MEM). MEM is innermost. Taking them
 * in another order can deadlock against a thread inside SQLite (ThreadSanitizer
 * reported PRNG -> MAIN against MAIN -> PRNG). */
static const int SQLITE_STATIC_LOCKS[] = {SQLITE_MUTEX_STATIC_PRNG, SQLITE_MUTEX_STATIC_MAIN,
                                          SQLITE_MUTEX_STATIC_VFS1, SQLITE_MUTEX_STATIC_MEM};
#define N_SQLITE_LOCKS (sizeof SQLITE_STATIC_LOCKS / sizeof SQLITE_STATIC_LOCKS[0])

static void sqlite_locks_enter(void)
{
    for (size_t i = 0; i < N_SQLITE_LOCKS; i++)
        sqlite3_mutex_enter(sqlite3_mutex_alloc(SQLITE_STATIC_LOCKS[i]));
}

static void sqlite_locks_leave(void)
{
    for (size_t i = N_SQLITE_LOCKS; i-- > 0;)
        sqlite3_mutex_leave(sqlite3_mutex_alloc(SQLITE_STATIC_LOCKS[i]));
}

/* Before fork(): take our locks, close idle connections (so the child inherits
 * no SQLite file state), then hold SQLite's own global mutexes. */
static void before_fork(void)
{
    pl_registry_lock_all();
    sqlite_locks_enter();
}

static void after_fork_parent(void)
{
    sqlite_locks_leave();
    pl_registry_unlock_all();
}

static void after_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_acq_rel);
    sqlite_locks_leave();
    pl_registry_reinit_in_child();
}

static void install(void)
{
    install_result = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int pl_fork_install(void)
{
    pthread_once(&install_once, install);
    return install_result;
}
