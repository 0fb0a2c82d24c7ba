"""Typed user code type-checks against the package's stubs (promptlab/_core.pyi,
py.typed): `with get_session() as s: return ...` is not "missing a return", because
Session.__exit__ never swallows an exception; rows are the Sequence / Mapping they
behave as; `from promptlab import PromptLab` is the class, not `object` (issue 14, item 5).
The package's own modules are checked by `mypy -p promptlab` (mypy.ini, .ci/run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

import promptlab

USER_CODE = '''
from typing import Any, Dict, List, Mapping, Optional, Sequence

from promptlab import PromptLab
from promptlab.sqlite import Result, Row, RowMapping, get_session
from promptlab.sqlite.database_manager import db_manager


def count_users(path: str) -> int:
    db_manager.initialize_database(path)
    with get_session() as s:
        return int(s.execute("SELECT count(*) FROM users").scalar())


def values(row: Sequence[Any]) -> List[Any]:
    return list(row)


def as_dict(row: Mapping[str, Any]) -> Dict[str, Any]:
    return dict(row)


def users(path: str) -> List[Dict[str, Any]]:
    with db_manager.get_session(path) as s:
        result: Result[Row] = s.execute("SELECT username, role FROM users")
        first: Optional[Row] = result.first()
        if first is not None:
            values(first)
            name: str = first.username + first["role"] + str(first[0])
            head: tuple[Any, ...] = first[:1]
            print(name, head, first._asdict(), first._fields, len(first))
        mapped: List[RowMapping] = s.execute("SELECT * FROM users").mappings().all()
        nested = s.execute_nested("SELECT 1, 1", "SELECT 1, 2 AS x", ("x",), mappings=True)
        for row in nested:
            as_dict(row)
        return [as_dict(m) for m in mapped]


def experiments(db_file: str) -> List[Mapping[str, Any]]:
    pl = PromptLab({"type": "local", "db_file": db_file})
    return list(pl.tracer.get_experiments())
'''

# What the checker must infer (reveal_type), so a stub that loosens to Any fails here.
REVEAL_CODE = '''
from promptlab import PromptLab
from promptlab.sqlite import get_session

s = get_session()
reveal_type(PromptLab)
reveal_type(s.execute("SELECT 1"))
reveal_type(s.execute("SELECT 1").one())
reveal_type(s.execute("SELECT 1").mappings().first())
reveal_type(s.execute("SELECT 1").one()[1:])
reveal_type(s.execute("SELECT 1").mappings().one().keys())
reveal_type(s.execute_nested("", "", ("a",), mappings=True).all())
reveal_type(s.__exit__(None, None, None))
'''

REVEALED = [
    "-> promptlab.core.PromptLab",  # the class, not object (its signature left out)
    "promptlab._core.Result[promptlab._core.Row]",
    "promptlab._core.Row",
    "promptlab._core.RowMapping | None",
    "tuple[Any, ...]",
    "list[str]",
    "list[promptlab._core.RowMapping]",
    "None",
]


def _mypy(tmp_path, code: str, *options: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(textwrap.dedent(code))
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(promptlab.__file__))
    if "site-packages" not in root:  # an editable install: show mypy the source tree
        env["MYPYPATH"] = root
    # Only the user's file is checked: errors inside promptlab's own modules are not
    # the user's (an editable install shows mypy the source tree, not an installed
    # package, whose errors mypy would silence anyway).
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental",
                           "--follow-imports=silent", *options, "user.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_user_code_type_checks(tmp_path):
    result = _mypy(tmp_path, USER_CODE, "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


def test_inferred_types(tmp_path):
    result = _mypy(tmp_path, REVEAL_CODE)
    # mypy < 2 writes builtins.list, builtins.str: compare without the prefix
    revealed = [t.replace("builtins.", "")
                for t in re.findall(r'note: Revealed type is "(.*)"', result.stdout)]
    assert len(revealed) == len(REVEALED), result.stdout + result.stderr
    assert revealed[0].endswith(REVEALED[0]), result.stdout
    assert revealed[1:] == REVEALED[1:], result.stdout + result.stderr
