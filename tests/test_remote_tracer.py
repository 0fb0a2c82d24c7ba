"""The remote tracer (ApiTracer) against a real studio on a loopback port, through a
proxy that can lose answers, and the tracer factory.

The proxy forwards each request to the studio; for the requests a test plans to fail
it either forwards the request, reads the studio's whole answer, and then closes the
client's connection without a byte (``drop``: the studio stored it, the client cannot
know), or answers 503 itself without forwarding (``busy``).
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

import pytest

from promptlab.sqlite.models import Asset
from promptlab.tracer import ApiTracer, LocalTracer, RemoteTracerError, TracerFactory
from promptlab.tracer.api_tracer import login
from promptlab.types import (
    Dataset,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    PromptTemplate,
    TracerConfig,
)
from studiotools import ROOT_PASSWORD, Studio, db_rows, experiment_payload


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 to ``upstream_port``; ``plan[(method, path)]`` is a list
    of actions ("drop", "busy") used up by the matching requests, in order."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.plan: Dict[Tuple[str, str], List[str]] = {}
        self.seen: List[Tuple[str, str, str, bytes]] = []  # method, path, action, body
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    @staticmethod
    def _read_request(client: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
            up.sendall(request)
            answer = b""
            while True:  # the client asked for Connection: close, so the studio closes
                chunk = up.recv(65536)
                if not chunk:
                    return answer
                answer += chunk

    def _handle(self, client: socket.socket) -> None:
        with client:
            client.settimeout(30)
            request = self._read_request(client)
            if not request:
                return
            method, path = request.split(b" ", 2)[:2]
            key = (method.decode(), path.decode().split("?")[0])
            with self.lock:
                actions = self.plan.get(key) or []
                action = actions.pop(0) if actions else "pass"
                self.seen.append(key + (action, request.partition(b"\r\n\r\n")[2]))
            if action == "busy":
                body = b'{"success": false, "detail": "busy"}'
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                               b"application/json\r\nConnection: close\r\nContent-Length: "
                               + str(len(body)).encode() + b"\r\n\r\n" + body)
                return
            answer = self._forward(request)
            if action == "drop":
                return  # the studio handled it; the client gets no answer at all
            client.sendall(answer)

    def count(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if s[:2] == (method, path))


@pytest.fixture
def studio(tmp_path: Path, at_head):
    s = Studio(at_head(tmp_path / "studio.db"))
    s.add_user("root", ROOT_PASSWORD, "admin")
    yield s
    s.stop()


@pytest.fixture
def proxy(studio: Studio):
    p = FlakyProxy(studio.port)
    yield p
    p.close()


class Sleeps(list):
    """A stand-in for time.sleep that records the pauses and does not wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def remote(url: str, token: Optional[str], sleeps: Optional[Sleeps] = None,
           **kw: Any) -> ApiTracer:
    return ApiTracer({"type": "remote", "endpoint": url + "/", "jwt_token": token},
                     sleep=sleeps if sleeps is not None else Sleeps(), **kw)


class Proxy:
    """A model instance and an agent: must not travel and must stay in the caller's config."""

    def evaluate(self, data: Dict[str, Any]) -> float:
        return 1.0

    def __call__(self, *args: Any) -> str:
        return "x"


def config(dataset_file: str = "/data/arith.jsonl") -> ExperimentConfig:
    agent = Proxy()
    return ExperimentConfig(
        completion_model_config={"name": "ollama/llama3.2", "type": "ollama",
                                 "api_key": "sk-secret", "model": agent},
        embedding_model_config=ModelConfig(name="ollama/nomic", type="ollama"),
        prompt_template=PromptTemplate(name="qa", description="t", system_prompt="s",
                                       user_prompt="u <question>", version=1),
        dataset=Dataset(name="arith", description="sums", file_path=dataset_file),
        evaluation=[EvaluationConfig(metric="exact_match", column_mapping={"a": "$completion"},
                                     evaluator=agent)],
        agent_proxy=agent,
    )


def summary(experiment_id: str, n: int, word: str = "says") -> List[Dict[str, Any]]:
    return [{"experiment_id": experiment_id, "dataset_record_id": str(i),
             "completion": f"model {word} {2 * i}", "prompt_tokens": 10 + i,
             "completion_tokens": 3, "latency_ms": 100.0 + i,
             "evaluation": json.dumps([{"metric": "exact_match", "result": 1.0}])}
            for i in range(n)]


def stored(db: Path, experiment_id: str) -> Tuple[int, List[tuple]]:
    experiments = db_rows(db, "SELECT count(*) FROM experiments WHERE experiment_id = ?",
                          (experiment_id,))[0][0]
    results = db_rows(db, "SELECT dataset_record_id, completion FROM experiment_result "
                          "WHERE experiment_id = ? ORDER BY id", (experiment_id,))
    return experiments, results


# --- the factory ----------------------------------------------------------------------


def test_factory_chooses_the_tracer_by_type(tmp_path: Path):
    db = tmp_path / "lab.db"
    for form in ({"type": "local", "db_file": str(db)},
                 TracerConfig(type="local", db_file=str(db)),
                 SimpleNamespace(type="local", db_file=str(db))):
        tracer = TracerFactory.get_tracer(form)
        assert type(tracer) is LocalTracer and tracer.db_file == str(db)
    tracer = TracerFactory.get_tracer({"type": "remote", "endpoint": "http://127.0.0.1:9/",
                                       "jwt_token": "t"})
    assert type(tracer) is ApiTracer
    assert (tracer.endpoint, tracer.jwt_token) == ("http://127.0.0.1:9/api", "t")
    with pytest.raises(ValueError, match="type"):
        TracerFactory.get_tracer({"type": "cloud"})
    with pytest.raises(ValueError, match="needs an endpoint"):
        TracerFactory.get_tracer({"type": "remote"})
    with pytest.raises(ValueError, match="not an http"):
        TracerFactory.get_tracer({"type": "remote", "endpoint": "127.0.0.1:8000"})


# --- what it sends and stores -------------------------------------------------------------


def test_remote_tracer_stores_assets_and_experiments_in_the_studio(studio: Studio,
                                                                   proxy: FlakyProxy):
    token = login(proxy.url, "root", ROOT_PASSWORD)
    tracer = remote(proxy.url, token)
    cfg = config()
    tracer.create_dataset(cfg.dataset)
    tracer.create_prompttemplate(PromptTemplate(name="qa", description="t0",
                                                system_prompt="s", user_prompt="u"))
    tracer.create_prompttemplate(cfg.prompt_template)
    tracer.trace_experiment(cfg, summary("exp-1", 5))

    assert stored(studio.db, "exp-1") == (1, [(str(i), f"model says {2 * i}")
                                              for i in range(5)])
    (model, asset, user), = db_rows(studio.db, "SELECT e.model, e.asset, u.username FROM "
                                    "experiments e JOIN users u ON u.id = e.user_id")
    assert user == "root"  # the token's user, as the studio decides
    assert json.loads(model)["completion_model_config"]["name"] == "ollama/llama3.2"
    assert json.loads(model)["completion_model_config"]["api_key"] is None
    assert json.loads(asset) == {"prompt_template_name": "qa", "prompt_template_version": 1,
                                 "dataset_name": "arith", "dataset_version": 0}
    # The caller's config keeps its model, agent and evaluator (the original cleared them).
    assert cfg.agent_proxy is not None and cfg.completion_model_config.model is not None
    assert cfg.evaluation[0].evaluator is not None
    assert cfg.completion_model_config.api_key == "sk-secret"
    # The API key never left the process.
    assert all(b"sk-secret" not in s[3] for s in proxy.seen)

    latest = tracer.get_latest_asset("qa")
    assert isinstance(latest, Asset)
    assert (latest.asset_name, latest.asset_version, latest.asset_type) == \
        ("qa", 1, "prompt_template")
    assert tracer.get_asset("qa", 0).asset_description == "t0"
    assert tracer.get_asset("arith", 0).asset_type == "dataset"
    assert tracer.get_latest_asset("nothing") is None
    with pytest.raises(ValueError, match="^Asset nothing with version 3 not found.$"):
        tracer.get_asset("nothing", 3)
    rows = tracer.get_experiments()
    assert [r["dataset_record_id"] for r in rows] == [str(i) for i in range(5)]
    assert db_rows(studio.db, "SELECT count(*) FROM assets")[0][0] == 3


def test_the_posted_experiment_has_the_original_shape(studio: Studio, proxy: FlakyProxy):
    tracer = remote(proxy.url, studio.token)
    tracer.trace_experiment(config(), summary("exp-shape", 2))
    (body,) = [json.loads(s[3]) for s in proxy.seen if s[:2] == ("POST", "/api/experiments")]
    original = experiment_payload("x", 1)
    assert set(body) == set(original)
    sent, expected = body["experiment_config"], original["experiment_config"]
    assert set(sent) == set(expected)
    for key in ("completion_model_config", "prompt_template", "dataset"):
        assert set(sent[key]) == set(expected[key]), key
    assert set(sent["evaluation"][0]) == set(expected["evaluation"][0])
    assert (sent["agent_proxy"], sent["completion_model_config"]["model"],
            sent["evaluation"][0]["evaluator"]) == (None, None, None)
    assert body["experiment_summary"] == summary("exp-shape", 2)


# --- retries never duplicate ----------------------------------------------------------------


def test_a_lost_answer_is_retried_without_a_duplicate(studio: Studio, proxy: FlakyProxy):
    sleeps = Sleeps()
    tracer = remote(proxy.url, studio.token, sleeps)
    proxy.plan[("POST", "/api/experiments")] = ["drop"]
    proxy.plan[("POST", "/api/datasets")] = ["drop"]
    proxy.plan[("POST", "/api/templates")] = ["drop", "drop"]
    cfg = config()
    tracer.create_dataset(cfg.dataset)
    tracer.create_prompttemplate(cfg.prompt_template)
    tracer.trace_experiment(cfg, summary("exp-lost", 600))  # more than one page to check

    assert proxy.count("POST", "/api/experiments") == 2
    assert proxy.count("POST", "/api/templates") == 3
    assert [s[2] for s in proxy.seen if s[:2] == ("POST", "/api/experiments")] == \
        ["drop", "pass"]
    experiments, results = stored(studio.db, "exp-lost")
    assert experiments == 1 and len(results) == 600
    assert db_rows(studio.db, "SELECT count(*) FROM experiments")[0][0] == 1
    assert db_rows(studio.db, "SELECT asset_name, asset_version FROM assets ORDER BY 1") == \
        [("arith", 0), ("qa", 1)]
    assert len(sleeps) == 4 and all(s > 0 for s in sleeps)


def test_a_busy_studio_is_retried_with_growing_pauses(studio: Studio, proxy: FlakyProxy):
    sleeps = Sleeps()
    tracer = remote(proxy.url, studio.token, sleeps, attempts=4, backoff=1.0)
    proxy.plan[("POST", "/api/experiments")] = ["busy", "busy", "drop"]
    tracer.trace_experiment(config(), summary("exp-busy", 3))
    assert [s[2] for s in proxy.seen if s[:2] == ("POST", "/api/experiments")] == \
        ["busy", "busy", "drop", "pass"]
    assert stored(studio.db, "exp-busy")[0] == 1
    # Pauses: base 1 s doubled each time, times a jitter of 0.5 to 1.
    assert len(sleeps) == 3
    for attempt, pause in enumerate(sleeps):
        assert 0.5 * 2 ** attempt <= pause <= 2 ** attempt


def test_retries_are_bounded(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed below: nothing listens there afterwards
    sleeps = Sleeps()
    tracer = remote(f"http://127.0.0.1:{port}", "t", sleeps, attempts=3, max_backoff=0.6)
    with pytest.raises(RemoteTracerError, match="failed 3 time") as info:
        tracer.trace_experiment(config(), summary("exp-x", 1))
    assert info.value.status is None
    assert len(sleeps) == 2 and max(sleeps) <= 0.6


def test_a_busy_studio_that_stays_busy_fails_after_the_attempts(studio: Studio,
                                                                proxy: FlakyProxy):
    tracer = remote(proxy.url, studio.token, attempts=2)
    proxy.plan[("POST", "/api/experiments")] = ["busy", "busy"]
    with pytest.raises(RemoteTracerError, match="503") as info:
        tracer.trace_experiment(config(), summary("exp-b", 1))
    assert info.value.status == 503
    assert stored(studio.db, "exp-b")[0] == 0


def test_an_existing_experiment_id_is_an_error_on_a_first_attempt(studio: Studio,
                                                                  proxy: FlakyProxy):
    tracer = remote(proxy.url, studio.token)
    tracer.trace_experiment(config(), summary("exp-dup", 2))
    with pytest.raises(RemoteTracerError, match="already exists") as info:
        tracer.trace_experiment(config(), summary("exp-dup", 2))
    assert info.value.status == 409
    tracer.create_dataset(Dataset(name="arith", description="sums", file_path="/d"))
    with pytest.raises(RemoteTracerError, match="already exists"):
        tracer.create_dataset(Dataset(name="arith", description="sums", file_path="/d"))
    assert stored(studio.db, "exp-dup") == (1, [("0", "model says 0"), ("1", "model says 2")])


def test_a_retry_that_finds_other_contents_is_an_error(studio: Studio, proxy: FlakyProxy):
    tracer = remote(proxy.url, studio.token)
    tracer.trace_experiment(config(), summary("exp-other", 3, word="wrote"))
    proxy.plan[("POST", "/api/experiments")] = ["busy"]
    with pytest.raises(RemoteTracerError, match="other contents") as info:
        tracer.trace_experiment(config(), summary("exp-other", 3))
    assert info.value.status == 409
    assert stored(studio.db, "exp-other")[1][0] == ("0", "model wrote 0")
    # The same for an asset with another description.
    tracer.create_dataset(Dataset(name="ds", description="one", file_path="/d"))
    proxy.plan[("POST", "/api/datasets")] = ["busy"]
    with pytest.raises(RemoteTracerError, match="other contents"):
        tracer.create_dataset(Dataset(name="ds", description="two", file_path="/d"))


def test_refusals_are_not_retried_and_say_what_to_do(studio: Studio, proxy: FlakyProxy):
    sleeps = Sleeps()
    tracer = remote(proxy.url, "not-a-token", sleeps)
    with pytest.raises(RemoteTracerError, match="sign in again") as info:
        tracer.trace_experiment(config(), summary("exp-401", 1))
    assert info.value.status == 401
    tracer = remote(proxy.url, studio.token, sleeps)
    with pytest.raises(RemoteTracerError, match="400") as info:
        tracer.create_dataset(Dataset(name="1-bad-name", description="d", file_path="/d"))
    assert info.value.status == 400 and "Name must begin with a letter" in info.value.detail
    assert sleeps == [] and proxy.count("POST", "/api/experiments") == 1
    with pytest.raises(RemoteTracerError, match="signing in"):
        login(proxy.url, "root", "wrong-password")
    with pytest.raises(ValueError, match="nothing to trace"):
        tracer.trace_experiment(config(), [])


def test_get_experiments_reads_every_page_and_takes_the_local_arguments(
        studio: Studio, proxy: FlakyProxy, monkeypatch):
    # The studio answers a page at a time; the remote tracer read only the first page
    # before, losing every row after it without a word.
    from promptlab.studio import handlers_experiments
    from promptlab.tracer import api_tracer

    assert api_tracer.STUDIO_PAGE_MAX == handlers_experiments.EXPERIMENT_ROWS_MAX
    monkeypatch.setattr(handlers_experiments, "EXPERIMENT_ROWS_PAGE", 4)
    token = login(proxy.url, "root", ROOT_PASSWORD)
    tracer = remote(proxy.url, token)
    cfg = config()
    tracer.create_dataset(cfg.dataset)
    tracer.create_prompttemplate(cfg.prompt_template)
    tracer.trace_experiment(cfg, summary("exp-a", 6))
    tracer.trace_experiment(cfg, summary("exp-b", 5))
    local = LocalTracer({"type": "local", "db_file": str(studio.db)})
    everything = tracer.get_experiments()
    assert len(everything) == 11 and proxy.count("GET", "/api/experiments") >= 3
    assert [r["dataset_record_id"] for r in everything] == \
        [r["dataset_record_id"] for r in local.get_experiments()]
    for args in ({"experiment_id": "exp-a"}, {"limit": 3}, {"limit": 7, "offset": 2},
                 {"experiment_id": "exp-b", "offset": 4}, {"offset": 11}):
        assert [(r["experiment_id"], r["dataset_record_id"])
                for r in tracer.get_experiments(**args)] == \
            [(r["experiment_id"], r["dataset_record_id"])
             for r in local.get_experiments(**args)], args
