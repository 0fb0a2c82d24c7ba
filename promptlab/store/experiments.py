"""The ``experiments`` and ``experiment_result`` tables: writing an experiment with
its results, and reading them back one row per result (``get_experiments``).

The ``model``/``asset`` JSON is encoded by ``promptlab.store.formats``; the SQL
below reads inside it with the JSON paths named there.
"""

from __future__ import annotations

from promptlab._core import TraceTally
from promptlab.sqlite.database_manager import db_manager

# ASSET_KEYS starts with the prompt template's name and version (the JOIN below).
from promptlab.store.formats import ASSET_KEYS, MODEL_PATHS
from promptlab.store.summaries import has_results, stale_experiments, store_traced
from promptlab.store.users import user_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Optional, Sequence

    from promptlab.sqlite import RowMapping
    from promptlab.store.users import DbFile

# promptlab_now() (a C function on every connection) stamps each row at insert
# time in the format of the created_at DEFAULT, at a twentieth of strftime's cost.
INSERT_EXPERIMENT = (
    "INSERT INTO experiments (experiment_id, model, asset, user_id, created_at) "
    "VALUES (?, ?, ?, ?, promptlab_now())"
)
# Bound by name straight from the summary records (keys the statement does not
# name are ignored, dict and list values such as evaluation are stored as
# json.dumps() text). TraceTally unpacks each record dict into the tuple of its
# RESULT_PARAMETERS once, in C, and the tuple is bound by position.
RESULT_PARAMETERS = ("experiment_id", "dataset_record_id", "completion", "prompt_tokens",
                     "completion_tokens", "latency_ms", "evaluation")
INSERT_EXPERIMENT_RESULT = f"""
INSERT INTO experiment_result ({", ".join(RESULT_PARAMETERS)}, created_at)
VALUES ({", ".join(":" + name for name in RESULT_PARAMETERS)}, promptlab_now())
"""

_EXTRACTED = ",\n       ".join(
    [f"json_extract(e.model, '{path}') AS {name}" for name, path in MODEL_PATHS.items()]
    + [f"json_extract(e.asset, '$.{key}') AS {key}" for key in ASSET_KEYS])

# The original SELECT_EXPERIMENTS_QUERY: one row per result, newest experiment
# first, with the same columns and values; run as two queries joined in C by
# Session.execute_nested (csrc/engine/nest.c). As one SELECT, SQLite re-read the 10
# experiment columns for every result row; now it reads them once per
# experiment (10,000 rows: 21 ms before, see benchmarks/README.md for after).
# - Experiments come newest first through ix_experiments_created_at (its entries
#   end with the rowid, so that order is the ORDER BY and nothing is sorted); the
#   JSON fields, template and user are computed once per experiment.
# - Results come in the same experiment order (CROSS JOIN fixes the loop order),
#   each experiment's through ix_experiment_result_experiment_id, in insertion
#   order, which tests check. The original query left that order unspecified.
# - The experiment's rowid is the join key, first in both.
SELECT_EXPERIMENT_PARENTS = f"""
SELECT e.rowid AS erowid, e.experiment_id AS experiment_id,
       {_EXTRACTED},
       a.asset_binary AS asset_binary, u.username AS username, e.created_at AS created_at
FROM experiments e INDEXED BY ix_experiments_created_at
LEFT JOIN assets a
       ON a.asset_name = json_extract(e.asset, '$.{ASSET_KEYS[0]}')
      AND a.asset_version = json_extract(e.asset, '$.{ASSET_KEYS[1]}')
LEFT JOIN users u ON u.id = e.user_id
ORDER BY e.created_at DESC, e.rowid DESC
"""
SELECT_EXPERIMENT_RESULTS = """
SELECT e.rowid AS erowid, er.dataset_record_id AS dataset_record_id,
       er.completion AS completion, er.prompt_tokens AS prompt_tokens,
       er.completion_tokens AS completion_tokens, er.latency_ms AS latency_ms,
       er.evaluation AS evaluation
FROM experiments e INDEXED BY ix_experiments_created_at
CROSS JOIN experiment_result er INDEXED BY ix_experiment_result_experiment_id
        ON er.experiment_id = e.experiment_id
ORDER BY e.created_at DESC, e.rowid DESC
"""
# The columns of a get_experiments() row, in the original's order.
EXPERIMENT_COLUMNS = (
    "experiment_id", "completion_model", "embedding_model", "prompt_template_name",
    "prompt_template_version", "dataset_name", "dataset_version", "dataset_record_id",
    "completion", "prompt_tokens", "completion_tokens", "latency_ms", "evaluation",
    "asset_binary", "username", "created_at",
)

# The same two queries with a filter and a page: the results of one experiment
# (:experiment_id, or every experiment when it is NULL), rows :offset to :offset +
# :limit (:limit -1: all). The children walk the index in the ORDER BY's order
# (nothing is sorted), so OFFSET costs the rows skipped; the parents are only those
# of the page's rows. Both take the same parameters in the same order, as
# execute_nested binds them to both.
_WHERE = "\nWHERE (:experiment_id IS NULL OR e.experiment_id = :experiment_id)"
SELECT_EXPERIMENT_RESULTS_PAGE = (
    SELECT_EXPERIMENT_RESULTS.replace("\nORDER BY", _WHERE + "\nORDER BY").rstrip()
    + "\nLIMIT :limit OFFSET :offset")
SELECT_EXPERIMENT_PARENTS_PAGE = SELECT_EXPERIMENT_PARENTS.replace(
    "\nORDER BY", _WHERE + " AND e.rowid IN (SELECT erowid FROM ("
    + SELECT_EXPERIMENT_RESULTS_PAGE + "))\nORDER BY")
assert SELECT_EXPERIMENT_PARENTS_PAGE != SELECT_EXPERIMENT_PARENTS


def _page_params(experiment_id: Optional[str], limit: Optional[int],
                 offset: int) -> Optional[Dict[str, Any]]:
    """The parameters of the _PAGE queries, or None when nothing is filtered or cut
    (the plain queries, without the parents' IN list, are then used)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    if experiment_id is not None and not isinstance(experiment_id, str):
        raise ValueError(f"experiment_id must be a str, not {experiment_id!r}")
    if experiment_id is None and limit is None and not offset:
        return None
    return {"experiment_id": experiment_id, "limit": -1 if limit is None else limit,
            "offset": offset or 0}


def insert_experiment(db_file: DbFile, experiment_id: str, model: str, asset: str,
                      username: str, results: Sequence[Dict[str, Any]]) -> None:
    """Store an experiment owned by ``username``, all its result records and its
    summary (``promptlab.store.summaries``) in one transaction (all or nothing);
    ValueError when the user does not exist."""
    with db_manager.get_session(db_file) as session:  # commits once; rolls back on error
        session.begin()
        owner = user_id(session, username)
        # Experiments whose results SQL outside PromptLab wrote since the stored
        # summaries (usually none), looked up before this experiment's rows exist.
        stale = stale_experiments(session)
        tallied = not has_results(session, experiment_id)
        session.execute(INSERT_EXPERIMENT, (experiment_id, model, asset, owner))
        # The records are bound in C: no Python code runs per row. The tally reads
        # each record's numbers and evaluation as it goes by, for the summaries.
        tally = TraceTally(results, experiment_id, RESULT_PARAMETERS)
        session.executemany(INSERT_EXPERIMENT_RESULT, tally)
        store_traced(session, experiment_id, tally.summary() if tallied else None, stale)


def experiment_rows(db_file: DbFile, experiment_id: Optional[str] = None,
                    limit: Optional[int] = None, offset: int = 0) -> List[RowMapping]:
    """One mapping per experiment result (``EXPERIMENT_COLUMNS``), newest first; only
    those of ``experiment_id`` when given, rows ``offset`` to ``offset + limit``."""
    params = _page_params(experiment_id, limit, offset)
    with db_manager.get_session(db_file) as session:
        if params is None:
            return session.execute_nested(SELECT_EXPERIMENT_PARENTS, SELECT_EXPERIMENT_RESULTS,
                                          EXPERIMENT_COLUMNS, mappings=True).all()
        return session.execute_nested(SELECT_EXPERIMENT_PARENTS_PAGE,
                                      SELECT_EXPERIMENT_RESULTS_PAGE, EXPERIMENT_COLUMNS,
                                      params, mappings=True).all()


def iter_experiment_rows(db_file: DbFile, experiment_id: Optional[str] = None,
                         limit: Optional[int] = None, offset: int = 0) -> Iterator[RowMapping]:
    """The rows of ``experiment_rows``, built a chunk at a time while the caller
    iterates (memory stays bounded). The query starts at the first ``next()``; its
    session and read snapshot are held until the iterator is exhausted or closed
    (``close()``, or dropping it)."""
    params = _page_params(experiment_id, limit, offset)  # bad arguments raise now
    return _iter_rows(db_file, params)


def _iter_rows(db_file: DbFile, params: Optional[Dict[str, Any]]) -> Iterator[RowMapping]:
    with db_manager.get_session(db_file) as session:
        if params is None:
            rows = session.execute_nested_iter(SELECT_EXPERIMENT_PARENTS,
                                               SELECT_EXPERIMENT_RESULTS, EXPERIMENT_COLUMNS,
                                               mappings=True)
        else:
            rows = session.execute_nested_iter(SELECT_EXPERIMENT_PARENTS_PAGE,
                                               SELECT_EXPERIMENT_RESULTS_PAGE,
                                               EXPERIMENT_COLUMNS, params, mappings=True)
        with rows:  # closed before the session ends, also when the caller stops early
            yield from rows


def experiment_rows_page(db_file: DbFile, offset: int, limit: int) -> List[RowMapping]:
    """Rows ``offset`` to ``offset + limit`` of ``experiment_rows``."""
    return experiment_rows(db_file, limit=int(limit), offset=int(offset))
