"""Faults: a full disk, a read-only file system, files deleted, replaced,
truncated or corrupted under PromptLab. Each is a typed DatabaseError naming the
file, and data committed before stays intact; the user's file is never repaired."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import pytest

from conftest import file_digest
from helpers import python_code_process
from promptlab import _core
from promptlab.sqlite import (
    DatabaseError,
    DiskFullError,
    InvalidDatabaseError,
    ReadOnlyDatabaseError,
    get_session,
)
from promptlab.sqlite.database_manager import db_manager

ROW = "INSERT INTO assets (asset_name, asset_version, asset_binary) VALUES (?, ?, ?)"


def committed_rows(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT count(*) FROM assets").fetchone()[0]
    finally:
        con.close()


@contextlib.contextmanager
def small_filesystem(size="400k"):
    """A tmpfs of `size`, mounted for the test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tempfile.mkdtemp(prefix="promptlab-fs-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where],
                      capture_output=True).returncode != 0:
        os.rmdir(where)
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        db_manager.reset_initialization()
        subprocess.run(["umount", "-l", where], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def test_database_size_limit_is_a_disk_full_error(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.executemany(ROW, [("kept", i, "x" * 100) for i in range(10)])
    s = get_session()
    pages = s.execute("PRAGMA page_count").scalar()
    s.execute(f"PRAGMA max_page_count = {pages + 5}")
    with pytest.raises(DiskFullError) as info:
        s.executemany(ROW, [("big", i, "y" * 4000) for i in range(100)])
    assert str(db_path) in str(info.value) and "full" in str(info.value)
    s.rollback()
    s.execute("PRAGMA max_page_count = 1073741823")
    s.close()
    assert committed_rows(db_path) == 10
    with get_session() as s:  # and the database keeps working
        s.execute(ROW, ("after", 1, "z"))
    assert committed_rows(db_path) == 11


def test_real_full_disk(tmp_path):
    with small_filesystem("400k") as fs:
        path = os.path.join(fs, "lab.db")
        db_manager.initialize_database(path)
        with get_session() as s:
            s.executemany(ROW, [("kept", i, "x" * 100) for i in range(20)])
        with pytest.raises(DiskFullError) as info:
            for i in range(1000):
                with get_session() as s:
                    s.execute(ROW, ("fill", i, "y" * 20000))
        assert path in str(info.value)
        assert committed_rows(path) >= 20
        con = sqlite3.connect(path)
        assert con.execute("SELECT count(*) FROM assets WHERE asset_name = 'kept'").fetchone()[0] == 20
        con.close()


def test_database_made_read_only_under_a_running_process():
    """Permissions taken away while a process has the database open: connections
    already open keep their access (the OS checks at open), new ones are
    read-only, and a write through them is a ReadOnlyDatabaseError."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user in a child")
    top = tempfile.mkdtemp(prefix="promptlab-ro-")
    try:
        os.chmod(top, 0o777)
        path = os.path.join(top, "lab.db")
        code = f"""
import os, sqlite3
from promptlab.sqlite import ReadOnlyDatabaseError, get_session
from promptlab.sqlite.database_manager import db_manager
os.setgid(65534); os.setuid(65534)
db_manager.initialize_database({path!r})
with get_session() as s:
    s.execute({ROW!r}, ("kept", 1, "x"))
os.chmod({path!r}, 0o444)
db_manager.reset_initialization()         # new connections from here on
db_manager.initialize_database({path!r})  # an up-to-date database opens read-only
try:
    with get_session() as s:
        s.execute({ROW!r}, ("lost", 2, "y"))
except ReadOnlyDatabaseError as e:
    print("ReadOnlyDatabaseError", e)
"""
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                cwd=tempfile.gettempdir(), timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ReadOnlyDatabaseError " + path), result.stdout
        os.chmod(path, 0o644)
        assert committed_rows(path) == 1
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_file_deleted_while_open(db_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.execute(ROW, ("a", 1, "x"))
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(db_path) + suffix)
    with pytest.raises(DatabaseError, match="deleted") as info:
        get_session().execute("SELECT count(*) FROM assets")
    assert info.value.path == str(db_path)


def test_file_replaced_while_open(db_path, tmp_path):
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.execute(ROW, ("original", 1, "x"))
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.commit()
    con.close()
    os.replace(other, db_path)
    digest = file_digest(db_path)
    with pytest.raises(DatabaseError, match="replaced"):
        get_session().execute("SELECT count(*) FROM assets")
    assert file_digest(db_path) == digest


def _database_with_rows(path, n=2000):
    db_manager.initialize_database(path)
    with get_session(path) as s:
        s.executemany(ROW, [(f"asset-{i}", i, "payload " * 50) for i in range(n)])
    db_manager.reset_initialization()  # closes pooled connections: WAL checkpointed away
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path) + suffix)


def test_truncated_database_is_refused_untouched(db_path):
    _database_with_rows(db_path)
    size = db_path.stat().st_size
    with open(db_path, "r+b") as f:
        f.truncate(size // 2)
    digest = file_digest(db_path)
    with pytest.raises(InvalidDatabaseError, match="truncated") as info:
        db_manager.initialize_database(db_path)
    assert str(db_path) in str(info.value)
    assert file_digest(db_path) == digest
    assert not os.path.exists(str(db_path) + "-wal")


def test_file_shorter_than_a_header_is_refused(db_path):
    db_path.write_bytes(b"SQLite format 3\x00" + b"\x10\x00")
    with pytest.raises(InvalidDatabaseError, match="truncated"):
        db_manager.initialize_database(db_path)


def test_corrupted_database_is_refused_never_repaired(db_path):
    _database_with_rows(db_path)
    size = db_path.stat().st_size
    with open(db_path, "r+b") as f:  # scribble over pages in the middle
        f.seek(size // 2)
        f.write(os.urandom(8192))
    digest = file_digest(db_path)
    with pytest.raises(InvalidDatabaseError) as info:
        db_manager.initialize_database(db_path)
        with get_session() as s:
            s.execute("SELECT count(*), sum(length(asset_binary)) FROM assets").all()
            s.execute("PRAGMA integrity_check").all()
            raise AssertionError("the corruption was not noticed")
    assert str(db_path) in str(info.value)
    assert _digest_without_sidecars(db_path) == digest


def _digest_without_sidecars(path):
    """The file's digest once PromptLab let go of it and the (empty) -wal/-shm that
    opening it left are removed."""
    db_manager.reset_initialization()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path) + suffix)
    return file_digest(path)


def test_damaged_database_at_head_in_wal_mode_is_never_written(db_path):
    """An up-to-date WAL database is not checked at initialization (that would cost a
    pass over the file in every process), so its first write in a process checks it:
    a damaged one is refused and left as it was (issue 12, item 9)."""
    db_manager.initialize_database(db_path)
    with get_session() as s:
        s.executemany(ROW, [(f"asset-{i}", i, "payload " * 50) for i in range(2000)])
    db_manager.reset_initialization()  # closes the pool: WAL checkpointed into the file
    assert not os.path.exists(str(db_path) + "-wal")
    size = db_path.stat().st_size
    with open(db_path, "r+b") as f:  # scribble over pages in the middle
        f.seek(size // 2)
        f.write(os.urandom(8192))
    digest = file_digest(db_path)
    db_manager.initialize_database(db_path)  # at head, WAL: no write, no check
    with pytest.raises(InvalidDatabaseError, match="damaged") as info:
        with get_session() as s:
            s.execute(ROW, ("new", 1, "x"))
    assert str(db_path) in str(info.value)
    assert _digest_without_sidecars(db_path) == digest


def test_a_healthy_database_is_checked_once_per_process(db_path):
    """The check runs before the first write only; later writes do not repeat it."""
    db_manager.initialize_database(db_path)
    db_manager.reset_initialization()
    db_manager.initialize_database(db_path)
    for i in range(3):
        with get_session() as s:
            s.execute(ROW, (f"a{i}", i, "x"))
    assert committed_rows(db_path) == 3


@contextlib.contextmanager
def read_only_filesystem():
    with small_filesystem("1m") as where:
        if subprocess.run(["mount", "-o", "remount,ro", where],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot remount a tmpfs read-only here")
        yield where


def test_read_only_file_system_is_a_read_only_error():
    """Issue 12, item 16: a new database (or its folder) on a read-only file system
    is ReadOnlyDatabaseError, not DatabasePathError."""
    with read_only_filesystem() as where:
        for path in (os.path.join(where, "new.db"), os.path.join(where, "sub", "new.db")):
            with pytest.raises(ReadOnlyDatabaseError, match="(?i)read-only file system") as info:
                db_manager.initialize_database(path)
            assert path in str(info.value)


# A process that grows and shrinks a WAL-mode file in cycles; each close is the last one,
# so it checkpoints (page 1 first, the file extended or cut after) and deletes the -wal.
GROW_AND_SHRINK = """
import os, sqlite3, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
deadline, cycles = time.monotonic() + seconds, 0
while time.monotonic() < deadline:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")  # short checkpoints: more of them fit in the race
    con.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
    if cycles % 50 == 49:
        con.execute("DELETE FROM blobs")
        con.commit()
        con.execute("VACUUM")
    else:
        con.execute("INSERT INTO blobs VALUES (?)", (os.urandom(4000),))
        con.commit()
    con.close()
    cycles += 1
print(cycles)
"""


@pytest.mark.slow
def test_file_checkpointed_by_another_process_is_never_taken_for_truncated(tmp_path):
    # Another process's checkpoint writes the new header before it extends (or cuts) the
    # file; the check must not catch the header and the size of two different moments.
    path = tmp_path / "busy.db"
    sqlite3.connect(path).close()
    writer = python_code_process(GROW_AND_SHRINK, path, 2)
    checks, refusals = 0, []
    try:
        while writer.poll() is None:
            try:
                _core.database_schema(str(path))
            except InvalidDatabaseError as e:
                refusals.append(str(e))
            except DatabaseError:
                pass  # busy or locked while the writer holds the file: not the point here
            checks += 1
        out, err = writer.communicate()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err
    assert int(out) > 10 and checks > 100, (out, checks)
    assert refusals == []
    assert committed_blobs_ok(path)


def committed_blobs_ok(path) -> bool:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
