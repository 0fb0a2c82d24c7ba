"""One rule for every password PromptLab stores: 8 to 72 bytes of UTF-8 and no NUL
(bcrypt reads only the first 72 bytes, so a longer one would be cut without a word).
PROMPTLAB_ADMIN_PASSWORD follows it in `db init`, `db admin-password`, `studio start`
and library initialization; the studio's user form follows it too."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import run_python
from migtools import admin_hash, cli
from promptlab import _core
from promptlab.sqlite.admin import set_admin_password

TOO_SHORT = "x"
TOO_LONG = "p" * 100
LONGEST = "é" * 36  # 72 bytes in UTF-8


@pytest.mark.parametrize("password, length", [(TOO_SHORT, "1 byte long"),
                                              (TOO_LONG, "100 bytes long"),
                                              ("é" * 37, "74 bytes long")])
def test_check_password_refuses_with_the_length(password, length):
    with pytest.raises(ValueError) as info:
        _core.check_password(password, "PROMPTLAB_ADMIN_PASSWORD")
    message = str(info.value)
    assert message.startswith(f"PROMPTLAB_ADMIN_PASSWORD is {length};")
    assert "8 to 72 bytes" in message


def test_check_password_bounds_and_nul():
    for ok in ("12345678", "p" * 72, LONGEST):
        assert _core.check_password(ok) is None
    with pytest.raises(ValueError, match="NUL"):
        _core.check_password("pass\0word")
    with pytest.raises(ValueError):
        _core.check_password("\ud800" * 8)  # a lone surrogate is not UTF-8
    assert (_core.PASSWORD_MIN_BYTES, _core.PASSWORD_MAX_BYTES) == (8, 72)


@pytest.mark.parametrize("password", [TOO_SHORT, TOO_LONG])
def test_db_init_refuses_and_creates_nothing(tmp_path, password):
    path = tmp_path / "lab.db"
    result = cli("db", "init", "-d", path, env={"PROMPTLAB_ADMIN_PASSWORD": password})
    assert result.returncode == 1
    assert "promptlab: error: PROMPTLAB_ADMIN_PASSWORD is" in result.stderr
    assert "Traceback" not in result.stderr and password not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("password", [TOO_SHORT, TOO_LONG])
def test_studio_start_refuses_and_creates_nothing(tmp_path, password):
    path = tmp_path / "lab.db"
    result = cli("studio", "start", "-d", path, "-p", "0",
                 env={"PROMPTLAB_ADMIN_PASSWORD": password})
    assert result.returncode == 1
    assert "PROMPTLAB_ADMIN_PASSWORD is" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("password", [TOO_SHORT, TOO_LONG])
def test_admin_password_command_refuses_and_changes_nothing(tmp_path, password):
    path = tmp_path / "lab.db"
    assert cli("db", "init", "-d", path).returncode == 0
    before = admin_hash(path)
    result = cli("db", "admin-password", "-d", path, env={"PROMPTLAB_ADMIN_PASSWORD": password})
    assert result.returncode == 1
    assert "PROMPTLAB_ADMIN_PASSWORD is" in result.stderr and "Traceback" not in result.stderr
    assert admin_hash(path) == before


def test_the_longest_password_is_kept_whole(tmp_path):
    path = tmp_path / "lab.db"
    result = cli("db", "init", "-d", path, env={"PROMPTLAB_ADMIN_PASSWORD": LONGEST})
    assert result.returncode == 0, result.stderr
    stored = admin_hash(path)
    assert _core.verify_password(LONGEST, stored)
    assert not _core.verify_password(LONGEST[:-1], stored)


@pytest.mark.parametrize("password", [TOO_SHORT, TOO_LONG])
def test_library_initialization_refuses_a_bad_variable(tmp_path, password):
    """Initialization through the library (LocalTracer, initialize_database) uses the
    variable too: it raises DatabaseError and leaves the admin without a password."""
    path = tmp_path / "lab.db"
    code = (
        "from promptlab.sqlite import DatabaseError\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        "try:\n"
        f"    db_manager.initialize_database({str(path)!r})\n"
        "except DatabaseError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = run_python(code, env={"PROMPTLAB_ADMIN_PASSWORD": password})
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "PROMPTLAB_ADMIN_PASSWORD is" in result.stdout
    assert password not in result.stdout
    con = sqlite3.connect(path)
    rows = con.execute("SELECT password_hash FROM users WHERE username = 'admin'").fetchall()
    con.close()
    assert rows in ([], [(_core.UNUSABLE_PASSWORD,)])


def test_library_set_admin_password_follows_the_rule(tmp_path):
    path = tmp_path / "lab.db"
    assert cli("db", "init", "-d", path).returncode == 0
    before = admin_hash(path)
    for bad in ("", "short", TOO_LONG):
        with pytest.raises(ValueError, match="The admin password is"):
            set_admin_password(path, bad)
    assert admin_hash(path) == before


def test_commands_read_the_variable_as_initialization_does(monkeypatch):
    # One reader of PROMPTLAB_ADMIN_PASSWORD (the C core's settings), one rule.
    monkeypatch.delenv("PROMPTLAB_ADMIN_PASSWORD", raising=False)
    assert _core.admin_password_from_environment() is None
    monkeypatch.setenv("PROMPTLAB_ADMIN_PASSWORD", "")
    assert _core.admin_password_from_environment() is None
    monkeypatch.setenv("PROMPTLAB_ADMIN_PASSWORD", LONGEST)
    assert _core.admin_password_from_environment() == LONGEST
    for bad, length in ((TOO_SHORT, "1 byte long"), ("é" * 37, "74 bytes long")):
        monkeypatch.setenv("PROMPTLAB_ADMIN_PASSWORD", bad)
        with pytest.raises(ValueError, match=f"^PROMPTLAB_ADMIN_PASSWORD is {length};"):
            _core.admin_password_from_environment()
