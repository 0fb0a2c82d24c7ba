"""The C core's shared helpers, seen from Python: the one SQL trivia scanner
(csrc/engine/conn.c, pl_sql_skip_trivia) behind execute()'s one-statement rule
and the first-keyword check, the query helpers (csrc/engine/query.c) behind
initialization, the exception compat helpers (csrc/python/compat.h), the Row and
RowMapping helpers they share (row.c, pyutil.h) and the bcrypt cost bounds."""

from __future__ import annotations

import sqlite3

import pytest

from promptlab.sqlite import IntegrityError, ProgrammingError, get_session
from promptlab.sqlite.database_manager import db_manager
from test_session import session  # noqa: F401  (the fixture: a session on a new database)


@pytest.mark.parametrize(
    "tail",
    [
        "",
        ";",
        " ;; \t\n\r\f\v",
        "; -- a comment",
        "; -- a comment\n;",
        "; /* a block */",
        "; /* a block */ -- and a line\n /**/ ;",
        "; /* never closed",
        "; /*",
        "; /* almost closed *",
        "; --",
    ],
)
def test_trailing_trivia_is_one_statement(session, tail):
    assert session.execute("SELECT 7" + tail).scalar() == 7


@pytest.mark.parametrize(
    "tail",
    ["; SELECT 2", "; -- c\nSELECT 2", "; /* c */ SELECT 2", "; - 1", "; / 2", "; /* c */x"],
)
def test_a_second_statement_is_refused(session, tail):
    with pytest.raises(ProgrammingError, match="one statement"):
        session.execute("SELECT 7" + tail)


@pytest.mark.parametrize("sql", ["VACUUM", "/* c */ -- d\n  VACUUM", "-- x\n/**/vacuum"])
def test_first_keyword_is_read_past_comments(session, sql):
    """VACUUM cannot run inside a transaction: execute() must see its keyword past
    any comments and not wrap it in BEGIN IMMEDIATE as it wraps writes."""
    session.execute(sql)


def test_admin_user_written_once(db_path):
    db_manager.initialize_database(db_path)
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("SELECT username, password_hash FROM users").fetchall()
    finally:
        con.close()
    assert rows == [("admin", "!")]


def test_json_error_quotes_the_encoders_reason(session):
    """params.c takes the encoder's exception (compat.h, pl_exc_take) to quote it."""
    circular: list = []
    circular.append(circular)
    with pytest.raises(ProgrammingError, match=r"cannot be stored as JSON: maximum recursion"):
        session.execute("SELECT ?", (circular,))
    not_json = r"cannot be stored as JSON: .*not JSON serializable"
    with pytest.raises(ProgrammingError, match=not_json):
        session.execute("SELECT ?", ({"key": {1, 2}},))
    assert session.execute("SELECT 1").scalar() == 1  # no exception left behind


def test_a_failed_commit_at_exit_is_raised_and_the_session_closed(db_path):
    """Session.__exit__ keeps the commit's error (compat.h, pl_exc_take/pl_exc_give)
    while it closes the session, and raises that error with its traceback."""
    db_manager.initialize_database(db_path)
    s = get_session()
    with pytest.raises(IntegrityError, match="FOREIGN KEY") as info:
        with s:
            s.execute("PRAGMA defer_foreign_keys=ON")
            s.execute("INSERT INTO experiment_result (experiment_id) VALUES ('missing')")
    assert info.value.__traceback__ is not None
    assert s.closed
    with pytest.raises(ProgrammingError, match="closed"):
        s.execute("SELECT 1")
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("SELECT count(*) FROM experiment_result").fetchone()[0] == 0
    finally:
        con.close()


def test_bcrypt_cost_bounds_are_named_and_enforced():
    """password.h: PL_BCRYPT_MIN_ROUNDS..PL_BCRYPT_MAX_ROUNDS, checked before hashing."""
    from promptlab import _core

    for rounds in (3, 32):
        with pytest.raises(ProgrammingError, match=f"between 4 and 31, not {rounds}"):
            _core.hash_password("abcdefgh", rounds=rounds)
    hashed = _core.hash_password("abcdefgh", rounds=4)
    assert hashed.startswith("$2b$04$") and _core.verify_password("abcdefgh", hashed)


def test_row_and_rowmapping_share_lookup_keys_dict_and_compare(session):
    """Row and RowMapping (same layout) share pl_row_lookup, pl_row_keys,
    pl_row_as_dict and the compare/apply helpers of pyutil.h."""
    result = session.execute("SELECT 1 AS a, 'x' AS b")
    row = result.first() if hasattr(result, "first") else list(result)[0]
    assert row == (1, "x") and row != (1, "y") and (row == [1, "x"]) is False
    assert row.a == 1 and row["b"] == "x" and row[1] == "x" and row[-2] == 1 and row[0:1] == (1,)
    assert row.keys() == ["a", "b"] and row._asdict() == {"a": 1, "b": "x"}
    assert list(row) == [1, "x"] and "x" in row and hash(row) == hash((1, "x"))
    with pytest.raises(KeyError, match="no such column"):
        row["missing"]
    with pytest.raises(AttributeError):
        row.missing
    mapping = list(session.execute("SELECT 1 AS a, 'x' AS b").mappings())[0]
    assert mapping == {"a": 1, "b": "x"} and mapping != {"a": 2, "b": "x"}
    assert mapping == list(session.execute("SELECT 1 AS a, 'x' AS b").mappings())[0]
    assert (mapping == (1, "x")) is False
    assert repr(mapping) == repr({"a": 1, "b": "x"}) and mapping.keys() == ["a", "b"]
    assert list(mapping) == ["a", "b"] and "a" in mapping and 1 not in mapping
    assert mapping.get("b") == "x" and mapping.get("zz", 5) == 5 and mapping.get(3) is None
    assert mapping.a == 1 and dict(mapping) == {"a": 1, "b": "x"}
    with pytest.raises(KeyError):
        mapping[0]
