/* alloc.h: the engine's allocation wrapper, with fault injection in debug builds.
 *
 * Engine code allocates through pl_malloc, pl_calloc, pl_realloc and
 * pl_strdup, and frees with free(). In release builds (NDEBUG) they are the C
 * library's functions. In builds with assertions (PROMPTLAB_DEBUG=1, the
 * sanitizer builds) a test can make the n-th allocation from now fail
 * (pl_alloc_fail_after), so that the `goto fail` paths behind every
 * allocation run in tests (tests/test_fault_injection.py), as apsw does.
 * SQLite's own allocations and the binding's PyMem ones are not counted.
 */
#ifndef PL_ALLOC_H
#define PL_ALLOC_H

#include <stdlib.h>
#include <string.h>

#ifdef NDEBUG
#define PL_ALLOC_FAULTS 0
#else
#define PL_ALLOC_FAULTS 1
#endif

#if PL_ALLOC_FAULTS
/* 1 when this allocation is the one chosen to fail (and counts it). */
int pl_alloc_should_fail(void);

/* Make the n-th wrapped allocation from now fail (n >= 1; once), or disarm
 * with n = 0. Returns the number of wrapped allocations made since the
 * previous call. Process-wide: meant for single-threaded tests. */
long pl_alloc_fail_after(long n);
#else
static inline int pl_alloc_should_fail(void)
{
    return 0;
}
#endif

static inline void *pl_malloc(size_t n)
{
    return pl_alloc_should_fail() ? NULL : malloc(n);
}

static inline void *pl_calloc(size_t count, size_t size)
{
    return pl_alloc_should_fail() ? NULL : calloc(count, size);
}

static inline void *pl_realloc(void *p, size_t n)
{
    return pl_alloc_should_fail() ? NULL : realloc(p, n);
}

static inline char *pl_strdup(const char *s)
{
    return pl_alloc_should_fail() ? NULL : strdup(s);
}

#endif
