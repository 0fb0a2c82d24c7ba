"""Session, Result and Row: statements, parameters, transactions, rows."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest

from promptlab.sqlite import (
    IntegrityError,
    ProgrammingError,
    Result,
    Row,
    Session,
    get_session,
)
from promptlab.sqlite.database_manager import db_manager


@pytest.fixture
def session(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    s = get_session()
    yield s
    s.close()


def count(path, table="assets"):
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_types():
    assert Session.__module__ == "promptlab.sqlite"
    with pytest.raises(TypeError):
        Session()
    with pytest.raises(TypeError):
        Row()


def test_qmark_and_named_parameters(session):
    session.execute("INSERT INTO assets (asset_name, asset_version, asset_type) VALUES (?, ?, ?)",
                    ("qmark", 1, "dataset"))
    session.execute("INSERT INTO assets (asset_name, asset_version, asset_type) "
                    "VALUES (:name, :version, :type)",
                    {"type": "prompt_template", "version": 2, "name": "named", "unused": object()})
    rows = session.execute("SELECT asset_name, asset_version, asset_type FROM assets "
                           "ORDER BY asset_version").all()
    assert rows == [("qmark", 1, "dataset"), ("named", 2, "prompt_template")]


def test_value_types_round_trip(session):
    session.execute("CREATE TABLE t (v)")
    values = [None, 0, -1, 2**63 - 1, -(2**63), 1.5, float("inf"), "", "naïve ☃ 日本",
              "x" * 1_000_000, b"", b"\x00\xff" * 1000, True, False]
    session.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in values])
    got = [r.v for r in session.execute("SELECT v FROM t ORDER BY rowid")]
    assert got == [1 if v is True else 0 if v is False else v for v in values]
    assert type(got[-1]) is int and type(got[10]) is bytes


def test_bytearray_memoryview_and_datetime_parameters(session):
    session.execute("CREATE TABLE t (v)")
    when = datetime.datetime(2025, 3, 1, 12, 30, 45, 123456)
    session.execute("INSERT INTO t VALUES (?)", (bytearray(b"ab"),))
    session.execute("INSERT INTO t VALUES (?)", (memoryview(b"cd"),))
    session.execute("INSERT INTO t VALUES (?)", (when,))
    session.execute("INSERT INTO t VALUES (?)", (when.date(),))
    assert [r[0] for r in session.execute("SELECT v FROM t ORDER BY rowid")] == [
        b"ab", b"cd", "2025-03-01 12:30:45.123456", "2025-03-01"]


DATES_FROM_THREADS = """
import datetime, sys, threading
from promptlab.sqlite import get_session
barrier, got = threading.Barrier(8), []
def bind(i):
    with get_session(sys.argv[1]) as s:
        barrier.wait()
        got.append(s.execute("SELECT ?", (datetime.date(2025, 1, 1 + i),)).scalar())
threads = [threading.Thread(target=bind, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(sorted(got))
"""


def test_first_dates_bound_by_threads_at_once(tmp_path):
    # datetime.date is looked up on the first unusual parameter (not at import): eight
    # threads that bind their first date together all get it converted.
    from helpers import python_code_process

    proc = python_code_process(DATES_FROM_THREADS, tmp_path / "d.db")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == str([f"2025-01-0{1 + i}" for i in range(8)])


def test_dicts_and_lists_are_stored_as_json_text(session):
    value = {"metric": "f1", "scores": [1, 2.5, None], "naïve": True}
    assert session.execute("SELECT ?", (value,)).scalar() == json.dumps(value)
    assert session.execute("SELECT json_extract(?, '$[1].a')", ([0, {"a": "x"}],)).scalar() == "x"
    rows = [{"v": [i]} for i in range(3)]
    session.execute("CREATE TABLE t (v TEXT)")
    session.executemany("INSERT INTO t VALUES (:v)", rows)
    assert [r.v for r in session.execute("SELECT v FROM t")] == ["[0]", "[1]", "[2]"]


def test_unsupported_parameter_type_is_a_clear_error(session, db_path):
    with pytest.raises(ProgrammingError, match="'set'.*JSON text") as info:
        session.execute("SELECT ?", ({"a", "b"},))
    assert info.value.path == str(db_path) and str(db_path) in str(info.value)
    with pytest.raises(ProgrammingError, match="integer 18446744073709551616 does not fit"):
        session.execute("SELECT ?", (2**64,))
    with pytest.raises(ProgrammingError, match="executemany\\(\\), parameter set 2: parameter 1 "
                                               "has type 'object'") as info:
        session.executemany("SELECT ?", [(1,), (object(),)])
    assert str(db_path) in str(info.value)


def test_wrong_parameter_counts_and_names(session):
    with pytest.raises(ProgrammingError, match="2 parameter"):
        session.execute("SELECT ?, ?", (1,))
    with pytest.raises(ProgrammingError, match=":missing"):
        session.execute("SELECT :present, :missing", {"present": 1})
    with pytest.raises(ProgrammingError, match="positional"):
        session.execute("SELECT ?", {"a": 1})
    with pytest.raises(TypeError, match="not a string"):
        session.execute("SELECT ?", "x")


def test_one_statement_per_execute(session):
    with pytest.raises(ProgrammingError, match="one statement"):
        session.execute("SELECT 1; SELECT 2")
    assert session.execute("SELECT 1; -- trailing comment\n ;").scalar() == 1


def test_bad_sql_is_a_programming_error_naming_the_file(session, db_path):
    with pytest.raises(ProgrammingError) as info:
        session.execute("SELEC nonsense")
    assert str(db_path) in str(info.value)
    assert info.value.sqlite_errorcode == 1


def test_row_access(session):
    session.execute("INSERT INTO assets (asset_name, asset_version, asset_description) "
                    "VALUES ('n', 3, NULL)")
    row = session.execute("SELECT asset_name, asset_version, asset_description FROM assets").one()
    assert isinstance(row, Row)
    assert row.asset_name == "n" and row["asset_version"] == 3 and row[2] is None
    assert row[-1] is None and row[0:2] == ("n", 3)
    assert len(row) == 3 and list(row) == ["n", 3, None] and "n" in row
    assert row.keys() == ["asset_name", "asset_version", "asset_description"]
    assert row._fields == ("asset_name", "asset_version", "asset_description")
    assert row._asdict() == {"asset_name": "n", "asset_version": 3, "asset_description": None}
    assert dict(row) == row._asdict()
    assert row == ("n", 3, None) and hash(row) == hash(("n", 3, None))
    assert repr(row) == "Row(asset_name='n', asset_version=3, asset_description=None)"
    with pytest.raises(AttributeError):
        row.nope
    with pytest.raises(KeyError, match="nope"):
        row["nope"]
    with pytest.raises(IndexError):
        row[3]


def test_result_methods(session):
    session.executemany("INSERT INTO assets (asset_name, asset_version) VALUES (?, ?)",
                        [("a", i) for i in range(5)])
    result = session.execute("SELECT asset_version FROM assets ORDER BY asset_version")
    assert isinstance(result, Result)
    assert result.columns == ("asset_version",) and result.rowcount == -1 and len(result) == 5
    assert result.first() == (0,) and result.scalar() == 0
    assert result.fetchone() == (0,)
    assert next(result) == (1,)
    assert [r[0] for r in result.fetchall()] == [2, 3, 4]
    assert result.fetchone() is None and result.fetchall() == []
    with pytest.raises(ProgrammingError, match="exactly one row"):
        result.one()
    assert session.execute("SELECT 1 WHERE 0").scalar() is None
    assert session.execute("SELECT 1 WHERE 0").first() is None


def test_rowcount_and_lastrowid(session):
    r = session.executemany("INSERT INTO assets (asset_name, asset_version) VALUES (?, ?)",
                            [("a", i) for i in range(7)])
    assert r.rowcount == 7 and r.lastrowid == 7
    r = session.execute("UPDATE assets SET asset_type = 'dataset' WHERE asset_version < 3")
    assert r.rowcount == 3
    r = session.execute("DELETE FROM assets")
    assert r.rowcount == 7
    assert session.executemany("INSERT INTO assets (asset_name, asset_version) VALUES (?, ?)",
                               []).rowcount == 0


def test_keys_the_statement_does_not_name_are_never_read(session):
    class Strict(dict):
        def __getitem__(self, key):
            if key not in ("asset_name", "asset_version"):
                raise AssertionError(f"read {key!r}")
            return super().__getitem__(key)

    rows = [{"asset_name": "x", "asset_version": 1, "extra": {object()}, "other": object()},
            Strict(asset_name="y", asset_version=2, secret={1, 2})]
    session.executemany("INSERT INTO assets (asset_name, asset_version) "
                        "VALUES (:asset_name, :asset_version)", rows)
    assert session.execute("SELECT count(*) FROM assets").scalar() == 2
    with pytest.raises(ProgrammingError, match=r":asset_version \(parameter set 2\)"):
        session.executemany("INSERT INTO assets (asset_name, asset_version) "
                            "VALUES (:asset_name, :asset_version)",
                            [{"asset_name": "z", "asset_version": 3}, {"asset_name": "w"}])


def test_executemany_with_mappings_and_generators(session):
    rows = ({"asset_name": f"g{i}", "asset_version": i, "extra": [1]} for i in range(100))
    session.executemany("INSERT INTO assets (asset_name, asset_version) "
                        "VALUES (:asset_name, :asset_version)", rows)
    assert session.execute("SELECT count(*) FROM assets").scalar() == 100


def test_writes_are_uncommitted_until_commit(session, db_path):
    session.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    assert session.in_transaction is True
    assert count(db_path) == 0
    session.commit()
    assert session.in_transaction is False
    assert count(db_path) == 1
    session.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 2)")
    session.rollback()
    assert count(db_path) == 1


def test_reads_do_not_open_a_transaction(session):
    session.execute("SELECT count(*) FROM assets")
    assert session.in_transaction is False


def test_begin_makes_read_then_write_atomic(session, db_path):
    session.begin()
    assert session.in_transaction is True
    n = session.execute("SELECT count(*) FROM assets").scalar()
    # Another connection cannot write meanwhile: the write lock is held.
    other = sqlite3.connect(db_path, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('x', 9)")
    other.close()
    session.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', ?)", (n,))
    session.commit()
    with pytest.raises(ProgrammingError, match="already open"):
        session.begin()
        session.begin()
    session.rollback()


def test_context_manager_commits_or_rolls_back(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('kept', 1)")
    assert s.closed is True
    with pytest.raises(ZeroDivisionError):
        with get_session() as s:
            s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('dropped', 1)")
            1 / 0
    assert s.closed is True
    with get_session() as s:
        assert [r[0] for r in s.execute("SELECT asset_name FROM assets")] == ["kept"]


def test_integrity_error(session):
    session.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('dup', 1)")
    with pytest.raises(IntegrityError, match="UNIQUE"):
        session.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('dup', 1)")
    # The statement failed; the transaction with the first row is still open.
    session.commit()
    assert session.execute("SELECT count(*) FROM assets").scalar() == 1


def test_foreign_keys_are_enforced(session):
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        session.execute("INSERT INTO experiment_result (experiment_id) VALUES ('missing')")


def test_closed_session(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    s = get_session()
    s.close()
    s.close()  # idempotent
    for call in (lambda: s.execute("SELECT 1"), s.commit, s.rollback, s.begin):
        with pytest.raises(ProgrammingError, match="closed"):
            call()


def test_close_rolls_back_uncommitted_work(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    s = get_session()
    s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    s.close()
    assert count(db_path) == 0
    s = get_session()
    s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    del s  # dropped without close: rolled back, connection returned
    assert count(db_path) == 0


def test_sessions_survive_reset(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    s = get_session()
    db_manager.reset_initialization()
    s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    s.commit()
    s.close()
    assert count(db_path) == 1


def test_many_sessions_reuse_pooled_connections(db_path, at_head):
    import os

    db_manager.initialize_database(at_head(db_path))
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(500):
        with get_session() as s:
            s.execute("SELECT 1")
    assert len(os.listdir("/proc/self/fd")) <= fds + 3


def test_wal_foreign_keys_and_busy_timeout(session):
    assert session.execute("PRAGMA journal_mode").scalar() == "wal"
    assert session.execute("PRAGMA foreign_keys").scalar() == 1
    assert session.execute("PRAGMA busy_timeout").scalar() >= 5000


def test_column_names_follow_schema_changes(session):
    session.execute("CREATE TABLE t (a INTEGER)")
    session.execute("INSERT INTO t VALUES (1)")
    assert session.execute("SELECT * FROM t").one()._asdict() == {"a": 1}
    session.execute("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'")
    row = session.execute("SELECT * FROM t").one()
    assert row._asdict() == {"a": 1, "b": "x"} and row.b == "x"
    assert session.execute("SELECT a AS b, a AS b FROM t").one().keys() == ["b", "b"]


def test_a_list_changed_while_its_values_are_converted(session):
    """str() of a date subclass empties the parameter list mid-conversion."""
    params = []

    class Sneaky(datetime.date):
        def __str__(self):
            params.clear()
            return "2020-01-01"

    params.extend([Sneaky(2020, 1, 1), "a"])
    assert session.execute("SELECT ?, ?", params).one() == ("2020-01-01", "a")


def test_empty_texts_and_blobs_in_consecutive_rows(session):
    assert session.execute("SELECT '' UNION ALL SELECT ''").all() == [("",), ("",)]
    assert session.execute("SELECT x'' UNION ALL SELECT x''").all() == [(b"",), (b"",)]


def test_mappings_give_rows_as_read_only_mappings(session):
    from collections.abc import Mapping

    from promptlab.sqlite import RowMapping

    result = session.execute("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, NULL")
    mapped = result.mappings()
    assert result.all() == []  # the rows were handed over
    assert mapped.columns == ("a", "b")
    first, second = mapped.all()
    assert isinstance(first, RowMapping) and isinstance(first, Mapping)
    assert list(first) == ["a", "b"] and len(first) == 2
    assert first["a"] == 1 and first.b == "x" and second["b"] is None
    assert dict(first) == {"a": 1, "b": "x"} and first == {"a": 1, "b": "x"}
    assert first != {"a": 1} and first != second
    assert "a" in first and 1 not in first and "z" not in first
    assert first.keys() == ["a", "b"] and first.values() == [1, "x"]
    assert first.items() == [("a", 1), ("b", "x")]
    assert first.get("b") == "x" and first.get("z") is None and first.get("z", 7) == 7
    assert repr(first) == "{'a': 1, 'b': 'x'}"
    with pytest.raises(KeyError):
        first["z"]
    with pytest.raises(KeyError):
        first[0]
    with pytest.raises(TypeError):
        hash(first)
    with pytest.raises(TypeError):
        RowMapping()
