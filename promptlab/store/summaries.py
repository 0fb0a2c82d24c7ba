"""The ``experiment_summary`` and ``experiment_metric`` tables: per-experiment
aggregates (record count, latency and token aggregates, the average of each metric
found in the evaluations), written with the experiment's results and read by the
studio's experiment list and ``LocalTracer.get_experiment_summaries()``.

``refresh`` computes an experiment's aggregates from its ``experiment_result`` rows
with the SELECTs below (``SELECT_SUMMARY``'s aggregates and
``SELECT_METRICS_OF``'s), which are also the backfill of
``migrations/versions/0005_experiment_summaries.sql``: the stored values are the
values those queries return. ``store_traced`` stores the same values for an
experiment just traced, tallied from the records' Python values while they were
bound (``_core.TraceTally``, csrc/python/tally.c), which saves parsing every
evaluation's JSON again in SQL (about 2.8 us a result); when the tally cannot
vouch for a record's form, it runs ``refresh`` instead.

Results written with SQL outside PromptLab: rows appended after the last result
the summaries know (``last_result_id``) and experiments without a summary row are
read from the results instead (and stored again at the next trace); rows changed or
deleted in place are not noticed.
"""

from __future__ import annotations

from promptlab.sqlite.database_manager import db_manager
from promptlab.store.formats import decode_experiment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Sequence

    from promptlab.sqlite import Session
    from promptlab.store.users import DbFile

_SUMMARY = """
SELECT e.experiment_id AS experiment_id, e.created_at AS created_at, e.model AS model,
       e.asset AS asset, u.username AS username,
       COUNT(er.id) AS records,
       AVG(er.latency_ms) AS avg_latency_ms,
       SUM(er.prompt_tokens) AS prompt_tokens,
       SUM(er.completion_tokens) AS completion_tokens,
       AVG(er.prompt_tokens) AS avg_prompt_tokens,
       AVG(er.completion_tokens) AS avg_completion_tokens,
       MAX(er.id) AS last_result_id
FROM experiments e
LEFT JOIN experiment_result er ON er.experiment_id = e.experiment_id
LEFT JOIN users u ON u.id = e.user_id
{where}
GROUP BY e.experiment_id
ORDER BY e.created_at DESC, e.rowid DESC
"""
SELECT_SUMMARIES = _SUMMARY.format(where="")
SELECT_SUMMARY = _SUMMARY.format(where="WHERE e.experiment_id = ?")

# Evaluations as promptlab.store.formats.decode_evaluation reads them: a JSON list
# of {"metric": ..., "result": ...}, or a JSON object {metric: value}. Only numbers
# and booleans are averaged; anything else (text, invalid JSON) is skipped.
_METRIC_VALUES = """
SELECT er.experiment_id AS experiment_id,
       CASE WHEN j.type = 'object' THEN json_extract(j.value, '$.metric')
            WHEN typeof(j.key) = 'text' THEN j.key END AS metric,
       CASE WHEN j.type = 'object' THEN
                CASE WHEN json_type(j.value, '$.result') IN ('integer', 'real', 'true', 'false')
                     THEN json_extract(j.value, '$.result') END
            WHEN j.type IN ('integer', 'real', 'true', 'false') THEN j.value END AS value
FROM experiment_result er,
     json_each(CASE WHEN json_valid(er.evaluation) THEN er.evaluation ELSE '[]' END) j
{where}
"""
_METRICS = """
SELECT experiment_id, metric, AVG(value) AS average, COUNT(value) AS count
FROM ({values})
WHERE metric IS NOT NULL AND value IS NOT NULL
GROUP BY experiment_id, metric
ORDER BY experiment_id, metric
"""
SELECT_METRICS = _METRICS.format(values=_METRIC_VALUES.format(where=""))
SELECT_METRICS_OF = _METRICS.format(
    values=_METRIC_VALUES.format(where="WHERE er.experiment_id = ?"))

_AGGREGATES = """COUNT(er.id), AVG(er.latency_ms), SUM(er.prompt_tokens),
           SUM(er.completion_tokens), AVG(er.prompt_tokens), AVG(er.completion_tokens),
           MAX(er.id)"""
DELETE_SUMMARY = "DELETE FROM experiment_summary WHERE experiment_id = ?"
DELETE_METRICS = "DELETE FROM experiment_metric WHERE experiment_id = ?"
INSERT_SUMMARY = f"""
INSERT INTO experiment_summary (experiment_id, records, avg_latency_ms, prompt_tokens,
                                completion_tokens, avg_prompt_tokens, avg_completion_tokens,
                                last_result_id)
    SELECT e.experiment_id, {_AGGREGATES}
    FROM experiments e
    LEFT JOIN experiment_result er ON er.experiment_id = e.experiment_id
    WHERE e.experiment_id = ?
    GROUP BY e.experiment_id
"""
INSERT_METRICS = f"""
INSERT INTO experiment_metric (experiment_id, metric, average, count)
    SELECT experiment_id, metric, AVG(value), COUNT(value)
    FROM ({_METRIC_VALUES.format(where="WHERE er.experiment_id = ?")})
    WHERE metric IS NOT NULL AND value IS NOT NULL
    GROUP BY experiment_id, metric
"""
# The highest result id the summaries counted, and the experiments of results
# written after it (by SQL outside PromptLab: the store refreshes what it writes).
SELECT_WATERMARK = "SELECT COALESCE(MAX(last_result_id), -1) FROM experiment_summary"
# NOT INDEXED: through the rowid range (the rows after it, usually none); SQLite would
# otherwise walk all of ix_experiment_result_experiment_id for the DISTINCT.
SELECT_AFTER_WATERMARK = ("SELECT DISTINCT experiment_id FROM experiment_result NOT INDEXED "
                          "WHERE id > ? AND experiment_id IS NOT NULL")

_STORED = """
SELECT e.experiment_id AS experiment_id, e.created_at AS created_at, e.model AS model,
       e.asset AS asset, u.username AS username,
       s.experiment_id IS NOT NULL AS stored,
       s.records AS records,
       s.avg_latency_ms AS avg_latency_ms,
       s.prompt_tokens AS prompt_tokens,
       s.completion_tokens AS completion_tokens,
       s.avg_prompt_tokens AS avg_prompt_tokens,
       s.avg_completion_tokens AS avg_completion_tokens
FROM experiments e
LEFT JOIN experiment_summary s ON s.experiment_id = e.experiment_id
LEFT JOIN users u ON u.id = e.user_id
{where}
ORDER BY e.created_at DESC, e.rowid DESC
"""
SELECT_STORED_SUMMARIES = _STORED.format(where="")
SELECT_STORED_SUMMARY = _STORED.format(where="WHERE e.experiment_id = ?")
SELECT_STORED_METRICS = ("SELECT experiment_id, metric, average, count FROM experiment_metric "
                         "ORDER BY experiment_id, metric")
SELECT_STORED_METRICS_OF = ("SELECT experiment_id, metric, average, count "
                            "FROM experiment_metric WHERE experiment_id = ? ORDER BY metric")

# The tallied aggregates (TraceTally.summary()) of an experiment traced in this
# transaction; the last result id is the experiment's newest row (the index's last).
INSERT_TALLIED_SUMMARY = """
INSERT INTO experiment_summary (experiment_id, records, avg_latency_ms, prompt_tokens,
                                completion_tokens, avg_prompt_tokens, avg_completion_tokens,
                                last_result_id)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
        (SELECT MAX(id) FROM experiment_result WHERE experiment_id = ?1))
"""
INSERT_TALLIED_METRIC = ("INSERT INTO experiment_metric (experiment_id, metric, average, count) "
                         "VALUES (?, ?, ?, ?)")
# Whether an experiment already has results (written before its experiments row,
# foreign keys off): then its tally would not cover them all.
SELECT_HAS_RESULTS = "SELECT 1 FROM experiment_result WHERE experiment_id = ? LIMIT 1"

_SUMS = ("records", "avg_latency_ms", "prompt_tokens", "completion_tokens",
         "avg_prompt_tokens", "avg_completion_tokens")


def refresh(session: Session, experiment_ids: Iterable[str]) -> None:
    """Recompute the stored aggregates of ``experiment_ids`` from their results, in
    the caller's transaction."""
    for experiment_id in experiment_ids:
        args = (experiment_id,)
        session.execute(DELETE_METRICS, args)
        session.execute(DELETE_SUMMARY, args)
        session.execute(INSERT_SUMMARY, args)
        session.execute(INSERT_METRICS, args)


def has_results(session: Session, experiment_id: str) -> bool:
    """Whether ``experiment_id`` has rows in experiment_result."""
    return session.execute(SELECT_HAS_RESULTS, (experiment_id,)).first() is not None


def store_traced(session: Session, experiment_id: str, tallied: Optional[Sequence[Any]],
                 stale: Iterable[str]) -> None:
    """Store the aggregates of ``experiment_id``, whose results the caller has just
    written in this transaction, and refresh the ``stale`` experiments (results
    written by SQL outside PromptLab, looked up before those rows were added).

    ``tallied`` is ``TraceTally.summary()`` over every result of the experiment, or
    None: then, as before the tally, everything is computed from the stored rows."""
    if tallied is None:
        refresh(session, {experiment_id, *stale_experiments(session)})
        return
    records, avg_latency, prompt, completion, avg_prompt, avg_completion, metrics = tallied
    args = (experiment_id,)
    session.execute(DELETE_METRICS, args)
    session.execute(DELETE_SUMMARY, args)
    session.execute(INSERT_TALLIED_SUMMARY, (experiment_id, records, avg_latency, prompt,
                                             completion, avg_prompt, avg_completion))
    if metrics:
        session.executemany(INSERT_TALLIED_METRIC,
                            [(experiment_id, name, average, count)
                             for name, average, count in metrics])
    refresh(session, set(stale) - {experiment_id})


def stale_experiments(session: Session) -> List[str]:
    """Experiments with results written after those the summaries counted."""
    watermark = session.execute(SELECT_WATERMARK).scalar()
    return [r[0] for r in session.execute(SELECT_AFTER_WATERMARK, (watermark,))]


def experiment_summaries(db_file: DbFile, experiment_id: Optional[str] = None
                         ) -> List[Dict[str, Any]]:
    """Every experiment (or the one named), newest first, as the studio's experiment
    list shows it: id, ``created_at``, ``user``, the model and asset names
    (``decode_experiment``), ``records``, ``avg_latency_ms``, ``prompt_tokens``,
    ``completion_tokens``, ``avg_prompt_tokens``, ``avg_completion_tokens`` and
    ``metrics`` ({metric: {"average", "count"}})."""
    with db_manager.get_session(db_file) as session:
        if experiment_id is None:
            rows = session.execute(SELECT_STORED_SUMMARIES).all()
            metric_rows = session.execute(SELECT_STORED_METRICS).all()
        else:
            rows = session.execute(SELECT_STORED_SUMMARY, (experiment_id,)).all()
            metric_rows = session.execute(SELECT_STORED_METRICS_OF, (experiment_id,)).all()
        sums: Dict[str, Any] = {}
        metrics: Dict[str, Dict[str, Any]] = {r.experiment_id: {} for r in rows}
        # not stored, or results written after the summaries (see the module's doc)
        live = {r.experiment_id for r in rows if not r.stored}
        live.update(set(stale_experiments(session)) & metrics.keys())
        for m in metric_rows:
            if m.experiment_id in metrics and m.experiment_id not in live:
                metrics[m.experiment_id][str(m.metric)] = {"average": m.average,
                                                           "count": m.count}
        # From the results, as the backfill computes them: a few experiments through
        # the index one at a time, more (a database filled by other tools) in one pass.
        if len(live) <= 8:
            for i in live:
                (sums[i],) = session.execute(SELECT_SUMMARY, (i,)).all()
            computed = [m for i in live for m in session.execute(SELECT_METRICS_OF, (i,))]
        else:
            sums = {r.experiment_id: r for r in session.execute(SELECT_SUMMARIES)
                    if r.experiment_id in live}
            computed = [m for m in session.execute(SELECT_METRICS) if m.experiment_id in live]
        for i in live:
            metrics[i] = {}
        for m in computed:
            metrics[m.experiment_id][str(m.metric)] = {"average": m.average, "count": m.count}
    out = []
    for r in rows:
        source = sums.get(r.experiment_id, r)
        out.append({
            "experiment_id": r.experiment_id,
            "created_at": r.created_at,
            "user": r.username,
            **decode_experiment(r.model, r.asset),
            **{name: getattr(source, name) for name in _SUMS},
            "metrics": metrics.get(r.experiment_id, {}),
        })
    return out
