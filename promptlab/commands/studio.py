"""``promptlab studio start``: serve the studio (web page and JSON API) for one
database file. The work is ``promptlab.studio.server.run``."""

from __future__ import annotations

import argparse
import logging
import sys


def _start(args: argparse.Namespace) -> int:
    from promptlab.studio.api import StudioConfig
    from promptlab.studio.auth import StudioError
    from promptlab.studio.server import run

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(StudioConfig.from_env(args.db, host=args.host, port=args.port))
    except StudioError as exc:
        print(f"promptlab: error: {exc}", file=sys.stderr)
        return 1


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is not between 0 and 65535")
    return value


def register(commands: "argparse._SubParsersAction") -> None:
    """Add the ``studio`` command group."""
    studio = commands.add_parser("studio", help="the web studio: browse, compare, manage")
    studio_commands = studio.add_subparsers(dest="command", metavar="SUBCOMMAND",
                                            required=True)
    text = ("initialize the database if needed, create the admin password if it has none "
            "(printed once), and serve the studio until Ctrl-C or SIGTERM")
    start = studio_commands.add_parser("start", help=text, description=text)
    start.add_argument("-d", "--db", required=True, metavar="FILE",
                       help="path of the SQLite database file")
    start.add_argument("-p", "--port", type=_port, default=8000,
                       help="TCP port (default: 8000; 0 picks a free one)")
    start.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only; "
                            "0.0.0.0 for every interface, behind a TLS proxy)")
    start.set_defaults(func=_start)
