"""The studio's JSON API, against a real server on a loopback port.

Each test starts its own server (``make_server`` on port 0, in a thread) on its own
database. Users made here get bcrypt hashes with 4 rounds, so that signing in is
quick; the admin's generated password (12 rounds) is checked by the CLI test.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from conftest import HEAD, NEUTRAL_CWD
from promptlab import _core
from promptlab.sqlite.models import User
from promptlab.studio import auth
from promptlab.studio.api import StudioConfig
from promptlab.studio.auth import LoginThrottle, decode_token, encode_token
from promptlab.studio.server import make_server
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import Dataset, ExperimentConfig, PromptTemplate

SECRET = b"studio-test-secret-0123456789abcdef"
# "admin", hashed by passlib 1.7.4 with bcrypt 4.1.2 as the original PromptLab stored it
ORIGINAL_ADMIN_HASH = "$2b$12$WBIbhfTqtQQhpVKjbxOWxuL1PLZcCxmoTyHvkhqM3sGPzv9E8Z9Qu"
ROOT_PASSWORD = "root-password"


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
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
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
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
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


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch) -> Path:
    """The per-user config folder (where generated studio secrets go), in tmp_path."""
    folder = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture
def studio(tmp_path: Path):
    s = Studio(tmp_path / "lab.db")
    s.add_user("root", ROOT_PASSWORD, "admin")
    yield s
    s.stop()


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


# --- authentication --------------------------------------------------------------------

PROTECTED = [
    ("GET", "/api/me"), ("GET", "/api/experiments"), ("POST", "/api/experiments"),
    ("GET", "/api/prompts"), ("GET", "/api/datasets"), ("POST", "/api/datasets"),
    ("POST", "/api/templates"), ("GET", "/api/assets?asset_name=qa&asset_version=-1"),
    ("GET", "/api/users"), ("POST", "/api/users"), ("DELETE", "/api/users/someone"),
    ("GET", "/api/studio/experiments"), ("GET", "/api/studio/records?experiment_id=x"),
    ("GET", "/api/studio/compare?experiment_id=a&experiment_id=b"), ("GET", "/api/nothing"),
]


def test_every_api_route_but_login_needs_a_token(studio: Studio):
    now = int(time.time())
    bad_tokens = {
        "missing": None,
        "garbage": "not-a-token",
        "other key": encode_token({"sub": "root", "role": "admin", "exp": now + 60},
                                  b"another-secret-another-secret-xx"),
        "expired": encode_token({"sub": "root", "role": "admin", "exp": now - 1}, SECRET),
        "no expiry": encode_token({"sub": "root", "role": "admin"}, SECRET),
        "unknown user": encode_token({"sub": "ghost", "role": "admin", "exp": now + 60},
                                     SECRET),
        "alg none": ".".join([auth._b64url_encode(b'{"alg":"none","typ":"JWT"}'),
                              auth._b64url_encode(json.dumps(
                                  {"sub": "root", "role": "admin", "exp": now + 60}).encode()),
                              ""]),
    }
    for method, path in PROTECTED:
        for name, token in bad_tokens.items():
            body = {} if method == "POST" else None
            status, headers, data = studio.request(method, path, body, token=token)
            assert status == 401, (method, path, name, data)
            assert data["success"] is False and data["detail"]
            assert headers["www-authenticate"].startswith("Bearer")
        status, _, _ = studio.request("GET", "/api/me",
                                      headers={"Authorization": "Basic cm9vdDpyb290"})
        assert status == 401


def test_login_returns_the_original_shape_and_a_standard_jwt(studio: Studio):
    from jose import jwt as jose_jwt

    status, _, data = studio.request("POST", "/api/login",
                                     {"username": "root", "password": ROOT_PASSWORD})
    assert status == 200
    assert data["success"] is True and data["token_type"] == "bearer"
    assert (data["username"], data["role"]) == ("root", "admin")
    claims = jose_jwt.decode(data["access_token"], SECRET.decode(), algorithms=["HS256"])
    assert claims["sub"] == "root" and claims["role"] == "admin"
    assert claims["exp"] > time.time() + 29 * 24 * 3600  # the original's 30 days
    # A token written by python-jose with the same secret is accepted (with the
    # password-version claim; without it, it is refused: see the test after next).
    pwv = auth.password_version(studio.tracer.get_user_by_username("root").password_hash,
                                SECRET)
    assert claims["pwv"] == pwv
    jose_token = jose_jwt.encode({"sub": "root", "role": "admin", "pwv": pwv,
                                  "exp": int(time.time()) + 60}, SECRET.decode(), "HS256")
    assert studio.get("/api/me", token=jose_token) == (200, {"username": "root",
                                                             "role": "admin"})


def test_wrong_passwords_and_unknown_users_get_the_same_answer(studio: Studio):
    for username, password in [("root", "wrong-password"), ("nobody", ROOT_PASSWORD),
                               ("root", "")]:
        status, _, data = studio.request("POST", "/api/login",
                                         {"username": username, "password": password})
        assert (status, data) == (401, {"success": False, "message": "Invalid credentials"})


def test_a_user_without_a_usable_password_cannot_sign_in(studio: Studio):
    # the default admin of a new database has the unusable marker as its hash
    assert studio.tracer.get_user_by_username("admin").password_hash == _core.UNUSABLE_PASSWORD
    for password in ("", "!", _core.UNUSABLE_PASSWORD):
        status, _, _ = studio.request("POST", "/api/login",
                                      {"username": "admin", "password": password})
        assert status == 401


def test_a_database_of_the_original_promptlab_opens_and_its_admin_signs_in(tmp_path: Path):
    """An L3 (0.1.4-0.1.11) file with the admin hash passlib wrote is upgraded on start,
    and the original password verifies."""
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    legacy = Path(__file__).parent / "data" / "legacy" / "L3-0.1.4-0.1.11.sql"
    con.executescript(legacy.read_text())
    con.execute("INSERT INTO users VALUES (1, 'admin', ?, 'admin', 1, '2025-07-10 09:00:00')",
                (ORIGINAL_ADMIN_HASH,))
    con.execute("INSERT INTO experiments (experiment_id, model, asset, created_at, user_id) "
                "VALUES ('old-1', ?, ?, '2025-07-10 09:30:00.123456', 1)",
                (json.dumps({"completion_model_config": {"name": "ollama/llama3.2"}}),
                 json.dumps({"prompt_template_name": "qa", "prompt_template_version": 0,
                             "dataset_name": "arith", "dataset_version": 0})))
    con.execute("INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, "
                "prompt_tokens, completion_tokens, latency_ms, evaluation, created_at) VALUES "
                "('old-1', '0', '4', 5, 1, 12.5, ?, '2025-07-10 09:30:00')",
                (json.dumps([{"metric": "exact_match", "result": 1}]),))
    con.commit()
    con.close()
    studio = Studio(db)
    try:
        token = studio.login("admin", "admin")
        (summary,) = studio.get("/api/studio/experiments", token=token)[1]["experiments"]
        assert (summary["experiment_id"], summary["completion_model"], summary["records"],
                summary["metrics"]) == ("old-1", "ollama/llama3.2", 1,
                                        {"exact_match": {"average": 1.0, "count": 1}})
        assert studio.get("/health", token=token)[1]["database"]["revision"] == HEAD
    finally:
        studio.stop()


def test_repeated_failed_logins_are_slowed_down(studio: Studio):
    for _ in range(3):  # the free attempts for one username
        status, _, _ = studio.request("POST", "/api/login",
                                      {"username": "root", "password": "guess"})
        assert status == 401
    # now even the right password waits, without being checked
    status, headers, data = studio.request("POST", "/api/login",
                                           {"username": "root", "password": ROOT_PASSWORD})
    assert status == 429 and int(headers["retry-after"]) == 10
    assert "try again" in data["message"]
    studio.clock.now += 10  # the wait is over
    assert studio.login()
    # a success clears the count: three more mistakes are free again
    for _ in range(3):
        assert studio.request("POST", "/api/login",
                              {"username": "root", "password": "guess"})[0] == 401
    status, headers, _ = studio.request("POST", "/api/login",
                                        {"username": "root", "password": "guess"})
    assert status == 429
    studio.clock.now += 10
    assert studio.request("POST", "/api/login",
                          {"username": "root", "password": "guess"})[0] == 401
    status, headers, _ = studio.request("POST", "/api/login",
                                        {"username": "root", "password": "guess"})
    assert status == 429 and int(headers["retry-after"]) == 20  # doubled


def _login_from(studio: Studio, username: str, password: str,
                client: Optional[str] = None) -> Tuple[int, Any]:
    headers = {"X-Forwarded-For": client} if client else {}
    status, _, data = studio.request("POST", "/api/login", {"username": username,
                                                            "password": password},
                                     headers=headers)
    return status, data


def test_failures_with_random_names_lock_no_real_account_out(studio: Studio):
    """Issue 12, item 4: behind a same-host proxy every client is 127.0.0.1; 20 failed
    logins with random names kept admin and alice (right passwords) at 429."""
    studio.add_user("alice", "alice-password")
    for i in range(20):
        status, _ = _login_from(studio, f"random{i}-{uuid.uuid4().hex[:6]}", "guess")
        assert status == 401
    assert _login_from(studio, "root", ROOT_PASSWORD)[0] == 200
    assert _login_from(studio, "alice", "alice-password")[0] == 200
    # X-Forwarded-For from an untrusted peer is ignored: a guesser cannot dodge the
    # count on an account by naming a new address each time
    for i in range(3):
        assert _login_from(studio, "alice", "guess", f"198.51.100.{i}")[0] == 401
    assert _login_from(studio, "alice", "alice-password", "198.51.100.99")[0] == 429


def test_guessing_many_usernames_slows_only_that_address(tmp_path: Path):
    """With the proxy trusted, each client has its own address: a sprayer is slowed,
    a success on its own account does not reset that, others sign in."""
    studio = Studio(tmp_path / "lab.db", trusted_proxies=("127.0.0.1",))
    try:
        studio.add_user("root", ROOT_PASSWORD, "admin")
        studio.add_user("mallory", "mallory-password")
        attacker, colleague = "203.0.113.5", "203.0.113.9"
        for i in range(4):  # 6 free per address, successes counted too
            assert _login_from(studio, f"user{i}", "x", attacker)[0] == 401
        assert _login_from(studio, "mallory", "mallory-password", attacker)[0] == 200
        assert _login_from(studio, "user9", "x", attacker)[0] == 401  # the 6th: still free
        status, _ = _login_from(studio, "root", ROOT_PASSWORD, attacker)
        assert status == 429  # before: the success above had cleared the count
        assert _login_from(studio, "root", ROOT_PASSWORD, colleague)[0] == 200
        # the proxy's own address (no X-Forwarded-For) is shared, never locked as a whole
        assert _login_from(studio, "root", ROOT_PASSWORD)[0] == 200
    finally:
        studio.stop()


def test_an_account_under_attack_from_many_addresses_waits(tmp_path: Path):
    studio = Studio(tmp_path / "lab.db", trusted_proxies=("127.0.0.0/8",))
    try:
        studio.add_user("root", ROOT_PASSWORD, "admin")
        for i in range(5):  # 5 free per account, each from another address
            assert _login_from(studio, "root", "guess", f"192.0.2.{i}")[0] == 401
        assert _login_from(studio, "root", ROOT_PASSWORD, "192.0.2.200")[0] == 429
        studio.clock.now += 10
        assert _login_from(studio, "root", ROOT_PASSWORD, "192.0.2.200")[0] == 200
    finally:
        studio.stop()


def test_client_address_behind_trusted_proxies():
    from promptlab.studio.proxies import client_address, parse_networks

    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address("127.0.0.1", "", proxies) == ("127.0.0.1", True)
    assert client_address("127.0.0.1", "203.0.113.5", proxies) == ("203.0.113.5", False)
    assert client_address("127.0.0.1", "1.1.1.1, 203.0.113.5, 10.1.2.3",
                          proxies) == ("203.0.113.5", False)  # the client wrote 1.1.1.1
    assert client_address("198.51.100.7", "203.0.113.5", proxies) == ("198.51.100.7", False)
    assert client_address("198.51.100.7", "", ()) == ("198.51.100.7", False)
    assert client_address("127.0.0.1", "garbage", proxies) == ("127.0.0.1", True)
    with pytest.raises(auth.StudioError, match="TRUSTED_PROXIES"):
        StudioConfig("x.db", trusted_proxies=("not-an-ip",))


def test_parallel_guesses_are_counted_before_the_password_is_checked(studio: Studio):
    barrier = threading.Barrier(12)
    statuses = []

    def guess():
        barrier.wait()
        statuses.append(studio.request("POST", "/api/login",
                                       {"username": "root", "password": "guess"})[0])

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401] * 3 + [429] * 9


def test_throttle_unit():
    clock = FakeClock()
    throttle = LoginThrottle(free_per_user=2, free_per_account=100, free_per_address=100,
                             base_delay=1, max_delay=4, forget_after=100, clock=clock)
    keys = throttle.keys("Root", "1.2.3.4")
    assert throttle.attempt(keys) == 0 and throttle.attempt(keys) == 0
    assert throttle.attempt(throttle.keys("root", "5.6.7.8")) == 0  # another address
    assert throttle.attempt(throttle.keys("ROOT", "1.2.3.4")) == 1  # names fold case
    waits = []
    for _ in range(5):
        waits.append(throttle.attempt(keys))  # refused: wait
        clock.now += waits[-1]
        assert throttle.attempt(keys) == 0  # after the wait, one attempt goes through
    assert waits == [1, 2, 4, 4, 4]  # doubling, capped at max_delay
    clock.now += 200  # idle long enough: forgotten
    assert throttle.attempt(keys) == 0 and throttle.attempt(keys) == 0
    throttle.success(keys)
    assert throttle.attempt(keys) == 0
    # one account from many addresses, and one address with many names
    few = LoginThrottle(free_per_user=100, free_per_account=3, free_per_address=4,
                        base_delay=1, clock=clock)
    assert [few.attempt(few.keys("root", f"10.0.0.{i}")) for i in range(4)] == [0, 0, 0, 1]
    assert [few.attempt(few.keys(f"u{i}", "10.9.9.9")) for i in range(5)] == [0, 0, 0, 0, 1]
    few.success(few.keys("u0", "10.9.9.9"))  # a success does not clear the address
    assert few.attempt(few.keys("u7", "10.9.9.9")) == 1
    # a shared address (loopback, a proxy) has no address-wide count
    assert [k for k, _ in few.keys("a", "127.0.0.1", shared=True)] == ["user", "account"]


def test_tokens_of_deactivated_users_stop_working(studio: Studio):
    studio.add_user("eve", "eve-password")
    token = studio.login("eve", "eve-password")
    assert studio.get("/api/me", token=token)[0] == 200
    status, data = studio.request("DELETE", "/api/users/eve", token=studio.token)[::2]
    assert status == 200 and data == {"success": True}
    assert studio.get("/api/me", token=token)[0] == 401
    assert studio.request("POST", "/api/login", {"username": "eve",
                                                 "password": "eve-password"})[0] == 401


# --- JWT -------------------------------------------------------------------------------


def test_jwt_round_trip_and_refusals():
    now = 1_700_000_000
    token = encode_token({"sub": "a", "role": "engineer", "exp": now + 10}, SECRET)
    header, payload, signature = token.split(".")
    assert "=" not in token
    assert json.loads(auth._b64url_decode(header)) == {"alg": "HS256", "typ": "JWT"}
    assert decode_token(token, SECRET, now=now)["sub"] == "a"
    with pytest.raises(auth.TokenError, match="expired"):
        decode_token(token, SECRET, now=now + 10)
    with pytest.raises(auth.TokenError, match="signature"):
        decode_token(token, SECRET + b"x", now=now)
    forged = auth._b64url_encode(json.dumps({"sub": "a", "role": "admin",
                                             "exp": now + 10}).encode())
    with pytest.raises(auth.TokenError, match="signature"):
        decode_token(f"{header}.{forged}.{signature}", SECRET, now=now)
    for bad in ["", "a.b", "a.b.c.d", "!!.@@.##", f"{header}.{payload}.***", 5, None]:
        with pytest.raises(auth.TokenError):
            decode_token(bad, SECRET, now=now)
    hs512 = auth._b64url_encode(b'{"alg":"HS512","typ":"JWT"}')
    with pytest.raises(auth.TokenError, match="algorithm"):
        decode_token(f"{hs512}.{payload}.{signature}", SECRET, now=now)
    future = encode_token({"sub": "a", "exp": now + 100, "nbf": now + 50}, SECRET)
    with pytest.raises(auth.TokenError, match="not yet"):
        decode_token(future, SECRET, now=now)


def test_secret_is_generated_once_in_the_config_folder(tmp_path: Path, monkeypatch,
                                                        config_home: Path):
    monkeypatch.delenv(auth.SECRET_ENV, raising=False)
    db = tmp_path / "lab.db"
    first, where = auth.load_secret(str(db))
    assert where == auth.config_secret_path(str(db)) and len(first) >= 32
    assert Path(where).parent.parent == config_home / "promptlab"
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o600
    assert not os.path.exists(str(db) + ".studio-secret")
    assert auth.load_secret(str(db))[0] == first
    monkeypatch.setenv(auth.SECRET_ENV, "x" * 40)
    assert auth.load_secret(str(db)) == (b"x" * 40, "environment")
    Path(where).write_text("short")
    monkeypatch.delenv(auth.SECRET_ENV)
    with pytest.raises(auth.StudioError, match="too short"):
        auth.load_secret(str(db))


def test_secret_created_by_racing_studios_is_one(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(auth.SECRET_ENV, raising=False)
    db = str(tmp_path / "lab.db")
    barrier = threading.Barrier(16)
    found = []

    def load():
        barrier.wait()
        found.append(auth.load_secret(db)[0])

    threads = [threading.Thread(target=load) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1 and len(found) == 16
    assert len(set(found)) == 1
    assert [p.name for p in Path(auth.config_secret_path(db)).parent.iterdir()] == [
        Path(auth.config_secret_path(db)).name]


def test_tokens_survive_a_restart(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(auth.SECRET_ENV, raising=False)
    db = tmp_path / "lab.db"
    first = Studio(db, secret=None)
    try:
        first.add_user("root", ROOT_PASSWORD, "admin")
        token = first.login()
    finally:
        first.stop()
    second = Studio(db, secret=None)
    try:
        assert second.get("/api/me", token=token) == (200, {"username": "root",
                                                            "role": "admin"})
    finally:
        second.stop()


# --- roles and users -----------------------------------------------------------------------


def test_engineers_use_assets_and_experiments_but_not_users(studio: Studio):
    studio.add_user("eng", "eng-password")
    token = studio.login("eng", "eng-password")
    assert studio.get("/api/me", token=token) == (200, {"username": "eng",
                                                        "role": "engineer"})
    for method, path in [("GET", "/api/users"), ("POST", "/api/users"),
                         ("DELETE", "/api/users/root")]:
        status, _, data = studio.request(method, path, {} if method == "POST" else None,
                                         token=token)
        assert (status, data["detail"]) == (403, "Admin access required")
    assert studio.get("/api/experiments", token=token)[0] == 200
    status, data = studio.post("/api/templates", {"name": "t1", "description": "d",
                                                  "system_prompt": "s", "user_prompt": "u",
                                                  "user": "root"}, token=token)
    assert status == 200
    # the owner is who signed in, not what the body says
    assert studio.tracer.get_asset("t1", 0).user.username == "eng"


def test_roles_come_from_the_database_not_the_token(studio: Studio):
    studio.add_user("eng", "eng-password")
    pwv = auth.password_version(studio.tracer.get_user_by_username("eng").password_hash,
                                SECRET)
    forged = encode_token({"sub": "eng", "role": "admin", "exp": time.time() + 60,
                           "pwv": pwv}, SECRET)
    assert studio.get("/api/users", token=forged)[0] == 403


def test_user_management(studio: Studio):
    status, data = studio.post("/api/users", {"username": "ann", "password": "ann-password",
                                              "role": "engineer"})
    assert status == 200 and data["success"] is True
    stored = studio.tracer.get_user_by_username("ann")
    assert stored.role == "engineer" and stored.password_hash.startswith("$2b$")
    assert studio.login("ann", "ann-password")
    status, data = studio.get("/api/users")
    assert status == 200
    assert [(u["username"], u["role"]) for u in data["users"]] == [
        ("admin", "admin"), ("root", "admin"), ("ann", "engineer")]
    assert set(data["users"][0]) == {"id", "username", "role", "created_at"}
    for body, message in [
        ({"username": "ann", "password": "another-password", "role": "engineer"},
         "already exists"),
    ]:
        assert studio.post("/api/users", body) == (409, {"success": False,
                                                         "message": f"User ann {message}",
                                                         "detail": f"User ann {message}"})
    for body in [{"username": "bob", "password": "short", "role": "engineer"},
                 {"username": "bob", "password": "x" * 73, "role": "engineer"},
                 {"username": "bob", "password": "bob-password", "role": "root"},
                 {"username": "", "password": "bob-password", "role": "engineer"},
                 {"username": "bad name", "password": "bob-password", "role": "engineer"},
                 {"username": 7, "password": "bob-password", "role": "engineer"},
                 {"password": "bob-password", "role": "engineer"}]:
        status, data = studio.post("/api/users", body)
        assert status == 400 and data["message"].startswith("Invalid input"), body
    status, _, data = studio.request("DELETE", "/api/users/root", token=studio.token)
    assert (status, data["message"]) == (400, "Cannot delete yourself")
    status, _, data = studio.request("DELETE", "/api/users/ghost", token=studio.token)
    assert status == 404
    status, _, data = studio.request("DELETE", "/api/users/ann", token=studio.token)
    assert status == 200
    assert [u["username"] for u in studio.get("/api/users")[1]["users"]] == ["admin", "root"]
    status, data = studio.post("/api/users", {"username": "ann", "password": "ann-password2",
                                              "role": "engineer"})
    assert status == 409 and "deactivated" in data["message"]


# --- assets ------------------------------------------------------------------------------------


def test_templates_and_datasets_round_trip_in_the_original_shapes(studio: Studio):
    status, data = studio.post("/api/templates", {
        "name": "qa", "description": "first", "system_prompt": "Be brief.",
        "user_prompt": "Q: <question>", "version": 0, "user": "admin", "extra": "ignored"})
    assert status == 200
    assert data == {"success": True, "message": "Prompt template created successfully",
                    "template": {"name": "qa", "version": 0, "description": "first",
                                 "system_prompt": "Be brief.", "user_prompt": "Q: <question>"}}
    assert studio.post("/api/templates", {"name": "qa", "description": "second",
                                          "system_prompt": "Be very brief.",
                                          "user_prompt": "Q: <question>",
                                          "version": "1"})[0] == 200
    status, data = studio.post("/api/datasets", {"name": "arith", "description": "sums",
                                                 "file_path": "/data/arith.jsonl"})
    assert status == 200
    assert data["dataset"] == {"name": "arith", "version": 0, "description": "sums",
                               "file_path": "/data/arith.jsonl"}

    prompts = studio.get("/api/prompts")[1]["prompt_templates"]
    assert [(p["asset_name"], p["asset_version"]) for p in prompts] == [("qa", 0), ("qa", 1)]
    assert prompts[1]["system_prompt_template"] == "Be very brief."
    assert prompts[1]["user_prompt_template"] == "Q: <question>"
    assert prompts[1]["user_id"] == "root" and prompts[1]["is_deployed"] is False
    assert set(prompts[0]) == {"asset_name", "asset_description", "asset_version",
                               "asset_type", "created_at", "system_prompt_template",
                               "user_prompt_template", "is_deployed", "deployment_time",
                               "user_id"}
    datasets = studio.get("/api/datasets")[1]["datasets"]
    assert datasets == [{"asset_name": "arith", "asset_description": "sums",
                         "asset_version": 0, "asset_type": "dataset",
                         "created_at": datasets[0]["created_at"],
                         "file_path": "/data/arith.jsonl", "user_id": "root"}]

    status, data = studio.get("/api/assets?asset_name=qa&asset_version=-1")
    assert status == 200 and data["success"] is True
    asset = data["asset"]
    assert (asset["asset_name"], asset["asset_version"], asset["asset_type"]) == (
        "qa", 1, "prompt_template")
    assert "<<system>>" in asset["asset_binary"] and "Be very brief." in asset["asset_binary"]
    assert asset["user_id"] == studio.tracer.get_user_by_username("root").id
    assert "T" in asset["created_at"]  # isoformat, as the remote tracer parses it
    assert studio.get("/api/assets?asset_name=qa&asset_version=0")[1]["asset"][
        "asset_description"] == "first"


def test_remote_tracer_reads_assets_as_the_original_did(studio: Studio):
    """The original ApiTracer._fetch_asset turns the JSON back into an asset."""
    from datetime import datetime

    studio.post("/api/datasets", {"name": "arith", "description": "d", "file_path": "/a.jsonl",
                                  "version": 3})
    _, data = studio.get("/api/assets?asset_name=arith&asset_version=-1")
    info = data["asset"]
    created = datetime.fromisoformat(info["created_at"].replace("Z", "+00:00"))
    assert created.year >= 2024
    assert json.loads(info["asset_binary"]) == {"file_path": "/a.jsonl"}
    assert info["asset_version"] == 3 and info["deployment_time"] is None


def test_asset_errors(studio: Studio):
    studio.post("/api/templates", {"name": "qa", "description": "", "system_prompt": "s",
                                   "user_prompt": "u"})
    for query, status in [("asset_name=nope&asset_version=-1", 404),
                          ("asset_name=nope&asset_version=0", 404),
                          ("asset_name=qa&asset_version=7", 404),
                          ("asset_name=qa", 400), ("asset_version=1", 400),
                          ("asset_name=qa&asset_version=one", 400),
                          ("asset_name=qa&asset_version=1.5", 400)]:
        code, data = studio.get(f"/api/assets?{query}")
        assert code == status and data["success"] is False and data["detail"], query
    assert studio.get("/api/assets?asset_name=nope&asset_version=-1")[1]["detail"] == (
        "Asset nope with version -1 not found")
    for body, message in [
        ({"name": "qa", "description": "", "system_prompt": "s", "user_prompt": "u"},
         "already exists"),
        ({"name": "9lives", "description": "", "system_prompt": "s", "user_prompt": "u"},
         "Name must begin with a letter"),
        ({"name": "qa", "description": "", "system_prompt": "s"}, "missing field 'user_prompt'"),
        ({"name": "qa", "description": "", "system_prompt": 5, "user_prompt": "u",
          "version": 2}, "system_prompt has the wrong type"),
        ({"name": "qa", "description": "", "system_prompt": "s", "user_prompt": "u",
          "version": True}, "version must be an integer"),
        ({"name": "qa", "description": "", "system_prompt": "s", "user_prompt": "u",
          "version": -2}, "0 or more"),
    ]:
        status, data = studio.post("/api/templates", body)
        assert status in (400, 409) and message in data["message"], (body, data)
    status, data = studio.post("/api/datasets", {"name": "d", "description": "x"})
    assert status == 400 and "file_path" in data["message"]


# --- experiments ---------------------------------------------------------------------------------


def test_posted_experiments_are_stored_and_listed_in_the_original_shape(studio: Studio):
    studio.post("/api/templates", {"name": "qa", "description": "", "version": 0,
                                   "system_prompt": "You are brief.", "user_prompt": "Q?"})
    status, data = studio.post("/api/experiments", experiment_payload("e1", 3))
    assert (status, data) == (200, {"success": True})
    rows = studio.get("/api/experiments")[1]["experiments"]
    assert len(rows) == 3
    first = rows[0]
    assert set(first) == {
        "experiment_id", "completion_model", "embedding_model", "prompt_template_name",
        "prompt_template_version", "dataset_name", "dataset_version", "dataset_record_id",
        "completion", "prompt_tokens", "completion_tokens", "latency_ms", "evaluation",
        "username", "created_at", "system_prompt_template", "user_prompt_template",
        "user_id"}
    assert (first["experiment_id"], first["completion_model"], first["user_id"]) == (
        "e1", "ollama/llama3.2", "root")
    assert first["system_prompt_template"] == "You are brief."
    assert json.loads(first["evaluation"])[0] == {"metric": "exact_match", "result": 1.0}
    # the client's API key is not kept
    (model,) = db_rows(studio.db, "SELECT model FROM experiments")[0]
    assert "sk-secret" not in model and json.loads(model)["completion_model_config"][
        "api_key"] is None
    assert db_rows(studio.db, "SELECT u.username FROM experiments e JOIN users u "
                              "ON u.id = e.user_id") == [("root",)]
    status, data = studio.post("/api/experiments", experiment_payload("e1", 1))
    assert (status, data["message"]) == (409, "Experiment e1 already exists")
    assert db_rows(studio.db, "SELECT COUNT(*) FROM experiment_result") == [(3,)]


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.pop("experiment_summary"), "Missing experiment_config"),
    (lambda p: p.update(experiment_summary=[]), "Missing experiment_config"),
    (lambda p: p.update(experiment_summary={"a": 1}), "must be a JSON array"),
    (lambda p: p.update(experiment_config=[1]), "must be a JSON object"),
    (lambda p: p["experiment_config"].pop("dataset"), "missing field 'dataset'"),
    (lambda p: p["experiment_config"]["dataset"].pop("name"), "dataset: missing field 'name'"),
    (lambda p: p["experiment_config"].update(evaluation=None), "evaluation must be"),
    (lambda p: p["experiment_config"]["evaluation"][0].pop("metric"), "missing field 'metric'"),
    (lambda p: p["experiment_config"]["completion_model_config"].update(name=3),
     "name has the wrong type"),
    (lambda p: p["experiment_summary"][1].pop("completion"), "[1]: missing field 'completion'"),
    (lambda p: p["experiment_summary"][0].update(prompt_tokens="ten"), "prompt_tokens has"),
    (lambda p: p["experiment_summary"][0].update(latency_ms=True), "latency_ms has"),
    (lambda p: p["experiment_summary"][1].update(experiment_id="other"), "differs"),
    (lambda p: p["experiment_summary"].append(7), "[2] must be a JSON object"),
])
def test_bad_experiments_are_400_and_store_nothing(studio: Studio, mutate, message):
    payload = experiment_payload("e1", 2)
    mutate(payload)
    status, data = studio.post("/api/experiments", payload)
    assert status == 400 and message in data["message"], data
    assert db_rows(studio.db, "SELECT COUNT(*) FROM experiments") == [(0,)]


# --- the page's views --------------------------------------------------------------------------


def test_experiment_summaries_with_metric_averages(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=10)
    status, data = studio.get("/api/studio/experiments")
    assert status == 200
    summaries = {e["experiment_id"]: e for e in data["experiments"]}
    assert [e["experiment_id"] for e in data["experiments"]] == ids[::-1]  # newest first
    first, second = summaries[ids[0]], summaries[ids[1]]
    assert (first["completion_model"], first["prompt_template_name"],
            first["prompt_template_version"], first["dataset_name"],
            first["dataset_version"], first["user"], first["records"]) == (
        "ollama/llama3.2", "qa", 0, "arith", 0, "admin", 10)
    assert first["metrics"] == {"exact_match": {"average": 1.0, "count": 10},
                                "fluency": {"average": 0.5, "count": 10}}
    assert second["metrics"]["exact_match"]["average"] == 0.75
    assert first["avg_latency_ms"] == pytest.approx(104.5)
    assert first["prompt_tokens"] == sum(10 + i for i in range(10))
    assert first["completion_tokens"] == 30
    assert "api_key" not in json.dumps(data)


def test_metric_averages_skip_what_is_not_a_number(studio: Studio):
    payload = experiment_payload("odd", 4)
    evaluations = [json.dumps([{"metric": "m", "result": 1}, {"metric": "t", "result": "good"}]),
                   json.dumps({"m": 0.5, "flag": True}), "not json", None]
    for record, evaluation in zip(payload["experiment_summary"], evaluations):
        record["evaluation"] = evaluation
    assert studio.post("/api/experiments", payload)[0] == 200
    (summary,) = studio.get("/api/studio/experiments")[1]["experiments"]
    assert summary["metrics"] == {"m": {"average": 0.75, "count": 2},
                                  "flag": {"average": 1.0, "count": 1}}
    records = studio.get("/api/studio/records?experiment_id=odd")[1]["records"]
    assert records[1]["evaluation"] == [{"metric": "m", "result": 0.5},
                                        {"metric": "flag", "result": True}]
    assert records[2]["evaluation"] == [] and records[3]["evaluation"] == []


def test_metric_averages_follow_results_written_later(studio: Studio):
    assert studio.post("/api/experiments", experiment_payload("e", 2))[0] == 200
    (before,) = studio.get("/api/studio/experiments")[1]["experiments"]
    assert before["metrics"]["exact_match"] == {"average": 1.0, "count": 2}
    con = sqlite3.connect(studio.db)
    con.execute("INSERT INTO experiment_result (experiment_id, dataset_record_id, evaluation) "
                "VALUES ('e', '9', ?)", (json.dumps([{"metric": "exact_match", "result": 0}]),))
    con.commit()
    con.close()
    (after,) = studio.get("/api/studio/experiments")[1]["experiments"]
    assert after["metrics"]["exact_match"] == {"average": pytest.approx(2 / 3), "count": 3}
    one = studio.get("/api/studio/records?experiment_id=e")[1]["experiment"]
    assert one["metrics"] == after["metrics"] and one["records"] == 3


def test_records_are_paged_searched_and_show_their_input(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=120)
    status, data = studio.get(f"/api/studio/records?experiment_id={ids[0]}&offset=100"
                              "&limit=50")
    assert status == 200
    assert (data["total"], data["offset"], data["limit"]) == (120, 100, 50)
    assert [r["dataset_record_id"] for r in data["records"]] == [str(i) for i in range(100, 120)]
    assert data["experiment"]["experiment_id"] == ids[0]
    assert data["inputs_note"] is None
    assert data["records"][0]["input"] == {"id": 100, "question": "What is 100 + 100?",
                                           "answer": "200"}
    assert data["records"][0]["evaluation"][0] == {"metric": "exact_match", "result": 1.0}
    found = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=says%20222")[1]
    assert found["total"] == 1 and found["records"][0]["dataset_record_id"] == "111"
    wild = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=%25")[1]
    assert wild["total"] == 0  # % is searched for, not a wildcard
    for query, status in [("experiment_id=nope", 404), ("", 400),
                          (f"experiment_id={ids[0]}&limit=0", 400),
                          (f"experiment_id={ids[0]}&limit=501", 400),
                          (f"experiment_id={ids[0]}&offset=-1", 400),
                          (f"experiment_id={ids[0]}&offset=x", 400)]:
        assert studio.get(f"/api/studio/records?{query}")[0] == status, query


def test_inputs_are_read_only_from_dataset_files(studio: Studio, tmp_path: Path):
    secret = tmp_path / "private.txt"
    secret.write_text('{"id": "0", "password": "hunter2"}\n')
    payload = experiment_payload("e1", 1, dataset="leak")
    studio.tracer.create_dataset(Dataset(name="leak", description="", file_path=str(secret)))
    studio.post("/api/experiments", payload)
    data = studio.get("/api/studio/records?experiment_id=e1")[1]
    assert data["records"][0]["input"] is None and "hunter2" not in json.dumps(data)
    assert ".jsonl" in data["inputs_note"]
    studio.post("/api/experiments", experiment_payload("e2", 1, dataset="missing"))
    assert "not registered" in studio.get("/api/studio/records?experiment_id=e2")[1][
        "inputs_note"]


def _locks_on(path: Path) -> list:
    """This process's entries in /proc/locks on the inode of ``path``."""
    st = os.stat(path)
    inode = f":{st.st_ino} "
    with open("/proc/locks", encoding="ascii") as handle:
        return sorted(line.split(":", 1)[1].strip() for line in handle
                      if f" {os.getpid()} " in line and inode in line)


def test_the_database_itself_is_never_read_as_a_dataset(studio: Studio, tmp_path: Path):
    """A dataset whose file is the studio's own database, through a hard link named
    .json: reading and closing it would drop the studio's SQLite locks on the file."""
    alias = tmp_path / "lab.json"
    os.link(studio.db, alias)
    studio.tracer.create_dataset(Dataset(name="self", description="", file_path=str(alias)))
    studio.post("/api/experiments", experiment_payload("e1", 1, dataset="self"))
    held = _locks_on(studio.db)
    assert held, "the studio holds no lock on its database"
    data = studio.get("/api/studio/records?experiment_id=e1")[1]
    assert "own database" in data["inputs_note"] and data["records"][0]["input"] is None
    assert _locks_on(studio.db) == held


def test_comparison_aligns_records_by_dataset_record(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=60,
               models=("m1", "m2", "m3"))
    query = "&".join(f"experiment_id={i}" for i in ids)
    status, data = studio.get(f"/api/studio/compare?{query}&offset=50&limit=20")
    assert status == 200
    assert [e["experiment_id"] for e in data["experiments"]] == ids
    assert (data["total"], len(data["rows"])) == (60, 10)
    row = data["rows"][0]
    assert row["dataset_record_id"] == "50" and row["input"]["answer"] == "100"
    assert [row["results"][i][0]["completion"] for i in ids] == [
        "m1 says 100", "m2 says 100", "m3 says 100"]
    assert row["results"][ids[2]][0]["evaluation"][0]["result"] == 0.5
    for bad in [f"experiment_id={ids[0]}", f"experiment_id={ids[0]}&experiment_id={ids[0]}",
                "&".join(["experiment_id=x%d" % i for i in range(9)])]:
        assert studio.get(f"/api/studio/compare?{bad}")[0] == 400
    assert studio.get(f"/api/studio/compare?experiment_id={ids[0]}&experiment_id=nope")[0] == 404


def test_comparison_of_experiments_with_different_records(studio: Studio):
    a, b = experiment_payload("a", 3), experiment_payload("b", 5)
    for record in b["experiment_summary"]:
        record["dataset_record_id"] = str(int(record["dataset_record_id"]) + 2)
    studio.post("/api/experiments", a)
    studio.post("/api/experiments", b)
    data = studio.get("/api/studio/compare?experiment_id=a&experiment_id=b")[1]
    assert [r["dataset_record_id"] for r in data["rows"]] == ["0", "1", "2", "3", "4", "5",
                                                              "6"]
    assert [len(data["rows"][0]["results"][i]) for i in "ab"] == [1, 0]
    assert [len(data["rows"][2]["results"][i]) for i in "ab"] == [1, 1]


# --- health ------------------------------------------------------------------------------------


def test_health_for_strangers_and_for_signed_in_users(studio: Studio, tmp_path: Path):
    seed(studio.tracer, tmp_path, records=5)
    status, _, data = studio.request("GET", "/health")
    assert (status, data) == (200, {"status": "healthy", "service": "promptlab-studio"})
    status, data = studio.get("/health")
    assert status == 200 and data["status"] == "healthy"
    db = data["database"]
    assert db["file"] == str(studio.db) and db["size_bytes"] == os.path.getsize(studio.db)
    assert (db["revision"], db["head"], db["pending"], db["up_to_date"]) == (HEAD, HEAD, [],
                                                                             True)
    assert db["integrity"] == "ok" and db["ok"] is True and db["drift"] == []
    expected = {t: db_rows(studio.db, f"SELECT COUNT(*) FROM {t}")[0][0]
                for t in ("users", "assets", "experiments", "experiment_result")}
    assert db["rows"] == expected and expected["experiment_result"] == 10


def test_health_reports_a_schema_changed_by_hand(studio: Studio):
    con = sqlite3.connect(studio.db)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    status, data = studio.get("/health")
    assert status == 503 and data["status"] == "unhealthy"
    assert data["database"]["drift"] and "schema drift" in data["database"]["problems"]


# --- the HTTP layer ---------------------------------------------------------------------------


def test_page_is_self_contained_and_locked_down(studio: Studio):
    for path in ("/", "/index.html", "/prompts"):
        status, headers, page = studio.request("GET", path)
        assert status == 200 and headers["content-type"].startswith("text/html")
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
        assert "unsafe-inline" not in csp and "*" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert b"<script" in page and b"<script src" not in page
        assert b"https://" not in page and b"http://" not in page  # no CDN, works offline
    assert studio.request("HEAD", "/")[2] == b""


INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE users; --", "1 UNION SELECT password_hash FROM users",
              "%' OR 1=1 --", "-1) OR (1=1", "\\' OR 1=1 /*"]


def test_sql_injection_in_the_query_parameters_of_every_get_route(studio: Studio,
                                                                   tmp_path: Path):
    """Every value reaches SQL as a bound parameter: injections are plain values."""
    ids = seed(studio.tracer, tmp_path, records=3)
    from urllib.parse import quote

    hashes = [h for (h,) in db_rows(studio.db, "SELECT password_hash FROM users")]
    before = db_rows(studio.db, "SELECT COUNT(*) FROM users")
    for bad in INJECTIONS:
        q = quote(bad)
        paths = [f"/api/experiments?limit={q}", f"/api/experiments?offset={q}",
                 f"/api/assets?asset_name={q}&asset_version=-1",
                 f"/api/assets?asset_name=qa&asset_version={q}",
                 f"/api/studio/records?experiment_id={q}",
                 f"/api/studio/records?experiment_id={ids[0]}&q={q}",
                 f"/api/studio/records?experiment_id={ids[0]}&limit={q}",
                 f"/api/studio/compare?experiment_id={q}&experiment_id={ids[0]}",
                 f"/api/studio/compare?experiment_id={ids[0]}&experiment_id={ids[1]}"
                 f"&offset={q}",
                 f"/api/prompts?x={q}", f"/api/datasets?x={q}", f"/api/users?x={q}",
                 f"/api/me?x={q}", f"/api/studio/experiments?x={q}", f"/health?x={q}"]
        for path in paths:
            status, data = studio.get(path)
            assert status in (200, 400, 404), (path, status, data)
            text = json.dumps(data)
            assert not any(h in text for h in hashes), path
        found = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q={q}")[1]
        assert found["total"] == 0  # searched for as text, matching nothing
    assert db_rows(studio.db, "SELECT COUNT(*) FROM users") == before
    assert db_rows(studio.db, "PRAGMA integrity_check") == [("ok",)]


def test_path_traversal_never_reaches_a_file(studio: Studio):
    """The page is one file read from the package; no path maps to the file system."""
    for path in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/..%2f..%2f..%2fetc%2fpasswd", "/static/index.html", "/static/../api.py",
                 "/index.html/../../lab.db", "//etc/passwd", "/lab.db",
                 "/promptlab/studio/api.py", "/%00index.html", "/.%2e/lab.db"):
        with socket.create_connection(("127.0.0.1", studio.port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                         .encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 404), (path, answer[:200])
        assert b"root:" not in answer and b"SQLite format" not in answer
        assert b"import " not in answer


def test_the_page_renders_values_as_text_only():
    """Stored XSS: the page builds its DOM with createTextNode/textContent and never
    parses a value as HTML (the CSP header is checked above, the page in e2e)."""
    from importlib import resources

    page = resources.files("promptlab.studio").joinpath("static/index.html").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                 "eval(", "new Function", "setAttribute(\"on", "javascript:"):
        assert sink not in page, sink
    assert "createTextNode" in page and "textContent" in page


def test_bad_json_and_bodies(studio: Studio):
    cases = [
        (b"{", "application/json", 400, "Malformed JSON"),
        (b"[1, 2]", "application/json", 400, "must be an object"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b"[" * 30000 + b"]" * 30000, "application/json", 400, "nested too deeply"),
        (b'{"username": "root", "password": "x"}', "text/plain", 415, "Content-Type"),
        (b"", "application/json", 400, "empty"),
        (b'{"username": ["root"], "password": "x"}', "application/json", 400, "required"),
    ]
    for raw, ctype, status, message in cases:
        code, _, data = studio.request("POST", "/api/login", raw=raw,
                                       headers={"Content-Type": ctype})
        assert code == status and message in data["message"], (raw[:20], data)
        code, _, data = studio.request("POST", "/api/templates", raw=raw, token=studio.token,
                                       headers={"Content-Type": ctype})
        assert code == status, (raw[:20], data)


def test_body_size_limit(tmp_path: Path):
    small = Studio(tmp_path / "lab.db", max_body_bytes=2048)
    try:
        small.add_user("root", ROOT_PASSWORD, "admin")
        token = small.login()
        big = {"name": "qa", "description": "x" * 4000, "system_prompt": "s",
               "user_prompt": "u"}
        status, headers, data = small.request("POST", "/api/templates", big, token=token)
        assert status == 413 and headers["connection"] == "close"
        assert "larger than" in data["message"]
        # refused from the header alone, before any body is sent
        with socket.create_connection(("127.0.0.1", small.port), timeout=10) as sock:
            sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 99999999999\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
        with socket.create_connection(("127.0.0.1", small.port), timeout=10) as sock:
            sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 100 ")
        with socket.create_connection(("127.0.0.1", small.port), timeout=10) as sock:
            sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                         b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 411 ")
        for length in (b"-1", b"abc", b"1, 2"):
            with socket.create_connection(("127.0.0.1", small.port), timeout=10) as sock:
                sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                             length + b"\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
        assert small.get("/api/me", token=token)[0] == 200  # still serving
    finally:
        small.stop()


def test_unknown_paths_methods_and_garbage(studio: Studio):
    assert studio.request("GET", "/nothing")[0] == 404
    status, _, data = studio.request("GET", "/api/nothing", token=studio.token)
    assert status == 404 and data["success"] is False
    status, headers, _ = studio.request("PUT", "/api/users", {}, token=studio.token)
    assert status == 405 and headers["allow"] == "GET, POST"
    assert studio.request("GET", "/api/login")[0] == 405
    assert studio.request("BREW", "/")[0] == 501
    with socket.create_connection(("127.0.0.1", studio.port), timeout=10) as sock:
        sock.sendall(b"this is not http\r\n\r\n")  # answered as HTTP/0.9: a body alone
        assert json.loads(sock.recv(4096))["message"].startswith("Bad request version")
    with socket.create_connection(("127.0.0.1", studio.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431 ") and b"application/json" in answer
    with socket.create_connection(("127.0.0.1", studio.port), timeout=10) as sock:
        sock.sendall(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 414 ")
    query = "&".join(f"k{i}=v" for i in range(300))
    assert studio.get(f"/api/studio/records?{query}")[0] == 400
    assert studio.get("/api/me")[0] == 200


def test_errors_never_show_internals(studio: Studio, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(studio.app.read, "experiment_rows", broken)
    status, _, data = studio.request("GET", "/api/experiments", token=studio.token)
    assert status == 500
    text = json.dumps(data)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert "internal detail /secret/path" in caplog.text  # it is in the log

    def busy(*args):
        raise _core.DatabaseBusyError("busy /secret/path")

    monkeypatch.setattr(studio.app.read, "experiment_rows", busy)
    status, headers, data = studio.request("GET", "/api/experiments", token=studio.token)
    assert status == 503 and headers["retry-after"] == "1" and "secret" not in json.dumps(data)


def test_no_cors_by_default_and_listed_origins_only(tmp_path: Path):
    plain = Studio(tmp_path / "a.db")
    listed = Studio(tmp_path / "b.db", cors_origins=("https://lab.example.com",))
    try:
        for studio in (plain, listed):
            status, headers, _ = studio.request("OPTIONS", "/api/login",
                                                headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in headers
        status, headers, _ = listed.request("OPTIONS", "/api/experiments", headers={
            "Origin": "https://lab.example.com", "Access-Control-Request-Method": "GET"})
        assert status == 204
        assert headers["access-control-allow-origin"] == "https://lab.example.com"
        assert "Authorization" in headers["access-control-allow-headers"]
        assert "access-control-allow-origin" not in plain.request(
            "GET", "/health", headers={"Origin": "https://lab.example.com"})[1]
    finally:
        plain.stop()
        listed.stop()


def test_config_from_environment():
    config = StudioConfig.from_env("x.db", environ={
        "PROMPTLAB_TOKEN_EXPIRE_MINUTES": "60", "PROMPTLAB_STUDIO_MAX_BODY_MB": "1",
        "PROMPTLAB_STUDIO_CORS_ORIGINS": "https://a.example, https://b.example/",
        "PROMPTLAB_STUDIO_DATASETS_DIR": "/data"})
    assert (config.token_ttl_seconds, config.max_body_bytes) == (3600, 1024 * 1024)
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.datasets_dir == "/data"
    for env in ({"PROMPTLAB_STUDIO_CORS_ORIGINS": "*"},
                {"PROMPTLAB_TOKEN_EXPIRE_MINUTES": "soon"},
                {"PROMPTLAB_STUDIO_MAX_BODY_MB": "-1"}):
        with pytest.raises(auth.StudioError):
            StudioConfig.from_env("x.db", environ=env)


def test_keep_alive_connections_serve_many_requests(studio: Studio):
    token = studio.token
    conn = http.client.HTTPConnection("127.0.0.1", studio.port, timeout=10)
    try:
        for _ in range(20):
            conn.request("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["username"] == "root"
    finally:
        conn.close()


def test_connections_beyond_the_limit_get_503_when_all_are_busy(tmp_path: Path,
                                                                 monkeypatch):
    studio = Studio(tmp_path / "lab.db", max_connections=2)
    release = threading.Event()
    monkeypatch.setattr(studio.app.read, "ping", lambda: release.wait(30))
    busy = []
    try:
        for _ in range(2):  # two requests the studio is working on
            sock = socket.create_connection(("127.0.0.1", studio.port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(sock)
        for _ in range(100):  # until both are past their heads
            if all(v is None for v in studio.server.connections._waiting.values()) and \
                    len(studio.server.connections._waiting) == 2:
                break
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", studio.port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        release.set()
        for sock in busy:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        assert studio.request("GET", "/health")[0] == 200
    finally:
        release.set()
        for sock in busy:
            sock.close()
        studio.stop()


# --- many clients at once --------------------------------------------------------------------


def test_concurrent_clients_get_no_errors_and_every_row_is_stored(studio: Studio,
                                                                   tmp_path: Path):
    seed(studio.tracer, tmp_path, records=20)
    clients, rounds, records = 24, 4, 15
    token = studio.token
    barrier = threading.Barrier(clients)
    errors: List[Any] = []
    answered = [0]
    lock = threading.Lock()

    def check(status: int, data: Any, what: str) -> None:
        with lock:
            answered[0] += 1
            if status != 200:
                errors.append((what, status, data))

    def client(n: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                status, data = studio.post("/api/templates", {
                    "name": f"t{n}", "description": "", "system_prompt": f"s{r}",
                    "user_prompt": "u", "version": r}, token=token)
                check(status, data, "template")
                status, data = studio.post("/api/experiments",
                                           experiment_payload(f"c{n}-{r}", records), token)
                check(status, data, "experiment")
                for path in ("/api/studio/experiments", "/api/prompts", "/api/datasets",
                             f"/api/studio/records?experiment_id=c{n}-{r}&limit=5",
                             f"/api/assets?asset_name=t{n}&asset_version=-1", "/health",
                             "/api/experiments" if r == 0 else "/api/me"):
                    status, data = studio.get(path, token=token)
                    check(status, data, path)
                    if path.startswith("/api/assets"):
                        assert data["asset"]["asset_version"] == r
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(("exception", repr(exc)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert answered[0] == clients * rounds * 9
    count = lambda sql: db_rows(studio.db, sql)[0][0]  # noqa: E731
    assert count("SELECT COUNT(*) FROM experiments WHERE experiment_id LIKE 'c%'") == (
        clients * rounds)
    assert count("SELECT COUNT(*) FROM experiment_result WHERE experiment_id LIKE 'c%'") == (
        clients * rounds * records)
    assert count("SELECT COUNT(*) FROM assets WHERE asset_name LIKE 't%'") == clients * rounds
    assert count("SELECT COUNT(DISTINCT experiment_id) FROM experiment_result") == (
        clients * rounds + 2)
    assert db_rows(studio.db, "PRAGMA integrity_check") == [("ok",)]
    summaries = studio.get("/api/studio/experiments")[1]["experiments"]
    assert len(summaries) == clients * rounds + 2
    ours = [s for s in summaries if s["experiment_id"][0] == "c"]
    assert all(s["records"] == records for s in ours)
    # metric averages (cached per experiment while the others were being written)
    assert all(s["metrics"] == {"exact_match": {"average": 1.0, "count": records},
                                "fluency": {"average": 7 / 15, "count": records}}
               for s in ours)


# --- the command ---------------------------------------------------------------------------------


def _start(db: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "promptlab", "studio", "start", "-d",
                             str(db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=NEUTRAL_CWD, env=full_env)


def _read_until_url(proc: subprocess.Popen) -> Tuple[List[str], str]:
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"studio exited: {lines} {proc.stderr.read()}")
        lines.append(line.rstrip("\n"))
        if "is running at " in line:
            return lines, line.split("is running at ")[1].split()[0]


def _http(url: str, method: str = "GET", body: Any = None, token: Optional[str] = None):
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


def test_start_initializes_prints_once_serves_and_stops_on_sigterm(tmp_path: Path):
    db = tmp_path / "new" / "lab.db"
    proc = _start(db, "-p", "0")
    try:
        lines, url = _read_until_url(proc)
        assert url.startswith("http://127.0.0.1:")
        text = "\n".join(lines)
        assert f"Database: {db} (revision {HEAD})." in text
        password = text.split("password: ")[1].split()[0]
        status, data = _http(url + "api/login", "POST",
                             {"username": "admin", "password": password})
        assert status == 200 and data["role"] == "admin"
        assert _http(url + "health", token=data["access_token"])[1]["database"]["revision"] == HEAD
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Stopped (SIGTERM)." in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # a second start prints no password; the old token still works; Ctrl-C stops it
    proc = _start(db, "-p", "0")
    try:
        lines, url = _read_until_url(proc)
        assert "password:" not in "\n".join(lines)
        assert _http(url + "api/me", token=data["access_token"])[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Stopped (SIGINT)." in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stat.S_IMODE(os.stat(auth.config_secret_path(str(db))).st_mode) == 0o600
    assert not os.path.exists(str(db) + ".studio-secret")


def test_start_failures_are_one_line(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _start(tmp_path / "lab.db", "-p", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith(f"promptlab: error: cannot listen on "
                                                   f"127.0.0.1:{port}")
    assert "Traceback" not in err
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("hello")
    proc = _start(not_a_db, "-p", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err and err.startswith("promptlab: error:")
    assert not_a_db.read_text() == "hello"
    proc = _start(tmp_path / "x.db", "-p", "0", env={"PROMPTLAB_STUDIO_CORS_ORIGINS": "*"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "CORS" in err and "Traceback" not in err
    proc = _start(tmp_path / "x.db", "-p", "70000")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "port" in err
