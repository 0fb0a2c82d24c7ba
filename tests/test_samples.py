"""The original PromptLab's sample scripts (tests/samples/, unchanged) run against this
package, with OLLAMA_HOST pointing at a fake Ollama server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

from fakes import FakeModelServer
from promptlab.tracer.local_tracer import LocalTracer

SAMPLES = Path(__file__).parent / "samples"
STUDIO_PORT = 8000  # the samples' own


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


needs_evaluators = pytest.mark.skipif(
    not has("promptlab.evaluator.evaluator_factory"),
    reason="the built-in evaluators (promptlab.evaluator) are not in this build")


def run_sample(tmp_path: Path, script: str, extra: List[str] = ()) -> Dict[str, str]:
    """Run ``script`` as a user would, from a copy of the original's folder layout;
    stop its studio with SIGTERM once it answers. Returns its output."""
    work = tmp_path / "work"
    shutil.copytree(SAMPLES / "data", work / "samples" / "data")
    for name in [script, *extra]:
        shutil.copy(SAMPLES / name, work / Path(name).name)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PROMPTLAB_PROGRESS="0",
               PROMPTLAB_MODEL_BACKOFF="0.01")
    with FakeModelServer() as fake:
        env["OLLAMA_HOST"] = fake.url
        proc = subprocess.Popen([sys.executable, script], cwd=work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            served = False
            for _ in range(200):  # bounded: the script's lines before the studio's URL
                line = proc.stdout.readline()
                if not line:
                    break
                if "running at" in line:
                    url = line.split("running at ", 1)[1].split()[0]
                    with urllib.request.urlopen(url + "/health", timeout=30) as response:
                        assert response.status == 200
                    served = True
                    proc.send_signal(signal.SIGTERM)
                    break
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        requests = list(fake.requests)
    port_taken = f"cannot listen on 127.0.0.1:{STUDIO_PORT}" in err
    if served:
        assert proc.returncode == 0, err
    else:  # port 8000 in use by something else on this machine: all but the studio ran
        assert port_taken, f"exit {proc.returncode}\n{err}"
    return {"db": str(work / "promptlab.db"), "err": err, "requests": requests}


def experiments(db: str) -> Dict[str, List[dict]]:
    rows: Dict[str, List[dict]] = {}
    for row in LocalTracer({"type": "local", "db_file": db}).get_experiments():
        rows.setdefault(row["experiment_id"], []).append(dict(row))
    return rows


def metrics(rows: List[dict]) -> List[List[str]]:
    return [[e["metric"] for e in json.loads(r["evaluation"])] for r in rows]


def test_asset_versioning(tmp_path):
    run = run_sample(tmp_path, "versioning.py")
    tracer = LocalTracer({"type": "local", "db_file": run["db"]})
    templates = tracer.get_assets_by_type("prompt_template")
    assert [(t.asset_name, t.asset_version) for t in templates] == [("essay_feedback", 0),
                                                                    ("essay_feedback", 1)]
    datasets = tracer.get_assets_by_type("dataset")
    assert [(d.asset_name, d.asset_version) for d in datasets] == [("essay_samples", 0),
                                                                   ("essay_samples", 1)]
    assert json.loads(datasets[1].asset_binary)["file_path"].endswith("essay_feedback2.jsonl")
    assert run["requests"] == []  # no model is called


@needs_evaluators
def test_quickstart(tmp_path):
    run = run_sample(tmp_path, "quickstart.py")
    rows = experiments(run["db"])["quickstart_experimet"]
    assert len(rows) == 3
    assert metrics(rows) == [["semantic_similarity", "relevance"]] * 3
    assert {r["completion_model"] for r in rows} == {"ollama/llama3.2"}
    chats = [r["body"] for r in run["requests"] if r["path"] == "/api/chat"]
    prompts = [c["messages"][1]["content"] for c in chats]
    # The template's <essay_topic> and <essay> were filled from the dataset.
    assert any("An interest or hobby that you enjoy" in p for p in prompts)
    assert not any("<essay>" in p for p in prompts)
    assert any(r["path"] == "/api/embed" for r in run["requests"])


@needs_evaluators
def test_custom_model(tmp_path):
    """Its embedding model returns ollama.embed()['embeddings'], a list holding one
    vector, which the original accepted."""
    pytest.importorskip("ollama")
    run = run_sample(tmp_path, "custom_model.py", ["custom_ollama.py"])
    rows = experiments(run["db"])["demo_experimet"]
    assert len(rows) == 3
    assert {r["completion_model"] for r in rows} == {"custom_ollama/llama3.2"}
    assert metrics(rows) == [["semantic_similarity", "relevance"]] * 3


@needs_evaluators
def test_agent_evaluation(tmp_path):
    run = run_sample(tmp_path, "agent_evaluation.py")
    rows = experiments(run["db"])["demo_agent_evaluation"]
    assert len(rows) == 3
    assert {r["completion"] for r in rows} == {
        "This is a dummy response function that returns a static response."}
    assert [json.loads(r["evaluation"]) for r in rows] == [
        [{"metric": "exact_match", "result": False}]] * 3
    assert run["requests"] == []


@needs_evaluators
def test_custom_metric(tmp_path):
    # custom_metric.py and length.py unchanged; factual_correctness.py is the sample's
    # own when ragas and langchain_ollama are installed, else our stand-in (no ragas).
    real = has("ragas") and has("langchain_ollama")
    helper = "factual_correctness.py" if real else "standins/factual_correctness.py"
    run = run_sample(tmp_path, "custom_metric.py", ["length.py", helper])
    rows = experiments(run["db"])["custom_metric_experimet"]
    assert metrics(rows) == [["length", "factual_correctness"]] * 3
    for row in rows:
        length, correctness = json.loads(row["evaluation"])
        assert length["result"] == len(row["completion"])
        assert real or correctness["result"] == 0.8  # the fake judge answers "4. ..."
