"""Real databases written by the original PromptLab releases (0.0.3, 0.1.3, 0.1.11, and a
0.1.3 file that 0.1.11 opened once), made by tests/data/legacy/make_release_dbs.py and
committed: each upgrades to head with every row of every table, the names of its assets,
and times that keep their order (docs/migrations.md). Every test works on a copy.

The releases wrote local times; the files were made with TZ=Asia/Tokyo, so upgrades that
check values run with that TZ. Upgrades run in child processes with TZ set."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List
from zoneinfo import ZoneInfo

import pytest

from conftest import HEAD, assert_healthy, file_digest, run_python
from migtools import L1, L2, L3, LEGACY, cli, integrity, query, sidecars, versions
from promptlab.sqlite.migrations import sql, status

MADE_IN = "Asia/Tokyo"  # the TZ make_release_dbs.py ran the releases with
RELEASES = {
    # file: (revision its layout matches, what wrote it)
    "release-0.0.3.db": (L1, "0.0.3"),
    "release-0.1.3.db": (L2, "0.1.3"),
    "release-0.1.11.db": (L3, "0.1.11"),
    "release-0.1.3-opened-by-0.1.11.db": (L2, "0.1.3, then 0.1.11"),
}
TABLES = ("assets", "experiments", "experiment_result", "users")

_PYTHON_LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
                                r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{6}")


def utc_in(value, tz: str):
    """A created_at the releases wrote with Python's naive datetime.now() in zone `tz`,
    as the upgrade must store it: the same instant in UTC, 'YYYY-MM-DD HH:MM:SS' plus the
    original fraction. Other values (SQLite's CURRENT_TIMESTAMP is UTC already) stay."""
    if isinstance(value, str) and _PYTHON_LOCAL_TIME.fullmatch(value):
        local = datetime.fromisoformat(value[:19]).replace(tzinfo=ZoneInfo(tz))
        return local.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + value[19:]
    return value


def copy_of(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    shutil.copyfile(LEGACY / name, path)
    return path


def rows(path: Path) -> Dict[str, List[dict]]:
    """Every row of PromptLab's tables (and legacy_asset_ids) as dicts, in rowid order."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    out = {t: [dict(r) for r in con.execute(f"SELECT * FROM {t} ORDER BY rowid")]
           for t in TABLES + ("legacy_asset_ids",) if t in names}
    con.close()
    return out


def upgrade_in(path: Path, tz: str) -> None:
    """`promptlab db migrate` in a child process whose local time zone is `tz`."""
    result = cli("db", "migrate", "-d", path, env={"TZ": tz})
    assert result.returncode == 0, result.stderr
    assert "now at revision " + HEAD in result.stdout


def experiments_in(path: Path, tz: str, trace_new: bool = False) -> List[dict]:
    """LocalTracer(path).get_experiments() in a child process with TZ=tz, as dicts (after
    tracing one new experiment 'new-experiment' first, if asked)."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from promptlab.tracer.local_tracer import LocalTracer
        tracer = LocalTracer({{"type": "local", "db_file": {str(path)!r}}})
        if {trace_new!r}:
            from factories import make_config, make_summary
            tracer.trace_experiment(make_config(), make_summary("new-experiment", n=2))
        print(json.dumps([dict(r) for r in tracer.get_experiments()], default=str))
    """)
    result = run_python(code, env={"TZ": tz})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def renamed(model_text):
    """experiments.model after 0003: inference_model_config became completion_model_config."""
    value = json.loads(model_text)
    if "inference_model_config" in value:
        value["completion_model_config"] = value.pop("inference_model_config")
    return value


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_status_recognises_the_release(tmp_path, name):
    path = copy_of(name, tmp_path)
    digest = file_digest(path)
    state = status(path)
    assert state.current is None and state.detected == RELEASES[name][0]
    assert file_digest(path) == digest and sidecars(path) == []


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_release_upgrades_with_every_row_and_name(tmp_path, name):
    path = copy_of(name, tmp_path)
    before = rows(path)
    upgrade_in(path, MADE_IN)
    after = rows(path)

    assert integrity(path) == "ok" and versions(path) == [HEAD]
    state = status(path)
    assert state.up_to_date and state.detected is None and state.drift == []
    assert_healthy(path)
    legacy = RELEASES[name][0] in (L1, L2)

    # users: the release's own rows, ids and hashes unchanged; else the admin 0004 adds.
    admin = [u for u in after["users"] if u["username"] == "admin"]
    assert len(admin) == 1
    if "users" in before:
        assert before["users"], "the release wrote its admin"
        assert after["users"] == [dict(u, created_at=utc_in(u["created_at"], MADE_IN))
                                  for u in before["users"]]
        assert admin[0]["password_hash"].startswith("$2b$")
    else:
        assert [(u["username"], u["password_hash"]) for u in after["users"]] == [("admin", "!")]
    admin_id = admin[0]["id"]

    # assets: every row, every value; only local times became UTC (up to L2).
    want = []
    for a in before["assets"]:
        a = {k: v for k, v in a.items() if k != "asset_id"}
        a.setdefault("status", None)
        a["user_id"] = a.get("user_id") or admin_id
        if legacy:
            a["created_at"] = utc_in(a["created_at"], MADE_IN)
        want.append(a)
    assert after["assets"] == want
    if name == "release-0.0.3.db":
        assert after["legacy_asset_ids"] == [
            {k: a[k] for k in ("asset_name", "asset_version", "asset_id")}
            for a in before["assets"]]

    # experiments: every row; the model key renamed; 0.0.3's asset ids gained names.
    assert [e["experiment_id"] for e in after["experiments"]] == \
        [e["experiment_id"] for e in before["experiments"]]
    names_by_id = {a["asset_id"]: a["asset_name"] for a in before["assets"]
                   if a.get("asset_id")}
    for old, new in zip(before["experiments"], after["experiments"]):
        assert json.loads(new["model"]) == renamed(old["model"])
        if name == "release-0.0.3.db":
            asset = json.loads(old["asset"])
            asset["prompt_template_name"] = names_by_id[asset["prompt_template_id"]]
            asset["dataset_name"] = names_by_id[asset["dataset_id"]]
            assert json.loads(new["asset"]) == asset
        else:
            assert new["asset"] == old["asset"]
        assert new["created_at"] == utc_in(old["created_at"], MADE_IN)
        assert new["created_at"] != old["created_at"]  # every one was local time
        assert new["user_id"] == (old.get("user_id") or admin_id)
        assert new["status"] == old.get("status")

    # experiment_result: every row, id for id; inference became completion.
    want = []
    for r in before["experiment_result"]:
        r = dict(r)
        if "inference" in r:
            r["completion"] = r.pop("inference")
        r["created_at"] = utc_in(r["created_at"], MADE_IN)
        want.append(r)
    assert after["experiment_result"] == want and len(want) == 9

    # get_experiments(): one row per result, each with its template and dataset named.
    got = experiments_in(path, MADE_IN)
    assert len(got) == len(before["experiment_result"])
    by_id = {e["experiment_id"]: e for e in before["experiments"]}
    for row in got:
        asset = json.loads(by_id[row["experiment_id"]]["asset"])
        template = row["prompt_template_name"]
        assert template == "answerer" and row["dataset_name"] == "qa-set", row
        assert row["prompt_template_version"] == asset["prompt_template_version"]
        assert row["dataset_version"] == asset["dataset_version"]
        assert row["asset_binary"] and "<<system>>" in row["asset_binary"]
        assert row["username"] == "admin"


def test_opened_by_0_1_11_keeps_the_users_that_0_1_11_wrote(tmp_path):
    """The 0.1.3 file that 0.1.11 opened: recognised as L2 with 0.1.11's users table,
    which the upgrade to L3 adopts (before: refused with "match no layout")."""
    path = copy_of("release-0.1.3-opened-by-0.1.11.db", tmp_path)
    users = query(path, "SELECT id, username, password_hash, role, status FROM users")
    assert [u[1] for u in users] == ["admin"]
    upgrade_in(path, MADE_IN)
    assert query(path, "SELECT id, username, password_hash, role, status FROM users") == users
    assert query(path, "SELECT DISTINCT user_id FROM experiments") == [(users[0][0],)]


def test_opened_by_0_1_11_cannot_stop_at_its_own_revision(tmp_path):
    """Its users table can only be adopted by the migration to L3: stopping at L2 is
    refused, and the database keeps every row and no revision (`migrate` has switched
    the file to WAL, as it does before any step)."""
    path = copy_of("release-0.1.3-opened-by-0.1.11.db", tmp_path)
    con = sqlite3.connect(path)
    dump = list(con.iterdump())
    con.close()
    result = cli("db", "migrate", "-d", path, "--to", L2)
    assert result.returncode == 1 and f"only be upgraded to {L3} or later" in result.stderr
    result = cli("db", "migrate", "-d", path, "--to", L2, "--sql")
    assert result.returncode == 1 and f"only be upgraded to {L3} or later" in result.stderr
    con = sqlite3.connect(path)
    assert list(con.iterdump()) == dump
    con.close()
    result = cli("db", "migrate", "-d", path, "--to", L3, env={"TZ": MADE_IN})
    assert result.returncode == 0, result.stderr
    assert versions(path) == [L3] and status(path).drift == []
    assert query(path, "SELECT username FROM users") == [("admin",)]


@pytest.mark.parametrize("name", ["release-0.0.3.db", "release-0.1.3-opened-by-0.1.11.db"])
def test_sql_script_of_a_release_does_what_migrate_does(tmp_path, name):
    by_script = copy_of(name, tmp_path)
    by_migrate = tmp_path / ("migrated-" + name)
    shutil.copyfile(by_script, by_migrate)
    script = sql(by_script)
    assert "adopt" in script
    code = textwrap.dedent(f"""
        import sqlite3
        con = sqlite3.connect({str(by_script)!r})
        con.executescript({script!r})
        con.close()
    """)
    result = run_python(code, env={"TZ": MADE_IN})
    assert result.returncode == 0, result.stderr
    upgrade_in(by_migrate, MADE_IN)
    assert status(by_script).up_to_date and status(by_script).drift == []
    for table in ("assets", "experiments", "experiment_result", "legacy_asset_ids"):
        assert query(by_script, f"SELECT * FROM {table} ORDER BY rowid") == \
            query(by_migrate, f"SELECT * FROM {table} ORDER BY rowid"), table
    # created_at too where the admin came from the file (else 0004 stamps it now).
    users = "SELECT id, username, password_hash, role, status{} FROM users".format(
        ", created_at" if "opened" in name else "")
    assert query(by_script, users) == query(by_migrate, users)


# --- item 5: times keep their order across an upgrade ----------------------------------


def make_recent(path: Path, tz: str) -> Dict[str, str]:
    """Move the local times of the copy (every value of a shape Python wrote) by one
    offset, so that its newest experiment was made a minute ago in zone `tz`: as if the
    release had run on this machine just before the upgrade. Returns the moved
    experiments' created_at by id."""
    con = sqlite3.connect(path)
    newest = max(datetime.fromisoformat(v) for (v,) in
                 con.execute("SELECT created_at FROM experiments"))
    now_local = datetime.now(ZoneInfo(tz)).replace(tzinfo=None)
    shift = now_local - timedelta(minutes=1) - newest
    for table in ("assets", "experiments", "experiment_result", "users"):
        try:
            values = con.execute(f"SELECT rowid, created_at FROM {table}").fetchall()
        except sqlite3.OperationalError:
            continue  # no such table
        if table == "assets" and path.name == "release-0.1.11.db":
            continue  # 0.1.11 stamped assets in UTC: not a local time
        for rowid, value in values:
            if isinstance(value, str) and _PYTHON_LOCAL_TIME.fullmatch(value):
                moved = datetime.fromisoformat(value) + shift
                text = moved.isoformat(sep=value[10])
                if len(value) > 19 and moved.microsecond == 0:
                    text += ".000000"
                con.execute(f"UPDATE {table} SET created_at = ? WHERE rowid = ?",
                            (text, rowid))
    con.commit()
    moved = dict(con.execute("SELECT experiment_id, created_at FROM experiments"))
    con.close()
    return moved


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/New_York"])
@pytest.mark.parametrize("name", ["release-0.0.3.db", "release-0.1.3.db", "release-0.1.11.db"])
def test_new_experiments_sort_above_the_upgraded_ones(tmp_path, name, tz):
    path = copy_of(name, tmp_path)
    moved = make_recent(path, tz)
    legacy_order = sorted(moved, key=lambda e: moved[e], reverse=True)
    upgrade_in(path, tz)
    for experiment_id, created in query(path, "SELECT experiment_id, created_at "
                                              "FROM experiments"):
        assert created == utc_in(moved[experiment_id], tz)
    got = experiments_in(path, tz, trace_new=True)
    order = list(dict.fromkeys(r["experiment_id"] for r in got))
    assert order == ["new-experiment"] + legacy_order
    times = [r["created_at"] for r in got]
    assert times == sorted(times, reverse=True)
    # Results of old and new experiments are comparable in the same way.
    newest_old = max(r for (r,) in query(path, "SELECT created_at FROM experiment_result "
                                               "WHERE experiment_id != 'new-experiment'"))
    oldest_new = min(r for (r,) in query(path, "SELECT created_at FROM experiment_result "
                                               "WHERE experiment_id = 'new-experiment'"))
    assert newest_old < oldest_new
