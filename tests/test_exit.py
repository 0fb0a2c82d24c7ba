"""At exit a program leaves its database complete in its one file.

In WAL mode new rows go to `<file>-wal` first; SQLite copies them into the file
(a checkpoint) when 1,000 pages have gathered, or when the last connection to the
file closes. The C core closes its idle pooled connections at interpreter exit, so
a finished run leaves no -wal behind and a copy of the .db alone holds every row.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import NEUTRAL_CWD, assert_healthy, run_python

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# A run as a user writes it: a tracer, its assets, one experiment of ROWS results.
TRACE_RUN = """
import sys
sys.path.insert(0, {tests!r})
from factories import make_config, make_dataset, make_summary, make_template
from promptlab.tracer.local_tracer import LocalTracer
tracer = LocalTracer({{"type": "local", "db_file": {path!r}}})
tracer.create_dataset(make_dataset())
tracer.create_prompttemplate(make_template())
tracer.trace_experiment(make_config(), make_summary("exp-exit", {rows}))
print("traced")
"""
ROWS = 300  # about 30 pages: far below the 1,000-page automatic checkpoint


def _results_in(path) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT count(*) FROM experiment_result").fetchone()[0]
    finally:
        con.close()


def test_a_finished_run_leaves_one_complete_file(tmp_path):
    path = tmp_path / "run.db"
    proc = run_python(TRACE_RUN.format(tests=TESTS_DIR, path=str(path), rows=ROWS))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "traced"

    assert not Path(f"{path}-wal").exists()
    assert not Path(f"{path}-shm").exists()
    # The file alone, as a user copies or mails it, holds the whole run.
    alone = tmp_path / "copy" / "run.db"
    alone.parent.mkdir()
    shutil.copyfile(path, alone)
    assert _results_in(alone) == ROWS


def test_db_init_leaves_one_complete_file(tmp_path):
    path = tmp_path / "cli.db"
    proc = subprocess.run([sys.executable, "-m", "promptlab", "db", "init", "-d", str(path)],
                          capture_output=True, text=True, cwd=NEUTRAL_CWD, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.db"]
    assert_healthy(path)


def test_exit_leaves_the_wal_of_a_file_another_process_has_open(tmp_path):
    """The last connection checkpoints, not the first to leave: a program that
    ends while another one reads the file takes nothing away from that reader."""
    path = tmp_path / "shared.db"
    proc = run_python(TRACE_RUN.format(tests=TESTS_DIR, path=str(path), rows=ROWS))
    assert proc.returncode == 0, proc.stderr

    reader = sqlite3.connect(str(path))
    try:
        assert reader.execute("SELECT count(*) FROM experiment_result").fetchone()[0] == ROWS
        second = TRACE_RUN.format(tests=TESTS_DIR, path=str(path), rows=ROWS).replace(
            "exp-exit", "exp-second").replace("tracer.create_dataset(make_dataset())\n", "")
        second = second.replace("tracer.create_prompttemplate(make_template())\n", "")
        proc = run_python(second)
        assert proc.returncode == 0, proc.stderr
        # The writer has ended; its rows are in the -wal the reader still uses.
        assert Path(f"{path}-wal").exists()
        assert reader.execute("SELECT count(*) FROM experiment_result").fetchone()[0] == 2 * ROWS
    finally:
        reader.close()  # now the last connection: it checkpoints
    assert not Path(f"{path}-wal").exists()
    assert _results_in(path) == 2 * ROWS


def test_a_session_left_open_at_exit_is_closed_when_python_frees_it(tmp_path):
    """A session never closed still holds its connection when the atexit hook
    runs (another thread might be using it). Python frees it later, while it
    shuts down: its connection is then closed, not pooled, and checkpoints."""
    path = tmp_path / "open.db"
    code = TRACE_RUN.format(tests=TESTS_DIR, path=str(path), rows=ROWS) + (
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"session = db_manager.get_session({str(path)!r})\n"
        "print(session.execute('SELECT count(*) FROM experiment_result').scalar())\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["traced", str(ROWS)]
    assert not Path(f"{path}-wal").exists()
    assert _results_in(path) == ROWS
