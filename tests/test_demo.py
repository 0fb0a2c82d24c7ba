"""``promptlab demo -d FILE``: offline, deterministic, repeatable."""

from __future__ import annotations

import json
import os

from helpers import cli
from promptlab.cli import main
from promptlab.tracer.local_tracer import LocalTracer


def test_demo_runs_both_versions_and_prints_the_summary(tmp_path, capsys):
    db = tmp_path / "demo" / "lab.db"
    os.makedirs(db.parent)
    assert main(["demo", "-d", str(db)]) == 0
    out = capsys.readouterr().out
    assert "not an LLM" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()
             if line.startswith(("v0 ", "v1 "))}
    assert lines["v0"][2:] == ["0.00", "0.00"]
    assert lines["v1"][2:] == ["0.92", "0.92"]
    assert f"promptlab studio start -d {db}" in out

    tracer = LocalTracer({"type": "local", "db_file": str(db)})
    templates = tracer.get_assets_by_type("prompt_template")
    assert [(t.asset_name, t.asset_version) for t in templates] == [("capital_qa", 0),
                                                                    ("capital_qa", 1)]
    (dataset,) = tracer.get_assets_by_type("dataset")
    path = json.loads(dataset.asset_binary)["file_path"]
    assert os.path.dirname(path) == str(db.parent)  # copied beside the database
    with open(path) as f:
        assert len(f.readlines()) == 12
    rows = tracer.get_experiments()
    assert len(rows) == 24
    assert {r["completion_model"] for r in rows} == {"demo/keyword-baseline"}
    assert {r["prompt_template_version"] for r in rows} == {0, 1}
    assert all({e["metric"] for e in json.loads(r["evaluation"])} == {"exact_match", "f1_score"}
               for r in rows)


def test_demo_again_reuses_the_assets(tmp_path, capsys):
    db = tmp_path / "lab.db"
    assert main(["demo", "-d", str(db)]) == 0
    assert main(["demo", "-d", str(db)]) == 0
    tracer = LocalTracer({"type": "local", "db_file": str(db)})
    assert len(tracer.get_assets_by_type("prompt_template")) == 2
    assert len(tracer.get_assets_by_type("dataset")) == 1
    assert len({r["experiment_id"] for r in tracer.get_experiments()}) == 4


def test_demo_from_the_installed_package(tmp_path):
    """The sample ships inside the package: python -m promptlab demo from any folder."""
    result = cli("demo", "-d", tmp_path / "x.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "v1 " in result.stdout


def test_demo_error_is_one_line(tmp_path, capsys):
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert main(["demo", "-d", str(folder)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("promptlab: error:")
