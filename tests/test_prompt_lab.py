"""The high-level API: PromptLab(tracer_config) with .asset, .experiment and .studio,
against fake model servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from fakes import FakeModelServer
from helpers import TEST_BCRYPT_COST
from promptlab import PromptLab
from promptlab.sqlite.database_manager import db_manager
from promptlab.studio.queries import SELECT_METRICS
from promptlab.types import Dataset, ExperimentConfig, ModelResponse, PromptTemplate, TracerConfig


class Contains:
    """A custom evaluator: 1.0 when the reference is in the response."""

    def evaluate(self, data):
        return 1.0 if data["reference"] in data["response"] else 0.0


class Length:
    def evaluate(self, data):
        return len(data["response"])


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MODEL_BACKOFF", "0.01")
    monkeypatch.setenv("PROMPTLAB_PROGRESS", "0")
    with FakeModelServer() as server:
        yield server


@pytest.fixture
def pl(tmp_path, at_head):
    return PromptLab({"type": "local", "db_file": str(at_head(tmp_path / "lab.db"))})


def write_dataset(path: Path, count: int = 4) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            f.write(json.dumps({"id": f"r{i}", "topic": f"topic {i}", "essay": f"essay {i}",
                                "feedback": f"topic {i}"}) + "\n")
    return path


def setup_assets(pl, tmp_path, count: int = 4):
    pt = pl.asset.create(PromptTemplate(
        name="essay_feedback", description="feedback", system_prompt="You grade <topic>.",
        user_prompt="Topic: <topic>\nEssay: <essay>"))
    ds = pl.asset.create(Dataset(name="essays", description="essays",
                                 file_path=str(write_dataset(tmp_path / "d.jsonl", count))))
    return pt, ds


def config(fake, pt, ds, name="exp", **model):
    return {
        "name": name,
        "completion_model_config": {"name": "ollama/llama3.2", "type": "completion",
                                    "endpoint": fake.url, **model},
        "prompt_template": pt,
        "dataset": ds,
        "evaluation": [
            {"metric": "contains", "column_mapping": {"response": "$completion",
                                                      "reference": "feedback"},
             "evaluator": Contains()},
            {"metric": "length", "column_mapping": {"response": "$completion"},
             "evaluator": Length()},
        ],
    }


def experiment_rows(pl):
    return [dict(r) for r in pl.tracer.get_experiments()]


# --- assets ----------------------------------------------------------------------


def test_assets_create_update_get(pl, tmp_path):
    pt, ds = setup_assets(pl, tmp_path)
    assert (pt.version, ds.version) == (0, 0)
    assert os.path.isabs(ds.file_path)
    got = pl.asset.get(asset_name="essay_feedback", version=0)
    assert isinstance(got, PromptTemplate)
    assert (got.system_prompt, got.user_prompt) == ("You grade <topic>.",
                                                    "Topic: <topic>\nEssay: <essay>")
    v1 = pl.asset.update(PromptTemplate(name="essay_feedback", description="v1",
                                        system_prompt="  Be kind.  ", user_prompt="<essay>\n"))
    assert v1.version == 1
    again = pl.asset.get("essay_feedback", 1)
    assert (again.system_prompt, again.user_prompt, again.description) == (
        "  Be kind.  ", "<essay>\n", "v1")
    other = write_dataset(tmp_path / "d2.jsonl", 2)
    ds1 = pl.asset.update(Dataset(name="essays", description="more", file_path=str(other)))
    assert ds1.version == 1
    got_ds = pl.asset.get("essays", 1)
    assert isinstance(got_ds, Dataset) and got_ds.file_path == str(other)
    assert pl.asset.get("essays", 0).file_path == str(tmp_path / "d.jsonl")


def test_asset_errors(pl, tmp_path):
    setup_assets(pl, tmp_path)
    for bad in ("1abc", "has space", "", "a/b", "ünï"):
        with pytest.raises(ValueError, match="Invalid asset name"):
            pl.asset.create(PromptTemplate(name=bad, description="d", system_prompt="s",
                                           user_prompt="u"))
    with pytest.raises(ValueError, match="already exists.*update"):
        pl.asset.create(PromptTemplate(name="essay_feedback", description="d",
                                       system_prompt="s", user_prompt="u"))
    with pytest.raises(FileNotFoundError, match="no file at"):
        pl.asset.create(Dataset(name="gone", description="d", file_path=str(tmp_path / "x")))
    with pytest.raises(ValueError, match="create it"):
        pl.asset.update(Dataset(name="never", description="d",
                                file_path=str(tmp_path / "d.jsonl")))
    with pytest.raises(ValueError, match="is a prompt_template"):
        pl.asset.update(Dataset(name="essay_feedback", description="d",
                                file_path=str(tmp_path / "d.jsonl")))
    with pytest.raises(ValueError, match="not found"):
        pl.asset.get("essays", 7)
    with pytest.raises(TypeError):
        pl.asset.create({"name": "dict"})
    # Nothing of the refused calls was stored.
    names = {a.asset_name for a in pl.tracer.get_assets_by_type("prompt_template")}
    assert names == {"essay_feedback"}
    assert [a.asset_version for a in pl.tracer.get_assets_by_type("dataset")] == [0]


def test_tracer_config_object(tmp_path):
    pl = PromptLab(TracerConfig(type="local", db_file=str(tmp_path / "t.db")))
    assert pl.tracer.db_file == str(tmp_path / "t.db")


# --- experiments -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["run", "run_async"])
def test_experiment_fills_prompts_and_stores_evaluations(pl, fake, tmp_path, mode):
    pt, ds = setup_assets(pl, tmp_path)
    cfg = config(fake, pt, ds)
    result = (pl.experiment.run(cfg) if mode == "run"
              else asyncio.run(pl.experiment.run_async(cfg)))
    assert result == "exp"
    bodies = sorted((r["body"]["messages"] for r in fake.requests), key=str)
    assert bodies[0] == [{"role": "system", "content": "You grade topic 0."},
                         {"role": "user", "content": "Topic: topic 0\nEssay: essay 0"}]
    rows = experiment_rows(pl)
    assert [r["dataset_record_id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    for row in rows:
        assert row["experiment_id"] == "exp"
        assert row["completion_model"] == "ollama/llama3.2"
        assert row["prompt_template_name"] == "essay_feedback"
        assert (row["dataset_name"], row["dataset_version"]) == ("essays", 0)
        assert row["prompt_tokens"] == 11
        evaluation = json.loads(row["evaluation"])
        assert [e["metric"] for e in evaluation] == ["contains", "length"]
        assert evaluation[0]["result"] == 1.0
        assert evaluation[1]["result"] == len(row["completion"])
    # The studio's own query averages what was stored.
    with db_manager.get_session(pl.tracer.db_file) as session:
        metrics = {r.metric: r.average for r in session.execute(SELECT_METRICS)}
    assert metrics["contains"] == 1.0
    assert metrics["length"] == sum(len(r["completion"]) for r in rows) / 4


@pytest.mark.parametrize("mode", ["run", "run_async"])
def test_concurrency_is_bounded_by_max_concurrent_tasks(pl, fake, tmp_path, mode):
    pt, ds = setup_assets(pl, tmp_path, count=9)
    fake.hold_until(3)  # each request waits until three are in progress
    cfg = config(fake, pt, ds, max_concurrent_tasks=3)
    if mode == "run":
        pl.experiment.run(cfg)
    else:
        asyncio.run(pl.experiment.run_async(cfg))
    assert fake.max_in_flight == 3
    assert len(experiment_rows(pl)) == 9


@pytest.mark.parametrize("mode", ["run", "run_async"])
def test_agent_proxy_sync_and_async(pl, tmp_path, mode):
    _, ds = setup_assets(pl, tmp_path)
    seen = []

    async def agent(inputs):
        seen.append(inputs["id"])
        return ModelResponse(response=inputs["topic"], prompt_tokens=1, completion_tokens=2,
                             latency_ms=3)

    def blocking_agent(inputs):
        seen.append(inputs["id"])
        return ModelResponse(response=inputs["topic"], prompt_tokens=1, completion_tokens=2,
                             latency_ms=3)

    for name, proxy in (("async_agent", agent), ("sync_agent", blocking_agent)):
        cfg = {"name": name, "agent_proxy": proxy, "dataset": ds,
               "evaluation": [{"metric": "contains", "evaluator": Contains(),
                               "column_mapping": {"response": "$completion",
                                                  "reference": "feedback"}}]}
        if mode == "run":
            pl.experiment.run(cfg)
        else:
            asyncio.run(pl.experiment.run_async(ExperimentConfig(**cfg)))
    assert sorted(seen) == sorted(["r0", "r1", "r2", "r3"] * 2)
    rows = experiment_rows(pl)
    assert len(rows) == 8
    assert {r["completion_model"] for r in rows} == {None}
    assert all(json.loads(r["evaluation"]) == [{"metric": "contains", "result": 1.0}]
               for r in rows)


@pytest.mark.parametrize("mode", ["run", "run_async"])
def test_a_failed_run_leaves_no_experiment(pl, fake, tmp_path, mode):
    pt, ds = setup_assets(pl, tmp_path, count=6)
    cfg = config(fake, pt, ds, max_concurrent_tasks=1)
    fake.fail(500, times=50)  # more than the retries
    with pytest.raises(Exception, match="500"):
        if mode == "run":
            pl.experiment.run(cfg)
        else:
            asyncio.run(pl.experiment.run_async(cfg))
    assert experiment_rows(pl) == []


@pytest.mark.parametrize("mode", ["run", "run_async"])
def test_an_interrupted_run_leaves_no_experiment(pl, tmp_path, mode):
    # Python turns SIGINT into KeyboardInterrupt only when it was not ignored at start-up;
    # a shell ignores it in background jobs (pytest ... &), so set the handler here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupted_run(pl, tmp_path, mode)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted_run(pl, tmp_path, mode):
    _, ds = setup_assets(pl, tmp_path, count=6)
    calls = []

    def agent(inputs):
        calls.append(inputs["id"])
        if len(calls) == 3:  # Ctrl-C, as the terminal sends it
            os.kill(os.getpid(), signal.SIGINT)
        return ModelResponse("ok", 0, 0, 0)

    cfg = {"name": "interrupted", "agent_proxy": agent, "dataset": ds, "evaluation": []}
    with pytest.raises(KeyboardInterrupt):
        if mode == "run":
            pl.experiment.run(cfg)
        else:
            asyncio.run(pl.experiment.run_async(cfg))
    assert experiment_rows(pl) == []
    # The same name can be run again afterwards.
    cfg["agent_proxy"] = lambda inputs: ModelResponse("ok", 0, 0, 0)
    pl.experiment.run(cfg)
    assert len(experiment_rows(pl)) == 6


def test_problems_are_found_before_any_model_call(pl, fake, tmp_path):
    pt, ds = setup_assets(pl, tmp_path)
    cfg = config(fake, pt, ds)
    cfg["evaluation"] = [{"metric": "no_such_metric_anywhere",
                          "column_mapping": {"response": "$completion"}}]
    with pytest.raises(ValueError, match="no_such_metric_anywhere"):
        pl.experiment.run(cfg)
    cfg = config(fake, pt, ds)
    cfg["evaluation"][0]["column_mapping"]["reference"] = "missing_column"
    with pytest.raises(ValueError, match="missing_column"):
        pl.experiment.run(cfg)
    bad = pl.asset.create(PromptTemplate(name="bad", description="d", system_prompt="s",
                                         user_prompt="<nope> and <br/> stays"))
    with pytest.raises(ValueError, match="'nope'.*placeholder"):
        pl.experiment.run(config(fake, bad, ds))
    cfg = config(fake, pt, ds)
    cfg["completion_model_config"]["name"] = "acme/model"
    with pytest.raises(ValueError, match="Unknown model"):
        pl.experiment.run(cfg)
    with pytest.raises(ValueError, match="completion_model_config or an agent_proxy"):
        pl.experiment.run({"name": "x", "dataset": ds, "evaluation": []})
    assert fake.requests == []
    assert experiment_rows(pl) == []


def test_dataset_records_need_unique_ids(pl, fake, tmp_path):
    pt, _ = setup_assets(pl, tmp_path)
    path = tmp_path / "noid.jsonl"
    path.write_text('{"id": 1, "topic": "a", "essay": "b"}\n{"topic": "c", "essay": "d"}\n')
    ds = pl.asset.create(Dataset(name="noid", description="d", file_path=str(path)))
    with pytest.raises(ValueError, match="line 2.*\"id\""):
        pl.experiment.run(config(fake, pt, ds))
    path.write_text('{"id": 1, "topic": "a", "essay": "b"}\n\n{"id": 1, "topic": "c"}\n')
    with pytest.raises(ValueError, match="line 3.*used before"):
        pl.experiment.run(config(fake, pt, ds))
    assert fake.requests == []


def test_duplicate_experiment_name_is_a_clear_error(pl, fake, tmp_path):
    pt, ds = setup_assets(pl, tmp_path)
    pl.experiment.run(config(fake, pt, ds, max_concurrent_tasks=2))
    with pytest.raises(ValueError, match="'exp' exists already"):
        pl.experiment.run(config(fake, pt, ds))
    assert len(experiment_rows(pl)) == 4
    unnamed = config(fake, pt, ds)
    del unnamed["name"]
    experiment_id = pl.experiment.run(unnamed)
    assert len(experiment_id) == 36  # a uuid4
    assert len(experiment_rows(pl)) == 8


def test_progress_bar_on_request(pl, fake, tmp_path, capsys, monkeypatch):
    pt, ds = setup_assets(pl, tmp_path)
    monkeypatch.setenv("PROMPTLAB_PROGRESS", "1")
    pl.experiment.run(config(fake, pt, ds))
    err = capsys.readouterr().err
    assert "exp [" in err and "4/4" in err and err.endswith("\n")
    monkeypatch.setenv("PROMPTLAB_PROGRESS", "0")
    pl.experiment.run(config(fake, pt, ds, name="quiet"))
    assert capsys.readouterr().err == ""


def test_embedding_model_reaches_custom_evaluators(pl, fake, tmp_path):
    pt, ds = setup_assets(pl, tmp_path)

    class Similar:
        def evaluate(self, data):
            a, b = self.embedding(data["response"]), self.embedding(data["reference"])
            return sum(x * y for x, y in zip(a, b))

    cfg = config(fake, pt, ds)
    cfg["embedding_model_config"] = {"name": "ollama/nomic-embed-text", "type": "embedding",
                                     "endpoint": fake.url}
    cfg["evaluation"] = [{"metric": "similar", "evaluator": Similar(),
                          "column_mapping": {"response": "$completion",
                                             "reference": "feedback"}}]
    pl.experiment.run(cfg)
    rows = experiment_rows(pl)
    assert rows[0]["embedding_model"] == "ollama/nomic-embed-text"
    assert all(0 < json.loads(r["evaluation"])[0]["result"] <= 1.0 + 1e-9 for r in rows)
    assert "/api/embed" in fake.paths()


# --- studio ------------------------------------------------------------------------


def test_start_async_leaves_the_event_loop_running(tmp_path):
    """Other tasks go on while the studio serves (the original ran it on the loop)."""
    db = tmp_path / "lab.db"
    code = TEST_BCRYPT_COST + (
        "import asyncio, urllib.request\n"
        "from promptlab import PromptLab\n"
        f"pl = PromptLab({{'type': 'local', 'db_file': {str(db)!r}}})\n"
        "async def main():\n"
        "    studio = asyncio.ensure_future(pl.studio.start_async(0))\n"
        "    ticks = 0\n"
        "    while ticks < 100:\n"
        "        await asyncio.sleep(0.01)\n"
        "        ticks += 1\n"
        "    studio.cancel()\n"
        "    try:\n"
        "        await studio\n"
        "    except asyncio.CancelledError:\n"
        "        pass\n"
        "    print('TICKS', ticks, flush=True)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "TICKS 100" in result.stdout and "running at" in result.stdout


@pytest.mark.parametrize("call", ["start(0)", "asyncio.run(pl.studio.start_async(0))"])
def test_studio_serves_the_database_until_sigterm(tmp_path, call):
    db = tmp_path / "lab.db"
    code = (TEST_BCRYPT_COST + "import asyncio\nfrom promptlab import PromptLab\n"
            f"pl = PromptLab({{'type': 'local', 'db_file': {str(db)!r}}})\n"
            + (f"pl.studio.{call}\n" if call.startswith("start") else f"{call}\n")
            + "print('RETURNED', flush=True)\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        url = None
        for _ in range(50):  # bounded: the lines before the URL
            line = proc.stdout.readline()
            if not line:
                break
            if "running at" in line:
                url = line.split("running at ", 1)[1].split()[0]
                break
        assert url and url.startswith("http://127.0.0.1:"), proc.stderr.read()
        with urllib.request.urlopen(url + "/health", timeout=30) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "RETURNED" in out
