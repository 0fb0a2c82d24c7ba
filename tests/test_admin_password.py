"""The admin password of databases the original PromptLab wrote: it upgraded them with
the admin/admin account they had, so the commands that upgrade or serve such a file
say so, the studio refuses to serve it to the network, and
`promptlab db admin-password` replaces it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import HEAD, assert_healthy
from migtools import L3, LEGACY, admin_hash, cli, versions
from promptlab import _core
from promptlab.sqlite.admin import (
    admin_has_default_password,
    default_password_warning,
    set_admin_password,
)

# "admin", as the original stored it but at 4 rounds instead of 12: each command here
# checks the admin against the default password, 0.2 s at 12 rounds. A hash carries its
# cost, so the checks are the same; that the original's own hash (passlib, 12 rounds)
# verifies is test_manager.py's, and test_studio_auth.py signs in with it.
ADMIN_HASH = "$2b$04$JjrTrtA52rUbtDcQTwQLEOeD7Xt.N77IWkEzHjReR9.Zc70t8SRFm"
OTHER_HASH = "$2b$12$" + "a" * 53


def original_database(path: Path) -> Path:
    """A database as PromptLab 0.1.4-0.1.11 left it: layout L3, admin/admin and a
    second user."""
    con = sqlite3.connect(path)
    con.executescript((LEGACY / "L3-0.1.4-0.1.11.sql").read_text())
    con.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                    [(1, "admin", ADMIN_HASH, "admin", 1, "2025-07-10 09:00:00"),
                     (2, "zoë", OTHER_HASH, "engineer", 1, "2025-07-11 10:00:00")])
    con.commit()
    con.close()
    return path


def test_migrate_of_an_original_database_warns_about_its_admin_password(tmp_path):
    path = original_database(tmp_path / "old.db")
    result = cli("db", "migrate", "-d", path)
    assert result.returncode == 0, result.stderr
    assert f"now at revision {HEAD}" in result.stdout
    assert "default password 'admin'" in result.stderr
    assert f"promptlab db admin-password -d {path}" in result.stderr
    assert admin_hash(path) == ADMIN_HASH  # warned, not changed behind the user's back
    assert admin_has_default_password(path)


def test_admin_password_replaces_it_and_prints_it_once(tmp_path):
    path = original_database(tmp_path / "old.db")
    result = cli("db", "admin-password", "-d", path)
    assert result.returncode == 0, result.stderr
    password = result.stdout.split("password: ")[1].split()[0]
    stored = admin_hash(path)
    assert _core.verify_password(password, stored)
    assert not _core.verify_password("admin", stored)
    con = sqlite3.connect(path)
    assert con.execute("SELECT password_hash FROM users WHERE username = 'zoë'"
                       ).fetchone()[0] == OTHER_HASH
    con.close()
    assert_healthy(path)
    again = cli("db", "migrate", "-d", path)
    assert again.returncode == 0 and "warning" not in again.stderr


def test_admin_password_from_the_environment_is_not_printed(tmp_path):
    path = original_database(tmp_path / "old.db")
    result = cli("db", "admin-password", "-d", path,
                 env={"PROMPTLAB_ADMIN_PASSWORD": "correct horse"})
    assert result.returncode == 0, result.stderr
    assert "correct horse" not in result.stdout and "password:" not in result.stdout
    assert _core.verify_password("correct horse", admin_hash(path))


def test_admin_password_of_a_missing_file_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    result = cli("db", "admin-password", "-d", path)
    assert result.returncode == 1
    assert f"{path} does not exist" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_new_databases_get_no_warning_and_the_default_cannot_be_given(tmp_path):
    fresh = cli("db", "init", "-d", tmp_path / "a.db")
    assert fresh.returncode == 0 and "warning" not in fresh.stderr
    # The original's default, 'admin', is too short for the password rule (issue 11):
    # refused before any file is made.
    given = cli("db", "init", "-d", tmp_path / "b.db", env={"PROMPTLAB_ADMIN_PASSWORD": "admin"})
    assert given.returncode == 1
    assert "PROMPTLAB_ADMIN_PASSWORD is 5 bytes long" in given.stderr
    assert not (tmp_path / "b.db").exists()


def test_studio_refuses_to_serve_the_default_password_to_the_network(tmp_path):
    path = original_database(tmp_path / "old.db")
    result = cli("studio", "start", "-d", path, "--host", "0.0.0.0", "-p", "0")
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "promptlab db admin-password" in result.stderr
    assert "Traceback" not in result.stderr
    assert admin_hash(path) == ADMIN_HASH


def test_library_functions(tmp_path):
    path = original_database(tmp_path / "old.db")
    assert "default password 'admin'" in default_password_warning(path)
    assert set_admin_password(path, "s3cret-pass") == "s3cret-pass"
    assert default_password_warning(path) is None
    generated = set_admin_password(path)
    assert len(generated) >= 16 and _core.verify_password(generated, admin_hash(path))


def test_migrate_to_an_older_revision_leaves_it_there(tmp_path):
    """The password check opens a session, which would migrate to head: it is skipped
    when migrate stops earlier."""
    path = original_database(tmp_path / "old.db")
    result = cli("db", "migrate", "-d", path, "--to", L3)
    assert result.returncode == 0, result.stderr
    assert versions(path) == [L3] and "warning" not in result.stderr
