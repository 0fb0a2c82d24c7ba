"""The studio as a WSGI application, carried by a real waitress server (the optional
``server`` extra) and by the studio's own server: the same answers from both."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

from promptlab import _core
from promptlab.sqlite.models import User
from promptlab.studio.auth import StudioError
from promptlab.studio.server import StudioServer
from promptlab.studio.wsgi import make_app
from studiotools import (
    ORIGINAL_ADMIN_HASH,
    ROOT_PASSWORD,
    SECRET,
    experiment_payload,
    http_request,
)


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                raw: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None
                ) -> Tuple[int, Dict[str, str], Any]:
        return http_request(self.port, method, path, body, token, headers, raw)


def _waitress(app) -> Iterator[int]:
    waitress = pytest.importorskip("waitress")
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4,
                                    max_request_body_size=app.config.max_body_bytes)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        # Close every channel from the server's own loop thread, which then ends.
        server.trigger.pull_trigger(
            lambda: [channel.close() for channel in list(server._map.values())])
        thread.join(10)
        server.task_dispatcher.shutdown()


def _builtin(app) -> Iterator[int]:
    server = StudioServer(app.app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.stop()
        thread.join(10)


@pytest.fixture(params=["waitress", "builtin"])
def served(request, tmp_path: Path):
    app = make_app(str(tmp_path / "lab.db"), environ={}, secret=SECRET,
                   max_body_bytes=64 * 1024)
    app.app.tracer.create_user(User(username="root", role="admin",
                                    password_hash=_core.hash_password(ROOT_PASSWORD, 4)))
    serve = _waitress if request.param == "waitress" else _builtin
    gen = serve(app)
    port = next(gen)
    yield app, Client(port)
    for _ in gen:
        pass


def test_the_same_answers_under_waitress_and_the_builtin_server(served):
    app, client = served
    status, headers, data = client.request("POST", "/api/login",
                                           {"username": "root", "password": ROOT_PASSWORD})
    assert status == 200 and headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    token = data["access_token"]
    assert client.request("GET", "/api/me", token=token)[2] == {"username": "root",
                                                                "role": "admin"}
    assert client.request("GET", "/api/me")[0] == 401
    assert client.request("POST", "/api/experiments", experiment_payload("e1", 3),
                          token=token)[0] == 200
    status, _, data = client.request("GET", "/api/experiments?limit=2", token=token)
    assert status == 200 and len(data["experiments"]) == 2 and data["next_offset"] == 2
    status, _, data = client.request("GET", "/api/studio/records?experiment_id=e1",
                                     token=token)
    assert status == 200 and data["total"] == 3
    big = {"name": "t", "description": "x" * 70000, "system_prompt": "s", "user_prompt": "u"}
    assert client.request("POST", "/api/templates", big, token=token)[0] == 413
    status, headers, page = client.request("GET", "/")
    assert status == 200 and "script-src 'sha256-" in headers["content-security-policy"]
    assert client.request("HEAD", "/")[2] == b""
    assert client.request("DELETE", "/api/users/nobody", token=token)[0] == 404
    assert client.request("GET", "/api/users/x%2Fy", token=token)[0] in (404, 405)
    status, _, data = client.request("GET", "/nothing")
    assert status == 404 and data["success"] is False


def test_application_from_the_environment(tmp_path: Path, monkeypatch):
    from promptlab.studio import wsgi

    with pytest.raises(StudioError, match="PROMPTLAB_STUDIO_DB"):
        make_app(environ={})
    db = tmp_path / "lab.db"
    monkeypatch.setenv("PROMPTLAB_STUDIO_DB", str(db))
    monkeypatch.setenv("PROMPTLAB_SECRET_KEY", "k" * 40)
    monkeypatch.setattr(wsgi, "_application", None)
    started = []
    body = wsgi.application({"REQUEST_METHOD": "GET", "PATH_INFO": "/health",
                             "REMOTE_ADDR": "127.0.0.1", "wsgi.input": None},
                            lambda status, headers: started.append(status))
    assert started == ["200 OK"]
    assert json.loads(b"".join(body)) == {"status": "healthy",
                                          "service": "promptlab-studio"}
    # a database whose admin still has the original's password admin/admin
    con = sqlite3.connect(db)
    con.execute("UPDATE users SET password_hash = ? WHERE username = 'admin'",
                (ORIGINAL_ADMIN_HASH,))
    con.commit()
    con.close()
    with pytest.raises(StudioError, match="admin-password"):
        make_app(str(db), environ={})
