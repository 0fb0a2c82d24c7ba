"""Session.execute_iter / execute_nested_iter and LocalTracer.iter_experiments: rows
built a chunk at a time while the caller iterates (csrc/python/result.c, RowIterator),
and the paging/filter arguments of get_experiments (promptlab/store/experiments.py).

Chunks are made small (``_core._stream_chunk_rows``) so that a few thousand rows span
many of them. Memory is checked in child processes against the list form (a bound in
MiB, never a timing)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from helpers import NEUTRAL_CWD
from promptlab import _core
from promptlab.sqlite import ProgrammingError, RowIterator, get_session
from promptlab.sqlite.database_manager import db_manager
from promptlab.store import experiments as store
from promptlab.tracer.local_tracer import LocalTracer

ROWS = 5_000
CHUNK = 100


@pytest.fixture
def small_chunks():
    previous = _core._stream_chunk_rows(CHUNK)
    yield CHUNK
    _core._stream_chunk_rows(previous)


@pytest.fixture
def session(db_path):
    db_manager.initialize_database(db_path)
    s = get_session()
    s.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT)")
    s.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER, txt TEXT, f REAL)")
    s.executemany("INSERT INTO p VALUES (?, ?)", [(i, f"parent {i}") for i in range(1, 51)])
    s.executemany("INSERT INTO c VALUES (?, ?, ?, ?)",
                  ((i, 1 + i % 50, f"child {i} " + "é" * (i % 7), i / 4) for i in range(ROWS)))
    s.commit()
    yield s
    s.close()


CHILDREN = "SELECT id, txt, f FROM c ORDER BY id"
NESTED = ("SELECT id AS pid, name FROM p WHERE id >= :low ORDER BY id",
          "SELECT pid, id, txt FROM c WHERE pid >= :low ORDER BY pid, id")


def test_execute_iter_gives_the_rows_of_execute(session, small_chunks):
    expected = [tuple(r) for r in session.execute(CHILDREN)]
    it = session.execute_iter(CHILDREN)
    assert isinstance(it, RowIterator) and iter(it) is it
    got = [tuple(r) for r in it]
    assert got == expected and len(got) == ROWS
    assert next(it, None) is None  # exhausted stays exhausted
    maps = [dict(m) for m in session.execute_iter(CHILDREN + " LIMIT 3", mappings=True)]
    assert maps == [{"id": i, "txt": f"child {i} " + "é" * (i % 7), "f": i / 4}
                    for i in range(3)]
    params = [r.id for r in session.execute_iter("SELECT id FROM c WHERE id < ?", (250,))]
    assert params == list(range(250))
    assert list(session.execute_iter("SELECT id FROM c WHERE id < 0")) == []


def test_execute_nested_iter_gives_the_rows_of_execute_nested(session, small_chunks):
    cols = ("name", "id", "txt")
    expected = [tuple(r) for r in session.execute_nested(*NESTED, cols, {"low": 7})]
    assert len(expected) == sum(1 for i in range(ROWS) if 1 + i % 50 >= 7)
    assert [tuple(r) for r in session.execute_nested_iter(*NESTED, cols, {"low": 7})] == expected
    maps = session.execute_nested_iter(*NESTED, cols, {"low": 50}, mappings=True)
    assert [dict(m) for m in maps] == [{"name": "parent 50", "id": i, "txt": f"child {i} "
                                        + "é" * (i % 7)} for i in range(49, ROWS, 50)]


def test_nested_queries_must_take_the_same_parameters(session):
    with pytest.raises(ProgrammingError, match="same parameters"):
        session.execute_nested("SELECT id, name FROM p WHERE id > :a",
                               "SELECT pid, txt FROM c WHERE pid > :b", ("name", "txt"),
                               {"a": 1, "b": 1})
    assert session.execute("SELECT count(*) FROM p").scalar() == 50  # usable afterwards


def test_errors_surface_at_the_call(session):
    with pytest.raises(Exception, match="no such table"):
        session.execute_iter("SELECT * FROM missing")
    with pytest.raises(ProgrammingError, match="no query returns a column"):
        session.execute_nested_iter(*NESTED, ("nope",), {"low": 1})
    assert session.execute("SELECT 1").scalar() == 1


def test_the_session_belongs_to_an_open_iterator_until_it_is_closed(session, small_chunks):
    it = session.execute_iter(CHILDREN)
    assert next(it).id == 0
    with pytest.raises(ProgrammingError, match="middle of a call on this thread"):
        session.execute("SELECT 1")
    it.close()
    assert next(it, None) is None
    assert session.execute("SELECT count(*) FROM c").scalar() == ROWS
    with session.execute_iter(CHILDREN) as it2:
        assert next(it2).id == 0
    assert session.execute("SELECT 2").scalar() == 2
    it3 = session.execute_nested_iter(*NESTED, ("name", "txt"), {"low": 1})
    next(it3)
    assert session.in_transaction  # the read snapshot
    del it3  # dropping it ends the query and the snapshot
    assert not session.in_transaction
    session.execute("INSERT INTO p VALUES (100, 'after')")
    session.commit()


def test_an_iterator_that_read_its_last_chunk_has_released_the_session(session):
    it = session.execute_iter("SELECT id FROM c WHERE id < 5")  # one chunk, all of it
    assert next(it).id == 0
    assert session.execute("SELECT 3").scalar() == 3
    assert [r.id for r in it] == [1, 2, 3, 4]


def test_another_thread_waits_for_the_iterator_and_cannot_read_it(session, small_chunks):
    it = session.execute_iter(CHILDREN)
    first = next(it)
    outcome = {}
    started = threading.Event()

    def other():
        try:
            next(it)
        except ProgrammingError as exc:
            outcome["next"] = str(exc)
        started.set()
        outcome["count"] = session.execute("SELECT count(*) FROM c").scalar()  # waits

    t = threading.Thread(target=other)
    t.start()
    assert started.wait(10)
    t.join(0.3)
    assert t.is_alive() and "count" not in outcome  # waiting while the iterator is open
    rest = [r.id for r in it]
    t.join(10)
    assert not t.is_alive()
    assert "another thread" in outcome["next"]
    assert outcome["count"] == ROWS
    assert [first.id] + rest == list(range(ROWS))


def test_close_and_drop_from_another_thread_release_the_session(session, small_chunks):
    for how in ("close", "drop"):
        holder = [session.execute_iter(CHILDREN)]
        next(holder[0])

        def end(how=how, holder=holder):
            if how == "close":
                holder[0].close()
            holder.clear()

        t = threading.Thread(target=end)
        t.start()
        t.join(10)
        assert session.execute("SELECT count(*) FROM p").scalar() == 50


def test_many_threads_each_with_its_own_session_and_iterator(db_path, small_chunks):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT)")
        s.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"t{i}") for i in range(3000)])
    barrier = threading.Barrier(6)
    sums, errors = [], []

    def reader(k):
        try:
            barrier.wait()
            with get_session() as s:
                for round_ in range(3):
                    it = s.execute_iter("SELECT id, txt FROM t ORDER BY id")
                    if (k + round_) % 2:
                        for _ in range(150):
                            next(it)
                        it.close()  # early close, then the session goes on
                    else:
                        sums.append(sum(r.id for r in it))
                    assert s.execute("SELECT count(*) FROM t").scalar() == 3000
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sums and set(sums) == {sum(range(3000))}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_iterator_opened_before_fork_is_refused_in_the_child(session, small_chunks):
    it = session.execute_iter(CHILDREN)
    next(it)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                for _ in range(CHUNK + 1):
                    next(it)
            except ProgrammingError as exc:
                code = 0 if "before fork" in str(exc) else 2
            del it
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len([r for r in it]) == ROWS - 1  # the parent's iterator goes on


# --- LocalTracer: iter_experiments and the paging/filter arguments ----------------------

def test_iter_experiments_and_paging_match_get_experiments(db_path, small_chunks):
    t = LocalTracer({"type": "local", "db_file": str(db_path)})
    with get_session(db_path) as s:
        s.executemany("INSERT INTO experiments (experiment_id, model, asset, user_id, created_at)"
                      " VALUES (?, '{}', '{}', 1, ?)",
                      [(f"exp-{e}", f"2026-01-01T00:00:{e:02d}") for e in range(7)])
        s.executemany("INSERT INTO experiment_result (experiment_id, dataset_record_id, "
                      "completion, prompt_tokens, completion_tokens, latency_ms, evaluation, "
                      "created_at) VALUES (?, ?, ?, 1, 2, 3.5, '[]', 'x')",
                      [(f"exp-{i % 7}", f"rec-{i}", f"c{i}") for i in range(1200)])
    full = [dict(r) for r in t.get_experiments()]
    assert len(full) == 1200
    assert [r["experiment_id"] for r in full[:1]] == ["exp-6"]  # newest first
    assert [dict(r) for r in t.iter_experiments()] == full
    for offset, limit in ((0, 1), (0, 250), (171, 100), (1150, 100), (1200, 5), (0, 0)):
        page = [dict(r) for r in t.get_experiments(limit=limit, offset=offset)]
        assert page == full[offset:offset + limit]
        assert [dict(r) for r in t.iter_experiments(limit=limit, offset=offset)] == page
    assert [dict(r) for r in t.get_experiments(offset=1000)] == full[1000:]
    one = [r for r in full if r["experiment_id"] == "exp-3"]
    assert [dict(r) for r in t.get_experiments("exp-3")] == one
    assert [dict(r) for r in t.iter_experiments("exp-3", limit=20, offset=10)] == one[10:30]
    assert t.get_experiments("missing") == []
    # pages walked one after the other give the whole list, in order
    walked, offset = [], 0
    while True:
        page = t.get_experiments(limit=97, offset=offset)
        if not page:
            break
        walked += [dict(r) for r in page]
        offset += len(page)
    assert walked == full
    assert store.experiment_rows_page(str(db_path), 5, 3) == full[5:8]
    for bad in ({"limit": -1}, {"offset": -2}, {"limit": "3"}, {"limit": True}):
        with pytest.raises(ValueError):
            t.get_experiments(**bad)
        with pytest.raises(ValueError):
            t.iter_experiments(**bad)


def test_iter_experiments_stopped_early_releases_its_session(db_path, small_chunks):
    t = LocalTracer({"type": "local", "db_file": str(db_path)})
    with get_session(db_path) as s:
        s.execute("INSERT INTO experiments (experiment_id, model, asset, user_id, created_at) "
                  "VALUES ('e', '{}', '{}', 1, 'x')")
        s.executemany("INSERT INTO experiment_result (experiment_id, dataset_record_id) "
                      "VALUES ('e', ?)", [(str(i),) for i in range(1000)])
    rows = t.iter_experiments()
    assert next(rows)["dataset_record_id"] == "0"
    rows.close()  # ends the query, the snapshot and the session
    with get_session(db_path) as s:  # a writer is not held back by a leftover snapshot
        s.execute("DELETE FROM experiment_result")
    assert t.get_experiments() == []
    assert list(t.iter_experiments()) == []


MEMORY_CHILD = textwrap.dedent("""
    import resource, sys
    from promptlab.tracer.local_tracer import LocalTracer
    tracer = LocalTracer({"type": "local", "db_file": sys.argv[1]})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[2] == "list":
        n = len(tracer.get_experiments())
    else:
        n = sum(1 for _ in tracer.iter_experiments())
    print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
""")
# Linux keeps a process's peak RSS (ru_maxrss) across exec, and a child starts with
# its parent's pages counted: a child of pytest would start at pytest's size and hide
# the rise. So the measuring process is the child of a fresh, small interpreter.
LAUNCH = ("import subprocess, sys; "
          "sys.exit(subprocess.run([sys.executable, '-c', *sys.argv[1:]]).returncode)")


def test_iterating_100k_rows_keeps_memory_bounded(db_path):
    t = LocalTracer({"type": "local", "db_file": str(db_path)})
    with get_session(db_path) as s:
        s.executemany("INSERT INTO experiments (experiment_id, model, asset, user_id, created_at)"
                      " VALUES (?, '{}', '{}', 1, ?)", [(f"e{e}", str(e)) for e in range(20)])
        s.executemany("INSERT INTO experiment_result (experiment_id, dataset_record_id, "
                      "completion, evaluation) VALUES (?, ?, ?, '[]')",
                      ((f"e{i % 20}", f"rec-{i:06d}", f"completion {i} " + "x" * 150)
                       for i in range(100_000)))
    del t
    rise = {}
    for form in ("list", "iter"):
        out = subprocess.run([sys.executable, "-c", LAUNCH, MEMORY_CHILD, str(db_path), form],
                             capture_output=True, text=True, timeout=120, check=True,
                             cwd=NEUTRAL_CWD)  # not the checkout: it has no compiled core
        n, kib = map(int, out.stdout.split())
        assert n == 100_000
        rise[form] = kib / 1024
    # The list holds 100k rows of ~200 bytes of text (~52 MiB in a release build); the
    # iterator one chunk (1,024 rows) at a time (~2.6 MiB). Relative, since sanitizer
    # builds multiply both (TSan's shadow memory: ~260 and ~17 MiB).
    assert rise["list"] > 25, rise
    assert rise["iter"] < rise["list"] / 8, rise
    if not _core._sanitize:
        assert rise["iter"] < 8, rise
