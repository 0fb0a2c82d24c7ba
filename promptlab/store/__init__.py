"""The data layer: the one owner of every SQL statement over PromptLab's tables and
of every format stored in their columns.

- ``formats``: the texts in columns (prompt template, dataset file, experiment
  model/asset JSON, evaluations), one encoder and one decoder each;
- ``users``: the ``users`` table and the admin's password hash;
- ``assets``: the ``assets`` table;
- ``experiments``: writing experiments with their results, reading them per result;
- ``summaries``: the per-experiment aggregates stored with each experiment's results;
- ``results``: the studio's record pages, comparisons and health reads.

The tracer, the studio, the CLI and the PromptLab API call these functions; none
of them writes SQL or parses a stored format itself (``tests/test_store.py``
checks). Each function opens a session on the database file it is given, but for the
point lookups (``get_asset``, ``get_latest_asset``, ``get_user``): those read through a
``promptlab._core.Lookup`` (a pooled connection's cached statement, the record built in
C), with the same guarantees and errors.
"""

_models = None


def record_classes():
    """``promptlab.sqlite.models``, imported by the first call that builds a record and
    kept: reading experiments never needs it (start-up), and a lookup should not pay an
    import statement on every call (about 0.6 µs)."""
    global _models
    if _models is None:
        from promptlab.sqlite import models

        _models = models
    return _models


def lookup(sql: str, plan_name: str):
    """A ``promptlab._core.Lookup`` of ``sql`` whose row becomes the record of
    ``promptlab.sqlite.models.<plan_name>`` (made once per statement by its caller:
    the record classes are imported on first use, see record_classes)."""
    from promptlab._core import Lookup

    models = record_classes()
    return Lookup(sql, getattr(models, plan_name), models.parse_timestamp)
