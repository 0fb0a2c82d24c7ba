/* schemadiff.c: the one comparison of two schemas in a catalog (schemadiff.h). */
#include "schemadiff.h"
#include "query.h"

/* The comparison runs as a few small statements (one large one cost about
 * 5 ms to prepare, more than the comparison itself). Parameters of every
 * statement: ?1 expected source, ?2 actual source, ?3 the source whose new
 * tables are set aside, ?4 the PL_DIFF_* flags (1 LAYOUT, 2 LEGACY_MISSING_OK,
 * 4 LEGACY_EXTRA_OK, 8 NO_LEGACY, 16 KNOWN_ONLY, 32 COLUMN_ORDER); each
 * statement uses ?1 up to the highest it needs.
 *
 * The first ones fill cat_items with every compared thing of both sides as
 * (src, kind, rank, tbl, name, key, description, table position, position):
 * two items of the same kind, table and name (without case: the columns are
 * COLLATE NOCASE) are the same thing, and differ when their keys do. The
 * last one pairs them into cat_diff. */

/* The compared tables: the tables of the two sources, less the legacy ones
 * (NO_LEGACY), the actual ones no revision names (KNOWN_ONLY), and the actual
 * ones set aside. Their description is their column names in order. */
static const char ITEMS_TABLES_SQL[] =
    "INSERT INTO cat_items SELECT o.src, 'table', 0, o.name, o.name, '',"
    " (SELECT group_concat(name, ', ') FROM (SELECT name FROM cat_columns c"
    "   WHERE c.src = o.src AND c.tbl = o.name ORDER BY c.cid)), o.rowid, 0"
    " FROM cat_objects o WHERE o.src IN (?1, ?2) AND o.type = 'table'"
    " AND NOT (?4 & 8 AND pl_legacy(o.name))"
    " AND NOT (o.src = ?2 AND ?4 & 16 AND o.name NOT IN"
    "   (SELECT name FROM cat_objects WHERE src >= 0 AND type = 'table'))"
    " AND NOT (o.src = ?2 AND o.name IN (SELECT name FROM cat_objects WHERE src = ?3"
    "   AND type = 'table') AND o.name NOT IN (SELECT name FROM cat_objects"
    "   WHERE src = ?1 AND type = 'table'))";

/* Columns: in full, their declaration as compared (normalized type, NOT NULL,
 * primary-key position, AUTOINCREMENT, single-column UNIQUE, normalized
 * DEFAULT, single-column REFERENCES); with LAYOUT, their name only. */
static const char ITEMS_COLUMNS_SQL[] =
    "INSERT INTO cat_items SELECT src, 'column', 1, tbl, name,"
    " CASE WHEN ?4 & 1 THEN '' ELSE type || '|' || pk || '|' || not_null || '|'"
    "   || quote(dflt) || '|' || uniq || '|' || autoinc || '|' || lower(ifnull(refs, '')) END,"
    " CASE WHEN ?4 & 1 THEN name ELSE coalesce(nullif(type, ''), '(no type)')"
    "   || CASE WHEN not_null THEN ' NOT NULL' ELSE '' END"
    "   || CASE WHEN pk > 0 THEN ' PRIMARY KEY'"
    "        || CASE WHEN autoinc THEN ' AUTOINCREMENT' ELSE '' END ELSE '' END"
    "   || CASE WHEN uniq THEN ' UNIQUE' ELSE '' END"
    "   || ifnull(' DEFAULT ' || dflt, '') || ifnull(' REFERENCES ' || refs, '') END,"
    " tpos, cid FROM (SELECT c.src, c.tbl, c.cid, c.name, pl_type(ifnull(c.type, '')) AS type,"
    "   c.not_null, pl_default(c.dflt) AS dflt, c.pk, t.tpos,"
    "   c.pk = 1 AND pl_type(ifnull(c.type, '')) = 'INTEGER'"
    "     AND upper(o.sql) GLOB '*[^A-Z0-9_]AUTOINCREMENT[^A-Z0-9_]*' AS autoinc,"
    "   EXISTS (SELECT 1 FROM cat_indexes i WHERE i.src = c.src AND i.tbl = c.tbl"
    "     AND i.origin = 'u' AND (SELECT count(*) FROM cat_index_columns x"
    "       WHERE x.src = i.src AND x.idx = i.name) = 1"
    "     AND (SELECT x.name FROM cat_index_columns x WHERE x.src = i.src"
    "       AND x.idx = i.name) = c.name) AS uniq,"
    "   (SELECT group_concat(f.ref || '.' || ifnull(f.to_col, 'rowid'), ', ')"
    "     FROM cat_foreign_keys f WHERE f.src = c.src AND f.tbl = c.tbl"
    "     AND f.from_col = c.name AND (SELECT count(*) FROM cat_foreign_keys g"
    "       WHERE g.src = f.src AND g.tbl = f.tbl AND g.id = f.id) = 1) AS refs"
    "   FROM cat_columns c JOIN cat_items t ON t.kind = 'table' AND t.src = c.src"
    "   AND t.name = c.tbl JOIN cat_objects o ON o.src = c.src AND o.type = 'table'"
    "   AND o.name = c.tbl)";

/* In full: named indexes (their columns, UNIQUE) and multi-column UNIQUE
 * constraints (as SQL, names quoted as promptlab.sqlite.schema.quote does). */
static const char ITEMS_INDEXES_SQL[] =
    "INSERT INTO cat_items SELECT DISTINCT src,"
    " CASE WHEN origin = 'c' THEN 'index' ELSE 'constraint' END,"
    " CASE WHEN origin = 'c' THEN 2 ELSE 3 END, tbl,"
    " CASE WHEN origin = 'c' THEN name ELSE 'UNIQUE (' || qcols || ')' END,"
    " CASE WHEN origin = 'c' THEN lower(cols) || '|' || uniq"
    "   ELSE lower('UNIQUE (' || qcols || ')') END,"
    " CASE WHEN origin = 'c' THEN '(' || cols || ')' || CASE WHEN uniq THEN ' UNIQUE' ELSE ''"
    "   END ELSE 'UNIQUE (' || qcols || ')' END, tpos, rid"
    " FROM (SELECT i.src, i.tbl, i.name, i.uniq, i.origin, i.rowid AS rid, t.tpos,"
    "   ifnull((SELECT group_concat(n, ', ') FROM (SELECT ifnull(x.name, '?') AS n"
    "     FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name"
    "     ORDER BY x.seqno)), '') AS cols,"
    "   (SELECT group_concat(n, ', ') FROM (SELECT pl_quote(ifnull(x.name, '?')) AS n"
    "     FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name"
    "     ORDER BY x.seqno)) AS qcols,"
    "   (SELECT count(*) FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name) AS n"
    "   FROM cat_indexes i JOIN cat_items t ON t.kind = 'table' AND t.src = i.src"
    "   AND t.name = i.tbl WHERE i.origin IN ('c', 'u') AND NOT ?4 & 1)"
    " WHERE origin = 'c' OR n > 1";

/* In full: multi-column FOREIGN KEY constraints, as SQL. */
static const char ITEMS_KEYS_SQL[] =
    "INSERT INTO cat_items SELECT DISTINCT src, 'constraint', 3, tbl, sql, lower(sql), sql,"
    " tpos, 1000000 + id FROM (SELECT k.src, k.tbl, k.id, t.tpos,"
    "   'FOREIGN KEY (' || (SELECT group_concat(pl_quote(f), ', ') FROM (SELECT from_col AS f"
    "     FROM cat_foreign_keys g WHERE g.src = k.src AND g.tbl = k.tbl AND g.id = k.id"
    "     ORDER BY g.seq)) || ') REFERENCES ' || pl_quote(k.ref) || ' ('"
    "   || (SELECT group_concat(pl_quote(ifnull(o, '?')), ', ') FROM (SELECT to_col AS o"
    "     FROM cat_foreign_keys g WHERE g.src = k.src AND g.tbl = k.tbl AND g.id = k.id"
    "     ORDER BY g.seq)) || ')' AS sql"
    "   FROM (SELECT src, tbl, id, max(ref) AS ref FROM cat_foreign_keys WHERE src IN (?1, ?2)"
    "     GROUP BY src, tbl, id HAVING count(*) > 1) k"
    "   JOIN cat_items t ON t.kind = 'table' AND t.src = k.src AND t.name = k.tbl"
    "   WHERE NOT ?4 & 1)";

/* With LAYOUT: each table's primary key (its columns in key order; rowid). */
static const char ITEMS_PRIMARY_SQL[] =
    "INSERT INTO cat_items SELECT src, 'constraint', 3, name, 'PRIMARY KEY',"
    " lower(ifnull(cols, '')), ifnull(cols, 'rowid'), tpos, 0 FROM (SELECT t.src, t.name,"
    "   t.tpos, (SELECT group_concat(name, ', ') FROM (SELECT name FROM cat_columns c"
    "     WHERE c.src = t.src AND c.tbl = t.name AND c.pk > 0 ORDER BY c.pk)) AS cols"
    "   FROM cat_items t WHERE t.kind = 'table' AND ?4 & 1)";

/* In full: views and triggers, their SQL with blanks collapsed. */
static const char ITEMS_OTHERS_SQL[] =
    "INSERT INTO cat_items SELECT src, 'view-or-trigger', 4, NULL, name,"
    " pl_blanks(ifnull(sql, '')), sql, 1000000000000, rowid FROM cat_objects"
    " WHERE src IN (?1, ?2) AND type IN ('view', 'trigger') AND NOT ?4 & 1";

/* Pair the items of the two sides into cat_diff: what only one side has, and
 * what both have with different keys (columns, indexes and constraints of
 * tables both sides hold only; for tables, the column order with
 * COLUMN_ORDER), in the order of the expected side's tables, then of the
 * actual side's. */
static const char PAIRS_SQL[] =
    "INSERT INTO cat_diff (kind, tbl, name, expected, actual)"
    " WITH e AS (SELECT * FROM cat_items WHERE src = ?1),"
    " a AS (SELECT * FROM cat_items WHERE src = ?2),"
    " both(name) AS (SELECT name FROM e WHERE kind = 'table'"
    "   INTERSECT SELECT name FROM a WHERE kind = 'table'),"
    " pairs(kind, rank, tbl, name, ek, ed, ak, ad, tpos, pos) AS ("
    "  SELECT e.kind, e.rank, e.tbl, e.name, e.k, e.descr, a.k, a.descr, e.tpos, e.pos"
    "   FROM e LEFT JOIN a ON a.kind = e.kind AND a.tbl IS e.tbl AND a.name = e.name"
    "  UNION ALL"
    "  SELECT a.kind, a.rank, a.tbl, a.name, NULL, NULL, a.k, a.descr,"
    "   ifnull((SELECT t.tpos FROM e t WHERE t.kind = 'table' AND t.name = a.tbl),"
    "     1000000000 + a.tpos), 1000000000 + a.pos FROM a WHERE NOT EXISTS (SELECT 1 FROM e"
    "   WHERE e.kind = a.kind AND e.tbl IS a.tbl AND e.name = a.name))"
    " SELECT kind, tbl, name, ed, ad FROM pairs p WHERE CASE"
    "  WHEN kind = 'table' THEN CASE"
    "   WHEN ad IS NULL THEN NOT (?4 & 2 AND pl_legacy(name))"
    "   WHEN ed IS NULL THEN NOT (?4 & 4 AND pl_legacy(name))"
    "   ELSE ?4 & 32 AND lower(ed) IS NOT (SELECT group_concat(n, ', ') FROM ("
    "    SELECT lower(c.name) AS n, 0 AS g, c.cid AS cid FROM cat_columns c"
    "     WHERE c.src = ?2 AND c.tbl = p.name AND EXISTS (SELECT 1 FROM cat_columns d"
    "     WHERE d.src = ?1 AND d.tbl = p.name AND d.name = c.name)"
    "    UNION ALL"
    "    SELECT lower(c.name), 1, c.cid FROM cat_columns c"
    "     WHERE c.src = ?1 AND c.tbl = p.name AND NOT EXISTS (SELECT 1 FROM cat_columns d"
    "     WHERE d.src = ?2 AND d.tbl = p.name AND d.name = c.name)"
    "    ORDER BY 2, 3)) END"
    "  WHEN kind = 'view-or-trigger' THEN ek IS NOT ak"
    "  ELSE tbl IN both AND ek IS NOT ak END"
    " ORDER BY tpos, rank, pos, lower(name)";

static const char *const DIFF_STEPS[] = {
    "DELETE FROM cat_items", "DELETE FROM cat_diff", ITEMS_TABLES_SQL,
    ITEMS_COLUMNS_SQL,       ITEMS_INDEXES_SQL,      ITEMS_KEYS_SQL,
    ITEMS_PRIMARY_SQL,       ITEMS_OTHERS_SQL,       PAIRS_SQL,
};

/* Run `sql` on the catalog to its end with ?1..?n bound from `spec` (n: the
 * highest parameter it uses). Returns 0 or -1 with `err` set. */
static int run_step(sqlite3 *cat, const char *sql, const pl_diff_spec *spec, pl_err *err)
{
    const int values[] = {spec->expected, spec->actual, spec->aside, spec->flags};
    pl_query q;
    int rc = 0;

    if (pl_query_start_db(&q, cat, NULL, sql, "comparing schemas", err) < 0)
        return -1;
    for (int i = 0; i < sqlite3_bind_parameter_count(q.st) && i < 4 && rc == 0; i++)
        rc = pl_query_bind_int(&q, i + 1, values[i], err);
    if (rc == 0)
        rc = pl_query_next(&q, err);
    pl_query_end(&q);
    return rc < 0 ? -1 : 0;
}

int pl_schema_diff(sqlite3 *cat, const pl_diff_spec *spec, pl_err *err)
{
    for (size_t i = 0; i < sizeof DIFF_STEPS / sizeof DIFF_STEPS[0]; i++)
        if (run_step(cat, DIFF_STEPS[i], spec, err) < 0)
            return -1;
    return sqlite3_changes(cat);
}

int pl_schema_diff_count(sqlite3 *cat, const char *where, pl_err *err)
{
    char *sql = sqlite3_mprintf("SELECT count(*) FROM cat_diff WHERE %s", where ? where : "1");
    pl_query q;
    int rc, n = 0;

    if (sql == NULL)
        return pl_err_set(err, PL_E_NOMEM, NULL, "out of memory while comparing schemas");
    if (pl_query_start_db(&q, cat, NULL, sql, "comparing schemas", err) < 0) {
        sqlite3_free(sql);
        return -1;
    }
    rc = pl_query_next(&q, err);
    if (rc > 0)
        n = sqlite3_column_int(q.st, 0);
    pl_query_end(&q);
    sqlite3_free(sql);
    return rc < 0 ? -1 : n;
}
