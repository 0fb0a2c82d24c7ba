"""Shared fixtures: every test gets its own database path and a clean registry.

Two loops:

- The inner loop, run often while working: ``pytest -m "not slow" -n 2`` (two workers,
  pytest-xdist: tests share nothing but the per-worker session fixtures). It keeps at
  least one fast case of each behaviour (a few rounds of each race, a few kill timings,
  one short browser test, a short leak loop).
- The full suite, as CI runs it: ``pytest`` (no ``-m``): also every test marked
  ``@pytest.mark.slow`` (long waits, many processes, fork storms, real browsers, long
  loops, packaging, the soak test). ``pytest -m slow`` runs only those.

Where things are: fixtures here (``db_path``, ``at_head``, ``studio``, ``config_home``);
helpers in helpers.py (the command line in-process, helper processes released on a READY
line, waiting on a condition, the suite's bcrypt cost for child code); the studio kit in
studiotools.py, the migration kit in migtools.py, fake model servers in fakes.py, rows
and configs in factories.py.

Keeping the inner loop quick: a test about what a database holds starts from
``at_head`` (a copy), not from a new file (five migrations and their fsyncs); a child
interpreter is started only when the process is what the test checks; passwords hashed
by test code cost 4 bcrypt rounds, here and in children (``TEST_BCRYPT_COST``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest

# The helper modules here (helpers.py, fakes.py, ...) are imported by their names.
sys.path.insert(0, str(Path(__file__).parent))

from helpers import NEUTRAL_CWD  # noqa: F401 - also imported from here by the tests
from promptlab.sqlite.session import reset_initialization

HEAD = "6d1e9a4c2b70"


def pytest_configure(config):
    """Studios started by the tests (in this process or in children, which inherit the
    environment) keep their signing secrets in a throwaway config folder, never in the
    user's ~/.config/promptlab."""
    if "PROMPTLAB_TEST_CONFIG_HOME" not in os.environ:
        os.environ["PROMPTLAB_TEST_CONFIG_HOME"] = tempfile.mkdtemp(prefix="promptlab-config-")
        os.environ["XDG_CONFIG_HOME"] = os.environ["PROMPTLAB_TEST_CONFIG_HOME"]
    # Passwords hashed in this process cost 4 bcrypt rounds, not 12 (0.2 s each): a hash
    # carries its cost, so every check still runs; the default is tested in a child
    # process (test_bcrypt_rounds.py). Children started by tests keep the default, unless
    # their code is test code that lowers it too (helpers.TEST_BCRYPT_COST).
    from promptlab import _core

    _core._set_bcrypt_rounds_for_tests(4)


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Each test starts with no database known to the process."""
    reset_initialization()
    yield
    reset_initialization()


@pytest.fixture(scope="session")
def _head_template(tmp_path_factory) -> Path:
    """A database that initialize_database made from nothing, once per session, then
    closed (its WAL checkpointed into the file): what ``at_head`` copies."""
    from promptlab.sqlite.database_manager import db_manager

    path = tmp_path_factory.mktemp("head-template") / "head.db"
    reset_initialization()
    db_manager.initialize_database(path)
    reset_initialization()
    assert not Path(f"{path}-wal").exists(), "the template was not closed"
    return path


@pytest.fixture
def at_head(_head_template: Path) -> Callable[[Path], Path]:
    """``at_head(path)`` puts a database at head at ``path`` (a copy, mode included, of one
    initialized once per session) and returns ``path``. For tests about what a database
    holds, not about how it is made: a new file costs five migrations and their fsyncs
    (10-80 ms), a copy about 1 ms. The tests of initialization itself start from nothing."""

    def copy(path: Path) -> Path:
        assert not Path(path).exists(), f"{path} exists already"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_head_template, path)
        return path

    return copy


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch) -> Path:
    """The per-user config folder (where generated studio secrets go), in tmp_path."""
    folder = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster for the whole run (pgserver.PostgresServer),
    removed at the end. Skips without PostgreSQL's programs; fails in CI instead."""
    from pgserver import missing_reason, start_server

    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason} (.ci/run installs "
                        "Debian's postgresql)")
        pytest.skip(reason)
    server = start_server()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """The URL of a new, empty database on the throwaway server, for one test."""
    import uuid

    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def studio(tmp_path: Path, at_head):
    """A studio serving its own database at head (``at_head``) from a thread
    (studiotools.Studio), with one admin, "root" (password studiotools.ROOT_PASSWORD)."""
    from studiotools import ROOT_PASSWORD, Studio

    s = Studio(at_head(tmp_path / "lab.db"))
    s.add_user("root", ROOT_PASSWORD, "admin")
    yield s
    s.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a database that does not exist yet."""
    return tmp_path / "promptlab.db"


def inspect_db(path) -> Dict[str, object]:
    """What a database file holds, read with the standard library's sqlite3."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            "integrity": con.execute("PRAGMA integrity_check").fetchone()[0],
            "versions": [r[0] for r in con.execute("SELECT version_num FROM alembic_version")],
            "admins": con.execute("SELECT count(*) FROM users WHERE username = 'admin'").fetchone()[0],
            "applied": con.execute("SELECT count(*) FROM promptlab_migrations").fetchone()[0],
            "journal_mode": con.execute("PRAGMA journal_mode").fetchone()[0],
        }
    finally:
        con.close()


def assert_healthy(path) -> None:
    """The database passed integrity_check, is at head once, with one admin."""
    info = inspect_db(path)
    assert info["integrity"] == "ok"
    assert info["versions"] == [HEAD]
    assert info["admins"] == 1
    assert info["applied"] == 5
    assert info["journal_mode"] == "wal"


def file_digest(path) -> str:
    """SHA-256 of a file's bytes, to prove it was left unchanged."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()




def run_python(code: str, env: Optional[Dict[str, str]] = None, cwd=None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter with this package importable."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=cwd or NEUTRAL_CWD,
                          capture_output=True, text=True, timeout=timeout)


def pytest_report_header(config):
    from promptlab import _core

    return f"promptlab._core: {_core.__file__} (SQLite {_core.sqlite_version})"

