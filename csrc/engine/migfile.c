/* migfile.c: the migration file parser and chain validation. */
#include "migfile.h"
#include "alloc.h"
#include "sqltext.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pl_revision_valid(const char *s, size_t len)
{
    if (len == 0 || len > PL_REVISION_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return 1;
}

int pl_migration_reversible(const pl_migration *m)
{
    const char *end;

    if (m->down == NULL)
        return 0;
    end = m->down + strlen(m->down);
    return pl_sql_skip_trivia(m->down, end, 1) != end;
}

int pl_migration_reversible_postgresql(const pl_migration *m)
{
    const char *up_end, *down_end;

    if (m->up_postgresql == NULL || m->down_postgresql == NULL)
        return 0;
    up_end = m->up_postgresql + strlen(m->up_postgresql);
    down_end = m->down_postgresql + strlen(m->down_postgresql);
    /* A section that does nothing is undone by doing nothing. */
    return pl_sql_skip_trivia(m->down_postgresql, down_end, 1) != down_end ||
           pl_sql_skip_trivia(m->up_postgresql, up_end, 1) == up_end;
}

static char *dup_range(const char *s, size_t n)
{
    char *p = pl_malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t' || **s == '\r')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

static void checksum_hex(const char *text, size_t len, char out[17])
{
    snprintf(out, 17, "%016llx", pl_fnv1a(PL_FNV_OFFSET, text, len));
}

/* If the line is a "-- key: value" comment, point key/value at its parts. */
static int header_field(const char *line, size_t n, const char **key, size_t *klen,
                        const char **val, size_t *vlen)
{
    const char *colon;

    if (n < 2 || line[0] != '-' || line[1] != '-')
        return 0;
    line += 2;
    n -= 2;
    colon = memchr(line, ':', n);
    if (colon == NULL)
        return 0;
    *key = line;
    *klen = (size_t)(colon - line);
    trim(key, klen);
    *val = colon + 1;
    *vlen = n - (size_t)(colon + 1 - line);
    trim(val, vlen);
    return 1;
}

static int is_marker(const char *line, size_t n, const char *marker)
{
    const char *s = line;
    size_t m = strlen(marker);

    trim(&s, &n);
    if (n < 2 || s[0] != '-' || s[1] != '-')
        return 0;
    s += 2;
    n -= 2;
    trim(&s, &n);
    return n == m && memcmp(s, marker, m) == 0;
}

/* Free what parsing allocated so far and record the error. Returns -1. */
static int parse_error(pl_migration *m, pl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_error(pl_migration *m, pl_err *err, const char *fmt, ...)
{
    char text[PL_ERR_MSG_MAX];
    va_list ap;

    pl_migration_free(m);
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return pl_err_set(err, PL_E_MIGRATION, NULL, "%s", text);
}

/* Out of memory while parsing: free what was parsed and record it. Returns -1. */
static int parse_nomem(pl_migration *m, const char *filename, pl_err *err)
{
    pl_migration_free(m);
    return pl_err_set(err, PL_E_NOMEM, NULL, "out of memory reading migration file %s", filename);
}

/* What the parser has seen so far of one file. */
typedef struct {
    const char *filename;
    int line_no, have_rev, have_parent;
    const char *up_start, *up_end, *down_start; /* NULL until seen */
    /* The PostgreSQL sections, after SQLite's: sqlite_end is the line of the
     * '-- migrate:up:postgresql' marker (where SQLite's text ends). */
    const char *sqlite_end, *pg_up_start, *pg_up_end, *pg_down_start;
} parse_state;

#define PG_UP "migrate:up:postgresql"
#define PG_DOWN "migrate:down:postgresql"

static int is_any_marker(const char *line, size_t n)
{
    return is_marker(line, n, "migrate:up") || is_marker(line, n, "migrate:down") ||
           is_marker(line, n, PG_UP) || is_marker(line, n, PG_DOWN);
}

/* A "-- key: value" header line: revision, parent, message or created (other
 * keys are comments). Returns 0, or -1 with `err` set and `out` freed. */
static int parse_header_field(pl_migration *out, parse_state *ps, const char *key, size_t klen,
                              const char *val, size_t vlen, pl_err *err)
{
    if (klen == 8 && memcmp(key, "revision", 8) == 0) {
        if (ps->have_rev || !pl_revision_valid(val, vlen))
            return parse_error(out, err,
                               "migration file %s, line %d: %s; a revision id is 1 to 32 "
                               "letters, digits or '_'.",
                               ps->filename, ps->line_no,
                               ps->have_rev ? "a second 'revision:' line" : "invalid revision id");
        memcpy(out->revision, val, vlen);
        out->revision[vlen] = '\0';
        ps->have_rev = 1;
    } else if (klen == 6 && memcmp(key, "parent", 6) == 0) {
        int root = (vlen == 4 && (memcmp(val, "base", 4) == 0 || memcmp(val, "none", 4) == 0));
        if (ps->have_parent || (!root && !pl_revision_valid(val, vlen)))
            return parse_error(out, err,
                               "migration file %s, line %d: %s; write a revision id, or 'base' "
                               "for the first migration.",
                               ps->filename, ps->line_no,
                               ps->have_parent ? "a second 'parent:' line"
                                               : "invalid parent revision");
        if (!root) {
            memcpy(out->parent, val, vlen);
            out->parent[vlen] = '\0';
        }
        ps->have_parent = 1;
    } else if (klen == 7 && memcmp(key, "message", 7) == 0 && out->message == NULL) {
        out->message = dup_range(val, vlen);
        if (out->message == NULL)
            return parse_nomem(out, ps->filename, err);
    } else if (klen == 7 && memcmp(key, "created", 7) == 0 && out->created == NULL) {
        out->created = dup_range(val, vlen);
        if (out->created == NULL)
            return parse_nomem(out, ps->filename, err);
    }
    return 0;
}

/* A section marker in the wrong place: a second one, or one before the
 * section it follows. Returns -1 with `err` set and `out` freed. */
static int misplaced_marker(pl_migration *out, const parse_state *ps, const char *line, size_t n,
                            pl_err *err)
{
    static const char *const ORDER[] = {"migrate:up", "migrate:down", PG_UP, PG_DOWN};
    const char *seen[] = {ps->up_start, ps->down_start, ps->pg_up_start, ps->pg_down_start};
    int i = 0;

    while (i < 3 && !is_marker(line, n, ORDER[i]))
        i++;
    if (seen[i] != NULL)
        return parse_error(out, err, "migration file %s, line %d: a second '-- %s' marker.",
                           ps->filename, ps->line_no, ORDER[i]);
    return parse_error(out, err,
                       "migration file %s, line %d: '-- %s' comes before '-- %s'; the sections "
                       "come in this order: '-- migrate:up', '-- migrate:down', then "
                       "optionally '-- " PG_UP "' and '-- " PG_DOWN "'.",
                       ps->filename, ps->line_no, ORDER[i], ORDER[i > 0 ? i - 1 : 0]);
}

/* One line, line[0:n]; `next` is where the following line starts. Before
 * '-- migrate:up' it is a header line or the marker; after it, only the
 * markers matter, in their order: up, down, then optionally up:postgresql
 * and down:postgresql. Returns 0, or -1 with `err` set and `out` freed. */
static int parse_line(pl_migration *out, parse_state *ps, const char *line, size_t n,
                      const char *next, pl_err *err)
{
    const char *key, *val;
    size_t klen, vlen;

    if (ps->up_start == NULL && !is_any_marker(line, n)) {
        if (header_field(line, n, &key, &klen, &val, &vlen))
            return parse_header_field(out, ps, key, klen, val, vlen, err);
    } else if (ps->up_start == NULL && is_marker(line, n, "migrate:up")) {
        ps->up_start = next;
    } else if (ps->up_start != NULL && ps->down_start == NULL &&
               is_marker(line, n, "migrate:down")) {
        ps->up_end = line;
        ps->down_start = next;
    } else if (ps->down_start != NULL && ps->pg_up_start == NULL && is_marker(line, n, PG_UP)) {
        ps->sqlite_end = line;
        ps->pg_up_start = next;
    } else if (ps->pg_up_start != NULL && ps->pg_down_start == NULL &&
               is_marker(line, n, PG_DOWN)) {
        ps->pg_up_end = line;
        ps->pg_down_start = next;
    } else if (is_any_marker(line, n)) {
        return misplaced_marker(out, ps, line, n, err);
    }
    return 0;
}

/* After the last line: check that the header and both sections were there,
 * and copy the sections, file name and defaults into `out`. Returns 0, or -1
 * with `err` set and `out` freed. */
static int parse_finish(pl_migration *out, const parse_state *ps, const char *end, pl_err *err)
{
    if (!ps->have_rev || !ps->have_parent || ps->up_start == NULL || ps->down_start == NULL) {
        return parse_error(out, err,
                           "migration file %s lacks %s; every migration needs '-- revision:', "
                           "'-- parent:', '-- migrate:up' and '-- migrate:down' lines.",
                           ps->filename,
                           !ps->have_rev      ? "a '-- revision:' line"
                           : !ps->have_parent ? "a '-- parent:' line"
                           : !ps->up_start    ? "a '-- migrate:up' section"
                                              : "a '-- migrate:down' section");
    }
    if (ps->pg_up_start != NULL && ps->pg_down_start == NULL)
        return parse_error(out, err,
                           "migration file %s has a '-- " PG_UP "' section but no '-- " PG_DOWN
                           "' after it; add one (empty when the migration cannot be undone).",
                           ps->filename);
    if (strcmp(out->revision, out->parent) == 0) {
        return parse_error(out, err, "migration file %s names itself (%s) as its parent.",
                           ps->filename, out->revision);
    }
    const char *sqlite_end = ps->sqlite_end != NULL ? ps->sqlite_end : end;
    out->up = dup_range(ps->up_start, (size_t)(ps->up_end - ps->up_start));
    out->down = dup_range(ps->down_start, (size_t)(sqlite_end - ps->down_start));
    if (ps->pg_up_start != NULL) {
        out->up_postgresql = dup_range(ps->pg_up_start, (size_t)(ps->pg_up_end - ps->pg_up_start));
        out->down_postgresql = dup_range(ps->pg_down_start, (size_t)(end - ps->pg_down_start));
        if (!out->up_postgresql || !out->down_postgresql)
            return parse_nomem(out, ps->filename, err);
    }
    out->filename = pl_strdup(ps->filename);
    if (out->message == NULL)
        out->message = pl_strdup("");
    if (out->created == NULL)
        out->created = pl_strdup("");
    if (!out->up || !out->down || !out->filename || !out->message || !out->created)
        return parse_nomem(out, ps->filename, err);
    return 0;
}

int pl_migration_parse(const char *text, size_t len, const char *filename, pl_migration *out,
                       pl_err *err)
{
    const char *p = text, *end = text + len;
    parse_state ps = {filename, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len) != NULL)
        return parse_error(out, err,
                           "migration file %s contains a NUL byte; it must be plain SQL text.",
                           filename);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;

        ps.line_no++;
        if (parse_line(out, &ps, p, (size_t)((nl ? nl : end) - p), next, err) < 0)
            return -1;
        p = next;
    }
    if (parse_finish(out, &ps, end, err) < 0)
        return -1;
    /* The checksum a SQLite database records covers what runs on SQLite: the
     * text before the PostgreSQL sections, so adding them to a file already
     * applied is not drift. A PostgreSQL database records the whole file's. */
    checksum_hex(text, (size_t)((ps.sqlite_end != NULL ? ps.sqlite_end : end) - text),
                 out->checksum);
    checksum_hex(text, len, out->checksum_postgresql);
    return 0;
}

void pl_migration_free(pl_migration *m)
{
    free(m->message);
    free(m->created);
    free(m->up);
    free(m->down);
    free(m->up_postgresql);
    free(m->down_postgresql);
    free(m->filename);
    m->message = m->created = m->up = m->down = m->filename = NULL;
    m->up_postgresql = m->down_postgresql = NULL;
}

void pl_chain_free(pl_chain *chain)
{
    if (chain == NULL)
        return;
    for (int i = 0; i < chain->count; i++)
        pl_migration_free(&chain->items[i]);
    free(chain->items);
    free(chain->dir);
    free(chain);
}

int pl_chain_index(const pl_chain *chain, const char *revision)
{
    if (revision[0] == '\0')
        return -1;
    for (int i = 0; i < chain->count; i++)
        if (strcmp(chain->items[i].revision, revision) == 0)
            return i;
    return -2;
}

static void free_items(pl_migration *items, int n)
{
    for (int i = 0; i < n; i++)
        pl_migration_free(&items[i]);
    free(items);
}

/* The links between items[0:n]: no two files with one revision or one
 * parent (two heads), every parent declared, and a first migration (root).
 * Sets *root (-1 when n is 0). Returns 0, or -1 with `err` set. */
static int check_links(const char *dir, const pl_migration *items, int n, int *root, pl_err *err)
{
    *root = -1;
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            if (strcmp(items[i].revision, items[j].revision) == 0)
                return pl_err_set(err, PL_E_MIGRATION, NULL,
                                  "migration files %s and %s both declare revision %s; give one "
                                  "of them a new id.",
                                  items[i].filename, items[j].filename, items[i].revision);
            if (strcmp(items[i].parent, items[j].parent) == 0)
                return pl_err_set(err, PL_E_MIGRATION, NULL,
                                  "migration files %s and %s both follow %s, which makes two "
                                  "heads; make one of them follow the other.",
                                  items[i].filename, items[j].filename,
                                  items[i].parent[0] ? items[i].parent : "base");
        }
    }
    for (int i = 0; i < n; i++) {
        if (items[i].parent[0] == '\0') {
            *root = i;
        } else if (pl_chain_index(&(pl_chain){NULL, n, (pl_migration *)items}, items[i].parent) <
                   0) {
            return pl_err_set(err, PL_E_MIGRATION, NULL,
                              "migration file %s follows revision %s, which no file in %s "
                              "declares.",
                              items[i].filename, items[i].parent, dir);
        }
    }
    if (n > 0 && *root < 0)
        return pl_err_set(err, PL_E_MIGRATION, NULL,
                          "the migrations in %s form a cycle (no file has 'parent: base'), "
                          "starting with %s.",
                          dir, items[0].filename);
    return 0;
}

/* Copy items[0:n] into ordered[0:n] (shallow), from `root` following each
 * migration's one child (check_links saw to that). Files left over are on a
 * cycle: an error naming one. Returns 0, or -1 with `err` set. */
static int order_items(const pl_migration *items, int n, int root, pl_migration *ordered,
                       pl_err *err)
{
    int count = 0, cur = root, rc = 0;
    char *used = pl_calloc(n > 0 ? (size_t)n : 1, 1);

    if (used == NULL)
        return pl_err_set(err, PL_E_NOMEM, NULL, "out of memory loading migrations");
    while (cur >= 0) {
        ordered[count++] = items[cur];
        used[cur] = 1;
        int next = -1;
        for (int i = 0; i < n; i++)
            if (!used[i] && strcmp(items[i].parent, items[cur].revision) == 0)
                next = i;
        cur = next;
    }
    if (count < n) {
        int stray = 0;
        while (used[stray])
            stray++;
        rc = pl_err_set(err, PL_E_MIGRATION, NULL,
                        "migration file %s is on a cycle of revisions that never reaches the "
                        "first migration; fix its 'parent:' line.",
                        items[stray].filename);
    }
    free(used);
    return rc;
}

pl_chain *pl_chain_build(const char *dir, pl_migration *items, int n, pl_err *err)
{
    pl_chain *chain = NULL;
    pl_migration *ordered = NULL;
    int root;

    if (check_links(dir, items, n, &root, err) < 0)
        goto fail;
    ordered = pl_calloc(n > 0 ? (size_t)n : 1, sizeof *ordered);
    chain = pl_calloc(1, sizeof *chain);
    if (ordered == NULL || chain == NULL) {
        pl_err_set(err, PL_E_NOMEM, NULL, "out of memory loading migrations");
        goto fail;
    }
    /* On error ordered[] holds shallow copies of some items: free only through items. */
    if (order_items(items, n, root, ordered, err) < 0)
        goto fail;
    free(items);
    chain->dir = pl_strdup(dir);
    chain->count = n;
    chain->items = ordered;
    if (chain->dir == NULL) {
        pl_chain_free(chain);
        pl_err_set(err, PL_E_NOMEM, NULL, "out of memory loading migrations");
        return NULL;
    }
    return chain;
fail:
    free(ordered);
    free(chain);
    free_items(items, n);
    return NULL;
}

/* Room for the path of one migration file: the longest path the system
 * opens, and its NUL. */
#define PL_MIGRATION_PATH_MAX PATH_MAX

static int has_sql_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".sql") == 0 && name[0] != '.';
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int sql_filter(const struct dirent *d)
{
    return has_sql_suffix(d->d_name);
}

/* Read a whole file; returns a malloc'd buffer or NULL with errno set. */
static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, len = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = pl_realloc(buf, ncap + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        free(buf);
        fclose(f);
        errno = e;
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

pl_chain *pl_chain_load(const char *dir, pl_err *err)
{
    struct dirent **names = NULL;
    pl_migration *items = NULL;
    int n, parsed = 0;

    n = scandir(dir, &names, sql_filter, name_order);
    if (n < 0) {
        pl_err_set(err, PL_E_MIGRATION, NULL,
                   "cannot read the migrations folder %s (%s); reinstall PromptLab or set "
                   "PROMPTLAB_MIGRATIONS_DIR to a folder of migration files.",
                   dir, strerror(errno));
        return NULL;
    }
    items = pl_calloc(n > 0 ? (size_t)n : 1, sizeof *items);
    if (items == NULL) {
        pl_err_set(err, PL_E_NOMEM, NULL, "out of memory loading migrations");
        goto fail;
    }
    for (; parsed < n; parsed++) {
        char path[PL_MIGRATION_PATH_MAX];
        size_t len = 0;
        char *text;

        if (snprintf(path, sizeof path, "%s/%s", dir, names[parsed]->d_name) >= (int)sizeof path) {
            pl_err_set(err, PL_E_MIGRATION, NULL,
                       "the path of migration file %s in %s is longer than %d bytes; move the "
                       "migrations to a shorter path.",
                       names[parsed]->d_name, dir, PL_MIGRATION_PATH_MAX - 1);
            goto fail;
        }
        text = read_file(path, &len);
        if (text == NULL) {
            pl_err_set(err, PL_E_MIGRATION, NULL, "cannot read migration file %s (%s).", path,
                       strerror(errno));
            goto fail;
        }
        int rc = pl_migration_parse(text, len, names[parsed]->d_name, &items[parsed], err);
        free(text);
        if (rc < 0) {
            pl_err_prefix(err, dir);
            goto fail;
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return pl_chain_build(dir, items, n, err);
fail:
    if (items != NULL)
        free_items(items, parsed);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return NULL;
}
