"""A database file may come from anyone. PromptLab's connections run with
trusted_schema off and in defensive mode, refuse to run triggers and views that
PromptLab did not create (it creates none), refuse to initialize or migrate such a
file, and stop any statement that runs past its time limit (issue 12, item 2)."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import run_python
from factories import make_config, make_dataset, make_summary
from migtools import cli
from promptlab import _core
from promptlab.sqlite import (
    ForeignSchemaError,
    InvalidDatabaseError,
    StatementTimeoutError,
    get_session,
)
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.models import User
from promptlab.sqlite.session import reset_initialization
from promptlab.tracer.local_tracer import LocalTracer

# What the red team planted: each runs inside one of PromptLab's own writes.
TRIGGERS = {
    "promote": "CREATE TRIGGER promote AFTER INSERT ON users BEGIN "
               "UPDATE users SET role = 'admin' WHERE id = NEW.id; END",
    "steal_admin": "CREATE TRIGGER steal_admin AFTER INSERT ON experiments BEGIN "
                   "UPDATE users SET password_hash = 'x' WHERE username = 'admin'; END",
    "copy_out": "CREATE TRIGGER copy_out AFTER INSERT ON experiment_result BEGIN "
                "INSERT INTO loot VALUES (NEW.completion); END",
    "forever": "CREATE TRIGGER forever AFTER INSERT ON assets BEGIN "
               "INSERT INTO assets (asset_name, asset_version, asset_type) "
               "VALUES (NEW.asset_name, NEW.asset_version + 1, NEW.asset_type); END",
}


def plant(path, *sql):
    con = sqlite3.connect(path)
    con.execute("PRAGMA recursive_triggers = ON")
    con.execute("CREATE TABLE IF NOT EXISTS loot (completion TEXT)")
    for statement in sql:
        con.execute(statement)
    con.commit()
    con.close()


def rows(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def fresh(path) -> LocalTracer:
    tracer = LocalTracer({"type": "local", "db_file": str(path)})
    tracer.create_dataset(make_dataset())
    return tracer


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_a_planted_trigger_never_runs_inside_a_write(db_path, name):
    """The trigger is planted while a tracer has the file open: PromptLab's writes go
    on, and the trigger does nothing (its connections run no trigger at all)."""
    tracer = fresh(db_path)
    admin_before = rows(db_path, "SELECT password_hash FROM users WHERE username='admin'")
    plant(db_path, TRIGGERS[name])
    tracer.create_user(User(username="eve", password_hash="h", role="engineer"))
    tracer.trace_experiment(make_config(), make_summary("e1"))
    tracer.create_dataset(make_dataset(name="other"))  # "forever" would recurse here
    assert rows(db_path, "SELECT role FROM users WHERE username = 'eve'") == [("engineer",)]
    assert rows(db_path, "SELECT password_hash FROM users WHERE username='admin'"
                ) == admin_before
    assert rows(db_path, "SELECT count(*) FROM loot") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM experiment_result") == [(3,)]
    assert rows(db_path, "SELECT asset_version FROM assets WHERE asset_name = 'other'"
                ) == [(0,)]
    # Another process that opens the file now is refused before it writes anything.
    reset_initialization()
    with pytest.raises(ForeignSchemaError, match=f'trigger "{name}"'):
        LocalTracer({"type": "local", "db_file": str(db_path)})


def test_views_are_not_read_through(db_path):
    db_manager.initialize_database(db_path)
    plant(db_path, "CREATE VIEW peek AS SELECT * FROM users")
    with get_session() as s:
        with pytest.raises(_core.DatabaseError, match="peek"):
            s.execute("SELECT * FROM peek")


def test_initialization_refuses_a_file_with_foreign_code(db_path):
    db_manager.initialize_database(db_path)
    plant(db_path, TRIGGERS["promote"], "CREATE VIEW peek AS SELECT * FROM users")
    reset_initialization()
    with pytest.raises(ForeignSchemaError) as info:
        db_manager.initialize_database(db_path)
    message = str(info.value)
    assert 'trigger "promote"' in message and 'view "peek"' in message
    assert "nothing was written" in message and f"sqlite3 {db_path}" in message
    assert isinstance(info.value, InvalidDatabaseError)


def test_migrate_refuses_a_file_with_foreign_code(db_path):
    assert cli("db", "init", "-d", db_path).returncode == 0
    plant(db_path, TRIGGERS["steal_admin"])
    result = cli("db", "migrate", "-d", db_path)
    assert result.returncode == 1
    assert 'trigger "steal_admin"' in result.stderr and "Traceback" not in result.stderr
    # status still works: it is how the user looks at the file
    status = cli("db", "status", "-d", db_path)
    assert status.returncode == 0, status.stderr


def test_connections_are_defensive_and_do_not_trust_the_schema(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        assert s.execute("PRAGMA trusted_schema").scalar() == 0
        s.execute("PRAGMA writable_schema = ON")  # ignored in defensive mode
        with pytest.raises(_core.DatabaseError):
            s.execute("UPDATE sqlite_schema SET sql = 'x' WHERE name = 'users'")


def test_a_statement_past_its_time_limit_is_stopped(db_path):
    db_manager.initialize_database(db_path)
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT count(*) FROM n")
    with get_session() as s:
        assert s.statement_timeout is None
        s.statement_timeout = 0.2
        assert s.statement_timeout == pytest.approx(0.2)
        with pytest.raises(StatementTimeoutError) as info:
            s.execute(endless)  # runs forever unless stopped
        assert "time limit" in str(info.value)
        assert s.execute("SELECT count(*) FROM users").scalar() == 1  # still usable
        for bad in (0, -1, 4000, "x"):
            with pytest.raises((ValueError, TypeError)):
                s.statement_timeout = bad
        s.statement_timeout = None
        assert s.statement_timeout is None


def test_the_time_limit_from_the_environment(tmp_path):
    path = tmp_path / "lab.db"
    code = (
        "from promptlab.sqlite import StatementTimeoutError, get_session\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"db_manager.initialize_database({str(path)!r})\n"
        "s = get_session()\n"
        "print(s.statement_timeout)\n"
        "try:\n"
        "    s.execute('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM n')\n"
        "except StatementTimeoutError as exc:\n"
        "    print('stopped')\n"
    )
    result = run_python(code, env={"PROMPTLAB_STATEMENT_TIMEOUT_MS": "300"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.3", "stopped"]


def test_a_time_limit_rolls_back_the_batch(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.statement_timeout = 0.05
        big = [("n%d" % i, 0, "dataset") for i in range(300000)]
        with pytest.raises(StatementTimeoutError):
            s.begin()
            s.executemany("INSERT INTO assets (asset_name, asset_version, asset_type) "
                          "SELECT ?, ?, ? FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                          "SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n) LIMIT 1", big)
        s.rollback()
    assert rows(db_path, "SELECT count(*) FROM assets") == [(0,)]
