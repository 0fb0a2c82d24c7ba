"""Point lookups without a session (issue 16 item 3): ``promptlab._core.Lookup``, behind
``get_asset``, ``get_latest_asset`` and the user lookups (promptlab/store).

A lookup checks a connection out of the pool, runs the statement that connection has
cached, copies the row and gives the connection back, then builds the record in C. These
tests hold it to what the session path it replaced did: the same records (field values,
types and order), the same errors, and the same guarantees under threads, processes,
fork, a replaced file, a re-initialized manager and a schema change under the cached
statement.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
import threading

import pytest

from conftest import assert_healthy
from factories import make_dataset, make_template
from helpers import in_fork_child, start_together
from promptlab import _core
from promptlab.sqlite import (
    DatabaseError,
    DatabasePathError,
    ProgrammingError,
    get_session,
    models,
    reset_initialization,
)
from promptlab.sqlite.database_manager import db_manager
from promptlab.store import assets, users
from promptlab.tracer.local_tracer import LocalTracer


def _tracer(path) -> LocalTracer:
    return LocalTracer({"type": "local", "db_file": str(path)})


def _from_session(path, sql, params):
    """What the store returned before: a session's first row through from_row."""
    with db_manager.get_session(path) as session:
        return session.execute(sql, params).first()


def _same_record(a, b):
    """Equal, with the same field values of the same types, set in the same order."""
    assert type(a) is type(b)
    assert a == b
    assert list(vars(a)) == list(vars(b))
    for name, value in vars(a).items():
        assert type(value) is type(vars(b)[name]), name
        if isinstance(value, (models.User,)):
            _same_record(value, vars(b)[name])


def _fill(path) -> LocalTracer:
    tracer = _tracer(path)
    for v in range(3):
        tracer.create_prompttemplate(make_template("tpl", v, description=f"v{v}"))
    tracer.create_dataset(make_dataset("qa", 0))
    with get_session(path) as s:
        s.execute("INSERT INTO users (username, password_hash, role, status) "
                  "VALUES ('bob', 'h', 'user', 0)")
        # no owner: the LEFT JOIN finds no user
        s.execute("INSERT INTO assets (asset_name, asset_version, asset_type, asset_binary, "
                  "is_deployed, deployment_time) VALUES ('orphan', 0, 'dataset', '{}', 1, "
                  "'2026-03-04 05:06:07.890')")
    return tracer


def test_records_equal_those_built_from_session_rows(db_path):
    tracer = _fill(db_path)
    for name, version in [("tpl", 0), ("tpl", 2), ("qa", 0), ("orphan", 0)]:
        row = _from_session(db_path, assets.SELECT_ASSET, (name, version))
        _same_record(tracer.get_asset(name, version), models.Asset.from_row(row))
    for name in ["tpl", "qa", "orphan"]:
        row = _from_session(db_path, assets.SELECT_LATEST_ASSET, (name,))
        _same_record(tracer.get_latest_asset(name), models.Asset.from_row(row))
    for username in ["admin", "bob"]:
        row = _from_session(db_path, users.SELECT_USER_BY_USERNAME, (username,))
        _same_record(tracer.get_user_by_username(username), models.User.from_row(row))
    asset = tracer.get_asset("tpl", 1)
    assert isinstance(asset.created_at, datetime.datetime)
    assert asset.user.username == "admin" and asset.user_id == asset.user.id
    assert asset.prompts() == ("You are <role>.", "Answer: <question>")
    orphan = tracer.get_latest_asset("orphan")
    assert orphan.user is None and orphan.is_deployed is True
    assert orphan.deployment_time == datetime.datetime(2026, 3, 4, 5, 6, 7, 890000)
    assert tracer.get_latest_asset("tpl").asset_version == 2
    assert tracer.me().username == "admin"


def test_missing_rows_as_before(db_path):
    tracer = _fill(db_path)
    assert tracer.get_latest_asset("missing") is None
    with pytest.raises(ValueError, match="Asset tpl with version 9 not found"):
        tracer.get_asset("tpl", 9)
    with pytest.raises(ValueError, match="User nobody not found"):
        tracer.get_user_by_username("nobody")
    assert users.get_user(db_path, "nobody") is None
    assert users.admin_password_hash(db_path) == _core.UNUSABLE_PASSWORD


@pytest.mark.parametrize("stored", [
    "2026-01-02 03:04:05", "2026-01-02 03:04:05.678", "2026-01-02 03:04:05.678901",
    "2026-01-02T03:04:05.678901", "2026-12-31 23:59:59.999",
    "2026-02-30 00:00:00", "2026-13-01 00:00:00.000", "0000-01-01 00:00:00",
    "2026-01-02 24:00:00", "2026-01-02", "2026-01-02 03:04", "2026-01-02 03:04:05.6",
    "2026-01-02 03:04:05+00:00", "2026-01-02 03:04:05.678Z", "2026/01/02 03:04:05",
    "2026-01-02 03:04:0x", "not a date", "", "２０２６-01-02 03:04:05", 1700000000, 12.5,
    b"2026-01-02 03:04:05", None,
])
def test_timestamps_as_parse_timestamp_reads_them(db_path, stored):
    """Timestamps in the schema's form are parsed in C; every value gives what
    models.parse_timestamp (datetime.fromisoformat) gives."""
    _tracer(db_path)
    with get_session(db_path) as s:
        s.execute("INSERT INTO assets (asset_name, asset_version, user_id, created_at, "
                  "deployment_time) VALUES ('t', 0, 1, ?, ?)", (stored, stored))
        s.execute("UPDATE users SET created_at = ? WHERE username = 'admin'", (stored,))
    asset = assets.get_asset(db_path, "t", 0)
    expected = models.parse_timestamp(stored)
    for got in (asset.created_at, asset.deployment_time, asset.user.created_at,
                users.get_user(db_path, "admin").created_at):
        assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("stored", [0, 1, 2, -1, None, 0.0, 0.5, "", "0", "no", b"", b"\0"])
def test_is_deployed_as_bool_of_the_stored_value(db_path, stored):
    _tracer(db_path)
    with get_session(db_path) as s:
        s.execute("INSERT INTO assets (asset_name, asset_version, is_deployed) "
                  "VALUES ('b', 0, ?)", (stored,))
    raw = _from_session(db_path, "SELECT is_deployed FROM assets", ())[0]  # after affinity
    assert assets.get_asset(db_path, "b", 0).is_deployed is bool(raw)


def test_plain_values_as_a_session_row_has_them(db_path):
    """Without a plan a Lookup returns the row's values as a session's Row holds them
    (text that is not UTF-8 included)."""
    _tracer(db_path)
    sql = "SELECT ?, ?, ?, ?, ?, CAST(x'66fe6f' AS TEXT), x'00ff', NULL, 2.5, -7"
    params = (1, "text", "é∑😀", b"\x00\x01", 3.25)
    got = _core.Lookup(sql).first(db_path, params)
    assert type(got) is tuple
    assert got == tuple(_from_session(db_path, sql, params))
    assert _core.Lookup("SELECT 1 WHERE 0").first(db_path, ()) is None
    big = "x" * 100_000  # larger than the copy kept on the stack
    assert _core.Lookup("SELECT ?, ?").first(db_path, (big, big + "y")) == (big, big + "y")
    wide = ", ".join(f"{i}" for i in range(100))
    assert _core.Lookup(f"SELECT {wide}").first(db_path, ()) == tuple(range(100))


def _error_of(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - compared by type and text
        return type(exc), str(exc)
    raise AssertionError("no error")


@pytest.mark.parametrize("sql, params", [
    ("SELECT * FROM no_such_table WHERE x = ?", (1,)),
    ("SELECT id FROM users WHERE username = ?", ()),
    ("SELECT id FROM users WHERE username = ?", ("a", "b")),
    ("SELECT id FROM users WHERE username = ?", (object(),)),
    ("SELECT id FROM users WHERE username = ?", ("\ud800",)),
    ("SELEC id FROM users", ()),
])
def test_errors_typed_as_a_sessions(db_path, sql, params):
    _tracer(db_path)
    with get_session(db_path) as s:
        expected = _error_of(lambda: s.execute(sql, params).first())
    assert _error_of(lambda: _core.Lookup(sql).first(db_path, params)) == expected


def test_misuse_is_refused(db_path):
    _tracer(db_path)
    with pytest.raises(ProgrammingError, match="only reads"):
        _core.Lookup("DELETE FROM users").first(db_path, ())
    with pytest.raises(ProgrammingError, match="more than one"):
        _core.Lookup("SELECT 1; SELECT 2").first(db_path, ())
    with pytest.raises(ProgrammingError, match="returns 2 columns, but its record takes 6"):
        _core.Lookup("SELECT 1, 2", models.USER_PLAN, models.parse_timestamp).first(db_path, ())
    with pytest.raises(TypeError, match="params must be a tuple"):
        _core.Lookup("SELECT ?").first(db_path, [1])
    with pytest.raises(TypeError):
        _core.Lookup("SELECT 1").first(db_path)
    with pytest.raises(TypeError, match="parse_timestamp"):
        _core.Lookup("SELECT 1", models.USER_PLAN)
    with pytest.raises(ValueError, match="one kind per field"):
        _core.Lookup("SELECT 1", (models.User, ("id",), "x"))
    with pytest.raises(TypeError):
        _core.Lookup("SELECT 1", (1, ("id",), "v"))
    with pytest.raises(TypeError):
        _core.Lookup("SELECT 1", [models.User, ("id",), "v"])
    assert users.get_user(db_path, "admin").username == "admin"  # nothing was left open
    assert_healthy(db_path)


def test_path_errors_as_get_session(tmp_path):
    with pytest.raises(DatabasePathError):
        users.get_user(tmp_path, "admin")  # a folder
    with pytest.raises(DatabasePathError):
        users.get_user(3.5, "admin")
    with pytest.raises(DatabasePathError, match="NUL"):
        users.get_user(str(tmp_path / "a\0b.db"), "admin")


def test_a_path_never_initialized_is_initialized_as_get_session_does(db_path):
    assert not db_path.exists()
    assert users.get_user(db_path, "admin").role == "admin"
    assert db_manager.database_path == str(db_path)  # the default, as get_session made it
    assert_healthy(db_path)


def test_deleted_and_replaced_files_are_refused_as_sessions_refuse_them(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _fill(a)
    other = _tracer(b)
    other.create_prompttemplate(make_template("only-in-b", 0))
    assert assets.get_latest_asset(a, "tpl").asset_version == 2  # a cached statement on a
    _core._close_idle_connections()
    os.replace(b, a)  # a now names b's file; a's pooled connections point at the old one
    expected = _error_of(lambda: _from_session(a, assets.SELECT_LATEST_ASSET, ("tpl",)))
    assert expected[0] is DatabaseError and "replaced" in expected[1]
    assert _error_of(lambda: assets.get_latest_asset(a, "tpl")) == expected
    assert _error_of(lambda: users.get_user(a, "admin")) == expected
    # Re-initialized, the path gives the new file, through new connections.
    reset_initialization()
    tracer = _tracer(a)
    assert tracer.get_latest_asset("tpl") is None
    assert tracer.get_asset("only-in-b", 0).asset_name == "only-in-b"
    os.remove(a)
    expected = _error_of(lambda: _from_session(a, assets.SELECT_LATEST_ASSET, ("x",)))
    assert "deleted" in expected[1]
    assert _error_of(lambda: tracer.get_latest_asset("x")) == expected


def test_manager_reinitialized_to_another_file(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _fill(a).create_prompttemplate(make_template("only-in-a", 0))
    assert assets.get_asset(a, "only-in-a", 0) is not None
    reset_initialization()
    tb = _tracer(b)
    assert db_manager.database_path == str(b)
    assert tb.get_latest_asset("only-in-a") is None
    tb.create_prompttemplate(make_template("only-in-b", 0))
    assert tb.get_latest_asset("only-in-b").asset_version == 0
    # a, forgotten by the reset, is initialized again by its next lookup
    assert assets.get_asset(a, "only-in-a", 0).asset_name == "only-in-a"
    assert assets.get_latest_asset(a, "only-in-b") is None
    assert db_manager.database_path == str(b)  # the default stays
    for p in (a, b):
        assert_healthy(p)


def test_schema_change_under_a_cached_statement(db_path):
    tracer = _fill(db_path)
    before = tracer.get_asset("tpl", 1)
    con = sqlite3.connect(db_path)
    con.execute("ALTER TABLE assets ADD COLUMN extra TEXT DEFAULT 'x'")
    con.execute("CREATE INDEX ix_extra ON assets (extra)")
    con.commit()
    # SQLITE_SCHEMA: the cached statement is prepared again inside its step.
    _same_record(tracer.get_asset("tpl", 1), before)
    con.execute("ALTER TABLE assets RENAME COLUMN asset_description TO description")
    con.commit()
    with get_session(db_path) as s:
        expected = _error_of(lambda: s.execute(assets.SELECT_ASSET, ("tpl", 1)).first())
    assert expected[0] is ProgrammingError
    assert _error_of(lambda: tracer.get_asset("tpl", 1)) == expected
    con.execute("ALTER TABLE assets RENAME COLUMN description TO asset_description")
    con.commit()
    con.close()
    _same_record(tracer.get_asset("tpl", 1), before)
    assert tracer.get_user_by_username("bob").status == 0
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()


def test_in_memory_database():
    tracer = LocalTracer({"type": "local", "db_file": ":memory:"})
    tracer.create_prompttemplate(make_template("mem", 0))
    assert tracer.get_latest_asset("mem").asset_name == "mem"
    assert tracer.me().username == "admin"


def test_child_of_fork_looks_up_on_its_own_connections(db_path):
    tracer = _fill(db_path)
    expected = tracer.get_asset("tpl", 1)  # leaves a pooled connection and its statement

    def child():
        for i in range(20):
            _same_record(tracer.get_asset("tpl", 1), expected)
            tracer.create_prompttemplate(make_template("child", i))
            assert tracer.get_latest_asset("child").asset_version == i

    assert in_fork_child(child) == 0
    _same_record(tracer.get_asset("tpl", 1), expected)  # the parent's connection still works
    assert tracer.get_latest_asset("child").asset_version == 19
    assert_healthy(db_path)


def test_fork_while_another_thread_looks_up(db_path):
    """A child forked while a thread of its parent is inside a lookup either reads
    through its own connections or is refused the file, as sessions are; it never
    hangs and never reads a wrong row."""
    tracer = _fill(db_path)
    expected = tracer.get_asset("tpl", 2)
    stop = threading.Event()
    errors = []

    def churn():
        while not stop.is_set():
            try:
                assert tracer.get_asset("tpl", 2) == expected
                assert tracer.get_user_by_username("admin").role == "admin"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    def child():
        for _ in range(5):
            try:
                assert tracer.get_asset("tpl", 2) == expected
            except DatabaseError as exc:
                assert "forked while its parent had this database" in str(exc), exc

    threads = [threading.Thread(target=churn) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        codes = [in_fork_child(child) for _ in range(20)]
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == [] and codes == [0] * 20
    assert_healthy(db_path)


_PROCESS = """
import sys, threading
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import PromptTemplate
path, index, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tracer = LocalTracer({"type": "local", "db_file": path})
name = f"p{index}"
barrier = threading.Barrier(5)
failures = []

def writer():
    barrier.wait()
    for v in range(1, rounds + 1):
        tracer.create_prompttemplate(PromptTemplate(
            name=name, version=v, description=f"d{v}", system_prompt=f"s{v}",
            user_prompt=f"u{v}"))

def reader(k):
    barrier.wait()
    seen = {}
    try:
        for i in range(rounds * 20):
            owner = f"p{(index + k + i) % 3}"
            latest = tracer.get_latest_asset(owner)
            if latest is not None:
                v = latest.asset_version
                assert v >= seen.get(owner, 0), (owner, v, seen)
                seen[owner] = v
                assert latest.asset_description == f"d{v}" or v == 0
                assert latest.user.username == "admin"
                again = tracer.get_asset(owner, v)
                assert again == latest, (again, latest)
            assert tracer.get_user_by_username("admin").id == 1
    except BaseException as exc:
        failures.append(repr(exc))

threads = [threading.Thread(target=writer)]
threads += [threading.Thread(target=reader, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("FAILED" if failures else "OK", failures[:3])
"""


def test_threads_in_processes_look_up_while_others_write(db_path):
    """3 processes, each with 4 threads looking up and one thread adding versions; every
    record read is whole and consistent, versions only grow, the file stays sound."""
    tracer = _tracer(db_path)
    for i in range(3):
        tracer.create_prompttemplate(make_template(f"p{i}", 0))
    rounds = 15
    results = start_together(_PROCESS, lambda i: [db_path, i, rounds], 3)
    for code, out, err in results:
        assert code == 0, err
        assert out.startswith("OK"), (out, err)
    for i in range(3):
        latest = tracer.get_latest_asset(f"p{i}")
        assert latest.asset_version == rounds and latest.asset_description == f"d{rounds}"
    assert_healthy(db_path)


def test_lookups_leave_no_descriptors_or_connections_behind(db_path):
    tracer = _fill(db_path)
    for _ in range(200):
        tracer.get_asset("tpl", 1)
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(3000):
        tracer.get_asset("tpl", 1)
        tracer.get_latest_asset("nope")
        tracer.get_user_by_username("admin")
    assert len(os.listdir("/proc/self/fd")) == fds


def test_settings_are_read_from_os_environ_on_every_call(db_path, monkeypatch):
    """get_session() and lookups read the PROMPTLAB_* variables on every call (now from
    os.environ's dict, without raising KeyError for the ones not set): a change is seen
    by the next call, and a lookup runs under the statement time limit."""
    from promptlab.sqlite import StatementTimeoutError

    _tracer(db_path)
    endless = _core.Lookup("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                           "SELECT max(x) FROM c")
    monkeypatch.setenv("PROMPTLAB_STATEMENT_TIMEOUT_MS", "150")
    with get_session(db_path) as s:
        assert s.statement_timeout == 0.15
    with pytest.raises(StatementTimeoutError):
        endless.first(db_path, ())
    os.environ["PROMPTLAB_STATEMENT_TIMEOUT_MS"] = "250"
    with get_session(db_path) as s:
        assert s.statement_timeout == 0.25
    monkeypatch.delenv("PROMPTLAB_STATEMENT_TIMEOUT_MS")
    with get_session(db_path) as s:
        assert s.statement_timeout is None
    assert users.get_user(db_path, "admin").username == "admin"


def test_no_file_means_the_default_database_as_get_session(tmp_path):
    """The store's functions were called with db_file None by nothing in the package, but
    get_session(None) gave the default database: a lookup does the same."""
    with pytest.raises(RuntimeError, match="Session not initialized"):
        users.get_user(None, "admin")
    _fill(tmp_path / "a.db")
    _tracer(tmp_path / "b.db")
    assert users.get_user(None, "bob").status == 0  # bob exists in a.db only
    assert assets.get_latest_asset(None, "tpl").asset_version == 2


def _lookup_work(path) -> None:
    db_manager.initialize_database(path)
    wide = ", ".join(str(i) for i in range(40))  # more columns than the copy keeps inline
    text = "x" * 5000  # more bytes than the copy keeps inline
    assert _core.Lookup(f"SELECT {wide}, ?").first(path, (text,))[-1] == text
    assert users.get_user(path, "admin").username == "admin"


@pytest.mark.skipif(not hasattr(_core, "_fail_allocations_after"),
                    reason="fault injection needs a build with assertions (.ci/run's "
                           "sanitizer builds, PROMPTLAB_DEBUG=1)")
def test_every_allocation_failure_of_a_lookup_is_clean(tmp_path):
    """Each engine allocation a lookup makes (the connection, the row's copy) fails in
    turn: a MemoryError or DatabaseError, the file intact, and the lookup works again."""
    from test_fault_injection import walk

    assert walk(_lookup_work, tmp_path, fresh_file=False) > 0


def test_a_plan_whose_class_cannot_be_made_is_refused(db_path):
    # build() calls the class's tp_new: a type without one crashed the process.
    with pytest.raises(TypeError, match="instantiable"):
        _core.Lookup("SELECT 1", (type(iter([])), ("x",), "v"))
