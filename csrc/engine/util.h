/* util.h: small helpers shared by engine files (no Python.h). */
#ifndef PL_UTIL_H
#define PL_UTIL_H

#include <stddef.h>
#include <time.h>

/* 64-bit FNV-1a: start from PL_FNV_OFFSET, feed bytes with pl_fnv1a. Used for
 * migration checksums (stored in databases: never change it), the statement
 * cache, the spelling cache and the migration folder's signature. */
#define PL_FNV_OFFSET 1469598103934665603ULL
#define PL_FNV_PRIME 1099511628211ULL

static inline unsigned long long pl_fnv1a(unsigned long long h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * PL_FNV_PRIME;
    return h;
}

/* Mix one whole number into an FNV hash (one step, not byte by byte). */
static inline unsigned long long pl_fnv1a_mix(unsigned long long h, unsigned long long v)
{
    return (h ^ v) * PL_FNV_PRIME;
}

/* Intrusive doubly linked lists (every open connection in conn.c, every live
 * database in registry.c): `head` is the list's first node, `prev` and `next`
 * the names of a node's link fields. The caller holds the list's lock. */
#define PL_DLIST_PUSH(head, node, prev, next)                                                      \
    do {                                                                                           \
        (node)->prev = NULL;                                                                       \
        (node)->next = (head);                                                                     \
        if ((head) != NULL)                                                                        \
            (head)->prev = (node);                                                                 \
        (head) = (node);                                                                           \
    } while (0)

/* Take `node` out of the list (when it is in it) and clear its links. */
#define PL_DLIST_UNLINK(head, node, prev, next)                                                    \
    do {                                                                                           \
        if ((node)->prev != NULL)                                                                  \
            (node)->prev->next = (node)->next;                                                     \
        else if ((head) == (node))                                                                 \
            (head) = (node)->next;                                                                 \
        if ((node)->next != NULL)                                                                  \
            (node)->next->prev = (node)->prev;                                                     \
        (node)->next = (node)->prev = NULL;                                                        \
    } while (0)

/* Sleep for `ms` milliseconds (retry loops that wait out a lock). */
static inline void pl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
