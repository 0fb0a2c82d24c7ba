"""Process death: a writer killed with SIGKILL in the middle of trace_experiment
leaves the whole experiment or none of it, the database passes integrity_check,
and another process writing meanwhile keeps working."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import NEUTRAL_CWD, assert_healthy
from helpers import experiment_counts, wait_for

TESTS = os.path.dirname(os.path.abspath(__file__))
ROWS = 5000

WRITER = f"""
import sys, itertools
sys.path.insert(0, {TESTS!r})
from factories import make_config, make_summary
from promptlab.tracer import LocalTracer
tracer = LocalTracer({{"type": "local", "db_file": sys.argv[1]}})
config = make_config()
prefix = sys.argv[2]
rows = int(sys.argv[3])
print("ready", flush=True)
for i in itertools.count() if rows < 0 else range(int(sys.argv[4])):
    tracer.trace_experiment(config, make_summary(f"{{prefix}}-{{i}}", abs(rows)))
print("done", flush=True)
"""


def _start(path, prefix, rows, count=0):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path, prefix, str(rows), str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=NEUTRAL_CWD)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _experiments_are_whole(path, expected_rows):
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts, orphans = experiment_counts(con)
    finally:
        con.close()
    assert orphans == 0
    for experiment, n in counts.items():
        assert n == expected_rows(experiment), (experiment, n)
    return counts


def _victims_stored(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM experiments "
                           "WHERE experiment_id LIKE 'victim%'").fetchone()[0]
    finally:
        con.close()


# A kill after each delay, and one ("stored") once a victim's first experiment is stored,
# so that some victims' experiments are committed whatever the machine's speed.
ALL_DELAYS = [0.0, 0.01, 0.03, 0.05, 0.08, 0.12, 0.17, 0.25, 0.35, 0.5, 0.7, 1.0, "stored"]


@pytest.mark.parametrize("delays", [
    [0.0, 0.05, "stored"],
    pytest.param(ALL_DELAYS, marks=pytest.mark.slow, id="all-delays"),
], ids=["3-kills", "all-delays"])
def test_writer_killed_mid_trace_leaves_all_or_nothing(tmp_path, delays, at_head):
    path = str(at_head(tmp_path / "crash.db"))
    from promptlab.sqlite.database_manager import db_manager

    db_manager.initialize_database(path)
    # A second process keeps writing small experiments through every kill.
    bystander = _start(path, "bystander", -10)
    for k, delay in enumerate(delays):
        victim = _start(path, f"victim{k}", -ROWS)
        if delay == "stored":
            before = _victims_stored(path)
            wait_for(lambda before=before, victim=victim:
                     _victims_stored(path) > before or victim.poll() is not None,
                     what="a victim's experiment to be stored")
        else:
            time.sleep(delay)  # the moment of the kill: the variable under test
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        assert victim.returncode == -signal.SIGKILL
        _experiments_are_whole(
            path, lambda e: 10 if e.startswith("bystander") else ROWS)
    assert bystander.poll() is None, bystander.stderr.read()  # still writing
    bystander.send_signal(signal.SIGTERM)
    bystander.wait(30)
    counts = _experiments_are_whole(path, lambda e: 10 if e.startswith("bystander") else ROWS)
    assert sum(1 for e in counts if e.startswith("bystander")) > 0
    assert sum(1 for e in counts if e.startswith("victim")) > 0  # some were committed
    # After all that, a new process opens the file and writes normally.
    survivor = _start(path, "after", 3, count=2)
    assert survivor.wait(60) == 0, survivor.stderr.read()
    assert_healthy(path)
