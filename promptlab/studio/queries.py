"""What the studio page reads that LocalTracer has no method for: experiment summaries
with per-metric averages, one page of an experiment's records, records of several
experiments aligned by dataset record, dataset records read from their files, and the
database's health.

The queries only read; they run on sessions of the studio's own database file. Every
value that reaches SQL is a bound parameter; the only text put into SQL is made of
``?`` placeholders and table names from ``promptlab.sqlite.models``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from promptlab import _core
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.models import TABLES
from promptlab.tracer.local_tracer import (
    EXPERIMENT_COLUMNS,
    SELECT_EXPERIMENT_PARENTS,
    SELECT_EXPERIMENT_RESULTS,
    LocalTracer,
)

log = logging.getLogger("promptlab.studio")

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

# Evaluations are stored as the original wrote them: a JSON list of
# {"metric": ..., "result": ...}; a JSON object {metric: value} is read too. Only
# numbers and booleans are averaged; anything else (text, invalid JSON) is skipped.
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

# GET /api/experiments a page at a time: LocalTracer.get_experiments' two queries
# (same columns, same order) cut to one page of result rows. The children walk the
# index in the ORDER BY's order (nothing is sorted), so LIMIT/OFFSET cost the rows
# skipped; the parents are only those of the page's rows. execute_nested takes no
# parameters: the two numbers are ints formatted in, nothing else.
_PAGE_OF_RESULTS = SELECT_EXPERIMENT_RESULTS.rstrip() + "\nLIMIT {limit} OFFSET {offset}"
_PAGE_OF_PARENTS = SELECT_EXPERIMENT_PARENTS.replace(
    "\nORDER BY", "\nWHERE e.rowid IN (SELECT erowid FROM ({results}))\nORDER BY")
assert _PAGE_OF_PARENTS != SELECT_EXPERIMENT_PARENTS

COUNT_ROWS = {t.name: f"SELECT COUNT(*) FROM {t.name}" for t in TABLES}


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _json(text: Any) -> Any:
    """Parsed JSON text, or None when it is not JSON."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _contains(value: Any, text: str) -> bool:
    """Whether a dataset record's input (its values but the ``id``, nested values too)
    holds ``text``, ignoring case."""
    needle = text.casefold()
    stack = [v for k, v in value.items() if k != "id"] if isinstance(value, dict) else [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None and needle in str(item).casefold():
            return True
    return False


def parse_evaluation(text: Any) -> List[Dict[str, Any]]:
    """An evaluation as a list of ``{"metric", "result"}`` (from either stored form)."""
    value = _json(text) if isinstance(text, str) else text
    if isinstance(value, list):
        return [{"metric": item.get("metric"), "result": item.get("result")}
                for item in value if isinstance(item, dict)]
    if isinstance(value, dict):
        return [{"metric": key, "result": result} for key, result in value.items()]
    return []


class ReadModel:
    """The studio's read-only queries on one database file."""

    def __init__(self, tracer: "LocalTracer", datasets: "DatasetFiles") -> None:
        self.tracer = tracer
        self.db_file = tracer.db_file
        self.datasets = datasets
        # Metric averages read every evaluation of an experiment (JSON), so they are
        # kept per experiment; results are written once, with the experiment, so the
        # count and the last result id tell when they are stale.
        self._metrics: Dict[str, Tuple[Tuple[int, Any], Dict[str, Any]]] = {}
        self._metrics_lock = threading.Lock()

    def _session(self):
        return db_manager.get_session(self.db_file)

    # --- experiments -------------------------------------------------------

    def experiment_rows(self, offset: int, limit: int) -> List[Any]:
        """Rows ``offset`` to ``offset + limit`` of ``LocalTracer.get_experiments()``."""
        results = _PAGE_OF_RESULTS.format(limit=int(limit), offset=int(offset))
        parents = _PAGE_OF_PARENTS.format(results=results)
        with self._session() as session:
            return session.execute_nested(parents, results, EXPERIMENT_COLUMNS,
                                          mappings=True).all()

    def summaries(self) -> List[Dict[str, Any]]:
        """Every experiment, newest first, with counts, averages and metric averages."""
        with self._session() as session:
            rows = session.execute(SELECT_SUMMARIES).all()
            metrics = self._metric_averages(session, rows)
        return self._summaries(rows, metrics)

    def summary(self, experiment_id: str) -> Optional[Dict[str, Any]]:
        """One experiment's summary, or None when there is no such experiment."""
        with self._session() as session:
            rows = session.execute(SELECT_SUMMARY, (experiment_id,)).all()
            metrics = self._metric_averages(session, rows)
        found = self._summaries(rows, metrics)
        return found[0] if found else None

    def _metric_averages(self, session: Any, rows: Sequence[Any]) -> Dict[str, Dict[str, Any]]:
        """{experiment_id: {metric: {average, count}}} for the summary ``rows``, read
        from the cache or, for experiments it lacks, from the evaluations."""
        with self._metrics_lock:
            cached = {r.experiment_id: self._metrics.get(r.experiment_id) for r in rows}
        stamps = {r.experiment_id: (r.records, r.last_result_id) for r in rows}
        stale = [i for i, c in cached.items() if c is None or c[0] != stamps[i]]
        fresh: Dict[str, Dict[str, Any]] = {i: {} for i in stale}
        if stale:
            if len(stale) <= 8:
                found = [m for i in stale for m in session.execute(SELECT_METRICS_OF, (i,))]
            else:
                found = [m for m in session.execute(SELECT_METRICS) if m.experiment_id in fresh]
            for m in found:
                fresh[m.experiment_id][str(m.metric)] = {"average": m.average,
                                                         "count": m.count}
            with self._metrics_lock:
                for i, metrics in fresh.items():
                    self._metrics[i] = (stamps[i], metrics)
        return {i: fresh[i] if i in fresh else c[1] for i, c in cached.items()}

    @staticmethod
    def _summaries(rows: Sequence[Any], by_experiment: Dict[str, Dict[str, Any]]
                   ) -> List[Dict[str, Any]]:
        out = []
        for r in rows:
            model = _json(r.model)
            asset = _json(r.asset)
            out.append({
                "experiment_id": r.experiment_id,
                "created_at": r.created_at,
                "user": r.username,
                "completion_model": _get(model, "completion_model_config", "name"),
                "embedding_model": _get(model, "embedding_model_config", "name"),
                "prompt_template_name": _get(asset, "prompt_template_name"),
                "prompt_template_version": _get(asset, "prompt_template_version"),
                "dataset_name": _get(asset, "dataset_name"),
                "dataset_version": _get(asset, "dataset_version"),
                "records": r.records,
                "avg_latency_ms": r.avg_latency_ms,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "avg_prompt_tokens": r.avg_prompt_tokens,
                "avg_completion_tokens": r.avg_completion_tokens,
                "metrics": by_experiment.get(r.experiment_id, {}),
            })
        return out

    def records(self, experiment: Dict[str, Any], offset: int, limit: int,
                search: Optional[str] = None) -> Dict[str, Any]:
        """One page of an experiment's records (in the order they were written), each
        with its dataset record as ``input`` when the dataset file can be read."""
        where, extra = "", ()
        inputs, note = self.inputs_of(experiment)
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            matched = [rid for rid, record in inputs.items() if _contains(record, search)]
            where, extra = _SEARCH, (pattern, pattern, pattern, json.dumps(matched))
        with self._session() as session:
            total = session.execute(COUNT_RECORDS.format(search=where),
                                    (experiment["experiment_id"],) + extra).scalar()
            rows = session.execute(SELECT_RECORDS.format(search=where),
                                   (experiment["experiment_id"],) + extra + (limit, offset)).all()
        return {"total": total, "offset": offset, "limit": limit, "inputs_note": note,
                "records": [self._record(r, inputs) for r in rows]}

    def compare(self, experiments: List[Dict[str, Any]], offset: int, limit: int,
                only: Optional[str] = None) -> Dict[str, Any]:
        """One page of dataset records with each experiment's result for it; ``only``
        "differ" or "failures" keeps the records those filters (COMPARE_FILTERS) pick."""
        ids = [e["experiment_id"] for e in experiments]
        marks = _placeholders(len(ids))
        having = COMPARE_FILTERS[only]
        extra = [len(ids)] if only == "differ" else []
        with self._session() as session:
            total = session.execute(COUNT_COMPARED.format(ids=marks, having=having),
                                    ids + extra).scalar()
            page = [r[0] for r in session.execute(
                SELECT_COMPARED_IDS.format(ids=marks, having=having),
                ids + extra + [limit, offset])]
            rows = session.execute(
                SELECT_COMPARED.format(ids=marks, records=_placeholders(len(page))),
                ids + page).all() if page else []
        inputs, note = {}, None
        for e in experiments:  # the first experiment whose dataset file can be read
            inputs, note = self.inputs_of(e)
            if inputs:
                break
        results: Dict[Any, Dict[str, List[Dict[str, Any]]]] = {rid: {} for rid in page}
        for r in rows:
            results[r.dataset_record_id].setdefault(r.experiment_id, []).append(
                self._record(r, None))
        return {
            "total": total, "offset": offset, "limit": limit, "inputs_note": note,
            "only": only,
            "rows": [{"dataset_record_id": rid, "input": inputs.get(str(rid)),
                      "results": {i: results[rid].get(i, []) for i in ids}} for rid in page],
        }

    @staticmethod
    def _record(r: Any, inputs: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        record = {
            "id": r.id, "dataset_record_id": r.dataset_record_id, "completion": r.completion,
            "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "latency_ms": r.latency_ms, "evaluation": parse_evaluation(r.evaluation),
            "created_at": r.created_at,
        }
        if inputs is not None:
            record["input"] = inputs.get(str(r.dataset_record_id))
        return record

    def inputs_of(self, experiment: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
        """The dataset records of an experiment's dataset by id, and why they are
        missing when they are (None when they were read)."""
        name, version = experiment.get("dataset_name"), experiment.get("dataset_version")
        if not isinstance(name, str) or isinstance(version, bool) or not isinstance(version, int):
            return {}, "the experiment names no dataset"
        try:
            binary = self.tracer.get_asset(name, version).asset_binary
        except ValueError:
            binary = None
        path = _get(_json(binary), "file_path")
        if not isinstance(path, str):
            return {}, f"dataset {name} v{version} is not registered"
        return self.datasets.records(path)

    # --- health ------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """The database: file, size, revision, pending migrations, drift, row counts,
        ``PRAGMA quick_check``. ``ok`` is False when any of it failed."""
        from promptlab.sqlite.migrations import status

        path = self.db_file
        out: Dict[str, Any] = {"file": path, "sqlite_version": _core.sqlite_version}
        sizes = {}
        for suffix in ("", "-wal", "-shm"):
            try:
                sizes["db" + suffix.replace("-", "_")] = os.stat(path + suffix).st_size
            except OSError:
                pass
        out["size_bytes"] = sizes.get("db", 0)
        out["wal_bytes"] = sizes.get("db_wal", 0)
        problems = []
        try:
            state = status(path)
            out.update(revision=state.current, head=state.head,
                       pending=[{"revision": m.revision, "message": m.message}
                                for m in state.pending],
                       up_to_date=state.up_to_date, status_known=True,
                       drift=[{"kind": d.kind, "detail": d.detail} for d in state.drift])
            if not state.up_to_date:
                problems.append("migrations pending")
            if state.drift:
                problems.append("schema drift")
        except _core.DatabaseError as exc:
            log.warning("health: migration status of %s failed: %s", path, exc)
            # None: unknown (the page says so), not "no revision" or "nothing pending"
            out.update(revision=None, head=None, pending=[], up_to_date=False, drift=[],
                       status_known=False, status_error=str(exc))
            problems.append("migration status unavailable")
        try:
            with self._session() as session:
                out["rows"] = {table: session.execute(sql).scalar()
                               for table, sql in COUNT_ROWS.items()}
                check = [r[0] for r in session.execute("PRAGMA quick_check(20)")]
                out["journal_mode"] = session.execute("PRAGMA journal_mode").scalar()
            out["integrity"] = "ok" if check == ["ok"] else check
            if check != ["ok"]:
                problems.append("integrity check failed")
        except _core.DatabaseError as exc:
            log.warning("health: reading %s failed: %s", path, exc)
            out.setdefault("rows", {})
            out["integrity"] = f"not checked: {exc}"
            problems.append("database unreadable")
        out["ok"] = not problems
        out["problems"] = problems
        return out

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self._session() as session:
                return session.execute("SELECT 1").scalar() == 1
        except _core.DatabaseError as exc:
            log.warning("health: %s does not answer: %s", self.db_file, exc)
            return False


class DatasetFiles:
    """Reads dataset records (JSON Lines, or a JSON array of objects) by their ``id``.

    The paths come from dataset assets, which any signed-in user can register, so
    only regular files ending in ``.jsonl``, ``.ndjson`` or ``.json``, at most
    ``max_bytes`` long, inside one of the ``root`` folders (``os.pathsep``-separated;
    by default the database's folder) are read: any engineer could otherwise read any
    JSON file the studio's user can. Parsed files are kept (a few, newest used) until
    they change on disk.
    """

    SUFFIXES = (".jsonl", ".ndjson", ".json")

    SIDECARS = ("", "-wal", "-shm", "-journal")

    def __init__(self, root: Optional[str] = None, max_bytes: int = 64 * 1024 * 1024,
                 keep: int = 4, database: Optional[str] = None) -> None:
        if not root and database:
            root = os.path.dirname(os.path.abspath(database))
        self.roots = tuple(os.path.realpath(r) for r in (root or "").split(os.pathsep) if r)
        self.where = os.pathsep.join(self.roots)
        # Never opened, whatever name leads to them (a link, a hard link, a dataset
        # named *.json): closing a descriptor on the database or its -wal/-shm would
        # drop this process's SQLite locks on it (README, "Files belong to SQLite").
        self.database_files = tuple(database + s for s in self.SIDECARS) if database else ()
        self.max_bytes = max_bytes
        self.keep = keep
        self._cache: "OrderedDict[str, Tuple[Tuple[int, int], Dict[str, Any]]]" = OrderedDict()
        self._lock = threading.Lock()

    def records(self, file_path: str) -> Tuple[Dict[str, Any], Optional[str]]:
        """``({id: record}, None)``, or ``({}, reason)`` when the file is not read."""
        try:
            real = os.path.realpath(file_path)
        except (ValueError, OSError):
            return {}, "the dataset path is invalid"
        if not real.lower().endswith(self.SUFFIXES):
            return {}, "the dataset file is not a .jsonl or .json file"
        if not any(os.path.commonpath([root, real]) == root for root in self.roots):
            return {}, (f"the dataset file is outside the folders the studio reads datasets "
                        f"from ({self.where or 'none'}; set PROMPTLAB_STUDIO_DATASETS_DIR)")
        try:
            st = os.stat(real)
        except (OSError, ValueError):
            return {}, "the dataset file is not on the studio's machine"
        if not os.path.isfile(real):
            return {}, "the dataset path is not a file"
        if self._is_database_file(st):
            return {}, "the dataset path is the studio's own database file"
        if st.st_size > self.max_bytes:
            return {}, f"the dataset file is larger than {self.max_bytes // (1024 * 1024)} MB"
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(real)
            if cached is not None and cached[0] == stamp:
                self._cache.move_to_end(real)
                return cached[1], None
        try:
            records = self._parse(real)
        except (OSError, UnicodeDecodeError) as exc:
            log.info("dataset file %s unreadable: %s", real, exc)
            return {}, "the dataset file cannot be read"
        with self._lock:
            self._cache[real] = (stamp, records)
            self._cache.move_to_end(real)
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return records, None

    def _is_database_file(self, st: os.stat_result) -> bool:
        for path in self.database_files:
            try:
                other = os.stat(path)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
        return False

    @staticmethod
    def _parse(path: str) -> Dict[str, Any]:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
        items: List[Any] = []
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                loaded = json.loads(text)
                items = loaded if isinstance(loaded, list) else []
            except (ValueError, RecursionError):
                items = []
        else:
            for line in text.splitlines():
                if line.strip():
                    try:
                        items.append(json.loads(line))
                    except (ValueError, RecursionError):
                        continue
        return {str(item["id"]): item for item in items
                if isinstance(item, dict) and item.get("id") is not None}
