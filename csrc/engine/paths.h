/* paths.h: turning a user's spelling of a database path into one canonical path. */
#ifndef PL_PATHS_H
#define PL_PATHS_H

#include <stddef.h>
#include "error.h"

/* ":memory:" names the process's one in-memory database (as it did through
 * SQLAlchemy): shared by all its sessions, gone when the process ends or
 * forgets it (reset_initialization). It is opened as a shared memdb. */
#define PL_MEMORY_PATH ":memory:"
#define PL_MEMORY_URI "file:/promptlab-memory?vfs=memdb"

static inline int pl_path_is_memory(const char *path)
{
    return path[0] == ':' && __builtin_strcmp(path, PL_MEMORY_PATH) == 0;
}

/* Make `spelling` (len bytes, no NUL inside) absolute against the current
 * directory, without touching the file system otherwise. Writes a
 * NUL-terminated string into buf. Returns 0, or -1 with `err` set (path too long,
 * current directory unknown). No GIL needed, no locks. */
int pl_path_absolute(const char *spelling, size_t len, char *buf, size_t bufsize, pl_err *err);

/* The canonical path of the database file named by absolute path `abs`: its
 * folder is created when missing (like mkdir -p) and resolved through symbolic
 * links, and the file itself is resolved when it is a symbolic link. Returns a
 * malloc'd string, or NULL with `err` set when the path names a directory, its
 * folder cannot be created, or a name is too long. Never creates the file. */
char *pl_path_canonical(const char *abs, pl_err *err);

#endif
