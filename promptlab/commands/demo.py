"""``promptlab demo -d FILE``: the main job end to end, offline (``promptlab.demo``)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def _demo(args: argparse.Namespace) -> int:
    from promptlab.demo import run_demo

    try:
        run_demo(args.db, sys.stdout)
    except (ValueError, OSError) as exc:
        print(f"promptlab: error: {exc}", file=sys.stderr)
        return 1
    return 0


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``demo`` command."""
    text = ("store a prompt template (2 versions) and a sample dataset in FILE, run both "
            "versions with a deterministic offline baseline (not an LLM), score them with "
            "exact_match and f1_score, and print the summary")
    demo = commands.add_parser("demo", help="try PromptLab offline in a few seconds",
                               description=text)
    demo.add_argument("-d", "--db", required=True, metavar="FILE",
                      help="path of the SQLite database file (created if missing)")
    demo.set_defaults(func=_demo)
