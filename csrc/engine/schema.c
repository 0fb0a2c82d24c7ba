/* schema.c: the schema catalog, and recognising the layout of a database. */
#include "schema.h"
#include "query.h"
#include "schemadiff.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Names are compared as SQLite compares identifiers: without regard to case. */
static const char CATALOG_SQL[] =
    "CREATE TABLE cat_objects (src INTEGER, type TEXT, name TEXT COLLATE NOCASE,"
    " tbl TEXT COLLATE NOCASE, sql TEXT);"
    "CREATE TABLE cat_columns (src INTEGER, tbl TEXT COLLATE NOCASE, cid INTEGER,"
    " name TEXT COLLATE NOCASE, type TEXT COLLATE NOCASE, not_null INTEGER, dflt TEXT,"
    " pk INTEGER);"
    "CREATE TABLE cat_indexes (src INTEGER, tbl TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE,"
    " uniq INTEGER, origin TEXT, partial INTEGER, sql TEXT);"
    "CREATE TABLE cat_index_columns (src INTEGER, idx TEXT COLLATE NOCASE, seqno INTEGER,"
    " name TEXT COLLATE NOCASE);"
    "CREATE TABLE cat_foreign_keys (src INTEGER, tbl TEXT COLLATE NOCASE, id INTEGER,"
    " seq INTEGER, ref TEXT COLLATE NOCASE, from_col TEXT COLLATE NOCASE,"
    " to_col TEXT COLLATE NOCASE, on_update TEXT, on_delete TEXT);"
    "CREATE TABLE cat_history (src INTEGER, revision TEXT, checksum TEXT, message TEXT,"
    " applied_at TEXT, duration_ms REAL);"
    "CREATE TABLE cat_diff (kind TEXT, tbl TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE,"
    " expected TEXT, actual TEXT);"
    "CREATE TABLE cat_items (src INTEGER, kind TEXT, rank INTEGER, tbl TEXT COLLATE NOCASE,"
    " name TEXT COLLATE NOCASE, k TEXT, descr TEXT, tpos INTEGER, pos INTEGER);"
    "CREATE INDEX cat_columns_tbl ON cat_columns (src, tbl);"
    "CREATE INDEX cat_items_name ON cat_items (src, kind, name);";

#define USER_TABLES                                                                                \
    "m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"                                \
    " AND m.name NOT IN ('alembic_version', 'promptlab_migrations')"

/* Each query reads one kind of schema row from the catalogued database; the
 * matching insert stores it in the catalog with the source number as ?1. */
static const struct {
    const char *query;
    const char *insert;
} COPIES[] = {
    {"SELECT m.type, m.name, m.tbl_name, m.sql FROM sqlite_schema m"
     " WHERE m.type IN ('table', 'view', 'trigger') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
     " AND m.name NOT IN ('alembic_version', 'promptlab_migrations')",
     "INSERT INTO cat_objects VALUES (?1, ?2, ?3, ?4, ?5)"},
    {"SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk"
     " FROM sqlite_schema m JOIN pragma_table_info(m.name) p WHERE " USER_TABLES,
     "INSERT INTO cat_columns VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
    {"SELECT m.name, il.name, il.\"unique\", il.origin, il.partial, s.sql"
     " FROM sqlite_schema m JOIN pragma_index_list(m.name) il"
     " LEFT JOIN sqlite_schema s ON s.type = 'index' AND s.name = il.name WHERE " USER_TABLES,
     "INSERT INTO cat_indexes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    {"SELECT il.name, ii.seqno, ii.name FROM sqlite_schema m"
     " JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii WHERE " USER_TABLES,
     "INSERT INTO cat_index_columns VALUES (?1, ?2, ?3, ?4)"},
    /* A key that leaves out the parent's columns ("REFERENCES users") refers to
     * its primary key: the catalog records those columns, so that it compares
     * equal to the same key written out ("REFERENCES users (id)"). */
    {"SELECT m.name, f.id, f.seq, f.\"table\", f.\"from\", ifnull(f.\"to\","
     "   (SELECT p.name FROM pragma_table_info(f.\"table\") p WHERE p.pk = f.seq + 1"
     "     AND (SELECT count(*) FROM pragma_table_info(f.\"table\") k WHERE k.pk > 0)"
     "       = (SELECT count(*) FROM pragma_foreign_key_list(m.name) g WHERE g.id = f.id))),"
     " f.on_update, f.on_delete"
     " FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f WHERE " USER_TABLES,
     "INSERT INTO cat_foreign_keys VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
};

int pl_schema_is_legacy(const char *name)
{
    return name != NULL && strncasecmp(name, PL_LEGACY_PREFIX, sizeof PL_LEGACY_PREFIX - 1) == 0;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

void pl_schema_normalize_type(sqlite3_str *out, const char *type)
{
    char last = '(';
    int blank = 0;

    for (const char *p = type ? type : ""; *p != '\0'; p++) {
        char ch = *p;
        if (is_blank(ch)) {
            blank = 1;
            continue;
        }
        if (blank && !strchr("(,", last) && !strchr("(),", ch))
            sqlite3_str_appendchar(out, 1, ' ');
        blank = 0;
        last = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
        sqlite3_str_appendchar(out, 1, last);
    }
}

/* True when the `len` bytes at `s` close every parenthesis they open, outside
 * quotes, and never close one they did not open. */
static int balanced(const char *s, size_t len)
{
    int depth = 0;
    char quote = 0;

    for (size_t i = 0; i < len; i++) {
        if (quote) {
            if (s[i] == quote)
                quote = 0;
        } else if (s[i] == '\'' || s[i] == '"') {
            quote = s[i];
        } else if (s[i] == '(') {
            depth++;
        } else if (s[i] == ')' && --depth < 0) {
            return 0;
        }
    }
    return depth == 0 && quote == 0;
}

void pl_schema_normalize_default(sqlite3_str *out, const char *expr)
{
    const char *start = expr ? expr : "";
    size_t len = strlen(start);

    for (;;) {
        while (len > 0 && is_blank(*start)) {
            start++;
            len--;
        }
        while (len > 0 && is_blank(start[len - 1]))
            len--;
        if (len < 2 || start[0] != '(' || start[len - 1] != ')' || !balanced(start + 1, len - 2))
            break;
        start++;
        len -= 2;
    }
    sqlite3_str_append(out, start, (int)len);
}

/* Append `sql` with its runs of blanks made one space, and none at either
 * end: two definitions of a view or trigger compare equal under this. */
static void normalize_blanks(sqlite3_str *out, const char *sql)
{
    int blank = 0, any = 0;

    for (const char *p = sql ? sql : ""; *p != '\0'; p++) {
        if (is_blank(*p)) {
            blank = 1;
            continue;
        }
        if (blank && any)
            sqlite3_str_appendchar(out, 1, ' ');
        blank = 0;
        any = 1;
        sqlite3_str_appendchar(out, 1, *p);
    }
}

/* Append the identifier `name` as SQL: bare when it is a plain name
 * ([A-Za-z_][A-Za-z0-9_]*) and no keyword of this SQLite, else in double
 * quotes (as promptlab.sqlite.schema.quote writes it). */
static void quote_name(sqlite3_str *out, const char *name)
{
    size_t len = strlen(name ? name : "");
    int plain = len > 0 && len < INT_MAX && !(name[0] >= '0' && name[0] <= '9');

    for (size_t i = 0; plain && i < len; i++) {
        char ch = name[i];
        plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '_';
    }
    if (plain && !sqlite3_keyword_check(name, (int)len)) {
        sqlite3_str_append(out, name, (int)len);
        return;
    }
    sqlite3_str_appendchar(out, 1, '"');
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '"')
            sqlite3_str_appendchar(out, 1, '"');
        sqlite3_str_appendchar(out, 1, name[i]);
    }
    sqlite3_str_appendchar(out, 1, '"');
}

/* The user data of pl_type, pl_default, pl_blanks and pl_quote: which
 * normalizer they run. */
typedef struct {
    void (*fn)(sqlite3_str *out, const char *text);
} normalizer;

static const normalizer TYPE_NORMALIZER = {pl_schema_normalize_type};
static const normalizer DEFAULT_NORMALIZER = {pl_schema_normalize_default};
static const normalizer BLANKS_NORMALIZER = {normalize_blanks};
static const normalizer QUOTE_NORMALIZER = {quote_name};

/* pl_type(x), pl_default(x), pl_blanks(x), pl_quote(x): the normalizers as SQL
 * functions (NULL for NULL). */
static void sql_normalize(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const normalizer *normalize = sqlite3_user_data(ctx);
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    sqlite3_str *s;

    if (text == NULL)
        return; /* NULL in, NULL out */
    s = sqlite3_str_new(sqlite3_context_db_handle(ctx));
    normalize->fn(s, text);
    if (sqlite3_str_errcode(s) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int len = sqlite3_str_length(s);
    char *result = sqlite3_str_finish(s);
    sqlite3_result_text(ctx, result ? result : "", len, result ? sqlite3_free : SQLITE_STATIC);
}

/* pl_legacy(name): pl_schema_is_legacy as an SQL function. */
static void sql_is_legacy(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite3_result_int(ctx, pl_schema_is_legacy((const char *)sqlite3_value_text(argv[0])));
}

sqlite3 *pl_catalog_open(pl_err *err)
{
    static const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    static const struct {
        const char *name;
        const normalizer *fn;
    } fns[] = {{"pl_type", &TYPE_NORMALIZER},
               {"pl_default", &DEFAULT_NORMALIZER},
               {"pl_blanks", &BLANKS_NORMALIZER},
               {"pl_quote", &QUOTE_NORMALIZER}};
    sqlite3 *cat = NULL;
    int rc = sqlite3_open_v2(":memory:", &cat, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

    for (size_t i = 0; rc == SQLITE_OK && i < sizeof fns / sizeof fns[0]; i++)
        rc = sqlite3_create_function(cat, fns[i].name, 1, flags, (void *)fns[i].fn, sql_normalize,
                                     NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(cat, "pl_legacy", 1, flags, NULL, sql_is_legacy, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(cat, CATALOG_SQL, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, cat, NULL, "creating an in-memory schema catalog");
        sqlite3_close(cat);
        return NULL;
    }
    return cat;
}

/* Insert the current row of `from` into the catalog with `ins`: ?1 = src,
 * then its columns. Returns 0 or -1 with `err` set. */
static int copy_row(pl_query *ins, const pl_query *from, int src, pl_err *err)
{
    int n = sqlite3_column_count(from->st), rc;

    if (pl_query_bind_int(ins, 1, src, err) < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (pl_query_bind_value(ins, i + 2, sqlite3_column_value(from->st, i), err) < 0)
            return -1;
    rc = pl_query_next(ins, err);
    pl_query_reset(ins);
    return rc < 0 ? -1 : 0;
}

int pl_catalog_copy(sqlite3 *cat, sqlite3 *db, const char *path, const char *query,
                    const char *insert, int src, pl_err *err)
{
    pl_query q = {0}, ins = {0};
    int rc = -1;

    if (pl_query_start_db(&q, db, path, query, "reading the schema", err) < 0 ||
        pl_query_start_db(&ins, cat, NULL, insert, "recording the schema", err) < 0)
        goto done;
    while ((rc = pl_query_next(&q, err)) > 0)
        if (copy_row(&ins, &q, src, err) < 0) {
            rc = -1;
            break;
        }
done:
    pl_query_end(&q);
    pl_query_end(&ins);
    return rc < 0 ? -1 : 0;
}

int pl_catalog_add(sqlite3 *cat, sqlite3 *db, const char *path, int src, pl_err *err)
{
    for (size_t i = 0; i < sizeof COPIES / sizeof COPIES[0]; i++)
        if (pl_catalog_copy(cat, db, path, COPIES[i].query, COPIES[i].insert, src, err) < 0)
            return -1;
    return 0;
}

/* A new, empty in-memory database into *work. Returns 0 or -1 with `err` set
 * (*work closed and NULL). */
static int open_scratch(sqlite3 **work, pl_err *err)
{
    int rc = sqlite3_open_v2(":memory:", work, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

    if (rc != SQLITE_OK) {
        pl_err_from_sqlite(err, rc, *work, NULL, "opening an in-memory database");
        sqlite3_close(*work);
        *work = NULL;
        return -1;
    }
    return 0;
}

int pl_catalog_add_chain(sqlite3 *cat, const pl_chain *chain, int upto, pl_err *err)
{
    sqlite3 *work = NULL;
    char *msg = NULL;
    int rc = -1;

    if (open_scratch(&work, err) < 0)
        return -1;
    for (int i = 0; i <= upto && i < chain->count; i++) {
        const pl_migration *m = &chain->items[i];
        if (sqlite3_exec(work, m->up, NULL, NULL, &msg) != SQLITE_OK) {
            pl_err_set(err, PL_E_MIGRATION, NULL,
                       "migration %s (%s in %s) fails on an empty database: %s. Fix its "
                       "'-- migrate:up' section.",
                       m->revision, m->filename, chain->dir, msg ? msg : "unknown error");
            goto done;
        }
        if (pl_catalog_add(cat, work, ":memory:", i, err) < 0)
            goto done;
    }
    rc = 0;
done:
    sqlite3_free(msg);
    sqlite3_close(work);
    return rc;
}

int pl_catalog_add_script(sqlite3 *cat, const char *script, int src, pl_err *err)
{
    sqlite3 *work = NULL;
    char *msg = NULL;
    int rc = -1;

    if (open_scratch(&work, err) < 0)
        return -1;
    sqlite3_limit(work, SQLITE_LIMIT_ATTACHED, 0); /* declarations touch no other file */
    if (sqlite3_exec(work, script, NULL, NULL, &msg) != SQLITE_OK) {
        pl_err_set(err, PL_E_MIGRATION, NULL,
                   "the declared schema does not build on an empty database: %s. Fix the "
                   "declarations.",
                   msg ? msg : "unknown error");
        goto done;
    }
    rc = pl_catalog_add(cat, work, ":memory:", src, err);
done:
    sqlite3_free(msg);
    sqlite3_close(work);
    return rc;
}

/* Compare the live database with revision r as recognising a layout does:
 * legacy_* tables and the live tables no revision names are left out, and so
 * are the live tables that revision `aside` creates and r does not. `flags`
 * adds PL_DIFF_* flags. Returns the number of differences (in cat_diff) or -1
 * with `err` set. */
static int layout_diff(sqlite3 *cat, int r, int aside, int flags, pl_err *err)
{
    pl_diff_spec spec = {r, PL_CATALOG_LIVE, aside, PL_DIFF_NO_LEGACY | PL_DIFF_KNOWN_ONLY | flags};

    return pl_schema_diff(cat, &spec, err);
}

/* Append the description of the layout difference in st's current row
 * (cat_diff: kind, tbl, name, expected, actual) to `text`, after "; " unless
 * it is the first. */
static void describe_difference(sqlite3_stmt *st, int first, sqlite3_str *text)
{
    const char *kind = (const char *)sqlite3_column_text(st, 0);
    const char *tbl = (const char *)sqlite3_column_text(st, 1);
    const char *name = (const char *)sqlite3_column_text(st, 2);
    const char *want = (const char *)sqlite3_column_text(st, 3);
    const char *have = (const char *)sqlite3_column_text(st, 4);

    if (!first)
        sqlite3_str_appendall(text, "; ");
    if (kind != NULL && strcmp(kind, "table") == 0)
        sqlite3_str_appendf(text, have == NULL ? "no table %s" : "table %s is not part of it",
                            name);
    else if (kind != NULL && strcmp(kind, "column") == 0)
        sqlite3_str_appendf(text,
                            have == NULL ? "table %s lacks column %s"
                                         : "table %s has an unexpected column %s",
                            tbl, name);
    else
        sqlite3_str_appendf(text, "table %s has primary key (%s) instead of (%s)", tbl,
                            have ? have : "rowid", want ? want : "rowid");
}

/* Describe the rows of cat_diff, made by layout_diff, into `text`. Returns 0
 * or -1 with `err` set. */
static int describe_differences(sqlite3 *cat, sqlite3_str *text, pl_err *err)
{
    pl_query q;
    int rc, n = 0;

    if (pl_query_start_db(&q, cat, NULL,
                          "SELECT kind, tbl, name, expected, actual FROM cat_diff ORDER BY rowid",
                          "comparing schemas", err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0)
        describe_difference(q.st, n++ == 0, text);
    pl_query_end(&q);
    return rc < 0 ? -1 : 0;
}

/* The live tables named like a table of the chain: their count, and their
 * names into `names` (may be NULL). Returns the count or -1. */
static int our_live_tables(sqlite3 *cat, sqlite3_str *names, pl_err *err)
{
    pl_query q;
    int rc, n = 0;

    if (pl_query_start_db(&q, cat, NULL,
                          "SELECT name FROM cat_objects WHERE src = -1 AND type = 'table'"
                          " AND name IN (SELECT name FROM cat_objects WHERE src >= 0"
                          " AND type = 'table' AND NOT pl_legacy(name))"
                          " ORDER BY name",
                          "comparing schemas", err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0) {
        if (names != NULL)
            sqlite3_str_appendf(names, "%s%s", n ? ", " : "", sqlite3_column_text(q.st, 0));
        n++;
    }
    pl_query_end(&q);
    return rc < 0 ? -1 : n;
}

/* Fill `err` with the refusal of a layout that matches no revision: the
 * differences from the closest revision `closest`. Returns -1. */
static int refuse_layout(sqlite3 *cat, const pl_chain *chain, const char *path, int closest,
                         pl_err *err)
{
    sqlite3_str *names = sqlite3_str_new(NULL), *diff = sqlite3_str_new(NULL);
    char *names_text = NULL, *diff_text = NULL;

    if (our_live_tables(cat, names, err) >= 0 &&
        layout_diff(cat, closest, PL_DIFF_NO_SOURCE, PL_DIFF_LAYOUT, err) >= 0 &&
        describe_differences(cat, diff, err) >= 0) {
        names_text = sqlite3_str_finish(names);
        diff_text = sqlite3_str_finish(diff);
        names = diff = NULL;
        const pl_migration *m = &chain->items[closest];
        pl_err_set(err, PL_E_MIGRATION, path,
                   "the database has no PromptLab revision, and its tables named like "
                   "PromptLab's (%s) match no layout PromptLab knows. The closest is "
                   "revision %s (%s, \"%s\"), which differs: %s. The file was left "
                   "unchanged; open it with the program that wrote it, or pass the path of "
                   "a PromptLab database or of a new file.",
                   names_text ? names_text : "", m->revision, m->filename, m->message,
                   diff_text ? diff_text : "");
    }
    sqlite3_free(sqlite3_str_finish(names));
    sqlite3_free(sqlite3_str_finish(diff));
    sqlite3_free(names_text);
    sqlite3_free(diff_text);
    return -1;
}

/* How many tables revision r + 1 creates, revision r does not, and the live
 * database holds. Returns the count or -1 with `err` set. */
static int count_early(sqlite3 *cat, int r, pl_err *err)
{
    pl_query q;
    int rc, n = 0;

    if (pl_query_start_db(&q, cat, NULL,
                          "SELECT count(*) FROM cat_objects WHERE src = ?1 AND type = 'table'"
                          " AND name NOT IN (SELECT name FROM cat_objects WHERE src = ?2"
                          " AND type = 'table') AND name IN (SELECT name FROM cat_objects"
                          " WHERE src = -1 AND type = 'table')",
                          "comparing schemas", err) < 0)
        return -1;
    if (pl_query_bind_int(&q, 1, r + 1, err) < 0 || pl_query_bind_int(&q, 2, r, err) < 0) {
        pl_query_end(&q);
        return -1;
    }
    rc = pl_query_next(&q, err);
    if (rc > 0)
        n = sqlite3_column_int(q.st, 0);
    pl_query_end(&q);
    return rc < 0 ? -1 : n;
}

/* Whether the live database is the layout of revision `r` plus the tables
 * revision r + 1 creates, made by a newer release that added its new tables to
 * an older file (SQLAlchemy create_all) and then failed: *yes is set when the
 * other tables match revision r loosely and those tables match revision r + 1
 * column by column, in order. Returns 0 or -1 with `err` set. */
static int early_tables(sqlite3 *cat, int r, int *yes, pl_err *err)
{
    char *early = NULL;
    int n, present, differ, rc = -1;

    *yes = 0;
    n = layout_diff(cat, r, r + 1, PL_DIFF_LAYOUT, err);
    if (n != 0)
        return n < 0 ? -1 : 0;
    early = sqlite3_mprintf("lower(tbl) IN (SELECT lower(name) FROM cat_objects WHERE src = %d"
                            " AND type = 'table' AND lower(name) NOT IN (SELECT lower(name)"
                            " FROM cat_objects WHERE src = %d AND type = 'table')"
                            " AND lower(name) IN (SELECT lower(name) FROM cat_objects"
                            " WHERE src = -1 AND type = 'table'))",
                            r + 1, r);
    if (early == NULL)
        return pl_err_set(err, PL_E_NOMEM, NULL, "out of memory while comparing schemas");
    /* cat_diff rows of kind "table" name their table in tbl too. */
    if (layout_diff(cat, r + 1, PL_DIFF_NO_SOURCE, PL_DIFF_LAYOUT | PL_DIFF_COLUMN_ORDER, err) <
            0 ||
        (differ = pl_schema_diff_count(cat, early, err)) < 0)
        goto done;
    present = count_early(cat, r, err);
    if (present < 0)
        goto done;
    *yes = present > 0 && differ == 0;
    rc = 0;
done:
    sqlite3_free(early);
    return rc;
}
int pl_schema_detect(sqlite3 *db, const char *path, const pl_chain *chain, int *index, int *early,
                     pl_err *err)
{
    sqlite3 *cat = NULL;
    int rc = -1, loose = -1, exact = -1, closest = -1, closest_n = 0;

    *index = -1;
    if (early != NULL)
        *early = 0;
    cat = pl_catalog_open(err);
    if (cat == NULL)
        return -1;
    if (pl_catalog_add(cat, db, path, PL_CATALOG_LIVE, err) < 0 ||
        pl_catalog_add_chain(cat, chain, chain->count - 1, err) < 0)
        goto done;
    int ours = our_live_tables(cat, NULL, err);
    if (ours < 0)
        goto done;
    if (ours == 0) {
        pl_err_set(err, PL_E_MIGRATION, path,
                   "the database holds tables but no PromptLab revision, and none of them is "
                   "a PromptLab table. It was left unchanged; pass the path of a PromptLab "
                   "database or of a new file.");
        goto done;
    }
    for (int r = 0; r < chain->count; r++) {
        int n = layout_diff(cat, r, PL_DIFF_NO_SOURCE, PL_DIFF_LAYOUT, err);
        if (n < 0)
            goto done;
        if (closest < 0 || n <= closest_n) {
            closest = r;
            closest_n = n;
        }
        if (n > 0)
            continue;
        if (loose < 0)
            loose = r;
        /* Exactly: the same comparison in full, over the same tables. */
        if (layout_diff(cat, r, PL_DIFF_NO_SOURCE, 0, err) < 0)
            goto done;
        int d = pl_schema_diff_count(cat, "kind IN ('column', 'index', 'constraint')", err);
        if (d < 0)
            goto done;
        if (d == 0 && exact < 0)
            exact = r;
    }
    if (loose < 0) {
        /* PromptLab 0.1.11 opening a 0.1.3 file adds its users table (and the
         * admin) before its first query fails: the L2 layout plus the users
         * table of L3. The migration to L3 adopts that table (migrate.c). */
        int l2 = pl_chain_index(chain, PL_REVISION_L2), yes = 0;
        if (early != NULL && l2 >= 0 && l2 + 1 < chain->count) {
            if (early_tables(cat, l2, &yes, err) < 0)
                goto done;
            if (yes) {
                *index = l2;
                *early = 1;
                rc = 0;
                goto done;
            }
        }
        refuse_layout(cat, chain, path, closest, err);
        goto done;
    }
    *index = exact >= 0 ? exact : loose;
    rc = 0;
done:
    sqlite3_close(cat);
    return rc;
}
