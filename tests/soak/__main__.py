"""python -m tests.soak [--seconds S] [--seed N] [--dir DIR] [--round-seconds R]

Runs the soak test (tests/soak/runner.py) for about S seconds (default:
$PROMPTLAB_SOAK_SECONDS, else 60) and prints the figure. Exit status 0 when no
acknowledged write was lost and every check passed, 1 otherwise."""

import argparse
import os
import sys
from pathlib import Path

from .runner import run_soak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("PROMPTLAB_SOAK_SECONDS", "60")))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None,
                        help="work folder (database, logs); default: a new temporary one, kept")
    parser.add_argument("--round-seconds", type=float, default=8.0,
                        help="length of each round's random phase before its checks")
    args = parser.parse_args(argv)
    report = run_soak(args.seconds, args.dir, args.seed, args.round_seconds)
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
