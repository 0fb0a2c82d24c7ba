"""The migration chain and a database's position on it.

The C core applies migrations (``db_manager.initialize_database``); this module
answers the questions around it: which migrations ship, where a database stands,
what is pending.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Union

from promptlab import _core
from promptlab.sqlite.database_manager import db_manager

StrPath = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    revision: str
    parent: Optional[str]
    message: str
    created: str
    filename: str
    checksum: str
    up: str = field(repr=False)
    down: str = field(repr=False)


@dataclass(frozen=True)
class Status:
    """Where a database stands on the migration chain."""

    path: str
    exists: bool
    current: Optional[str]
    head: Optional[str]
    pending: List[Migration]

    @property
    def up_to_date(self) -> bool:
        return self.exists and not self.pending


def migrations() -> List[Migration]:
    """The shipped migration chain, first to head (MigrationError when invalid)."""
    return [Migration(**m) for m in _core.migrations()]


def head_revision() -> Optional[str]:
    """The newest revision of the chain, or None when there is no migration."""
    chain = migrations()
    return chain[-1].revision if chain else None


def status(db_file: StrPath) -> Status:
    """Read where ``db_file`` stands without writing to it.

    A missing file has every migration pending. A database at a revision this
    version does not know raises UnknownRevisionError.
    """
    chain = migrations()
    info = _core.database_revision(db_file)
    head = chain[-1].revision if chain else None
    if not info["exists"]:
        return Status(info["path"], False, None, head, chain)
    current = info["revision"]
    known = [m.revision for m in chain]
    if current is not None and current not in known:
        raise _core.UnknownRevisionError(
            f"{info['path']}: the database is at revision {current}, which this version of "
            f"PromptLab does not know (its newest is {head}): it was written by a newer "
            "PromptLab. Upgrade PromptLab to open it; the file was left unchanged."
        )
    start = known.index(current) + 1 if current is not None else 0
    return Status(info["path"], True, current, head, chain[start:])


def upgrade(db_file: StrPath) -> Status:
    """Apply every pending migration to ``db_file`` and return its new status."""
    db_manager.initialize_database(db_file)
    return status(db_file)
