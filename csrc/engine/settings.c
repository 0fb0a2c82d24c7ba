/* settings.c: the PROMPTLAB_* settings copied from os.environ (see settings.h). */
#include "settings.h"
#include "alloc.h"
#include "lockorder.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static int busy_timeout_ms = PL_BUSY_TIMEOUT_DEFAULT_MS;
static int statement_timeout_ms; /* 0: no limit */
static int file_mode = PL_FILE_MODE_DEFAULT;
static int max_idle = PL_MAX_IDLE_DEFAULT;
static char *migrations_dir; /* NULL: not set */
static char *admin_password; /* NULL: not set */

/* The largest PROMPTLAB_MAX_IDLE_CONNECTIONS taken. */
#define MAX_IDLE_LIMIT 100000

/* A whole number from `min` to `max` written in decimal, else `fallback`. */
static int parse_int(const char *text, long min, long max, int fallback)
{
    char *end = NULL;
    long v;

    if (text == NULL || *text == '\0')
        return fallback;
    v = strtol(text, &end, 10);
    if (end == NULL || *end != '\0' || v < min || v > max)
        return fallback;
    return (int)v;
}

/* A whole number of milliseconds from 1 to one hour, else `fallback`. */
static int parse_ms(const char *text, int fallback)
{
    return parse_int(text, 1, PL_BUSY_TIMEOUT_MAX_MS, fallback);
}

/* An octal mode from 0600 to 0666 (the owner must read and write), else
 * PL_FILE_MODE_DEFAULT. */
static unsigned parse_mode(const char *text)
{
    char *end = NULL;
    unsigned long v;

    if (text == NULL || *text == '\0')
        return PL_FILE_MODE_DEFAULT;
    v = strtoul(text, &end, 8);
    if (end == NULL || *end != '\0' || (v & ~0666UL) != 0 || (v & 0600UL) != 0600UL)
        return PL_FILE_MODE_DEFAULT;
    return (unsigned)v;
}

/* A heap copy of a set, non-empty value; NULL for unset or empty. *failed is
 * set when the copy could not be made. */
static char *copy_value(const char *value, int *failed)
{
    char *copy;

    *failed = 0;
    if (value == NULL || *value == '\0')
        return NULL;
    copy = pl_strdup(value);
    if (copy == NULL)
        *failed = 1;
    return copy;
}

static void wipe_and_free(char *secret)
{
    if (secret != NULL) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}

void pl_settings_store(const pl_settings_text *text)
{
    int dir_failed, password_failed;
    int timeout = parse_ms(text->busy_timeout_ms, PL_BUSY_TIMEOUT_DEFAULT_MS);
    int statement_timeout = parse_ms(text->statement_timeout_ms, 0);
    int mode = (int)parse_mode(text->file_mode);
    int idle = parse_int(text->max_idle, 0, MAX_IDLE_LIMIT, PL_MAX_IDLE_DEFAULT);
    /* Allocate outside the lock: it stays a leaf that holds no allocator lock. */
    char *new_dir = copy_value(text->migrations_dir, &dir_failed);
    char *new_password = copy_value(text->admin_password, &password_failed);
    char *old_dir = NULL, *old_password = NULL;

    pl_mutex_lock(&settings_lock, PL_LOCK_SETTINGS);
    busy_timeout_ms = timeout;
    statement_timeout_ms = statement_timeout;
    file_mode = mode;
    max_idle = idle;
    if (!dir_failed) {
        old_dir = migrations_dir;
        migrations_dir = new_dir;
    }
    if (!password_failed) {
        old_password = admin_password;
        admin_password = new_password;
    }
    pl_mutex_unlock(&settings_lock);
    free(old_dir);
    wipe_and_free(old_password);
}

/* One setting, read under the lock. */
static int read_int(const int *setting)
{
    int v;
    pl_mutex_lock(&settings_lock, PL_LOCK_SETTINGS);
    v = *setting;
    pl_mutex_unlock(&settings_lock);
    return v;
}

int pl_settings_busy_timeout_ms(void)
{
    return read_int(&busy_timeout_ms);
}

int pl_settings_statement_timeout_ms(void)
{
    return read_int(&statement_timeout_ms);
}

int pl_settings_max_idle(void)
{
    return read_int(&max_idle);
}

unsigned pl_settings_file_mode(void)
{
    return (unsigned)read_int(&file_mode);
}

const char *pl_settings_migrations_dir(char *buf, size_t size)
{
    pl_mutex_lock(&settings_lock, PL_LOCK_SETTINGS);
    snprintf(buf, size, "%s", migrations_dir != NULL ? migrations_dir : "");
    pl_mutex_unlock(&settings_lock);
    return buf;
}

long pl_settings_admin_password(char *buf, size_t size)
{
    long len = -1;
    pl_mutex_lock(&settings_lock, PL_LOCK_SETTINGS);
    if (admin_password != NULL) {
        len = (long)strlen(admin_password);
        snprintf(buf, size, "%s", admin_password);
    } else if (size > 0) {
        buf[0] = '\0';
    }
    pl_mutex_unlock(&settings_lock);
    return len;
}

void pl_settings_lock_for_fork(void)
{
    pl_mutex_lock(&settings_lock, PL_LOCK_SETTINGS);
}

void pl_settings_unlock_after_fork(void)
{
    pl_mutex_unlock(&settings_lock);
}
