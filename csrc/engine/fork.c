/* fork.c: the fork generation counter and the pthread_atfork handlers. */
#include "fork.h"
#include "alloc.h"
#include "bufpool.h"
#include "conn.h"
#include "registry.h"
#include "settings.h"

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

/* Files the child must not open (see pl_fork_taint). Grown only in a
 * child's atfork handler, while the process has one thread, and read without
 * a lock afterwards; the old array is never freed (a reader in a grandchild's
 * parent may not exist, but the array is tiny and kept for simplicity). When
 * it cannot grow, every file that existed at the fork is refused: refusing
 * too much is safe, missing one is not. */
typedef struct {
    unsigned long long dev, ino;
} file_id;
static file_id *tainted;
static int n_tainted, cap_tainted;
static int taint_everything;

void pl_fork_taint(unsigned long long dev, unsigned long long ino)
{
    if (pl_fork_is_tainted(dev, ino))
        return;
    if (n_tainted == cap_tainted) {
        int cap = cap_tainted ? cap_tainted * 2 : 64;
        file_id *grown = pl_malloc((size_t)cap * sizeof *grown);
        if (grown == NULL) {
            taint_everything = 1;
            return;
        }
        if (n_tainted > 0)
            memcpy(grown, tainted, (size_t)n_tainted * sizeof *grown);
        tainted = grown; /* the old array leaks: see above */
        cap_tainted = cap;
    }
    tainted[n_tainted].dev = dev;
    tainted[n_tainted].ino = ino;
    n_tainted++;
}

int pl_fork_is_tainted(unsigned long long dev, unsigned long long ino)
{
    if (taint_everything)
        return 1;
    for (int i = 0; i < n_tainted; i++)
        if (tainted[i].dev == dev && tainted[i].ino == ino)
            return 1;
    return 0;
}

/* SQLite's process-wide mutexes, held across fork() so that no other thread
 * is inside an allocation, a file open/close, temp-file naming or the PRNG at
 * that instant (the child's copy of such a mutex would stay locked forever).
 * They are taken in the order SQLite itself nests them (checked against the
 * disassembly of SQLite 3.40.1): temp-file naming holds VFS1 and then takes
 * the PRNG; sqlite3_randomness() holds the PRNG and then takes MAIN
 * (sqlite3_vfs_find); MAIN is held around initialization that allocates
 * (MEM); MEM is innermost of those. The page cache's two come last, as
 * leaves: pcache1 takes PMEM around its memory counters on every page buffer
 * allocation and free, and lets its group mutex (LRU) go before it allocates.
 * A child once hung, under load, in sqlite3_open_v2 -> sqlite3PagerSetPagesize
 * -> a locked mutex (gdb; libsqlite3 has no symbols here): the page buffer
 * allocation on that path takes PMEM, which was not held across fork then.
 * Another order can deadlock against a thread inside SQLite: ThreadSanitizer
 * caught PRNG/MAIN, a review caught VFS1/PRNG. */
static const int SQLITE_STATIC_LOCKS[] = {SQLITE_MUTEX_STATIC_VFS1, SQLITE_MUTEX_STATIC_PRNG,
                                          SQLITE_MUTEX_STATIC_MAIN, SQLITE_MUTEX_STATIC_MEM,
                                          SQLITE_MUTEX_STATIC_LRU,  SQLITE_MUTEX_STATIC_PMEM};
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
    pl_registry_lock_all(); /* also closes idle pooled connections */
    pl_conn_lock_live();
    sqlite_locks_enter();
    pl_bufpool_lock_for_fork();
    pl_settings_lock_for_fork();
}

static void after_fork_parent(void)
{
    pl_settings_unlock_after_fork();
    pl_bufpool_unlock_after_fork();
    sqlite_locks_leave();
    pl_conn_unlock_live();
    pl_registry_unlock_all();
}

static void after_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_acq_rel);
    pl_settings_unlock_after_fork();
    pl_bufpool_unlock_after_fork();
    sqlite_locks_leave();
    pl_conn_taint_live_in_child();
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
