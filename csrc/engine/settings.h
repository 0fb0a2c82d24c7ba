/* settings.h: PromptLab's PROMPTLAB_* settings, as the binding last read them.
 *
 * Why not getenv(): engine code runs without the GIL, and a getenv() there
 * races with os.environ writes in other threads (putenv/setenv may replace or
 * free the string getenv() returned). So the binding reads os.environ with
 * the GIL held, once per public call that starts engine work (initialization,
 * migration commands, inspection), and stores a copy here; engine code reads
 * the copy under a leaf lock (lockorder.h). Before the first store: defaults.
 */
#ifndef PL_SETTINGS_H
#define PL_SETTINGS_H

#include <stddef.h>

#define PL_BUSY_TIMEOUT_DEFAULT_MS 10000
#define PL_BUSY_TIMEOUT_MAX_MS (3600 * 1000)
#define PL_FILE_MODE_DEFAULT 0600
#define PL_MAX_IDLE_DEFAULT 64

/* The variables as text, each NULL when not set. */
typedef struct {
    const char *busy_timeout_ms;      /* PROMPTLAB_BUSY_TIMEOUT_MS */
    const char *migrations_dir;       /* PROMPTLAB_MIGRATIONS_DIR */
    const char *admin_password;       /* PROMPTLAB_ADMIN_PASSWORD */
    const char *statement_timeout_ms; /* PROMPTLAB_STATEMENT_TIMEOUT_MS */
    const char *file_mode;            /* PROMPTLAB_FILE_MODE */
    const char *max_idle;             /* PROMPTLAB_MAX_IDLE_CONNECTIONS */
} pl_settings_text;

/* Replace the settings with these environment values. An invalid number
 * falls back to its default. Copies the strings; on out-of-memory the
 * previous value is kept. Never blocks for long. */
void pl_settings_store(const pl_settings_text *text);

/* Idle pooled connections the process keeps, over all its databases:
 * PROMPTLAB_MAX_IDLE_CONNECTIONS when a whole number from 0 to 100000, else
 * PL_MAX_IDLE_DEFAULT. Each holds about three descriptors. */
int pl_settings_max_idle(void);

/* Permission bits for a new database file: PROMPTLAB_FILE_MODE when it is an
 * octal number from 0 to 0666 that lets the owner read and write, else 0600
 * (the process's umask applies on top; -wal and -shm follow the file). */
unsigned pl_settings_file_mode(void);

/* PROMPTLAB_BUSY_TIMEOUT_MS when it is a whole number from 1 to one hour,
 * else PL_BUSY_TIMEOUT_DEFAULT_MS. */
int pl_settings_busy_timeout_ms(void);

/* PROMPTLAB_STATEMENT_TIMEOUT_MS when it is a whole number from 1 to one
 * hour, else 0 (no limit). */
int pl_settings_statement_timeout_ms(void);

/* PROMPTLAB_MIGRATIONS_DIR copied into buf (cut to size); "" when not set. */
const char *pl_settings_migrations_dir(char *buf, size_t size);

/* PROMPTLAB_ADMIN_PASSWORD copied into buf (cut to size) and its full length
 * returned; -1 (buf "") when it is not set or empty. Wipe buf after use. */
long pl_settings_admin_password(char *buf, size_t size);

/* Fork support: the forking thread holds the lock across fork(). */
void pl_settings_lock_for_fork(void);
void pl_settings_unlock_after_fork(void);

#endif
