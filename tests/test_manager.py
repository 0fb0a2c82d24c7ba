"""DatabaseManager: the singleton, initialization, paths and the default database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from conftest import HEAD, assert_healthy, inspect_db, run_python
from helpers import TEST_BCRYPT_COST
from promptlab import _core
from promptlab.sqlite import get_session, init_engine, is_initialized
from promptlab.sqlite.database_manager import DatabaseManager, db_manager


def test_manager_is_a_singleton():
    assert DatabaseManager() is db_manager
    assert DatabaseManager() is DatabaseManager()
    with pytest.raises(TypeError):
        DatabaseManager("extra")


def test_nothing_is_ready_before_initialization():
    assert db_manager.is_ready is False
    assert db_manager.database_url is None
    assert db_manager.database_path is None
    assert is_initialized() is False
    with pytest.raises(RuntimeError, match="Session not initialized. Call init_engine first."):
        get_session()


def test_initialize_creates_file_and_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "c" / "lab.db"
    db_manager.initialize_database(str(path))
    assert path.is_file()
    assert db_manager.is_ready is True
    assert db_manager.database_path == str(path)
    assert db_manager.database_url == "sqlite:///" + str(path)
    assert_healthy(path)


def test_initialize_twice_does_no_database_work(db_path):
    db_manager.initialize_database(db_path)
    wal = db_path.parent / (db_path.name + "-wal")
    before = (db_path.stat().st_mtime_ns, wal.stat().st_mtime_ns, wal.stat().st_size)
    for _ in range(1000):
        db_manager.initialize_database(db_path)
    assert (db_path.stat().st_mtime_ns, wal.stat().st_mtime_ns, wal.stat().st_size) == before
    assert_healthy(db_path)


def test_reinitialization_after_reset_checks_the_file_again(db_path):
    db_manager.initialize_database(db_path)
    con = sqlite3.connect(db_path)
    con.execute("DELETE FROM users WHERE username = 'admin'")
    con.commit()
    con.close()
    db_manager.initialize_database(db_path)  # still cached: no check
    assert inspect_db(db_path)["admins"] == 0
    db_manager.reset_initialization()
    assert db_manager.is_ready is False
    db_manager.initialize_database(db_path)  # checked again: admin restored
    assert inspect_db(db_path)["admins"] == 1


def test_any_spelling_of_a_path_is_one_database(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    spellings = [
        real / "x.db",
        str(real / "x.db"),
        "real/x.db",
        "./real/../real/x.db",
        str(tmp_path / "link" / "x.db"),
        os.fsencode(str(real / "x.db")),
        str(real) + "//x.db",
    ]
    for spelling in spellings:
        db_manager.initialize_database(spelling)
    with get_session(spellings[0]) as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('shared', 1)")
    for spelling in spellings:
        with get_session(spelling) as s:
            assert s.path == str(real / "x.db")
            assert s.execute("SELECT count(*) FROM assets").scalar() == 1
    assert sorted(p.name for p in real.iterdir() if p.suffix == ".db") == ["x.db"]


def test_symlink_to_a_database_file_is_the_same_database(tmp_path):
    target = tmp_path / "target.db"
    db_manager.initialize_database(target)
    (tmp_path / "alias.db").symlink_to(target)
    with get_session(tmp_path / "alias.db") as s:
        assert s.path == str(target)


def test_second_database_is_a_real_second_database(tmp_path):
    first, second = tmp_path / "one.db", tmp_path / "two.db"
    db_manager.initialize_database(first)
    db_manager.initialize_database(second)
    assert_healthy(first)
    assert_healthy(second)
    # The first stays the default.
    assert db_manager.database_path == str(first)
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('in-one', 1)")
    with get_session(second) as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('in-two', 1)")
    with get_session(first) as s:
        assert [r.asset_name for r in s.execute("SELECT asset_name FROM assets")] == ["in-one"]
    with get_session(second) as s:
        assert [r.asset_name for r in s.execute("SELECT asset_name FROM assets")] == ["in-two"]


def test_init_engine_accepts_url_and_plain_path(tmp_path):
    init_engine("sqlite:///" + str(tmp_path / "url.db"))
    assert db_manager.database_path == str(tmp_path / "url.db")
    init_engine(tmp_path / "plain.db")
    assert_healthy(tmp_path / "plain.db")
    assert is_initialized() is True


def test_schema_after_initialization(db_path):
    db_manager.initialize_database(db_path)
    con = sqlite3.connect(db_path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    assert {"assets", "experiments", "experiment_result", "users", "alembic_version"} <= tables
    columns = {r[1] for r in con.execute("PRAGMA table_info(experiment_result)")}
    assert columns == {"id", "experiment_id", "dataset_record_id", "completion", "prompt_tokens",
                       "completion_tokens", "latency_ms", "evaluation", "created_at"}
    indexes = {r[1] for r in con.execute("PRAGMA index_list(experiment_result)")}
    assert "ix_experiment_result_experiment_id" in indexes
    assert con.execute("PRAGMA foreign_keys").fetchone()[0] in (0, 1)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    con.close()


def test_created_at_is_set_per_row_at_insert_time(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 1)")
    import time
    time.sleep(0.01)
    with get_session() as s:
        s.execute("INSERT INTO assets (asset_name, asset_version) VALUES ('a', 2)")
        stamps = [r[0] for r in s.execute("SELECT created_at FROM assets ORDER BY asset_version")]
    assert stamps[0] is not None and stamps[1] is not None
    assert stamps[0] < stamps[1]


def test_admin_has_no_well_known_password(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        row = s.execute("SELECT password_hash, role, status FROM users WHERE username='admin'").one()
    assert row.password_hash == _core.UNUSABLE_PASSWORD
    assert row.role == "admin" and row.status == 1
    for guess in ("admin", "", "password", "!"):
        assert _core.verify_password(guess, row.password_hash) is False


def test_admin_password_from_environment(tmp_path):
    path = tmp_path / "env.db"
    code = TEST_BCRYPT_COST + (
        "from promptlab.sqlite.database_manager import db_manager\n"
        f"db_manager.initialize_database({str(path)!r})\n"
    )
    result = run_python(code, env={"PROMPTLAB_ADMIN_PASSWORD": "s3cret-Pass"})
    assert result.returncode == 0, result.stderr
    con = sqlite3.connect(path)
    (stored,) = con.execute("SELECT password_hash FROM users WHERE username='admin'").fetchone()
    con.close()
    assert stored.startswith("$2b$")
    assert _core.verify_password("s3cret-Pass", stored) is True
    assert _core.verify_password("wrong", stored) is False
    # A later initialization with another password does not replace it.
    result = run_python(code, env={"PROMPTLAB_ADMIN_PASSWORD": "other"})
    assert result.returncode == 0, result.stderr
    con = sqlite3.connect(path)
    assert con.execute("SELECT password_hash FROM users").fetchone()[0] == stored
    con.close()


def test_bcrypt_hashes_from_the_original_promptlab_verify():
    # Made by passlib 1.7.4 with bcrypt 4.1.2, as the original PromptLab stored "admin".
    legacy = "$2b$12$WBIbhfTqtQQhpVKjbxOWxuL1PLZcCxmoTyHvkhqM3sGPzv9E8Z9Qu"
    assert _core.verify_password("admin", legacy) is True
    assert _core.verify_password("Admin", legacy) is False
    fresh = _core.hash_password("admin", rounds=4)
    assert fresh.startswith("$2b$04$") and fresh != _core.hash_password("admin", rounds=4)
    assert _core.verify_password("admin", fresh) is True
    assert _core.verify_password("admin", "not a hash") is False


def test_import_path_in_a_fresh_process_from_another_directory(tmp_path):
    code = (
        "from promptlab.sqlite.database_manager import db_manager, DatabaseManager\n"
        "from promptlab.sqlite import get_session\n"
        "db_manager.initialize_database('rel/dir/x.db')\n"
        "print(db_manager.database_path)\n"
    )
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "rel" / "dir" / "x.db")
    assert_healthy(tmp_path / "rel" / "dir" / "x.db")
