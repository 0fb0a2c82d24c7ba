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

/* Replace the settings with these environment values (NULL: not set). An
 * invalid busy timeout falls back to the default. Copies the strings; on
 * out-of-memory the previous value is kept. Never blocks for long. */
void pl_settings_store(const char *busy_timeout_ms, const char *migrations_dir,
                       const char *admin_password, const char *statement_timeout_ms);

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
