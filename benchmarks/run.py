"""PromptLab's benchmark runner: this package, the original PromptLab 0.1.11 and the raw
SQLite limit, measured side by side in one run on one machine.

    python -m benchmarks                     # full suite; writes benchmarks/README.md
    python -m benchmarks --quick             # every workload once, small (for CI)
    python -m benchmarks --setup-original    # create benchmarks/.venv-original
    python benchmarks/run.py ...             # the same

Every workload runs in subprocesses (benchmarks/worker.py for the Python sides,
benchmarks/build/limit for the C limit) so that every side is measured the same way.
There are no thresholds: the runner reports, it does not judge. It exits 0 when every
workload ran, 1 when one could not be measured (its cell says why), 2 on bad usage.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
VENV = os.path.join(HERE, ".venv-original")
VENV_PY = os.path.join(VENV, "bin", "python")
WORKER = os.path.join(HERE, "worker.py")
LIMIT_SRC = os.path.join(HERE, "limit.c")
LIMIT_BIN = os.path.join(BUILD, "limit")
README = os.path.join(HERE, "README.md")
ORIGINAL_REQ = "promptlab==0.1.11"
RESULT_MARK = "@@RESULT "
START_MARK = "<!-- results:start -->"
END_MARK = "<!-- results:end -->"

COLUMNS = ("ours", "original", "limit", "stdlib")
COLUMN_TITLES = {
    "ours": "ours",
    "original": "original 0.1.11",
    "limit": "C limit",
    "stdlib": "stdlib sqlite3",
}


class WorkloadError(Exception):
    """A side could not be measured (it crashed, or printed no result)."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- sizes ---------------------------------------------------------------------------

FULL = {
    "repeats": 7,  # runs per workload (fresh processes, or timed runs in one process)
    "process_repeats": 21,  # ours, for import/initialize in fresh processes (net of ~40 ms)
    "rounds": 3,  # in-process workloads: processes per side, the sides taking turns
    "fast_calls": 200_000,
    "threads": 32,
    "procs": 8,
    "proc_trials": 20,
    "trace_rows": (1_000, 10_000),
    "trace_repeats": 11,  # a ~30 ms run in a fresh process: more runs steady its median
    "read_rows": (10_000, 100_000),
    "read_experiments": 10,
    "asset_calls": 2_000,
    "filler_assets": 200,
    "writers": 4,
    "writer_transactions": 25,
    "writer_rows": 100,
    "writer_trials": 3,
    # issue 16: the big reads, summaries, lookups, start-up, big traces
    "distinct_rows": {"get_experiments_100k": 100_000, "get_experiments_1m": 1_000_000},
    "distinct_repeats": {"get_experiments_100k": 2, "get_experiments_1m": 1},
    "distinct_experiments": 200,
    "summary_rows": 1_000_000,
    "summary_repeats": 1,  # timed calls per process after the first (~seconds each)
    "filler_users": 200,
    "big_trace_rows": {"trace_100k": 100_000, "trace_300k": 300_000},
    "big_trace_repeats": {"trace_100k": 5, "trace_300k": 3},
}
QUICK = {
    "repeats": 1,
    "process_repeats": 1,
    "rounds": 1,
    "fast_calls": 10_000,
    "threads": 32,
    "procs": 8,
    "proc_trials": 1,
    "trace_rows": (100,),
    "trace_repeats": 1,
    "read_rows": (1_000,),
    "read_experiments": 10,
    "asset_calls": 200,
    "filler_assets": 20,
    "writers": 4,
    "writer_transactions": 3,
    "writer_rows": 20,
    "writer_trials": 1,
    "distinct_rows": {"get_experiments_100k": 2_000, "get_experiments_1m": 4_000},
    "distinct_repeats": {"get_experiments_100k": 1, "get_experiments_1m": 1},
    "distinct_experiments": 200,
    "summary_rows": 4_000,
    "summary_repeats": 1,
    "filler_users": 20,
    "big_trace_rows": {"trace_100k": 1_000, "trace_300k": 3_000},
    "big_trace_repeats": {"trace_100k": 1, "trace_300k": 1},
}


# --- processes -----------------------------------------------------------------------


class Proc:
    def __init__(self, rc, out, err, wall, maxrss_kib):
        self.rc, self.out, self.err, self.wall, self.maxrss_kib = rc, out, err, wall, maxrss_kib

    def result(self):
        return parse_result(self.out)


def parse_result(out: str):
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    return None


def tail(text: str, n: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


class Runner:
    def __init__(self, opts):
        self.opts = opts
        self.quick = opts.quick
        self.size = dict(QUICK if opts.quick else FULL)
        if opts.repeats:
            self.size["repeats"] = self.size["trace_repeats"] = opts.repeats
            self.size["process_repeats"] = opts.repeats * (1 if opts.quick else 3)
        if opts.trials:
            self.size["proc_trials"] = opts.trials
        self.timeout = opts.timeout
        self.pythons = {"ours": sys.executable}
        self.skipped = {}  # column -> reason
        self.errors = []
        self.rows = []
        self.info = {}
        self.counter = 0
        self.files = {}  # read_file: (side, rows, filler, shape) -> a filled file
        os.makedirs(BUILD, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="run-", dir=BUILD)
        self.logdir = os.path.join(self.tmp, "logs")
        os.makedirs(self.logdir)
        self.env = self.child_env()

    # environment -------------------------------------------------------------------

    def child_env(self):
        env = dict(os.environ)
        for key in (
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONSTARTUP",
            "PYTHONINSPECT",
            "PYTHONPROFILEIMPORTTIME",
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONMALLOC",
            "PYTHONTRACEMALLOC",
            "PYTHONDEVMODE",
            "PYTHONWARNINGS",
            "VIRTUAL_ENV",
            # ours: no password hashing at initialization, default busy timeout
            "PROMPTLAB_ADMIN_PASSWORD",
            "PROMPTLAB_BUSY_TIMEOUT_MS",
        ):
            env.pop(key, None)
        # The original logs at INFO to the console and to ~/.promptlab/logs by default:
        # keep its logging quiet (WARNING, as for ours) and its log file in the run folder.
        env["PROMPTLAB_LOG_LEVEL"] = "WARNING"
        env["PROMPTLAB_LOG_DIR"] = self.logdir
        return env

    def new_path(self, tag: str) -> str:
        self.counter += 1
        folder = os.path.join(self.tmp, f"{self.counter:04d}-{tag}")
        os.makedirs(folder)
        return os.path.join(folder, "promptlab.db")

    # running --------------------------------------------------------------------------

    def measure(self, argv, check=True) -> Proc:
        """Run one process to its end: wall time from the parent, its own peak RSS."""
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            t0 = time.perf_counter()
            p = subprocess.Popen(
                argv, cwd=self.tmp, env=self.env, stdin=subprocess.DEVNULL, stdout=out_f,
                stderr=err_f,
            )
            timer = threading.Timer(self.timeout, p.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(p.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            out_f.seek(0)
            err_f.seek(0)
            out = out_f.read().decode("utf-8", "replace")
            err = err_f.read().decode("utf-8", "replace")
        proc = Proc(p.returncode, out, err, wall, usage.ru_maxrss)
        if check and proc.rc != 0:
            raise WorkloadError(f"exit {proc.rc}: {tail(err or out)}")
        return proc

    def worker(self, side: str, task: str, **args):
        py = self.pythons["ours"] if side == "stdlib" else self.pythons[side]
        proc = self.measure([py, WORKER, side, task, json.dumps(args)])
        res = proc.result()
        if res is None:
            raise WorkloadError(f"{side} {task}: no result: {tail(proc.err or proc.out)}")
        return res

    def limit(self, *args):
        proc = self.measure([LIMIT_BIN, *map(str, args)])
        res = proc.result()
        if res is None:
            raise WorkloadError(f"limit {args[0]}: no result: {tail(proc.err or proc.out)}")
        return res

    def group(self, argvs):
        """Start processes that print READY, release them at one instant, wait for all.
        Returns (go, [(exit code, result or None, stderr tail)])."""
        procs, errs = [], []
        for argv in argvs:
            err_f = tempfile.TemporaryFile()
            errs.append(err_f)
            procs.append(
                subprocess.Popen(
                    argv, cwd=self.tmp, env=self.env, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=err_f, text=True,
                )
            )

        def kill_all():
            for p in procs:
                if p.poll() is None:
                    p.kill()

        timer = threading.Timer(self.timeout, kill_all)
        timer.start()
        try:
            early = {}
            for i, p in enumerate(procs):
                lines = []
                while True:
                    line = p.stdout.readline()
                    if not line or line.strip() == "READY":
                        break
                    lines.append(line)
                if not line:
                    early[i] = "".join(lines)
            go = time.monotonic()
            for i, p in enumerate(procs):
                if i not in early:
                    try:
                        p.stdin.write("go\n")
                        p.stdin.flush()
                    except OSError:
                        pass
            outcomes = []
            for i, p in enumerate(procs):
                out = early.get(i, "") + p.stdout.read()
                p.wait()
                errs[i].seek(0)
                err = errs[i].read().decode("utf-8", "replace")
                outcomes.append((p.returncode, parse_result(out), tail(err, 300)))
        finally:
            timer.cancel()
            kill_all()
            for p in procs:
                for stream in (p.stdin, p.stdout):
                    try:
                        stream.close()
                    except OSError:
                        pass
            for f in errs:
                f.close()
        return go, outcomes

    def argv_worker(self, side, task, **args):
        py = self.pythons["ours"] if side == "stdlib" else self.pythons[side]
        return [py, WORKER, side, task, json.dumps(args)]

    # setup ----------------------------------------------------------------------------

    def prepare(self):
        ok, why = original_available()
        if self.opts.skip_original:
            ok, why = False, "--skip-original"
        if ok:
            self.pythons["original"] = VENV_PY
        else:
            self.skipped["original"] = why
            hint = ("" if self.opts.skip_original
                    else "; run `python -m benchmarks --setup-original`")
            log(f"original PromptLab: skipped ({why}){hint}")
        try:
            compile_limit()
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = tail(getattr(exc, "stderr", "") or str(exc), 300)
            self.skipped["limit"] = f"limit.c did not compile: {detail}"
            log(f"C limit: skipped ({self.skipped['limit']})")
        self.info = self.machine_info()
        # Warm-up: compile bytecode, fill the page cache, one untimed run per side.
        for side in self.sides():
            if side == "ours" or not self.quick:
                self.measure([self.pythons[side], "-c", "import promptlab.sqlite.database_manager"],
                             check=False)

    def sides(self):
        return [s for s in ("ours", "original") if s in self.pythons]

    def machine_info(self):
        info = {
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "usable_cores": (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                             else None),
            "memory": mem_total(),
            "kernel": f"{platform.system()} {platform.release()}",
            "filesystem": fs_type(self.tmp),
            "python": platform.python_version() + f" ({platform.python_implementation()})",
            "stdlib_sqlite": sqlite3.sqlite_version,
            "commit": git_head(),
            "load_start": load_avg(),
        }
        try:
            out = self.measure(
                [sys.executable, "-c", "import promptlab, promptlab._core as c; "
                 "print(promptlab.__version__, c.sqlite_version)"]
            ).out.split()
            info["ours_version"], info["ours_sqlite"] = out[0], out[1]
        except (WorkloadError, IndexError) as exc:
            info["ours_version"] = info["ours_sqlite"] = f"unknown ({exc})"
        if "original" in self.pythons:
            out = self.measure(
                [
                    VENV_PY,
                    "-c",
                    "import importlib.metadata as m, sqlite3, platform; "
                    "print(m.version('promptlab'), m.version('sqlalchemy'), "
                    "sqlite3.sqlite_version, platform.python_version())",
                ]
            ).out.split()
            info["original_version"], info["original_sqlalchemy"] = out[0], out[1]
            info["original_sqlite"], info["original_python"] = out[2], out[3]
        if "limit" not in self.skipped:
            info["limit_sqlite"] = self.limit("version")["sqlite_version"]
        return info

    # the workloads --------------------------------------------------------------------

    def add(self, name, unit, samples, notes="", limit_note=""):
        """samples: column -> list of floats, or an Exception, or None (not applicable)."""
        row = {"name": name, "unit": unit, "samples": {}, "errors": {}, "notes": notes}
        for col in COLUMNS:
            value = samples.get(col)
            if isinstance(value, Exception):
                row["errors"][col] = str(value)
                self.errors.append(f"{name} [{col}]: {value}")
            elif value:
                row["samples"][col] = value
        self.rows.append(row)
        log(format_row_plain(row))
        return row

    def attempt(self, store, col, fn):
        """Run fn() and append its sample(s) to store[col]; record the first error."""
        if isinstance(store.get(col), Exception):
            return None
        try:
            value = fn()
        except WorkloadError as exc:
            store[col] = exc
            return None
        store.setdefault(col, [])
        if isinstance(value, list):
            store[col].extend(value)
        else:
            store[col].append(value)
        return value

    def w_process_level(self):
        """Import, fresh-file and existing-file initialization, each in fresh processes,
        net of a bare interpreter run just before."""
        imp, imp_rss, fresh, existing = {}, {}, {}, {}
        # The peak RSS is the process's own VmHWM: ru_maxrss from wait4 would not do, as
        # Linux carries it over execve from the forking parent (this runner).
        code_bare = HWM
        code_import = "import promptlab.sqlite.database_manager\n" + HWM
        code_init = (
            "import sys\nfrom promptlab.sqlite.database_manager import db_manager\n"
            "db_manager.initialize_database(sys.argv[1])"
        )
        # ours costs a few ms over a ~40 ms interpreter start: more pairs for a stable median
        counts = {"ours": self.size["process_repeats"], "original": self.size["repeats"]}
        for r in range(max(counts.values())):
            for side in self.sides():
                if r >= counts[side] or any(isinstance(s.get(side), Exception)
                                            for s in (imp, fresh, existing)):
                    continue
                py = self.pythons[side]
                try:
                    bare = self.measure([py, "-c", code_bare])
                    p = self.measure([py, "-c", code_import])
                    imp.setdefault(side, []).append(p.wall - bare.wall)
                    imp_rss.setdefault(side, []).append(vm_hwm(p.out) - vm_hwm(bare.out))
                    path = self.new_path(f"init-{side}")
                    bare = self.measure([py, "-c", "pass"])
                    p = self.measure([py, "-c", code_init, path])
                    fresh.setdefault(side, []).append(p.wall - bare.wall)
                    bare = self.measure([py, "-c", "pass"])
                    p = self.measure([py, "-c", code_init, path])
                    existing.setdefault(side, []).append(p.wall - bare.wall)
                except WorkloadError as exc:
                    for s in (imp, imp_rss, fresh, existing):
                        s[side] = exc
        self.add("import `promptlab.sqlite.database_manager`: wall time over a bare interpreter",
                 "s", imp, "fresh process; `python -c pass` subtracted")
        self.add("import: peak RSS over a bare interpreter", "bytes", imp_rss,
                 "fresh process, VmHWM of the process")
        self.add("`initialize_database`, fresh file (import + initialize)", "s", fresh,
                 "fresh process, bare interpreter subtracted")
        self.add("`initialize_database`, existing up-to-date file (import + initialize)", "s",
                 existing,
                 "fresh process, bare interpreter subtracted")

    def w_fastpath(self):
        data = {}
        rounds = self.size["rounds"]
        per = max(1, -(-self.size["repeats"] // rounds))
        for _ in range(rounds):
            for side in self.sides():
                self.attempt(
                    data, side,
                    lambda side=side: self.worker(
                        side, "fastpath", path=self.new_path(f"fast-{side}"),
                        calls=self.size["fast_calls"], repeats=per,
                    )["seconds_per_call"],
                )
        self.add("`initialize_database` fast path (already initialized), per call", "s", data,
                 f"{self.size['fast_calls']:,} calls per timed run, "
                 f"{plural(rounds, 'process')} per side")

    def w_threads(self):
        n = self.size["threads"]
        data, notes = {}, []
        for side in self.sides():
            failures = bad_files = 0
            for _ in range(self.size["repeats"]):
                path = self.new_path(f"threads-{side}")
                res = self.attempt(data, side, lambda side=side, path=path: self.worker(
                    side, "threads", path=path, threads=n))
                if res is None:
                    break
                data[side][-1] = res["seconds"]
                failures += res["failures"]
                if admin_count(path) != 1:
                    bad_files += 1
            if side in data and not isinstance(data[side], Exception):
                notes.append(f"{side}: {failures}/{n * len(data[side])} calls failed, "
                             f"{bad_files}/{len(data[side])} files without exactly one admin")
        self.add(f"{n} threads initialize one fresh file (one process)", "s", data,
                 "; ".join(notes))

    def w_procs(self):
        n, trials = self.size["procs"], self.size["proc_trials"]
        data, notes = {}, []
        for side in self.sides():
            failures = bad_files = failed_trials = 0
            samples = []
            example = ""
            for _ in range(trials):
                path = self.new_path(f"procs-{side}")
                argvs = [self.argv_worker(side, "proc_init", path=path) for _ in range(n)]
                go, outcomes = self.group(argvs)
                ends, trial_failures = [], 0
                for rc, res, err in outcomes:
                    if rc != 0 or res is None or res.get("error"):
                        trial_failures += 1
                        if not example:
                            example = (res or {}).get("error") or err or f"exit {rc}"
                    if res is not None:
                        ends.append(res["end"])
                failures += trial_failures
                admins = admin_count(path)
                if admins != 1:
                    bad_files += 1
                if trial_failures or admins != 1:
                    failed_trials += 1
                if ends:
                    samples.append(max(ends) - go)
            data[side] = samples
            note = (f"{side}: {failures}/{n * trials} processes failed, {failed_trials}/{trials} "
                    f"trials with a failure, {bad_files}/{trials} files without exactly one admin")
            if example:
                note += f" (e.g. `{one_line(example, 110)}`)"
            notes.append(note)
        self.add(f"{n} processes initialize one fresh file at one instant ({trials} trials)", "s",
                 data,
                 "time from the start signal to the last process done; " + "; ".join(notes))

    def w_trace(self):
        for rows in self.size["trace_rows"]:
            data = self.trace_runs(rows, self.size["trace_repeats"], self.sides())["seconds"]
            self.add(f"`trace_experiment`, {rows:,} result rows", "s", data,
                     "one call in a fresh process on a fresh file; "
                     "limit: one prepared INSERT, one transaction")

    def trace_runs(self, rows, repeats, sides):
        """{"seconds": {column: samples}, "peak_bytes": {...}} of one trace_experiment
        (or the same rows inserted by stdlib and the limit) per fresh process."""
        def checked(res):
            if res.get("rows") != rows:
                raise WorkloadError(f"stored {res.get('rows')} rows instead of {rows}")
            return res
        runs = [(side, lambda side=side: checked(
            self.worker(side, "trace", path=self.new_path(f"trace-{side}"), rows=rows)))
            for side in sides]
        if "limit" not in self.skipped:
            runs.append(("limit", lambda: self.limit(
                "trace", self.ours_initialized("trace-limit"), rows, "bench-trace")))
        runs.append(("stdlib", lambda: self.worker(
            "stdlib", "trace", path=self.ours_initialized("trace-stdlib"), rows=rows)))
        data = {"seconds": {}, "peak_bytes": {}}
        for i in range(repeats):
            # Each repeat starts with the next side: no side always runs right
            # after the same neighbour (whose file writes may still be settling).
            for side, run in runs[i % len(runs):] + runs[:i % len(runs)]:
                res = self.attempt(data["seconds"], side, run)
                if res is not None:
                    data["seconds"][side][-1] = res["seconds"]
                    data["peak_bytes"].setdefault(side, []).append(res["peak_bytes"])
                elif isinstance(data["seconds"].get(side), Exception):
                    data["peak_bytes"][side] = data["seconds"][side]
        return data

    def ours_initialized(self, tag):
        path = self.new_path(tag)
        self.worker("ours", "init", path=path)
        return path

    def prepared(self, side, tag, rows, filler=0, **shape):
        path = self.new_path(f"{tag}-{side}")
        shape.setdefault("experiments", self.size["read_experiments"])
        self.worker(side, "prepare_read", path=path, rows=rows, filler_assets=filler, **shape)
        return path

    def read_file(self, side, rows, filler=0, **shape):
        """A file the side initialized and filled (prepare_read, in a process of its
        own, untimed), made once per run for each side and shape and then only read."""
        key = (side, rows, filler, tuple(sorted(shape.items())))
        if key not in self.files:
            self.files[key] = self.prepared(side, "read", rows, filler, **shape)
        return self.files[key]

    def read_workload(self, task, rows, filler, keys, limit_args, check=None,
                      reference_args=None, sides=None, per=None, shape=None, stdlib=True,
                      **args):
        """Each side fills its own file once (its own initialization, then the same rows
        through stdlib sqlite3, untimed) and measures it in a few rounds of fresh
        processes, the sides taking turns so that a disturbance of the machine falls on
        all of them; the C limit and stdlib read the file ours filled. reference_args,
        when given, is a second limit run (samples under "reference", for the notes);
        limit_args None leaves the limit out. Returns {key: {column: samples}} for the
        result keys `keys` (a column lacking a key has no samples for it)."""
        shape = shape or {}
        out = {key: {} for key in keys}
        rounds = self.size["rounds"]
        per = per or max(1, -(-self.size["repeats"] // rounds))
        columns = list(self.sides() if sides is None else sides)
        if "limit" not in self.skipped and limit_args is not None:
            columns += ["limit"] + (["reference"] if reference_args is not None else [])
        columns += ["stdlib"] if stdlib else []
        for _ in range(rounds):
            for col in columns:
                if isinstance(out[keys[0]].get(col), Exception):
                    continue
                try:
                    owner = "ours" if col in ("limit", "reference", "stdlib") else col
                    path = self.read_file(owner, rows, filler, **shape)
                    if col == "limit":
                        res = self.limit(*limit_args(path, per))
                    elif col == "reference":
                        res = self.limit(*reference_args(path, per))
                    else:
                        res = self.worker(col, task, path=path, repeats=per, **args)
                    if check is not None and col != "reference":
                        check(res)
                except WorkloadError as exc:
                    for key in keys:
                        out[key][col] = exc
                    continue
                for key in keys:
                    if key in res:
                        value = res[key]
                        samples = value if isinstance(value, list) else [value]
                        out[key].setdefault(col, []).extend(samples)
        return out

    def w_get_experiments(self):
        # From a worker: the runner does not import the package it measures.
        ours_sql = self.worker("ours", "read_queries")["sql"]
        for rows in self.size["read_rows"]:
            def check(res, rows=rows):
                if res["rows"] != rows:
                    raise WorkloadError(f"returned {res['rows']} rows instead of {rows}")
            data = self.read_workload("get_experiments", rows, 0, ["seconds"],
                                      lambda path, per: ("query", path, per, *ours_sql), check,
                                      reference_args=lambda path, per: ("query", path, per)
                                      )["seconds"]
            reference = data.pop("reference", None)
            original_sql = ("" if not isinstance(reference, list) else
                            "; the original's own SELECT through the C API: "
                            + cell_of(reference))
            self.add(f"`get_experiments` over {rows:,} result rows", "s", data,
                     f"{self.size['read_experiments']} experiments; timed calls in "
                     f"{plural(self.size['rounds'], 'process')} per side, each after an untimed "
                     "warm-up call; limit: ours' two SELECTs (`local_tracer`) through the C "
                     f"API in one read transaction, every column read{original_sql}")

    def w_get_asset(self):
        self.lookups(["get_asset"])

    def small_file(self):
        """(rows, filler assets, shape) of the file the lookups and the start-up read:
        one experiment of 10 rows, the filler assets and users (one file per side)."""
        return (10, self.size["filler_assets"],
                dict(experiments=1, filler_users=self.size["filler_users"]))

    def lookups(self, names):
        """Point lookups through the tracer, one after the other in each process; the
        limit and stdlib run one SELECT of the same row (worker.LOOKUPS)."""
        calls, users = self.size["asset_calls"], self.size["filler_users"]
        rows, filler, shape = self.small_file()
        lookups = self.worker("ours", "read_queries")["lookups"]

        def limit_args(path, per):
            argv = ["lookup", path, calls, per]
            for name in names:
                args, sql = lookups[name]
                argv += [name, sql, len(args), *args]
            return argv
        data = self.read_workload("get_asset", rows, filler, names, limit_args, shape=shape,
                                  calls=calls, lookups=names)
        for name in names:
            args = ", ".join(map(repr, lookups[name][0]))
            self.add(f"`{name}({args})` latency, per call", "s", data[name],
                     f"{calls:,} calls per timed run, {filler + 2} assets, {users + 1} users; "
                     "limit and stdlib: one SELECT of the same row")

    def w_get_experiments_big(self, step):
        """Issue 16: get_experiments over many rows with distinct text in 200
        experiments, time and extra peak RSS per call."""
        rows, n_exp = self.size["distinct_rows"][step], self.size["distinct_experiments"]
        ours_sql = self.worker("ours", "read_queries")["sql"]
        # The original reads 1M rows through SQLAlchemy in minutes: not run there.
        sides = [s for s in self.sides() if s == "ours" or step != "get_experiments_1m"]

        def check(res):
            if res["rows"] != rows:
                raise WorkloadError(f"returned {res['rows']} rows instead of {rows}")
        out = self.read_workload("get_experiments", rows, 0,
                                 ["seconds", "peak_bytes", "value_bytes"],
                                 lambda path, per: ("query", path, per, *ours_sql), check,
                                 sides=sides, per=self.size["distinct_repeats"][step],
                                 shape=dict(experiments=n_exp, distinct=True))
        skipped = ("; original: not run at this size (through SQLAlchemy it takes minutes; "
                   "see the 100,000-row row)"
                   if "original" in self.pythons and "original" not in sides else "")
        values = out["value_bytes"].get("limit")
        size = (f"; the rows' values: {fmt_num(values[0] / 2**20)} MiB of text"
                if isinstance(values, list) else "")
        what = (f"`get_experiments` over {rows:,} result rows with distinct text, "
                f"{n_exp} experiments")
        self.add(f"{what}: time per call", "s", out["seconds"],
                 f"timed calls in {plural(self.size['rounds'], 'process')} per side, after the "
                 "first call; limit: ours' two SELECTs through the C API, every column read; "
                 "stdlib: the same two SELECTs, joined in Python into tuples" + skipped)
        self.add(f"{what}: extra peak RSS of a call", "bytes", out["peak_bytes"],
                 "the first call of each process: VmHWM after it minus VmRSS before it (peak "
                 "reset first); limit: reads every value and keeps none (SQLite's page cache "
                 f"only){size}" + skipped)

    def w_summaries(self):
        """The studio's experiment list (ReadModel.summaries) over the 1M-row file."""
        rows, n_exp = self.size["summary_rows"], self.size["distinct_experiments"]
        sql = self.worker("ours", "read_queries")["summary_sql"]
        shape = dict(experiments=n_exp, distinct=True)

        def check(res):
            if res["rows"] != n_exp:
                raise WorkloadError(f"returned {res['rows']} experiments instead of {n_exp}")
        cold = self.read_workload("summaries", rows, 0, ["seconds", "peak_bytes"],
                                  lambda path, per: ("query", path, per, LIMIT_SUMMARY), check,
                                  reference_args=lambda path, per: ("query", path, per, *sql),
                                  sides=["ours"], per=self.size["summary_repeats"], shape=shape,
                                  cache="cold")
        warm = self.read_workload("summaries", rows, 0, ["seconds"], None, check, sides=["ours"],
                                  shape=shape, stdlib=False, cache="warm")["seconds"]
        reference = cold["seconds"].pop("reference", None)
        cold["peak_bytes"].pop("reference", None)
        ref = ("" if not isinstance(reference, list) else
               "; the studio's two SELECTs through the C API: " + cell_of(reference))
        original = ("; original: its studio lists experiments with GET /experiments, i.e. "
                    "`get_experiments()` of every row (see those rows), not run here"
                    if "original" in self.pythons else "")
        what = (f"studio experiment list (`ReadModel.summaries`), {n_exp} experiments, "
                f"{rows:,} results")
        self.add(f"{what}, first call: time", "s", cold["seconds"],
                 "ours: GET /api/studio/experiments' function on a fresh ReadModel, over the "
                 "summaries stored when the experiments were traced; stdlib: its two SELECTs, "
                 "fetchall; "
                 f"limit: `{LIMIT_SUMMARY}`{ref}{original}")
        self.add(f"{what}, first call: extra peak RSS", "bytes", cold["peak_bytes"],
                 "VmHWM after the call minus VmRSS before it (peak reset first)")
        self.add(f"{what}, repeated call: time", "s", warm,
                 "ours: one ReadModel called again")

    def w_lookups(self):
        self.lookups(["get_latest_asset", "get_user_by_username"])

    def w_startup(self):
        """Fresh processes: a typical script, the CLI, and the import from a regular
        (wheel) install beside the editable one; each net of `python -c pass`."""
        ours_sql = self.worker("ours", "read_queries")["sql"]
        files = {}
        for side in self.sides():
            try:
                rows, filler, shape = self.small_file()
                files[side] = self.read_file(side, rows, filler, **shape)
            except WorkloadError as exc:
                files[side] = exc
        wheel_py = None
        where = self.measure([sys.executable, "-c", "import promptlab; print(promptlab.__file__)"],
                             check=False).out.strip()
        editable = os.path.realpath(where).startswith(os.path.join(ROOT, "promptlab") + os.sep)
        try:
            # ours may itself be a regular install (CI's is): no wheel venv is needed then
            wheel_py = wheel_venv(self.env) if editable else sys.executable
        except (OSError, subprocess.SubprocessError) as exc:
            wheel_error = WorkloadError(f"the wheel venv could not be made: {tail(str(exc), 300)}")
        script, script_rss, cli, imports, bare_by = {}, {}, {}, {}, {}
        counts = {"ours": self.size["process_repeats"], "original": self.size["repeats"]}

        def net(py, argv, store, col, rss=None):
            if isinstance(store.get(col), Exception):
                return
            try:
                bare = self.measure([py, "-c", HWM])
                p = self.measure([py, *argv])
            except WorkloadError as exc:
                store[col] = exc
                if rss is not None:
                    rss[col] = exc
                return
            bare_by.setdefault(py, []).append(bare.wall)
            store.setdefault(col, []).append(p.wall - bare.wall)
            if rss is not None:
                rss.setdefault(col, []).append(vm_hwm(p.out) - vm_hwm(bare.out))

        for r in range(max(counts.values())):
            for side in self.sides():
                if r >= counts[side]:
                    continue
                if isinstance(files[side], Exception):
                    script[side] = script_rss[side] = files[side]
                    continue
                net(self.pythons[side], ["-c", STARTUP_SCRIPT + HWM, files[side]], script, side,
                    script_rss)
                if side == "ours":
                    net(sys.executable, ["-c", STDLIB_SCRIPT + HWM, files[side], *ours_sql], script,
                        "stdlib", script_rss)
                    net(sys.executable, ["-m", "promptlab", "db", "status", "-d", files[side]], cli,
                        side)
                    if editable:
                        net(sys.executable, ["-c", IMPORT_CODE], imports, "editable")
                    if wheel_py is None:
                        imports["regular"] = wheel_error
                    else:
                        net(wheel_py, ["-c", IMPORT_CODE], imports, "regular")
        def bare_note(py):
            if py not in bare_by:
                return "`python -c pass`"
            return f"`python -c pass` ({cell_of(bare_by[py])})"
        self.add("start-up script: import `LocalTracer`, open an existing file, one small "
                 "`get_experiments()`; wall time over a bare interpreter", "s", script,
                 f"fresh process, {bare_note(sys.executable)} subtracted; 1 experiment of 10 "
                 "rows; stdlib: the same script with `sqlite3` (connect, the C core's PRAGMAs, "
                 "ours' two SELECTs, fetchall)")
        self.add("start-up script: peak RSS over a bare interpreter", "bytes", script_rss,
                 "VmHWM of the process")
        self.add("`python -m promptlab db status -d FILE` over a bare interpreter", "s", cli,
                 "fresh process on an up-to-date file; the original has no `db status`")
        if not editable:
            note = (f"ours is itself a regular install ({where}), so no wheel is built; "
                    f"{bare_note(sys.executable)} subtracted")
        else:
            note = (f"fresh process in {os.path.relpath(WHEEL_VENV, ROOT)} (`pip wheel "
                    f"--no-deps .`, installed there), {bare_note(wheel_py)} there subtracted; "
                    "the editable install, measured in turn with it: "
                    + (cell_of(imports["editable"]) if isinstance(imports.get("editable"), list)
                       else "error")
                    + f", {bare_note(sys.executable)} of its venv subtracted (whose `site` already "
                      "imports the editable install's finder)")
        self.add("import `promptlab.sqlite.database_manager` from a regular (wheel) install, "
                 "over a bare interpreter", "s", {"ours": imports.get("regular")}, note)

    def w_trace_big(self, step):
        rows, repeats = self.size["big_trace_rows"][step], self.size["big_trace_repeats"][step]
        data = self.trace_runs(rows, repeats, ["ours"])
        original = ("; original: not run at this size (10,000 rows take it ~1 s)"
                    if "original" in self.pythons else "")
        self.add(f"`trace_experiment`, {rows:,} result rows: time", "s", data["seconds"],
                 "one call in a fresh process on a fresh file; stdlib: `executemany` in one "
                 "transaction; limit: one prepared INSERT, one transaction" + original)
        self.add(f"`trace_experiment`, {rows:,} result rows: extra peak RSS", "bytes",
                 data["peak_bytes"], "VmHWM after the call minus VmRSS before it (peak reset "
                 "first), the summary dicts (stdlib: tuples) built before")

    def w_writers(self):
        n, k = self.size["writers"], self.size["writer_transactions"]
        rows = self.size["writer_rows"]
        total = n * k * rows
        data, notes = {}, []
        columns = list(self.sides()) + ([] if "limit" in self.skipped else ["limit"]) + ["stdlib"]
        for _ in range(self.size["writer_trials"]):
            for col in columns:
                if isinstance(data.get(col), Exception):
                    continue
                try:
                    if col in ("ours", "original"):
                        path = self.prepared(col, "writers", 0)
                        argvs = [self.argv_worker(col, "writer", path=path, transactions=k,
                                                  rows=rows, index=i)
                                 for i in range(n)]
                    else:
                        path = self.ours_initialized(f"writers-{col}")
                        if col == "limit":
                            argvs = [[LIMIT_BIN, "writer", path, str(k), str(rows), str(i)]
                                     for i in range(n)]
                        else:
                            argvs = [self.argv_worker("stdlib", "writer", path=path, transactions=k,
                                                      rows=rows, index=i) for i in range(n)]
                    go, outcomes = self.group(argvs)
                except WorkloadError as exc:
                    data[col] = exc
                    continue
                stored = committed_rows(path)
                failed = sum((res or {}).get("failed", k) for rc, res, err in outcomes)
                ends = [res["end"] for rc, res, err in outcomes if res]
                if not ends:
                    data[col] = WorkloadError(
                        "no writer finished: " + one_line(outcomes[0][2], 200))
                    continue
                wall = max(ends) - go
                data.setdefault(col, []).append(wall)
                data.setdefault(f"_{col}_tput", []).append(stored / wall)
                data.setdefault(f"_{col}_failed", []).append(failed)
                if failed:
                    example = next((((res or {}).get("errors") or [err])[0]
                                    for rc, res, err in outcomes if rc != 0), "")
                    data.setdefault(f"_{col}_example", []).append(example)
        for col in columns:
            if isinstance(data.get(col), list):
                tput = statistics.median(data[f"_{col}_tput"])
                failed = sum(data[f"_{col}_failed"])
                note = f"{col}: {tput:,.0f} rows/s"
                if failed:
                    ex = data.get(f"_{col}_example", [""])[0]
                    note += (f", {failed}/{n * k * len(data[col])} transactions failed "
                             f"(e.g. `{one_line(ex, 100)}`)")
                notes.append(note)
        self.add(f"{n} concurrent writer processes, {k} × `trace_experiment` of {rows} rows each",
                 "s", {c: v for c, v in data.items() if not c.startswith("_")},
                 f"{total:,} rows in all; time from the start signal to the last commit; "
                 "median throughput " + "; ".join(notes))

    def run(self):
        self.prepare()
        steps = [
            ("process", self.w_process_level),
            ("fastpath", self.w_fastpath),
            ("threads", self.w_threads),
            ("procs", self.w_procs),
            ("trace", self.w_trace),
            ("get_experiments", self.w_get_experiments),
            ("get_asset", self.w_get_asset),
            ("writers", self.w_writers),
            ("get_experiments_100k", lambda: self.w_get_experiments_big("get_experiments_100k")),
            ("get_experiments_1m", lambda: self.w_get_experiments_big("get_experiments_1m")),
            ("summaries", self.w_summaries),
            ("lookups", self.w_lookups),
            ("startup", self.w_startup),
            ("trace_100k", lambda: self.w_trace_big("trace_100k")),
            ("trace_300k", lambda: self.w_trace_big("trace_300k")),
        ]
        only = set(self.opts.only.split(",")) if self.opts.only else None
        for key, step in steps:
            if only and key not in only:
                continue
            log(f"-- {key}")
            step()

    def cleanup(self):
        if not self.opts.keep_files:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- helpers -------------------------------------------------------------------------

HWM = (
    "import sys\n"
    "for _l in open('/proc/self/status'):\n"
    "    if _l.startswith('VmHWM:'): sys.stdout.write('@@HWM ' + _l.split()[1] + '\\n')\n"
)


def vm_hwm(out):
    """The VmHWM (peak RSS, bytes) a process printed with HWM."""
    for line in out.splitlines():
        if line.startswith("@@HWM "):
            return int(line.split()[1]) * 1024
    raise WorkloadError("the process did not report its peak RSS (no /proc/self/status?)")



# The studio's experiment list as SQLite computes it at least (the C limit's query).
LIMIT_SUMMARY = ("SELECT experiment_id, count(*), avg(latency_ms), sum(prompt_tokens), "
                 "sum(completion_tokens), avg(prompt_tokens), avg(completion_tokens) "
                 "FROM experiment_result GROUP BY experiment_id")

# A typical script's start: the tracer on an existing file, one small read
# (argv[1] is the file); the same with stdlib sqlite3 (argv[2:] are ours' SELECTs).
STARTUP_SCRIPT = (
    "import sys\n"
    "from promptlab.tracer.local_tracer import LocalTracer\n"
    "from promptlab.types import TracerConfig\n"
    "tracer = LocalTracer(TracerConfig(type='local', db_file=sys.argv[1]))\n"
    "assert len(tracer.get_experiments()) == 10\n"
)
STDLIB_SCRIPT = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10.0)\n"
    "for pragma in ('journal_mode=WAL', 'synchronous=FULL', 'foreign_keys=ON'):\n"
    "    conn.execute('PRAGMA ' + pragma)\n"
    "assert len([conn.execute(sql).fetchall() for sql in sys.argv[2:]][-1]) == 10\n"
)

IMPORT_CODE = "import promptlab.sqlite.database_manager"
WHEEL_DIR = os.path.join(BUILD, "wheel")
WHEEL_VENV = os.path.join(BUILD, "venv-wheel")
PACKAGE_SOURCES = ("promptlab", "csrc", "migrations", "setup.py", "pyproject.toml")


def source_stamp():
    """What the package is built from: the staged blobs and the diff of its sources."""
    digest = hashlib.sha256()
    for argv in (["ls-files", "-s", "--"], ["diff", "HEAD", "--"]):
        out = subprocess.run(["git", "-C", ROOT, *argv, *PACKAGE_SOURCES], capture_output=True,
                             timeout=60)
        digest.update(out.stdout)
    return digest.hexdigest()


def wheel_venv(env):
    """The python of benchmarks/build/venv-wheel, where this package is installed from
    a wheel (a regular install, not an editable one). Built on first use and again
    when the package's sources change, else reused."""
    py = os.path.join(WHEEL_VENV, "bin", "python")
    stamp_file = os.path.join(WHEEL_VENV, "source-stamp")
    stamp = source_stamp()
    try:
        with open(stamp_file) as f:
            if f.read() == stamp and os.path.exists(py):
                return py
    except OSError:
        pass
    log(f"building a wheel into {os.path.relpath(WHEEL_DIR, ROOT)} and installing it in "
        f"{os.path.relpath(WHEEL_VENV, ROOT)}")
    shutil.rmtree(WHEEL_DIR, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w",
                        WHEEL_DIR], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        wheels = [f for f in os.listdir(WHEEL_DIR)
                  if f.startswith("promptlab-") and f.endswith(".whl")]
        if len(wheels) != 1:
            raise OSError(f"expected one promptlab wheel in {WHEEL_DIR}, found {wheels}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", WHEEL_VENV], check=True,
                       capture_output=True, text=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps",
                        os.path.join(WHEEL_DIR, wheels[0])],
                       cwd=tempfile.gettempdir(), env=env, check=True, capture_output=True,
                       text=True)
    except subprocess.CalledProcessError as exc:
        raise OSError(f"{' '.join(exc.cmd[:4])}...: {exc.stderr or exc.stdout}") from None
    with open(stamp_file, "w") as f:
        f.write(stamp)
    return py


def admin_count(path):
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute("SELECT count(*) FROM users WHERE username = 'admin'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return -1


def committed_rows(path):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT count(*) FROM experiment_result").fetchone()[0]
    finally:
        conn.close()


def one_line(text, n):
    text = " ".join(str(text).split()).replace("`", "'")
    return text if len(text) <= n else text[: n - 3] + "..."


def plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"


def load_avg():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def fs_type(path):
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def git_head():
    try:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        head = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "promptlab",
                                "csrc", "migrations", "setup.py"],
                               capture_output=True, text=True, timeout=10)
        if dirty.stdout.strip():
            head += " with uncommitted changes to the package"
        return head
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def original_available():
    if not os.path.exists(VENV_PY):
        return False, f"no virtualenv at {os.path.relpath(VENV, ROOT)}"
    out = subprocess.run(
        [VENV_PY, "-c", "import importlib.metadata as m; print(m.version('promptlab'))"],
        capture_output=True, text=True, cwd=tempfile.gettempdir(),
    )
    version = out.stdout.strip()
    if out.returncode != 0 or version != ORIGINAL_REQ.split("==")[1]:
        return False, (f"{os.path.relpath(VENV, ROOT)} has no {ORIGINAL_REQ} "
                       f"({tail(out.stderr or version, 200)})")
    return True, ""


def setup_original():
    ok, why = original_available()
    if ok:
        log(f"{VENV} already has {ORIGINAL_REQ}")
        return 0
    log(f"creating {VENV} ({why})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    subprocess.run([VENV_PY, "-m", "pip", "install", ORIGINAL_REQ], check=True,
                   cwd=tempfile.gettempdir())
    ok, why = original_available()
    if not ok:
        log(f"setup failed: {why}")
        return 1
    log(f"{VENV} is ready with {ORIGINAL_REQ}")
    return 0


def compile_limit():
    os.makedirs(BUILD, exist_ok=True)
    if os.path.exists(LIMIT_BIN) and os.path.getmtime(LIMIT_BIN) >= os.path.getmtime(LIMIT_SRC):
        return
    cc = os.environ.get("CC", "gcc")
    subprocess.run([cc, "-O2", "-o", LIMIT_BIN, LIMIT_SRC, "-lsqlite3"], check=True,
                   capture_output=True, text=True)


# --- output --------------------------------------------------------------------------


def pick_scale(unit, value):
    if unit == "bytes":
        return 1024 * 1024, "MiB"
    v = abs(value)
    if v >= 1:
        return 1, "s"
    if v >= 1e-3:
        return 1e-3, "ms"
    if v >= 1e-6:
        return 1e-6, "µs"
    return 1e-9, "ns"


def fmt_num(x):
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def stats(samples):
    return statistics.median(samples), min(samples), max(samples)


def cell_of(samples, unit="s"):
    """The cell of samples that are not a row's (a note's median (min–max))."""
    return cell({"samples": {"c": samples}, "errors": {}, "unit": unit}, "c")


def cell(row, col, skipped=()):
    if col in row["errors"]:
        return "error"
    if col in skipped:
        return "skipped"
    samples = row["samples"].get(col)
    if not samples:
        return "—"
    med, lo, hi = stats(samples)
    scale, unit = pick_scale(row["unit"], med)
    if len(samples) == 1:
        return f"{fmt_num(med / scale)} {unit}"
    return f"{fmt_num(med / scale)} {unit} ({fmt_num(lo / scale)}–{fmt_num(hi / scale)})"


def ratio(row, a, b):
    sa, sb = row["samples"].get(a), row["samples"].get(b)
    if not sa or not sb:
        return "—"
    ma, mb = statistics.median(sa), statistics.median(sb)
    if mb <= 0 or ma <= 0:
        return "n/a"
    r = ma / mb
    return f"{r:.3g}"


def format_row_plain(row):
    parts = [f"{COLUMN_TITLES[c]}: {cell(row, c)}" for c in COLUMNS if cell(row, c) != "—"]
    errs = "; ".join(f"{c} error: {e}" for c, e in row["errors"].items())
    return f"{row['name']}\n    " + " | ".join(parts) + (f"\n    {errs}" if errs else "")


def render(runner):
    info = runner.info
    lines = []
    mode = "quick (every workload once, small sizes)" if runner.quick else "full"
    lines.append(f"Measured {info.get('date')} ({mode} run, commit {info.get('commit')}).")
    lines.append("")
    lines.append(f"- Machine: {info.get('cpu')}, {info.get('cores')} cores "
                 f"({info.get('usable_cores')} usable), {info.get('memory')}, "
                 f"{info.get('kernel')}, "
                 f"database files on {info.get('filesystem')}")
    lines.append(f"- Load average (1, 5, 15 min) at the start: {info.get('load_start')}, "
                 f"at the end: {load_avg()}")
    lines.append(f"- Python {info.get('python')}; ours: promptlab {info.get('ours_version')} "
                 f"with SQLite {info.get('ours_sqlite')}")
    if "original" in runner.pythons:
        lines.append(f"- Original: promptlab {info.get('original_version')} with SQLAlchemy "
                     f"{info.get('original_sqlalchemy')}, SQLite {info.get('original_sqlite')}, "
                     f"Python {info.get('original_python')} (in `benchmarks/.venv-original`)")
    else:
        lines.append(f"- Original: skipped ({runner.skipped['original']})")
    if "limit" in runner.skipped:
        lines.append(f"- C limit: skipped ({runner.skipped['limit']})")
    else:
        lines.append(f"- C limit: SQLite {info.get('limit_sqlite')}; stdlib sqlite3: SQLite "
                     f"{info.get('stdlib_sqlite')}; both with journal_mode=WAL, synchronous=FULL, "
                     "foreign_keys=ON, as the C core")
    lines.append("")
    lines.append("Median (min–max) over the repeated runs; ratios are of medians, lower is "
                 "better for ours (time or memory).")
    lines.append("")
    head = (["Workload"] + [COLUMN_TITLES[c] for c in COLUMNS]
            + ["ours/original", "ours/limit", "Notes"])
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    for row in runner.rows:
        notes = row["notes"]
        if row["errors"]:
            notes += ("; " if notes else "") + "; ".join(
                f"**{c} error**: {one_line(e, 160)}" for c, e in row["errors"].items())
        skipped = {"original"} & set(runner.skipped)
        cells = [row["name"]] + [cell(row, c, skipped) for c in COLUMNS] + [
            ratio(row, "ours", "original"), ratio(row, "ours", "limit"), notes.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_readme(text):
    block = f"{START_MARK}\n{text}{END_MARK}"
    try:
        with open(README, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = "# PromptLab benchmarks\n\n## Results\n\n"
    if START_MARK in current and END_MARK in current:
        before = current.split(START_MARK, 1)[0]
        after = current.split(END_MARK, 1)[1]
        new = before + block + after
    else:
        new = current.rstrip("\n") + "\n\n" + block + "\n"
    with open(README, "w", encoding="utf-8") as f:
        f.write(new)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="every workload once at small size; "
                         "skips the original if its venv is absent")
    ap.add_argument("--setup-original", action="store_true",
                    help=f"create {os.path.relpath(VENV, ROOT)} with pip install {ORIGINAL_REQ}, "
                         "then exit")
    ap.add_argument("--skip-original", action="store_true", help="do not measure the original")
    ap.add_argument("--repeats", type=int, help="repeated runs per workload (default 7; quick: 1)")
    ap.add_argument("--trials", type=int,
                    help="trials of the 8-process initialization (default 20; quick: 1)")
    ap.add_argument("--only", help="comma-separated steps: process,fastpath,threads,procs,trace,"
                                   "get_experiments,get_asset,writers,get_experiments_100k,"
                                   "get_experiments_1m,summaries,lookups,startup,trace_100k,"
                                   "trace_300k")
    ap.add_argument("--readme", dest="readme", action="store_true", default=None,
                    help="write the table into benchmarks/README.md (default for a full run)")
    ap.add_argument("--no-readme", dest="readme", action="store_false",
                    help="do not touch benchmarks/README.md (default for --quick)")
    ap.add_argument("--json", help="also write the raw samples to this file")
    ap.add_argument("--keep-files", action="store_true",
                    help="keep the databases under benchmarks/build/")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds before a process is killed")
    opts = ap.parse_args(argv)

    if opts.setup_original:
        return setup_original()
    if not opts.quick and not opts.only and not opts.skip_original:
        ok, why = original_available()
        if not ok:
            log(f"the full run compares with the original PromptLab, but {why}: "
                "run `python -m benchmarks --setup-original` first (or use --quick)")
            return 2

    runner = Runner(opts)
    t0 = time.perf_counter()
    try:
        runner.run()
    finally:
        runner.cleanup()
    text = render(runner)
    print()
    print(text)
    log(f"benchmark run took {time.perf_counter() - t0:.1f} s")
    write = opts.readme if opts.readme is not None else not opts.quick
    if write:
        write_readme(text)
        log(f"results written to {os.path.relpath(README, os.getcwd())}")
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump({"info": runner.info, "quick": runner.quick, "skipped": runner.skipped,
                       "rows": runner.rows}, f, indent=1)
    if runner.errors:
        log(f"{len(runner.errors)} measurement(s) failed:")
        for e in runner.errors:
            log(f"  {one_line(e, 300)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
