"""The studio's HTTP layer: the locked-down page, injection and traversal, bad bodies,
size and connection limits, CORS, configuration, keep-alive, and many clients at once."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

from promptlab import _core
from promptlab.studio import auth
from promptlab.studio.api import StudioConfig
from studiotools import ROOT_PASSWORD, Studio, db_rows, experiment_payload, seed

pytestmark = pytest.mark.usefixtures("config_home")


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


def test_body_size_limit(tmp_path: Path, at_head):
    small = Studio(at_head(tmp_path / "lab.db"), max_body_bytes=2048)
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


def test_no_cors_by_default_and_listed_origins_only(tmp_path: Path, at_head):
    plain = Studio(at_head(tmp_path / "a.db"))
    listed = Studio(at_head(tmp_path / "b.db"), cors_origins=("https://lab.example.com",))
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
                                                                 monkeypatch, at_head):
    studio = Studio(at_head(tmp_path / "lab.db"), max_connections=2)
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
