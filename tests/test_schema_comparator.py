"""One comparator for schemas (issue 14, item 2): the C core's ``schema_differences`` is
what recognises an older PromptLab's layout, what ``promptlab db status`` reports as
drift and what ``promptlab db revision`` turns into SQL. These tests give the three paths
the same schemas and check that they agree, difference for difference."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import HEAD, NEUTRAL_CWD
from migtools import copy_chain, migration_text, query
from promptlab import _core
from promptlab.sqlite import MigrationError
from promptlab.sqlite.migrations import revision, status, upgrade
from promptlab.sqlite.models import Column, Table
from promptlab.sqlite.schema import Schema, compare, describe_difference

REV_A, REV_B = "aaaa00000001", "bbbb00000002"
PARENT = "CREATE TABLE p (id INTEGER PRIMARY KEY);"
TABLE_A = ("CREATE TABLE t (id INTEGER PRIMARY KEY, n INT DEFAULT 1, v VARCHAR(10), "
           "pid INTEGER REFERENCES p (id));")
TABLE_B = TABLE_A.replace("DEFAULT 1", "DEFAULT 2")


@pytest.fixture
def two_step_chain(tmp_path):
    """Revision A makes p and t; revision B changes only the default of t.n."""
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / "0001_a.sql").write_text(
        migration_text(REV_A, None, PARENT + "\n" + TABLE_A, "DROP TABLE t;\nDROP TABLE p;"))
    (folder / "0002_b.sql").write_text(migration_text(
        REV_B, REV_A, "DROP TABLE t;\n" + TABLE_B, "DROP TABLE t;\n" + TABLE_A))
    return folder


def _make(path, n_clause, v_clause):
    con = sqlite3.connect(path)
    con.execute(PARENT)
    con.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {n_clause}, {v_clause}, "
                "pid INTEGER REFERENCES p (id))")
    con.commit()
    con.close()


def _stamp(path, rev):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    con.execute("INSERT INTO alembic_version VALUES (?)", (rev,))
    con.commit()
    con.close()


# (t.n as a database declares it, as models declare it), (t.v likewise), and whether
# that is revision B's layout. The first four are B spelled otherwise; the last two differ.
VARIANTS = {
    "default in parentheses": (("n INT DEFAULT ((2))", ("INT", "((2))")),
                               ("v VARCHAR(10)", "VARCHAR(10)"), True),
    "blanks in the type": (("n INT DEFAULT 2", ("INT", "2")),
                           ("v VARCHAR (10)", "VARCHAR (10)"), True),
    "case and blanks": (("n int default ( (2) )", ("int", " ( 2 ) ")),
                        ("v varchar ( 10 )", "varchar( 10 )"), True),
    "as B writes it": (("n INT DEFAULT 2", ("INT", "2")), ("v VARCHAR(10)", "VARCHAR(10)"),
                       True),
    "another default": (("n INT DEFAULT ((3))", ("INT", "((3))")),
                        ("v VARCHAR(10)", "VARCHAR(10)"), False),
    "another length": (("n INT DEFAULT 2", ("INT", "2")), ("v VARCHAR (12)", "VARCHAR (12)"),
                       False),
}


@pytest.mark.parametrize("n, v, same", VARIANTS.values(), ids=VARIANTS.keys())
def test_detection_drift_and_autogenerate_agree(tmp_path, two_step_chain, n, v, same):
    (n_sql, (n_type, n_default)), (v_sql, v_type) = n, v
    # The comparator itself.
    spelled = tmp_path / "spelled.db"
    _make(spelled, n_sql, v_sql)
    found = _core.schema_differences(("revision", REV_B), ("database", spelled),
                                     two_step_chain)
    assert (found == []) is same
    assert all(kind == "column" and table == "t" for kind, table, *_ in found)
    # Detection: a database without a revision is recognised at B exactly when the
    # comparator finds no difference from B (else at A, the earliest loose match).
    assert status(spelled, directory=two_step_chain).detected == (REV_B if same else REV_A)
    # Drift: the same database, stamped at B, drifts by what the comparator found.
    stamped = tmp_path / "stamped.db"
    _make(stamped, n_sql, v_sql)
    _stamp(stamped, REV_B)
    drift = [d.detail for d in status(stamped, directory=two_step_chain).drift]
    assert drift == [f"schema: {describe_difference(*d)}" for d in found]
    # Autogenerate: models that declare the same columns are no change exactly when
    # the comparator found none, and otherwise change the columns it named.
    models = [Table("p", columns=[Column("id", "INTEGER", primary_key=True)]),
              Table("t", columns=[Column("id", "INTEGER", primary_key=True),
                                  Column("n", n_type, default_sql=n_default),
                                  Column("v", v_type),
                                  Column("pid", "INTEGER", references="p.id")])]
    made = revision("spelled", two_step_chain, models=models)
    assert (made.path is None) is same
    assert sorted(made.changes) == sorted(
        f"~ column t.{name}: {want} -> {have}" for _, _, name, want, have in found)


def test_drift_is_the_comparator_row_for_row(db_path):
    upgrade(db_path)
    con = sqlite3.connect(db_path)
    con.executescript("""
        ALTER TABLE assets ADD COLUMN sneaky TEXT;
        DROP INDEX ix_experiments_created_at;
        CREATE UNIQUE INDEX ix_mine ON users (role, status);
        CREATE TABLE scratch (x, y, UNIQUE (x, y));
        CREATE VIEW recent AS SELECT * FROM experiments;
        CREATE TRIGGER stamp AFTER INSERT ON scratch BEGIN SELECT 1; END;
    """)
    con.close()
    found = _core.schema_differences(("revision", HEAD), ("database", db_path))
    assert [f"schema: {describe_difference(*d)}" for d in found] == \
        [d.detail for d in status(db_path).drift]
    assert sorted(found, key=str) == sorted([
        ("index", "users", "ix_mine", None, "(role, status) UNIQUE"),
        ("column", "assets", "sneaky", None, "TEXT"),
        ("index", "experiments", "ix_experiments_created_at", "(created_at)", None),
        ("table", "scratch", "scratch", None, "x, y"),
        ("view-or-trigger", None, "recent", None, "CREATE VIEW recent AS SELECT * FROM "
                                                  "experiments"),
        ("view-or-trigger", None, "stamp", None,
         "CREATE TRIGGER stamp AFTER INSERT ON scratch BEGIN SELECT 1; END"),
    ], key=str)
    # The chain's catalog as a side is the same schema as the revision itself.
    assert _core.schema_differences(("catalog", _core.chain_schema(HEAD)),
                                    ("database", db_path)) == found


def test_autoincrement_constraints_and_keys_are_compared(tmp_path):
    expected = ("CREATE TABLE one (id INTEGER PRIMARY KEY);"
                "CREATE TABLE q (a INTEGER, b INTEGER, PRIMARY KEY (a, b));"
                "CREATE TABLE r (id INTEGER PRIMARY KEY AUTOINCREMENT, x, y, o INTEGER "
                "REFERENCES one, UNIQUE (x, y), FOREIGN KEY (x, y) REFERENCES q);")
    same = ("CREATE TABLE q (b INTEGER, a INTEGER, PRIMARY KEY (a, b));"
            "CREATE TABLE One (ID INTEGER PRIMARY KEY);"
            "CREATE TABLE r (y, x, id integer primary key autoincrement, o INTEGER "
            "REFERENCES ONE (ID), FOREIGN KEY (x, y) REFERENCES q (a, b), UNIQUE (X, Y));")
    assert _core.schema_differences(("sql", expected), ("sql", same)) == []
    other = ("CREATE TABLE one (id INTEGER PRIMARY KEY);"
             "CREATE TABLE q (a INTEGER, b INTEGER, PRIMARY KEY (b, a));"
             "CREATE TABLE r (id INTEGER PRIMARY KEY, x, y, o INTEGER, UNIQUE (x, y));")
    found = _core.schema_differences(("sql", expected), ("sql", other))
    assert sorted(found, key=str) == sorted([
        ("column", "q", "a", "INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY"),
        ("column", "q", "b", "INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY"),
        ("column", "r", "id", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY"),
        ("column", "r", "o", "INTEGER REFERENCES one.id", "INTEGER"),
        ("constraint", "r", "FOREIGN KEY (x, y) REFERENCES q (a, b)",
         "FOREIGN KEY (x, y) REFERENCES q (a, b)", None),
    ], key=str)
    assert describe_difference(*[d for d in found if d[0] == "constraint"][0]) == (
        "table r: constraint FOREIGN KEY (x, y) REFERENCES q (a, b) is missing")


def test_legacy_tables_and_column_order(db_path):
    upgrade(db_path)
    con = sqlite3.connect(db_path)
    con.executescript("DROP TABLE legacy_asset_ids;"
                      "CREATE TABLE legacy_mine (x);"
                      "PRAGMA foreign_keys=OFF;"
                      "CREATE TABLE m2 (metric NOT NULL, experiment_id VARCHAR NOT NULL "
                      "REFERENCES experiments (experiment_id), count INTEGER, average REAL, "
                      "PRIMARY KEY (experiment_id, metric));"
                      "DROP TABLE experiment_metric;"
                      "ALTER TABLE m2 RENAME TO experiment_metric;")
    con.close()
    head, live = ("revision", HEAD), ("database", db_path)
    # A missing legacy_ table is none, a legacy_ table the migrations do not make is one;
    # column order is not compared.
    assert _core.schema_differences(head, live) == [
        ("table", "legacy_mine", "legacy_mine", None, "x")]
    assert [d.detail for d in status(db_path).drift] == [
        "schema: table legacy_mine is not made by the migrations"]
    assert _core.schema_differences(head, live, legacy="ignore") == []
    assert _core.schema_differences(head, live, legacy="one-sided") == []
    assert _core.schema_differences(head, live, legacy="compare") == [
        ("table", "legacy_asset_ids", "legacy_asset_ids", "asset_name, asset_version, asset_id",
         None),
        ("table", "legacy_mine", "legacy_mine", None, "x")]
    # Asked for, the order: the live columns kept, in order, then the new ones.
    assert _core.schema_differences(head, live, legacy="ignore", column_order=True) == [
        ("table", "experiment_metric", "experiment_metric",
         "experiment_id, metric, average, count", "metric, experiment_id, count, average")]


def test_compare_is_the_comparator(tmp_path):
    """``schema.compare`` (Schema values) asks the core, through the schemas'
    declarations, and agrees with it on database files."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    upgrade(a)
    upgrade(b)
    con = sqlite3.connect(b)
    con.executescript("ALTER TABLE users ADD COLUMN email VARCHAR (80) DEFAULT ('x');"
                      "CREATE INDEX ix_role ON users (role);")
    con.close()
    sa = Schema.from_catalog(_core.database_schema(a))
    sb = Schema.from_catalog(_core.database_schema(b))
    assert compare(sa, sa) == []
    expected = [describe_difference(*d) for d in
                _core.schema_differences(("database", a), ("database", b))]
    assert compare(sa, sb) == expected == [
        "table users: column email is not made by the migrations",
        "table users: index ix_role is not made by the migrations"]
    assert compare(sb, sa) == [
        "table users: column email is missing", "table users: index ix_role is missing"]


@pytest.mark.parametrize("side, error, text", [
    ("assets", TypeError, "must be a (kind, value) tuple"),
    (("table", "x"), ValueError, "('database', path)"),
    (("sql", "CREATE TABLE"), MigrationError, "does not build on an empty database"),
    (("revision", "ffffffffffff"), MigrationError, "is not one of the migrations"),
    (("catalog", {"objects": []}), ValueError, "needs its columns rows"),
    (("catalog", {"objects": [(1, 2)], "columns": [], "indexes": [], "index_columns": [],
                  "foreign_keys": []}), ValueError, "tuple of 4 values"),
])
def test_bad_sides_are_clear_errors(side, error, text):
    with pytest.raises(error) as info:
        _core.schema_differences(side, ("revision", None))
    assert text in str(info.value)
    with pytest.raises(ValueError, match="legacy must be"):
        _core.schema_differences(("revision", None), ("revision", None), legacy="some")


def test_a_revision_generated_from_the_models_has_no_drift(tmp_path):
    """The models are compared as declarations, catalogued: a migration generated from
    them leaves a database the comparator finds equal to the models."""
    folder = copy_chain(tmp_path / "versions")
    models = list(_models_with_email())
    made = revision("email", folder, models=models)
    assert made.changes == ["+ column users.email VARCHAR(80) DEFAULT 'none'"]
    db = tmp_path / "lab.db"
    upgrade(db, directory=folder)
    assert status(db, directory=folder).drift == []
    assert query(db, "SELECT name FROM pragma_table_info('users') WHERE name = 'email'") == [
        ("email",)]
    declared = Schema.from_models(models).sql()
    assert _core.schema_differences(("sql", declared), ("database", db),
                                    legacy="ignore") == []


def _models_with_email():
    import dataclasses

    from promptlab.sqlite.models import TABLES

    for t in TABLES:
        if t.name == "users":
            t = dataclasses.replace(t, columns=t.columns + (
                Column("email", "varchar (80)", default_sql="(('none'))"),))
        yield t


# Every side and every error path of schema_differences, argv[1] rounds and then argv[2]
# more, on the database argv[3]; prints how much the peak RSS grew over the second run.
LOOP = """
import gc, resource, sys
from promptlab import _core
from promptlab.sqlite.migrations import upgrade

db = sys.argv[3]
upgrade(db)
catalog = _core.chain_schema(None)
bad_row = {"objects": [("table", "x", "x", None)], "columns": [("x", 0, "a", object(), 0,
           None, 0)], "indexes": [], "index_columns": [], "foreign_keys": []}

def work():
    _core.schema_differences(("catalog", catalog), ("database", db))
    _core.schema_differences(("sql", "CREATE TABLE t (a INT DEFAULT ((2)), b, UNIQUE (a, b));"
                              "CREATE VIEW v AS SELECT 1"), ("revision", "base"),
                             column_order=True)
    for bad in [("sql", "CREATE TABLE"), ("revision", "nope"), ("catalog", {"objects": [(1,)]}),
                ("database", db + ".missing"), ("catalog", bad_row), ("x", 1), "x"]:
        try:
            _core.schema_differences(bad, ("revision", "base"))
        except Exception:
            pass

def peak():
    gc.collect()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

for i in range(int(sys.argv[1])):
    work()
before = peak()
for i in range(int(sys.argv[2])):
    work()
print("GROWN", peak() - before)
"""


def test_schema_differences_leaks_nothing(tmp_path):
    """Under the ASan build, LeakSanitizer finds no block the core allocated while
    comparing (every side, every error path); elsewhere memory stays flat."""
    under_asan = "libasan" in os.environ.get("LD_PRELOAD", "")
    # The slow unwinder: libsqlite3 has no frame pointers, and with the fast one a block
    # SQLite allocated for the core shows no frame of csrc/.
    env = dict(os.environ,
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0")
    rounds = ["1", "0"] if under_asan else ["20", "200"]  # one round is enough for LSan
    result = subprocess.run([sys.executable, "-c", LOOP, *rounds, str(tmp_path / "leak.db")],
                            capture_output=True, text=True, cwd=NEUTRAL_CWD, env=env,
                            timeout=600)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if under_asan:
        reports = re.split(r"\n(?=(?:Direct|Indirect) leak of)", result.stderr)
        ours = [r for r in reports if "leak of" in r and "csrc/" in r]
        assert ours == [], "\n\n".join(ours[:5])
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        grown = int(result.stdout.split("GROWN")[1])
        if not _core._sanitize:
            assert grown < 4 * 1024, f"peak RSS grew by {grown} KiB over 200 rounds"
