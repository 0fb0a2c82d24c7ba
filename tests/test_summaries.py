"""Per-experiment summaries (issue 16 item 2): stored with each experiment's results
(``promptlab.store.summaries``), backfilled by migration 0005, read by the studio's
experiment list and ``LocalTracer.get_experiment_summaries()``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Dict, List

import pytest

from conftest import HEAD
from factories import make_config
from migtools import cli, tables, versions
from promptlab import _core
from promptlab.sqlite.migrations import downgrade, upgrade
from promptlab.sqlite.session import reset_initialization
from promptlab.store import results as result_store
from promptlab.store import summaries as summary_store
from promptlab.store.formats import decode_evaluation, decode_experiment
from promptlab.studio.queries import DatasetFiles, ReadModel
from promptlab.tracer.local_tracer import LocalTracer

PREVIOUS = "28f160511eaa"  # the head before 0005
SUMMARY_TABLES = {"experiment_summary", "experiment_metric"}


def old_summaries(db_file: Any, experiment_id: Any = None) -> List[Dict[str, Any]]:
    """The studio list as ReadModel.summaries computed it before the summaries were
    stored: the summary GROUP BY over the results, then the metric averages over
    every evaluation's JSON, shaped the same way."""
    rows = result_store.summaries(str(db_file), experiment_id)
    metrics: Dict[str, Dict[str, Any]] = {r.experiment_id: {} for r in rows}
    for m in result_store.metric_averages(str(db_file), list(metrics)):
        metrics[m.experiment_id][str(m.metric)] = {"average": m.average, "count": m.count}
    return [{
        "experiment_id": r.experiment_id, "created_at": r.created_at, "user": r.username,
        **decode_experiment(r.model, r.asset),
        "records": r.records, "avg_latency_ms": r.avg_latency_ms,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "avg_prompt_tokens": r.avg_prompt_tokens,
        "avg_completion_tokens": r.avg_completion_tokens,
        "metrics": metrics[r.experiment_id],
    } for r in rows]


def record(experiment_id: str, i: int, evaluation: Any, **kw) -> Dict[str, Any]:
    out = {"experiment_id": experiment_id, "dataset_record_id": str(i),
           "completion": f"answer {i}", "prompt_tokens": 10 + i, "completion_tokens": 3 * i,
           "latency_ms": 0.1 * (i + 1), "evaluation": evaluation}
    out.update(kw)
    return out


# Evaluations of every form the studio reads: lists of {metric, result}, objects
# {metric: value}, booleans, text and null results (skipped), invalid JSON, none.
EXPERIMENTS = {
    "exp-list": [
        record("exp-list", 0, [{"metric": "f1", "result": 0.1},
                               {"metric": "exact", "result": True}]),
        record("exp-list", 1, [{"metric": "f1", "result": 0.2},
                               {"metric": "exact", "result": False},
                               {"metric": "note", "result": "fine"}]),
        record("exp-list", 2, [{"metric": "f1", "result": 7},
                               {"metric": "exact", "result": None}, {"result": 3}],
               latency_ms=None, prompt_tokens=None),
    ],
    "exp-dict": [
        record("exp-dict", 0, {"bleu": 0.3, "ok": True, "txt": "x", "n": None}),
        record("exp-dict", 1, {"bleu": 0.7, "ok": False}, completion_tokens=None),
    ],
    "exp-odd": [
        record("exp-odd", 0, "not json"),
        record("exp-odd", 1, None),
        record("exp-odd", 2, [{"metric": 1, "result": 2}, {"metric": "1", "result": 4},
                              {"metric": "z", "result": 1.5}]),
        record("exp-odd", 3, []),
    ],
    "exp-nothing": [record("exp-nothing", 0, None, latency_ms=None, prompt_tokens=None,
                           completion_tokens=None)],
}
EXPERIMENTS.update({f"exp-many-{k}": [record(f"exp-many-{k}", i, {"score": (i * 0.1 + k) / 3})
                                      for i in range(k + 1)] for k in range(9)})


def trace_all(tracer: LocalTracer) -> None:
    for records in EXPERIMENTS.values():
        tracer.trace_experiment(make_config(template=None), records)


def add_empty_experiment(db_file: Path) -> None:
    """An experiment without results (the tracer refuses to write one; other tools may)."""
    con = sqlite3.connect(db_file)
    con.execute("INSERT INTO experiments (experiment_id, model, asset, user_id, created_at) "
                "VALUES ('exp-empty', '{}', '{}', 1, '2020-01-01 00:00:00')")
    con.commit()
    con.close()


def stored(db_file: Path, table: str) -> List[tuple]:
    con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        con.close()


def dump(value: Any) -> str:
    return json.dumps(value)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "lab.db"


@pytest.fixture
def tracer(db_file: Path, at_head) -> LocalTracer:
    return LocalTracer({"type": "local", "db_file": str(at_head(db_file))})


def test_traced_aggregates_equal_the_queries_over_the_results(tracer, db_file):
    trace_all(tracer)
    assert len(stored(db_file, "experiment_summary")) == len(EXPERIMENTS)
    with _core_session(db_file) as session:
        for experiment_id in EXPERIMENTS:
            (live,) = session.execute(summary_store.SELECT_SUMMARY, (experiment_id,)).all()
            (row,) = session.execute(
                "SELECT records, avg_latency_ms, prompt_tokens, completion_tokens, "
                "avg_prompt_tokens, avg_completion_tokens, last_result_id "
                "FROM experiment_summary WHERE experiment_id = ?", (experiment_id,)).all()
            assert tuple(row) == (live.records, live.avg_latency_ms, live.prompt_tokens,
                                  live.completion_tokens, live.avg_prompt_tokens,
                                  live.avg_completion_tokens, live.last_result_id)
            metrics = [tuple(m) for m in session.execute(summary_store.SELECT_METRICS_OF,
                                                         (experiment_id,))]
            assert [tuple(m) for m in session.execute(
                summary_store.SELECT_STORED_METRICS_OF, (experiment_id,))] == metrics


def _core_session(db_file: Path):
    from promptlab.sqlite.database_manager import db_manager

    return db_manager.get_session(str(db_file))


def test_traced_aggregates_equal_a_recomputation_from_the_rows(tracer, db_file):
    """Recomputed in Python from get_experiments() rows (string metric names only)."""
    trace_all(tracer)
    rows: Dict[str, List[Any]] = {}
    for row in tracer.get_experiments():
        rows.setdefault(row["experiment_id"], []).append(row)
    by_id = {s["experiment_id"]: s for s in tracer.get_experiment_summaries()}
    for experiment_id, results in rows.items():
        if experiment_id == "exp-odd":
            continue  # a metric named by the number 1 and another by "1": see the next test
        summary = by_id[experiment_id]

        def values(key, results=results):
            return [r[key] for r in results if r[key] is not None]

        def mean(key):
            found = values(key)
            return pytest.approx(sum(found) / len(found)) if found else None

        assert summary["records"] == len(results)
        assert summary["avg_latency_ms"] == mean("latency_ms")
        assert summary["prompt_tokens"] == (sum(values("prompt_tokens"))
                                            if values("prompt_tokens") else None)
        assert summary["completion_tokens"] == (sum(values("completion_tokens"))
                                                if values("completion_tokens") else None)
        assert summary["avg_prompt_tokens"] == mean("prompt_tokens")
        assert summary["avg_completion_tokens"] == mean("completion_tokens")
        scores: Dict[str, List[float]] = {}
        for r in results:
            for item in decode_evaluation(r["evaluation"]):
                value = item["result"]
                if isinstance(item["metric"], str) and isinstance(value, (int, float)):
                    scores.setdefault(item["metric"], []).append(float(value))
        assert summary["metrics"] == {
            name: {"average": pytest.approx(sum(v) / len(v)), "count": len(v)}
            for name, v in sorted(scores.items())}
        assert list(summary["metrics"]) == sorted(scores)


def test_studio_list_is_the_previous_computation_byte_for_byte(tracer, db_file):
    trace_all(tracer)
    add_empty_experiment(db_file)  # no summary row: read from the results
    expected = old_summaries(db_file)
    assert [s["experiment_id"] for s in expected][-1] == "exp-empty"
    assert expected[-1]["records"] == 0 and expected[-1]["metrics"] == {}
    odd = next(s for s in expected if s["experiment_id"] == "exp-odd")
    assert odd["metrics"] == {"1": {"average": 4.0, "count": 1},
                              "z": {"average": 1.5, "count": 1}}
    model = ReadModel(tracer, DatasetFiles())
    assert dump(model.summaries()) == dump(expected)
    assert dump(tracer.get_experiment_summaries()) == dump(expected)
    for experiment_id in list(EXPERIMENTS) + ["exp-empty"]:
        assert dump(model.summary(experiment_id)) == dump(old_summaries(db_file,
                                                                         experiment_id)[0])
    assert model.summary("no-such-experiment") is None


def test_results_written_by_other_tools_are_followed_and_stored_at_the_next_trace(
        tracer, db_file):
    trace_all(tracer)
    con = sqlite3.connect(db_file)
    con.execute("INSERT INTO experiment_result (experiment_id, dataset_record_id, latency_ms, "
                "evaluation) VALUES ('exp-dict', '9', 4.25, ?)",
                (json.dumps({"bleu": 0.05, "new": 1}),))
    con.commit()
    con.close()
    model = ReadModel(tracer, DatasetFiles())
    assert dump(model.summaries()) == dump(old_summaries(db_file))
    dict_summary = model.summary("exp-dict")
    assert dict_summary is not None and dict_summary["records"] == 3
    assert dict_summary["metrics"]["new"] == {"average": 1.0, "count": 1}
    tracer.trace_experiment(make_config(template=None), [record("exp-later", 0, {"bleu": 1})])
    with _core_session(db_file) as session:
        assert summary_store.stale_experiments(session) == []
    (row,) = [r for r in stored(db_file, "experiment_summary") if r[0] == "exp-dict"]
    assert row[1] == 3
    assert dump(model.summaries()) == dump(old_summaries(db_file))


def test_a_failed_trace_stores_no_summary(tracer, db_file):
    trace_all(tracer)
    before = (stored(db_file, "experiment_summary"), stored(db_file, "experiment_metric"))
    with pytest.raises(_core.IntegrityError):
        tracer.trace_experiment(make_config(template=None),
                                [record("exp-dict", 5, {"bleu": 0.9})])
    assert (stored(db_file, "experiment_summary"), stored(db_file, "experiment_metric")) == before


def test_downgrade_drops_the_tables_and_migrate_backfills_them(tracer, db_file):
    trace_all(tracer)
    add_empty_experiment(db_file)
    traced = (stored(db_file, "experiment_summary"), stored(db_file, "experiment_metric"))
    listed = dump(tracer.get_experiment_summaries())

    run = downgrade(db_file, PREVIOUS)
    assert (run.before, run.current) == (HEAD, PREVIOUS)
    assert not SUMMARY_TABLES & set(tables(db_file))
    reset_initialization()

    result = cli("db", "migrate", "-d", db_file)
    assert result.returncode == 0, result.stderr
    assert versions(db_file) == [HEAD]
    summaries_after = stored(db_file, "experiment_summary")
    # every experiment, the one without results too (0 records, no metrics)
    assert [r for r in summaries_after if r[0] != "exp-empty"] == traced[0]
    assert [r for r in summaries_after if r[0] == "exp-empty"] == [
        ("exp-empty", 0, None, None, None, None, None, None)]
    assert stored(db_file, "experiment_metric") == traced[1]
    reset_initialization()
    tracer = LocalTracer({"type": "local", "db_file": str(db_file)})
    assert dump(tracer.get_experiment_summaries()) == listed == dump(old_summaries(db_file))


def test_a_database_made_at_the_previous_head_gets_its_summaries_at_migrate(db_file):
    """Created at 0004 (``migrate --to``), filled with the rows the tracer wrote then,
    upgraded: the list reads the backfilled tables and equals the old computation."""
    result = cli("db", "migrate", "-d", db_file, "--to", PREVIOUS)
    assert result.returncode == 0, result.stderr
    assert not SUMMARY_TABLES & set(tables(db_file))
    con = sqlite3.connect(db_file)
    for n, (experiment_id, records) in enumerate(EXPERIMENTS.items()):
        con.execute("INSERT INTO experiments (experiment_id, model, asset, user_id, created_at) "
                    "VALUES (?, ?, ?, 1, ?)",
                    (experiment_id, json.dumps({"completion_model_config": {"name": "m"}}),
                     json.dumps({"prompt_template_name": "t", "prompt_template_version": n}),
                     f"2026-01-01 00:00:{n:02d}"))
        con.executemany(
            "INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, "
            "prompt_tokens, completion_tokens, latency_ms, evaluation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r["experiment_id"], r["dataset_record_id"], r["completion"], r["prompt_tokens"],
              r["completion_tokens"], r["latency_ms"],
              r["evaluation"] if r["evaluation"] is None or isinstance(r["evaluation"], str)
              else json.dumps(r["evaluation"])) for r in records])
    con.commit()
    con.close()
    run = upgrade(db_file)
    assert (run.before, run.current, run.count) == (PREVIOUS, HEAD, 1)
    assert len(stored(db_file, "experiment_summary")) == len(EXPERIMENTS)
    with _core_session(db_file) as session:
        assert summary_store.stale_experiments(session) == []
    tracer = LocalTracer({"type": "local", "db_file": str(db_file)})
    expected = dump(old_summaries(db_file))  # the results are as they were
    assert dump(tracer.get_experiment_summaries()) == expected
    assert dump(ReadModel(tracer, DatasetFiles()).summaries()) == expected



def test_many_experiments_written_by_other_tools_are_read_from_the_results(tracer, db_file):
    trace_all(tracer)
    con = sqlite3.connect(db_file)
    for k in range(10):
        con.execute("INSERT INTO experiments (experiment_id, model, asset, user_id, created_at) "
                    "VALUES (?, '{}', '{}', 1, ?)", (f"raw-{k}", f"2030-01-01 00:00:{k:02d}"))
        con.executemany("INSERT INTO experiment_result (experiment_id, latency_ms, evaluation) "
                        "VALUES (?, ?, ?)",
                        [(f"raw-{k}", i / 7, json.dumps({"m": i / 3, "k": k}))
                         for i in range(k)])
    con.commit()
    con.close()
    expected = old_summaries(db_file)
    assert sum(s["experiment_id"].startswith("raw-") for s in expected) == 10
    assert dump(ReadModel(tracer, DatasetFiles()).summaries()) == dump(expected)
