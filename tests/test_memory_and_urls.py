"""Naming a database: ":memory:" (and "sqlite:///:memory:") is the process's one
in-memory database, shared by its sessions, as it was through SQLAlchemy (issue 13,
item 8); "sqlite:///path" works wherever a path does; a URL of a backend that is not
built in is a clear error, never a folder named "postgresql:"."""

from __future__ import annotations

import os
import threading

import pytest

from conftest import run_python
from promptlab import _core
from promptlab.sqlite import DatabasePathError, get_session, init_engine
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.session import reset_initialization
from promptlab.tracer.local_tracer import LocalTracer
from factories import make_config, make_dataset, make_summary


def test_memory_is_an_in_memory_database_shared_by_sessions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db_manager.initialize_database(":memory:")
    assert db_manager.database_path == ":memory:"
    assert db_manager.database_url == "sqlite:///:memory:"
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    seen = []

    def read():
        with get_session(":memory:") as s:
            seen.append(s.execute("SELECT count(*) FROM assets").scalar())

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [1, 1, 1, 1]
    assert os.listdir(tmp_path) == []  # no file named ':memory:'


def test_the_tracer_works_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracer = LocalTracer({"type": "local", "db_file": ":memory:"})
    tracer.create_dataset(make_dataset())
    tracer.trace_experiment(make_config(), make_summary("e1", 4))
    assert len(tracer.get_experiments()) == 4
    assert os.listdir(tmp_path) == []


def test_memory_survives_idle_trimming_and_ends_with_reset(monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MAX_IDLE_CONNECTIONS", "0")
    init_engine("sqlite:///:memory:")
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('kept', 1)")
    _core._close_idle_connections()
    with get_session() as s:
        assert s.execute("SELECT count(*) FROM assets").scalar() == 1
    reset_initialization()
    db_manager.initialize_database(":memory:")
    with get_session() as s:
        assert s.execute("SELECT count(*) FROM assets").scalar() == 0


def test_migration_commands_refuse_memory():
    from promptlab.sqlite.migrations import status, upgrade

    for call in (lambda: status(":memory:"), lambda: upgrade(":memory:")):
        with pytest.raises(DatabasePathError, match="in-memory database"):
            call()


def test_sqlite_urls_name_files_everywhere(tmp_path):
    path = tmp_path / "url.db"
    db_manager.initialize_database(f"sqlite:///{path}")  # sqlite:////abs/path
    assert db_manager.database_path == str(path)
    assert db_manager.database_url == f"sqlite:///{path}"
    with get_session(f"sqlite:///{path}") as s:
        assert s.execute("SELECT count(*) FROM users").scalar() == 1
    tracer = LocalTracer({"type": "local", "db_file": f"sqlite:///{path}"})
    assert tracer.db_file == str(path)
    assert tracer.get_user_by_username("admin").username == "admin"


def test_a_relative_sqlite_url_is_relative_to_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracer = LocalTracer({"type": "local", "db_file": "sqlite:///rel.db"})
    assert tracer.db_file == str(tmp_path / "rel.db")
    assert sorted(os.listdir(tmp_path))[0] == "rel.db"


@pytest.mark.parametrize("url, expected", [
    ("postgresql://lab:s3cret@db.example/prompts", "do not open them yet"),
    ("mysql+pymysql://u:s3cret@h/d", "'mysql\\+pymysql://' URLs name a database backend "
                                    "this PromptLab is not built with")])
def test_other_backends_are_refused_by_name(tmp_path, monkeypatch, url, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabasePathError, match=expected) as info:
        db_manager.initialize_database(url)
    assert "s3cret" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_forked_child_refuses_the_parents_memory_database():
    code = (
        "import os\n"
        "from promptlab.sqlite import DatabaseError, get_session\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        "db_manager.initialize_database(':memory:')\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        with get_session() as s:\n"
        "            s.execute('SELECT count(*) FROM users').scalar()\n"
        "        os._exit(3)\n"
        "    except DatabaseError as exc:\n"
        "        os._exit(0 if 'does not cross fork' in str(exc) else 4)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
