"""promptlab db status: drift (an applied file that changed, a live schema that differs
from what the migrations produce), --exit-code and --json."""

from __future__ import annotations

import json
import sqlite3

from conftest import HEAD
from migtools import ENV, L2, chain_dir, cli, migration_text  # noqa: F401  (fixture)
from promptlab.sqlite.migrations import status, upgrade


def test_clean_database_has_no_drift(db_path):
    upgrade(db_path)
    state = status(db_path)
    assert state.drift == [] and state.up_to_date and not state.drifted
    result = cli("db", "status", "-d", db_path, "--exit-code")
    assert result.returncode == 0 and "Drift:     none" in result.stdout


def test_editing_an_applied_file_is_drift(chain_dir, db_path):
    upgrade(db_path)
    target = chain_dir / "0002_layout_l2.sql"
    original = target.read_text()
    # An edit of the PostgreSQL sections is not drift for a SQLite database: they never
    # ran on it (its checksum covers the text before them).
    target.write_text(original + "\n-- an edit of what PostgreSQL runs\n")
    assert status(db_path).drift == []
    target.write_text(original.replace("-- migrate:up\n",
                                       "-- migrate:up\n-- an innocent-looking edit\n", 1))
    state = status(db_path)
    assert [d.kind for d in state.drift] == ["checksum"]
    assert state.drift[0].revision == L2 and "0002_layout_l2.sql" in state.drift[0].detail
    assert state.drifted and not state.pending
    env = {ENV: str(chain_dir)}
    result = cli("db", "status", "-d", db_path, env=env)
    assert result.returncode == 0
    assert "DRIFT:     1 difference(s)" in result.stdout and "0002_layout_l2.sql" in result.stdout
    assert cli("db", "status", "-d", db_path, "--exit-code", env=env).returncode == 4
    data = json.loads(cli("db", "status", "-d", db_path, "--json", env=env).stdout)
    assert data["drift"][0]["kind"] == "checksum" and data["drift"][0]["revision"] == L2
    assert data["up_to_date"] is True
    # Putting the file back removes the drift.
    target.write_text(original)
    assert status(db_path).drift == []


def test_schema_changed_by_hand_is_drift(db_path):
    upgrade(db_path)
    con = sqlite3.connect(db_path)
    con.executescript("ALTER TABLE assets ADD COLUMN sneaky TEXT;"
                      "DROP INDEX ix_experiments_created_at;"
                      "CREATE INDEX ix_mine ON users (role);"
                      "CREATE TABLE scratch (x);")
    con.close()
    details = sorted(d.detail for d in status(db_path).drift)
    assert details == sorted([
        "schema: table assets: column sneaky is not made by the migrations",
        "schema: table experiments: index ix_experiments_created_at is missing",
        "schema: table users: index ix_mine is not made by the migrations",
        "schema: table scratch is not made by the migrations",
    ])
    assert all(d.kind == "schema" for d in status(db_path).drift)
    assert cli("db", "status", "-d", db_path, "--exit-code").returncode == 4


def test_changed_column_definition_is_drift(db_path):
    upgrade(db_path)
    con = sqlite3.connect(db_path)
    # Rebuild users with status lacking its default, as a hand-made "fix" might.
    con.executescript("""
        PRAGMA foreign_keys=OFF;
        BEGIN;
        CREATE TABLE users2 (id INTEGER PRIMARY KEY AUTOINCREMENT, username VARCHAR NOT NULL
            UNIQUE, password_hash VARCHAR NOT NULL, role VARCHAR NOT NULL, status INTEGER,
            created_at DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')));
        INSERT INTO users2 SELECT * FROM users;
        DROP TABLE users;
        ALTER TABLE users2 RENAME TO users;
        COMMIT;
    """)
    con.close()
    (drift,) = status(db_path).drift
    assert drift.detail == ("schema: table users: column status is INTEGER, the migrations "
                            "make it INTEGER DEFAULT 1")


def test_history_for_a_revision_the_database_is_not_at(db_path):
    upgrade(db_path, to=L2)
    con = sqlite3.connect(db_path)
    con.execute("INSERT INTO promptlab_migrations VALUES (?, 'x', '', '2026-01-01', 0)", (HEAD,))
    con.commit()
    con.close()
    kinds = sorted(d.kind for d in status(db_path).drift)
    assert kinds == ["checksum", "history"]


def test_pending_without_drift_exits_3(db_path):
    upgrade(db_path, to=L2)
    result = cli("db", "status", "-d", db_path, "--exit-code")
    assert result.returncode == 3 and "Pending:   3 migration(s)" in result.stdout
    assert "Drift:     none" in result.stdout


def test_status_reads_an_edited_file_without_a_new_process(chain_dir, db_path):
    (chain_dir / "0005_extra.sql").write_text(
        migration_text("extra005", HEAD, "CREATE TABLE extra (a);", "DROP TABLE extra;"))
    upgrade(db_path)
    assert status(db_path).drift == []
    (chain_dir / "0005_extra.sql").write_text(
        migration_text("extra005", HEAD, "CREATE TABLE extra (a, b);", "DROP TABLE extra;"))
    details = [d.detail for d in status(db_path).drift]
    assert any("0005_extra.sql" in d for d in details)
    assert "schema: table extra: column b is missing" in details


def test_several_version_rows_are_refused(db_path):
    upgrade(db_path)
    con = sqlite3.connect(db_path)
    con.execute("INSERT INTO alembic_version VALUES (?)", (L2,))
    con.commit()
    con.close()
    result = cli("db", "status", "-d", db_path)
    assert result.returncode == 1 and "several heads" in result.stderr
    result = cli("db", "migrate", "-d", db_path)
    assert result.returncode == 1 and "several heads" in result.stderr
