"""The C core's shared helpers, seen from Python: the one SQL trivia scanner
(csrc/engine/conn.c, pl_sql_skip_trivia) behind execute()'s one-statement rule
and the transaction-control check, and the query helpers (csrc/engine/query.c)
behind initialization."""

from __future__ import annotations

import sqlite3

import pytest

from promptlab.sqlite import ProgrammingError, get_session
from promptlab.sqlite.database_manager import db_manager


@pytest.fixture
def session(db_path):
    db_manager.initialize_database(db_path)
    s = get_session()
    yield s
    s.close()


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
