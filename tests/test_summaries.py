"""Per-experiment summaries (issue 16 item 2): stored with each experiment's results
(``promptlab.store.summaries``), backfilled by migration 0005, read by the studio's
experiment list and ``LocalTracer.get_experiment_summaries()``."""

from __future__ import annotations

import json
import math
import random
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
from promptlab.store.experiments import RESULT_PARAMETERS
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


# --- aggregates tallied while the results are bound (_core.TraceTally) ---------------

def _float_cases(rng: random.Random, n: int) -> List[float]:
    return [rng.choice([rng.random(), rng.uniform(-1e6, 1e6),
                        rng.random() * 10 ** rng.randint(-9, 12),
                        round(rng.random(), rng.randint(1, 6)), float(rng.randint(-3, 3))])
            for _ in range(n)]


def _varied_experiments() -> Dict[str, List[Dict[str, Any]]]:
    """Experiment id -> records, every form trace_experiment is handed: metric values of
    every JSON type (ints, floats whose sums round, bools, text that looks like a
    number, null, NaN and infinities, nested values), evaluations as lists, objects,
    their JSON text (the original's runner), odd text, None; missing metrics and
    results; numbers or None for latency and tokens; 1023/1024/1025 records (the
    binder's chunk is 1024)."""
    rng = random.Random(16)
    out: Dict[str, List[Dict[str, Any]]] = {}

    def add(name: str, n: int, evaluation: Any, **kw: Any) -> None:
        out[name] = [record(name, i, evaluation(i) if callable(evaluation) else evaluation,
                            **{k: (v(i) if callable(v) else v) for k, v in kw.items()})
                     for i in range(n)]

    floats = _float_cases(rng, 1025)
    add("ints", 50, lambda i: [{"metric": "exact", "result": i % 2},
                               {"metric": "len", "result": rng.randint(-10**6, 10**6)}])
    add("bools", 40, lambda i: [{"metric": "ok", "result": i % 3 == 0}])
    add("floats", 1025, lambda i: [{"metric": "sim", "result": floats[i]},
                                   {"metric": "half", "result": floats[-i] / 2}],
        latency_ms=lambda i: floats[i] * 1000 + 0.1)
    add("mixed", 300, lambda i: [{"metric": "m", "result": [1, 2.5, True, 0.1 * i][i % 4]}],
        latency_ms=lambda i: [1, 2.5, None][i % 3], prompt_tokens=lambda i: [5, None][i % 2])
    add("numeric-text", 30, lambda i: [{"metric": "t", "result": str(i / 4)},
                                       {"metric": "n", "result": i}])
    add("missing", 30, lambda i: [{"metric": "a"}, {"result": 1}, {"metric": None, "result": 2},
                                  {"metric": "b", "result": None}, "loose", 5, [1, 2],
                                  {"metric": "c", "result": i}])
    add("nan-inf", 20, lambda i: [{"metric": "x", "result": [math.nan, math.inf, -math.inf,
                                                            0.5 * i][i % 4]}])
    add("nested", 20, lambda i: [{"metric": "x", "result": {"v": i}},
                                 {"metric": "y", "result": [i]},
                                 {"metric": "z", "result": i, "details": {"why": [1, {"a": 2}]}}])
    add("object", 60, lambda i: {"bleu": floats[i], "ok": i % 2 == 0, "note": "x",
                                 "none": None, "list": [1]})
    add("object-nested", 5, lambda i: {"acc": {"metric": "inner", "result": i}})
    add("json-list", 1024, lambda i: dump([{"metric": "exact_match", "result": i % 2},
                                           {"metric": "sim", "result": floats[i]}]))
    add("json-object", 1023, lambda i: dump({"bleu": floats[i], "ok": True, "t": "x",
                                             "n": None}))
    add("json-spaced", 10, lambda i: f' [ {{ "result" : {i} , "metric" : "m" }} , 3 , "s" ] ')
    add("json-nan", 10, lambda i: dump([{"metric": "a", "result": [math.nan, 1.0][i % 2]}]))
    add("json-long-float", 10, lambda i: '[{"metric": "a", "result": 0.10}]')
    add("json-escape", 10, lambda i: '[{"metric": "caf\\u00e9", "result": 1}]')
    add("json-duplicate", 10, lambda i: '[{"metric": "a", "metric": "b", "result": 1}]')
    add("json-invalid", 10, lambda i: ["not json", "[1,", "", "{}", "[]", "5"][i % 6])
    add("unicode-name", 10, lambda i: [{"metric": "café", "result": i}, {"metric": "a\nb",
                                                                          "result": 1}])
    add("number-name", 10, lambda i: [{"metric": 1, "result": 2}, {"metric": "1", "result": 4}])
    add("big-int", 10, lambda i: [{"metric": "big", "result": 10**18 + i}])
    # Beyond 2**53 a double rounds the integer itself, while SQLite 3.43+ averages
    # integers from an exact sum: the tally declines (SQL computes them).
    add("int-past-2-53", 2, lambda i: [{"metric": "big", "result": 2**53 + 1 + 4 * i}])
    add("tokens-past-2-53", 2, [], prompt_tokens=lambda i: 2**53 + 1 + 4 * i)
    add("latency-past-2-53", 2, [], latency_ms=lambda i: -(2**53) - 1 - 4 * i)
    add("json-int-past-2-53", 2, lambda i: f'[{{"metric": "big", "result": {2**53 + 1 + 4 * i}}}]')
    add("none", 5, None, latency_ms=None, prompt_tokens=None, completion_tokens=None)
    add("int-latency", 1025, lambda i: [{"metric": "a", "result": i}], latency_ms=lambda i: i)
    add("inf-latency", 5, [], latency_ms=lambda i: math.inf if i == 2 else 1.0)
    return out


# Experiments whose aggregates TraceTally does not vouch for (computed in SQL instead).
NOT_TALLIED = {"object-nested", "json-nan", "json-long-float", "json-escape", "json-duplicate",
               "json-invalid", "unicode-name", "number-name", "big-int", "inf-latency",
               "int-past-2-53", "tokens-past-2-53", "latency-past-2-53", "json-int-past-2-53"}


def _typed(values: Any) -> List[Any]:
    """Values with their types, floats bit for bit."""
    return [(type(v).__name__, v.hex() if isinstance(v, float) else v) for v in values]


def _stored_and_recomputed(db_file: Path, experiment_id: str):
    with _core_session(db_file) as session:
        (live,) = session.execute(summary_store.SELECT_SUMMARY, (experiment_id,)).all()
        (row,) = session.execute(
            "SELECT records, avg_latency_ms, prompt_tokens, completion_tokens, "
            "avg_prompt_tokens, avg_completion_tokens, last_result_id "
            "FROM experiment_summary WHERE experiment_id = ?", (experiment_id,)).all()
        metrics = [_typed(m) for m in session.execute(summary_store.SELECT_METRICS_OF,
                                                      (experiment_id,))]
        stored_metrics = [_typed(m) for m in session.execute(
            summary_store.SELECT_STORED_METRICS_OF, (experiment_id,))]
    recomputed = (live.records, live.avg_latency_ms, live.prompt_tokens, live.completion_tokens,
                  live.avg_prompt_tokens, live.avg_completion_tokens, live.last_result_id)
    return (_typed(row), stored_metrics), (_typed(recomputed), metrics)


@pytest.fixture
def tally_paths(monkeypatch) -> Dict[str, bool]:
    """experiment id -> whether its trace stored the tallied aggregates."""
    from promptlab.store import experiments as experiment_store

    paths: Dict[str, bool] = {}

    def spy(session, experiment_id, tallied, stale):
        paths[experiment_id] = tallied is not None
        return summary_store.store_traced(session, experiment_id, tallied, stale)

    monkeypatch.setattr(experiment_store, "store_traced", spy)
    return paths


def test_tallied_aggregates_equal_a_recomputation_in_sql(tracer, db_file, tally_paths):
    """Stored aggregates = SQL (the backfill's SELECTs) over the stored rows, value and
    type, bit for bit, for every form of input, in one database of many experiments."""
    experiments = _varied_experiments()
    for records in experiments.values():
        tracer.trace_experiment(make_config(template=None), records)
    assert tally_paths == {name: name not in NOT_TALLIED for name in experiments}
    for experiment_id in experiments:
        stored_values, recomputed = _stored_and_recomputed(db_file, experiment_id)
        assert stored_values == recomputed, experiment_id
    assert len(stored(db_file, "experiment_summary")) == len(experiments)


@pytest.mark.parametrize("n", [1, 1023, 1024, 1025, 2049])
def test_tallied_aggregates_across_chunk_boundaries(tracer, db_file, tally_paths, n):
    rng = random.Random(n)
    floats = _float_cases(rng, n)
    records = [record("exp", i, [{"metric": "sim", "result": floats[i]},
                                 {"metric": "hit", "result": i % 2 == 0}],
                      latency_ms=floats[-i] + 100, prompt_tokens=rng.randint(0, 10**6))
               for i in range(n)]
    tracer.trace_experiment(make_config(template=None), records)
    assert tally_paths == {"exp": True}
    stored_values, recomputed = _stored_and_recomputed(db_file, "exp")
    assert stored_values == recomputed
    assert stored_values[0][0] == ("int", n)


def test_records_of_another_experiment_are_summarized_in_sql(tracer, db_file, tally_paths):
    """A record naming another (existing) experiment: the tally declines, and both
    experiments' aggregates are computed from their rows."""
    tracer.trace_experiment(make_config(template=None), [record("first", 0, {"a": 1})])
    tracer.trace_experiment(make_config(template=None),
                            [record("second", 0, {"a": 2}), record("first", 1, {"a": 4})])
    assert tally_paths == {"first": True, "second": False}
    for experiment_id in ("first", "second"):
        stored_values, recomputed = _stored_and_recomputed(db_file, experiment_id)
        assert stored_values == recomputed
    assert [(m[0], m[2]) for m in stored(db_file, "experiment_metric")] == [
        ("first", 2.5), ("second", 2.0)]


def _tallied(records: List[Any]) -> Any:
    tally = _core.TraceTally(records, "e", RESULT_PARAMETERS)
    assert list(tally) == [tuple(r[k] for k in RESULT_PARAMETERS) for r in records]
    return tally.summary()


def test_trace_tally_yields_the_records_unchanged():
    records: List[Any] = [record("e", i, [{"metric": "m", "result": i}]) for i in range(5)]
    assert _tallied(records) == (5, sum(r["latency_ms"] for r in records) / 5, 60, 30, 12.0,
                                 6.0, (("m", 2.0, 5),))
    assert _tallied([]) == (0, None, None, None, None, None, ())
    # a record that is no dict, or lacks a name, is given as it is (the binder says why)
    lacking = dict(records[0])
    del lacking["completion"]
    odd = _core.TraceTally(records[:1] + [("a", "tuple"), lacking], "e", RESULT_PARAMETERS)
    values = list(odd)
    assert values[1:] == [("a", "tuple"), lacking] and values[2] is lacking
    assert odd.summary() is None
    tally = _core.TraceTally(records, 5, RESULT_PARAMETERS)  # an id that is no str: SQL
    assert len(list(tally)) == 5 and tally.summary() is None
    with pytest.raises(ValueError, match="latency_ms"):
        _core.TraceTally(records, "e", ("experiment_id",))
    with pytest.raises(TypeError):
        _core.TraceTally(records, "e", ["experiment_id"])
    # keys that are not the interned names (built at run time): looked up, same sums
    rebuilt = [{"".join(k): v for k, v in r.items()} for r in records]
    assert _tallied(rebuilt) == _tallied(records) is not None
    # the same texts again (remembered) and interleaved with others
    texts = [record("e", i, dump([{"metric": "m", "result": i % 2}]) if i % 3 else
                    dump({"other": i / 7})) for i in range(30)]
    (_, _, _, _, _, _, metrics) = _tallied(texts)
    assert sorted(metrics) == [("m", 10 / 20, 20),
                               ("other", sum(i / 7 for i in range(0, 30, 3)) / 10, 10)]
    with pytest.raises(TypeError):
        _core.TraceTally(5, "e", RESULT_PARAMETERS)
