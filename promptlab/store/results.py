"""Reads over experiment results that only the studio asks for: per-experiment
summaries and metric averages, pages of records (searched), records of several
experiments side by side, and the database's row counts and integrity.

Every value that reaches SQL is a bound parameter; the only text put into SQL is
made of ``?`` placeholders, the fixed filters below and table names from
``promptlab.sqlite.models``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.models import TABLES

# The summary and metric SELECTs over the results (the live computation of what
# ``promptlab.store.summaries`` stores) are defined there, where the trace path
# imports them without this module's imports.
from promptlab.store.summaries import (  # noqa: F401 - also read here
    _METRIC_VALUES,
    SELECT_METRICS,
    SELECT_METRICS_OF,
    SELECT_SUMMARIES,
    SELECT_SUMMARY,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from promptlab.store.users import DbFile

_RECORD_COLUMNS = """er.id AS id, er.experiment_id AS experiment_id,
       er.dataset_record_id AS dataset_record_id, er.completion AS completion,
       er.prompt_tokens AS prompt_tokens, er.completion_tokens AS completion_tokens,
       er.latency_ms AS latency_ms, er.evaluation AS evaluation, er.created_at AS created_at"""
_SEARCH = """ AND (er.completion LIKE ? ESCAPE '\\' OR er.dataset_record_id LIKE ? ESCAPE '\\'
      OR er.evaluation LIKE ? ESCAPE '\\'
      OR er.dataset_record_id IN (SELECT value FROM json_each(?)))"""
SELECT_RECORDS = (f"SELECT {_RECORD_COLUMNS} FROM experiment_result er "
                  "WHERE er.experiment_id = ?{search} ORDER BY er.id LIMIT ? OFFSET ?")
COUNT_RECORDS = "SELECT COUNT(*) FROM experiment_result er WHERE er.experiment_id = ?{search}"

# Comparison: the dataset records of several experiments, in the order they were
# first written, then every result of those experiments for one page of them.
COUNT_COMPARED = """
SELECT COUNT(*) FROM (SELECT er.dataset_record_id FROM experiment_result er
WHERE er.experiment_id IN ({ids}) AND er.dataset_record_id IS NOT NULL
GROUP BY er.dataset_record_id {having})
"""
SELECT_COMPARED_IDS = """
SELECT er.dataset_record_id FROM experiment_result er
WHERE er.experiment_id IN ({ids}) AND er.dataset_record_id IS NOT NULL
GROUP BY er.dataset_record_id {having} ORDER BY MIN(er.id) LIMIT ? OFFSET ?
"""
# The comparison's filters (``only``), on the results of one dataset record:
# - "differ": some experiment has no result for it, or the experiments' completions
#   or evaluations are not all the same;
# - "failures": some result has an empty completion (none or "") or a metric whose
#   result is 0 or false.
_FAILED_RESULT = """(er.completion IS NULL OR er.completion = '' OR EXISTS (
    SELECT 1 FROM json_each(CASE WHEN json_valid(er.evaluation) THEN er.evaluation
                                 ELSE '[]' END) j
    WHERE (j.type = 'object' AND json_type(j.value, '$.result') IN
               ('integer', 'real', 'false') AND json_extract(j.value, '$.result') = 0)
       OR (j.type IN ('integer', 'real', 'false') AND j.value = 0)))"""
COMPARE_FILTERS = {
    None: "",
    "differ": ("HAVING COUNT(DISTINCT er.experiment_id) < ? OR COUNT(DISTINCT "
               "COALESCE(er.completion, char(0)) || char(1) || COALESCE(er.evaluation, '')"
               ") > 1"),
    "failures": f"HAVING MAX({_FAILED_RESULT}) = 1",
}
SELECT_COMPARED = f"""
SELECT {_RECORD_COLUMNS} FROM experiment_result er
WHERE er.experiment_id IN ({{ids}}) AND er.dataset_record_id IN ({{records}})
ORDER BY er.id
"""

# The health page counts the rows of the data tables (not the summaries derived from them).
COUNT_ROWS = {t.name: f"SELECT COUNT(*) FROM {t.name}" for t in TABLES
              if t.name not in ("experiment_summary", "experiment_metric")}


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def summaries(db_file: DbFile, experiment_id: Optional[str] = None) -> List[Any]:
    """Every experiment (or the one named), newest first: its user, record count,
    token sums and averages, ``model``/``asset`` texts and last result id."""
    with db_manager.get_session(db_file) as session:
        if experiment_id is None:
            return session.execute(SELECT_SUMMARIES).all()
        return session.execute(SELECT_SUMMARY, (experiment_id,)).all()


def metric_averages(db_file: DbFile, experiment_ids: Sequence[str]) -> List[Any]:
    """Rows (experiment_id, metric, average, count) for ``experiment_ids``."""
    wanted = set(experiment_ids)
    with db_manager.get_session(db_file) as session:
        if len(wanted) <= 8:  # a few: through the index, one experiment at a time
            return [m for i in experiment_ids for m in session.execute(SELECT_METRICS_OF, (i,))]
        return [m for m in session.execute(SELECT_METRICS) if m.experiment_id in wanted]


def records_page(db_file: DbFile, experiment_id: str, offset: int, limit: int,
                 search: Optional[str] = None, record_ids: Sequence[str] = ()
                 ) -> Tuple[int, List[Any]]:
    """``(total, rows)``: one page of an experiment's results in the order they were
    written; with ``search``, those whose completion, record id or evaluation holds
    it, or whose dataset record id is in ``record_ids``."""
    where: str = ""
    extra: Tuple[Any, ...] = ()
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        where, extra = _SEARCH, (pattern, pattern, pattern, json.dumps(list(record_ids)))
    with db_manager.get_session(db_file) as session:
        total = session.execute(COUNT_RECORDS.format(search=where),
                                (experiment_id,) + extra).scalar()
        rows = session.execute(SELECT_RECORDS.format(search=where),
                               (experiment_id,) + extra + (limit, offset)).all()
    return total, rows


def compared_page(db_file: DbFile, experiment_ids: List[str], offset: int, limit: int,
                  only: Optional[str] = None) -> Tuple[int, List[Any], List[Any]]:
    """``(total, record_ids, rows)``: one page of the dataset records the experiments
    have results for (``only``: a ``COMPARE_FILTERS`` key), and all their results."""
    marks = _placeholders(len(experiment_ids))
    having = COMPARE_FILTERS[only]
    extra = [len(experiment_ids)] if only == "differ" else []
    with db_manager.get_session(db_file) as session:
        total = session.execute(COUNT_COMPARED.format(ids=marks, having=having),
                                experiment_ids + extra).scalar()
        page = [r[0] for r in session.execute(
            SELECT_COMPARED_IDS.format(ids=marks, having=having),
            experiment_ids + extra + [limit, offset])]
        rows = session.execute(
            SELECT_COMPARED.format(ids=marks, records=_placeholders(len(page))),
            experiment_ids + page).all() if page else []
    return total, page, rows


def table_health(db_file: DbFile) -> Dict[str, Any]:
    """``{rows: {table: count}, check: PRAGMA quick_check lines, journal_mode}``."""
    with db_manager.get_session(db_file) as session:
        rows = {table: session.execute(sql).scalar() for table, sql in COUNT_ROWS.items()}
        check = [r[0] for r in session.execute("PRAGMA quick_check(20)")]
        journal_mode = session.execute("PRAGMA journal_mode").scalar()
    return {"rows": rows, "check": check, "journal_mode": journal_mode}


def ping(db_file: DbFile) -> bool:
    """True when the database answers a trivial query (DatabaseError otherwise)."""
    with db_manager.get_session(db_file) as session:
        return session.execute("SELECT 1").scalar() == 1
