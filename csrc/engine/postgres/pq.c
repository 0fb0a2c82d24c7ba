/* pq.c: loading libpq on first use (pq.h). */
#define PL_PQ_LOADER
#include "pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

pl_pq_api pl_pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512]; /* "" when loaded */

/* The soname of libpq 10 and later (the client library's ABI is stable). */
#define LIBPQ_SONAME "libpq.so.5"

static void load(void)
{
    void *lib = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        snprintf(failure, sizeof failure, "%s", dlerror());
        return;
    }
#define LOAD(name)                                                                                 \
    if ((*(void **)&pl_pq.name = dlsym(lib, #name)) == NULL) {                                     \
        snprintf(failure, sizeof failure, "%s has no %s", LIBPQ_SONAME, #name);                    \
        return;                                                                                    \
    }
    PL_PQ_FUNCTIONS(LOAD)
#undef LOAD
}

int pl_pq_load(pl_err *err)
{
    pthread_once(&once, load);
    if (failure[0] == '\0')
        return 0;
    return pl_err_set(err, PL_E_UNAVAILABLE, NULL,
                      "PostgreSQL needs its client library, libpq, which could not be loaded "
                      "(%s); install it (Debian, Ubuntu: apt-get install libpq5).",
                      failure);
}
