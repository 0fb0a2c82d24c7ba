"""Migration files, the chain, and upgrading: validation, --to, --sql, --backup, failures,
a process killed mid-migration, and concurrent upgrades."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HEAD, NEUTRAL_CWD, assert_healthy, file_digest
from helpers import start_together, write_newer_database
from migtools import (
    CHAIN,
    ENV,
    L2,
    L3,
    chain_dir,  # noqa: F401  (fixture)
    cli,
    copy_chain,
    integrity,
    migration_text,
    query,
    shipped_dir,
    sidecars,
    tables,
    versions,
)
from promptlab import _core
from promptlab.sqlite import MigrationError, UnknownRevisionError
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.migrations import head_revision, migrations, sql, status, upgrade

# --- files and the chain ----------------------------------------------------------------


def test_shipped_chain_is_linear_and_reversible():
    chain = migrations(shipped_dir())
    assert [m.revision for m in chain] == CHAIN
    assert [m.parent for m in chain] == [None] + CHAIN[:-1]
    assert all(m.reversible and m.message and m.created for m in chain)
    assert [m.filename for m in chain] == sorted(p.name for p in shipped_dir().glob("*.sql"))
    assert len({m.checksum for m in chain}) == 5


def _write(folder: Path, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("files, expected", [
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;"),
      "b.sql": migration_text("aaaa", None, "SELECT 2;")},
     ["a.sql", "b.sql", "both declare revision aaaa"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;"),
      "b.sql": migration_text("bbbb", "zzzz", "SELECT 2;")},
     ["b.sql", "zzzz"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;"),
      "b.sql": migration_text("bbbb", "aaaa", "SELECT 2;"),
      "c.sql": migration_text("cccc", "aaaa", "SELECT 3;")},
     ["b.sql", "c.sql", "two heads"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;"),
      "b.sql": migration_text("bbbb", None, "SELECT 2;")},
     ["a.sql", "b.sql", "base"]),
    ({"a.sql": migration_text("aaaa", "bbbb", "SELECT 1;"),
      "b.sql": migration_text("bbbb", "aaaa", "SELECT 2;")},
     ["cycle", "a.sql"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;"),
      "b.sql": migration_text("bbbb", "cccc", "SELECT 2;"),
      "c.sql": migration_text("cccc", "bbbb", "SELECT 3;")},
     ["cycle", "b.sql"]),
    ({"a.sql": "-- revision: aaaa\n-- migrate:up\nSELECT 1;\n-- migrate:down\n"},
     ["a.sql", "parent"]),
    ({"a.sql": "-- parent: base\n-- migrate:up\nSELECT 1;\n-- migrate:down\n"},
     ["a.sql", "revision"]),
    ({"a.sql": "-- revision: aaaa\n-- parent: base\n-- migrate:up\nSELECT 1;\n"},
     ["a.sql", "migrate:down"]),
    ({"a.sql": "-- revision: aaaa\n-- parent: base\n-- migrate:down\n-- migrate:up\n"},
     ["a.sql", "line 3", "before"]),
    ({"a.sql": "-- revision: not-valid!\n-- parent: base\n-- migrate:up\n-- migrate:down\n"},
     ["a.sql", "line 1", "invalid revision id"]),
    ({"a.sql": "-- revision: aaaa\n-- parent: aaaa\n-- migrate:up\n-- migrate:down\n"},
     ["a.sql", "its parent"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;\n-- migrate:up\nSELECT 2;")},
     ["a.sql", "second"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;").replace("SELECT", "SEL\x00ECT")},
     ["a.sql", "NUL"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;") + "-- migrate:up:postgresql\n"},
     ["a.sql", "migrate:down:postgresql"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;") + "-- migrate:down:postgresql\n"},
     ["a.sql", "'-- migrate:down:postgresql' comes before '-- migrate:up:postgresql'"]),
    ({"a.sql": "-- revision: aaaa\n-- parent: base\n-- migrate:up\n-- migrate:up:postgresql\n"
               "-- migrate:down\n-- migrate:down:postgresql\n"},
     ["a.sql", "line 4", "comes before '-- migrate:down'"]),
    ({"a.sql": migration_text("aaaa", None, "SELECT 1;") + "-- migrate:up:postgresql\n"
               "-- migrate:down:postgresql\n-- migrate:up:postgresql\n"},
     ["a.sql", "second '-- migrate:up:postgresql'"]),
])
def test_invalid_chains_are_errors_naming_the_files(tmp_path, files, expected):
    folder = _write(tmp_path / "bad", files)
    with pytest.raises(MigrationError) as info:
        migrations(folder)
    for text in expected:
        assert text in str(info.value)


def test_invalid_chain_stops_initialization_and_names_the_file(tmp_path, monkeypatch):
    folder = copy_chain(tmp_path / "versions", {
        "0005_broken.sql": migration_text("broken05", "nonexistent1", "SELECT 1;")})
    monkeypatch.setenv(ENV, str(folder))
    db = tmp_path / "lab.db"
    with pytest.raises(MigrationError, match="0005_broken.sql.*nonexistent1"):
        db_manager.initialize_database(db)
    result = cli("db", "migrate", "-d", db, env={ENV: str(folder)})
    assert result.returncode == 1 and "0005_broken.sql" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_empty_down_section_means_irreversible(tmp_path):
    folder = copy_chain(tmp_path / "v", {
        "0005_x.sql": migration_text("xxxx0005", HEAD, "CREATE TABLE x (a);", "  -- nothing\n;\n")})
    assert [m.reversible for m in migrations(folder)] == [True] * 5 + [False]


def test_migrations_dir_variable_is_honoured(chain_dir):
    (chain_dir / "0005_more.sql").write_text(
        migration_text("more0005", HEAD, "CREATE TABLE more (a);", "DROP TABLE more;"))
    assert _core.migrations_dir() == str(chain_dir)
    assert head_revision() == "more0005"


# --- upgrading ------------------------------------------------------------------------------


def test_new_database_upgrades_to_head_with_history(db_path):
    run = upgrade(db_path)
    assert (run.before, run.current, run.count, run.detected, run.backup) == \
        (None, HEAD, 5, None, None)
    assert_healthy(db_path)
    rows = query(db_path, "SELECT revision, checksum, message, applied_at, duration_ms "
                          "FROM promptlab_migrations ORDER BY applied_at, rowid")
    chain = migrations()
    assert [r[0] for r in rows] == CHAIN
    assert [r[1] for r in rows] == [m.checksum for m in chain]
    assert [r[2] for r in rows] == [m.message for m in chain]
    assert all(r[3].startswith("20") and r[4] >= 0 for r in rows)
    again = upgrade(db_path)
    assert again.count == 0 and again.before == HEAD


def test_migrate_to_a_revision_then_onwards(db_path):
    result = cli("db", "migrate", "-d", db_path, "--to", L2[:6])
    assert result.returncode == 0, result.stderr
    assert versions(db_path) == [L2]
    assert "users" not in tables(db_path)
    assert status(db_path).pending[0].revision == L3
    result = cli("db", "migrate", "-d", db_path, "--to", "+1")
    assert result.returncode == 0 and versions(db_path) == [L3]
    result = cli("db", "migrate", "-d", db_path)
    assert result.returncode == 0 and "Applied 2 migration(s)" in result.stdout
    assert_healthy(db_path)


def test_migrate_to_an_older_or_unknown_revision_is_refused(db_path):
    upgrade(db_path)
    digest = file_digest(db_path)
    result = cli("db", "migrate", "-d", db_path, "--to", L2)
    assert result.returncode == 1 and "downgrade" in result.stderr
    result = cli("db", "migrate", "-d", db_path, "--to", "deadbeef")
    assert result.returncode == 1 and "deadbeef" in result.stderr
    assert file_digest(db_path) == digest


def test_sql_prints_the_plan_and_runs_nothing(tmp_path):
    db = tmp_path / "plan.db"
    result = cli("db", "migrate", "-d", db, "--sql")
    assert result.returncode == 0, result.stderr
    assert not db.exists()
    script = result.stdout
    for m in migrations():
        assert m.up.strip()[:60] in script
    assert script.count("BEGIN IMMEDIATE;") == 5 and script.count("COMMIT;") == 5
    # The script is what migrate runs: executing it gives the same database.
    con = sqlite3.connect(db)
    con.executescript(script)
    con.close()
    state = status(db)
    assert state.current == HEAD and not state.pending and state.drift == []


def test_sql_on_an_existing_database_leaves_it_alone(db_path):
    cli("db", "migrate", "-d", db_path, "--to", L2)
    digest = file_digest(db_path)
    result = cli("db", "migrate", "-d", db_path, "--sql")
    assert result.returncode == 0
    assert f"from {L2} to {HEAD}" in result.stdout and "CREATE TABLE users" in result.stdout
    assert file_digest(db_path) == digest and versions(db_path) == [L2]


def _fill_some(path):
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO assets (asset_name, asset_version, asset_type) VALUES (?, ?, ?)",
                    [(f"prompt-{i}", i, "prompt_template") for i in range(20)])
    con.commit()
    con.close()


def test_backup_before_upgrading_a_database_with_data(db_path):
    cli("db", "migrate", "-d", db_path, "--to", L2)
    _fill_some(db_path)
    before = query(db_path, "SELECT * FROM assets ORDER BY asset_version")
    result = cli("db", "migrate", "-d", db_path, "--backup")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("Backed up"))
    backup = Path(line.split(" to ")[1].split(" before")[0])
    assert backup.parent == db_path.parent and backup.name.startswith(f"{db_path.name}.{L2}-")
    assert versions(backup) == [L2] and integrity(backup) == "ok"
    assert query(backup, "SELECT * FROM assets ORDER BY asset_version") == before
    assert "users" not in tables(backup)
    assert_healthy(db_path)
    # Nothing to upgrade, nothing backed up.
    result = cli("db", "migrate", "-d", db_path, "--backup")
    assert result.returncode == 0 and "Backed up" not in result.stdout


def test_no_backup_for_a_new_database(db_path):
    run = upgrade(db_path, backup=True)
    assert run.backup is None and sorted(p.name for p in db_path.parent.iterdir()
                                         if p.suffix == ".bak") == []


def test_failing_migration_names_revision_and_statement_and_rolls_back(chain_dir, db_path):
    upgrade(db_path)
    (chain_dir / "0005_bad.sql").write_text(migration_text(
        "bad00005", HEAD,
        "CREATE TABLE half_done (a);\nINSERT INTO half_done VALUES (1);\n"
        "INSERT INTO no_such_table VALUES (1);\nCREATE TABLE never (a);",
        "DROP TABLE half_done;"))
    with pytest.raises(MigrationError) as info:
        upgrade(db_path)
    message = str(info.value)
    assert "bad00005" in message and "0005_bad.sql" in message
    assert "INSERT INTO no_such_table VALUES (1)" in message and str(db_path) in message
    assert versions(db_path) == [HEAD]
    assert "half_done" not in tables(db_path) and integrity(db_path) == "ok"
    assert query(db_path, "SELECT count(*) FROM promptlab_migrations")[0][0] == 5


def test_migration_that_breaks_a_foreign_key_is_rolled_back(chain_dir, db_path):
    upgrade(db_path)
    (chain_dir / "0005_orphan.sql").write_text(migration_text(
        "orphan05", HEAD,
        "INSERT INTO experiment_result (experiment_id, completion) VALUES ('nope', 'x');",
        "DELETE FROM experiment_result WHERE experiment_id = 'nope';"))
    with pytest.raises(MigrationError, match="orphan05.*foreign key"):
        upgrade(db_path)
    assert versions(db_path) == [HEAD]
    assert query(db_path, "SELECT count(*) FROM experiment_result")[0][0] == 0


# --- databases that are not ours, or from the future -------------------------------------


@pytest.mark.parametrize("command", [
    ["migrate"], ["migrate", "--backup"], ["migrate", "--sql"], ["migrate", "--to", HEAD],
    ["downgrade", "-r", "-1"], ["downgrade", "-r", "base", "--backup"], ["status"],
])
def test_newer_database_is_refused_untouched_by_every_command(tmp_path, command):
    path = tmp_path / "newer.db"
    write_newer_database(path)
    digest, names = file_digest(path), sorted(p.name for p in tmp_path.iterdir())
    result = cli("db", command[0], "-d", path, *command[1:])
    assert result.returncode == 1, result.stdout
    assert "ffffffffffff" in result.stderr and "newer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert file_digest(path) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_newer_database_is_refused_by_the_library(tmp_path):
    path = tmp_path / "newer.db"
    write_newer_database(path)
    digest = file_digest(path)
    for call in (lambda: upgrade(path), lambda: sql(path), lambda: status(path)):
        with pytest.raises(UnknownRevisionError):
            call()
    assert file_digest(path) == digest


def test_not_a_database_is_refused_by_migrate_and_downgrade(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 50)
    digest = file_digest(path)
    for args in (["migrate"], ["migrate", "--sql"], ["downgrade", "-r", "base"]):
        result = cli("db", *args, "-d", path)
        assert result.returncode == 1 and "not a SQLite database" in result.stderr
    assert file_digest(path) == digest and sidecars(path) == []


# --- a process killed mid-migration -------------------------------------------------------

SLOW_ROWS = 300_000
SLOW = migration_text(
    "slow00005", HEAD,
    "CREATE TABLE bulk (id INTEGER PRIMARY KEY, payload TEXT);\n"
    f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SLOW_ROWS})\n"
    "INSERT INTO bulk (id, payload) SELECT i, hex(randomblob(40)) FROM n;\n"
    "CREATE INDEX ix_bulk_payload ON bulk (payload);",
    "DROP TABLE bulk;", message="a long migration for crash tests")
QUICK = migration_text("quick0006", "slow00005", "CREATE TABLE after_slow (x INTEGER);",
                       "DROP TABLE after_slow;")


def _state_is_a_completed_revision(path, seeded: bool):
    """The database is at a revision that completed, with everything that implies."""
    if not Path(path).exists():
        return None  # killed before it created the file
    assert integrity(path) == "ok"
    vs = versions(path)
    names = tables(path)
    applied = query(path, "SELECT revision FROM promptlab_migrations") if \
        "promptlab_migrations" in names else []
    if not vs:
        assert [n for n in names if n not in ("alembic_version", "promptlab_migrations")] == []
        return None
    (rev,) = vs
    order = CHAIN + ["slow00005", "quick0006"]
    assert sorted(r[0] for r in applied) == sorted(order[:order.index(rev) + 1])
    if rev in ("slow00005", "quick0006"):
        assert query(path, "SELECT count(*), min(id), max(id) FROM bulk")[0] == \
            (SLOW_ROWS, 1, SLOW_ROWS)
    else:
        assert "bulk" not in names
    assert ("after_slow" in names) == (rev == "quick0006")
    if seeded:
        assert query(path, "SELECT count(*) FROM assets")[0][0] == 20
    return rev


def _start_migrate(path, folder):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    env[ENV] = str(folder)
    return subprocess.Popen([sys.executable, "-m", "promptlab", "db", "migrate", "-d", str(path)],
                            cwd=NEUTRAL_CWD, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _wal_size(path):
    try:
        return os.path.getsize(f"{path}-wal")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("kill_when", [  # one of each kind in the inner loop
    "wal:1", "time:0.05",
    *(pytest.param(k, marks=pytest.mark.slow)
      for k in ("wal:4", "wal:12", "time:0.3", "time:0.8", "time:1.5"))])
def test_sigkill_mid_migration_leaves_the_last_completed_revision(tmp_path, kill_when):
    folder = copy_chain(tmp_path / "versions", {"0005_slow.sql": SLOW, "0006_quick.sql": QUICK})
    path = tmp_path / "lab.db"
    seeded = kill_when.startswith("wal")
    if seeded:
        # Start from head with data, so that the kill lands inside the slow migration.
        upgrade(path, to=HEAD, directory=folder)
        _fill_some(path)
    proc = _start_migrate(path, folder)
    kind, _, amount = kill_when.partition(":")
    deadline = time.monotonic() + 60
    if kind == "wal":
        # Kill once the slow migration has written this many MB to the WAL: mid-transaction.
        while _wal_size(path) < float(amount) * 2**20 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
    else:
        time.sleep(float(amount))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    rev = _state_is_a_completed_revision(path, seeded)
    if kind == "wal":
        assert killed and rev == HEAD  # the interrupted migration left nothing behind
    # Running again finishes the job.
    result = cli("db", "migrate", "-d", path, env={ENV: str(folder)})
    assert result.returncode == 0, result.stderr
    assert _state_is_a_completed_revision(path, seeded) == "quick0006"


# --- concurrent upgrades ------------------------------------------------------------------

CONCURRENT = """
from promptlab.sqlite.migrations import upgrade
run = upgrade(sys.argv[1])
print(run.count, run.current)
"""


def run_together(path, n=8, env=None):
    """Start n processes that upgrade ``path``, released together once all are ready;
    their outputs."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    full_env.update(env or {})
    outs = []
    for code, out, err in start_together(CONCURRENT, lambda i: (str(path),), n, env=full_env):
        assert code == 0, err
        outs.append(out.split())
    return outs


@pytest.mark.parametrize("round_", [0, *(pytest.param(r, marks=pytest.mark.slow) for r in (1, 2))])
def test_concurrent_migrate_applies_each_migration_once(tmp_path, round_):
    path = tmp_path / "shared.db"
    outs = run_together(path)
    assert sum(int(o[0]) for o in outs) == 5
    assert all(o[1] == HEAD for o in outs)
    assert_healthy(path)


@pytest.mark.slow  # 5 processes on a 300,000-row migration; the test above races on the chain
def test_concurrent_migrate_of_a_slow_chain(tmp_path):
    folder = copy_chain(tmp_path / "versions", {"0005_slow.sql": SLOW, "0006_quick.sql": QUICK})
    path = tmp_path / "shared.db"
    outs = run_together(path, n=5, env={ENV: str(folder)})
    assert sum(int(o[0]) for o in outs) == 7
    assert _state_is_a_completed_revision(path, False) == "quick0006"


def test_status_json_for_a_new_and_a_migrated_database(db_path):
    result = cli("db", "status", "-d", db_path, "--json")
    data = json.loads(result.stdout)
    assert data["exists"] is False and data["pending"] == CHAIN and data["up_to_date"] is False
    upgrade(db_path)
    data = json.loads(cli("db", "status", "-d", db_path, "--json").stdout)
    assert data["current"] == HEAD and data["pending"] == [] and data["drift"] == []


def _l2_with_rows(path):
    upgrade(path, to=L2)
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO assets (asset_name, asset_version, asset_binary) "
                    "VALUES (?, ?, ?)", [(f"a{i}", i, os.urandom(3000).hex()) for i in range(200)])
    con.commit()
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


@pytest.mark.parametrize("damage", ["truncated", "scribbled"])
def test_damaged_database_is_refused_untouched_by_migrate(tmp_path, damage):
    path = tmp_path / "hurt.db"
    _l2_with_rows(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        if damage == "truncated":
            f.truncate(size // 2)
        else:
            f.seek(size // 2)
            f.write(os.urandom(8192))
    digest = file_digest(path)
    for args in (["migrate"], ["migrate", "--backup"], ["downgrade", "-r", "base"]):
        result = cli("db", *args, "-d", path)
        assert result.returncode == 1, args
        assert "truncated" in result.stderr or "damaged" in result.stderr or \
            "malformed" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert file_digest(path) == digest
    assert not any(p.suffix == ".bak" for p in tmp_path.iterdir())


def test_a_migration_that_commits_by_itself_is_refused(tmp_path):
    """A COMMIT inside a migration would end its transaction half-way."""
    import shutil

    folder = tmp_path / "versions"
    shutil.copytree(Path(__file__).resolve().parent.parent / "migrations" / "versions", folder)
    (folder / "0005_commits.sql").write_text(
        "-- revision: aaaaaaaaaaaa\n-- parent: 6d1e9a4c2b70\n-- migrate:up\n"
        "CREATE TABLE t1 (a);\nCOMMIT;\nCREATE TABLE t2 (a);\n-- migrate:down\nDROP TABLE t1;\n")
    db = tmp_path / "x.db"
    code = ("from promptlab.sqlite.database_manager import db_manager\n"
            f"db_manager.initialize_database({str(db)!r})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PROMPTLAB_MIGRATIONS_DIR=str(folder)),
                            cwd=NEUTRAL_CWD)
    assert result.returncode != 0 and "manages the transaction" in result.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("6d1e9a4c2b70",)]
    assert con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 't1'").fetchone()[0] == 0
    con.close()


# The checksums SQLite databases recorded for the shipped files (before the files had
# PostgreSQL sections): they must not change, or every existing database would report
# drift.
RECORDED_CHECKSUMS = {"402e541d4c74": "9fed5986b24d7d14", "9ab590290932": "f287526efa7fd7da",
                      "c84044d14c12": "e005f75239bdc9f4", "28f160511eaa": "fc7eeef1db3100d0",
                      "6d1e9a4c2b70": "38dd030234b2f649"}


def test_postgresql_sections_are_parsed_and_leave_the_sqlite_checksum(tmp_path):
    base = migration_text("aaaa", None, "CREATE TABLE t (x);", "DROP TABLE t;")
    with_pg = base + ("-- migrate:up:postgresql\nCREATE TABLE t (x integer);\n\n"
                      "-- migrate:down:postgresql\nDROP TABLE t;\n")
    plain = migrations(_write(tmp_path / "plain", {"a.sql": base}))[0]
    both = migrations(_write(tmp_path / "both", {"a.sql": with_pg}))[0]
    assert plain.up_postgresql is None and plain.down_postgresql is None
    assert both.up.strip() == "CREATE TABLE t (x);" and both.down.strip() == "DROP TABLE t;"
    assert both.up_postgresql.strip() == "CREATE TABLE t (x integer);"
    assert both.down_postgresql.strip() == "DROP TABLE t;"
    assert both.checksum == plain.checksum == plain.checksum_postgresql
    assert both.checksum_postgresql != both.checksum


def test_the_shipped_files_keep_the_checksums_databases_recorded():
    assert {m.revision: m.checksum for m in migrations()} == RECORDED_CHECKSUMS
