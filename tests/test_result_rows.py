"""What a Result keeps once its rows are taken: ``all()`` hands its own list to the
caller (no copy) and ``first()``, ``one()``, ``scalar()`` and ``len()`` still see every
row; rows are compact (one shared shape pointer per row)."""

from __future__ import annotations

import pickle
import sys

import pytest

from promptlab.sqlite import ProgrammingError, get_session
from promptlab.sqlite.database_manager import db_manager


@pytest.fixture
def session(db_path):
    db_manager.initialize_database(db_path)
    s = get_session()
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT)")
    s.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(1, 6)])
    s.commit()
    yield s
    s.close()


def test_all_then_first_one_scalar_len(session):
    result = session.execute("SELECT id, txt FROM t ORDER BY id")
    rows = result.all()
    assert [r.id for r in rows] == [1, 2, 3, 4, 5]
    rows.clear()  # the caller's list: the Result does not depend on it
    assert len(result) == 5
    assert result.first().id == 1
    assert result.scalar() == 1
    assert result.all() == [] and result.fetchone() is None
    with pytest.raises(ProgrammingError, match="returned 5"):
        result.one()
    one = session.execute("SELECT txt FROM t WHERE id = 3")
    assert [tuple(r) for r in one.fetchall()] == [("row 3",)]
    assert one.one().txt == "row 3" and one.scalar() == "row 3"


def test_all_after_reading_some_rows_returns_the_rest(session):
    result = session.execute("SELECT id FROM t ORDER BY id")
    assert result.fetchone().id == 1
    assert [r.id for r in result.all()] == [2, 3, 4, 5]
    assert result.first().id == 1 and len(result) == 5


def test_mappings_of_a_fresh_result_and_the_rows_it_leaves(session):
    result = session.execute("SELECT id, txt FROM t ORDER BY id")
    maps = result.mappings().all()
    assert [dict(m) for m in maps] == [{"id": i, "txt": f"row {i}"} for i in range(1, 6)]
    assert result.first().txt == "row 1" and len(result) == 5


def test_rows_are_smaller_than_tuples_and_still_pickle(session):
    row = session.execute("SELECT id, txt, id AS id FROM t WHERE id = 2").one()
    assert sys.getsizeof(row) <= sys.getsizeof((1, "a", 1)) - 8
    assert row.id == 2 and row["id"] == 2 and row._fields == ("id", "txt", "id")
    again = pickle.loads(pickle.dumps(row))
    assert again == row and again.id == 2 and again._fields == row._fields
    m = session.execute("SELECT id, txt FROM t WHERE id = 4").mappings().one()
    assert pickle.loads(pickle.dumps(m)) == {"id": 4, "txt": "row 4"}
