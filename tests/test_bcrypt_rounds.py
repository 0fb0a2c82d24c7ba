"""_core._set_bcrypt_rounds_for_tests: a lower bcrypt cost for test suites only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import NEUTRAL_CWD
from promptlab import _core


def test_the_library_default_is_12_rounds():
    """The suite lowers the cost in its own process (conftest.py); a fresh process hashes
    at the product's cost."""
    out = subprocess.run([sys.executable, "-c", "from promptlab import _core; "
                          "print(_core.hash_password('abcdefgh')[:7])"],
                         capture_output=True, text=True, check=True, timeout=60,
                         cwd=NEUTRAL_CWD).stdout
    assert out.strip() == "$2b$12$"


def test_lower_cost_for_tests_then_default_again():
    previous = _core._set_bcrypt_rounds_for_tests(4)
    try:
        hashed = _core.hash_password("correct horse")
        assert hashed.startswith("$2b$04$")
        assert _core.verify_password("correct horse", hashed)
        assert not _core.verify_password("wrong horse", hashed)
    finally:
        assert _core._set_bcrypt_rounds_for_tests(previous) == 4
    # The default again: a hash carries its cost, so the cheap one still verifies.
    assert _core.hash_password("correct horse").startswith(f"$2b${previous:02d}$")
    assert _core.verify_password("correct horse", hashed)


@pytest.mark.parametrize("rounds", [3, 32, -1])
def test_out_of_range_is_refused_and_changes_nothing(rounds):
    before = _core._set_bcrypt_rounds_for_tests(5)
    try:
        with pytest.raises(ValueError, match="between 4 and 31"):
            _core._set_bcrypt_rounds_for_tests(rounds)
        assert _core.hash_password("abcdefgh").startswith("$2b$05$")
    finally:
        _core._set_bcrypt_rounds_for_tests(before)


def test_explicit_rounds_win_over_the_test_cost():
    before = _core._set_bcrypt_rounds_for_tests(4)
    try:
        assert _core.hash_password("abcdefgh", rounds=5).startswith("$2b$05$")
    finally:
        _core._set_bcrypt_rounds_for_tests(before)


def test_generated_admin_password_uses_the_test_cost(tmp_path):
    """set_admin_password_if_unusable hashes in C at the cost in use, once."""
    db = tmp_path / "admin.db"
    before = _core._set_bcrypt_rounds_for_tests(4)
    try:
        assert _core.set_admin_password_if_unusable(db, "first-password") is True
        assert _core.set_admin_password_if_unusable(db, "second-password") is False
        with _core.db_manager.get_session(db) as s:
            stored = s.execute(
                "SELECT password_hash FROM users WHERE username = 'admin'").scalar()
    finally:
        _core._set_bcrypt_rounds_for_tests(before)
    assert stored.startswith("$2b$04$")
    assert _core.verify_password("first-password", stored)
    with pytest.raises(ValueError, match="The admin password is 3 bytes long"):
        _core.set_admin_password_if_unusable(db, "abc")
