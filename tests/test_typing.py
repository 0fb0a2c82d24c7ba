"""Typed user code type-checks against the package's stubs (promptlab/_core.pyi,
py.typed): `with get_session() as s: return ...` is not "missing a return", because
Session.__exit__ never swallows an exception (issue 14, item 5 in part)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import promptlab

USER_CODE = '''
from promptlab.sqlite import get_session
from promptlab.sqlite.database_manager import db_manager


def count_users(path: str) -> int:
    db_manager.initialize_database(path)
    with get_session() as s:
        return int(s.execute("SELECT count(*) FROM users").scalar())
'''


def test_user_code_type_checks(tmp_path):
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_CODE))
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(promptlab.__file__))
    if "site-packages" not in root:  # an editable install: show mypy the source tree
        env["MYPYPATH"] = root
    # Only the user's file is checked: errors inside promptlab's own modules are not
    # the user's (an editable install shows mypy the source tree, not an installed
    # package, whose errors mypy would silence anyway).
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental",
                             "--follow-imports=silent", "user.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
