"""Load: 4 processes x 4 threads tracing experiments and reading them back at
once. Zero errors, every row present, integrity_check ok."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

from conftest import assert_healthy
from factories import make_config, make_summary

PROCESSES, THREADS, ITERATIONS, ROWS = 4, 4, 6, 100


def _worker(path, barrier, queue):
    try:
        from promptlab.tracer import LocalTracer

        tracer = LocalTracer({"type": "local", "db_file": path})
        config = make_config()
        errors = []
        start = threading.Barrier(THREADS)

        def thread_body(t):
            try:
                start.wait()
                for i in range(ITERATIONS):
                    exp = f"p{multiprocessing.current_process().pid}-t{t}-i{i}"
                    tracer.trace_experiment(config, make_summary(exp, ROWS))
                    rows = tracer.get_experiments()
                    mine = [r for r in rows if r["experiment_id"] == exp]
                    assert len(mine) == ROWS, (exp, len(mine))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                errors.append(repr(exc))

        barrier.wait()
        threads = [threading.Thread(target=thread_body, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        queue.put(errors)
    except BaseException as exc:  # noqa: BLE001
        queue.put([repr(exc)])


def test_processes_and_threads_trace_and_read_together(tmp_path):
    path = str(tmp_path / "stress.db")
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, barrier, queue)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    errors = [e for _ in procs for e in queue.get(timeout=600)]
    for p in procs:
        p.join(60)
    assert errors == []
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    experiments = PROCESSES * THREADS * ITERATIONS
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM experiments").fetchone()[0] == experiments
    assert con.execute("SELECT count(*) FROM experiment_result").fetchone()[0] == experiments * ROWS
    per_experiment = {n for (n,) in con.execute(
        "SELECT count(*) FROM experiment_result GROUP BY experiment_id")}
    assert per_experiment == {ROWS}
    con.close()
    assert_healthy(path)
