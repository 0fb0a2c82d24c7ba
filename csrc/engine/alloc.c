/* alloc.c: the countdown behind pl_alloc_should_fail (builds with assertions). */
#include "alloc.h"

#if PL_ALLOC_FAULTS
#include <stdatomic.h>

static atomic_long countdown; /* 0: disarmed; else allocations until the failing one */
static atomic_long counted;   /* wrapped allocations since the last pl_alloc_fail_after */

int pl_alloc_should_fail(void)
{
    long left;

    atomic_fetch_add(&counted, 1);
    left = atomic_load(&countdown);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&countdown, &left, left - 1))
            return left == 1;
    }
    return 0;
}

long pl_alloc_fail_after(long n)
{
    atomic_store(&countdown, n > 0 ? n : 0);
    return atomic_exchange(&counted, 0);
}
#else
/* Release builds: nothing to count (ISO C wants a declaration here). */
typedef int pl_alloc_unused;
#endif
