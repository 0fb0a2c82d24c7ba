"""No public entry point that inspects a database file drops the locks of the process
that calls it (issue 11).

POSIX advisory locks belong to the process and the inode: close() of *any* descriptor
on a database file releases every lock the process holds on it, SQLite's included
(sqlite.org, "How To Corrupt An SQLite Database File", 2.2). A process whose SHARED
lock is gone looks absent to the others: the next one to close its last connection
checkpoints and deletes the -wal and -shm this process still uses, and what it writes
afterwards is lost.

Each test: a long-lived process holds the database through LocalTracer (it traced once,
so its pooled connection holds SHARED), calls one entry point in that same process,
then short-lived processes trace an experiment each and exit, then the holder traces
again. Afterwards its /proc/locks entries are what they were before the call, no
process has a deleted -wal/-shm open, every row of every process is there, each process
sees the others' rows, and integrity_check is ok. The studio case is the same with a
real ``promptlab studio start`` process as the holder and ``GET /health`` (signed in)
as the entry point. The children are in ``lockholder.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from conftest import HEAD, NEUTRAL_CWD
from factories import make_summary
from lockholder import ROWS, deleted_sidecars
from migtools import copy_chain, migration_text
from promptlab import _core

TESTS_DIR = Path(__file__).resolve().parent
CHILD = str(TESTS_DIR / "lockholder.py")
WRITERS = 2
PROBE = "10ccbe11ab01"  # an extra migration, for the backups' pending change
PROBE_FILE = "0099_lock_probe.sql"
PROBE_TEXT = migration_text(PROBE, HEAD, "CREATE TABLE lock_probe (id INTEGER PRIMARY KEY);",
                            "DROP TABLE lock_probe;", message="lock probe")
ADMIN_PASSWORD = "lock-test-password"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/locks"),
                                reason="reads the kernel's locks from /proc/locks (Linux)")


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    env.update(extra or {})
    return env


# --- what the kernel says ------------------------------------------------------------------


def posix_locks(pid: int, db: Path) -> List[Tuple[str, str, str, int, int]]:
    """The POSIX locks that `pid` holds, from /proc/locks: (file, type, inode, start,
    end), the file named when it is DB or one of its sidecars."""
    names = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            names[os.stat(f"{db}{suffix}").st_ino] = db.name + suffix
        except FileNotFoundError:
            pass
    out = []
    with open("/proc/locks") as handle:
        for line in handle:
            fields = line.split()[1:]
            if fields and fields[0] == "->":  # a waiter, not a lock held
                continue
            kind, _, rw, owner, dev_ino, start, end = fields[:7]
            if kind != "POSIX" or int(owner) != pid:
                continue
            inode = int(dev_ino.rsplit(":", 1)[1])
            out.append((names.get(inode, "?"), rw, dev_ino, int(start),
                        int(end) if end != "EOF" else -1))
    # As a set: one CI run (ASan build, loaded machine) once listed the same READ
    # lock twice for the holder; what this file guards against is a lock lost.
    return sorted(set(out))


# --- the children --------------------------------------------------------------------------


def _stderr_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class Holder:
    """``lockholder.py holder``: the long-lived process, driven over stdin."""

    def __init__(self, db: Path, env: Dict[str, str], stderr: Path,
                 scenario: "Scenario") -> None:
        self.db = db
        self.scenario = scenario
        self.stderr_path = stderr
        self._stderr = open(stderr, "w")
        self.proc = subprocess.Popen([sys.executable, CHILD, "holder", str(db)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, cwd=NEUTRAL_CWD, env=env)
        self.pid = self.proc.pid
        self._expect("READY")

    def _expect(self, kind: str) -> Any:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            self.scenario.fail(f"the holder exited ({self.proc.returncode}):\n"
                               f"{_stderr_of(self.stderr_path)}")
        got, _, payload = line.rstrip("\n").partition(" ")
        if got != kind:
            self.scenario.fail(f"the holder answered {got}, expected {kind}:\n"
                               f"{_stderr_of(self.stderr_path)}")
        return json.loads(payload)

    def send(self, op: str, **fields: Any) -> Any:
        self.proc.stdin.write(json.dumps(dict(fields, op=op)) + "\n")
        self.proc.stdin.flush()
        return self._expect("OK")

    def quit(self) -> None:
        self.send("quit")
        self.proc.stdin.close()
        code = self.proc.wait(60)
        assert code == 0, f"the holder exited with {code}:\n{_stderr_of(self.stderr_path)}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def expected_seen(*ids: str) -> Dict[str, int]:
    return {i: ROWS for i in ids}


# --- the scenario --------------------------------------------------------------------------


class Scenario:
    """What happens around the entry point call, whatever the holder is; the checks
    gather problems so that a failure shows every symptom at once."""

    def __init__(self, db: Path, env: Dict[str, str]) -> None:
        self.db = db
        self.env = env
        self.problems: List[str] = []

    def fail(self, what: str) -> None:
        """A child failed: the test fails with its stderr and what was seen before."""
        earlier = ["", "Seen before that:", *self.problems] if self.problems else []
        pytest.fail("\n".join([what, *earlier]), pytrace=False)

    def run_child(self, *args: str) -> Dict[str, Any]:
        """A short-lived ``lockholder.py`` process: its JSON line."""
        proc = subprocess.run([sys.executable, CHILD, *args], capture_output=True,
                              text=True, cwd=NEUTRAL_CWD, env=self.env, timeout=120)
        if proc.returncode != 0:
            self.fail(f"lockholder.py {' '.join(args)} exited with {proc.returncode}:\n"
                      f"{proc.stderr}")
        return json.loads(proc.stdout)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(what)

    def check_locks(self, before, after) -> None:
        self.check(any(f == self.db.name and rw == "READ" for f, rw, *_ in before),
                   f"before the call the holder held no SHARED (READ) lock on the database: "
                   f"{before}")
        self.check(after == before, f"the holder's locks changed across the call:\n"
                                    f"  before: {before}\n  after:  {after}")

    def writers(self) -> List[str]:
        ids = [f"writer-{i}" for i in range(WRITERS)]
        for n, experiment_id in enumerate(ids):
            out = self.run_child("write", str(self.db), experiment_id)
            want = expected_seen("holder-0", *ids[:n + 1])
            self.check(out["seen"] == want, f"{experiment_id} saw {out['seen']}, "
                                            f"expected {want}")
            self.check(not out["deleted"], f"{experiment_id} had deleted files open: "
                                           f"{out['deleted']}")
        return ids

    def holder_saw(self, seen: Dict[str, int], writer_ids: List[str]) -> None:
        want = expected_seen("holder-0", "holder-1", *writer_ids)
        self.check(seen == want, f"the holder saw {seen}, expected {want}")

    def holder_fds(self, pid: int, when: str) -> None:
        deleted = deleted_sidecars(pid, self.db)
        self.check(not deleted, f"{when}, the holder has deleted files open: {deleted}")
        mine = deleted_sidecars("self", self.db)
        self.check(not mine, f"the test process has deleted files open: {mine}")

    def fresh_reader(self, writer_ids: List[str]) -> None:
        out = self.run_child("read", str(self.db))
        want = expected_seen("holder-0", "holder-1", *writer_ids)
        self.check(out["seen"] == want, f"a fresh process saw {out['seen']}, expected {want}")
        self.check(out["integrity"] == ["ok"], f"integrity_check in a fresh process: "
                                               f"{out['integrity']}")
        self.check(not out["deleted"], f"the reader had deleted files open: {out['deleted']}")

    def after_all_exited(self, writer_ids: List[str]) -> None:
        """Every process has ended: the file alone holds every row."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            integrity = [r[0] for r in con.execute("PRAGMA integrity_check")]
            rows = dict(con.execute("SELECT experiment_id, count(*) FROM experiment_result "
                                    "GROUP BY experiment_id").fetchall())
        finally:
            con.close()
        self.check(integrity == ["ok"], f"integrity_check at the end: {integrity}")
        want = expected_seen("holder-0", "holder-1", *writer_ids)
        self.check(rows == want, f"rows at the end: {rows}, expected {want}")

    def assert_ok(self) -> None:
        assert not self.problems, "\n".join(["lost locks or rows:", *self.problems])


# --- the entry points ----------------------------------------------------------------------

# name in lockholder.ENTRY_POINTS -> whether the database needs the probe migration
# pending ("upgrade") or applied ("downgrade") so that the call really takes a backup.
ENTRY_POINTS = {
    "status": None,                 # migrations.status(path)
    "status-cli": None,             # promptlab db status -d
    "sql": None,                    # migrations.sql(path)
    "sql-cli": None,                # promptlab db migrate -d --sql
    "migrate": None,                # migrations.upgrade(path)
    "migrate-cli": None,            # promptlab db migrate -d
    "downgrade-sql": None,          # migrations.sql(path, to=REV, downgrade=True)
    "downgrade-sql-cli": None,      # promptlab db downgrade -d -r REV --sql
    "backup-upgrade": "upgrade",    # migrations.upgrade(path, backup=True)
    "backup-migrate-cli": "upgrade",  # promptlab db migrate -d --backup
    "backup-downgrade": "downgrade",  # migrations.downgrade(path, "-1", backup=True)
    "backup-downgrade-cli": "downgrade",  # promptlab db downgrade -d -r -1 --backup
    "admin-password-cli": None,     # promptlab db admin-password -d
    "init-cli": None,               # promptlab db init -d (an existing, held file)
}


def _after(text: str, marker: str, stop: str) -> str:
    """The part of `text` after `marker`, up to `stop` ("" when `marker` is missing)."""
    return text.split(marker, 1)[1].split(stop, 1)[0] if marker in text else ""


def _admin_password_works(db: Path, password: str) -> bool:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        stored = con.execute("SELECT password_hash FROM users WHERE username = 'admin'"
                             ).fetchone()[0]
    finally:
        con.close()
    return bool(password) and _core.verify_password(password, stored)


def check_backup(entry: str, result: Dict[str, Any], scenario: Scenario) -> None:
    """A backup was taken while the file was held, and holds the database as it was."""
    out = result.get("stdout", "")
    backup = result.get("backup") or _after(out, "Backed up ", " before").partition(" to ")[2]
    if not (backup and Path(backup).is_file()):
        scenario.check(False, f"{entry} took no backup: {result}")
        return
    was, now = (HEAD, PROBE) if ENTRY_POINTS[entry] == "upgrade" else (PROBE, HEAD)
    con = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        versions = con.execute("SELECT version_num FROM alembic_version").fetchall()
        rows = dict(con.execute("SELECT experiment_id, count(*) FROM experiment_result "
                                "GROUP BY experiment_id").fetchall())
    finally:
        con.close()
    scenario.check(integrity == "ok", f"the backup {backup}: integrity_check {integrity}")
    scenario.check(versions == [(was,)], f"the backup is at {versions}, expected {was}")
    scenario.check(rows == expected_seen("holder-0"),
                   f"the backup holds {rows}, expected the holder's first experiment")
    scenario.check(result.get("current", now) == now and
                   ("current" in result or f"now at revision {now}" in out),
                   f"{entry} did not move the database to {now}: {result}")


def check_result(entry: str, result: Dict[str, Any], db: Path, scenario: Scenario) -> None:
    """The call did its own job too, while the file was held."""
    out = result.get("stdout", "")
    if result["exit"] != 0:
        ok = False
    elif entry == "status":
        ok = (result["current"], result["up_to_date"], result["drift"]) == (HEAD, True, [])
    elif entry == "status-cli":
        ok = f"Current:   {HEAD}" in out and "Drift:     none" in out
    elif entry in ("sql", "sql-cli"):
        ok = f"from {HEAD} to {HEAD}" in out and "Nothing to do" in out
    elif entry == "migrate":
        ok = (result["current"], result["count"], result["backup"]) == (HEAD, 0, None)
    elif entry == "migrate-cli":
        ok = "is up to date" in out
    elif entry.startswith("downgrade-sql"):
        ok = (f"from {HEAD} to 28f160511eaa" in out and
              "INSERT INTO alembic_version (version_num) VALUES ('28f160511eaa')" in out)
    elif entry.startswith("backup-"):
        check_backup(entry, result, scenario)
        ok = True
    elif entry == "init-cli":
        ok = (f"at revision {HEAD}" in out and
              _admin_password_works(db, _after(out, "password: ", "\n").strip()))
    elif entry == "admin-password-cli":
        ok = _admin_password_works(db, _after(out, "password: ", "\n").strip())
    else:
        raise AssertionError(f"no check for {entry}")
    scenario.check(ok, f"{entry} answered {result}")


# The command-line twins of library entry points run in the full suite only (the command
# calls that library function); migrate-cli stands for them in the inner loop, and the
# commands without a twin (admin-password-cli, init-cli) stay in it too.
TWINS_IN_FULL_SUITE = {"status-cli", "sql-cli", "downgrade-sql-cli", "backup-migrate-cli",
                       "backup-downgrade-cli"}


@pytest.mark.parametrize("entry", [
    pytest.param(e, marks=pytest.mark.slow) if e in TWINS_IN_FULL_SUITE else e
    for e in ENTRY_POINTS])
def test_an_entry_point_keeps_the_callers_locks(entry: str, tmp_path: Path, at_head):
    # A database at head for the holder to open (how the file was made is not what these
    # tests are about; the studio's case below starts from nothing).
    db = at_head(tmp_path / "lab.db")
    extra_env: Dict[str, str] = {}
    probe: Optional[Path] = None
    if ENTRY_POINTS[entry] is not None:
        folder = copy_chain(tmp_path / "versions")
        extra_env["PROMPTLAB_MIGRATIONS_DIR"] = str(folder)
        probe = folder / PROBE_FILE
        if ENTRY_POINTS[entry] == "downgrade":  # the holder starts at the probe
            probe.write_text(PROBE_TEXT, encoding="utf-8")
    env = child_env(extra_env)
    scenario = Scenario(db, env)
    holder = Holder(db, env, tmp_path / "holder.stderr", scenario)
    try:
        if ENTRY_POINTS[entry] == "upgrade":  # pending for the call
            probe.write_text(PROBE_TEXT, encoding="utf-8")

        before = posix_locks(holder.pid, db)
        result = holder.send("call", entry=entry)
        after = posix_locks(holder.pid, db)
        scenario.check_locks(before, after)
        check_result(entry, result, db, scenario)
        if ENTRY_POINTS[entry] == "downgrade":  # the writers stay at the shipped head
            probe.unlink()

        writer_ids = scenario.writers()
        scenario.holder_fds(holder.pid, "after the writers exited")
        holder.send("trace", id="holder-1")
        scenario.holder_saw(holder.send("seen"), writer_ids)
        scenario.holder_fds(holder.pid, "after the holder wrote again")
        scenario.fresh_reader(writer_ids)
        holder.quit()
    finally:
        holder.kill()
    scenario.after_all_exited(writer_ids)
    scenario.assert_ok()


# --- the studio: GET /health, served by a real `promptlab studio start` ----------------------


def _http(port: int, method: str, path: str, body: Any = None,
          token: Optional[str] = None) -> Tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _experiment(experiment_id: str) -> Dict[str, Any]:
    """What the remote tracer posts for factories.make_config() and make_summary()."""
    return {
        "experiment_config": {
            "completion_model_config": {"name": "ollama/llama3.2", "type": "ollama"},
            "prompt_template": {"name": "tpl", "description": "a template",
                                "system_prompt": "You are <role>.",
                                "user_prompt": "Answer: <question>", "version": 0},
            "dataset": {"name": "qa", "description": "questions",
                        "file_path": "/data/qa.jsonl", "version": 0},
            "evaluation": [{"metric": "f1", "column_mapping": {"a": "b"}}],
        },
        "experiment_summary": make_summary(experiment_id, ROWS),
    }


def test_the_studios_health_keeps_the_studios_locks(tmp_path: Path):
    db = tmp_path / "lab.db"
    env = child_env()
    stderr_path = tmp_path / "studio.stderr"
    scenario = Scenario(db, env)
    with open(stderr_path, "w") as stderr:
        studio = subprocess.Popen(
            [sys.executable, "-m", "promptlab", "studio", "start", "-d", str(db), "-p", "0"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=NEUTRAL_CWD,
            env=child_env({"PROMPTLAB_ADMIN_PASSWORD": ADMIN_PASSWORD}))
        try:
            while True:
                line = studio.stdout.readline()
                if not line:
                    studio.wait(30)
                    scenario.fail(f"the studio exited ({studio.returncode}):\n"
                                  f"{_stderr_of(stderr_path)}")
                if "is running at " in line:
                    port = int(line.split("is running at ")[1].split()[0].rstrip("/")
                               .rsplit(":", 1)[1])
                    break

            def call(method: str, path: str, body: Any = None, token=None) -> Any:
                status, data = _http(port, method, path, body, token)
                if status != 200:
                    scenario.fail(f"{method} {path}: {status} {data}\nthe studio's log:\n"
                                  f"{_stderr_of(stderr_path)}")
                return data

            token = call("POST", "/api/login", {"username": "admin",
                                                "password": ADMIN_PASSWORD})["access_token"]
            call("POST", "/api/datasets", {"name": "qa", "description": "questions",
                                           "file_path": "/data/qa.jsonl", "version": 0}, token)
            call("POST", "/api/templates", {"name": "tpl", "description": "a template",
                                            "system_prompt": "You are <role>.",
                                            "user_prompt": "Answer: <question>",
                                            "version": 0}, token)
            call("POST", "/api/experiments", _experiment("holder-0"), token)

            before = posix_locks(studio.pid, db)
            health = call("GET", "/health", token=token)
            after = posix_locks(studio.pid, db)
            scenario.check_locks(before, after)
            assert health["status"] == "healthy", health
            assert (health["database"]["revision"], health["database"]["integrity"]) == (
                HEAD, "ok"), health

            writer_ids = scenario.writers()
            scenario.holder_fds(studio.pid, "after the writers exited")
            call("POST", "/api/experiments", _experiment("holder-1"), token)
            rows = call("GET", "/api/experiments", token=token)["experiments"]
            seen: Dict[str, int] = {}
            for row in rows:
                seen[row["experiment_id"]] = seen.get(row["experiment_id"], 0) + 1
            scenario.holder_saw(seen, writer_ids)
            scenario.holder_fds(studio.pid, "after the holder wrote again")
            scenario.fresh_reader(writer_ids)

            studio.send_signal(signal.SIGTERM)
            studio.stdout.read()
            code = studio.wait(60)
            assert code == 0, f"the studio exited with {code}:\n{_stderr_of(stderr_path)}"
        finally:
            if studio.poll() is None:
                studio.kill()
                studio.wait()
    scenario.after_all_exited(writer_ids)
    scenario.assert_ok()
