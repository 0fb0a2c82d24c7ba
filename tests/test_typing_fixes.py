"""Real bugs that mypy found when the per-module error codes were switched off."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptlab.sqlite import MigrationError
from promptlab.sqlite.autogenerate import load_tables


def test_models_file_without_py_suffix_is_a_migration_error(tmp_path: Path) -> None:
    # A path (it has a separator) to a file whose suffix no import loader handles:
    # spec_from_file_location returns None, which was then dereferenced
    # (AttributeError: 'NoneType' object has no attribute 'loader').
    path = tmp_path / "models.txt"
    path.write_text("TABLES = ()\n")
    with pytest.raises(MigrationError, match="not a Python source file"):
        load_tables(str(path))


def test_models_file_with_py_suffix_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "my_models.py"
    path.write_text("from promptlab.sqlite.models import TABLES\n")
    assert [t.name for t in load_tables(str(path))] == [
        "users", "assets", "experiments", "experiment_result", "experiment_summary",
        "experiment_metric"]
