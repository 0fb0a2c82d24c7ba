"""promptlab db revision: new migration files, generated from a copy of the models."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HEAD
from migtools import ENV, L3 as CHAIN_L3, cli, copy_chain, integrity, query, tables, versions
from promptlab.sqlite import MigrationError
from promptlab.sqlite import models as shipped_models
from promptlab.sqlite.migrations import downgrade, migrations, revision, status, upgrade

MODELS = Path(shipped_models.__file__)


def models_copy(tmp_path: Path, change: str) -> Path:
    """A copy of promptlab/sqlite/models.py with ``change`` (Python that rebinds TABLES)
    appended."""
    path = tmp_path / "models_copy.py"
    path.write_text(MODELS.read_text() + "\n\n# --- the test's change ---\n"
                    "import dataclasses as _dc\n" + change)
    return path


def replace_table(name: str, expr: str) -> str:
    return (f"TABLES = tuple(({expr}) if t.name == {name!r} else t for t in TABLES)\n")


ADD_COLUMN_AND_TABLE = (
    replace_table("assets", "_dc.replace(t, columns=t.columns + "
                            "(Column('rating', 'INTEGER', default_sql='0'),))")
    + "TABLES = TABLES + (Table('tags', columns=["
      "Column('id', 'INTEGER', primary_key=True), "
      "Column('name', 'VARCHAR', nullable=False, unique=True), "
      "Column('user_id', 'INTEGER', references='users.id'), "
      "Column('created_at', 'DATETIME', default_sql=_NOW_UTC)], "
      "indexes=[Index('ix_tags_user_id', ['user_id'])]),)\n")


@pytest.fixture
def folder(tmp_path):
    return copy_chain(tmp_path / "versions")


def new_files(folder: Path):
    return sorted(p.name for p in folder.glob("*.sql") if not p.name[:4] in
                  ("0001", "0002", "0003", "0004", "0005"))


def seed(path):
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO assets (asset_name, asset_version, asset_type, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    [(f"a{i}", i, "dataset", "2026-01-01 00:00:00") for i in range(10)])
    con.execute("INSERT INTO experiments (experiment_id, model) VALUES ('e1', '{}')")
    con.execute("INSERT INTO experiment_result (experiment_id, completion, latency_ms) "
                "VALUES ('e1', 'hello', 1.5)")
    con.commit()
    con.close()


def test_no_model_change_writes_nothing(folder):
    result = cli("db", "revision", "-m", "nothing changed", "--dir", folder)
    assert result.returncode == 0, result.stderr
    assert "No changes" in result.stdout and "Nothing was written" in result.stdout
    assert new_files(folder) == []


def test_empty_revision_follows_the_head(folder):
    result = cli("db", "revision", "-m", "Backfill: ratings!", "--dir", folder, "--empty")
    assert result.returncode == 0, result.stderr
    (name,) = new_files(folder)
    assert name == "0006_backfill_ratings.sql"
    chain = migrations(folder)
    assert chain[-1].parent == HEAD and chain[-1].message == "Backfill: ratings!"
    assert chain[-1].filename == name and not chain[-1].reversible
    text = (folder / name).read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text
    assert f"-- revision: {chain[-1].revision}" in text


def test_autogenerate_added_column_and_table(tmp_path, folder):
    models = models_copy(tmp_path, ADD_COLUMN_AND_TABLE)
    result = cli("db", "revision", "-m", "ratings and tags", "--dir", folder, "--models", models)
    assert result.returncode == 0, result.stderr
    assert "+ column assets.rating" in result.stdout and "+ table tags" in result.stdout
    (name,) = new_files(folder)
    text = (folder / name).read_text()
    assert "ALTER TABLE assets ADD COLUMN rating INTEGER DEFAULT 0;" in text
    assert "CREATE TABLE tags (" in text
    assert "CREATE INDEX ix_tags_user_id ON tags (user_id);" in text
    down = text.split("-- migrate:down", 1)[1]
    assert "DROP TABLE tags;" in down and "ALTER TABLE assets DROP COLUMN rating;" in down

    db = tmp_path / "lab.db"
    upgrade(db, to=HEAD, directory=folder)
    seed(db)
    run = upgrade(db, directory=folder)
    assert run.count == 1
    assert query(db, "SELECT asset_name, rating FROM assets ORDER BY asset_version")[:2] == \
        [("a0", 0), ("a1", 0)]
    assert "tags" in tables(db) and integrity(db) == "ok"
    assert status(db, directory=folder).drift == []
    # The models and the migrations agree now.
    again = revision("again", folder, models=models)
    assert again.path is None and again.changes == []
    # And the way back keeps the rows.
    downgrade(db, "-1", directory=folder)
    assert versions(db) == [HEAD] and "tags" not in tables(db)
    assert query(db, "SELECT count(*) FROM assets")[0][0] == 10
    assert status(db, directory=folder).drift == []


def test_changed_column_is_a_table_rebuild_that_keeps_rows(tmp_path, folder):
    change = replace_table(
        "experiment_result",
        "_dc.replace(t, columns=tuple(_dc.replace(c, sql_type='REAL', nullable=False, "
        "default_sql='0') if c.name == 'latency_ms' else c for c in t.columns))")
    models = models_copy(tmp_path, change)
    made = revision("latency is a real", folder, models=models)
    assert made.changes == ["~ column experiment_result.latency_ms: FLOAT -> "
                            "REAL NOT NULL DEFAULT 0"]
    text = made.path.read_text()
    up, down = text.split("-- migrate:up", 1)[1].split("-- migrate:down", 1)
    for part in (up, down):
        assert "CREATE TABLE experiment_result__rebuild (" in part
        assert "INSERT INTO experiment_result__rebuild (" in part
        assert "DROP TABLE experiment_result;" in part
        assert "ALTER TABLE experiment_result__rebuild RENAME TO experiment_result;" in part
        assert "CREATE INDEX ix_experiment_result_experiment_id" in part
        assert "foreign_key_check" in part
    assert "COALESCE(latency_ms, 0)" in up

    db = tmp_path / "lab.db"
    upgrade(db, to=HEAD, directory=folder)
    seed(db)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO experiment_result (experiment_id, completion) VALUES ('e1', 'n')")
    con.commit()
    con.close()
    upgrade(db, directory=folder)
    assert query(db, "SELECT completion, latency_ms FROM experiment_result ORDER BY id") == \
        [("hello", 1.5), ("n", 0.0)]
    assert query(db, "SELECT type, \"notnull\", dflt_value FROM pragma_table_info("
                     "'experiment_result') WHERE name = 'latency_ms'") == [("REAL", 1, "0")]
    assert status(db, directory=folder).drift == []
    downgrade(db, "-1", directory=folder)
    assert query(db, "SELECT type FROM pragma_table_info('experiment_result') "
                     "WHERE name = 'latency_ms'") == [("FLOAT",)]
    assert status(db, directory=folder).drift == []


def test_removed_column_index_and_table(tmp_path, folder):
    # Add first (a table and a column), then remove them again in the models.
    first = revision("add", folder, models=models_copy(tmp_path, ADD_COLUMN_AND_TABLE))
    assert first.path is not None
    change = replace_table(
        "experiments", "_dc.replace(t, columns=tuple(c for c in t.columns "
                       "if c.name != 'asset'), indexes=())")
    made = revision("drop things", folder, models=models_copy(tmp_path, change))
    assert sorted(made.changes) == sorted([
        "- column assets.rating", "- column experiments.asset",
        "- index ix_experiments_created_at on experiments", "- table tags"])
    up = made.path.read_text().split("-- migrate:up", 1)[1].split("-- migrate:down")[0]
    assert "DROP TABLE tags;" in up and "ALTER TABLE experiments DROP COLUMN asset;" in up
    assert "DROP INDEX ix_experiments_created_at;" in up
    db = tmp_path / "lab.db"
    upgrade(db, directory=folder)
    assert "tags" not in tables(db)
    downgrade(db, "-1", directory=folder)
    assert "tags" in tables(db) and status(db, directory=folder).drift == []


def test_column_inserted_in_the_middle_is_a_rebuild(tmp_path, folder):
    change = replace_table(
        "users", "_dc.replace(t, columns=t.columns[:2] + (Column('email', 'VARCHAR'),) "
                 "+ t.columns[2:])")
    made = revision("email", folder, models=models_copy(tmp_path, change))
    up = made.path.read_text().split("-- migrate:down")[0]
    assert "users__rebuild" in up and "the column order changes" in up
    db = tmp_path / "lab.db"
    upgrade(db, directory=folder)
    assert [r[0] for r in query(db, "SELECT name FROM pragma_table_info('users')")][:3] == \
        ["id", "username", "email"]
    assert query(db, "SELECT username FROM users") == [("admin",)]


def test_revision_uses_the_folder_in_use_by_default(tmp_path, folder, monkeypatch):
    monkeypatch.setenv(ENV, str(folder))
    made = revision("empty one", empty=True)
    assert made.path.parent == folder and made.parent == HEAD


@pytest.mark.parametrize("args, expected", [
    (["-m", " "], "needs a message"),
    (["-m", "x", "--dir", "/nonexistent/folder"], "no such migrations folder"),
    (["-m", "x", "--models", "/nonexistent/models.py"], "no such models file"),
])
def test_revision_errors(folder, args, expected):
    if "--dir" not in args:
        args = args + ["--dir", str(folder)]
    result = cli("db", "revision", *args)
    assert result.returncode == 1 and expected in result.stderr
    assert new_files(folder) == []


def test_a_generated_file_that_does_not_reproduce_the_models_is_not_written(tmp_path, folder):
    # A NOT NULL column without a default cannot be added to a table with rows, but on the
    # scratch database (empty) it can; declare an index on a column that does not exist to
    # make the check fail for sure.
    change = replace_table(
        "assets", "_dc.replace(t, indexes=t.indexes + (Index('ix_bad', ['no_such']),))")
    with pytest.raises(MigrationError, match="was not written|no_such"):
        revision("bad index", folder, models=models_copy(tmp_path, change))
    assert new_files(folder) == []


# --- -d FILE: compare the models with a database, as Alembic's autogenerate ---------------


def test_revision_against_a_database_at_the_head(tmp_path, folder):
    db = tmp_path / "lab.db"
    upgrade(db, directory=folder)
    seed(db)
    models = models_copy(tmp_path, ADD_COLUMN_AND_TABLE)
    result = cli("db", "revision", "-m", "ratings", "--dir", folder, "--models", models,
                 "-d", db)
    assert result.returncode == 0, result.stderr
    assert "+ column assets.rating" in result.stdout and "+ table tags" in result.stdout
    (name,) = new_files(folder)
    text = (folder / name).read_text()
    assert f"against {db}" in text
    assert "ALTER TABLE assets ADD COLUMN rating INTEGER DEFAULT 0;" in text
    # The same file as without -d (the database holds what the migrations produce).
    plain = revision("ratings", copy_chain(tmp_path / "plain"), models=models)
    body = lambda t: t.split("-- migrate:up", 1)[1]  # noqa: E731
    assert body(plain.path.read_text()) == body(text)
    assert upgrade(db, directory=folder).count == 1
    assert query(db, "SELECT count(*) FROM assets WHERE rating = 0")[0][0] == 10
    same = cli("db", "revision", "-m", "again", "--dir", folder, "--models", models, "-d", db)
    assert same.returncode == 0 and "No changes" in same.stdout


def test_revision_against_a_database_behind_the_head_is_refused(tmp_path, folder):
    db = tmp_path / "old.db"
    upgrade(db, to=CHAIN_L3, directory=folder)
    before = db.read_bytes()
    result = cli("db", "revision", "-m", "x", "--dir", folder, "-d", db, "--models",
                 models_copy(tmp_path, ADD_COLUMN_AND_TABLE))
    assert result.returncode == 1
    assert "not at the head" in result.stderr and "promptlab db migrate -d" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert new_files(folder) == [] and db.read_bytes() == before


def test_revision_against_a_missing_database_creates_nothing(tmp_path, folder):
    db = tmp_path / "nothing" / "lab.db"
    result = cli("db", "revision", "-m", "x", "--dir", folder, "-d", db)
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert not db.parent.exists() and new_files(folder) == []


def test_revision_against_a_drifted_database_is_refused(tmp_path, folder):
    db = tmp_path / "lab.db"
    upgrade(db, directory=folder)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE assets ADD COLUMN rating INTEGER DEFAULT 0")  # by hand
    con.commit()
    con.close()
    # The models declare the column too: from the database alone, the migration would
    # miss it, and every other database would never get it.
    result = cli("db", "revision", "-m", "x", "--dir", folder, "-d", db, "--models",
                 models_copy(tmp_path, ADD_COLUMN_AND_TABLE))
    assert result.returncode == 1
    assert "differs from the schema its migrations produce" in result.stderr
    assert "rating" in result.stderr and new_files(folder) == []


# --- never into an installed package ------------------------------------------------------


def installed_copy(tmp_path: Path) -> Path:
    """promptlab laid out as pip installs it: site-packages/promptlab with the built C
    core and migrations/versions inside."""
    site = tmp_path / "lib" / "site-packages"
    package = Path(shipped_models.__file__).parents[1]
    shutil.copytree(package, site / "promptlab",
                    ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    copy_chain(site / "promptlab" / "migrations" / "versions")
    return site


def test_revision_never_writes_into_an_installed_package(tmp_path):
    site = installed_copy(tmp_path)
    installed = site / "promptlab" / "migrations" / "versions"
    env = {"PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-c", "import promptlab._core as c; "
                            "print(c.migrations_dir())"], capture_output=True, text=True,
                           env={**os.environ, **env}, cwd=tmp_path)
    assert Path(probe.stdout.strip()).resolve() == installed.resolve(), probe.stderr
    before = sorted(p.name for p in installed.iterdir())

    result = cli("db", "revision", "-m", "mine", "--empty", env=env)
    assert result.returncode == 1
    assert "installed PromptLab" in result.stderr and "--dir" in result.stderr
    result = cli("db", "revision", "-m", "mine", "--empty", "--dir", installed, env=env)
    assert result.returncode == 1 and "installed package" in result.stderr
    assert sorted(p.name for p in installed.iterdir()) == before

    own = copy_chain(tmp_path / "my-migrations")
    result = cli("db", "revision", "-m", "mine", "--empty", "--dir", own, env=env)
    assert result.returncode == 0, result.stderr
    assert new_files(own) == ["0006_mine.sql"]
    # An explicit PROMPTLAB_MIGRATIONS_DIR is a choice too.
    result = cli("db", "revision", "-m", "theirs", "--empty",
                 env={**env, ENV: str(own)})
    assert result.returncode == 0, result.stderr
    assert new_files(own) == ["0006_mine.sql", "0007_theirs.sql"]


def test_a_source_checkout_is_the_default_folder():
    from promptlab.sqlite.autogenerate import _is_source_checkout, installed_package_folder

    shipped = Path(shipped_models.__file__).parents[2] / "migrations" / "versions"
    if not _is_source_checkout(shipped):
        pytest.skip("this PromptLab is not installed from a source checkout")
    assert installed_package_folder(shipped) is None
    assert installed_package_folder("/usr/lib/python3/dist-packages/promptlab/x") == \
        Path("/usr/lib/python3/dist-packages/promptlab")
