"""Migrations on PostgreSQL (issue 15 item 3): `promptlab db init|migrate|downgrade -d
postgresql://...` run the migration files' PostgreSQL sections in one transaction under
an advisory lock, so concurrent processes apply each migration exactly once and a
failed or interrupted upgrade leaves the revision the database had. Against a
throwaway server (tests/pgserver.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import HEAD
from helpers import cli, python_code_process, start_together, wait_for
from migtools import ENV, copy_chain, migration_text
from pgserver import PASSWORD
from promptlab import _core
from promptlab.sqlite import ForeignSchemaError, MigrationError, UnknownRevisionError
from promptlab.sqlite.migrations import downgrade, migrations, upgrade

BEFORE_HEAD = "28f160511eaa"


def _query(server, url: str, sql: str) -> list:
    done = server.psql(sql, database=url.rsplit("/", 1)[1])
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines()]


def _revision(server, url: str) -> list:
    return _query(server, url, "SELECT version_num FROM alembic_version")


def _tables(server, url: str) -> set:
    return {r[0] for r in _query(server, url, "SELECT tablename FROM pg_tables "
                                             "WHERE schemaname = 'public'")}


def test_init_migrate_and_downgrade_from_the_command_line(postgres_server, postgres_url):
    done = cli("db", "init", "-d", postgres_url)
    assert done.returncode == 0, done.stderr
    shown = postgres_url.replace(f":{PASSWORD}@", "@")
    assert f"Initialized {shown} at revision {HEAD}." in done.stdout
    assert "shown only this once" in done.stdout and PASSWORD not in done.stdout
    password = done.stdout.split("password: ")[1].split()[0]
    [[stored]] = _query(postgres_server, postgres_url,
                        "SELECT password_hash FROM users WHERE username = 'admin'")
    assert _core.verify_password(password, stored)
    again = cli("db", "init", "-d", postgres_url)  # the password is made once
    assert again.returncode == 0 and "password" not in again.stdout
    history = _query(postgres_server, postgres_url,
                     "SELECT revision, checksum FROM promptlab_migrations ORDER BY revision")
    assert sorted(history) == sorted([m.revision, m.checksum_postgresql]
                                     for m in migrations())
    down = cli("db", "downgrade", "-d", postgres_url, "-r", "-1")
    assert down.returncode == 0 and f"now at revision {BEFORE_HEAD}" in down.stdout
    assert "experiment_summary" not in _tables(postgres_server, postgres_url)
    up = cli("db", "migrate", "-d", postgres_url)
    assert up.returncode == 0 and f"Applied 1 migration(s) on {shown}" in up.stdout


def test_the_admin_password_from_the_environment(postgres_server, postgres_url):
    done = cli("db", "init", "-d", postgres_url,
               env={"PROMPTLAB_ADMIN_PASSWORD": "from-the-env-42"})
    assert done.returncode == 0, done.stderr
    assert "shown only this once" not in done.stdout
    [[stored]] = _query(postgres_server, postgres_url,
                        "SELECT password_hash FROM users WHERE username = 'admin'")
    assert _core.verify_password("from-the-env-42", stored)


CONCURRENT_UPGRADE = """
import json, sys
from promptlab.sqlite.migrations import upgrade
run = upgrade(sys.argv[1])
print(json.dumps([run.count, run.current]))
"""


@pytest.mark.parametrize("processes", [8])
def test_concurrent_upgrades_apply_each_migration_once(postgres_server, postgres_url,
                                                       processes):
    import json

    results = start_together(CONCURRENT_UPGRADE, lambda i: [postgres_url], processes)
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    runs = [json.loads(out.splitlines()[-1]) for _, out, _ in results]
    assert all(current == HEAD for _, current in runs)
    assert sorted(count for count, _ in runs) == [0] * (processes - 1) + [len(migrations())]
    assert _revision(postgres_server, postgres_url) == [[HEAD]]
    assert len(_query(postgres_server, postgres_url,
                      "SELECT revision FROM promptlab_migrations")) == len(migrations())
    assert _query(postgres_server, postgres_url, "SELECT count(*) FROM users") == [["1"]]


@pytest.fixture
def extra_dir(tmp_path, monkeypatch):
    """A copy of the shipped chain that this process and its children use."""
    folder = copy_chain(tmp_path / "versions")
    monkeypatch.setenv(ENV, str(folder))
    return folder


def _with_extra(folder, up_postgresql: str) -> None:
    text = migration_text("e6e6e6e6e6e6", HEAD, "SELECT 1;", "SELECT 1;")
    text += (f"-- migrate:up:postgresql\n{up_postgresql}\n"
             "-- migrate:down:postgresql\nSELECT 1;\n")
    (folder / "0006_extra.sql").write_text(text)


def test_a_failing_migration_leaves_the_revision_it_found(postgres_server, postgres_url,
                                                          extra_dir):
    _with_extra(extra_dir, "CREATE TABLE t6 (x integer);\nSELECT no_such_function();")
    with pytest.raises(MigrationError) as info:
        upgrade(postgres_url)  # from an empty database: the whole chain is one transaction
    assert "0006_extra.sql" in str(info.value) and "no_such_function" in str(info.value)
    assert "stays at revision base" in str(info.value) and PASSWORD not in str(info.value)
    assert _tables(postgres_server, postgres_url) == set()
    upgrade(postgres_url, HEAD)
    with pytest.raises(MigrationError, match=f"stays at revision {HEAD}"):
        upgrade(postgres_url)
    assert _revision(postgres_server, postgres_url) == [[HEAD]]
    assert "t6" not in _tables(postgres_server, postgres_url)


SLOW_UPGRADE = """
import sys
from promptlab.sqlite.migrations import upgrade
upgrade(sys.argv[1])
"""


def test_a_client_killed_mid_migration_leaves_the_revision(postgres_server, postgres_url,
                                                           extra_dir):
    upgrade(postgres_url, HEAD)
    _with_extra(extra_dir, "CREATE TABLE t6 (x integer);\nSELECT pg_sleep(60);")
    child = python_code_process(SLOW_UPGRADE, postgres_url,
                                env={**os.environ, ENV: str(extra_dir)})
    sleeping = ("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                "AND pid <> pg_backend_pid()")
    wait_for(lambda: _query(postgres_server, postgres_url, sleeping) == [["1"]],
             what="the migration to reach pg_sleep")
    child.send_signal(signal.SIGKILL)
    child.wait()
    # The server checks every second that its client is there, and rolls back.
    wait_for(lambda: _query(postgres_server, postgres_url, sleeping) == [["0"]],
             timeout=30, what="the killed client's transaction to end")
    assert _revision(postgres_server, postgres_url) == [[HEAD]]
    assert "t6" not in _tables(postgres_server, postgres_url)


def test_what_is_not_ours_or_too_new_is_refused_untouched(postgres_server):
    url = postgres_server.create_database(f"foreign_{int(time.time() * 1000)}")
    _query(postgres_server, url, "CREATE TABLE their_table (x integer)")
    with pytest.raises(ForeignSchemaError, match="did not make"):
        upgrade(url)
    assert _tables(postgres_server, url) == {"their_table"}
    newer = postgres_server.create_database(f"newer_{int(time.time() * 1000)}")
    upgrade(newer)
    _query(postgres_server, newer, "UPDATE alembic_version SET version_num = 'ffff0000ffff'")
    with pytest.raises(UnknownRevisionError, match="ffff0000ffff"):
        upgrade(newer)
    with pytest.raises(UnknownRevisionError):
        downgrade(newer, "base")


def test_a_downgrade_that_cannot_be_done_changes_nothing(postgres_server, postgres_url):
    upgrade(postgres_url)
    with pytest.raises(MigrationError, match="cannot be undone on PostgreSQL"):
        downgrade(postgres_url, "base")
    assert _revision(postgres_server, postgres_url) == [[HEAD]]
    assert "experiment_summary" in _tables(postgres_server, postgres_url)


def test_status_reads_the_revision_pending_and_history(postgres_server, postgres_url,
                                                       extra_dir):
    import json

    fresh = cli("db", "status", "-d", postgres_url, "--json", "--exit-code")
    assert fresh.returncode == 3, fresh.stderr  # pending
    data = json.loads(fresh.stdout)
    assert data["current"] is None and data["pending"] == [m.revision for m in migrations()]
    assert data["schema_compared"] is False and PASSWORD not in fresh.stdout
    upgrade(postgres_url)
    done = cli("db", "status", "-d", postgres_url, "--exit-code")
    assert done.returncode == 0, done.stderr
    assert f"Current:   {HEAD}" in done.stdout and "Pending:   none" in done.stdout
    assert "not compared on PostgreSQL" in done.stdout
    # An applied file's PostgreSQL section edited afterwards is drift here.
    head = [f for f in extra_dir.glob("*.sql") if HEAD in f.read_text()][0]
    head.write_text(head.read_text() + "-- an edit of what PostgreSQL ran\n")
    drifted = cli("db", "status", "-d", postgres_url, "--exit-code",
                  env={ENV: str(extra_dir)})
    assert drifted.returncode == 4 and "changed after it was applied" in drifted.stdout
