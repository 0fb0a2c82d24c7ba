"""The studio's sign-in, throttling of failed logins, JWTs and their secret, roles and
user management, against a real server on a loopback port (each test its own server
and database; see studiotools.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional, Tuple

import pytest

from conftest import HEAD
from promptlab import _core
from promptlab.studio import auth
from promptlab.studio.api import StudioConfig
from promptlab.studio.auth import LoginThrottle, decode_token, encode_token
from studiotools import ORIGINAL_ADMIN_HASH, ROOT_PASSWORD, SECRET, FakeClock, Studio

pytestmark = pytest.mark.usefixtures("config_home")


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


def test_guessing_many_usernames_slows_only_that_address(tmp_path: Path, at_head):
    """With the proxy trusted, each client has its own address: a sprayer is slowed,
    a success on its own account does not reset that, others sign in."""
    studio = Studio(at_head(tmp_path / "lab.db"), trusted_proxies=("127.0.0.1",))
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


def test_an_account_under_attack_from_many_addresses_waits(tmp_path: Path, at_head):
    studio = Studio(at_head(tmp_path / "lab.db"), trusted_proxies=("127.0.0.0/8",))
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
