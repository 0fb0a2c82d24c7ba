"""Fault injection: every allocation of the C engine fails in turn, and each
failure surfaces as a clean MemoryError or DatabaseError, never a crash, a hang
or a damaged file; afterwards the same work succeeds.

The hook, promptlab._core._fail_allocations_after(n), makes the n-th allocation
through the engine's wrapper (csrc/engine/alloc.h) fail once. It exists only in
builds with assertions (PROMPTLAB_DEBUG=1, the sanitizer builds of .ci/run)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from factories import make_config, make_dataset, make_summary
from promptlab import _core
from promptlab.sqlite import DatabaseError, get_session
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.session import reset_initialization

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "_fail_allocations_after"),
    reason="a release build (NDEBUG) has no fault-injection hook; build with "
    "PROMPTLAB_DEBUG=1 or PROMPTLAB_SANITIZE to run these",
)

# More than any of the scenarios below allocates: the walk ends on its own when
# an armed allocation is never reached; this bound only stops a runaway.
MAX_STEPS = 400


def integrity(path: Path) -> str:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def walk(scenario: Callable[[Path], None], tmp_path: Path, fresh_file: bool) -> int:
    """Run `scenario` with allocation n failing, for n = 1, 2, ... until a run
    makes fewer than n allocations. Each failure must be a MemoryError or a
    DatabaseError that leaves the file intact; then, disarmed, the scenario must
    succeed (on the same file, or on a new one when `fresh_file`). Returns the
    number of failures injected."""
    injected = 0
    path = tmp_path / "shared.db"
    for n in range(1, MAX_STEPS + 1):
        if fresh_file:
            path = tmp_path / f"f{n}.db"
        reset_initialization()
        _core._fail_allocations_after(n)
        error = None
        try:
            scenario(path)
        except (MemoryError, DatabaseError) as exc:
            error = exc
        finally:
            made = _core._fail_allocations_after(0)
        if made < n:  # the armed allocation was never reached: all paths walked
            assert error is None, f"step {n}: {error!r} without an injected failure"
            return injected
        injected += 1
        if path.exists() and path.stat().st_size > 0:
            assert integrity(path) == "ok", f"step {n}: damaged after {error!r}"
        reset_initialization()
        again = path.with_name(f"again-{n}.db") if fresh_file else path
        scenario(again)  # the same work succeeds once memory is back
        assert integrity(again) == "ok"
    pytest.fail(f"more than {MAX_STEPS} allocations; raise MAX_STEPS")


def initialize(path: Path) -> None:
    db_manager.initialize_database(path)


def session_work(path: Path) -> None:
    db_manager.initialize_database(path)
    with get_session() as s:
        s.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
        s.executemany("INSERT INTO t (v) VALUES (?)", [(f"v{i}" * 50,) for i in range(200)])
        rows = s.execute("SELECT k, v FROM t ORDER BY k").all()
        assert len(rows) >= 200
        assert s.execute("SELECT :a + :b", {"a": 1, "b": 2, "extra": 3}).scalar() == 3
        s.execute("DELETE FROM t")


def nested(path: Path) -> None:
    db_manager.initialize_database(path)
    with get_session() as s:
        s.execute("CREATE TABLE IF NOT EXISTS p (id INTEGER PRIMARY KEY, name TEXT)")
        s.execute("CREATE TABLE IF NOT EXISTS c (pid INTEGER, x INTEGER)")
        s.execute("DELETE FROM p")
        s.execute("DELETE FROM c")
        s.executemany("INSERT INTO p VALUES (?, ?)", [(i, f"p{i}") for i in range(5)])
        s.executemany("INSERT INTO c VALUES (?, ?)", [(i % 5, i) for i in range(20)])
        s.commit()
        out = s.execute_nested("SELECT id, name FROM p ORDER BY id",
                               "SELECT pid, x FROM c ORDER BY pid, x", ("name", "x"))
        assert out is not None


def trace(path: Path) -> None:
    from promptlab.tracer import LocalTracer

    tracer = LocalTracer({"type": "local", "db_file": str(path)})
    tracer.create_dataset(make_dataset(name="fi-ds"))
    tracer.trace_experiment(make_config(template=None), make_summary("exp-fi", 3))
    assert tracer.get_experiments()


def migration_status(path: Path) -> None:
    """What `promptlab db migrate --to`, `db status` and `db migrate` do: each call reads
    and parses the migration files again (migfile.c), then reads the revision."""
    chain = _core.migrations()
    assert len(chain) >= 2 and all(m["reversible"] in (True, False) for m in chain)
    first, head = chain[0]["revision"], chain[-1]["revision"]
    assert _core.migrate(path, first)["after"] == first
    assert _core.database_revision(path)["revision"] == first
    assert _core.migrate(path)["after"] == head
    status = _core.database_revision(path)
    assert status["revision"] == head and len(status["history"]) == len(chain)


def admin_password(path: Path) -> None:
    """The generated admin password: hashed and written by the C core."""
    previous = _core._set_bcrypt_rounds_for_tests(4)
    try:
        db_manager.initialize_database(path)
        assert _core.set_admin_password_if_unusable(path, "generated-password") is True
        assert _core.set_admin_password_if_unusable(path, "another-password") is False
    finally:
        _core._set_bcrypt_rounds_for_tests(previous)


@pytest.mark.parametrize(
    "scenario, fresh_file",
    [(initialize, True), (session_work, False), (nested, False), (migration_status, True),
     (admin_password, True)],
    ids=["initialize", "session", "nested", "migration-status", "admin-password"],
)
def test_every_engine_allocation_failure_is_clean(tmp_path, scenario, fresh_file):
    injected = walk(scenario, tmp_path, fresh_file)
    print(f"{scenario.__name__}: {injected} allocation failures injected")
    assert injected > 0


def test_tracer_survives_every_engine_allocation_failure(tmp_path):
    try:
        make_dataset(name="fi-ds")
    except Exception as exc:  # the factory needs a data file of the test suite
        pytest.skip(f"factories unavailable: {exc}")
    assert walk(trace, tmp_path, fresh_file=True) > 0


def test_hook_counts_and_disarms():
    _core._fail_allocations_after(0)
    assert _core._fail_allocations_after(0) == 0
    with pytest.raises(ValueError):
        _core._fail_allocations_after(-1)
