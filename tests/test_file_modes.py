"""New database files are created 0600 (the umask applies on top), so experiments
and password hashes are not readable by other users of the machine;
PROMPTLAB_FILE_MODE widens it for a team (issue 12, item 15). SQLite gives the
-wal and -shm files the mode of the database file."""

from __future__ import annotations

import os
import stat

import pytest

from conftest import run_python
from promptlab.sqlite import get_session
from promptlab.sqlite.database_manager import db_manager


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_are_private(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
        assert mode(db_path) == 0o600
        assert mode(str(db_path) + "-wal") == 0o600
        assert mode(str(db_path) + "-shm") == 0o600


def test_an_existing_file_keeps_its_mode(db_path):
    db_manager.initialize_database(db_path)
    os.chmod(db_path, 0o640)
    db_manager.reset_initialization()
    db_manager.initialize_database(db_path)
    assert mode(db_path) == 0o640


@pytest.mark.parametrize("value, expected", [("0660", 0o660), ("0644", 0o644),
                                             ("0400", 0o600), ("777", 0o600), ("x", 0o600)])
def test_file_mode_from_the_environment(tmp_path, value, expected):
    """An octal mode that lets the owner read and write, at most 0666; anything else
    falls back to 0600."""
    path = tmp_path / "team.db"
    code = (
        "import os\n"
        "os.umask(0o002)\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"db_manager.initialize_database({str(path)!r})\n"
    )
    result = run_python(code, env={"PROMPTLAB_FILE_MODE": value})
    assert result.returncode == 0, result.stderr
    assert mode(path) == expected


def test_the_umask_applies(tmp_path):
    path = tmp_path / "masked.db"
    code = (
        "import os\n"
        "os.umask(0o077)\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"db_manager.initialize_database({str(path)!r})\n"
    )
    result = run_python(code, env={"PROMPTLAB_FILE_MODE": "0660"})
    assert result.returncode == 0, result.stderr
    assert mode(path) == 0o600


def test_db_init_creates_a_private_file(tmp_path):
    from migtools import cli

    path = tmp_path / "cli.db"
    assert cli("db", "init", "-d", path).returncode == 0
    assert mode(path) == 0o600
