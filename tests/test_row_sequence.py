"""Row is a Sequence with a tuple's index() and count(); Result[Row] works at runtime."""

from __future__ import annotations

import collections.abc
import sys
import types

import pytest

import promptlab.sqlite  # registers Row as a Sequence, RowMapping as a Mapping
from promptlab import _core

SQL = "SELECT 1 AS a, 'x' AS b, 1 AS c, NULL AS d, 1.0 AS e"


@pytest.fixture
def row(tmp_path, at_head):
    db = at_head(tmp_path / "rows.db")
    _core.db_manager.initialize_database(db)
    with _core.db_manager.get_session(db) as s:
        return s.execute(SQL).one()


def test_row_is_a_registered_sequence(row):
    assert isinstance(row, collections.abc.Sequence)
    assert issubclass(promptlab.sqlite.Row, collections.abc.Sequence)
    assert not isinstance(row, collections.abc.MutableSequence)
    assert list(reversed(row)) == list(reversed(tuple(row)))


@pytest.mark.parametrize("args", [
    (1,), ("x",), (None,), (1.0,), (1, 1), (1, 2), (1, -3), (1, -100), (1, 0, 3),
    (1, 1, 3), (1, 0, -2), (1, 0, sys.maxsize), (1, -sys.maxsize * 4, sys.maxsize * 4),
    (True,),
])
def test_index_is_tuple_index(row, args):
    values = tuple(row)
    try:
        expected = values.index(*args)
    except ValueError:
        with pytest.raises(ValueError, match="not in row"):
            row.index(*args)
    else:
        assert row.index(*args) == expected


@pytest.mark.parametrize("args", [("x", 2), (1, 5), (1, 0, 0), (2,), ("a",)])
def test_index_missing_raises_value_error(row, args):
    with pytest.raises(ValueError):
        tuple(row).index(*args)
    with pytest.raises(ValueError, match="not in row"):
        row.index(*args)


def test_index_argument_errors_match_tuple(row):
    for bad in [(), (1, 2, 3, 4)]:
        with pytest.raises(TypeError):
            row.index(*bad)
    with pytest.raises(TypeError, match="__index__"):
        row.index(1, "0")
    with pytest.raises(TypeError, match="__index__"):
        row.index(1, 0, None)


@pytest.mark.parametrize("value", [1, "x", None, 1.0, True, 2, "b", object()])
def test_count_is_tuple_count(row, value):
    assert row.count(value) == tuple(row).count(value)


def test_comparison_errors_propagate(row):
    class Boom:
        def __eq__(self, other):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        row.index(Boom())
    with pytest.raises(RuntimeError, match="boom"):
        row.count(Boom())


def test_result_is_subscriptable_at_runtime(tmp_path):
    alias = _core.Result[_core.Row]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is _core.Result
    assert alias.__args__ == (_core.Row,)
    assert _core.Result[_core.RowMapping].__args__ == (_core.RowMapping,)
    db = tmp_path / "alias.db"
    _core.db_manager.initialize_database(db)
    with _core.db_manager.get_session(db) as s:
        assert isinstance(s.execute("SELECT 1"), _core.Result)
