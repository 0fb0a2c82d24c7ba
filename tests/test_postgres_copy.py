"""`promptlab db copy -d FILE --to postgresql://...` (issue 15 item 8): every row of a
SQLite store moves into a new PostgreSQL database, value for value, checked by counts;
all or nothing; a destination that holds rows of its own is refused. Against a
throwaway server (tests/pgserver.py)."""

from __future__ import annotations

import sqlite3

import pytest

from factories import make_config, make_summary
from helpers import cli
from pgserver import PASSWORD
from promptlab import _core
from promptlab.sqlite import DatabaseError, InvalidDatabaseError
from promptlab.tracer.local_tracer import LocalTracer

# Values that a copy could bend: quotes, tabs, newlines, backslashes, non-ASCII text,
# and floats whose 15-digit text is not the same double.
AWKWARD = "tab\there, line\nbreak, back\\slash, 'quotes' \"too\", naïve ✓, \r"


def _store(path) -> None:
    tracer = LocalTracer({"type": "local", "db_file": str(path)})
    for n in range(3):
        records = make_summary(f"exp-{n}", n=50 + n, completion=AWKWARD,
                               latency_ms=0.1 + n / 3)
        tracer.trace_experiment(make_config(), records)


def _rows(con, table: str) -> list:
    return sorted(tuple(r) for r in con.execute(f'SELECT * FROM "{table}"'))


def _pg_rows(server, url: str, table: str, columns: list) -> list:
    database = url.rsplit("/", 1)[1]
    # JSON rows: every value comes back with its type, whatever psql prints.
    done = server.psql(f"SELECT json_agg(json_build_array({', '.join(columns)})) "
                       f'FROM "{table}"', database=database)
    assert done.returncode == 0, done.stderr
    import json

    text = done.stdout.strip()
    return sorted(tuple(r) for r in json.loads(text)) if text else []


def test_every_row_arrives_value_for_value(postgres_server, postgres_url, tmp_path):
    path = tmp_path / "lab.db"
    _store(path)
    done = cli("db", "copy", "-d", path, "--to", postgres_url)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout
    con = sqlite3.connect(path)
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT IN "
        "('alembic_version', 'promptlab_migrations') AND name NOT LIKE 'sqlite_%'")]
    assert "experiment_result" in tables and "experiment_metric" in tables
    total = 0
    for table in tables:
        columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
        want = _rows(con, table)
        assert _pg_rows(postgres_server, postgres_url, table, columns) == want, table
        assert f"  {table}: {len(want)} row(s)" in done.stdout
        total += len(want)
    assert total > 150 and f"Copied {total} row(s)" in done.stdout
    # New rows get ids after the copied ones.
    database = postgres_url.rsplit("/", 1)[1]
    new_id = postgres_server.psql(
        "INSERT INTO experiment_result (experiment_id) VALUES ('exp-0') RETURNING id",
        database=database).stdout.split()[0]
    assert int(new_id) == max(r[0] for r in con.execute("SELECT id FROM experiment_result")) + 1


def test_a_destination_with_rows_is_refused_and_left_alone(postgres_server, postgres_url,
                                                           tmp_path):
    path = tmp_path / "lab.db"
    _store(path)
    _core._postgres_copy(str(path), postgres_url)
    with pytest.raises(DatabaseError, match="already holds rows") as info:
        _core._postgres_copy(str(path), postgres_url)
    assert PASSWORD not in str(info.value)
    database = postgres_url.rsplit("/", 1)[1]
    count = postgres_server.psql("SELECT count(*) FROM experiment_result", database=database)
    assert count.stdout.strip() == str(sum(50 + n for n in range(3)))


def test_a_value_postgresql_cannot_hold_stops_the_whole_copy(postgres_server, postgres_url,
                                                             tmp_path):
    path = tmp_path / "lab.db"
    _store(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE experiment_result SET completion = 'nul ' || char(0) || ' inside' "
                "WHERE id = (SELECT max(id) FROM experiment_result)")
    con.commit()
    con.close()
    with pytest.raises(InvalidDatabaseError, match="experiment_result.*NUL byte"):
        _core._postgres_copy(str(path), postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    for table in ("users", "assets", "experiments", "experiment_result"):
        done = postgres_server.psql(f"SELECT count(*) FROM {table}", database=database)
        assert done.stdout.strip() == ("1" if table == "users" else "0"), table


def test_only_a_postgresql_url_is_a_destination(tmp_path):
    done = cli("db", "copy", "-d", tmp_path / "a.db", "--to", str(tmp_path / "b.db"))
    assert done.returncode == 2 and "postgresql://" in done.stderr
