"""Connecting to PostgreSQL (issue 15, items 1 and 4, the connection layer): the engine
connects with libpq, so libpq's conventions work (a URL with or without the password,
PGPASSWORD, ~/.pgpass, service files, the Unix socket), and each way a connection fails
is a typed DatabaseError whose message names the server and the database and says what
to do, and never holds the password. Run against a throwaway server
(tests/pgserver.py); sessions on PostgreSQL come next."""

from __future__ import annotations

import os
import socket

import pytest

from pgserver import PASSWORD, SUPERUSER
from promptlab import _core
from promptlab.sqlite import (
    AuthenticationError,
    DatabaseError,
    DatabaseNotFoundError,
    DatabasePathError,
    PermissionDeniedError,
    ServerUnavailableError,
)


def _no_password_in(exc: BaseException, password: str = PASSWORD) -> None:
    assert password not in str(exc) and password not in str(exc.path)


def test_connects_and_shows_the_url_without_the_password(postgres_server, postgres_url):
    found = _core._postgres_probe(postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    assert found["database"] == name and found["user"] == SUPERUSER
    assert found["server_version"] >= 100000
    assert found["url"] == (f"postgresql://{SUPERUSER}@{postgres_server.host}:"
                            f"{postgres_server.port}/{name}")
    assert PASSWORD not in found["url"]


def test_the_unix_socket_and_a_password_from_pgpassword(postgres_server, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.url("postgres", password=None, via_socket=True)
    found = _core._postgres_probe(url)
    assert found["url"] == (f"postgresql://{SUPERUSER}@/postgres?host="
                            f"{postgres_server.socket_dir}&port={postgres_server.port}")


def test_a_password_from_a_pgpass_file_and_a_service_file(postgres_server, tmp_path,
                                                         monkeypatch):
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{postgres_server.host}:{postgres_server.port}:*:{SUPERUSER}:"
                      f"{PASSWORD}\n")
    pgpass.chmod(0o600)  # libpq ignores a file others can read
    services = tmp_path / "services"
    services.write_text(f"[lab]\nhost={postgres_server.host}\nport={postgres_server.port}\n"
                        f"user={SUPERUSER}\ndbname=postgres\n")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    assert _core._postgres_probe(postgres_server.url("postgres", password=None))["user"] == \
        SUPERUSER
    assert _core._postgres_probe("postgresql:///?service=lab")["database"] == "postgres"


def test_a_wrong_password_is_an_authentication_error(postgres_server, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    wrong = "Wr0ng-and-s3cret"
    with pytest.raises(AuthenticationError) as info:
        _core._postgres_probe(postgres_server.url("postgres", password=wrong))
    message = str(info.value)
    assert postgres_server.host in message and str(postgres_server.port) in message
    assert "postgres" in message and "PGPASSWORD" in message
    _no_password_in(info.value, wrong)
    with pytest.raises(AuthenticationError, match="password"):  # none given at all
        _core._postgres_probe(postgres_server.url("postgres", password=None))


def test_a_missing_database(postgres_server):
    with pytest.raises(DatabaseNotFoundError) as info:
        _core._postgres_probe(postgres_server.url("no_such_lab"))
    assert "no_such_lab" in str(info.value) and "createdb" in str(info.value)
    _no_password_in(info.value)


def test_a_user_without_connect_permission(postgres_server, postgres_url):
    name = postgres_url.rsplit("/", 1)[1]
    done = postgres_server.psql(
        f"CREATE ROLE visitor LOGIN PASSWORD 'visitor-pass'; "
        f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
    assert done.returncode == 0, done.stderr
    try:
        with pytest.raises(PermissionDeniedError) as info:
            _core._postgres_probe(postgres_server.url(name, user="visitor",
                                                      password="visitor-pass"))
        assert "visitor" in str(info.value) and "CONNECT" in str(info.value)
        _no_password_in(info.value, "visitor-pass")
    finally:
        postgres_server.psql("DROP OWNED BY visitor; DROP ROLE visitor")


def test_no_server_listening_is_server_unavailable():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerUnavailableError) as info:
        _core._postgres_probe(f"postgresql://lab:{PASSWORD}@127.0.0.1:{port}/prompts")
    message = str(info.value)
    assert f"127.0.0.1:{port}/prompts" in message and "start it" in message
    _no_password_in(info.value)


def test_a_url_that_is_not_valid_is_refused_without_echoing_it():
    secret = "p%zz-secret"  # not valid percent-encoding
    with pytest.raises(DatabasePathError) as info:
        _core._postgres_probe(f"postgresql://lab:{secret}@127.0.0.1/prompts")
    assert "not a valid PostgreSQL URL" in str(info.value)
    assert "secret" not in str(info.value)


def test_every_new_error_is_a_database_error():
    for kind in (AuthenticationError, DatabaseNotFoundError, PermissionDeniedError,
                 ServerUnavailableError, _core.ConnectionLostError):
        assert issubclass(kind, DatabaseError)
    assert issubclass(_core.ConnectionLostError, ServerUnavailableError)
