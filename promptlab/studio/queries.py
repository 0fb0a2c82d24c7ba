"""What the studio page shows: experiment summaries with per-metric averages (as
``LocalTracer.get_experiment_summaries()``, stored with the results), and what
LocalTracer has no method for: one page of an experiment's records, records of
several experiments aligned by dataset record, dataset records read from their files,
and the database's health.

The SQL is ``promptlab.store.results``', ``.summaries``' and ``.experiments``'; the
stored formats are read through ``promptlab.store.formats``. This module shapes the
answers and keeps the dataset files' cache.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from promptlab import _core
from promptlab.store import experiments as experiment_store
from promptlab.store import results as result_store
from promptlab.store import summaries as summary_store
from promptlab.store.formats import decode_evaluation
from promptlab.store.results import SELECT_METRICS, SELECT_METRICS_OF  # noqa: F401 - tests
from promptlab.tracer.local_tracer import LocalTracer

log = logging.getLogger("promptlab.studio")

# The name this module gave the evaluation decoder.
parse_evaluation = decode_evaluation


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


class ReadModel:
    """The studio's read-only queries on one database file."""

    def __init__(self, tracer: "LocalTracer", datasets: "DatasetFiles") -> None:
        self.tracer = tracer
        self.db_file = tracer.db_file
        self.datasets = datasets

    # --- experiments -------------------------------------------------------

    def experiment_rows(self, offset: int, limit: int,
                        experiment_id: Optional[str] = None) -> List[Any]:
        """Rows ``offset`` to ``offset + limit`` of ``LocalTracer.get_experiments()``
        (of one experiment's rows when ``experiment_id`` is given)."""
        return experiment_store.experiment_rows(self.db_file, experiment_id, int(limit),
                                                int(offset))

    def summaries(self) -> List[Dict[str, Any]]:
        """Every experiment, newest first, with counts, averages and metric averages
        (stored with its results: ``promptlab.store.summaries``)."""
        return summary_store.experiment_summaries(self.db_file)

    def summary(self, experiment_id: str) -> Optional[Dict[str, Any]]:
        """One experiment's summary, or None when there is no such experiment."""
        found = summary_store.experiment_summaries(self.db_file, experiment_id)
        return found[0] if found else None

    def records(self, experiment: Dict[str, Any], offset: int, limit: int,
                search: Optional[str] = None) -> Dict[str, Any]:
        """One page of an experiment's records (in the order they were written), each
        with its dataset record as ``input`` when the dataset file can be read."""
        inputs, note = self.inputs_of(experiment)
        matched = ([rid for rid, record in inputs.items() if _contains(record, search)]
                   if search else [])
        total, rows = result_store.records_page(self.db_file, experiment["experiment_id"],
                                           offset, limit, search, matched)
        return {"total": total, "offset": offset, "limit": limit, "inputs_note": note,
                "records": [self._record(r, inputs) for r in rows]}

    def compare(self, experiments: List[Dict[str, Any]], offset: int, limit: int,
                only: Optional[str] = None) -> Dict[str, Any]:
        """One page of dataset records with each experiment's result for it; ``only``
        "differ" or "failures" keeps the records those filters
        (``promptlab.store.results.COMPARE_FILTERS``) pick."""
        ids = [e["experiment_id"] for e in experiments]
        total, page, rows = result_store.compared_page(self.db_file, ids, offset, limit, only)
        inputs: Dict[str, Any] = {}
        note: Optional[str] = None
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
            path = self.tracer.get_asset(name, version).file_path
        except ValueError:
            path = None
        if path is None:
            return {}, f"dataset {name} v{version} is not registered"
        return self.datasets.records(path)

    # --- health ------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """The database: file, size, revision, pending migrations, drift, row counts,
        SQLite's quick integrity check. ``ok`` is False when any of it failed."""
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
            tables = result_store.table_health(path)
            out["rows"], out["journal_mode"] = tables["rows"], tables["journal_mode"]
            check = tables["check"]
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
            return result_store.ping(self.db_file)
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
        with open(path, encoding="utf-8") as handle:
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
