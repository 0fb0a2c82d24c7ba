/* bufpool.c: the reuse pool of large buffers (see bufpool.h). */
#include "bufpool.h"
#include "alloc.h"
#include "lockorder.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 8

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *block;
    size_t cap;
} slots[SLOTS];
static size_t pooled_bytes;

/* The smallest pooled block of at least `need` bytes, taken out of the pool. */
static void *take(size_t need, size_t *cap)
{
    int best = -1;
    void *block = NULL;

    pl_mutex_lock(&pool_lock, PL_LOCK_BUFPOOL);
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].block != NULL && slots[i].cap >= need &&
            (best < 0 || slots[i].cap < slots[best].cap))
            best = i;
    if (best >= 0) {
        block = slots[best].block;
        *cap = slots[best].cap;
        pooled_bytes -= slots[best].cap;
        slots[best].block = NULL;
        slots[best].cap = 0;
    }
    pl_mutex_unlock(&pool_lock);
    return block;
}

int pl_buf_grow(void **block, size_t *cap, size_t used, size_t need, size_t first)
{
    size_t new_cap = *cap ? *cap : first;

    if (need <= *cap)
        return 0;
    while (new_cap < need && new_cap <= SIZE_MAX / 2)
        new_cap *= 2;
    if (new_cap < need) /* doubling would overflow */
        new_cap = need;
    if (new_cap >= PL_BUFPOOL_MIN_BLOCK) {
        size_t pooled_cap;
        void *pooled = take(need, &pooled_cap);
        if (pooled != NULL) {
            if (used > 0)
                memcpy(pooled, *block, used);
            pl_buf_release(*block, *cap);
            *block = pooled;
            *cap = pooled_cap;
            return 0;
        }
    }
    void *grown = pl_realloc(*block, new_cap);
    if (grown == NULL)
        return -1;
    *block = grown;
    *cap = new_cap;
    return 0;
}

void pl_buf_release(void *block, size_t cap)
{
    if (block == NULL)
        return;
    if (cap >= PL_BUFPOOL_MIN_BLOCK && cap <= PL_BUFPOOL_MAX_BYTES) {
        pl_mutex_lock(&pool_lock, PL_LOCK_BUFPOOL);
        /* Room for it, if need be by dropping smaller blocks (larger ones
         * serve more queries). */
        while (pooled_bytes + cap > PL_BUFPOOL_MAX_BYTES) {
            int smallest = -1;
            for (int i = 0; i < SLOTS; i++)
                if (slots[i].block != NULL && slots[i].cap < cap &&
                    (smallest < 0 || slots[i].cap < slots[smallest].cap))
                    smallest = i;
            if (smallest < 0)
                break;
            free(slots[smallest].block);
            pooled_bytes -= slots[smallest].cap;
            slots[smallest].block = NULL;
            slots[smallest].cap = 0;
        }
        for (int i = 0; i < SLOTS && pooled_bytes + cap <= PL_BUFPOOL_MAX_BYTES; i++) {
            if (slots[i].block == NULL) {
                slots[i].block = block;
                slots[i].cap = cap;
                pooled_bytes += cap;
                block = NULL;
                break;
            }
        }
        pl_mutex_unlock(&pool_lock);
    }
    free(block);
}

void pl_bufpool_lock_for_fork(void)
{
    pl_mutex_lock(&pool_lock, PL_LOCK_BUFPOOL);
}

void pl_bufpool_unlock_after_fork(void)
{
    pl_mutex_unlock(&pool_lock);
}
