"""The long-lived tracer of the soak test (run as a script by tests/soak/runner.py).

    python holder.py DB

Holds DB through one ``LocalTracer`` for its whole life and obeys one command per
line on stdin, answering one line on stdout:

    trace ID ROWS  trace_experiment, then ``ACK ID ROWS`` (an acknowledged write)
    status         promptlab.sqlite.migrations.status(DB)          -> ``OK ...``
    sql            promptlab.sqlite.migrations.sql(DB)
    sqldown        promptlab.sqlite.migrations.sql(DB, "-1", downgrade=True)
    backup         promptlab.sqlite.migrations.upgrade(DB, backup=True)
    adminpw        promptlab.sqlite.admin.set_admin_password(DB, $PROMPTLAB_ADMIN_PASSWORD)
    seen           ``OK EXPERIMENTS RESULTS``: the counts this process reads
    quit           exit 0

These are the calls that once dropped the process's POSIX locks on the file it
held (issue 11). A failing call answers ``ERR`` and the message; the holder goes on.
"""

import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.dirname(HERE))  # tests/: factories

from factories import make_config, make_summary  # noqa: E402
from promptlab.sqlite import migrations  # noqa: E402
from promptlab.sqlite.admin import set_admin_password  # noqa: E402
from promptlab.sqlite.database_manager import db_manager  # noqa: E402
from promptlab.tracer.local_tracer import LocalTracer  # noqa: E402


def main(argv):
    path = argv[1]
    tracer = LocalTracer({"type": "local", "db_file": path})
    config = make_config()
    print("READY", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command = words[0]
        try:
            if command == "quit":
                break
            if command == "trace":
                experiment_id, n = words[1], int(words[2])
                tracer.trace_experiment(config, make_summary(experiment_id, n))
                answer = f"ACK {experiment_id} {n}"
            elif command == "status":
                state = migrations.status(path)
                answer = f"OK {state.current} up_to_date={state.up_to_date}"
            elif command == "sql":
                answer = f"OK {len(migrations.sql(path))}"
            elif command == "sqldown":
                answer = f"OK {len(migrations.sql(path, '-1', downgrade=True))}"
            elif command == "backup":
                run = migrations.upgrade(path, backup=True)
                answer = f"OK {run.current} {run.backup}"
            elif command == "adminpw":
                set_admin_password(path, os.environ["PROMPTLAB_ADMIN_PASSWORD"])
                answer = "OK"
            elif command == "seen":
                with db_manager.get_session(path) as session:
                    experiments = session.execute("SELECT count(*) FROM experiments").scalar()
                    results = session.execute("SELECT count(*) FROM experiment_result").scalar()
                answer = f"OK {experiments} {results}"
            else:
                answer = f"ERR unknown command {command!r}"
        except Exception as exc:  # noqa: BLE001 - reported to the runner, which fails
            traceback.print_exc()
            answer = f"ERR {type(exc).__name__}: {exc}".replace("\n", " ")
        print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
