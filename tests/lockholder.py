"""Child processes for test_file_locks.py, which imports ROWS and deleted_sidecars.

    python lockholder.py holder DB         a long-lived holder, driven over stdin
    python lockholder.py write DB EXP_ID   trace one experiment, report, exit
    python lockholder.py read DB           a fresh process: what it sees, integrity

The holder opens DB through LocalTracer, creates the assets and traces the experiment
"holder-0", so that its pooled connection holds SQLite's SHARED lock; then it prints
``READY {json}`` and answers each command line (JSON) with one line, ``OK {json}`` or
``ERROR {traceback}``:

    {"op": "call", "entry": NAME}   run ENTRY_POINTS[NAME] in this process
    {"op": "trace", "id": EXP_ID}   trace one more experiment
    {"op": "seen"}                  the experiments this process sees: {id: records}
    {"op": "quit"}                  exit 0

Replies go to the original stdout; whatever else writes to fd 1 (the command line
called in process, a library) is sent to stderr, so that it cannot break the protocol.
Writers and readers print one JSON line and exit with 0, or fail with a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from collections import Counter
from typing import Any, Callable, Dict, List

from factories import make_config, make_dataset, make_summary, make_template

from promptlab import _core, cli
from promptlab.sqlite import migrations
from promptlab.sqlite.database_manager import db_manager
from promptlab.tracer.local_tracer import LocalTracer

ROWS = 30  # results per experiment


def deleted_sidecars(pid: Any, db: "str | os.PathLike[str]") -> List[str]:
    """Descriptors of process `pid` on DB or its -wal/-shm/-journal whose file was
    deleted (readlink ends with " (deleted)")."""
    real = os.path.realpath(db)
    names = {real + s + " (deleted)" for s in ("", "-wal", "-shm", "-journal")}
    found = []
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, fd))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target in names:
            found.append(f"fd {fd} -> {target}")
    return found


def seen(tracer: LocalTracer) -> Dict[str, int]:
    """Experiment id -> number of result rows, through the public API."""
    return dict(Counter(row["experiment_id"] for row in tracer.get_experiments()))


# --- the entry points that inspect a database file, called in the holder's process ---


def _cli(*argv: str) -> Dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return {"exit": code, "stdout": out.getvalue()}


def _run(run: migrations.MigrationRun) -> Dict[str, Any]:
    return {"exit": 0, "before": run.before, "current": run.current, "count": run.count,
            "backup": run.backup}


def _previous_revision() -> str:
    return migrations.migrations()[-2].revision


ENTRY_POINTS: Dict[str, Callable[[str], Dict[str, Any]]] = {
    "status": lambda db: dict(migrations.status(db).to_json(), exit=0),
    "status-cli": lambda db: _cli("db", "status", "-d", db),
    "sql": lambda db: {"exit": 0, "stdout": migrations.sql(db)},
    "sql-cli": lambda db: _cli("db", "migrate", "-d", db, "--sql"),
    "migrate": lambda db: _run(migrations.upgrade(db)),
    "migrate-cli": lambda db: _cli("db", "migrate", "-d", db),
    "downgrade-sql": lambda db: {"exit": 0, "stdout": migrations.sql(
        db, to=_previous_revision(), downgrade=True)},
    "downgrade-sql-cli": lambda db: _cli("db", "downgrade", "-d", db, "-r",
                                         _previous_revision(), "--sql"),
    "backup-upgrade": lambda db: _run(migrations.upgrade(db, backup=True)),
    "backup-migrate-cli": lambda db: _cli("db", "migrate", "-d", db, "--backup"),
    "backup-downgrade": lambda db: _run(migrations.downgrade(db, "-1", backup=True)),
    "backup-downgrade-cli": lambda db: _cli("db", "downgrade", "-d", db, "-r", "-1",
                                            "--backup"),
    "admin-password-cli": lambda db: _cli("db", "admin-password", "-d", db),
    "init-cli": lambda db: _cli("db", "init", "-d", db),
}


# --- the processes ---------------------------------------------------------------------


def holder(db: str) -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(kind: str, payload: Any) -> None:
        protocol.write(f"{kind} {json.dumps(payload)}\n")

    tracer = LocalTracer({"type": "local", "db_file": db})
    tracer.create_dataset(make_dataset())
    tracer.create_prompttemplate(make_template())
    tracer.trace_experiment(make_config(), make_summary("holder-0", ROWS))
    reply("READY", {"pid": os.getpid()})
    for line in sys.stdin:
        command = json.loads(line)
        try:
            op = command["op"]
            if op == "quit":
                reply("OK", {})
                break
            if op == "call":
                result = ENTRY_POINTS[command["entry"]](db)
            elif op == "trace":
                tracer.trace_experiment(make_config(), make_summary(command["id"], ROWS))
                result = {}
            elif op == "seen":
                result = seen(tracer)
            else:
                raise ValueError(f"unknown command {command!r}")
        except BaseException:  # noqa: BLE001 - reported to the test, which fails
            text = traceback.format_exc()
            print(text, file=sys.stderr, flush=True)
            reply("ERROR", text)
            continue
        reply("OK", result)
    protocol.close()
    return 0


def writer(db: str, experiment_id: str) -> int:
    tracer = LocalTracer({"type": "local", "db_file": db})
    tracer.trace_experiment(make_config(), make_summary(experiment_id, ROWS))
    print(json.dumps({"seen": seen(tracer), "deleted": deleted_sidecars("self", db)}))
    return 0  # exiting closes the last idle connection: the checkpoint attempt


def reader(db: str) -> int:
    tracer = LocalTracer({"type": "local", "db_file": db})
    with db_manager.get_session(db) as session:
        integrity = [r[0] for r in session.execute("PRAGMA integrity_check")]
    print(json.dumps({"seen": seen(tracer), "integrity": integrity,
                      "deleted": deleted_sidecars("self", db)}))
    return 0


if __name__ == "__main__":
    # Test code: passwords (init-cli, admin-password-cli) get the suite's cost, 4 rounds
    # (helpers.TEST_BCRYPT_COST); the locks are what these processes are about.
    _core._set_bcrypt_rounds_for_tests(4)
    role, path, *rest = sys.argv[1:]
    sys.exit({"holder": holder, "write": writer, "read": reader}[role](path, *rest))
