"""Helpers for the migration tests: chains of test migrations, database reads (and the
command line from helpers.py: ``cli`` in this process, ``cli_process`` in a fresh one).

A test that needs migrations of its own copies the shipped files into a temporary
folder, adds its files there, and points PROMPTLAB_MIGRATIONS_DIR at it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from conftest import HEAD
from helpers import cli, cli_process  # noqa: F401 - the command line, for these tests
from promptlab import _core

ENV = "PROMPTLAB_MIGRATIONS_DIR"
DATA = Path(__file__).parent / "data"
LEGACY = DATA / "legacy"

# The revisions of the shipped chain, first to head.
L1, L2, L3 = "402e541d4c74", "9ab590290932", "c84044d14c12"
CHAIN = [L1, L2, L3, "28f160511eaa", HEAD]


def shipped_dir() -> Path:
    """The folder of the migrations PromptLab ships (ignoring PROMPTLAB_MIGRATIONS_DIR)."""
    saved = os.environ.pop(ENV, None)
    try:
        return Path(_core.migrations_dir())
    finally:
        if saved is not None:
            os.environ[ENV] = saved


def migration_text(revision: str, parent: Optional[str], up: str, down: str = "",
                   message: str = "test migration") -> str:
    return (f"-- revision: {revision}\n-- parent: {parent or 'base'}\n-- message: {message}\n"
            f"-- created: 2026-01-01 00:00:00\n\n-- migrate:up\n{up}\n\n-- migrate:down\n{down}\n")


def copy_chain(dest: Path, extra: Optional[Dict[str, str]] = None) -> Path:
    """Copy the shipped migration files into ``dest`` (created) and add ``extra``
    (file name -> text). Returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(shipped_dir().glob("*.sql")):
        (dest / f.name).write_bytes(f.read_bytes())
    for name, text in (extra or {}).items():
        (dest / name).write_text(text, encoding="utf-8")
    return dest


@pytest.fixture
def chain_dir(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the shipped chain that the process (and its children) uses."""
    folder = copy_chain(tmp_path / "versions")
    monkeypatch.setenv(ENV, str(folder))
    return folder


def connect(path) -> sqlite3.Connection:
    """A read-only standard-library connection."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def query(path, sql: str, params=()) -> List[tuple]:
    con = connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def versions(path) -> List[str]:
    """alembic_version's rows ([] without the table)."""
    con = connect(path)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchall():
            return []
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
    finally:
        con.close()


def tables(path) -> List[str]:
    """Table names, sorted, without SQLite's own."""
    return [r[0] for r in query(path, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def integrity(path) -> str:
    return query(path, "PRAGMA integrity_check")[0][0]


def sidecars(path) -> List[str]:
    """The -wal/-shm/-journal files next to a database."""
    p = Path(path)
    return sorted(q.name for q in p.parent.iterdir()
                  if q.name.startswith(p.name) and q.name != p.name)


def admin_hash(path) -> str:
    """The stored password hash of the admin user."""
    return query(path, "SELECT password_hash FROM users WHERE username = 'admin'")[0][0]
