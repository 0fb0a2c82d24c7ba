"""Issue 12, the studio's items: each test here failed before its fix.

Slow-client tests set the deadlines small (``header_timeout``, ``request_timeout``)
and are bounded by socket timeouts of a few seconds; no assertion is about speed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import List

import pytest

from helpers import wait_for
from promptlab.studio import auth
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import Dataset
from studiotools import ROOT_PASSWORD, SECRET, Studio, experiment_payload


def _connect(studio: Studio, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", studio.port), timeout=timeout)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 5 s of quiet)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except (socket.timeout, ConnectionError):
        return data


def _closed_by_server(sock: socket.socket, trickle: bytes, seconds: float = 10.0) -> bool:
    """Send ``trickle`` a byte at a time (one each 50 ms) for up to ``seconds``: True
    when the server closed the connection meanwhile."""
    sock.settimeout(0.05)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        try:
            sock.send(trickle[i % len(trickle):i % len(trickle) + 1])
            i += 1
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False




# --- item 3: slow clients, bodies before authentication ----------------------------------


def test_a_strangers_body_is_refused_before_it_is_read(studio: Studio):
    """Bodies were read before the token was checked: 64 partial 31 MB bodies took
    the studio from 25 MB to 2 GB. Now the head alone gets the 401."""
    head = (b"POST /api/templates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 32505856\r\n")
    with _connect(studio) as sock:
        sock.sendall(head + b"\r\n" + b"{" * 1000)  # and then nothing more
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in answer
    with _connect(studio) as sock:  # no 100 Continue for a stranger
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 401 ") and b" 100 " not in answer
    # the login route takes a small body only
    with _connect(studio) as sock:
        sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 413 ")
    assert studio.get("/api/me")[0] == 200


def test_bodies_in_flight_have_a_memory_budget(tmp_path: Path, at_head):
    studio = Studio(at_head(tmp_path / "lab.db"), max_body_bytes=4096, max_bodies_bytes=4096)
    try:
        studio.add_user("root", ROOT_PASSWORD, "admin")
        token = studio.login()
        body = json.dumps({"name": "big", "description": "", "system_prompt": "s",
                           "user_prompt": "u" * 2900}).encode()
        head = (f"POST /api/templates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
                f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
        with _connect(studio) as first:
            first.sendall(head + body[:10])  # holds ~3 KB of the 4 KB budget
            budget = studio.server.wsgi.budget
            wait_for(lambda: budget.used > 0, what="the studio to reserve the first body")
            with _connect(studio) as second:
                second.sendall(head + body)
                answer = _read_all(second)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
            first.sendall(body[10:])
            first.settimeout(5)
            assert first.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert studio.app.tracer.get_asset("big", 0).asset_name == "big"
    finally:
        studio.stop()


def test_a_request_must_arrive_before_its_deadline(tmp_path: Path, at_head):
    """The 30 s timeout was per read: a byte every 10 s kept a connection forever."""
    studio = Studio(at_head(tmp_path / "lab.db"), header_timeout=0.5, request_timeout=1.0)
    try:
        studio.add_user("root", ROOT_PASSWORD, "admin")
        with _connect(studio) as sock:  # a head that never ends
            assert _closed_by_server(sock, b"GET /health HTTP/1.1\r\nX-Slow: aaaaaaaaaa")
        with _connect(studio) as sock:  # a login body that never ends
            sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 60000\r\n\r\n")
            assert _closed_by_server(sock, b'{"username": "root", "password": "')
        assert studio.request("GET", "/health")[0] == 200
    finally:
        studio.stop()


def test_slow_clients_holding_every_connection_do_not_starve_the_others(tmp_path: Path, at_head):
    """One client holding every connection with partial heads kept the others at 503."""
    studio = Studio(at_head(tmp_path / "lab.db"), max_connections=4)
    slow: List[socket.socket] = []
    try:
        for _ in range(8):  # twice the limit, each sending half a head
            sock = _connect(studio)
            sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: a")
            slow.append(sock)
            time.sleep(0.02)
        for _ in range(3):
            assert studio.request("GET", "/health")[0] == 200
    finally:
        for sock in slow:
            sock.close()
        studio.stop()


# --- item 11: no request smuggled in a refused body -----------------------------------------


def test_a_refused_body_is_never_parsed_as_a_request(tmp_path: Path, at_head):
    studio = Studio(at_head(tmp_path / "lab.db"), max_body_bytes=2048)
    try:
        studio.add_user("root", ROOT_PASSWORD, "admin")
        token = studio.login()
        smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        for extra in (b"Expect: 100-continue\r\n", b""):
            with _connect(studio) as sock:
                sock.sendall(b"POST /api/templates HTTP/1.1\r\nHost: x\r\nAuthorization: "
                             b"Bearer " + token.encode() + b"\r\nContent-Type: "
                             b"application/json\r\nContent-Length: 99999\r\n" + extra +
                             b"\r\n")
                time.sleep(0.1)
                try:
                    sock.sendall(smuggled)
                except OSError:
                    pass
                answer = _read_all(sock)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
            assert answer.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in answer
    finally:
        studio.stop()


# --- item 7: tokens end with the password they were issued for ---------------------------------


def test_tokens_issued_before_a_password_change_are_refused(studio: Studio):
    from promptlab.sqlite.admin import set_admin_password

    set_admin_password(studio.db, "first-admin-password")
    old = studio.login("admin", "first-admin-password")
    assert studio.get("/api/me", token=old)[0] == 200
    set_admin_password(studio.db, "second-admin-password")  # `promptlab db admin-password`
    status, data = studio.get("/api/me", token=old)
    assert status == 401 and "password changed" in data["message"]
    assert studio.get("/api/me", token=studio.login("admin", "second-admin-password"))[0] == 200
    # a token without the claim (or with another one) is refused too
    forged = auth.encode_token({"sub": "root", "role": "admin", "exp": time.time() + 60},
                               SECRET)
    assert studio.get("/api/me", token=forged)[0] == 401


# --- item 8: a secret file someone else can write is refused ------------------------------------


def test_a_secret_file_open_to_others_or_owned_by_another_user_is_refused(tmp_path: Path,
                                                                          monkeypatch):
    monkeypatch.delenv(auth.SECRET_ENV, raising=False)
    db = str(tmp_path / "lab.db")
    path = Path(auth.secret_path(db))
    path.write_text("s" * 43 + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(auth.StudioError, match=r"other users; run: chmod 600 .*studio-secret"):
        auth.load_secret(db)
    os.chmod(path, 0o620)
    with pytest.raises(auth.StudioError, match="chmod 600"):
        auth.load_secret(db)
    os.chmod(path, 0o600)
    assert auth.load_secret(db) == (b"s" * 43, str(path))
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    else:  # the same check, seen from a studio run by another user
        monkeypatch.setattr(os, "geteuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(auth.StudioError, match="belongs to another user"):
        auth.load_secret(db)


# --- item 5: dataset files only from the database's folder ---------------------------------------


def test_dataset_files_outside_the_database_folder_are_not_read(tmp_path: Path, at_head):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    secret = private / "keys.json"
    secret.write_text(json.dumps([{"id": "0", "password": "hunter2"}]))
    os.chmod(secret, 0o600)
    (tmp_path / "db").mkdir()
    studio = Studio(at_head(tmp_path / "db" / "lab.db"))
    try:
        studio.add_user("root", ROOT_PASSWORD, "admin")
        studio.tracer.create_dataset(Dataset(name="leak", description="",
                                             file_path=str(secret)))
        studio.post("/api/experiments", experiment_payload("e1", 1, dataset="leak"))
        data = studio.get("/api/studio/records?experiment_id=e1")[1]
        assert data["records"][0]["input"] is None and "hunter2" not in json.dumps(data)
        assert "outside the folders" in data["inputs_note"]
        assert "PROMPTLAB_STUDIO_DATASETS_DIR" in data["inputs_note"]
    finally:
        studio.stop()
    listed = Studio(tmp_path / "db" / "lab.db",
                    datasets_dir=os.pathsep.join([str(tmp_path / "db"), str(private)]))
    try:
        data = listed.get("/api/studio/records?experiment_id=e1", token=listed.login())[1]
        assert data["inputs_note"] is None and data["records"][0]["input"]["password"]
    finally:
        listed.stop()


# --- item 10: NUL and lone surrogates are 400, not 500 ------------------------------------------


def test_nul_and_lone_surrogates_are_refused_as_bad_input(studio: Studio):
    token = studio.token
    cases = [
        ("/api/login", '{"username": "root", "password": "a\\u0000b"}', None),
        ("/api/login", '{"username": "root", "password": "\\ud800"}', None),
        ("/api/login", '{"username": "r\\u0000oot", "password": "x"}', None),
        ("/api/users", '{"username": "bob", "password": "\\ud800aaaaaaaa", '
                       '"role": "engineer"}', token),
        ("/api/users", '{"username": "bob", "password": "aaaa\\u0000aaaa", '
                       '"role": "engineer"}', token),
        ("/api/templates", '{"name": "qa", "description": "\\udfff", "system_prompt": "s", '
                           '"user_prompt": "u"}', token),
        ("/api/datasets", '{"name": "d", "description": "", "file_path": "/a\\ud800.jsonl"}',
         token),
        ("/api/datasets", '{"name": "d", "description": "", "file_path": "/a\\u0000.jsonl"}',
         token),
    ]
    payload = experiment_payload("e1", 2)
    payload["experiment_summary"][1]["completion"] = "\ud800"
    cases.append(("/api/experiments", json.dumps(payload), token))
    for path, text, who in cases:
        status, _, data = studio.request("POST", path, raw=text.encode(), token=who,
                                         headers={"Content-Type": "application/json"})
        assert status == 400, (path, text, data)
    for query in ("/api/assets?asset_name=a%00&asset_version=-1",
                  "/api/studio/records?experiment_id=%00", "/api/users/a%00"):
        method = "DELETE" if query.startswith("/api/users") else "GET"
        assert studio.request(method, query, token=token)[0] == 400, query
    assert studio.get("/api/experiments")[1]["experiments"] == []


# --- item 12: names checked to their end ---------------------------------------------------------


def test_names_with_a_trailing_newline_are_refused(studio: Studio):
    status, data = studio.post("/api/users", {"username": "admin\n", "role": "admin",
                                              "password": "long-enough-password"})
    assert status == 400, data
    for path, body in (("/api/templates", {"name": "prod\n", "description": "",
                                           "system_prompt": "s", "user_prompt": "u"}),
                       ("/api/datasets", {"name": "prod\n", "description": "",
                                          "file_path": "/x.jsonl"})):
        assert studio.post(path, body)[0] == 400, path
    with pytest.raises(auth.TokenError):
        auth._b64url_decode("QUFB\n")


# --- item 14: GET /api/experiments a page at a time ---------------------------------------------


def test_experiments_are_listed_a_page_at_a_time(studio: Studio):
    for i in range(3):
        assert studio.post("/api/experiments", experiment_payload(f"e{i}", 2))[0] == 200
    status, first = studio.get("/api/experiments")
    everything = first["experiments"]
    assert status == 200 and len(everything) == 6 and first["next_offset"] is None
    assert [r["experiment_id"] for r in everything] == ["e2"] * 2 + ["e1"] * 2 + ["e0"] * 2
    pages, offset = [], 0
    while offset is not None:
        status, page = studio.get(f"/api/experiments?limit=4&offset={offset}")
        assert status == 200 and page["limit"] == 4 and len(page["experiments"]) <= 4
        pages += page["experiments"]
        offset = page["next_offset"]
    assert pages == everything
    assert studio.get("/api/experiments?limit=4")[1]["next_offset"] == 4
    for bad in ("limit=0", "limit=50001", "offset=-1", "limit=x"):
        assert studio.get(f"/api/experiments?{bad}")[0] == 400, bad
    # the rows are those of LocalTracer.get_experiments(), the original's
    rows = LocalTracer({"type": "local", "db_file": str(studio.db)}).get_experiments()
    assert [(r["experiment_id"], r["dataset_record_id"]) for r in rows] == [
        (r["experiment_id"], r["dataset_record_id"]) for r in everything]
