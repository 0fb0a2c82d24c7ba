/* fork.h: noticing fork() so that a child never uses its parent's connections.
 *
 * SQLite connections must not cross fork(): the child's copy shares file
 * descriptors and lock state with the parent. Each connection records the fork
 * generation it was opened in; after fork() the child's generation differs and
 * its inherited connections are abandoned (never used, never closed).
 */
#ifndef PL_FORK_H
#define PL_FORK_H

/* The number of fork() calls this process descends from (0 in the original). */
unsigned long pl_fork_generation(void);

/* Mark the file (device, inode) as unusable in this process: a connection to
 * it was open in the parent when it forked, so SQLite's inherited lock
 * bookkeeping for the file is wrong here. Called only from the child's atfork
 * handler, when this process has a single thread. */
void pl_fork_taint(unsigned long long dev, unsigned long long ino);

/* 1 when the file was tainted by a fork (this process or an ancestor). */
int pl_fork_is_tainted(unsigned long long dev, unsigned long long ino);

/* Register the pthread_atfork handlers once per process. Returns 0 or an errno. */
int pl_fork_install(void);

#endif
