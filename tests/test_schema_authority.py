"""One authority per rule (issue 14): the migration-chain checks, the schema
normalizer, the legacy_ prefix and SQL keywords are the C core's, and every path
(status, upgrade, drift, legacy detection, autogenerate) gets the same answer."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from conftest import HEAD, file_digest
from migtools import L2, copy_chain, migration_text, query, tables
from promptlab import _core
from promptlab.sqlite import MigrationError, UnknownRevisionError
from promptlab.sqlite.autogenerate import quote
from promptlab.sqlite.migrations import downgrade, revision, sql, status, upgrade
from promptlab.sqlite.models import TABLES, Column, Index, Table
from promptlab.sqlite.schema import (
    Schema,
    TableSpec,
    is_legacy,
    normalize_default,
    normalize_type,
)

# --- the migration-chain checks: status() asks the core, as upgrade() does -----------


def _set_versions(path, *revisions):
    con = sqlite3.connect(path)
    con.execute("DELETE FROM alembic_version")
    con.executemany("INSERT INTO alembic_version VALUES (?)", [(r,) for r in revisions])
    con.commit()
    con.close()


@pytest.mark.parametrize("revisions, error, text", [
    ((HEAD, L2), MigrationError,
     "alembic_version holds 2 rows (several heads); PromptLab keeps one linear history. "
     "The file was left unchanged."),
    (("ffffffffffff",), UnknownRevisionError,
     f"the database is at revision ffffffffffff, which this version of PromptLab does not "
     f"know (its newest is {HEAD}): it was written by a newer PromptLab. Upgrade PromptLab "
     "to open it; the file was left unchanged."),
    (("f" * 40,), UnknownRevisionError, "which this version of PromptLab does not know"),
])
def test_status_and_upgrade_refuse_with_the_same_message(db_path, revisions, error, text):
    upgrade(db_path)
    _set_versions(db_path, *revisions)
    digest = file_digest(db_path)
    messages = []
    for call in (lambda: status(db_path), lambda: upgrade(db_path), lambda: sql(db_path),
                 lambda: _core.database_revision(db_path)):
        with pytest.raises(error) as info:
            call()
        messages.append(str(info.value))
    assert len(set(messages)) == 1, messages
    assert messages[0].startswith(f"{db_path}: ") and text in messages[0]
    assert file_digest(db_path) == digest


# --- one normalizer: layout detection (C), drift and autogenerate (Python) -----------

REV_A, REV_B = "aaaa00000001", "bbbb00000002"
PARENT = "CREATE TABLE p (id INTEGER PRIMARY KEY);"
TABLE_A = ("CREATE TABLE t (id INTEGER PRIMARY KEY, n INT DEFAULT 1, v VARCHAR(10), "
           "pid INTEGER REFERENCES p (id));")
TABLE_B = TABLE_A.replace("DEFAULT 1", "DEFAULT 2")


@pytest.fixture
def two_step_chain(tmp_path):
    """Revision A makes t; revision B changes only the default of t.n. Their layouts
    differ in nothing but that default, so recognising a database at B needs the
    exact comparison."""
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / "0001_a.sql").write_text(
        migration_text(REV_A, None, PARENT + "\n" + TABLE_A, "DROP TABLE t;\nDROP TABLE p;"))
    (folder / "0002_b.sql").write_text(migration_text(
        REV_B, REV_A, "DROP TABLE t;\n" + TABLE_B, "DROP TABLE t;\n" + TABLE_A))
    return folder


# The layout of revision B, spelled as SQLite keeps what was written: PRAGMA table_info
# reports DEFAULT ((2)) as "(2)" and the type as declared, blanks and all; a foreign key
# that leaves out the parent's columns refers to its primary key.
SPELLINGS = {
    "default in parentheses": "CREATE TABLE t (id INTEGER PRIMARY KEY, n INT DEFAULT ((2)), "
                              "v VARCHAR(10), pid INTEGER REFERENCES p (id))",
    "blanks in the type name": "CREATE TABLE t (id INTEGER PRIMARY KEY, n INT DEFAULT 2, "
                               "v varchar ( 10 ), pid INTEGER REFERENCES p (id))",
    "parent key left out": "CREATE TABLE t (id INTEGER PRIMARY KEY, n INT DEFAULT 2, "
                           "v VARCHAR(10), pid INTEGER REFERENCES p)",
    "all": "CREATE TABLE t (id integer primary key, n int default ( (2) ), v VARCHAR (10), "
           "pid integer references P)",
}


@pytest.mark.parametrize("create", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_detection_and_drift_agree_on_equivalent_spellings(tmp_path, two_step_chain, create):
    db = tmp_path / "spelled.db"
    con = sqlite3.connect(db)
    con.execute(PARENT)
    con.execute(create)
    con.execute("INSERT INTO t (id) VALUES (1)")
    con.commit()
    con.close()
    # The C core recognises the layout of B exactly, not only loosely (which would
    # pick the earlier A) ...
    state = status(db, directory=two_step_chain)
    assert state.detected == REV_B and state.pending == []
    run = upgrade(db, directory=two_step_chain)
    assert (run.detected, run.current, run.count) == (REV_B, REV_B, 0)
    # ... and the Python drift check, comparing the same database with what the
    # migrations produce at B, sees no difference either.
    state = status(db, directory=two_step_chain)
    assert state.current == REV_B and state.up_to_date
    assert state.drift == []
    assert query(db, "SELECT id, n FROM t") == [(1, 2)]


def test_autogenerate_agrees_on_equivalent_spellings(two_step_chain):
    """Models that spell B's column types and defaults differently are not a change."""
    spelled = [Table("p", columns=[Column("id", "INTEGER", primary_key=True)]),
               Table("t", columns=[
                   Column("id", "integer", primary_key=True),
                   Column("n", "int", default_sql="((2))"),
                   Column("v", "varchar ( 10 )"),
                   Column("pid", "INTEGER", references="P.ID"),
               ])]
    made = revision("nothing changed", two_step_chain, models=spelled)
    assert made.path is None and made.changes == []
    assert sorted(p.name for p in two_step_chain.iterdir()) == ["0001_a.sql", "0002_b.sql"]


def test_a_different_default_is_still_drift(tmp_path, two_step_chain):
    db = tmp_path / "other.db"
    upgrade(db, directory=two_step_chain)
    con = sqlite3.connect(db)
    con.executescript("DROP TABLE t; CREATE TABLE t (id INTEGER PRIMARY KEY, "
                      "n INT DEFAULT ((3)), v VARCHAR(12), pid INTEGER REFERENCES p);")
    con.close()
    assert sorted(str(d) for d in status(db, directory=two_step_chain).drift) == [
        "schema: table t: column n is INT DEFAULT 3, the migrations make it INT DEFAULT 2",
        "schema: table t: column v is VARCHAR(12), the migrations make it VARCHAR(10)",
    ]


def test_a_foreign_key_without_parent_columns_is_read_as_the_parent_key(tmp_path):
    db = tmp_path / "keys.db"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE q (a, b, PRIMARY KEY (a, b));"
                      "CREATE TABLE one (id INTEGER PRIMARY KEY);"
                      "CREATE TABLE nokey (z);"
                      "CREATE TABLE r (x, y, o REFERENCES one, n REFERENCES nokey,"
                      " FOREIGN KEY (x, y) REFERENCES q);")
    con.close()
    keys = sorted(row[4:6] for row in _core.database_schema(db)["foreign_keys"])
    assert keys == [("n", None), ("o", "id"), ("x", "a"), ("y", "b")]
    table = Schema.from_catalog(_core.database_schema(db)).table("r")
    assert table.column("o").references == "one.id"
    assert table.column("n").references == "nokey.rowid"
    assert table.constraints == ("FOREIGN KEY (x, y) REFERENCES q (a, b)",)


def test_a_rebuild_keeps_a_composite_key_without_parent_columns_valid(tmp_path):
    """Models cannot declare a multi-column foreign key, so removing one from a table
    that the migrations made with it is a rebuild, and its down section writes the
    key back: as valid SQL."""
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / "0001_keys.sql").write_text(migration_text(
        REV_A, None, "CREATE TABLE q (a INTEGER, b INTEGER, PRIMARY KEY (a, b));\n"
        "CREATE TABLE r (x INTEGER, y INTEGER, FOREIGN KEY (x, y) REFERENCES q);",
        "DROP TABLE r;\nDROP TABLE q;"))
    models = [Table("q", columns=[Column("a", "INTEGER", primary_key=True),
                                  Column("b", "INTEGER", primary_key=True)]),
              Table("r", columns=[Column("x", "INTEGER"), Column("y", "INTEGER")])]
    made = revision("no composite key", folder, models=models)
    down = made.path.read_text().split("-- migrate:down", 1)[1]
    assert "FOREIGN KEY (x, y) REFERENCES q (a, b)" in down
    db = tmp_path / "keys.db"
    upgrade(db, directory=folder)
    assert query(db, "SELECT count(*) FROM pragma_foreign_key_list('r')") == [(0,)]
    downgrade(db, "-1", directory=folder)
    assert query(db, "SELECT \"from\", \"to\" FROM pragma_foreign_key_list('r') ORDER BY seq") \
        == [("x", "a"), ("y", "b")]


@pytest.mark.parametrize("given, expected", [
    ("varchar ( 10 )", "VARCHAR(10)"), ("VARCHAR (10)", "VARCHAR(10)"),
    ("  decimal( 10 , 2 )", "DECIMAL(10,2)"), ("unsigned  big\tint", "UNSIGNED BIG INT"),
    ("", ""),
])
def test_normalize_type(given, expected):
    assert _core.normalize_type(given) == normalize_type(given) == expected


@pytest.mark.parametrize("given, expected", [
    ("((2))", "2"), ("(2)", "2"), (" 2 ", "2"), ("(1) + (2)", "(1) + (2)"),
    ("('(')", "'('"), ("( (CURRENT_TIMESTAMP) )", "CURRENT_TIMESTAMP"), ("", ""),
])
def test_normalize_default(given, expected):
    assert _core.normalize_default(given) == normalize_default(given) == expected
    assert normalize_default(None) is None


def test_one_legacy_prefix():
    for name in ("legacy_asset_ids", "Legacy_Things", "LEGACY_"):
        assert _core.is_legacy_table(name) and is_legacy(name)
    for name in ("legacy", "legacyx", "assets", "my_legacy_table"):
        assert not _core.is_legacy_table(name) and not is_legacy(name)
    schema = Schema({"assets": TableSpec("assets", ()), "LEGACY_x": TableSpec("LEGACY_x", ())})
    assert list(schema.without_legacy().tables) == ["assets"]


# --- identifiers: quoted when SQLite's own keyword check says so -------------------


@pytest.mark.parametrize("name", ["notnull", "returning", "NotNull", "window", "select"])
def test_sqlite_keywords_are_quoted(name):
    assert _core.is_sql_keyword(name)
    assert quote(name) == f'"{name}"'


@pytest.mark.parametrize("name", ["assets", "asset_name", "ix_tags_user_id", "t__rebuild"])
def test_plain_names_stay_bare(name):
    assert not _core.is_sql_keyword(name) and quote(name) == name


def test_columns_named_like_keywords_make_a_migration_that_applies(tmp_path):
    folder = copy_chain(tmp_path / "versions")
    models = [dataclasses.replace(t, columns=t.columns + (Column("returning", "TEXT"),))
              if t.name == "assets" else t for t in TABLES]
    models.append(Table("flags", columns=[
        Column("id", "INTEGER", primary_key=True),
        Column("notnull", "INTEGER", nullable=False, default_sql="0"),
        Column("returning", "TEXT"),
    ], indexes=[Index("ix_flags_notnull", ["notnull"])]))
    made = revision("keyword columns", folder, models=models)
    assert made.path is not None
    up = made.path.read_text().split("-- migrate:up", 1)[1].split("-- migrate:down", 1)[0]
    assert '"notnull" INTEGER NOT NULL DEFAULT 0' in up
    assert 'ALTER TABLE assets ADD COLUMN "returning" TEXT;' in up

    db = tmp_path / "lab.db"
    run = upgrade(db, directory=folder)
    assert run.current == made.revision
    assert query(db, "SELECT name FROM pragma_table_info('flags') ORDER BY cid") == [
        ("id",), ("notnull",), ("returning",)]
    assert ("returning",) in query(db, "SELECT name FROM pragma_table_info('assets')")
    assert query(db, "SELECT name FROM pragma_index_info('ix_flags_notnull')") == [("notnull",)]
    con = sqlite3.connect(db)
    con.execute('INSERT INTO flags ("returning") VALUES (\'yes\')')
    con.commit()
    con.close()
    assert query(db, 'SELECT "notnull", "returning" FROM flags') == [(0, "yes")]
    assert status(db, directory=folder).drift == []
    downgrade(db, "-1", directory=folder)
    assert "flags" not in tables(db)
    assert ("returning",) not in query(db, "SELECT name FROM pragma_table_info('assets')")


def test_a_rebuild_quotes_keyword_names_in_table_constraints(tmp_path):
    """A table the migrations made with UNIQUE ("notnull", "order") is rebuilt when the
    models drop that constraint (they cannot declare it); the down section writes it
    back with its names quoted, so the migration applies both ways."""
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / "0001_k.sql").write_text(migration_text(
        REV_A, None, 'CREATE TABLE k (id INTEGER PRIMARY KEY, "notnull" INTEGER, '
        '"order" INTEGER, UNIQUE ("notnull", "order"));', "DROP TABLE k;"))
    models = [Table("k", columns=[Column("id", "INTEGER", primary_key=True),
                                  Column("notnull", "INTEGER"), Column("order", "INTEGER")])]
    made = revision("no unique pair", folder, models=models)
    text = made.path.read_text()
    assert 'UNIQUE ("notnull", "order")' in text.split("-- migrate:down", 1)[1]
    db = tmp_path / "k.db"
    upgrade(db, directory=folder)
    assert status(db, directory=folder).drift == []
    downgrade(db, "-1", directory=folder)
    assert status(db, directory=folder).drift == []
    assert query(db, "SELECT count(*) FROM pragma_index_list('k') WHERE origin = 'u'") == [(1,)]
