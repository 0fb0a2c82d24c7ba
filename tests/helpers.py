"""Helpers shared by the test files (fixtures live in conftest.py, fake model servers in
fakes.py): the command line run in this process, helper processes that say READY,
waiting on a condition, and reading experiments back with the standard library.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# Child interpreters run outside the source tree, so that `python -c` imports the
# installed package (with its compiled core), not the source folder.
NEUTRAL_CWD = tempfile.gettempdir()


def cli(*args, env: Optional[Dict[str, str]] = None,
        cwd=None) -> subprocess.CompletedProcess:
    """``promptlab ARGS`` run in this process through ``promptlab.cli.main(argv)``, as a
    fresh interpreter would run it: in ``cwd`` (NEUTRAL_CWD by default), with this
    process's PROMPTLAB_* variables replaced by ``env`` (the core reads them at each call).
    Returns what ``subprocess.run`` would: the exit status, and stdout and stderr as text.

    It shares this process's registry of databases, as any library caller does (resetting
    it would close the test's own connections, and the last close checkpoints the WAL).
    Variables other than PROMPTLAB_* (PYTHONPATH, TZ) act at an interpreter's start-up:
    with those, the command runs in a fresh interpreter (``cli_process``), as do tests
    that need a real process (signals, fork, locks held by another process)."""
    if any(not name.startswith("PROMPTLAB_") for name in env or {}):
        return cli_process(*args, env=env, cwd=cwd)
    from promptlab.cli import main

    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
    saved = dict(os.environ)
    for name in [k for k in os.environ if k.startswith("PROMPTLAB_")]:
        del os.environ[name]
    os.environ.update(env or {})
    here = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd or NEUTRAL_CWD)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage errors, --help, --version
                code = _exit_status(exc.code, err)
            except Exception:  # noqa: BLE001 - what the interpreter would print
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(here)
        for name in [k for k in os.environ if k not in saved]:
            del os.environ[name]
        os.environ.update(saved)
    return subprocess.CompletedProcess(["promptlab", *argv], code, out.getvalue(),
                                       err.getvalue())


def _exit_status(code, err: io.StringIO) -> int:
    """The exit status the interpreter gives ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)
    return 1


def cli_process(*args, env: Optional[Dict[str, str]] = None, cwd=None,
                timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m promptlab ARGS`` in a fresh interpreter (for what needs a real process);
    PROMPTLAB_* variables of this process are not passed on unless given in ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "promptlab", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or NEUTRAL_CWD,
                          env=full_env, timeout=timeout)


def wait_for(condition: Callable[[], object], timeout: float = 60, interval: float = 0.002,
             what: str = "the condition") -> object:
    """Poll ``condition`` every ``interval`` seconds until it returns something true, and
    return that; fail after ``timeout`` seconds (generous: a slow machine only waits
    longer, it does not fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


# Prepended to the code of child interpreters that are test code and hash a password
# without testing its cost: the cost conftest.py gives this process (4 rounds, not the
# product's 12, 0.2 s a hash; the hash carries its cost, so every check still runs). The
# default cost is tested in test_bcrypt_rounds.py; commands the tests run as a user would
# (``python -m promptlab``, the samples) keep it.
TEST_BCRYPT_COST = "from promptlab import _core\n_core._set_bcrypt_rounds_for_tests(4)\n"


def python_code_process(code: str, *args: str, env: Optional[Dict[str, str]] = None,
                        stdin: bool = False) -> subprocess.Popen:
    """A fresh interpreter running ``code`` (with ``args`` in sys.argv[1:]), in NEUTRAL_CWD,
    text pipes for stdout and stderr (and stdin when asked)."""
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdin=subprocess.PIPE if stdin else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=NEUTRAL_CWD, env=env)


# Prepended to the code of processes started by start_together: it says READY once
# imported and waits for one line on stdin before it goes on.
READY_THEN_WAIT = "import sys\nprint('READY', flush=True)\nsys.stdin.readline()\n"


def start_together(code: str, args_for: Callable[[int], Sequence[str]], n: int,
                   env: Optional[Dict[str, str]] = None,
                   timeout: float = 120) -> List[Tuple[int, str, str]]:
    """Start ``n`` interpreters running ``code``; each prints READY once its imports are
    done and waits; when all are ready, release them together (one line each on stdin).
    Returns (exit status, stdout after READY, stderr) for each, in order."""
    procs = [python_code_process(READY_THEN_WAIT + code, *args_for(i), env=env, stdin=True)
             for i in range(n)]
    try:
        for p in procs:
            line = p.stdout.readline()
            assert line.strip() == "READY", (line, p.stderr.read())
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            results.append((p.returncode, out, err))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def experiment_counts(con: sqlite3.Connection) -> Tuple[Dict[str, int], int]:
    """Rows stored per experiment (experiment id -> result rows) and the number of results
    whose experiment is missing, read on a standard-library connection."""
    counts = dict(con.execute(
        "SELECT e.experiment_id, count(r.id) FROM experiments e "
        "LEFT JOIN experiment_result r ON r.experiment_id = e.experiment_id "
        "GROUP BY e.experiment_id"))
    orphans = con.execute(
        "SELECT count(*) FROM experiment_result r WHERE NOT EXISTS "
        "(SELECT 1 FROM experiments e WHERE e.experiment_id = r.experiment_id)").fetchone()[0]
    return counts, orphans


NEWER_REVISION = "ffffffffffff"


def write_newer_database(path) -> None:
    """A database written by a newer PromptLab: a revision this one does not know, and a
    table with a column it does not know."""
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);"
        f"INSERT INTO alembic_version VALUES ('{NEWER_REVISION}');"
        "CREATE TABLE assets (asset_name TEXT, asset_version INTEGER, future_column TEXT);"
        "INSERT INTO assets VALUES ('a', 1, 'from the future');")
    con.close()


def fork_child(fn: Callable[[], object]) -> int:
    """Run ``fn`` in a forked child that exits 0 when it passed (1, with the error on
    stderr, when it raised); return the child's pid."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            fn()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported through the status
            os.write(2, f"child failed: {exc!r}\n".encode())
        finally:
            os._exit(code)
    return pid


def in_fork_child(fn: Callable[[], object]) -> int:
    """Run ``fn`` in a forked child (``fork_child``); return its exit status (0: passed)."""
    _, status = os.waitpid(fork_child(fn), 0)
    return os.waitstatus_to_exitcode(status)
