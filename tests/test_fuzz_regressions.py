"""Inputs kept from fuzzing (fuzz/regressions/): each is replayed through the
real migration loader in a fresh process and must end in a list of migrations
or a MigrationError, never a crash. Inputs are split into files on lines of
"====", as fuzz/fuzz_migfile.c does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NEUTRAL_CWD

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (ROOT / "fuzz" / "regressions" / "migfile").glob("*")
               if p.is_file() and not p.name.startswith("."))

LOADER = """
import json
from promptlab import _core
try:
    print(json.dumps({"ok": [m["revision"] for m in _core.migrations()]}))
except _core.MigrationError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_there_are_regression_inputs():
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_migration_file_input_never_crashes_the_loader(case, tmp_path):
    data = case.read_bytes()
    for i, part in enumerate(data.split(b"\n====\n")[:8]):
        (tmp_path / f"{i:04d}_fuzz.sql").write_bytes(part)
    env = dict(os.environ, PROMPTLAB_MIGRATIONS_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", LOADER], capture_output=True, text=True,
                            cwd=NEUTRAL_CWD, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout)
    if "error" in outcome:
        assert "_fuzz.sql" in outcome["error"] or str(tmp_path) in outcome["error"]
    else:
        assert all(len(r) <= 32 for r in outcome["ok"])
