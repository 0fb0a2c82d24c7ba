"""``promptlab studio start`` in a process: it initializes the database, prints the
admin password once, serves, stops on SIGTERM, and reports start failures in one line."""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import pytest

from conftest import HEAD
from promptlab.studio import auth
from studiotools import http_json, read_until_url, start_command

pytestmark = pytest.mark.usefixtures("config_home")


def test_start_initializes_prints_once_serves_and_stops_on_sigterm(tmp_path: Path):
    db = tmp_path / "new" / "lab.db"
    proc = start_command(db, "-p", "0")
    try:
        lines, url = read_until_url(proc)
        assert url.startswith("http://127.0.0.1:")
        text = "\n".join(lines)
        assert f"Database: {db} (revision {HEAD})." in text
        password = text.split("password: ")[1].split()[0]
        status, data = http_json(url + "api/login", "POST",
                                 {"username": "admin", "password": password})
        assert status == 200 and data["role"] == "admin"
        health = http_json(url + "health", token=data["access_token"])[1]
        assert health["database"]["revision"] == HEAD
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Stopped (SIGTERM)." in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # a second start prints no password; the old token still works; Ctrl-C stops it
    proc = start_command(db, "-p", "0")
    try:
        lines, url = read_until_url(proc)
        assert "password:" not in "\n".join(lines)
        assert http_json(url + "api/me", token=data["access_token"])[0] == 200
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
        proc = start_command(tmp_path / "lab.db", "-p", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith(f"promptlab: error: cannot listen on "
                                                   f"127.0.0.1:{port}")
    assert "Traceback" not in err
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("hello")
    proc = start_command(not_a_db, "-p", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err and err.startswith("promptlab: error:")
    assert not_a_db.read_text() == "hello"
    proc = start_command(tmp_path / "x.db", "-p", "0", env={"PROMPTLAB_STUDIO_CORS_ORIGINS": "*"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "CORS" in err and "Traceback" not in err
    proc = start_command(tmp_path / "x.db", "-p", "70000")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "port" in err
