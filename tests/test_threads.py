"""Threads: one-time initialization, concurrent writers, shared sessions, the GIL."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time

import pytest

from conftest import assert_healthy
from promptlab.sqlite import DatabaseError, get_session
from promptlab.sqlite.database_manager import db_manager

THREADS = 32


def spin_while_blocked(thread: threading.Thread, function: str) -> int:
    """Run Python code (which needs the GIL at every step) until ``thread`` has been in
    ``function`` (where it makes its blocking call) for 20 switch intervals, and return the
    steps run. A thread that kept the GIL while it blocked would stop this loop: the
    interpreter asks the holder for the GIL after one switch interval."""
    window = 20 * sys.getswitchinterval()
    deadline = time.monotonic() + 60
    spins, since = 0, None
    while True:
        spins += 1
        now = time.monotonic()
        assert now < deadline, f"{function} never started"
        if since is None:
            frame = sys._current_frames().get(thread.ident)
            if frame is not None and frame.f_code.co_name == function:
                since = now
        elif now - since >= window:
            return spins


def run_together(target, n):
    """Start n threads on a barrier; return the exceptions they raised."""
    barrier = threading.Barrier(n)
    errors = []

    def body(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


@pytest.mark.parametrize("round_", range(10))
def test_32_threads_initialize_one_fresh_file(tmp_path, round_):
    path = tmp_path / f"fresh-{round_}.db"
    errors = run_together(lambda i: db_manager.initialize_database(path), THREADS)
    assert errors == []
    assert_healthy(path)
    assert db_manager.database_path == str(path)


def test_threads_with_different_spellings_of_one_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.db"
    spellings = [str(path), "x.db", "./x.db", str(tmp_path) + "/../" + tmp_path.name + "/x.db"]
    errors = run_together(lambda i: db_manager.initialize_database(spellings[i % 4]), THREADS)
    assert errors == []
    assert_healthy(path)


def test_threads_on_many_files_at_once(tmp_path):
    paths = [tmp_path / f"db{i}.db" for i in range(8)]
    errors = run_together(lambda i: db_manager.initialize_database(paths[i % 8]), THREADS)
    assert errors == []
    for p in paths:
        assert_healthy(p)


def test_concurrent_writers_lose_nothing(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    per_thread = 50

    def write(i):
        for j in range(per_thread):
            with get_session() as s:
                s.execute("INSERT INTO assets (asset_name, asset_version) VALUES (?, ?)",
                          (f"t{i}", j))

    errors = run_together(write, 16)
    assert errors == []
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT count(*) FROM assets").fetchone()[0] == 16 * per_thread
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_read_then_write_under_contention(db_path, at_head):
    """Counters incremented with begin(): no lost update, no busy-snapshot error."""
    db_manager.initialize_database(at_head(db_path))
    with get_session() as s:
        s.execute("CREATE TABLE counter (n INTEGER)")
        s.execute("INSERT INTO counter VALUES (0)")

    def bump(i):
        for _ in range(50):
            with get_session() as s:
                s.begin()
                n = s.execute("SELECT n FROM counter").scalar()
                s.execute("UPDATE counter SET n = ?", (n + 1,))

    assert run_together(bump, 8) == []
    with get_session() as s:
        assert s.execute("SELECT n FROM counter").scalar() == 400


def test_one_session_shared_by_threads_is_serialized(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    shared = get_session()

    def hammer(i):
        for j in range(200):
            shared.execute("INSERT INTO assets (asset_name, asset_version) VALUES (?, ?)",
                           (f"s{i}", j))
            shared.execute("SELECT count(*) FROM assets").scalar()
            if j % 50 == 0:
                shared.commit()

    assert run_together(hammer, 8) == []
    shared.commit()
    shared.close()
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT count(*) FROM assets").fetchone()[0] == 8 * 200
    con.close()


def test_closing_a_shared_session_while_others_use_it(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    shared = get_session()

    def use(i):
        if i == 0:
            time.sleep(0.01)
            shared.close()
            return
        for _ in range(500):
            try:
                shared.execute("SELECT 1")
            except DatabaseError as exc:
                assert "closed" in str(exc)
                return

    assert run_together(use, 4) == []
    assert shared.closed


def test_a_thread_waiting_on_a_lock_does_not_hold_the_gil(db_path, at_head):
    """While a write waits for another connection's lock, Python keeps running."""
    db_manager.initialize_database(at_head(db_path))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started, done, errors = threading.Event(), threading.Event(), []

    def writer():
        try:
            with get_session() as s:
                started.set()
                s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('w', 1)")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    assert started.wait(10)
    spins = spin_while_blocked(t, "writer")
    assert not done.is_set(), "the writer did not wait for the lock"
    blocker.execute("COMMIT")  # Python code: only runs if the writer released the GIL
    t.join(60)
    blocker.close()
    assert errors == []
    assert spins > 1000


def test_initialization_waiting_on_a_lock_does_not_hold_the_gil(db_path):
    """A fresh file locked by another connection: initialize waits with the GIL released."""
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    done, errors = threading.Event(), []

    def init():
        try:
            db_manager.initialize_database(db_path)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=init)
    t.start()
    spin_while_blocked(t, "init")
    assert not done.is_set(), "initialization did not wait for the lock"
    blocker.execute("COMMIT")
    blocker.close()
    t.join(60)
    assert errors == []
    assert_healthy(db_path)
