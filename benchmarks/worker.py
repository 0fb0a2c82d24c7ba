"""One benchmark workload in one process: run by benchmarks/run.py, never imported by it.

    python worker.py SIDE TASK JSON_ARGS

SIDE is ``ours`` (this package, in the interpreter it is installed in), ``original``
(PromptLab 0.1.11, run with the python of benchmarks/.venv-original) or ``stdlib``
(plain ``sqlite3`` with the C core's connection settings). The same file runs under
both interpreters, so it uses the standard library and each side's public API only.
The result is printed as one line ``@@RESULT {json}``; anything else a side prints
(the original logs) is ignored by the runner.
"""

import json
import math
import os
import sqlite3
import sys
import threading
import time

RESULT_MARK = "@@RESULT "

# The rows of every workload; benchmarks/limit.c builds the very same ones.
LOREM = (
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy "
    "dog. The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the "
    "lazy dog."
)
CREATED_AT = "2026-01-01T00:00:00.000000"
PT_NAME, DS_NAME = "bench-pt", "bench-ds"
SYSTEM_PROMPT = "You are a careful assistant. Answer in one word."
USER_PROMPT = "Question: <question>"
MODEL_CONFIG = {
    "name": "ollama/llama3.2",
    "type": "ollama",
    "api_key": None,
    "api_version": None,
    "endpoint": None,
    "max_concurrent_tasks": 5,
    "model": None,
}
MODEL_JSON = json.dumps({"completion_model_config": MODEL_CONFIG, "embedding_model_config": None})
ASSET_JSON = json.dumps(
    {
        "prompt_template_name": PT_NAME,
        "prompt_template_version": 0,
        "dataset_name": DS_NAME,
        "dataset_version": 0,
    }
)
PT_BINARY = f"""
            <<system>>
                {SYSTEM_PROMPT}
            <<user>>
                {USER_PROMPT}
        """

_ASSET_COLUMNS = (
    "SELECT asset_name, asset_version, asset_description, asset_type, asset_binary, "
    "is_deployed, deployment_time, status, created_at, user_id FROM assets "
)
SELECT_ASSET = _ASSET_COLUMNS + "WHERE asset_name = ? AND asset_version = ? LIMIT 1"
SELECT_LATEST_ASSET = _ASSET_COLUMNS + "WHERE asset_name = ? ORDER BY asset_version DESC LIMIT 1"
SELECT_USER = (
    "SELECT id, username, password_hash, role, status, created_at FROM users "
    "WHERE username = ? LIMIT 1"
)
INSERT_EXPERIMENT = (
    "INSERT INTO experiments (experiment_id, model, asset, status, created_at, user_id) "
    "VALUES (?, ?, ?, 1, ?, ?)"
)
INSERT_RESULT = (
    "INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, "
    "prompt_tokens, completion_tokens, latency_ms, evaluation, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def make_rows(experiment_id, n):
    """The experiment summary the original's Experiment.run hands to trace_experiment."""
    return [
        {
            "experiment_id": experiment_id,
            "dataset_record_id": f"rec-{i:06d}",
            "completion": f"Completion {i}: {LOREM}",
            "prompt_tokens": 100 + i % 50,
            "completion_tokens": 20 + i % 30,
            "latency_ms": 100.0 + i % 400,
            "evaluation": json.dumps([{"metric": "exact_match", "result": i % 2}]),
            "created_at": CREATED_AT,
        }
        for i in range(n)
    ]


def row_tuples(experiment_id, n):
    return [
        (
            r["experiment_id"],
            r["dataset_record_id"],
            r["completion"],
            r["prompt_tokens"],
            r["completion_tokens"],
            r["latency_ms"],
            r["evaluation"],
            r["created_at"],
        )
        for r in make_rows(experiment_id, n)
    ]


def distinct_row_tuples(e, exp_id, n):
    """Rows of experiment number `e` whose record id, completion and created_at differ
    from those of every other row of the table (the text carries the experiment id),
    so that no two rows share a text value; the evaluation has a second metric whose
    value (almost always) differs; the numbers are those of make_rows."""
    return [
        (
            exp_id,
            f"{exp_id}-rec-{i:06d}",
            f"Completion {exp_id}/{i}: {LOREM}",
            100 + i % 50,
            20 + i % 30,
            100.0 + i % 400,
            json.dumps([{"metric": "exact_match", "result": i % 2},
                        {"metric": "similarity",
                         "result": round(0.5 + 0.5 * math.sin(e * 1_000_000 + i), 6)}]),
            f"2026-01-01T00:{i // 1_000_000 % 60:02d}:00.{i % 1_000_000:06d}",
        )
        for i in range(n)
    ]


def emit(**result):
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def stdlib_connect(path):
    """A stdlib connection with the C core's settings (csrc/engine/conn.c)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def admin_id(conn):
    row = conn.execute("SELECT id FROM users WHERE username = 'admin'").fetchone()
    return row[0] if row else None


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakMemory:
    """The extra peak RSS of a block: VmHWM after it minus VmRSS before it, with the
    peak reset to the current RSS first (Linux: ``5`` into /proc/self/clear_refs), so
    that what the process did before (building rows, a bigger earlier call) does not
    count. ``extra`` is in bytes."""

    def __enter__(self):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.before = _status_kib("VmRSS:")
        return self

    def __exit__(self, *exc):
        self.extra = (_status_kib("VmHWM:") - self.before) * 1024
        return False


def measure_calls(call, repeats):
    """The first call untimed, with its extra peak RSS measured, then `repeats` timed
    calls. Only a call is timed: its rows are freed after the clock stops (a
    `result = ...` rebinding would free the previous call's rows inside it)."""
    with PeakMemory() as peak:
        result = call()
    rows = len(result)
    del result
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - t0)
        rows = len(result)
        del result
    return dict(seconds=seconds, rows=rows, peak_bytes=peak.extra)


# --- the two PromptLab sides -------------------------------------------------------


class PromptLabSide:
    """Each side through its own public API: db_manager, LocalTracer, its config types."""

    def __init__(self, name):
        self.name = name
        from promptlab.sqlite.database_manager import db_manager

        self.db_manager = db_manager

    def initialize(self, path):
        self.db_manager.initialize_database(path)

    def types(self):
        """The side's config types; ours may have none (then plain objects stand in)."""
        try:
            import promptlab.types as t
        except ImportError:
            t = None
        return t

    def tracer(self, path):
        from promptlab.tracer.local_tracer import LocalTracer

        t = self.types()
        if t is not None and hasattr(t, "TracerConfig"):
            config = t.TracerConfig(type="local", db_file=path)
        else:
            config = _Obj(type="local", db_file=path)
        return LocalTracer(config)

    def experiment_config(self, name):
        t = self.types()
        if t is not None and hasattr(t, "ExperimentConfig"):
            return t.ExperimentConfig(
                name=name,
                completion_model_config=t.ModelConfig(name="ollama/llama3.2", type="ollama"),
                embedding_model_config=None,
                prompt_template=t.PromptTemplate(
                    name=PT_NAME,
                    description="benchmark prompt template",
                    system_prompt=SYSTEM_PROMPT,
                    user_prompt=USER_PROMPT,
                    version=0,
                ),
                dataset=t.Dataset(
                    name=DS_NAME, description="benchmark dataset", file_path="bench.jsonl",
                    version=0,
                ),
                evaluation=[
                    t.EvaluationConfig(
                        metric="exact_match",
                        column_mapping={"response": "$completion", "reference": "answer"},
                    )
                ],
                user="admin",
            )
        return _Obj(
            name=name,
            completion_model_config=_Obj(**MODEL_CONFIG),
            embedding_model_config=None,
            prompt_template=_Obj(
                name=PT_NAME,
                description="benchmark prompt template",
                system_prompt=SYSTEM_PROMPT,
                user_prompt=USER_PROMPT,
                version=0,
                user="admin",
            ),
            dataset=_Obj(
                name=DS_NAME,
                description="benchmark dataset",
                file_path="bench.jsonl",
                version=0,
                user="admin",
            ),
            evaluation=[
                _Obj(
                    metric="exact_match",
                    column_mapping={"response": "$completion", "reference": "answer"},
                    evaluator=None,
                )
            ],
            agent_proxy=None,
            user="admin",
        )

    def dataset(self):
        t = self.types()
        kw = dict(name=DS_NAME, description="benchmark dataset", file_path="bench.jsonl", version=0)
        if t is not None and hasattr(t, "Dataset"):
            return t.Dataset(**kw)
        return _Obj(user="admin", **kw)

    def prompt_template(self):
        t = self.types()
        kw = dict(
            name=PT_NAME,
            description="benchmark prompt template",
            system_prompt=SYSTEM_PROMPT,
            user_prompt=USER_PROMPT,
            version=0,
        )
        if t is not None and hasattr(t, "PromptTemplate"):
            return t.PromptTemplate(**kw)
        return _Obj(user="admin", **kw)


class _Obj:
    """A plain attribute bag standing in for a config type a side does not have."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def model_copy(self):
        return _Obj(**self.__dict__)

    def model_dump(self):
        return dict(self.__dict__)


# --- tasks -------------------------------------------------------------------------


def task_init(side, a):
    side.initialize(a["path"])
    emit(ok=True)


def task_fastpath(side, a):
    path, calls = a["path"], a["calls"]
    init = side.db_manager.initialize_database
    init(path)
    for _ in range(min(calls, 1000)):  # warm-up
        init(path)
    per_call = []
    for _ in range(a["repeats"]):
        t0 = time.perf_counter()
        for _ in range(calls):
            init(path)
        per_call.append((time.perf_counter() - t0) / calls)
    emit(seconds_per_call=per_call)


def task_threads(side, a):
    path, n = a["path"], a["threads"]
    barrier = threading.Barrier(n + 1)
    errors = []
    ends = []

    def run():
        barrier.wait()
        try:
            side.initialize(path)
        except BaseException as exc:  # noqa: BLE001 - every failure is counted
            errors.append(f"{type(exc).__name__}: {exc}")
        ends.append(time.perf_counter())

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    emit(seconds=max(ends) - t0, failures=len(errors), errors=errors[:3])


def task_proc_init(side, a):
    """One of the processes started at one instant on one fresh file."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.readline()
    error = None
    try:
        side.initialize(a["path"])
    except BaseException as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"
    emit(end=time.monotonic(), error=error)
    sys.exit(1 if error else 0)


def _prepare_assets(side, tracer):
    tracer.create_dataset(side.dataset())
    tracer.create_prompttemplate(side.prompt_template())


def task_trace(side, a):
    path, n = a["path"], a["rows"]
    tracer = side.tracer(path)
    _prepare_assets(side, tracer)
    exp_id = "bench-trace"
    config = side.experiment_config(exp_id)
    summary = make_rows(exp_id, n)
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        tracer.trace_experiment(config, summary)
        seconds = time.perf_counter() - t0
    with sqlite3.connect(path) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM experiment_result WHERE experiment_id = ?", (exp_id,)
        ).fetchone()[0]
    emit(seconds=seconds, rows=stored, peak_bytes=peak.extra)


def prepare_read(side, a):
    """Initialize with the side's own db_manager, then fill the file through stdlib
    sqlite3 (untimed): the assets, ``filler_users`` users and ``rows`` results spread
    over ``experiments`` (``distinct``: no two rows with the same text)."""
    path, n, n_exp = a["path"], a["rows"], a["experiments"]
    side.initialize(path)
    conn = stdlib_connect(path)
    uid = admin_id(conn)
    conn.execute("BEGIN IMMEDIATE")
    assets = [
        (DS_NAME, 0, "benchmark dataset", "dataset", json.dumps({"file_path": "bench.jsonl"})),
        (PT_NAME, 0, "benchmark prompt template", "prompt_template", PT_BINARY),
    ]
    for i in range(a.get("filler_assets", 0)):
        assets.append((f"filler-{i:04d}", i % 3, "filler", "prompt_template", PT_BINARY))
    conn.executemany(
        "INSERT INTO assets (asset_name, asset_version, asset_description, asset_type, "
        "asset_binary, is_deployed, status, created_at, user_id) "
        f"VALUES (?, ?, ?, ?, ?, 0, 1, '{CREATED_AT}', {int(uid)})",
        assets,
    )
    conn.executemany(
        "INSERT INTO users (username, password_hash, role, status, created_at) "
        f"VALUES (?, 'not-a-hash', 'user', 1, '{CREATED_AT}')",
        [(f"user-{i:04d}",) for i in range(a.get("filler_users", 0))],
    )
    per = n // n_exp if n_exp else 0
    for e in range(n_exp):
        exp_id = f"exp-{e:04d}"
        created = f"2026-01-01T{e // 3600 % 24:02d}:{e // 60 % 60:02d}:{e % 60:02d}.000000"
        conn.execute(INSERT_EXPERIMENT, (exp_id, MODEL_JSON, ASSET_JSON, created, uid))
        count = per if e < n_exp - 1 else n - per * (n_exp - 1)
        if a.get("distinct"):
            rows = distinct_row_tuples(e, exp_id, count)
        else:
            rows = row_tuples(exp_id, count)
        conn.executemany(INSERT_RESULT, rows)
    conn.execute("COMMIT")
    conn.close()
    store_summaries(path, [f"exp-{e:04d}" for e in range(n_exp)])


def store_summaries(path, experiment_ids):
    """What trace_experiment stores beside the rows it writes: the per-experiment
    aggregates of a package that keeps them (migration 0005, promptlab.store.summaries);
    the rows above went in through stdlib, so they are computed here, untimed."""
    try:
        from promptlab.sqlite import get_session
        from promptlab.store import summaries
    except ImportError:
        return  # the original, or a package without stored summaries
    with get_session(path) as session:
        summaries.refresh(session, experiment_ids)
        session.commit()


def task_prepare_read(side, a):
    prepare_read(side, a)
    emit(ok=True)


def task_get_experiments(side, a):
    if a.get("prepare"):
        prepare_read(side, a)
    tracer = side.tracer(a["path"])
    emit(**measure_calls(tracer.get_experiments, a["repeats"]))


# The point lookups: LocalTracer method -> its arguments, and the SELECT of the same
# row that the stdlib side and the C limit (limit lookup) run.
LOOKUPS = {
    "get_asset": ((PT_NAME, 0), SELECT_ASSET),
    "get_latest_asset": ((PT_NAME,), SELECT_LATEST_ASSET),
    "get_user_by_username": (("admin",), SELECT_USER),
}


def per_call(call, args, calls, repeats):
    """Seconds per call of call(*args), `calls` calls per timed run."""
    if call(*args) is None:  # warm-up
        raise RuntimeError(f"{args} not found")
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            call(*args)
        out.append((time.perf_counter() - t0) / calls)
    return out


def task_get_asset(side, a):
    """The point lookups named in a["lookups"] through the side's tracer, one after
    the other in this process: {name: seconds per call}."""
    if a.get("prepare"):
        prepare_read(side, a)
    tracer = side.tracer(a["path"])
    emit(**{name: per_call(getattr(tracer, name), LOOKUPS[name][0], a["calls"], a["repeats"])
            for name in a["lookups"]})


def task_writer(side, a):
    """One of the concurrent writers: K experiments of ROWS results each."""
    path, k, n, idx = a["path"], a["transactions"], a["rows"], a["index"]
    tracer = side.tracer(path)
    jobs = []
    for j in range(k):
        exp_id = f"writer-{idx}-{j}"
        jobs.append((side.experiment_config(exp_id), make_rows(exp_id, n)))
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.readline()
    ok = failed = 0
    errors = []
    start = time.monotonic()
    for config, summary in jobs:
        try:
            tracer.trace_experiment(config, summary)
            ok += 1
        except BaseException as exc:  # noqa: BLE001
            failed += 1
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    emit(start=start, end=time.monotonic(), ok=ok, failed=failed, rows=ok * n, errors=errors[:2])
    sys.exit(3 if failed else 0)


# --- stdlib sqlite3 on the same rows --------------------------------------------------


def stdlib_trace(a):
    path, n = a["path"], a["rows"]
    conn = stdlib_connect(path)
    uid = admin_id(conn)
    exp_id = "bench-trace"
    rows = row_tuples(exp_id, n)
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT_EXPERIMENT, (exp_id, MODEL_JSON, ASSET_JSON, CREATED_AT, uid))
        conn.executemany(INSERT_RESULT, rows)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - t0
    emit(seconds=seconds, rows=n, peak_bytes=peak.extra)


def ours_read_queries():
    """The two queries ours' get_experiments joins in C, and its output columns."""
    from promptlab.tracer import local_tracer as lt

    return lt.SELECT_EXPERIMENT_PARENTS, lt.SELECT_EXPERIMENT_RESULTS, lt.EXPERIMENT_COLUMNS


def ours_summary_queries():
    """The two queries of the studio's experiment list (ReadModel.summaries): the stored
    summaries (promptlab.store.summaries) where the package keeps them, else the
    aggregates over every result (promptlab.store.results, or the studio before it)."""
    try:
        from promptlab.store import summaries
    except ImportError:
        pass
    else:
        return summaries.SELECT_STORED_SUMMARIES, summaries.SELECT_STORED_METRICS
    try:
        from promptlab.store import results as queries
    except ImportError:
        from promptlab.studio import queries

    return queries.SELECT_SUMMARIES, queries.SELECT_METRICS


def task_read_queries(side, a):
    parents, results, _ = ours_read_queries()
    emit(sql=[parents, results], summary_sql=list(ours_summary_queries()),
         lookups={name: [list(args), sql] for name, (args, sql) in LOOKUPS.items()})


def task_summaries(side, a):
    """The studio's experiment list (GET /api/studio/experiments: ReadModel.summaries)
    on a fresh ReadModel (``cold``: its metric cache empty, as on the studio's first
    page load), or on one ReadModel again and again (``warm``: the metric averages
    come from its cache)."""
    from promptlab.studio.queries import DatasetFiles, ReadModel

    if a.get("prepare"):
        prepare_read(side, a)
    tracer = side.tracer(a["path"])
    files = DatasetFiles()
    if a["cache"] == "cold":
        emit(**measure_calls(lambda: ReadModel(tracer, files).summaries(), a["repeats"]))
    else:
        model = ReadModel(tracer, files)
        emit(**measure_calls(model.summaries, a["repeats"]))


def stdlib_summaries(a):
    """The studio's two summary queries through sqlite3, fetchall, in one read
    transaction: the SQL part of the cold studio list, without building the dicts."""
    summaries_sql, metrics_sql = ours_summary_queries()
    conn = stdlib_connect(a["path"])

    def read():
        conn.execute("BEGIN")
        rows = conn.execute(summaries_sql).fetchall()
        conn.execute(metrics_sql).fetchall()
        conn.execute("COMMIT")
        return rows

    emit(**measure_calls(read, a["repeats"]))


def stdlib_get_experiments(a):
    """Ours' two queries in one read transaction, joined in Python into tuples."""
    parents_sql, results_sql, columns = ours_read_queries()
    conn = stdlib_connect(a["path"])
    p_names = [d[0] for d in conn.execute(parents_sql).description]
    r_names = [d[0] for d in conn.execute(results_sql).description]
    take = [(0, p_names.index(c)) if c in p_names else (1, r_names.index(c)) for c in columns]

    def read():
        conn.execute("BEGIN")
        parents = {row[0]: row for row in conn.execute(parents_sql)}
        rows = []
        for child in conn.execute(results_sql):
            both = (parents[child[0]], child)
            rows.append(tuple([both[side][i] for side, i in take]))
        conn.execute("COMMIT")
        return rows

    emit(**measure_calls(read, a["repeats"]))


def stdlib_get_asset(a):
    conn = stdlib_connect(a["path"])
    execute = conn.execute
    result = {}
    for name in a["lookups"]:
        args, sql = LOOKUPS[name]
        result[name] = per_call(lambda *args, sql=sql: execute(sql, args).fetchone(), args,
                                a["calls"], a["repeats"])
    emit(**result)


def stdlib_writer(a):
    path, k, n, idx = a["path"], a["transactions"], a["rows"], a["index"]
    conn = stdlib_connect(path)
    uid = admin_id(conn)
    jobs = [(f"writer-{idx}-{j}", row_tuples(f"writer-{idx}-{j}", n)) for j in range(k)]
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.readline()
    ok = failed = 0
    errors = []
    start = time.monotonic()
    for exp_id, rows in jobs:
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(INSERT_EXPERIMENT, (exp_id, MODEL_JSON, ASSET_JSON, CREATED_AT, uid))
            conn.executemany(INSERT_RESULT, rows)
            conn.execute("COMMIT")
            ok += 1
        except sqlite3.Error as exc:
            failed += 1
            errors.append(f"{type(exc).__name__}: {exc}")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    emit(start=start, end=time.monotonic(), ok=ok, failed=failed, rows=ok * n, errors=errors[:2])
    sys.exit(3 if failed else 0)


TASKS = {
    "init": task_init,
    "fastpath": task_fastpath,
    "threads": task_threads,
    "proc_init": task_proc_init,
    "trace": task_trace,
    "prepare_read": task_prepare_read,
    "get_experiments": task_get_experiments,
    "read_queries": task_read_queries,
    "get_asset": task_get_asset,
    "summaries": task_summaries,
    "writer": task_writer,
}
STDLIB_TASKS = {
    "trace": stdlib_trace,
    "get_experiments": stdlib_get_experiments,
    "get_asset": stdlib_get_asset,
    "summaries": stdlib_summaries,
    "writer": stdlib_writer,
}


def main(argv):
    side_name, task = argv[1], argv[2]
    args = json.loads(argv[3]) if len(argv) > 3 else {}
    if side_name == "stdlib":
        STDLIB_TASKS[task](args)
    else:
        TASKS[task](PromptLabSide(side_name), args)


if __name__ == "__main__":
    # The benchmarks folder is sys.path[0]: keep it from shadowing anything.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    main(sys.argv)
