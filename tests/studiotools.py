"""The studio test kit: a studio served from a thread of this process with a small HTTP
client (``Studio``), the payloads the original remote tracer posts, seeded data, and
``promptlab studio start`` in a process. The fixtures (``studio``, ``config_home``)
are in conftest.py.

Users made here get bcrypt hashes with 4 rounds, so that signing in is quick; the
admin's generated password (12 rounds) is checked by the command line tests.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from helpers import NEUTRAL_CWD
from promptlab import _core
from promptlab.sqlite.models import User
from promptlab.studio.auth import LoginThrottle
from promptlab.studio.server import make_server
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import Dataset, ExperimentConfig, PromptTemplate

SECRET = b"studio-test-secret-0123456789abcdef"
# "admin", hashed by passlib 1.7.4 with bcrypt 4.1.2 as the original PromptLab stored it
ORIGINAL_ADMIN_HASH = "$2b$12$WBIbhfTqtQQhpVKjbxOWxuL1PLZcCxmoTyHvkhqM3sGPzv9E8Z9Qu"
ROOT_PASSWORD = "root-password"


def http_request(port: int, method: str, path: str, body: Any = None,
                 token: Optional[str] = None, headers: Optional[Dict[str, str]] = None,
                 raw: Optional[bytes] = None) -> Tuple[int, Dict[str, str], Any]:
    """One request to 127.0.0.1:``port``: ``body`` sent as JSON (else ``raw`` bytes), a
    bearer ``token``; returns the status, the headers (lower-case names) and the body,
    parsed when it is JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        ctype = resp.getheader("Content-Type", "")
        parsed = (json.loads(payload) if payload and ctype.startswith("application/json")
                  else payload)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    finally:
        conn.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Studio:
    """A running studio and a small HTTP client for it."""

    def __init__(self, db: Path, **settings: Any) -> None:
        self.db = db
        self.clock = FakeClock()
        settings.setdefault("throttle", LoginThrottle(free_per_user=3, free_per_address=6,
                                                      free_per_account=5, base_delay=10,
                                                      clock=self.clock))
        settings.setdefault("secret", SECRET)
        self.server = make_server(db, "127.0.0.1", 0, **settings)
        self.app = self.server.app
        self.tracer = self.app.tracer
        self.port = self.server.port
        self.url = self.server.url
        # A sign-in as an unknown user is checked against a dummy hash, so that it costs
        # what a real user's costs. The users made here have 4 rounds; so has the dummy
        # (the studio would make one of 12 rounds, 0.2 s, and spend as long on each check).
        self.app._dummy_hash = _core.hash_password(os.urandom(16).hex(), 4)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        self._token: Optional[str] = None

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(10)

    def add_user(self, username: str, password: str, role: str = "engineer") -> None:
        self.tracer.create_user(User(username=username, role=role,
                                     password_hash=_core.hash_password(password, 4)))

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                headers: Optional[Dict[str, str]] = None, raw: Optional[bytes] = None
                ) -> Tuple[int, Dict[str, str], Any]:
        return http_request(self.port, method, path, body, token, headers, raw)

    def login(self, username: str = "root", password: str = ROOT_PASSWORD) -> str:
        status, _, data = self.request("POST", "/api/login",
                                       {"username": username, "password": password})
        assert status == 200, data
        return data["access_token"]

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.login()
        return self._token

    def get(self, path: str, token: Optional[str] = None) -> Tuple[int, Any]:
        status, _, data = self.request("GET", path, token=token or self.token)
        return status, data

    def post(self, path: str, body: Any, token: Optional[str] = None) -> Tuple[int, Any]:
        status, _, data = self.request("POST", path, body, token=token or self.token)
        return status, data


# --- data ----------------------------------------------------------------------------


def write_dataset(path: Path, count: int) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": i, "question": f"What is {i} + {i}?",
                                     "answer": str(2 * i)}) + "\n")
    return path


def experiment_payload(experiment_id: str, records: int, model: str = "ollama/llama3.2",
                       template_version: int = 0, score: float = 1.0,
                       dataset: str = "arith") -> Dict[str, Any]:
    """What the original remote tracer posts: pydantic ``model_dump()`` of the config."""
    return {
        "experiment_config": {
            "name": None,
            "completion_model_config": {"name": model, "type": "ollama", "api_key": "sk-secret",
                                        "api_version": None, "endpoint": None,
                                        "max_concurrent_tasks": 5, "model": None},
            "embedding_model_config": None,
            "prompt_template": {"name": "qa", "description": "", "system_prompt": "s",
                                "user_prompt": "u", "version": template_version,
                                "user": "admin"},
            "agent_proxy": None,
            "dataset": {"name": dataset, "description": "", "file_path": "/x.jsonl",
                        "version": 0, "user": "admin"},
            "evaluation": [{"metric": "exact_match", "column_mapping": {"a": "$completion"},
                            "evaluator": None}],
            "user": "admin",
        },
        "experiment_summary": [
            {"experiment_id": experiment_id, "dataset_record_id": str(i),
             "completion": f"{model} says {2 * i}", "prompt_tokens": 10 + i,
             "completion_tokens": 3, "latency_ms": 100.0 + i,
             "evaluation": json.dumps([{"metric": "exact_match", "result": score},
                                       {"metric": "fluency", "result": i % 2}]),
             "created_at": "2025-01-01T00:00:00"}
            for i in range(records)
        ],
    }


def seed(tracer: LocalTracer, folder: Path, records: int = 30,
         models=("ollama/llama3.2", "openai/gpt-4o")) -> List[str]:
    """Two template versions, a dataset file, and one experiment per model."""
    path = write_dataset(folder / "arith.jsonl", records)
    tracer.create_dataset(Dataset(name="arith", description="sums", file_path=str(path)))
    tracer.create_prompttemplate(PromptTemplate(
        name="qa", description="first", system_prompt="You are a calculator.\nBe brief.",
        user_prompt="Question: <question>", version=0))
    tracer.create_prompttemplate(PromptTemplate(
        name="qa", description="second",
        system_prompt="You are a careful calculator.\nBe brief.\nNo working.",
        user_prompt="Question: <question>\nAnswer:", version=1))
    ids = []
    for k, model in enumerate(models):
        eid = f"exp-{k}-{uuid.uuid4().hex[:8]}"
        payload = experiment_payload(eid, records, model, template_version=min(k, 1),
                                     score=1.0 - 0.25 * k)
        tracer.trace_experiment(ExperimentConfig(**{
            key: value for key, value in payload["experiment_config"].items()
            if key not in ("agent_proxy",)}), payload["experiment_summary"])
        ids.append(eid)
    return ids


def db_rows(path: Path, sql: str, params=()) -> List[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# --- the studio command in a process ---------------------------------------------------


def start_command(db: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "promptlab", "studio", "start", "-d",
                             str(db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=NEUTRAL_CWD, env=full_env)


def read_until_url(proc: subprocess.Popen) -> Tuple[List[str], str]:
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"studio exited: {lines} {proc.stderr.read()}")
        lines.append(line.rstrip("\n"))
        if "is running at " in line:
            return lines, line.split("is running at ")[1].split()[0]


def http_json(url: str, method: str = "GET", body: Any = None, token: Optional[str] = None):
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, parts.path or "/", json.dumps(body) if body is not None else None,
                 headers)
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data
