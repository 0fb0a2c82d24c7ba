"""Result buffers are reused between queries (csrc/engine/bufpool.c): a query never
sees another query's bytes, whatever the sizes, threads or forks involved."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from promptlab.sqlite import get_session
from promptlab.sqlite.database_manager import db_manager

ROWS = 20_000
SELECT = "SELECT id, body, n FROM notes WHERE id BETWEEN ? AND ? ORDER BY id"
PARENTS = "SELECT id AS k, 'group ' || id AS label FROM groups ORDER BY id"
CHILDREN = ("SELECT g.id AS k, n.body AS body, n.n AS n FROM groups g "
            "CROSS JOIN notes n ON n.id % 7 = g.id ORDER BY g.id, n.id")


def _body(i: int) -> str:
    # Lengths vary from row to row, so that stale bytes would show up shifted.
    return f"note {i} " + "xyz"[i % 3] * (i % 97)


@pytest.fixture
def notes_db(db_path, at_head):
    """A table of ROWS notes (about 1 MB of text: enough for pooled buffers)."""
    db_manager.initialize_database(at_head(db_path))
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, n REAL)")
    con.execute("CREATE TABLE groups (id INTEGER PRIMARY KEY)")
    con.executemany("INSERT INTO notes VALUES (?, ?, ?)",
                    ((i, _body(i), i / 4) for i in range(ROWS)))
    con.executemany("INSERT INTO groups VALUES (?)", ((g,) for g in range(7)))
    con.commit()
    con.close()
    return db_path


def _expected(lo: int, hi: int):
    return [(i, _body(i), i / 4) for i in range(lo, hi + 1)]


def _read(lo: int, hi: int):
    with get_session() as s:
        return [tuple(row) for row in s.execute(SELECT, (lo, hi)).all()]


def test_queries_of_changing_sizes_read_only_their_own_rows(notes_db):
    for lo, hi in [(0, ROWS - 1), (100, 5_099), (7, 19_000), (3, 3), (2_000, 14_999),
                   (0, ROWS - 1)]:
        assert _read(lo, hi) == _expected(lo, hi)


def test_nested_reads_after_larger_ones(notes_db):
    expected = [("group %d" % (i % 7), _body(i), i / 4)
                for g in range(7) for i in range(ROWS) if i % 7 == g]
    assert _read(0, ROWS - 1) == _expected(0, ROWS - 1)  # fills the pool
    for _ in range(2):
        with get_session() as s:
            rows = s.execute_nested(PARENTS, CHILDREN, ("label", "body", "n")).all()
        assert [tuple(r) for r in rows] == expected


def test_threads_reading_at_once_get_their_own_rows(notes_db):
    ranges = [(0, ROWS - 1), (0, 9_999), (10_000, ROWS - 1), (5_000, 12_499)]
    expected = {r: _expected(*r) for r in ranges}
    barrier = threading.Barrier(len(ranges))
    failures = []

    def reader(lo, hi):
        barrier.wait()
        for _ in range(15):
            if _read(lo, hi) != expected[(lo, hi)]:
                failures.append((lo, hi))

    threads = [threading.Thread(target=reader, args=r) for r in ranges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_reads_with_the_buffers_it_inherited(notes_db, tmp_path):
    # The child reads a copy: a file with a busy connection in the parent at
    # fork() is refused in the child (test_fork.py).
    copy = str(tmp_path / "copy.db")
    with sqlite3.connect(notes_db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    assert _read(0, ROWS - 1) == _expected(0, ROWS - 1)  # the parent's pool is full
    stop = threading.Event()

    def parent_reader():  # takes and gives back buffers while the test forks
        while not stop.is_set():
            _read(0, 4_999)

    def child():
        db_manager.initialize_database(copy)
        with db_manager.get_session(copy) as s:
            rows = [tuple(row) for row in s.execute(SELECT, (0, ROWS - 1)).all()]
        return rows == _expected(0, ROWS - 1)

    t = threading.Thread(target=parent_reader)
    t.start()
    try:
        statuses = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                try:
                    code = 0 if child() else 1
                except BaseException as exc:  # noqa: BLE001 - reported through the status
                    os.write(2, f"child failed: {exc!r}\n".encode())
                    code = 2
                os._exit(code)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    finally:
        stop.set()
        t.join()
    assert statuses == [0, 0, 0]
