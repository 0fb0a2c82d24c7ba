"""The throwaway PostgreSQL server the PostgreSQL tests run against (tests/pgserver.py,
issue 15 item 6): it starts as an unprivileged user, answers over loopback TCP and its
Unix socket, checks passwords, and comes back after a SIGKILL with what was committed."""

from __future__ import annotations

import pytest


def test_answers_over_tcp_and_the_unix_socket(postgres_server):
    for via_socket in (False, True):
        done = postgres_server.psql("SELECT current_user, 6 * 7", via_socket=via_socket)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "promptlab|42"


def test_a_wrong_password_is_refused(postgres_server):
    done = postgres_server.psql("SELECT 1", password="not-the-password")
    assert done.returncode != 0
    assert "password authentication failed" in done.stderr


def test_each_test_gets_its_own_empty_database(postgres_url, postgres_server):
    name = postgres_url.rsplit("/", 1)[1]
    done = postgres_server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                                database=name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


@pytest.mark.slow
def test_committed_rows_survive_a_killed_server(postgres_url, postgres_server):
    name = postgres_url.rsplit("/", 1)[1]
    done = postgres_server.psql("CREATE TABLE t (x int); INSERT INTO t "
                                "SELECT generate_series(1, 1000)", database=name)
    assert done.returncode == 0, done.stderr
    postgres_server.kill()
    assert postgres_server.psql("SELECT 1", database=name).returncode != 0
    postgres_server.start()
    done = postgres_server.psql("SELECT count(*), sum(x) FROM t", database=name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1000|500500"
