"""The PostgreSQL sections of the shipped migrations (issue 15 item 3), run on a real
server: applied in order they make the tables, columns and keys the SQLite sections
make, the summaries' backfill computes what SQLite's computes from the same rows, and
the down sections undo what they can. Until the C core migrates PostgreSQL databases
itself, psql applies each section in one transaction, as the runner will."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from conftest import HEAD
from promptlab.sqlite.migrations import migrations

SUMMARIES = HEAD  # 0005: experiment_summary, experiment_metric and their backfill


def _run_pg(server, database: str, sql: str) -> str:
    done = server.psql(sql, database=database)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _apply_pg(server, database: str, upto: str) -> None:
    for m in migrations():
        assert m.up_postgresql is not None, f"{m.filename} has no PostgreSQL section"
        if m.up_postgresql.strip():
            _run_pg(server, database, m.up_postgresql)
        if m.revision == upto:
            return


def _apply_sqlite(con: sqlite3.Connection, upto: str) -> None:
    for m in migrations():
        con.executescript(m.up)
        if m.revision == upto:
            return


def _grouped(server, database: str, sql: str) -> dict:
    """Rows of (table, column) from ``sql`` as {table: {column, ...}}."""
    tables: dict = {}
    for line in _run_pg(server, database, sql).splitlines():
        table, column = line.split("|")
        tables.setdefault(table, set()).add(column)
    return tables


def _pg_columns(server, database: str) -> dict:
    return _grouped(server, database,
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public'")


def _pg_primary_keys(server, database: str) -> dict:
    return _grouped(server, database,
                    "SELECT tc.table_name, kcu.column_name FROM information_schema."
                    "table_constraints tc JOIN information_schema.key_column_usage kcu "
                    "USING (constraint_schema, constraint_name) WHERE tc.constraint_type = "
                    "'PRIMARY KEY' AND tc.table_schema = 'public'")


def test_every_shipped_migration_has_postgresql_sections():
    for m in migrations():
        assert m.up_postgresql is not None and m.down_postgresql is not None, m.filename


def test_the_head_tables_and_keys_are_those_of_sqlite(postgres_server, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    _apply_pg(postgres_server, database, HEAD)
    con = sqlite3.connect(":memory:")
    _apply_sqlite(con, HEAD)
    names = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    sqlite_columns = {t: {r[1] for r in con.execute(f'PRAGMA table_info("{t}")')}
                      for t in names}
    sqlite_keys = {t: {r[1] for r in con.execute(f'PRAGMA table_info("{t}")') if r[5]}
                   for t in names}
    assert _pg_columns(postgres_server, database) == sqlite_columns
    assert _pg_primary_keys(postgres_server, database) == {
        t: k for t, k in sqlite_keys.items() if k}
    admin = _run_pg(postgres_server, database,
                    "SELECT username, password_hash, role, status FROM users")
    assert admin.strip() == "admin|!|admin|1"


# Evaluations in each form the backfill reads, and forms it skips.
EVALUATIONS = [
    json.dumps([{"metric": "accuracy", "result": 1}, {"metric": "f1", "result": 0.5}]),
    json.dumps([{"metric": "accuracy", "result": 0}, {"metric": "f1", "result": True},
                {"metric": "note", "result": "text"}]),
    json.dumps({"accuracy": 1, "f1": 0.25, "flag": False, "nested": {"a": 1}}),
    json.dumps({"judge": {"metric": "judged", "result": 3}}),
    "not json at all",
    None,
    json.dumps([1, 2, 3]),
    json.dumps("a string"),
]


def _rows_for(experiment: str):
    for i, evaluation in enumerate(EVALUATIONS):
        yield (experiment, f"r{i}", f"completion {i}", 10 + i, 20 + 2 * i, 1.5 * i + 0.25,
               evaluation, f"2026-01-01 00:00:0{i}.000")


def _insert(run, placeholder: str) -> None:
    for n, experiment in enumerate(["e1", "e2", "empty"]):
        run("INSERT INTO experiments (experiment_id, model, asset, created_at, user_id) "
            f"VALUES ({', '.join([placeholder] * 4)}, 1)",
            (experiment, "{}", "{}", f"2026-01-0{n + 1} 00:00:00.000"))
        if experiment == "empty":
            continue
        for row in _rows_for(experiment):
            run("INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, "
                "prompt_tokens, completion_tokens, latency_ms, evaluation, created_at) "
                f"VALUES ({', '.join([placeholder] * 8)})", row)


def _pg_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b))
    return str(a) == str(b)


def test_the_summaries_backfill_computes_what_sqlite_computes(postgres_server, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    before = [m.revision for m in migrations()][-2]
    con = sqlite3.connect(":memory:")
    _apply_sqlite(con, before)
    _insert(lambda sql, args: con.execute(sql, args), "?")
    summaries = [m for m in migrations() if m.revision == SUMMARIES][0]
    con.executescript(summaries.up)
    _apply_pg(postgres_server, database, before)
    statements = []
    _insert(lambda sql, args: statements.append(
        sql.replace("%s", "{}").format(*map(_pg_literal, args))), "%s")
    _run_pg(postgres_server, database, ";\n".join(statements))
    _run_pg(postgres_server, database, summaries.up_postgresql)

    summary_sql = ("SELECT experiment_id, records, avg_latency_ms, prompt_tokens, "
                   "completion_tokens, avg_prompt_tokens, avg_completion_tokens, "
                   "last_result_id FROM experiment_summary ORDER BY experiment_id")
    metric_sql = ("SELECT experiment_id, metric, average, count FROM experiment_metric "
                  "ORDER BY experiment_id, metric")
    for sql in (summary_sql, metric_sql):
        want = [tuple(r) for r in con.execute(sql)]
        got = [tuple(None if v == "" else v for v in line.split("|"))
               for line in _run_pg(postgres_server, database, sql).splitlines()]
        assert len(got) == len(want), (sql, got, want)
        for g, w in zip(got, want, strict=True):
            assert all(_same(gv, wv) for gv, wv in zip(g, w, strict=True)), (g, w)
    assert any(r[1] == "judged" for r in con.execute(metric_sql))


def test_the_down_sections_undo_the_summaries_and_up_again(postgres_server, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    _apply_pg(postgres_server, database, HEAD)
    head = migrations()[-1]
    _run_pg(postgres_server, database, head.down_postgresql)
    assert "experiment_summary" not in _pg_columns(postgres_server, database)
    _run_pg(postgres_server, database, head.up_postgresql)
    assert "experiment_metric" in _pg_columns(postgres_server, database)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_legacy_layouts_do_nothing_on_postgresql(index):
    m = migrations()[index]
    for section in (m.up_postgresql, m.down_postgresql):
        assert all(not line.strip() or line.lstrip().startswith("--")
                   for line in section.splitlines())
