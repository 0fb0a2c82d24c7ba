"""The soak test: many processes on one database file for a bounded time, and after
every round a check that no acknowledged write was lost (issue 11).

Processes, all real, all on one file, all on 127.0.0.1:

- the studio, ``promptlab studio start -d FILE -p 0``, long-lived: signed-in
  ``GET /health`` (the full health check, which reads the migration status of the
  file the studio holds), the unsigned ping, experiment pages, and experiments
  posted through it (acknowledged by its 200 answer);
- a tracer, ``holder.py``, long-lived: ``LocalTracer.trace_experiment`` in a loop,
  mixed with ``migrations.status/sql/sql(downgrade)/upgrade(backup=True)`` and
  ``set_admin_password`` on the file it holds;
- short-lived writers, ``writer.py``: trace a few experiments and exit, some of them
  calling ``status``/``sql`` themselves, some killed with SIGKILL at a random moment;
- short-lived commands: ``promptlab db status [--json]``, ``db migrate --sql``,
  ``db migrate --backup``, ``db downgrade --sql -r -1``, ``db admin-password``.

A round is a random phase (everything above at once, for ``round_seconds``), then a
fixed sequence that is the shape of issue 11: writers drain; the holders call the
entry points that inspect the file they hold (status, sql, downgrade sql, signed-in
health); a short writer and ``db status`` run and exit (a process closing its last
connection checkpoints and deletes the ``-wal`` and ``-shm`` when nobody else holds a
lock); then both holders write once more. Then the check, with everyone idle:

- ``PRAGMA integrity_check`` is ``ok`` (read with the standard library's sqlite3);
- every acknowledged experiment is present with all its rows; every experiment
  present is whole (its id says how many rows it has); no result without its
  experiment;
- the holder and the studio read the same numbers of experiments and results as a
  fresh connection does;
- no live process has a deleted ``-wal``/``-shm`` (or database) of this file open
  (``/proc/PID/fd`` links ending in `` (deleted)``).

Durations bound the run; nothing asserts on time. Every wait has a timeout, every
loop a bound, and every process started here is ended here.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as python -m tests.soak: tests/helpers.py
    sys.path.insert(0, str(HERE.parent))
from helpers import NEUTRAL_CWD, experiment_counts  # noqa: E402

WRITER = HERE / "writer.py"
HOLDER = HERE / "holder.py"
PASSWORD = "soak-admin-password"
SECRET = "soak-test-secret-0123456789abcdef0123456789"
REPLY_TIMEOUT = 180.0   # one holder command, one HTTP request, one command line
MAX_WRITERS = 3         # short-lived writers alive at once (2 shared cores)
ROW_CHOICES = (1, 3, 10, 40, 150, 600, 1500)  # the larger, the likelier a kill mid-write
ID_ROWS = re.compile(r"-r(\d+)$")
ACCESS_LOG = re.compile(r' INFO promptlab\.studio: 127\.0\.0\.1 "[A-Z]+ [^"]*" \d+ ')


class SoakError(Exception):
    """A child failed or did not answer: the run stops and reports it."""


def child_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTLAB_")}
    env.update(PROMPTLAB_ADMIN_PASSWORD=PASSWORD, PROMPTLAB_SECRET_KEY=SECRET,
               # writers queue for the lock; under a sanitizer build that can be slow
               PROMPTLAB_BUSY_TIMEOUT_MS="120000", PYTHONUNBUFFERED="1")
    return env


class Child:
    """A process started by the soak, its stdout read line by line into a queue by a
    thread, its stderr kept in a file for the report."""

    def __init__(self, name: str, argv: List[str], workdir: Path, stdin: bool = False):
        self.name = name
        self.err_path = workdir / "logs" / f"{name}.stderr"
        self.err_path.parent.mkdir(exist_ok=True)
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err, text=True,
                                         cwd=NEUTRAL_CWD, env=child_env())
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.killed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, chars: int = 4000) -> str:
        """The end of its stderr, without the studio's one-line access log entries."""
        try:
            text = self.err_path.read_text(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines(keepends=True)
                 if not ACCESS_LOG.search(line)]
        return "".join(lines)[-chars:]

    def failure(self, what: str) -> SoakError:
        self.proc.poll()
        return SoakError(f"{self.name} (pid {self.pid}, exit {self.proc.returncode}): {what}\n"
                         f"--- stderr of {self.name} ---\n{self.stderr_tail()}")

    def next_line(self, timeout: float = REPLY_TIMEOUT) -> Optional[str]:
        """The next line of stdout; None at end of file."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise self.failure(f"no output for {timeout:.0f} s") from None

    def wait_for(self, prefix: str) -> str:
        seen = []
        for _ in range(200):
            line = self.next_line()
            if line is None:
                raise self.failure(f"exited before printing {prefix!r}; stdout: {seen}")
            if prefix in line:
                return line
            seen.append(line)
        raise self.failure(f"never printed {prefix!r}; stdout: {seen}")

    def stop(self) -> None:
        """Kill it if it still runs (by its own pid) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass


@dataclass
class Report:
    seconds: float = 0.0
    rounds: int = 0
    acknowledged: int = 0          # experiments
    acknowledged_rows: int = 0
    lost: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)
    command: str = ""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.problems

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def figure(self) -> str:
        return (f"acknowledged writes lost: {len(self.lost)} of {self.acknowledged} "
                f"({self.acknowledged_rows} rows) over {self.seconds:.0f} s, "
                f"{self.rounds} rounds")

    def text(self) -> str:
        lines = [self.figure(),
                 "activity: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))]
        if self.lost:
            lines.append(f"LOST ({len(self.lost)}): " + ", ".join(self.lost[:20]))
        for p in self.problems[:10]:
            lines.append("PROBLEM: " + p)
        return "\n".join(lines)


class Ledger:
    """Acknowledged experiments: id -> rows, recorded only after the writer said so."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: Dict[str, int] = {}

    def ack(self, line: str, source: str) -> None:
        word, experiment_id, rows = line.split()
        assert word == "ACK", line
        with self.lock:
            self.acked[experiment_id] = int(rows)

    def snapshot(self) -> Dict[str, int]:
        with self.lock:
            return dict(self.acked)


class Holder:
    """holder.py: one command at a time, one answer each."""

    def __init__(self, db: Path, workdir: Path):
        self.child = Child("holder", [sys.executable, str(HOLDER), str(db)], workdir, stdin=True)
        self.child.wait_for("READY")
        self.lock = threading.Lock()

    def call(self, command: str) -> str:
        with self.lock:
            try:
                self.child.proc.stdin.write(command + "\n")
                self.child.proc.stdin.flush()
            except OSError as exc:
                raise self.child.failure(f"stdin closed ({exc}) at {command!r}") from None
            answer = self.child.next_line()
        if answer is None:
            raise self.child.failure(f"exited at {command!r}")
        if not (answer.startswith("OK") or answer.startswith("ACK")):
            raise self.child.failure(f"{command!r} answered {answer!r}")
        return answer

    def quit(self) -> None:
        with self.lock:
            try:
                self.child.proc.stdin.write("quit\n")
                self.child.proc.stdin.close()
            except OSError as exc:
                raise self.child.failure(f"stdin closed ({exc}) at quit") from None
        try:
            code = self.child.proc.wait(REPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise self.child.failure("did not end after quit") from None
        if code != 0:
            raise self.child.failure("exited with an error at quit")


class Studio:
    """``promptlab studio start`` as a real process, and a signed-in HTTP client."""

    def __init__(self, db: Path, workdir: Path):
        self.child = Child("studio", [sys.executable, "-m", "promptlab", "studio", "start",
                                      "-d", str(db), "-p", "0", "--host", "127.0.0.1"], workdir)
        line = self.child.wait_for("is running at ")
        url = line.split("is running at ")[1].split()[0]
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])
        # keep draining stdout (the reader thread does; nothing more to read here)
        self.login()

    def login(self) -> None:
        status, data = self.request("POST", "/api/login",
                                    {"username": "admin", "password": PASSWORD},
                                    signed=False)
        if status != 200:
            raise self.child.failure(f"login answered {status}: {data}")
        self.token = data["access_token"]

    def request(self, method: str, path: str, body=None, signed: bool = True
                ) -> Tuple[int, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REPLY_TIMEOUT)
        try:
            headers = {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if signed and getattr(self, "token", None):
                headers["Authorization"] = f"Bearer {self.token}"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = payload[:200]
            return resp.status, parsed
        except OSError as exc:
            raise self.child.failure(f"{method} {path}: {exc}") from None
        finally:
            conn.close()

    def expect(self, method: str, path: str, body=None, signed: bool = True) -> object:
        status, data = self.request(method, path, body, signed)
        for _ in range(20):  # `adminpw` signs tokens out (issue 12, item 7): sign in again
            if not (signed and status == 401):
                break
            self.login()
            status, data = self.request(method, path, body, signed)
        if status != 200:
            raise self.child.failure(f"{method} {path} answered {status}: {str(data)[:1500]}")
        return data

    def health(self) -> Dict:
        data = self.expect("GET", "/health")
        for _ in range(20):  # the token was signed out by `adminpw` (issue 12, item 7)
            if "database" in data:
                break
            self.login()
            data = self.expect("GET", "/health")
        if data.get("status") != "healthy" or "database" not in data:
            raise self.child.failure(f"signed-in /health: {str(data)[:1500]}")
        return data["database"]

    def post_experiment(self, experiment_id: str, rows: int) -> None:
        data = self.expect("POST", "/api/experiments", experiment_payload(experiment_id, rows))
        if data != {"success": True}:
            raise self.child.failure(f"POST /api/experiments answered {data}")

    def stop(self) -> None:
        if self.child.proc.poll() is None:
            self.child.proc.send_signal(signal.SIGTERM)
        try:
            code = self.child.proc.wait(REPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise self.child.failure("did not end after SIGTERM") from None
        if code != 0:
            raise self.child.failure("exited with an error after SIGTERM")


def experiment_payload(experiment_id: str, rows: int) -> Dict:
    """What the original remote tracer posts."""
    return {
        "experiment_config": {
            "name": None,
            "completion_model_config": {"name": "ollama/llama3.2", "type": "ollama",
                                        "api_key": None, "api_version": None,
                                        "endpoint": None, "max_concurrent_tasks": 5,
                                        "model": None},
            "embedding_model_config": None,
            "prompt_template": {"name": "tpl", "description": "", "system_prompt": "s",
                                "user_prompt": "u", "version": 0, "user": "admin"},
            "agent_proxy": None,
            "dataset": {"name": "qa", "description": "", "file_path": "/data/qa.jsonl",
                        "version": 0, "user": "admin"},
            "evaluation": [{"metric": "f1", "column_mapping": {"a": "b"}, "evaluator": None}],
            "user": "admin",
        },
        "experiment_summary": [
            {"experiment_id": experiment_id, "dataset_record_id": f"rec-{i}",
             "completion": f"completion {i}", "prompt_tokens": 10 + i,
             "completion_tokens": 20 + i, "latency_ms": 1.5 * i,
             "evaluation": json.dumps([{"metric": "f1", "result": i}])}
            for i in range(rows)
        ],
    }


CLI_COMMANDS = (
    ("status", ["db", "status", "-d", "{db}"]),
    ("status --json", ["db", "status", "-d", "{db}", "--json", "--exit-code"]),
    ("migrate --sql", ["db", "migrate", "-d", "{db}", "--sql"]),
    ("migrate --backup", ["db", "migrate", "-d", "{db}", "--backup"]),
    ("downgrade --sql", ["db", "downgrade", "-d", "{db}", "-r", "-1", "--sql"]),
    ("admin-password", ["db", "admin-password", "-d", "{db}"]),
)


class Soak:
    def __init__(self, seconds: float, workdir: Path, seed: int, round_seconds: float,
                 log=print):
        self.seconds = seconds
        self.workdir = workdir
        self.db = workdir / "soak.db"
        self.rng = random.Random(seed)
        self.round_seconds = round_seconds
        self.log = log
        self.report = Report()
        self.ledger = Ledger()
        self.children: List[Child] = []
        self.writers: List[Child] = []
        self.serial = itertools.count(1)  # next() is atomic: names from several threads
        self.holder: Optional[Holder] = None
        self.studio: Optional[Studio] = None

    # --- processes ------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        return f"{prefix}{next(self.serial)}"

    def cli(self, label: str, args: List[str]) -> None:
        name = self._name("cli")
        child = Child(name, [sys.executable, "-m", "promptlab",
                             *[a.format(db=self.db) for a in args]], self.workdir)
        self.children.append(child)
        try:
            code = child.proc.wait(REPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise child.failure(f"promptlab {label} did not end") from None
        if code != 0:
            raise child.failure(f"promptlab {label} failed")
        self.report.count(f"cli {label}")

    def start_writer(self, experiments: int, calls: str = "") -> Child:
        name = self._name("w")
        rows = ",".join(str(self.rng.choice(ROW_CHOICES)) for _ in range(experiments))
        child = Child(name, [sys.executable, str(WRITER), str(self.db), name, rows, calls],
                      self.workdir)
        self.children.append(child)
        self.writers.append(child)
        self.report.count("writers")
        return child

    def reap(self, block: bool = False) -> None:
        """Collect the acknowledgements of writers that ended; a writer that failed
        (not killed by us) stops the run."""
        for child in list(self.writers):
            if child.proc.poll() is None and not block:
                continue
            try:
                child.proc.wait(REPLY_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise child.failure("did not end") from None
            self._drain(child)
            self.writers.remove(child)
            if child.killed:
                if child.proc.returncode not in (-signal.SIGKILL, 0):
                    raise child.failure("ended with an error before it was killed")
            elif child.proc.returncode != 0:
                raise child.failure("failed")

    def _drain(self, child: Child) -> None:
        while True:
            line = child.next_line()
            if line is None:
                return
            if line.startswith("ACK "):
                self.ledger.ack(line, child.name)

    def kill_a_writer(self) -> None:
        alive = [w for w in self.writers if w.proc.poll() is None]
        if not alive:
            return
        victim = self.rng.choice(alive)
        victim.killed = True
        os.kill(victim.pid, signal.SIGKILL)
        self.report.count("writers killed")

    # --- the holders' loops ---------------------------------------------------------

    def holder_loop(self, stop: threading.Event, errors: List[BaseException]) -> None:
        ops = ["trace"] * 6 + ["status", "sql", "sqldown", "backup", "adminpw"]
        try:
            for _ in range(100000):
                if stop.is_set():
                    return
                op = self.rng.choice(ops)
                if op == "trace":
                    experiment_id = f"{self._name('h')}-r{self.rng.choice(ROW_CHOICES)}"
                    rows = int(ID_ROWS.search(experiment_id).group(1))
                    self.ledger.ack(self.holder.call(f"trace {experiment_id} {rows}"), "holder")
                else:
                    self.holder.call(op)
                self.report.count(f"holder {op}")
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()

    def studio_loop(self, stop: threading.Event, errors: List[BaseException]) -> None:
        ops = ["post"] * 3 + ["health"] * 3 + ["ping", "page"]
        try:
            for _ in range(100000):
                if stop.is_set():
                    return
                op = self.rng.choice(ops)
                if op == "post":
                    rows = self.rng.choice(ROW_CHOICES)
                    experiment_id = f"{self._name('s')}-r{rows}"
                    self.studio.post_experiment(experiment_id, rows)
                    self.ledger.ack(f"ACK {experiment_id} {rows}", "studio")
                elif op == "health":
                    self.studio.health()
                elif op == "ping":
                    self.studio.expect("GET", "/health", signed=False)
                else:
                    self.studio.expect("GET", "/api/studio/experiments")
                self.report.count(f"studio {op}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            stop.set()

    # --- a round --------------------------------------------------------------------

    def random_phase(self, until: float) -> None:
        stop = threading.Event()
        errors: List[BaseException] = []
        threads = [threading.Thread(target=self.holder_loop, args=(stop, errors), daemon=True),
                   threading.Thread(target=self.studio_loop, args=(stop, errors), daemon=True)]
        for t in threads:
            t.start()
        try:
            for _ in range(100000):
                if stop.is_set() or time.monotonic() >= until:
                    break
                self.reap()
                r = self.rng.random()
                alive = sum(1 for w in self.writers if w.proc.poll() is None)
                if r < 0.45 and alive < MAX_WRITERS:
                    calls = self.rng.choice(["", "", "status", "sql", "status,sql"])
                    self.start_writer(self.rng.randint(1, 4), calls)
                elif r < 0.65:
                    label, args = self.rng.choice(CLI_COMMANDS)
                    self.cli(label, args)
                elif r < 0.85:
                    self.kill_a_writer()
                else:
                    time.sleep(0.05)  # pacing only
        finally:
            stop.set()
            for t in threads:
                t.join(REPLY_TIMEOUT + 10)
        if errors:
            raise errors[0]
        self.reap(block=True)

    def issue_11_sequence(self) -> None:
        """The holders inspect the file they hold, other processes close their last
        connection, then the holders write (issue 11's reproduction)."""
        for op in ("status", "sql", "sqldown"):
            self.holder.call(op)
        self.studio.health()
        writer = self.start_writer(1)
        self.reap(block=True)
        assert writer not in self.writers
        self.cli("status", ["db", "status", "-d", "{db}"])
        rows = self.rng.choice(ROW_CHOICES)
        self.ledger.ack(self.holder.call(f"trace {self._name('h')}-r{rows} {rows}"), "holder")
        rows = self.rng.choice(ROW_CHOICES)
        experiment_id = f"{self._name('s')}-r{rows}"
        self.studio.post_experiment(experiment_id, rows)
        self.ledger.ack(f"ACK {experiment_id} {rows}", "studio")
        self.report.count("issue-11 sequences")

    # --- the checks -----------------------------------------------------------------

    def deleted_files_open(self) -> List[str]:
        """Every live process that has this database, or its -wal or -shm, open
        though the file was deleted."""
        names = {str(self.db) + suffix + " (deleted)" for suffix in ("", "-wal", "-shm", "-journal")}
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target in names:
                    who = {c.pid: c.name for c in self.children}.get(int(pid), "another process")
                    found.append(f"pid {pid} ({who}) fd {fd} -> {target}")
        return found

    def check(self, holders_alive: bool = True) -> None:
        acked = self.ledger.snapshot()
        con = sqlite3.connect(str(self.db), timeout=REPLY_TIMEOUT)
        try:
            integrity = [r[0] for r in con.execute("PRAGMA integrity_check")]
            counts, orphans = experiment_counts(con)
            totals = con.execute("SELECT (SELECT count(*) FROM experiments), "
                                 "(SELECT count(*) FROM experiment_result)").fetchone()
        finally:
            con.close()
        problems = []
        if integrity != ["ok"]:
            problems.append(f"integrity_check: {integrity[:10]}")
        if orphans:
            problems.append(f"{orphans} results without their experiment")
        lost = sorted(e for e, n in acked.items() if counts.get(e) != n)
        for e in lost[:10]:
            problems.append(f"acknowledged {e} ({acked[e]} rows) has {counts.get(e)} rows")
        torn = [e for e, n in counts.items()
                if ID_ROWS.search(e) and n != int(ID_ROWS.search(e).group(1))]
        if torn:
            problems.append(f"experiments not whole: {torn[:10]}")
        if holders_alive:
            seen = self.holder.call("seen").split()[1:]
            if [int(x) for x in seen] != list(totals):
                problems.append(f"the holder reads {seen[0]} experiments and {seen[1]} "
                                f"results, a fresh connection {totals[0]} and {totals[1]}")
            rows = self.studio.health().get("rows", {})
            if (rows.get("experiments"), rows.get("experiment_result")) != tuple(totals):
                problems.append(f"the studio's health counts {rows}, a fresh connection "
                                f"{totals[0]} experiments and {totals[1]} results")
            problems += [f"deleted file open: {d}" for d in self.deleted_files_open()]
        self.report.lost = lost
        self.report.acknowledged = len(acked)
        self.report.acknowledged_rows = sum(acked.values())
        self.report.problems += problems

    # --- the run --------------------------------------------------------------------

    def run(self) -> Report:
        start = time.monotonic()
        deadline = start + self.seconds
        try:
            self.cli("init", ["db", "init", "-d", "{db}"])
            self.studio = Studio(self.db, self.workdir)
            self.children.append(self.studio.child)
            self.holder = Holder(self.db, self.workdir)
            self.children.append(self.holder.child)
            for _ in range(100000):
                now = time.monotonic()
                if now >= deadline:
                    break
                self.random_phase(min(deadline, now + self.round_seconds))
                self.issue_11_sequence()
                self.check()
                self.report.rounds += 1
                self.report.seconds = time.monotonic() - start
                self.log(f"round {self.report.rounds}: {self.report.figure()}")
                if not self.report.ok:
                    break
            self.holder.quit()
            self.studio.stop()
            self.check(holders_alive=False)
        except Exception as exc:  # noqa: BLE001 - reported, then the data is checked
            self.report.problems.append(str(exc) if isinstance(exc, SoakError)
                                        else traceback.format_exc())
            # What the failure did to the data, before anything else ends: the rows
            # acknowledged so far, the file's integrity, deleted files still open.
            try:
                self.check(holders_alive=False)
                self.report.problems += [f"deleted file open: {d}"
                                         for d in self.deleted_files_open()]
            except Exception as exc2:  # noqa: BLE001 - a damaged file may not even open
                self.report.problems.append(f"the check after the failure failed: {exc2!r}")
        finally:
            for child in self.children:
                child.stop()
            self.report.seconds = time.monotonic() - start
        return self.report


def run_soak(seconds: float, workdir: Optional[Path] = None, seed: Optional[int] = None,
             round_seconds: float = 8.0, log=print) -> Report:
    """Run the soak for about ``seconds`` (plus the last round's drain and checks)."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="promptlab-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"soak: {seconds:.0f} s, seed {seed}, in {workdir}")
    report = Soak(seconds, workdir, seed, round_seconds, log).run()
    report.command = f"seed {seed}"
    return report
