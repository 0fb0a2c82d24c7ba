"""Processes: many starting at one instant on one fresh file, and writing together."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import sys

import pytest

from conftest import NEUTRAL_CWD, assert_healthy, run_python

PROCESSES = 8


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


@pytest.mark.parametrize("round_", range(12))
def test_8_processes_initialize_one_fresh_file(tmp_path, round_):
    path = str(tmp_path / "fresh.db")
    results, codes = _start_together(_init_at_barrier, lambda i: (path,), PROCESSES)
    assert results == [None] * PROCESSES
    assert codes == [0] * PROCESSES
    assert_healthy(path)


def test_8_fresh_interpreters_start_at_one_instant(tmp_path):
    """Spawned interpreters (not forks), released by a shared start time."""
    import time

    path = tmp_path / "spawned.db"
    start = time.time() + 3.0
    code = (
        "import time\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"time.sleep(max(0.0, {start!r} - time.time()))\n"
        f"db_manager.initialize_database({str(path)!r})\n"
        "print('ok')\n"
    )
    import subprocess

    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=NEUTRAL_CWD)
             for _ in range(PROCESSES)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, [e for _, e in outs]
    assert all(o.strip() == "ok" for o, _ in outs)
    assert_healthy(path)


def _write_rows(path, barrier, queue, rows=200):
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


def test_processes_writing_together_lose_nothing(tmp_path):
    path = str(tmp_path / "writers.db")
    results, codes = _start_together(_write_rows, lambda i: (path,), PROCESSES)
    assert results == [None] * PROCESSES and codes == [0] * PROCESSES
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM assets").fetchone()[0] == PROCESSES * 200
    assert con.execute("SELECT count(DISTINCT asset_name) FROM assets").fetchone()[0] == PROCESSES
    con.close()
    assert_healthy(path)


def test_admin_password_set_once_when_processes_race(tmp_path):
    path = tmp_path / "race.db"
    code = (
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"db_manager.initialize_database({str(path)!r})\n"
    )
    import subprocess

    env = dict(os.environ, PROMPTLAB_ADMIN_PASSWORD="shared-secret")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                              text=True, cwd=NEUTRAL_CWD) for _ in range(4)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errs
    assert_healthy(path)
    result = run_python(
        "import sqlite3\nfrom promptlab import _core\n"
        f"h = sqlite3.connect({str(path)!r}).execute(\"SELECT password_hash FROM users\").fetchall()\n"
        "print(len(h), _core.verify_password('shared-secret', h[0][0]))\n")
    assert result.stdout.split() == ["1", "True"], result.stderr
