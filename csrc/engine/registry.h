/* registry.h: the databases of this process, keyed by canonical path.
 *
 * The registry is process-wide C state: a database file is a process resource,
 * and the fork handlers must reach every database. It holds no Python objects.
 * One mutex guards the list, the spelling cache and the default database; it is
 * held only for short sections that never block, call SQLite, or call Python.
 */
#ifndef PL_REGISTRY_H
#define PL_REGISTRY_H

#include "database.h"
#include "error.h"

/* Fast path for an absolute spelling already seen: when its database is ready,
 * make it the default if there is none and return 1. Returns 0 when the
 * spelling is unknown or its database not ready, and -1 when the registry lock
 * is busy. Never blocks, so it may run while holding the GIL. */
int pl_registry_try_ready(const char *abs);

/* The database named by absolute spelling `abs`, canonicalized (creating
 * missing folders) and registered on first sight; a new reference, or NULL
 * with `err` set. GIL released. */
pl_database *pl_registry_get(const char *abs, pl_err *err);

/* Make `db` the default database unless one is set. */
void pl_registry_offer_default(pl_database *db);

/* 1 when there is a default database and it is ready. Never blocks for long
 * and takes no reference, so it may run while holding the GIL. */
int pl_registry_default_ready(void);

/* The default database (a new reference), or NULL before any initialization. */
pl_database *pl_registry_default(void);

/* Forget every database and the default; open sessions keep theirs. GIL released. */
void pl_registry_reset(void);

/* Remove a database whose last reference is gone from the live list. */
void pl_registry_unlink_live(pl_database *db);

/* Close every idle pooled connection of the process (disk I/O: GIL released).
 * Called before os.fork() so that the fork handler has little left to close. */
void pl_registry_close_idle(void);

/* Close least recently used idle connections, over all databases, until the
 * process keeps at most `max` (PROMPTLAB_MAX_IDLE_CONNECTIONS): a process that
 * touches many files does not keep three descriptors open for each. Disk I/O:
 * GIL released, no lock held. */
void pl_registry_trim_idle(int max);

/* Fork handlers (see fork.c): lock_all takes every lock and closes the idle
 * connections of every live database, registered or forgotten. */
void pl_registry_lock_all(void);
void pl_registry_unlock_all(void);
void pl_registry_reinit_in_child(void);

#endif
