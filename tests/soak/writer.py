"""A short-lived writer of the soak test (run as a script by tests/soak/runner.py).

    python writer.py DB NAME ROWS[,ROWS...] [CALLS]

Opens DB through ``LocalTracer``, prints ``READY``, then traces one experiment per
ROWS entry, id ``NAME-J-rROWS``, and prints ``ACK ID ROWS`` (flushed) only after
``trace_experiment`` returned: a line on the pipe is an acknowledged write. CALLS
(comma-separated ``status``, ``sql``) are made in this process after its first
experiment, on the file it holds. Exits 0; the runner may SIGKILL it at any time.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.dirname(HERE))  # tests/: factories

from factories import make_config, make_summary  # noqa: E402
from promptlab.sqlite import migrations  # noqa: E402
from promptlab.tracer.local_tracer import LocalTracer  # noqa: E402


def main(argv):
    path, name, rows = argv[1], argv[2], [int(r) for r in argv[3].split(",")]
    calls = [c for c in (argv[4] if len(argv) > 4 else "").split(",") if c]
    tracer = LocalTracer({"type": "local", "db_file": path})
    config = make_config()
    print("READY", flush=True)
    for j, n in enumerate(rows):
        experiment_id = f"{name}-{j}-r{n}"
        tracer.trace_experiment(config, make_summary(experiment_id, n))
        print(f"ACK {experiment_id} {n}", flush=True)
        if j == 0:
            for call in calls:
                if call == "status":
                    migrations.status(path)
                elif call == "sql":
                    migrations.sql(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
