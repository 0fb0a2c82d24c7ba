"""The ``promptlab`` command line: a thin layer over the library.

Each command calls one library function and prints its outcome. Library errors
become one line on stderr and exit status 1; usage errors exit with 2. The
command groups live in ``promptlab.commands``.
"""

from __future__ import annotations

import sys

from promptlab.commands import db, demo, studio

# Annotations only (they stay text): typing is not imported at start-up, nor argparse
# for ``db status`` (``promptlab.commands.db.parse_status``).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Callable, List, Optional

PROG = "promptlab"
GROUPS = (db, studio, demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=PROG, description="PromptLab: a local experiment store for LLM prompts."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def _version() -> str:
    from promptlab import __version__

    return f"{PROG} {__version__}"


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    from promptlab._core import DatabaseError

    if argv is None:
        argv = sys.argv[1:]
    args = db.parse_status(argv) or build_parser().parse_args(argv)
    try:
        command: Callable[[Any], int] = args.func  # a Namespace or a StatusArgs
        return command(args)
    except DatabaseError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
