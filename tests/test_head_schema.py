"""`promptlab db status` on a database at the shipped head compares its schema catalog
with the one recorded in promptlab/sqlite/head_schema.py instead of running the chain
in memory (issue 16: the start-up of `db status`). The record must be current, and a
database that differs from it still gets the full comparison."""

from __future__ import annotations

import sqlite3

import pytest

from promptlab import _core
from promptlab.sqlite import head_schema, migrations
from promptlab.sqlite.migrations import status, upgrade

STALE = ("promptlab/sqlite/head_schema.py is stale; regenerate it with "
         "`python -m promptlab.sqlite.head_schema` after changing a migration")


def test_the_recorded_head_is_the_chains():
    chain = migrations.migrations()
    assert head_schema.REVISION == chain[-1].revision, STALE
    assert head_schema.CHECKSUMS == tuple(m.checksum for m in chain), STALE
    assert head_schema.CATALOG == _core.chain_schema("head"), STALE


def test_status_at_the_head_needs_no_chain_in_memory(db_path, monkeypatch):
    upgrade(db_path)
    migrations._CHAIN_SCHEMAS.clear()

    def refuse(*args, **kwargs):
        raise AssertionError("ran the chain in memory")

    monkeypatch.setattr(_core, "chain_schema", refuse)
    state = status(db_path)
    assert state.up_to_date and state.drift == []


def test_a_database_that_differs_is_still_compared(db_path):
    upgrade(db_path)
    con = sqlite3.connect(db_path)
    con.execute("CREATE INDEX ix_by_hand ON assets (asset_description)")
    con.commit()
    con.close()
    drift = status(db_path).drift
    assert [d.kind for d in drift] == ["schema"] and "ix_by_hand" in str(drift[0])


@pytest.mark.parametrize("edit", ["checksum"])
def test_an_edited_chain_is_not_taken_for_the_shipped_one(db_path, monkeypatch, edit):
    upgrade(db_path)
    monkeypatch.setattr(head_schema, "CHECKSUMS", ("0" * 16,) * len(head_schema.CHECKSUMS))
    calls = []
    real = _core.chain_schema
    migrations._CHAIN_SCHEMAS.clear()
    monkeypatch.setattr(_core, "chain_schema", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert status(db_path).drift == [] and calls
