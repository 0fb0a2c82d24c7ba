"""Databases written by earlier PromptLab releases (layouts L1, L2, L3, see
tests/data/legacy/README.md): recognised by their schema, marked at their revision,
upgraded to head with every row and value; other layouts refused untouched."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import HEAD, assert_healthy, file_digest
from migtools import L1, L2, L3, LEGACY, cli, integrity, query, sidecars, tables, versions
from promptlab.sqlite import MigrationError
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.migrations import status, upgrade

LAYOUTS = {
    "L1": ("L1-0.0.3-early.sql", L1),
    "L2": ("L2-0.0.3-0.1.3.sql", L2),
    "L3": ("L3-0.1.4-0.1.11.sql", L3),
}
# "admin" at 4 rounds: every `db migrate` of these files checks the admin against the
# default password, 0.2 s a check at the 12 rounds the original stored. What the tests
# here check is that the row survives unchanged; that the original's own hash verifies
# is test_manager.py's, and its warning test_admin_password.py's (which keep it).
ADMIN_HASH = "$2b$04$JjrTrtA52rUbtDcQTwQLEOeD7Xt.N77IWkEzHjReR9.Zc70t8SRFm"
BIG = json.dumps({"rows": [{"q": f"question {i} — ¿qué? 質問", "a": "x" * 200} for i in
                           range(8000)]})
HUGE_TEXT = "Lorem ipsum dolor sit amet, 🦜 " * 70_000  # ~2 MB


def build(path: Path, layout: str) -> None:
    """Create an empty database with a legacy layout, as that release left it."""
    con = sqlite3.connect(path)
    con.executescript((LEGACY / LAYOUTS[layout][0]).read_text())
    con.close()


def model_json(key: str, i: int):
    """experiments.model as the original wrote it (json.dumps with spaces)."""
    return json.dumps({
        key: {"type": "ollama", "model_name": f"llama3.{i}", "temperature": 0.1 * i,
              "params": {"stop": ["\n", "###"], "note": "naïve café ☕", "n": None}},
        "embedding_model_config": {"type": "ollama", "model_name": "nomic-embed-text"},
    })


def fill(path: Path, layout: str) -> Dict[str, List[tuple]]:
    """Fill a legacy database with realistic rows; returns what was inserted, per table,
    in the layout's own columns."""
    con = sqlite3.connect(path)
    inserted: Dict[str, List[tuple]] = {"assets": [], "experiments": [], "experiment_result": [],
                                        "users": []}
    completion_key = "completion_model_config" if layout == "L3" else "inference_model_config"

    if layout == "L3":
        users = [(1, "admin", ADMIN_HASH, "admin", 1, "2025-07-10 09:00:00.123456"),
                 (2, "Zoë_🚀", "$2b$12$" + "a" * 53, "engineer", 1, "2025-07-11 10:00:00"),
                 (3, "bob", "$2b$12$" + "b" * 53, "viewer", 0, None)]
        con.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", users)
        inserted["users"] = users

    assets = []
    for v in range(60):  # many versions of one template
        assets.append(dict(asset_name="summarize", asset_version=v,
                           asset_description=f"version {v}: résumé en français",
                           asset_type="prompt_template",
                           asset_binary=json.dumps({"system_prompt": f"You summarize, v{v}",
                                                    "user_prompt": "Text: <text>"}),
                           is_deployed=1 if v == 59 else 0,
                           deployment_time="2025-04-02 12:00:00" if v == 59 else None,
                           created_at=f"2025-03-{1 + v % 28:02d} 08:{v % 60:02d}:00"))
    assets.append(dict(asset_name="greeting ✨", asset_version=0,
                       asset_description="Hallo in 日本語, עברית and العربية",
                       asset_type="prompt_template", asset_binary="Say hi to <name> 👋",
                       is_deployed=None, deployment_time=None, created_at=None))
    assets.append(dict(asset_name="corpus", asset_version=0, asset_description=None,
                       asset_type="dataset", asset_binary=BIG, is_deployed=1,
                       deployment_time="2025-05-05 05:05:05.555", created_at="2025-05-05"))
    assets.append(dict(asset_name="nulls", asset_version=3, asset_description=None,
                       asset_type=None, asset_binary=None, is_deployed=None,
                       deployment_time=None, created_at=None))
    if layout != "L3":  # BLOB columns in L1/L2 may hold bytes
        assets.append(dict(asset_name="raw bytes", asset_version=1, asset_description="",
                           asset_type="dataset", asset_binary=b"\x00\x01\xfe\xffbinary",
                           is_deployed=0, deployment_time=None,
                           created_at="2025-03-09 09:09:09"))
    for i, a in enumerate(assets):
        if layout == "L1":
            a = dict(a, asset_id=None if i % 7 == 3 else f"uuid-{i:04d}-ä")
        if layout == "L3":
            a = dict(a, status=[1, 0, None][i % 3], user_id=[1, 2, None, 3][i % 4])
        cols = ", ".join(a)
        con.execute(f"INSERT INTO assets ({cols}) VALUES ({', '.join('?' * len(a))})",
                    tuple(a.values()))
        inserted["assets"].append(a)

    experiments = []
    for i in range(12):
        experiments.append(dict(experiment_id=f"exp-{i:03d}", model=model_json(completion_key, i),
                                asset=json.dumps([{"asset_name": "summarize",
                                                   "asset_version": i}]),
                                created_at=f"2025-06-{i + 1:02d}T10:00:00.000001"))
    experiments.append(dict(experiment_id="exp-null", model=None, asset=None, created_at=None))
    experiments.append(dict(experiment_id="exp-bad-json", model="{not json",
                            asset="[]", created_at="2025-06-20 00:00:00"))
    experiments.append(dict(experiment_id="exp-scalar",
                            model=json.dumps({completion_key: "gpt-4o", "other": 1}),
                            asset="[]", created_at="2025-06-21 00:00:00"))
    experiments.append(dict(experiment_id="exp-array", model=json.dumps([1, 2, 3]),
                            asset=None, created_at="2025-06-22 00:00:00"))
    experiments.append(dict(experiment_id="exp-ü-🧪", model=json.dumps(
        {completion_key: {"model_name": "mistral"}}, ensure_ascii=False), asset="[]",
        created_at="2025-06-23 00:00:00"))
    for i, e in enumerate(experiments):
        if layout == "L3":
            e = dict(e, status=[1, None][i % 2], user_id=[None, 1, 2][i % 3])
        cols = ", ".join(e)
        con.execute(f"INSERT INTO experiments ({cols}) VALUES ({', '.join('?' * len(e))})",
                    tuple(e.values()))
        inserted["experiments"].append(e)

    text_col = "completion" if layout == "L3" else "inference"
    results = []
    for i in range(400):
        results.append({
            "id": i + 1,
            "experiment_id": f"exp-{i % 12:03d}",
            "dataset_record_id": str(i),
            text_col: None if i % 50 == 7 else f"Answer {i}: Ça va? 你好 " * (1 + i % 5),
            "prompt_tokens": None if i % 9 == 0 else 10 + i,
            "completion_tokens": 3 * i,
            "latency_ms": None if i % 11 == 0 else 12.5 + i / 3,
            "evaluation": json.dumps([{"metric": "bleu", "result": i / 400}]),
            "created_at": f"2025-06-{1 + i % 28:02d} 11:{i % 60:02d}:{i % 60:02d}",
        })
    results.append({"id": 1000, "experiment_id": "exp-000", "dataset_record_id": "huge",
                    text_col: HUGE_TEXT, "prompt_tokens": 0, "completion_tokens": 0,
                    "latency_ms": 0.0, "evaluation": None, "created_at": None})
    # An orphan: older releases never enforced foreign keys; the row is kept as it is.
    results.append({"id": 1001, "experiment_id": "exp-deleted", "dataset_record_id": "o",
                    text_col: "orphan", "prompt_tokens": 1, "completion_tokens": 1,
                    "latency_ms": 1.0, "evaluation": "{}", "created_at": "2025-06-30"})
    for r in results:
        cols = ", ".join(r)
        con.execute(f"INSERT INTO experiment_result ({cols}) VALUES "
                    f"({', '.join('?' * len(r))})", tuple(r.values()))
        inserted["experiment_result"].append(r)
    con.commit()
    con.close()
    return inserted


_PYTHON_LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
                                r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{6}")


def utc_of_local(value):
    """What the upgrade makes of a created_at the releases wrote with Python's naive
    datetime.now() (local time, docs/migrations.md): the same instant in UTC, as
    'YYYY-MM-DD HH:MM:SS' plus the original fraction. Other values stay as they are."""
    if isinstance(value, str) and _PYTHON_LOCAL_TIME.fullmatch(value):
        instant = datetime.fromisoformat(value[:19]).astimezone(timezone.utc)
        return instant.strftime("%Y-%m-%d %H:%M:%S") + value[19:]
    return value


def renamed_model(model):
    """What 0003 does to experiments.model: the inference key becomes completion."""
    if model is None:
        return None
    try:
        value = json.loads(model)
    except ValueError:
        return model
    if isinstance(value, dict) and "inference_model_config" in value \
            and "completion_model_config" not in value:
        value["completion_model_config"] = value.pop("inference_model_config")
        return value
    return model


def assert_every_value_kept(path: Path, layout: str, inserted) -> None:
    """Compare every row and value of the upgraded database with what was inserted."""
    users = query(path, "SELECT id, username, password_hash, role, status, created_at "
                        "FROM users ORDER BY id")
    admin_id = [u[0] for u in users if u[1] == "admin"][0]
    if layout == "L3":
        assert users == [u[:5] + (utc_of_local(u[5]),) for u in inserted["users"]]
    else:
        assert [(u[1], u[2], u[3], u[4]) for u in users] == [("admin", "!", "admin", 1)]

    got = query(path, "SELECT asset_name, asset_version, asset_description, asset_type, "
                      "asset_binary, is_deployed, deployment_time, status, created_at, user_id "
                      "FROM assets ORDER BY asset_name, asset_version")
    want = sorted(
        ((a["asset_name"], a["asset_version"], a["asset_description"], a["asset_type"],
          a["asset_binary"], a["is_deployed"], a["deployment_time"], a.get("status"),
          a["created_at"] if layout == "L3" else utc_of_local(a["created_at"]),
          a.get("user_id") or admin_id) for a in inserted["assets"]),
        key=lambda r: (r[0], r[1]))
    assert got == want
    assert query(path, "SELECT typeof(asset_binary) FROM assets WHERE asset_name = 'raw bytes'") \
        == ([("blob",)] if layout != "L3" else [])

    legacy = query(path, "SELECT asset_name, asset_version, asset_id FROM legacy_asset_ids "
                         "ORDER BY asset_name, asset_version")
    if layout == "L1":
        assert legacy == sorted((a["asset_name"], a["asset_version"], a["asset_id"])
                                for a in inserted["assets"] if a["asset_id"] is not None)
    else:
        assert legacy == []

    got = {r[0]: r[1:] for r in query(path, "SELECT experiment_id, model, asset, status, "
                                            "created_at, user_id FROM experiments")}
    assert set(got) == {e["experiment_id"] for e in inserted["experiments"]}
    for e in inserted["experiments"]:
        model, asset, st, created, user = got[e["experiment_id"]]
        expected_model = renamed_model(e["model"]) if layout != "L3" else e["model"]
        if isinstance(expected_model, (dict, list)):
            assert json.loads(model) == expected_model, e["experiment_id"]
            assert "inference_model_config" not in model
        else:
            assert model == expected_model, e["experiment_id"]
        assert (asset, st, created, user) == \
            (e["asset"], e.get("status"), utc_of_local(e["created_at"]),
             e.get("user_id") or admin_id)

    text_col = "completion" if layout == "L3" else "inference"
    got = query(path, "SELECT id, experiment_id, dataset_record_id, completion, prompt_tokens, "
                      "completion_tokens, latency_ms, evaluation, created_at "
                      "FROM experiment_result ORDER BY id")
    assert got == [(r["id"], r["experiment_id"], r["dataset_record_id"], r[text_col],
                    r["prompt_tokens"], r["completion_tokens"], r["latency_ms"],
                    r["evaluation"], utc_of_local(r["created_at"]))
                   for r in inserted["experiment_result"]]


@pytest.mark.parametrize("layout", ["L1", "L2", "L3"])
def test_legacy_database_is_detected_and_upgraded_with_every_value(tmp_path, layout):
    path = tmp_path / f"{layout}.db"
    build(path, layout)
    inserted = fill(path, layout)
    before = status(path)
    assert before.current is None and before.detected == LAYOUTS[layout][1]
    assert [m.revision for m in before.pending] == \
        {"L1": [L2, L3, "28f160511eaa", HEAD], "L2": [L3, "28f160511eaa", HEAD],
         "L3": ["28f160511eaa", HEAD]}[layout]
    db_manager.initialize_database(path)
    assert_healthy(path)
    assert integrity(path) == "ok"
    assert_every_value_kept(path, layout, inserted)
    after = status(path)
    assert after.up_to_date and after.detected is None and after.drift == []
    applied = query(path, "SELECT revision, duration_ms FROM promptlab_migrations")
    marked = {r for r, ms in applied if ms == 0}
    assert {L1, L2, L3, "28f160511eaa", HEAD} == {r for r, _ in applied}
    assert LAYOUTS[layout][1] in marked


@pytest.mark.parametrize("variant", ["empty table", "no table"])
def test_l3_with_an_empty_or_missing_alembic_version(tmp_path, variant):
    path = tmp_path / "l3.db"
    build(path, "L3")
    if variant == "empty table":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
        con.close()
    inserted = fill(path, "L3")
    result = cli("db", "migrate", "-d", path)
    assert result.returncode == 0, result.stderr
    assert f"revision {L3}" in result.stdout and "Applied 2 migration(s)" in result.stdout
    assert_healthy(path)
    assert_every_value_kept(path, "L3", inserted)


@pytest.mark.parametrize("layout", ["L1", "L2", "L3"])
def test_cli_backup_holds_the_legacy_database_as_it_was(tmp_path, layout):
    path = tmp_path / "old.db"
    build(path, layout)
    fill(path, layout)
    con = sqlite3.connect(path)
    original = list(con.iterdump())
    con.close()
    result = cli("db", "migrate", "-d", path, "--backup")
    assert result.returncode == 0, result.stderr
    backup = Path(result.stdout.split(" to ", 1)[1].split(" before")[0])
    assert backup.exists() and backup.name.startswith("old.db.legacy-")
    con = sqlite3.connect(backup)
    assert list(con.iterdump()) == original
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()
    assert versions(path) == [HEAD]


def test_status_and_sql_of_a_legacy_database_change_nothing(tmp_path):
    path = tmp_path / "l2.db"
    build(path, "L2")
    fill(path, "L2")
    digest = file_digest(path)
    result = cli("db", "status", "-d", path, "--exit-code")
    assert result.returncode == 3 and f"matching revision {L2}" in result.stdout
    result = cli("db", "migrate", "-d", path, "--sql")
    assert result.returncode == 0 and f"match revision {L2}" in result.stdout
    assert "ALTER TABLE experiment_result_l3 RENAME TO experiment_result" in result.stdout
    assert file_digest(path) == digest and sidecars(path) == []


def test_concurrent_upgrade_of_a_legacy_database(tmp_path):
    from test_migrations import run_together

    path = tmp_path / "l2.db"
    build(path, "L2")
    inserted = fill(path, "L2")
    outs = run_together(path, n=6)
    assert sum(int(o[0]) for o in outs) == 3
    assert_healthy(path)
    assert_every_value_kept(path, "L2", inserted)


def test_extra_tables_of_the_user_are_kept(tmp_path):
    path = tmp_path / "l2.db"
    build(path, "L2")
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE my_notes (id INTEGER PRIMARY KEY, note TEXT)")
    con.execute("INSERT INTO my_notes (note) VALUES ('keep me')")
    con.commit()
    con.close()
    upgrade(path)
    assert versions(path) == [HEAD]
    assert query(path, "SELECT note FROM my_notes") == [("keep me",)]
    drift = status(path).drift
    assert [d.detail for d in drift] == ["schema: table my_notes is not made by the migrations"]


# --- layouts that are not PromptLab's --------------------------------------------------------


@pytest.mark.parametrize("schema, expected", [
    ("CREATE TABLE assets (asset_name TEXT, asset_version INTEGER, future_column TEXT);"
     "INSERT INTO assets VALUES ('a', 1, 'x');",
     ["assets", "future_column", "lacks column asset_type", "no table experiments"]),
    ((LEGACY / "L2-0.0.3-0.1.3.sql").read_text() +
     "ALTER TABLE experiments ADD COLUMN owner TEXT;",
     [L2, "experiments has an unexpected column owner"]),
    ((LEGACY / "L3-0.1.4-0.1.11.sql").read_text().replace(
        "PRIMARY KEY (asset_name, asset_version)", "PRIMARY KEY (asset_name)"),
     ["primary key (asset_name) instead of (asset_name, asset_version)"]),
    ((LEGACY / "L3-0.1.4-0.1.11.sql").read_text().replace(
        "CREATE TABLE users", "CREATE TABLE people"),
     ["no table users"]),
])
def test_unrecognised_layout_is_refused_untouched(tmp_path, schema, expected):
    path = tmp_path / "odd.db"
    con = sqlite3.connect(path)
    con.executescript(schema)
    con.close()
    digest = file_digest(path)
    with pytest.raises(MigrationError) as info:
        db_manager.initialize_database(path)
    message = str(info.value)
    assert str(path) in message and "left unchanged" in message
    for text in expected:
        assert text in message
    assert file_digest(path) == digest and sidecars(path) == []
    for args in (["migrate"], ["migrate", "--backup"], ["status"], ["downgrade", "-r", "base"]):
        result = cli("db", *args, "-d", path)
        assert result.returncode == 1 and "match no layout" in result.stderr, args
    assert file_digest(path) == digest and sidecars(path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.db"]


def test_duplicate_versions_in_l1_stop_with_a_clear_error(tmp_path):
    """L1 had no primary key: duplicate (name, version) rows cannot become L2. The
    upgrade stops at the failing statement and the database stays unmarked L1."""
    path = tmp_path / "dup.db"
    build(path, "L1")
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO assets (asset_id, asset_name, asset_version) VALUES (?, ?, ?)",
                    [("1", "same", 0), ("2", "same", 0)])
    con.commit()
    con.close()
    with pytest.raises(MigrationError) as info:
        db_manager.initialize_database(path)
    assert L2 in str(info.value) and "UNIQUE" in str(info.value)
    assert versions(path) == [] and "promptlab_migrations" not in tables(path)
    assert query(path, "SELECT asset_id FROM assets ORDER BY asset_id") == [("1",), ("2",)]


@pytest.mark.parametrize("layout", ["L1", "L3"])
def test_sql_script_of_a_legacy_database_does_what_migrate_does(tmp_path, layout):
    import shutil

    from promptlab.sqlite.migrations import sql

    by_script, by_migrate = tmp_path / "script.db", tmp_path / "migrate.db"
    build(by_script, layout)
    inserted = fill(by_script, layout)
    shutil.copy(by_script, by_migrate)
    script = sql(by_script)
    con = sqlite3.connect(by_script)
    con.executescript(script)
    con.close()
    upgrade(by_migrate)
    assert status(by_script).drift == [] and status(by_script).up_to_date
    assert_every_value_kept(by_script, layout, inserted)
    users = "SELECT id, username, password_hash, role, status FROM users ORDER BY id"
    assert query(by_script, users) == query(by_migrate, users)
    for table in ("assets", "experiments", "experiment_result", "legacy_asset_ids"):
        assert query(by_script, f"SELECT * FROM {table} ORDER BY rowid") == \
            query(by_migrate, f"SELECT * FROM {table} ORDER BY rowid"), table


def test_current_layout_without_its_version_table_is_marked_at_head(tmp_path):
    """Exact matches win: a head database that lost its bookkeeping is marked at head,
    not at L3 (whose tables have the same column names), so 0004 does not run again."""
    path = tmp_path / "lost.db"
    upgrade(path)
    con = sqlite3.connect(path)
    con.execute("INSERT INTO assets (asset_name, asset_version, user_id) VALUES ('a', 1, NULL)")
    con.executescript("DROP TABLE alembic_version; DROP TABLE promptlab_migrations;")
    con.close()
    assert status(path).detected == HEAD
    run = upgrade(path)
    assert (run.detected, run.count, run.current) == (HEAD, 0, HEAD)
    assert_healthy(path)
    # 0004 would have attached the row to admin; it was not run again.
    assert query(path, "SELECT user_id FROM assets") == [(None,)]
