"""One authority per rule (issue 14): the migration-chain checks, the schema
normalizer, the legacy_ prefix and SQL keywords are the C core's, and every path
(status, upgrade, drift, legacy detection, autogenerate) gets the same answer."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import HEAD, file_digest
from migtools import L2, query
from promptlab import _core
from promptlab.sqlite import MigrationError, UnknownRevisionError
from promptlab.sqlite.migrations import sql, status, upgrade

# --- the migration-chain checks: status() asks the core, as upgrade() does -----------


def _set_versions(path, *revisions):
    con = sqlite3.connect(path)
    con.execute("DELETE FROM alembic_version")
    con.executemany("INSERT INTO alembic_version VALUES (?)", [(r,) for r in revisions])
    con.commit()
    con.close()


@pytest.mark.parametrize("revisions, error, text", [
    ((HEAD, L2), MigrationError,
     "alembic_version holds 2 rows (several heads); PromptLab keeps one linear history. "
     "The file was left unchanged."),
    (("ffffffffffff",), UnknownRevisionError,
     f"the database is at revision ffffffffffff, which this version of PromptLab does not "
     f"know (its newest is {HEAD}): it was written by a newer PromptLab. Upgrade PromptLab "
     "to open it; the file was left unchanged."),
    (("f" * 40,), UnknownRevisionError, "which this version of PromptLab does not know"),
])
def test_status_and_upgrade_refuse_with_the_same_message(db_path, revisions, error, text):
    upgrade(db_path)
    _set_versions(db_path, *revisions)
    digest = file_digest(db_path)
    messages = []
    for call in (lambda: status(db_path), lambda: upgrade(db_path), lambda: sql(db_path),
                 lambda: _core.database_revision(db_path)):
        with pytest.raises(error) as info:
            call()
        messages.append(str(info.value))
    assert len(set(messages)) == 1, messages
    assert messages[0].startswith(f"{db_path}: ") and text in messages[0]
    assert file_digest(db_path) == digest
