/* schema.c: the schema catalog, and recognising the layout of a database. */
#include "schema.h"
#include "query.h"

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
    " applied_at TEXT, duration_ms REAL);";

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

/* The user data of pl_type and pl_default: which normalizer they run. */
typedef struct {
    void (*fn)(sqlite3_str *out, const char *text);
} normalizer;

static const normalizer TYPE_NORMALIZER = {pl_schema_normalize_type};
static const normalizer DEFAULT_NORMALIZER = {pl_schema_normalize_default};

/* pl_type(x), pl_default(x): the normalizers as SQL functions (NULL for NULL). */
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
    sqlite3 *cat = NULL;
    int rc = sqlite3_open_v2(":memory:", &cat, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(cat, "pl_type", 1, flags, (void *)&TYPE_NORMALIZER,
                                     sql_normalize, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(cat, "pl_default", 1, flags, (void *)&DEFAULT_NORMALIZER,
                                     sql_normalize, NULL, NULL);
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

int pl_catalog_add_chain(sqlite3 *cat, const pl_chain *chain, int upto, pl_err *err)
{
    sqlite3 *work = NULL;
    char *msg = NULL;
    int rc = -1;

    if (sqlite3_open_v2(":memory:", &work, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        pl_err_from_sqlite(err, sqlite3_errcode(work), work, NULL, "opening an in-memory database");
        goto done;
    }
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

/* The differences in table and column names and primary keys between the live
 * database and revision ?1, as (kind, table, detail, detail2) rows. Live tables
 * that revision ?2 creates and revision ?1 does not are set aside (?2 = -2:
 * none is). */
static const char LOOSE_DIFF_SQL[] =
    "WITH ours(name) AS (SELECT name FROM cat_objects WHERE src >= 0 AND type = 'table'"
    "   AND NOT pl_legacy(name)),"
    " live(name) AS (SELECT name FROM cat_objects WHERE src = -1 AND type = 'table'"
    "   AND name IN ours AND name NOT IN (SELECT name FROM cat_objects WHERE src = ?2"
    "   AND type = 'table' AND name NOT IN (SELECT name FROM cat_objects WHERE src = ?1"
    "   AND type = 'table'))),"
    " want(name) AS (SELECT name FROM cat_objects WHERE src = ?1 AND type = 'table'"
    "   AND NOT pl_legacy(name)),"
    " both(name) AS (SELECT name FROM want WHERE name IN live),"
    " pks(src, tbl, cols) AS (SELECT src, tbl, group_concat(name, ', ') FROM"
    "   (SELECT src, tbl, name FROM cat_columns WHERE pk > 0 AND src IN (-1, ?1)"
    "    ORDER BY src, tbl, pk) GROUP BY src, tbl)"
    " SELECT 1, name, NULL, NULL FROM want WHERE name NOT IN live"
    " UNION ALL SELECT 2, name, NULL, NULL FROM live WHERE name NOT IN want"
    " UNION ALL SELECT 3, w.tbl, w.name, NULL FROM cat_columns w WHERE w.src = ?1"
    "   AND w.tbl IN both AND NOT EXISTS (SELECT 1 FROM cat_columns l WHERE l.src = -1"
    "   AND l.tbl = w.tbl AND l.name = w.name)"
    " UNION ALL SELECT 4, l.tbl, l.name, NULL FROM cat_columns l WHERE l.src = -1"
    "   AND l.tbl IN both AND NOT EXISTS (SELECT 1 FROM cat_columns w WHERE w.src = ?1"
    "   AND w.tbl = l.tbl AND w.name = l.name)"
    " UNION ALL SELECT 5, b.name,"
    "   (SELECT cols FROM pks WHERE src = -1 AND tbl = b.name),"
    "   (SELECT cols FROM pks WHERE src = ?1 AND tbl = b.name) FROM both b"
    "   WHERE lower((SELECT cols FROM pks WHERE src = -1 AND tbl = b.name)) IS NOT"
    "         lower((SELECT cols FROM pks WHERE src = ?1 AND tbl = b.name))";

/* How many column attributes, indexes and foreign keys of the tables of
 * revision ?1 differ between it and the live database. */
static const char EXACT_DIFF_SQL[] =
    "WITH want(name) AS (SELECT name FROM cat_objects WHERE src = ?1 AND type = 'table'"
    "   AND NOT pl_legacy(name)),"
    " sig(src, s) AS ("
    "  SELECT src, lower(tbl || '.' || name) || '|' || pl_type(ifnull(type, '')) || '|'"
    "     || not_null || '|' || ifnull(pl_default(dflt), '~') || '|' || pk"
    "   FROM cat_columns WHERE src IN (-1, ?1) AND tbl IN want"
    "  UNION ALL"
    "  SELECT i.src, lower('index|' || i.tbl || '|'"
    "     || CASE WHEN i.origin = 'c' THEN i.name ELSE i.origin END || '|' || i.uniq || '|'"
    "     || ifnull((SELECT group_concat(ifnull(name, '?'), ',') FROM (SELECT x.name"
    "        FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name"
    "        ORDER BY x.seqno)), ''))"
    "   FROM cat_indexes i WHERE i.src IN (-1, ?1) AND i.tbl IN want"
    "  UNION ALL"
    "  SELECT src, lower('fk|' || tbl || '|' || from_col || '|' || ref || '|'"
    "     || ifnull(to_col, ''))"
    "   FROM cat_foreign_keys WHERE src IN (-1, ?1) AND tbl IN want)"
    " SELECT (SELECT count(*) FROM (SELECT s FROM sig WHERE src = ?1"
    "                              EXCEPT SELECT s FROM sig WHERE src = -1))"
    "      + (SELECT count(*) FROM (SELECT s FROM sig WHERE src = -1"
    "                              EXCEPT SELECT s FROM sig WHERE src = ?1))";

/* The tables that revision ?2 creates, revision ?1 does not, and the live
 * database holds: how many there are (first column), and how many of their
 * columns (position, name, primary key) differ from revision ?2 (second). */
static const char EARLY_TABLES_SQL[] =
    "WITH early(name) AS (SELECT name FROM cat_objects WHERE src = ?2 AND type = 'table'"
    "   AND name NOT IN (SELECT name FROM cat_objects WHERE src = ?1 AND type = 'table')"
    "   AND name IN (SELECT name FROM cat_objects WHERE src = -1 AND type = 'table')),"
    " sig(src, s) AS (SELECT src, lower(tbl || '|' || cid || '|' || name || '|' || pk)"
    "   FROM cat_columns WHERE src IN (-1, ?2) AND tbl IN early)"
    " SELECT (SELECT count(*) FROM early),"
    "   (SELECT count(*) FROM (SELECT s FROM sig WHERE src = ?2"
    "                          EXCEPT SELECT s FROM sig WHERE src = -1))"
    " + (SELECT count(*) FROM (SELECT s FROM sig WHERE src = -1"
    "                          EXCEPT SELECT s FROM sig WHERE src = ?2))";

/* Append the description of the loose difference in st's current row (kind,
 * table, detail, detail2) to `text`, after "; " unless it is the first. */
static void describe_difference(sqlite3_stmt *st, int first, sqlite3_str *text)
{
    const char *tbl = (const char *)sqlite3_column_text(st, 1);
    const char *a = (const char *)sqlite3_column_text(st, 2);
    const char *b = (const char *)sqlite3_column_text(st, 3);

    if (!first)
        sqlite3_str_appendall(text, "; ");
    switch (sqlite3_column_int(st, 0)) {
    case 1:
        sqlite3_str_appendf(text, "no table %s", tbl);
        break;
    case 2:
        sqlite3_str_appendf(text, "table %s is not part of it", tbl);
        break;
    case 3:
        sqlite3_str_appendf(text, "table %s lacks column %s", tbl, a);
        break;
    case 4:
        sqlite3_str_appendf(text, "table %s has an unexpected column %s", tbl, a);
        break;
    default:
        sqlite3_str_appendf(text, "table %s has primary key (%s) instead of (%s)", tbl,
                            a ? a : "rowid", b ? b : "rowid");
        break;
    }
}

/* Start `sql` on the catalog with ?1 = r and, when it has a second
 * parameter, ?2 = r2. Returns 0 or -1 with `err` set (q ended). */
static int start_diff(pl_query *q, sqlite3 *cat, const char *sql, int r, int r2, pl_err *err)
{
    if (pl_query_start_db(q, cat, NULL, sql, "comparing schemas", err) < 0)
        return -1;
    if (pl_query_bind_int(q, 1, r, err) < 0 ||
        (sqlite3_bind_parameter_count(q->st) >= 2 && pl_query_bind_int(q, 2, r2, err) < 0)) {
        pl_query_end(q);
        return -1;
    }
    return 0;
}

/* Run `sql` with ?1 = r and ?2 = r2 (-2: no revision). With `text` NULL, count
 * the rows (or return the first column of the first row when `scalar`);
 * otherwise also describe the loose differences into `text`. Returns the
 * count, or -1 with `err` set. */
static int run_diff(sqlite3 *cat, const char *sql, int r, int r2, int scalar, sqlite3_str *text,
                    pl_err *err)
{
    pl_query q;
    int rc, n = 0;

    if (start_diff(&q, cat, sql, r, r2, err) < 0)
        return -1;
    while ((rc = pl_query_next(&q, err)) > 0) {
        if (scalar) {
            n = sqlite3_column_int(q.st, 0);
            continue;
        }
        if (text != NULL)
            describe_difference(q.st, n == 0, text);
        n++;
    }
    pl_query_end(&q);
    return rc < 0 ? -1 : n;
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
        run_diff(cat, LOOSE_DIFF_SQL, closest, -2, 0, diff, err) >= 0) {
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

/* Whether the live database is the layout of revision `r` plus the tables
 * revision r + 1 creates, made by a newer release that added its new tables to
 * an older file (SQLAlchemy create_all) and then failed: *yes is set when the
 * other tables match revision r loosely and those tables match revision r + 1
 * column by column. Returns 0 or -1 with `err` set. */
static int early_tables(sqlite3 *cat, int r, int *yes, pl_err *err)
{
    pl_query q;
    int rc, present = 0, differ = 1;

    *yes = 0;
    int n = run_diff(cat, LOOSE_DIFF_SQL, r, r + 1, 0, NULL, err);
    if (n != 0)
        return n < 0 ? -1 : 0;
    if (start_diff(&q, cat, EARLY_TABLES_SQL, r, r + 1, err) < 0)
        return -1;
    rc = pl_query_next(&q, err);
    if (rc > 0) {
        present = sqlite3_column_int(q.st, 0);
        differ = sqlite3_column_int(q.st, 1);
    }
    pl_query_end(&q);
    if (rc < 0)
        return -1;
    *yes = present > 0 && differ == 0;
    return 0;
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
        int n = run_diff(cat, LOOSE_DIFF_SQL, r, -2, 0, NULL, err);
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
        int d = run_diff(cat, EXACT_DIFF_SQL, r, -2, 1, NULL, err);
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
