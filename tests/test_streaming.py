"""Results are filled chunk by chunk and executemany runs its parameter sets a
chunk at a time (csrc/python/session.c): the C copies hold one chunk, never the
whole result or batch. These tests make chunks small (``_core._stream_chunk_rows``)
so that a few thousand rows span many of them, and check that nothing of what a
caller sees changes. Memory is measured by the benchmarks, not here."""

from __future__ import annotations

import math
import sqlite3
import threading

import pytest

from promptlab import _core
from promptlab.sqlite import ProgrammingError, StatementTimeoutError, get_session
from promptlab.sqlite.database_manager import db_manager

ROWS = 50_000
CHUNK = 1000


@pytest.fixture
def small_chunks():
    previous = _core._stream_chunk_rows(CHUNK)
    _core._stream_chunks()
    yield CHUNK
    _core._stream_chunk_rows(previous)


@pytest.fixture
def session(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    s = get_session()
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, txt TEXT, f REAL, b BLOB)")
    s.commit()
    yield s
    s.close()


def fill(session, n=ROWS):
    session.executemany(
        "INSERT INTO t (id, k, txt, f, b) VALUES (?, ?, ?, ?, ?)",
        ((i, i // 7, f"text {i} " + "é" * (i % 13), i / 3 if i % 5 else None,
          bytes([i % 256]) * (i % 4)) for i in range(1, n + 1)))
    session.commit()


def stdlib_rows(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_result_over_many_chunks_equals_stdlib(session, db_path, small_chunks):
    fill(session)
    sql = "SELECT id, k, txt, f, b FROM t ORDER BY id"
    _core._stream_chunks()
    result = session.execute(sql)
    assert _core._stream_chunks() == ROWS // CHUNK  # really read in chunks
    assert len(result) == ROWS
    assert result.columns == ("id", "k", "txt", "f", "b")
    assert result.first()[0] == 1
    assert [tuple(r) for r in result.fetchall()] == stdlib_rows(db_path, sql)
    assert result.fetchone() is None


def test_repeated_values_across_a_chunk_boundary(session, db_path, small_chunks):
    """rowbuf.c and result.c share a value equal to the previous row's: the first
    row of a chunk has no previous row in the buffer and must not borrow one."""
    fill(session, 3 * CHUNK)
    sql = "SELECT k, 'same', txt FROM t ORDER BY id"
    rows = session.execute(sql).all()
    assert [tuple(r) for r in rows] == stdlib_rows(db_path, sql)


def test_mappings_and_empty_results_keep_their_columns(session, small_chunks):
    fill(session, 2500)
    res = session.execute("SELECT id AS n, txt FROM t WHERE id > ? ORDER BY id", (10,))
    maps = res.mappings().all()
    assert len(maps) == 2490 and maps[0]["n"] == 11 and maps[-1]["n"] == 2500
    empty = session.execute("SELECT id, txt FROM t WHERE id < 0")
    assert len(empty) == 0 and empty.columns == ("id", "txt") and empty.first() is None


def test_nested_over_many_chunks_equals_the_join(session, db_path, small_chunks):
    fill(session, 20_000)
    session.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT)")
    session.executemany("INSERT INTO p VALUES (?, ?)",
                        ((k, f"parent {k}") for k in range(0, 20_000 // 7 + 1)))
    session.commit()
    parents = "SELECT id, name FROM p ORDER BY id"
    children = "SELECT k, id, txt FROM t ORDER BY k, id"
    _core._stream_chunks()
    rows = session.execute_nested(parents, children, ("name", "id", "txt")).all()
    assert _core._stream_chunks() >= 20
    expected = stdlib_rows(db_path, "SELECT p.name, t.id, t.txt FROM p JOIN t ON t.k = p.id "
                                    "ORDER BY t.k, t.id")
    assert [tuple(r) for r in rows] == expected
    # A parent's value is built once and shared by its children, across chunks too.
    by_parent = {}
    for r in rows:
        assert by_parent.setdefault(r[0], r[0]) is r[0]
    assert not session.in_transaction  # the read transaction ended


def test_nested_error_in_a_later_chunk_ends_the_read_transaction(session, small_chunks):
    fill(session, 5000)
    session.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT)")
    session.executemany("INSERT INTO p VALUES (?, ?)", ((k, "x") for k in range(0, 400)))
    session.commit()
    # Parents stop at k = 399: children of later parents (rows past the 2,793rd)
    # have no parent, found only in a later chunk.
    with pytest.raises(ProgrammingError, match="has no parent row"):
        session.execute_nested("SELECT id, name FROM p ORDER BY id",
                               "SELECT k, txt FROM t ORDER BY k, id", ("name", "txt"))
    assert not session.in_transaction
    assert session.execute("SELECT count(*) FROM t").scalar() == 5000


def test_chunked_executemany_stores_every_row(session, db_path, small_chunks):
    n = 10 * CHUNK + 7
    result = session.executemany("INSERT INTO t (id, txt) VALUES (:id, :txt)",
                                 ({"id": i, "txt": f"r{i}", "unused": 1} for i in range(n)))
    assert result.rowcount == n
    assert result.lastrowid == n - 1
    session.commit()
    assert stdlib_rows(db_path, "SELECT count(*), sum(id) FROM t") == [(n, n * (n - 1) // 2)]


def test_first_mapping_in_a_later_chunk(session, db_path, small_chunks):
    """The parameter names are looked up on the first mapping row; when it comes
    in a later chunk, the statement is already this call's, mid-batch."""
    rows = [(i, f"r{i}") if i < CHUNK + 500 else {"id": i, "txt": f"r{i}"}
            for i in range(3 * CHUNK)]
    session.executemany("INSERT INTO t (id, txt) VALUES (:id, :txt)", rows)
    session.commit()
    assert stdlib_rows(db_path, "SELECT count(*), max(txt) FROM t") == [(3 * CHUNK, "r999")]


def test_a_late_conversion_failure_undoes_the_whole_executemany(session, db_path, small_chunks):
    """Before chunking, every parameter set was converted before any ran: a bad
    value anywhere left no row of the call. A failure in a later chunk undoes the
    earlier chunks (a savepoint), and keeps the transaction's other writes."""
    session.begin()
    session.execute("INSERT INTO t (id, txt) VALUES (-1, 'before')")
    rows = [(i, f"r{i}", 1.0) for i in range(5 * CHUNK)]
    rows[-3] = (rows[-3][0], rows[-3][1], math.nan)
    with pytest.raises(ProgrammingError, match=rf"parameter set {5 * CHUNK - 2}\b"):
        session.executemany("INSERT INTO t (id, txt, f) VALUES (?, ?, ?)", rows)
    assert session.in_transaction
    session.commit()
    assert stdlib_rows(db_path, "SELECT id, txt FROM t") == [(-1, "before")]


def test_a_late_failing_row_leaves_no_rows(db_path, small_chunks):
    """A constraint failure late in a chunked batch, under the session's context
    manager, rolls back every row, as without chunks."""
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    rows = [(i, f"v{i}") for i in range(8 * CHUNK)]
    rows[-1] = (rows[-1][0], None)
    with pytest.raises(Exception, match="NOT NULL"):
        with get_session() as s:
            s.executemany("INSERT INTO u VALUES (?, ?)", rows)
    assert stdlib_rows(db_path, "SELECT count(*) FROM u") == [(0,)]
    with get_session() as s:  # the session's connection went back usable
        s.executemany("INSERT INTO u VALUES (?, ?)", rows[:-1])
    assert stdlib_rows(db_path, "SELECT count(*) FROM u") == [(8 * CHUNK - 1,)]


def test_a_generator_that_raises_midway_undoes_the_call(session, db_path, small_chunks):
    def params():
        for i in range(3 * CHUNK):
            yield (i, "x")
        raise RuntimeError("the source broke")

    session.begin()
    with pytest.raises(RuntimeError, match="the source broke"):
        session.executemany("INSERT INTO t (id, txt) VALUES (?, ?)", params())
    session.commit()
    assert stdlib_rows(db_path, "SELECT count(*) FROM t") == [(0,)]


def test_outside_a_transaction_a_failed_conversion_leaves_none_open(session, db_path,
                                                                    small_chunks):
    rows = [(i, "x") for i in range(3 * CHUNK)] + [(3 * CHUNK, math.nan)]
    with pytest.raises(ProgrammingError, match="NaN"):
        session.executemany("INSERT INTO t (id, txt) VALUES (?, ?)", rows)
    assert not session.in_transaction  # the write transaction the call opened is gone
    assert stdlib_rows(db_path, "SELECT count(*) FROM t") == [(0,)]


def test_the_session_is_this_call_s_until_it_ends(session, small_chunks):
    """Between chunks the session lock is free (Python builds rows); another
    thread's call on the same session waits for the whole call, so it never
    runs on the connection in the middle of a statement."""
    fill(session, 20 * CHUNK)
    errors = []
    done = threading.Event()

    def writer():
        try:
            while not done.is_set():
                session.execute("UPDATE t SET k = k WHERE id = 1")
                session.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(5):
            rows = session.execute("SELECT id FROM t ORDER BY id").all()
            assert [r[0] for r in rows] == list(range(1, 20 * CHUNK + 1))
    finally:
        done.set()
        t.join()
    assert errors == []


def test_the_time_limit_stops_a_query_that_returns_rows_forever(session, small_chunks):
    """Rows of an endless query are handed over chunk after chunk; the statement's
    clock counts the stepping only, and still stops it. The session is usable after
    (the call ended: no thread waits for it)."""
    session.statement_timeout = 0.05
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT i, 'row' FROM n")
    _core._stream_chunks()
    with pytest.raises(StatementTimeoutError):
        session.execute(endless)
    assert _core._stream_chunks() >= 2  # stopped after several chunks
    session.statement_timeout = None
    assert session.execute("SELECT 1").scalar() == 1
    assert not session.in_transaction


def test_chunk_rows_hook_checks_its_argument():
    with pytest.raises(ValueError):
        _core._stream_chunk_rows(0)
    previous = _core._stream_chunk_rows(7)
    assert _core._stream_chunk_rows(previous) == 7
