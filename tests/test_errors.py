"""Bad input: typed errors that name the file, and the user's files left as they were."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from conftest import file_digest, run_python
from helpers import write_newer_database
from promptlab.sqlite import (
    DatabaseError,
    DatabasePathError,
    InvalidDatabaseError,
    MigrationError,
    UnknownRevisionError,
    get_session,
)
from promptlab.sqlite.database_manager import db_manager


def test_error_hierarchy():
    assert issubclass(InvalidDatabaseError, DatabaseError)
    assert issubclass(DatabasePathError, DatabaseError)
    assert issubclass(UnknownRevisionError, MigrationError)
    assert issubclass(MigrationError, DatabaseError)
    assert DatabaseError.__module__ == "promptlab.sqlite"


@pytest.mark.parametrize("content", [
    b"this is a text file, not a database\n" * 100,
    b"\x00" * 4096,
    b"SQLite format 2\x00" + b"\x00" * 100,
    b"PK\x03\x04" + os.urandom(2000),
])
def test_file_that_is_not_sqlite_is_refused_and_unchanged(tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    mtime = path.stat().st_mtime_ns
    with pytest.raises(InvalidDatabaseError) as info:
        db_manager.initialize_database(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert "left unchanged" in str(info.value)
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]
    assert db_manager.is_ready is False


def test_refused_file_stays_refused_and_a_fixed_file_works(tmp_path):
    path = tmp_path / "x.db"
    path.write_bytes(b"garbage")
    for _ in range(3):
        with pytest.raises(InvalidDatabaseError):
            db_manager.initialize_database(path)
    path.unlink()
    db_manager.initialize_database(path)
    assert db_manager.is_ready


def test_directory_is_refused(tmp_path):
    with pytest.raises(DatabasePathError, match="folder"):
        db_manager.initialize_database(tmp_path)
    with pytest.raises(DatabasePathError, match="folder"):
        db_manager.initialize_database(str(tmp_path) + "/")


def test_parent_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DatabasePathError) as info:
        db_manager.initialize_database(blocker / "sub" / "x.db")
    assert "file" in str(info.value)
    assert blocker.read_text() == "x"


def test_unwritable_location_is_refused(tmp_path):
    # /proc refuses new entries even to root.
    with pytest.raises(DatabasePathError) as info:
        db_manager.initialize_database("/proc/promptlab-test/x.db")
    assert "/proc/promptlab-test" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(DatabaseError) as info:
            db_manager.initialize_database(folder / "x.db")
        assert str(folder / "x.db") in str(info.value)
    finally:
        folder.chmod(0o700)


def test_unwritable_folder_as_unprivileged_user():
    """The same check for root: drop privileges in a child process."""
    if os.geteuid() != 0:
        pytest.skip("covered by test_read_only_folder_is_refused")
    import shutil
    import tempfile

    # pytest's tmp_path lives under a folder only root can enter: use /tmp itself.
    top = tempfile.mkdtemp(prefix="promptlab-ro-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        folder = os.path.join(top, "ro")
        os.mkdir(folder, 0o555)
        target = os.path.join(folder, "x.db")
        code = (
            "import os\n"
            "from promptlab.sqlite import DatabaseError\n"
            "from promptlab.sqlite.database_manager import db_manager\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "try:\n"
            f"    db_manager.initialize_database({target!r})\n"
            "except DatabaseError as e:\n"
            "    print(type(e).__name__, e)\n"
            "else:\n"
            "    print('no error')\n"
        )
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(("DatabasePathError", "ReadOnlyDatabaseError")), result.stdout
        assert target in result.stdout
        assert os.listdir(folder) == []
    finally:
        shutil.rmtree(top)


def test_database_from_a_newer_promptlab_is_refused_untouched(tmp_path):
    path = tmp_path / "newer.db"
    write_newer_database(path)
    digest, names = file_digest(path), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnknownRevisionError) as info:
        db_manager.initialize_database(path)
    message = str(info.value)
    assert "ffffffffffff" in message and str(path) in message and "newer" in message
    assert file_digest(path) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_foreign_database_without_revision_is_refused_untouched(tmp_path):
    path = tmp_path / "other-app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    con.execute("INSERT INTO invoices (total) VALUES (9.5)")
    con.commit()
    con.close()
    digest = file_digest(path)
    with pytest.raises(MigrationError) as info:
        db_manager.initialize_database(path)
    assert str(path) in str(info.value)
    assert file_digest(path) == digest


def test_empty_sqlite_file_is_initialized(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    db_manager.initialize_database(path)
    assert db_manager.is_ready


@pytest.mark.parametrize("bad", [123, 4.5, None, object(), ["x.db"]])
def test_non_path_is_a_typed_error(bad):
    with pytest.raises(DatabasePathError, match="str, bytes or os.PathLike"):
        db_manager.initialize_database(bad)


def test_nul_byte_in_path(tmp_path):
    with pytest.raises(DatabasePathError, match="NUL") as info:
        db_manager.initialize_database(str(tmp_path / "a\x00b.db"))
    assert "%R" not in str(info.value) and "a\\x00b.db" in str(info.value)


def test_empty_path():
    with pytest.raises(DatabasePathError, match="empty"):
        db_manager.initialize_database("")


def test_path_too_long(tmp_path):
    with pytest.raises(DatabasePathError, match="too long|longer"):
        db_manager.initialize_database(str(tmp_path / ("n" * 300 + ".db")))
    with pytest.raises(DatabasePathError, match="too long"):
        db_manager.initialize_database("/" + "d/" * 3000 + "x.db")


def test_get_session_on_a_bad_file_raises_the_same_error(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"not sqlite at all")
    with pytest.raises(InvalidDatabaseError):
        get_session(path)


def test_revision_longer_than_any_of_ours_is_unknown(tmp_path):
    from conftest import HEAD

    path = tmp_path / "long.db"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE alembic_version (version_num VARCHAR(64) NOT NULL);"
                      f"INSERT INTO alembic_version VALUES ('{HEAD}{'0' * 30}');")
    con.close()
    digest = file_digest(path)
    with pytest.raises(UnknownRevisionError):
        db_manager.initialize_database(path)
    assert file_digest(path) == digest


# --- values SQLite cannot hold as given (issue 12, items 10 and 13) ----------------


def test_nan_parameter_is_refused_not_stored_as_null(db_path):
    import math

    from promptlab.sqlite import ProgrammingError, get_session
    from promptlab.sqlite.database_manager import db_manager

    db_manager.initialize_database(db_path)
    with get_session() as s:
        with pytest.raises(ProgrammingError, match="NaN"):
            s.execute("SELECT ?", (math.nan,))
        with pytest.raises(ProgrammingError, match="parameter set 2"):
            s.executemany("INSERT INTO assets (asset_name, asset_version, asset_binary) "
                          "VALUES ('a', ?, ?)", [(1, 0.5), (2, math.nan)])
        assert s.execute("SELECT count(*) FROM assets").scalar() == 0
        assert s.execute("SELECT ?", (math.inf,)).scalar() == math.inf  # a REAL


def test_nan_inside_json_is_stored_as_null(db_path):
    """JSON has no NaN: json.dumps would write a bare word that SQLite's JSON functions
    reject, and the whole evaluation would drop out of averages."""
    import math

    from promptlab.sqlite import get_session
    from promptlab.sqlite.database_manager import db_manager

    db_manager.initialize_database(db_path)
    evaluation = [{"metric": "f1", "result": math.nan}, {"metric": "em", "result": 1.0},
                  {"metric": "big", "result": -math.inf}]
    with get_session() as s:
        stored, valid, average = s.execute(
            "SELECT ?1, json_valid(?1), (SELECT avg(json_extract(value, '$.result')) "
            "FROM json_each(?1))", (evaluation,)).first()
    assert valid == 1 and average == 1.0
    assert json.loads(stored) == [{"metric": "f1", "result": None},
                                  {"metric": "em", "result": 1.0},
                                  {"metric": "big", "result": None}]
    assert math.isnan(evaluation[0]["result"])  # the caller's object is left as it was


def test_values_that_are_not_text_or_json_are_programming_errors(db_path):
    from promptlab.sqlite import ProgrammingError, get_session
    from promptlab.sqlite.database_manager import db_manager

    db_manager.initialize_database(db_path)
    cycle: list = []
    cycle.append(cycle)
    with get_session() as s:
        with pytest.raises(ProgrammingError, match="UTF-8"):
            s.execute("SELECT ?", ("bad \ud800 text",))
        with pytest.raises(ProgrammingError, match="JSON"):
            s.execute("SELECT ?", ({"when": object()},))
        with pytest.raises(ProgrammingError, match="JSON"):
            s.execute("SELECT ?", (cycle,))
        assert s.execute("SELECT ?", ("nul \0 inside",)).scalar() == "nul \0 inside"


def test_an_error_raised_by_fspath_is_not_hidden():
    from promptlab.sqlite.database_manager import db_manager

    class Broken:
        def __fspath__(self):
            raise RuntimeError("the path service is down")

    with pytest.raises(RuntimeError, match="the path service is down"):
        db_manager.initialize_database(Broken())
