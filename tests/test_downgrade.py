"""promptlab db downgrade: down sections newest first, one transaction each, irreversible
migrations refused before anything changes, round trips that keep what the down
sections keep, and a process killed mid-downgrade."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import HEAD, NEUTRAL_CWD, assert_healthy, file_digest
from migtools import (
    CHAIN,
    ENV,
    L1,
    L2,
    L3,
    LEGACY,
    chain_dir,  # noqa: F401  (fixture)
    cli,
    copy_chain,
    integrity,
    migration_text,
    query,
    tables,
    versions,
)
from promptlab.sqlite import MigrationError
from promptlab.sqlite.migrations import downgrade, migrations, status, upgrade
from promptlab.sqlite.schema import Schema, compare
from promptlab import _core

BOOKKEEPING = ["alembic_version", "promptlab_migrations"]


def history(path):
    return [r[0] for r in query(path, "SELECT revision FROM promptlab_migrations "
                                      "ORDER BY applied_at, rowid")]


def test_one_step_back_and_forward(db_path):
    upgrade(db_path)
    result = cli("db", "downgrade", "-d", db_path, "-r", "-1")
    assert result.returncode == 0, result.stderr
    assert f"Undid 1 migration(s) on {db_path}; now at revision {CHAIN[3]}." in result.stdout
    assert versions(db_path) == [CHAIN[3]] and history(db_path) == CHAIN[:4]
    state = status(db_path)
    assert [m.revision for m in state.pending] == [HEAD] and state.drift == []
    upgrade(db_path)
    assert_healthy(db_path)


def test_downgrade_to_base_then_upgrade_again(db_path):
    upgrade(db_path)
    run = downgrade(db_path, "base")
    assert (run.before, run.current, run.count) == (HEAD, None, 5)
    assert tables(db_path) == BOOKKEEPING
    assert versions(db_path) == [] and history(db_path) == []
    assert integrity(db_path) == "ok"
    assert status(db_path).pending == migrations()
    run = upgrade(db_path)
    assert run.count == 5
    assert_healthy(db_path)
    assert status(db_path).drift == []
    fresh = db_path.parent / "fresh.db"
    upgrade(fresh)
    assert compare(Schema.from_catalog(_core.database_schema(fresh)),
                   Schema.from_catalog(_core.database_schema(db_path))) == []


def test_downgrade_to_a_revision_by_prefix(db_path):
    upgrade(db_path)
    result = cli("db", "downgrade", "-d", db_path, "-r", L2[:5])
    assert result.returncode == 0, result.stderr
    assert versions(db_path) == [L2] and "users" not in tables(db_path)
    assert history(db_path) == CHAIN[:2]


def _fill_head(path):
    con = sqlite3.connect(path)
    con.execute("INSERT INTO users (username, password_hash, role) VALUES ('ana', 'h', 'dev')")
    con.executemany(
        "INSERT INTO assets (asset_name, asset_version, asset_description, asset_type, "
        "asset_binary, is_deployed, deployment_time, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(f"tmpl-{i % 3} ✓", i, f"désc {i}", "prompt_template", "x" * i, i % 2,
          None if i % 2 else "2026-01-01 00:00:00", f"2026-01-0{1 + i % 9} 00:00:00")
         for i in range(30)])
    con.executemany(
        "INSERT INTO experiments (experiment_id, model, asset, created_at) VALUES (?, ?, ?, ?)",
        [(f"e{i}", json.dumps({"completion_model_config": {"model_name": f"m{i}"},
                               "embedding_model_config": None}),
          "[]", f"2026-02-0{1 + i} 00:00:00") for i in range(5)])
    con.executemany(
        "INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, "
        "prompt_tokens, completion_tokens, latency_ms, evaluation, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(f"e{i % 5}", str(i), f"réponse {i}", i, 2 * i, i / 7, "[]", "2026-03-01 00:00:00")
         for i in range(100)])
    con.commit()
    con.close()


KEPT_ASSETS = ("SELECT asset_name, asset_version, asset_description, asset_type, asset_binary, "
               "is_deployed, deployment_time, created_at FROM assets "
               "ORDER BY asset_name, asset_version")
KEPT_RESULTS = ("SELECT id, experiment_id, dataset_record_id, completion, prompt_tokens, "
                "completion_tokens, latency_ms, evaluation, created_at FROM experiment_result "
                "ORDER BY id")


def test_round_trip_through_the_oldest_layout_keeps_the_data(db_path):
    upgrade(db_path)
    _fill_head(db_path)
    assets = query(db_path, KEPT_ASSETS)
    results = query(db_path, KEPT_RESULTS)
    models = dict(query(db_path, "SELECT experiment_id, model FROM experiments"))

    downgrade(db_path, L1)
    assert versions(db_path) == [L1]
    assert sorted(tables(db_path)) == sorted(BOOKKEEPING + ["assets", "experiments",
                                                            "experiment_result"])
    # In the L1 layout: inference instead of completion, the old JSON key, asset_id.
    assert query(db_path, "SELECT id, inference FROM experiment_result ORDER BY id") == \
        [(r[0], r[3]) for r in results]
    for exp_id, model in query(db_path, "SELECT experiment_id, model FROM experiments"):
        value = json.loads(model)
        assert value["inference_model_config"] == \
            json.loads(models[exp_id])["completion_model_config"]
    assert query(db_path, "SELECT count(*) FROM assets WHERE asset_id IS NULL")[0][0] == 30
    state = status(db_path)
    assert state.drift == [] and len(state.pending) == 4

    upgrade(db_path)
    assert_healthy(db_path)
    assert query(db_path, KEPT_ASSETS) == assets
    assert query(db_path, KEPT_RESULTS) == results
    for exp_id, model in query(db_path, "SELECT experiment_id, model FROM experiments"):
        assert json.loads(model) == json.loads(models[exp_id])
    # The down sections drop users (L1 has none): the rows now belong to admin.
    assert query(db_path, "SELECT username FROM users") == [("admin",)]
    assert query(db_path, "SELECT DISTINCT user_id FROM assets") == \
        query(db_path, "SELECT id FROM users WHERE username = 'admin'")
    assert status(db_path).drift == []

    downgrade(db_path, "base")
    upgrade(db_path)
    assert query(db_path, "SELECT count(*) FROM assets")[0][0] == 0
    assert_healthy(db_path)


def test_legacy_database_can_be_downgraded_directly(tmp_path):
    path = tmp_path / "l3.db"
    con = sqlite3.connect(path)
    con.executescript((LEGACY / "L3-0.1.4-0.1.11.sql").read_text())
    con.execute("INSERT INTO experiment_result (id, completion) VALUES (7, 'kept')")
    con.commit()
    con.close()
    run = downgrade(path, L2)
    assert (run.before, run.detected, run.current, run.count) == (None, L3, L2, 1)
    assert query(path, "SELECT id, inference FROM experiment_result") == [(7, "kept")]
    assert status(path).drift == []


def test_irreversible_migration_is_refused_before_anything_changes(chain_dir, db_path):
    (chain_dir / "0005_oneway.sql").write_text(migration_text(
        "oneway05", HEAD, "CREATE TABLE oneway (a);", "-- cannot be undone\n"))
    (chain_dir / "0006_after.sql").write_text(migration_text(
        "after006", "oneway05", "CREATE TABLE after6 (a);", "DROP TABLE after6;"))
    upgrade(db_path)
    assert versions(db_path) == ["after006"]
    before = query(db_path, "SELECT * FROM sqlite_master ORDER BY name")
    for target in ("base", HEAD, "-2"):
        with pytest.raises(MigrationError) as info:
            downgrade(db_path, target)
        message = str(info.value)
        assert "oneway05" in message and "0005_oneway.sql" in message
        assert "cannot be undone" in message and "after006" in message
    assert versions(db_path) == ["after006"]
    assert query(db_path, "SELECT * FROM sqlite_master ORDER BY name") == before
    # One step is fine: 0006 can be undone.
    assert downgrade(db_path, "-1").current == "oneway05"
    result = cli("db", "downgrade", "-d", db_path, "-r", "-1", env={ENV: str(chain_dir)})
    assert result.returncode == 1 and "cannot be undone" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_failing_down_section_names_it_and_keeps_the_revision(chain_dir, db_path):
    (chain_dir / "0005_bad_down.sql").write_text(migration_text(
        "baddown5", HEAD, "CREATE TABLE t5 (a);",
        "DROP TABLE t5;\nDROP TABLE does_not_exist;"))
    upgrade(db_path)
    with pytest.raises(MigrationError) as info:
        downgrade(db_path, "-1")
    message = str(info.value)
    assert "baddown5" in message and "down section" in message
    assert "DROP TABLE does_not_exist" in message
    assert versions(db_path) == ["baddown5"] and "t5" in tables(db_path)
    assert integrity(db_path) == "ok"


@pytest.mark.parametrize("target, expected", [
    ("head", "needs a target"), ("-9", "leave the chain"), ("nope1234", "no revision"),
])
def test_bad_targets(db_path, target, expected):
    upgrade(db_path)
    digest = file_digest(db_path)
    with pytest.raises(MigrationError, match=expected):
        downgrade(db_path, target)
    assert file_digest(db_path) == digest


def test_downgrade_forward_is_refused(db_path):
    upgrade(db_path, to=L2)
    result = cli("db", "downgrade", "-d", db_path, "-r", HEAD)
    assert result.returncode == 1 and "promptlab db migrate" in result.stderr
    assert versions(db_path) == [L2]


def test_downgrade_of_a_missing_file_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    result = cli("db", "downgrade", "-d", path, "-r", "base")
    assert result.returncode == 1 and "no database file" in result.stderr
    assert not path.exists()


def test_downgrade_sql_and_backup(db_path):
    upgrade(db_path)
    _fill_head(db_path)
    digest = file_digest(db_path)
    result = cli("db", "downgrade", "-d", db_path, "-r", L3, "--sql")
    assert result.returncode == 0
    assert f"Downgrade {CHAIN[3]} -> {L3}" in result.stdout and "DROP INDEX" in result.stdout
    assert file_digest(db_path) == digest
    result = cli("db", "downgrade", "-d", db_path, "-r", "base", "--backup")
    assert result.returncode == 0, result.stderr
    backup = result.stdout.split(" to ", 1)[1].split(" before")[0]
    assert versions(backup) == [HEAD]
    assert query(backup, "SELECT count(*) FROM experiment_result")[0][0] == 100
    assert versions(db_path) == []


# --- a process killed mid-downgrade --------------------------------------------------------

SLOW_DOWN = migration_text(
    "slowdn05", HEAD,
    "CREATE TABLE bulk (id INTEGER PRIMARY KEY, payload TEXT);\n"
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)\n"
    "INSERT INTO bulk (id, payload) SELECT i, hex(randomblob(40)) FROM n;",
    # Slow on purpose: copies the table before dropping both.
    "CREATE TABLE bulk_copy AS SELECT * FROM bulk ORDER BY payload;\n"
    "CREATE INDEX ix_bulk_copy ON bulk_copy (payload);\n"
    "DROP TABLE bulk;\nDROP TABLE bulk_copy;")


@pytest.mark.parametrize("delay", [0.1, "wal", *(pytest.param(d, marks=pytest.mark.slow)
                                                for d in (0.4, 0.8))])
def test_sigkill_mid_downgrade(tmp_path, delay):
    folder = copy_chain(tmp_path / "versions", {"0005_slow.sql": SLOW_DOWN})
    path = tmp_path / "lab.db"
    upgrade(path, directory=folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    env[ENV] = str(folder)
    proc = subprocess.Popen([sys.executable, "-m", "promptlab", "db", "downgrade", "-d",
                             str(path), "-r", L3], cwd=NEUTRAL_CWD, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if delay == "wal":
        deadline = time.monotonic() + 60
        while proc.poll() is None and (not os.path.exists(f"{path}-wal")
                                       or os.path.getsize(f"{path}-wal") < 4 * 2**20):
            assert time.monotonic() < deadline
            time.sleep(0.002)
    else:
        time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert integrity(path) == "ok"
    (rev,) = versions(path)
    assert rev in ("slowdn05", HEAD, L3)
    assert ("bulk" in tables(path)) == (rev == "slowdn05")
    assert "bulk_copy" not in tables(path)
    if rev == "slowdn05":
        assert query(path, "SELECT count(*) FROM bulk")[0][0] == 200000
    if delay == "wal":
        assert killed and rev == "slowdn05"
    result = cli("db", "downgrade", "-d", path, "-r", L3, env={ENV: str(folder)})
    assert result.returncode == 0, result.stderr
    assert versions(path) == [L3] and integrity(path) == "ok"
