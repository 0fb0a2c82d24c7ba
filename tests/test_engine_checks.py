"""The C engine's own rules, checked: it reads PROMPTLAB_* settings from os.environ
with the GIL held (never getenv() without it), and builds with assertions (the
sanitizer and debug builds) enforce the lock order of csrc/engine/lockorder.h, the
"Requires: X held" contracts and "no GIL in the engine"."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading

import pytest

from conftest import assert_healthy, run_python
from helpers import TEST_BCRYPT_COST
from promptlab import _core
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.session import reset_initialization


def test_the_extension_never_calls_getenv():
    """getenv() in code that runs without the GIL races with os.environ writes in
    other threads; the extension imports no getenv at all."""
    nm = shutil.which("nm")
    if nm is None:
        if os.environ.get("CI"):
            pytest.fail("nm (binutils) is missing")
        pytest.skip("nm (binutils) is not installed")
    undefined = subprocess.run([nm, "-D", "--undefined-only", _core.__file__],
                               capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1].split("@")[0] for line in undefined.splitlines() if line.strip()}
    assert "sqlite3_open_v2" in names  # the listing is the real one
    assert not names & {"getenv", "secure_getenv"}


def test_changes_to_os_environ_apply_at_the_next_call(tmp_path, monkeypatch):
    default = _core.migrations_dir()
    monkeypatch.setenv("PROMPTLAB_MIGRATIONS_DIR", str(tmp_path))
    assert _core.migrations_dir() == str(tmp_path)
    monkeypatch.delenv("PROMPTLAB_MIGRATIONS_DIR")
    assert _core.migrations_dir() == default


def test_admin_password_set_in_os_environ_after_import(tmp_path):
    path = tmp_path / "lab.db"
    code = TEST_BCRYPT_COST + (
        "import os\n"
        "from promptlab.sqlite.database_manager import db_manager\n"
        "os.environ['PROMPTLAB_ADMIN_PASSWORD'] = 'set-after-import'\n"
        f"db_manager.initialize_database({str(path)!r})\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    import sqlite3

    con = sqlite3.connect(path)
    (stored,) = con.execute("SELECT password_hash FROM users WHERE username='admin'").fetchone()
    con.close()
    assert _core.verify_password("set-after-import", stored)


def test_environment_writes_in_other_threads_during_initialization(tmp_path):
    """Threads rewrite os.environ (putenv underneath) while others initialize and
    migrate databases: every database ends healthy, no crash (the sanitizer builds
    run this too)."""
    stop = threading.Event()
    errors = []

    def write_environment():
        n = 0
        while not stop.is_set():
            n += 1
            os.environ["PROMPTLAB_BUSY_TIMEOUT_MS"] = str(10000 + n % 7)
            os.environ[f"PROMPTLAB_TEST_NOISE_{n % 50}"] = "x" * (n % 300)

    def initialize(i):
        try:
            for round_ in range(4):
                db_manager.initialize_database(tmp_path / f"t{i}-{round_}.db")
                _core.database_revision(str(tmp_path / f"t{i}-{round_}.db"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writers = [threading.Thread(target=write_environment) for _ in range(2)]
    workers = [threading.Thread(target=initialize, args=(i,)) for i in range(4)]
    try:
        for t in writers + workers:
            t.start()
        for t in workers:
            t.join(120)
    finally:
        stop.set()
        for t in writers:
            t.join(10)
        for key in list(os.environ):
            if key.startswith("PROMPTLAB_TEST_NOISE_") or key == "PROMPTLAB_BUSY_TIMEOUT_MS":
                del os.environ[key]
    assert errors == []
    reset_initialization()
    for i in range(4):
        for round_ in range(4):
            assert_healthy(tmp_path / f"t{i}-{round_}.db")


@pytest.mark.parametrize("rule, message", [("order", "lock order violation"),
                                           ("gil", "pl_gil_held_hook")])
def test_debug_builds_abort_when_a_lock_rule_is_broken(rule, message):
    if not _core._debug_checks:
        pytest.skip("release build: the checks are compiled out (the sanitizer builds "
                    "in .ci/run have them)")
    result = run_python(f"from promptlab import _core\n_core._lock_check_self_test({rule!r})\n")
    assert result.returncode == -signal.SIGABRT
    assert message in result.stderr


def test_release_builds_ignore_the_self_test():
    if _core._debug_checks:
        pytest.skip("a build with assertions aborts (tested above)")
    assert _core._lock_check_self_test("order") is None
    with pytest.raises(ValueError):
        _core._lock_check_self_test("nonsense")
