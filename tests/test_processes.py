"""Processes: many starting at one instant on one fresh file, and writing together."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3

import pytest

from conftest import assert_healthy
from helpers import TEST_BCRYPT_COST, python_code_process, start_together
from promptlab import _core

PROCESSES = 8
# Rounds and rows beyond these run only in the full suite (pytest -m slow or no -m).
FAST_ROUNDS = 3


def _init_at_barrier(path, barrier, queue):
    try:
        from promptlab.sqlite.database_manager import db_manager

        barrier.wait()
        db_manager.initialize_database(path)
        queue.put(None)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


def _start_together(target, args_for, n, context="fork"):
    ctx = multiprocessing.get_context(context)
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=args_for(i) + (barrier, queue)) for i in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    return results, [p.exitcode for p in procs]


@pytest.mark.parametrize("round_", [r if r < FAST_ROUNDS else pytest.param(r, marks=pytest.mark.slow)
                                    for r in range(12)])
def test_8_processes_initialize_one_fresh_file(tmp_path, round_):
    path = str(tmp_path / "fresh.db")
    results, codes = _start_together(_init_at_barrier, lambda i: (path,), PROCESSES)
    assert results == [None] * PROCESSES
    assert codes == [0] * PROCESSES
    assert_healthy(path)


def test_8_fresh_interpreters_start_at_one_instant(tmp_path):
    """Spawned interpreters (not forks), released together once all have said READY."""
    path = tmp_path / "spawned.db"
    code = (
        "from promptlab.sqlite.database_manager import db_manager\n"
        "db_manager.initialize_database(sys.argv[1])\n"
        "print('ok')\n"
    )
    results = start_together(code, lambda i: (str(path),), PROCESSES)
    assert [code for code, _, _ in results] == [0] * PROCESSES, [e for _, _, e in results]
    assert all(out.strip() == "ok" for _, out, _ in results)
    assert_healthy(path)


def _write_rows(path, rows, barrier, queue):
    try:
        from promptlab.sqlite import get_session
        from promptlab.sqlite.database_manager import db_manager

        barrier.wait()
        db_manager.initialize_database(path)
        for j in range(rows):
            with get_session(path) as s:
                s.execute("INSERT INTO assets (asset_name, asset_version) VALUES (?, ?)",
                          (f"p{os.getpid()}", j))
        queue.put(None)
    except BaseException as exc:  # noqa: BLE001
        queue.put(repr(exc))


@pytest.mark.parametrize("rows", [25, pytest.param(200, marks=pytest.mark.slow)])
def test_processes_writing_together_lose_nothing(tmp_path, rows):
    """Each row is its own transaction (a sync each): 25 rows a process in the inner loop."""
    path = str(tmp_path / "writers.db")
    results, codes = _start_together(_write_rows, lambda i: (path, rows), PROCESSES)
    assert results == [None] * PROCESSES and codes == [0] * PROCESSES
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM assets").fetchone()[0] == PROCESSES * rows
    assert con.execute("SELECT count(DISTINCT asset_name) FROM assets").fetchone()[0] == PROCESSES
    con.close()
    assert_healthy(path)


def test_admin_password_set_once_when_processes_race(tmp_path):
    path = tmp_path / "race.db"
    code = TEST_BCRYPT_COST + (
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"db_manager.initialize_database({str(path)!r})\n"
    )
    env = dict(os.environ, PROMPTLAB_ADMIN_PASSWORD="shared-secret")
    procs = [python_code_process(code, env=env) for _ in range(4)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errs
    assert_healthy(path)
    con = sqlite3.connect(path)
    hashes = con.execute("SELECT password_hash FROM users").fetchall()
    con.close()
    assert len(hashes) == 1 and _core.verify_password("shared-secret", hashes[0][0])
