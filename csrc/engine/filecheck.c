/* filecheck.c: checks on a database file before PromptLab writes to it. */
#include "filecheck.h"
#include "lockorder.h"
#include "query.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The database header (sqlite.org/fileformat.html): 100 bytes, starting with
 * the 16 bytes "SQLite format 3\0". */
#define SQLITE_HEADER_SIZE 100
#define SQLITE_MAGIC_SIZE 16

/* Triggers and views named in the refusal; the rest are counted. */
#define FOREIGN_NAMES_SHOWN 5

static unsigned long read_be(const unsigned char *p, int n)
{
    unsigned long v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int has_sidecar(const char *path, const char *suffix)
{
    char name[PATH_MAX + 16];
    struct stat st;
    snprintf(name, sizeof name, "%s%s", path, suffix);
    return stat(name, &st) == 0 && st.st_size > 0; /* stat(): no descriptor */
}

/* Read the first `size` bytes of the file into `buf` through a read-only
 * SQLite connection's own descriptor (the rest zero-filled when the file is
 * shorter). Never open(): POSIX locks belong to the process and the inode,
 * so close() of any other descriptor on this file would drop the locks that
 * this process's connections hold on it (sqlite.org, "How To Corrupt An
 * SQLite Database File", 2.2). SQLite shares one inode record between its
 * connections and keeps a closed descriptor open while others hold locks.
 * The connection reads nothing itself: no lock, no WAL, no -shm. */
static int read_head(const char *path, unsigned char *buf, int size, pl_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_file *f = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
    if (rc == SQLITE_OK && (f == NULL || f->pMethods == NULL))
        rc = SQLITE_CANTOPEN;
    if (rc == SQLITE_OK) {
        rc = f->pMethods->xRead(f, buf, size, 0);
        if (rc == SQLITE_IOERR_SHORT_READ)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        int sys = db != NULL ? sqlite3_system_errno(db) : 0;
        sqlite3_close(db);
        return pl_err_set(err, PL_E_PATH, path, "cannot read the file (%s); check its permissions.",
                          sys != 0 ? strerror(sys) : sqlite3_errstr(rc));
    }
    sqlite3_close(db);
    return 0;
}

/* What one look at the file saw: its size and the header's page count. */
typedef struct {
    long long size;
    unsigned long pages, page_size;
    int short_of_header; /* the header's page count is valid and exceeds the size */
} file_look;

static void look_at_header(const unsigned char *hdr, long long size, file_look *look)
{
    /* The header's page count is valid when its "version-valid-for" number
     * matches the change counter; pages may live in a WAL or hot journal. */
    look->size = size;
    look->page_size = read_be(hdr + 16, 2);
    look->pages = read_be(hdr + 28, 4);
    if (look->page_size == 1)
        look->page_size = 65536;
    look->short_of_header = read_be(hdr + 24, 4) == read_be(hdr + 92, 4) && look->pages > 0 &&
                            size < (long long)look->pages * (long long)look->page_size;
}

/* Looks taken while confirming that a file is shorter than its header says,
 * and the pause between them. */
#define TRUNCATION_LOOKS 5
#define TRUNCATION_LOOK_PAUSE_MS 20

/* A file shorter than its header says is truncated only if it stays so with
 * no WAL or journal beside it. Another process's checkpoint writes page 1
 * before it extends the file, and its last close deletes the WAL: a size
 * taken before that meets the new header for a moment. So the verdict needs
 * two looks in a row that agree (header read, no sidecar, then the size),
 * each taken after the sidecars were seen absent. Returns 1 when truncated
 * (`look` filled), 0 when not, -1 on error. */
static int confirm_truncated(const char *path, file_look *look, pl_err *err)
{
    unsigned char hdr[SQLITE_HEADER_SIZE];
    file_look prev = *look;
    struct stat st;

    for (int i = 0; i < TRUNCATION_LOOKS; i++) {
        if (has_sidecar(path, "-wal") || has_sidecar(path, "-journal"))
            return 0;
        if (read_head(path, hdr, sizeof hdr, err) < 0)
            return -1;
        if (has_sidecar(path, "-wal") || has_sidecar(path, "-journal"))
            return 0;
        if (stat(path, &st) != 0)
            return pl_err_set(err, PL_E_PATH, path, "cannot inspect the file (%s).",
                              strerror(errno));
        look_at_header(hdr, (long long)st.st_size, look);
        if (!look->short_of_header)
            return 0;
        if (i > 0 && look->size == prev.size && look->pages == prev.pages &&
            look->page_size == prev.page_size)
            return 1;
        prev = *look;
        pl_sleep_ms(TRUNCATION_LOOK_PAUSE_MS);
    }
    return 1;
}

int pl_check_file(const char *path, int *exists, pl_err *err)
{
    static const char magic[SQLITE_MAGIC_SIZE] = "SQLite format 3";
    unsigned char hdr[SQLITE_HEADER_SIZE];
    struct stat st;
    file_look look;
    long long got;
    int truncated;

    PL_ASSERT_NO_GIL();
    *exists = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return pl_err_set(err, PL_E_PATH, path, "cannot inspect the file (%s).", strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return pl_err_set(err, PL_E_PATH, path,
                          "this is a folder, not a database file; add a file name such as "
                          "'promptlab.db'.");
    if (!S_ISREG(st.st_mode))
        return pl_err_set(err, PL_E_PATH, path,
                          "this is not a regular file (a device, socket or pipe); pass the "
                          "path of a database file.");
    *exists = 1;
    if (st.st_size == 0)
        return 0;
    if (pl_conn_check_not_tainted(path, err) < 0 || read_head(path, hdr, sizeof hdr, err) < 0)
        return -1;
    got = st.st_size < (long long)sizeof hdr ? (long long)st.st_size : (long long)sizeof hdr;
    if (got < (long long)sizeof magic || memcmp(hdr, magic, sizeof magic) != 0)
        return pl_err_set(err, PL_E_INVALID, path,
                          "this file is not a SQLite database (it does not start with the "
                          "SQLite header). It was left unchanged; pass the path of a "
                          "PromptLab database or of a new file.");
    if (got < (long long)sizeof hdr)
        return pl_err_set(err, PL_E_INVALID, path,
                          "the file is only %lld bytes long, shorter than a SQLite header: it "
                          "was truncated. It was left unchanged; restore it from a backup.",
                          got);
    look_at_header(hdr, (long long)st.st_size, &look);
    if (!look.short_of_header)
        return 0;
    if ((truncated = confirm_truncated(path, &look, err)) <= 0)
        return truncated;
    return pl_err_set(err, PL_E_INVALID, path,
                      "the file is %lld bytes long but its header records %lu pages of "
                      "%lu bytes: it was truncated. It was left unchanged; restore it "
                      "from a backup.",
                      look.size, look.pages, look.page_size);
}

int pl_check_no_foreign_code(pl_conn *c, pl_err *err)
{
    pl_query q;
    sqlite3_str *names;
    int rc, found = 0;

    if (pl_query_start(&q, c,
                       "SELECT type, name FROM sqlite_schema WHERE type IN ('trigger', 'view')"
                       " ORDER BY type, name",
                       "reading the schema", err) < 0)
        return -1;
    names = sqlite3_str_new(NULL);
    while ((rc = pl_query_next(&q, err)) > 0) {
        if (found < FOREIGN_NAMES_SHOWN)
            sqlite3_str_appendf(names, "%s%s \"%s\"", found ? ", " : "",
                                sqlite3_column_text(q.st, 0), sqlite3_column_text(q.st, 1));
        found++;
    }
    pl_query_end(&q);
    char *list = sqlite3_str_finish(names);
    if (rc < 0) {
        sqlite3_free(list);
        return -1;
    }
    if (found > 0) {
        pl_err_set(err, PL_E_FOREIGN_SCHEMA, c->path,
                   "the database holds %d trigger(s) or view(s) that PromptLab did not create "
                   "(%s%s), and PromptLab runs no such code inside its statements; nothing was "
                   "written. Inspect them with: sqlite3 %s .schema; drop the ones that are not "
                   "yours (DROP TRIGGER name), or use another database file.",
                   found, list != NULL ? list : "", found > FOREIGN_NAMES_SHOWN ? ", ..." : "",
                   c->path);
        sqlite3_free(list);
        return -1;
    }
    sqlite3_free(list);
    return 0;
}

int pl_check_not_damaged(pl_conn *c, pl_err *err)
{
    char value[PL_CHECK_MESSAGE_MAX] = "";
    int found = 0;

    if (pl_query_text(c, "PRAGMA quick_check(1)", value, sizeof value, &found,
                      "checking the database (quick_check)", err) < 0)
        return -1;
    for (char *p = value; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' '; /* the message stays one line */
    if (strcmp(value, "ok") != 0)
        return pl_err_set(err, PL_E_INVALID, c->path,
                          "the database is damaged (quick_check: %s). It was left unchanged; "
                          "restore it from a backup, or recover a copy with the sqlite3 "
                          "shell's .recover command.",
                          value);
    return 0;
}
