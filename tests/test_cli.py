"""The promptlab command line: db init, migrate, status; errors as one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HEAD, assert_healthy, file_digest
from helpers import cli
from promptlab import _core


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "promptlab"
    if not script.exists():
        pytest.skip("no console script next to this interpreter (not a pip install)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("promptlab ")


def test_init_creates_database_and_prints_admin_password_once(tmp_path):
    path = tmp_path / "new" / "lab.db"
    result = cli("db", "init", "-d", path)
    assert result.returncode == 0, result.stderr
    assert f"Initialized {path} at revision {HEAD}." in result.stdout
    password = result.stdout.split("password: ")[1].split()[0]
    assert_healthy(path)
    stored = sqlite3.connect(path).execute(
        "SELECT password_hash FROM users WHERE username = 'admin'").fetchone()[0]
    assert _core.verify_password(password, stored)
    again = cli("db", "init", "-d", path)
    assert again.returncode == 0 and "password:" not in again.stdout


def test_init_with_password_from_environment_prints_none(tmp_path):
    path = tmp_path / "lab.db"
    result = cli("db", "init", "-d", path, env={"PROMPTLAB_ADMIN_PASSWORD": "from-env"})
    assert result.returncode == 0, result.stderr
    assert "password:" not in result.stdout
    stored = sqlite3.connect(path).execute("SELECT password_hash FROM users").fetchone()[0]
    assert _core.verify_password("from-env", stored)


def test_status_of_missing_new_and_migrated_database(tmp_path):
    path = tmp_path / "lab.db"
    result = cli("db", "status", "-d", path)
    assert result.returncode == 0
    assert "does not exist yet" in result.stdout and "Pending:   5 migration(s)" in result.stdout
    assert not path.exists()
    assert cli("db", "status", "-d", path, "--exit-code").returncode == 3
    assert cli("db", "migrate", "-d", path).returncode == 0
    result = cli("db", "status", "-d", path, "--json", "--exit-code")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"path": str(path), "exists": True, "current": HEAD,
                                         "head": HEAD, "pending": [], "detected": None,
                                         "drift": [], "up_to_date": True,
                                         "schema_compared": True}


def test_migrate_reports_what_it_applied(tmp_path):
    path = tmp_path / "lab.db"
    first = cli("db", "migrate", "-d", path)
    assert first.returncode == 0 and "Applied 5 migration(s)" in first.stdout
    second = cli("db", "migrate", "-d", path)
    assert second.returncode == 0 and "up to date" in second.stdout


@pytest.mark.parametrize("command", ["init", "migrate", "status"])
def test_not_a_database_is_one_line_on_stderr(tmp_path, command):
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    digest = file_digest(path)
    result = cli("db", command, "-d", path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptlab: error: ")
    assert str(path) in lines[0] and "Traceback" not in result.stderr
    assert file_digest(path) == digest


def test_folder_and_newer_database_errors(tmp_path):
    result = cli("db", "init", "-d", tmp_path)
    assert result.returncode == 1 and "folder" in result.stderr
    newer = tmp_path / "newer.db"
    con = sqlite3.connect(newer)
    con.executescript("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
                      "INSERT INTO alembic_version VALUES ('abcdefabcdef');")
    con.close()
    for command in ("init", "status"):
        result = cli("db", command, "-d", newer)
        assert result.returncode == 1 and "abcdefabcdef" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_with_2():
    assert cli().returncode == 2
    assert cli("db").returncode == 2
    assert cli("db", "init").returncode == 2
    result = cli("db", "frobnicate", "-d", "x.db")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_help_lists_the_commands():
    result = cli("db", "--help")
    assert result.returncode == 0
    for command in ("init", "migrate", "status"):
        assert command in result.stdout
