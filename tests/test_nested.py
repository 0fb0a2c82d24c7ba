"""Session.execute_nested: a one-to-many join run as two queries in one read
snapshot and joined in C (what LocalTracer.get_experiments uses)."""

from __future__ import annotations

import threading

import pytest

from factories import make_config, make_summary
from promptlab.sqlite import ProgrammingError, get_session
from promptlab.sqlite.database_manager import db_manager
from promptlab.tracer.local_tracer import LocalTracer

PARENTS = "SELECT id, name, note FROM parent ORDER BY id"
CHILDREN = ("SELECT p.id, c.label, c.size FROM parent p "
            "JOIN child c ON c.parent_id = p.id ORDER BY p.id, c.id")


@pytest.fixture
def session(db_path, at_head):
    db_manager.initialize_database(at_head(db_path))
    s = get_session()
    s.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT, note TEXT)")
    s.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER, label TEXT, "
              "size REAL)")
    s.executemany("INSERT INTO parent VALUES (?, ?, ?)",
                  [(1, "one", "a long note " * 20), (2, "two", None), (3, "lonely", "x")])
    s.executemany("INSERT INTO child (parent_id, label, size) VALUES (?, ?, ?)",
                  [(1, "a", 1.5), (1, "b", None), (2, "c", 3.0), (1, "d", 4.0)])
    s.commit()
    yield s
    s.close()


def test_rows_take_columns_from_parent_and_child_in_the_given_order(session):
    result = session.execute_nested(PARENTS, CHILDREN, ("label", "name", "size", "note"))
    assert result.columns == ("label", "name", "size", "note")
    rows = result.all()
    assert [tuple(r) for r in rows] == [
        ("a", "one", 1.5, "a long note " * 20),
        ("b", "one", None, "a long note " * 20),
        ("d", "one", 4.0, "a long note " * 20),
        ("c", "two", 3.0, None),
    ]  # parent 3 has no child: no row, as an inner join
    assert rows[0].note is rows[2].note  # a parent's values are built once, shared
    assert rows[3]._asdict() == {"label": "c", "name": "two", "size": 3.0, "note": None}
    assert result.rowcount == -1


def test_mappings_true_gives_row_mappings(session):
    from promptlab.sqlite import RowMapping

    rows = session.execute_nested(PARENTS, CHILDREN, ("name", "label"), mappings=True).all()
    assert all(isinstance(r, RowMapping) for r in rows)
    assert [dict(r) for r in rows] == [{"name": "one", "label": "a"},
                                       {"name": "one", "label": "b"},
                                       {"name": "one", "label": "d"},
                                       {"name": "two", "label": "c"}]


def test_no_children_gives_no_rows(session):
    session.execute("DELETE FROM child")
    result = session.execute_nested(PARENTS, CHILDREN, ("name", "label"))
    assert result.all() == [] and result.columns == ("name", "label")


def test_unknown_column_and_key_column_are_refused(session):
    with pytest.raises(ProgrammingError, match='no query returns a column named "missing"'):
        session.execute_nested(PARENTS, CHILDREN, ("name", "missing"))
    with pytest.raises(ProgrammingError, match='"id"'):  # the key is not an output column
        session.execute_nested(PARENTS, CHILDREN, ("id",))


def test_children_out_of_the_parents_order_are_refused(session):
    reversed_children = CHILDREN.replace("ORDER BY p.id", "ORDER BY p.id DESC")
    with pytest.raises(ProgrammingError, match="no parent row before it"):
        session.execute_nested(PARENTS, reversed_children, ("name", "label"))


def test_the_join_key_must_be_an_integer(session):
    with pytest.raises(ProgrammingError, match="join key .* must be an integer"):
        session.execute_nested("SELECT 'k', name FROM parent", "SELECT 'k', label FROM child",
                               ("name", "label"))


def test_bad_arguments(session):
    with pytest.raises(TypeError):
        session.execute_nested(PARENTS, CHILDREN, ["name"])
    with pytest.raises(TypeError, match="column names must be str"):
        session.execute_nested(PARENTS, CHILDREN, ("name", 3))
    with pytest.raises(ProgrammingError, match="no such table"):
        session.execute_nested(PARENTS, "SELECT x FROM nowhere", ("name",))
    assert not session.in_transaction  # the read transaction was ended


def test_inside_a_write_transaction_it_sees_the_session_s_own_writes(session):
    session.begin()
    session.execute("INSERT INTO child (parent_id, label, size) VALUES (3, 'e', 5.0)")
    rows = session.execute_nested(PARENTS, CHILDREN, ("name", "label")).all()
    assert ("lonely", "e") in [tuple(r) for r in rows]
    assert session.in_transaction  # still the caller's transaction
    session.rollback()


def test_one_snapshot_while_experiments_are_written(db_path):
    """A commit between the two queries would give results whose experiment the
    first query did not see (execute_nested would refuse them): the read holds one
    snapshot, so readers never fail and always see whole experiments."""
    tracer = LocalTracer({"type": "local", "db_file": str(db_path)})
    done = threading.Event()
    errors, reads = [], []

    def write():
        for i in range(300):
            tracer.trace_experiment(make_config(), make_summary(f"w-{i}", 7))
        done.set()

    def read():
        try:
            while not done.is_set():
                rows = tracer.get_experiments()
                per_experiment = {}
                for r in rows:
                    per_experiment[r.experiment_id] = per_experiment.get(r.experiment_id, 0) + 1
                assert set(per_experiment.values()) <= {7}
                reads.append(len(rows))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            done.wait()

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read)
                                                  for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(reads) > 10  # the readers really overlapped the writer
    assert len(tracer.get_experiments()) == 300 * 7
