"""A process that touches many database files does not keep three descriptors open
for each one until it exits: idle pooled connections are bounded per process
(PROMPTLAB_MAX_IDLE_CONNECTIONS, least recently used closed first), and running
out of descriptors is reported as what it is (issue 12, item 6)."""

from __future__ import annotations

import os

from conftest import run_python
from promptlab.sqlite import get_session
from promptlab.sqlite.database_manager import db_manager


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_idle_connections_are_bounded_per_process(tmp_path, monkeypatch, at_head):
    monkeypatch.setenv("PROMPTLAB_MAX_IDLE_CONNECTIONS", "5")
    before = open_descriptors()
    paths = [tmp_path / f"f{i}.db" for i in range(60)]
    for p in paths:  # 60 databases at head (copies: 60 new files would cost 300 migrations)
        db_manager.initialize_database(at_head(p))
        with get_session(p) as s:
            s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    # At most 5 idle connections of about three descriptors each stay open.
    assert open_descriptors() - before <= 5 * 3 + 2
    # Every database still works, and the closed ones were checkpointed whole.
    for p in paths:
        with get_session(p) as s:
            assert s.execute("SELECT count(*) FROM assets").scalar() == 1
    closed = [p for p in paths if not os.path.exists(str(p) + "-wal")]
    assert len(closed) >= len(paths) - 5


def test_the_least_recently_used_is_closed_first(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MAX_IDLE_CONNECTIONS", "2")
    paths = [tmp_path / f"f{i}.db" for i in range(3)]
    for p in paths:
        db_manager.initialize_database(p)
    for p in paths:  # f0 is used first, so it is the oldest idle one
        with get_session(p) as s:
            s.execute("SELECT 1")
    open_files = {os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
                  for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")}
    assert "f0.db" not in open_files
    assert {"f1.db", "f2.db"} <= open_files


def test_too_many_open_files_says_so(tmp_path):
    """With the descriptor limit reached, the error names the cause and the setting."""
    code = (
        "import resource\n"
        "from promptlab.sqlite import DatabaseError, DatabasePathError\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"base = {str(tmp_path)!r}\n"
        "db_manager.initialize_database(base + '/first.db')\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "held = []\n"
        "try:\n"
        "    while True:\n"
        "        held.append(open('/dev/null'))\n"
        "except OSError:\n"
        "    held.pop().close()\n"
        "try:\n"
        "    db_manager.initialize_database(base + '/second.db')\n"
        "except DatabaseError as exc:\n"
        "    print(type(exc).__name__, '|', exc)\n"
    )
    result = run_python(code, env={"PROMPTLAB_MAX_IDLE_CONNECTIONS": "64"})
    assert result.returncode == 0, result.stderr
    kind, _, message = result.stdout.partition(" | ")
    assert kind == "DatabaseError", result.stdout
    assert "too many files open" in message and "PROMPTLAB_MAX_IDLE_CONNECTIONS" in message
