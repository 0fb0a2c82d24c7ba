/* schemadiff.c: the one comparison of two schemas in a catalog (schemadiff.h). */
#include "schemadiff.h"
#include "query.h"

/* Names of the compared tables, columns and indexes are joined in lower case
 * (SQLite compares identifiers without regard to case).
 *
 * ?1 expected source, ?2 actual source, ?3 the source whose new tables are set
 * aside, ?4 the PL_DIFF_* flags:
 *   1 LAYOUT, 2 LEGACY_MISSING_OK, 4 LEGACY_EXTRA_OK, 8 NO_LEGACY,
 *   16 KNOWN_ONLY, 32 COLUMN_ORDER.
 *
 * items holds every compared thing of both sides as (src, kind, rank, tbl,
 * name, key, description, table position, position): two items of the same
 * kind, table and name are the same thing, and differ when their keys do. */
static const char DIFF_SQL[] =
    "WITH tabs(src, name, pos, sql) AS (SELECT src, name, rowid, sql FROM cat_objects"
    "   WHERE src IN (?1, ?2) AND type = 'table'"
    "   AND NOT (?4 & 8 AND pl_legacy(name))"
    "   AND NOT (src = ?2 AND ?4 & 16 AND lower(name) NOT IN"
    "     (SELECT lower(name) FROM cat_objects WHERE src >= 0 AND type = 'table'))"
    "   AND NOT (src = ?2 AND lower(name) IN (SELECT lower(name) FROM cat_objects"
    "     WHERE src = ?3 AND type = 'table') AND lower(name) NOT IN"
    "     (SELECT lower(name) FROM cat_objects WHERE src = ?1 AND type = 'table'))),"
    " both(name) AS (SELECT lower(name) FROM tabs WHERE src = ?1"
    "   INTERSECT SELECT lower(name) FROM tabs WHERE src = ?2),"
    " cols AS (SELECT c.src, c.tbl, c.cid, c.name, pl_type(ifnull(c.type, '')) AS type,"
    "   c.not_null, pl_default(c.dflt) AS dflt, c.pk, t.pos AS tpos,"
    "   c.pk = 1 AND pl_type(ifnull(c.type, '')) = 'INTEGER'"
    "     AND upper(t.sql) GLOB '*[^A-Z0-9_]AUTOINCREMENT[^A-Z0-9_]*' AS autoinc,"
    "   EXISTS (SELECT 1 FROM cat_indexes i WHERE i.src = c.src AND i.tbl = c.tbl"
    "     AND i.origin = 'u' AND (SELECT count(*) FROM cat_index_columns x"
    "       WHERE x.src = i.src AND x.idx = i.name) = 1"
    "     AND lower((SELECT x.name FROM cat_index_columns x WHERE x.src = i.src"
    "       AND x.idx = i.name)) = lower(c.name)) AS uniq,"
    "   (SELECT group_concat(f.ref || '.' || ifnull(f.to_col, 'rowid'), ', ')"
    "     FROM cat_foreign_keys f WHERE f.src = c.src AND f.tbl = c.tbl"
    "     AND f.from_col = c.name AND (SELECT count(*) FROM cat_foreign_keys g"
    "       WHERE g.src = f.src AND g.tbl = f.tbl AND g.id = f.id) = 1) AS refs"
    "   FROM cat_columns c JOIN tabs t ON t.src = c.src AND lower(t.name) = lower(c.tbl)),"
    " idx(src, tbl, name, uniq, origin, rid, tpos, cols, qcols, n) AS (SELECT i.src, i.tbl,"
    "   i.name, i.uniq, i.origin, i.rowid, t.pos,"
    "   ifnull((SELECT group_concat(n, ', ') FROM (SELECT ifnull(x.name, '?') AS n"
    "     FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name"
    "     ORDER BY x.seqno)), ''),"
    "   (SELECT group_concat(n, ', ') FROM (SELECT pl_quote(ifnull(x.name, '?')) AS n"
    "     FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name"
    "     ORDER BY x.seqno)),"
    "   (SELECT count(*) FROM cat_index_columns x WHERE x.src = i.src AND x.idx = i.name)"
    "   FROM cat_indexes i JOIN tabs t ON t.src = i.src AND lower(t.name) = lower(i.tbl)),"
    " fkc(src, tbl, id, tpos, sql) AS (SELECT k.src, k.tbl, k.id, t.pos,"
    "   'FOREIGN KEY (' || (SELECT group_concat(pl_quote(f), ', ') FROM (SELECT from_col AS f"
    "     FROM cat_foreign_keys g WHERE g.src = k.src AND g.tbl = k.tbl AND g.id = k.id"
    "     ORDER BY g.seq)) || ') REFERENCES ' || pl_quote(k.ref) || ' ('"
    "   || (SELECT group_concat(pl_quote(ifnull(o, '?')), ', ') FROM (SELECT to_col AS o"
    "     FROM cat_foreign_keys g WHERE g.src = k.src AND g.tbl = k.tbl AND g.id = k.id"
    "     ORDER BY g.seq)) || ')'"
    "   FROM (SELECT src, tbl, id, max(ref) AS ref FROM cat_foreign_keys WHERE src IN (?1, ?2)"
    "     GROUP BY src, tbl, id HAVING count(*) > 1) k"
    "   JOIN tabs t ON t.src = k.src AND lower(t.name) = lower(k.tbl)),"
    " items(src, kind, rank, tbl, name, k, descr, tpos, pos) AS ("
    "  SELECT t.src, 'table', 0, t.name, t.name, '', (SELECT group_concat(name, ', ')"
    "     FROM (SELECT name FROM cat_columns c WHERE c.src = t.src AND c.tbl = t.name"
    "     ORDER BY c.cid)), t.pos, 0 FROM tabs t"
    "  UNION ALL"
    "  SELECT src, 'column', 1, tbl, name,"
    "   CASE WHEN ?4 & 1 THEN '' ELSE type || '|' || pk || '|' || not_null || '|'"
    "     || quote(dflt) || '|' || uniq || '|' || autoinc || '|' || lower(ifnull(refs, ''))"
    "   END,"
    "   CASE WHEN ?4 & 1 THEN name ELSE coalesce(nullif(type, ''), '(no type)')"
    "     || CASE WHEN not_null THEN ' NOT NULL' ELSE '' END"
    "     || CASE WHEN pk > 0 THEN ' PRIMARY KEY'"
    "          || CASE WHEN autoinc THEN ' AUTOINCREMENT' ELSE '' END ELSE '' END"
    "     || CASE WHEN uniq THEN ' UNIQUE' ELSE '' END"
    "     || ifnull(' DEFAULT ' || dflt, '') || ifnull(' REFERENCES ' || refs, '')"
    "   END, tpos, cid FROM cols"
    "  UNION ALL"
    "  SELECT src, 'index', 2, tbl, name, lower(cols) || '|' || uniq,"
    "   '(' || cols || ')' || CASE WHEN uniq THEN ' UNIQUE' ELSE '' END, tpos, rid"
    "   FROM idx WHERE origin = 'c' AND NOT ?4 & 1"
    "  UNION ALL"
    "  SELECT DISTINCT src, 'constraint', 3, tbl, 'UNIQUE (' || qcols || ')',"
    "   lower('UNIQUE (' || qcols || ')'), 'UNIQUE (' || qcols || ')', tpos, rid"
    "   FROM idx WHERE origin = 'u' AND n > 1 AND NOT ?4 & 1"
    "  UNION ALL"
    "  SELECT DISTINCT src, 'constraint', 3, tbl, sql, lower(sql), sql, tpos, 1000000 + id"
    "   FROM fkc WHERE NOT ?4 & 1"
    "  UNION ALL"
    "  SELECT src, 'constraint', 3, name, 'PRIMARY KEY', lower(ifnull(cols, '')),"
    "   ifnull(cols, 'rowid'), pos, 0 FROM (SELECT t.src, t.name, t.pos,"
    "   (SELECT group_concat(name, ', ') FROM (SELECT name FROM cat_columns c"
    "     WHERE c.src = t.src AND c.tbl = t.name AND c.pk > 0 ORDER BY c.pk)) AS cols"
    "   FROM tabs t) WHERE ?4 & 1"
    "  UNION ALL"
    "  SELECT src, 'view-or-trigger', 4, NULL, name, pl_blanks(ifnull(sql, '')), sql,"
    "   1000000000000, rowid FROM cat_objects WHERE src IN (?1, ?2)"
    "   AND type IN ('view', 'trigger') AND NOT ?4 & 1),"
    " e AS (SELECT * FROM items WHERE src = ?1),"
    " a AS (SELECT * FROM items WHERE src = ?2),"
    " pairs(kind, rank, tbl, name, ek, ed, ak, ad, tpos, pos) AS ("
    "  SELECT e.kind, e.rank, e.tbl, e.name, e.k, e.descr, a.k, a.descr, e.tpos, e.pos"
    "   FROM e LEFT JOIN a ON a.kind = e.kind AND lower(a.tbl) IS lower(e.tbl)"
    "   AND lower(a.name) = lower(e.name)"
    "  UNION ALL"
    "  SELECT a.kind, a.rank, a.tbl, a.name, NULL, NULL, a.k, a.descr,"
    "   ifnull((SELECT pos FROM tabs WHERE src = ?1 AND lower(name) = lower(a.tbl)),"
    "     1000000000 + a.tpos), 1000000000 + a.pos FROM a WHERE NOT EXISTS (SELECT 1 FROM e"
    "   WHERE e.kind = a.kind AND lower(e.tbl) IS lower(a.tbl) AND lower(e.name) = lower(a.name)))"
    " INSERT INTO cat_diff (kind, tbl, name, expected, actual)"
    " SELECT kind, tbl, name, ed, ad FROM pairs p WHERE CASE"
    "  WHEN kind = 'table' THEN CASE"
    "   WHEN ad IS NULL THEN NOT (?4 & 2 AND pl_legacy(name))"
    "   WHEN ed IS NULL THEN NOT (?4 & 4 AND pl_legacy(name))"
    "   ELSE ?4 & 32 AND lower(ed) IS NOT (SELECT group_concat(n, ', ') FROM ("
    "    SELECT lower(c.name) AS n, 0 AS g, c.cid AS cid FROM cat_columns c"
    "     WHERE c.src = ?2 AND lower(c.tbl) = lower(p.name) AND EXISTS (SELECT 1"
    "     FROM cat_columns d WHERE d.src = ?1 AND lower(d.tbl) = lower(p.name)"
    "     AND lower(d.name) = lower(c.name))"
    "    UNION ALL"
    "    SELECT lower(c.name), 1, c.cid FROM cat_columns c"
    "     WHERE c.src = ?1 AND lower(c.tbl) = lower(p.name) AND NOT EXISTS (SELECT 1"
    "     FROM cat_columns d WHERE d.src = ?2 AND lower(d.tbl) = lower(p.name)"
    "     AND lower(d.name) = lower(c.name))"
    "    ORDER BY 2, 3)) END"
    "  WHEN kind = 'view-or-trigger' THEN ek IS NOT ak"
    "  ELSE lower(tbl) IN both AND ek IS NOT ak END"
    " ORDER BY tpos, rank, pos, lower(name)";

int pl_schema_diff(sqlite3 *cat, const pl_diff_spec *spec, pl_err *err)
{
    pl_query q;
    int rc;

    rc = sqlite3_exec(cat, "DELETE FROM cat_diff", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return pl_err_from_sqlite(err, rc, cat, NULL, "comparing schemas");
    if (pl_query_start_db(&q, cat, NULL, DIFF_SQL, "comparing schemas", err) < 0)
        return -1;
    if (pl_query_bind_int(&q, 1, spec->expected, err) < 0 ||
        pl_query_bind_int(&q, 2, spec->actual, err) < 0 ||
        pl_query_bind_int(&q, 3, spec->aside, err) < 0 ||
        pl_query_bind_int(&q, 4, spec->flags, err) < 0) {
        pl_query_end(&q);
        return -1;
    }
    rc = pl_query_next(&q, err);
    pl_query_end(&q);
    if (rc < 0)
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
