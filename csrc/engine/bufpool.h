/* bufpool.h: large buffers kept for reuse from one query to the next.
 *
 * Reading 10,000 rows copies about 7 MB into result buffers (rowbuf.c). Blocks
 * that large come from mmap() in malloc and go back to the system on free(),
 * so each query touched fresh pages: about 1,700 page faults per
 * get_experiments() call, a third of its time. Freed blocks of at least
 * PL_BUFPOOL_MIN_BLOCK bytes are kept here instead, up to PL_BUFPOOL_MAX_BYTES
 * in all, and handed to the next buffer that grows that large. Thread-safe;
 * callable without the GIL.
 */
#ifndef PL_BUFPOOL_H
#define PL_BUFPOOL_H

#include <stddef.h>

#define PL_BUFPOOL_MIN_BLOCK ((size_t)256 * 1024)
#define PL_BUFPOOL_MAX_BYTES ((size_t)16 * 1024 * 1024)

/* Grow `*block` (capacity `*cap` bytes, of which the first `used` are kept) to
 * at least `need` bytes: a pooled block when one is large enough, else
 * realloc() to twice the capacity (at least `need`, at least `first` bytes).
 * Returns 0, or -1 (out of memory) with `*block` and `*cap` unchanged. */
int pl_buf_grow(void **block, size_t *cap, size_t used, size_t need, size_t first);

/* Give a block back (NULL is ignored): kept for reuse, or freed. */
void pl_buf_release(void *block, size_t cap);

/* fork(): the pool lock is held across it (taken last: no other lock is
 * taken while it is held) and released on both sides. */
void pl_bufpool_lock_for_fork(void);
void pl_bufpool_unlock_after_fork(void);

#endif
