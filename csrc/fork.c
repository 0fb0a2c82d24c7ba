/* fork.c: the fork generation counter and the pthread_atfork handlers. */
#include "fork.h"
#include "registry.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_ulong fork_generation;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_result;

unsigned long pl_fork_generation(void)
{
    return atomic_load_explicit(&fork_generation, memory_order_acquire);
}

/* Take every registry lock before fork() so that the child does not inherit a
 * lock held by a thread that does not exist there. */
static void before_fork(void)
{
    pl_registry_lock_all();
}

static void after_fork_parent(void)
{
    pl_registry_unlock_all();
}

static void after_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_acq_rel);
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
