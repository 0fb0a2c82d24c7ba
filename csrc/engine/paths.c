/* paths.c: absolute and canonical database paths, and creating missing folders. */
#include "paths.h"
#include "alloc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pl_path_absolute(const char *spelling, size_t len, char *buf, size_t bufsize, pl_err *err)
{
    size_t n = 0;

    if (len == 0)
        return pl_err_set(err, PL_E_PATH, NULL,
                          "The database path is empty; pass the path of a database file.");
    if (len == strlen(PL_MEMORY_PATH) && memcmp(spelling, PL_MEMORY_PATH, len) == 0) {
        snprintf(buf, bufsize, "%s", PL_MEMORY_PATH); /* not a file name */
        return 0;
    }
    if (spelling[0] != '/') {
        if (getcwd(buf, bufsize) == NULL)
            return pl_err_set(err, PL_E_PATH, NULL,
                              "Cannot resolve the relative database path '%.*s': the "
                              "current directory is unavailable (%s); pass an absolute path.",
                              (int)(len > 512 ? 512 : len), spelling, strerror(errno));
        n = strlen(buf);
        if (n + 1 < bufsize && (n == 0 || buf[n - 1] != '/'))
            buf[n++] = '/';
    }
    if (n + len + 1 > bufsize)
        return pl_err_set(err, PL_E_PATH, NULL,
                          "The database path is too long (%zu bytes; the limit is %zu): "
                          "'%.200s...'; use a shorter path.",
                          n + len, bufsize - 1, spelling);
    memcpy(buf + n, spelling, len);
    buf[n + len] = '\0';
    return 0;
}

/* mkdir -p for `dir` (absolute). Returns 0 or -1 with `err` set; `db` names the
 * database in messages. */
static int make_folders(char *dir, const char *db, pl_err *err)
{
    struct stat st;
    size_t len = strlen(dir);

    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        return pl_err_set(err, PL_E_PATH, db,
                          "'%s' is not a folder, so the database file cannot be created "
                          "in it; choose another path.",
                          dir);
    }
    for (size_t i = 1; i <= len; i++) {
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            pl_err_set(err, e == EROFS ? PL_E_READONLY : PL_E_PATH, db,
                       "cannot create the folder '%s' (%s); create it yourself or choose "
                       "a writable location.",
                       dir, strerror(e));
            dir[i] = saved;
            return -1;
        }
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            pl_err_set(err, PL_E_PATH, db,
                       "'%s' is not a folder, so the database file cannot be created in "
                       "it; choose another path.",
                       dir);
            dir[i] = saved;
            return -1;
        }
        dir[i] = saved;
    }
    return 0;
}

char *pl_path_canonical(const char *abs, pl_err *err)
{
    char dir[PATH_MAX], real[PATH_MAX], *result = NULL;
    const char *slash, *base;
    size_t dirlen;
    struct stat st;

    if (pl_path_is_memory(abs)) {
        result = pl_strdup(abs);
        if (result == NULL)
            pl_err_set(err, PL_E_NOMEM, abs, "out of memory");
        return result;
    }
    slash = strrchr(abs, '/');
    base = slash + 1;
    dirlen = (size_t)(slash - abs);

    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        pl_err_set(err, PL_E_PATH, abs,
                   "this path names a folder, not a database file; add a file name such "
                   "as 'promptlab.db'.");
        return NULL;
    }
    if (strlen(base) > NAME_MAX) {
        pl_err_set(err, PL_E_PATH, abs,
                   "the file name is longer than %d bytes; use a shorter "
                   "name.",
                   NAME_MAX);
        return NULL;
    }
    if (dirlen == 0)
        dirlen = 1; /* the file is in "/" */
    if (dirlen >= sizeof dir) {
        pl_err_set(err, PL_E_PATH, abs, "the path is too long; use a shorter path.");
        return NULL;
    }
    memcpy(dir, abs, dirlen);
    dir[dirlen] = '\0';
    if (make_folders(dir, abs, err) < 0)
        return NULL;
    if (realpath(dir, real) == NULL) {
        pl_err_set(err, PL_E_PATH, abs, "cannot resolve the folder '%s' (%s).", dir,
                   strerror(errno));
        return NULL;
    }
    size_t rlen = strlen(real), blen = strlen(base);
    if (rlen + 1 + blen + 1 > PATH_MAX) {
        pl_err_set(err, PL_E_PATH, abs, "the path is too long; use a shorter path.");
        return NULL;
    }
    result = pl_malloc(PATH_MAX);
    if (result == NULL) {
        pl_err_set(err, PL_E_NOMEM, abs, "out of memory");
        return NULL;
    }
    snprintf(result, PATH_MAX, "%s%s%s", real, (rlen > 1 ? "/" : ""), base);
    /* A symbolic link to a database is the same database as its target. */
    if (lstat(result, &st) == 0 && S_ISLNK(st.st_mode)) {
        if (realpath(result, real) != NULL)
            snprintf(result, PATH_MAX, "%s", real);
    }
    if (stat(result, &st) == 0 && S_ISDIR(st.st_mode)) {
        pl_err_set(err, PL_E_PATH, result,
                   "this is a folder, not a database file; add a file name such as "
                   "'promptlab.db'.");
        free(result);
        return NULL;
    }
    return result;
}
