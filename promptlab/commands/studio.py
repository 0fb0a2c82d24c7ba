"""``promptlab studio start``: get the database ready (as ``promptlab db init``
does, ``promptlab.commands.prepare``), then serve the studio (web page and JSON API)
for it until SIGINT/SIGTERM (``promptlab.studio.server``)."""

from __future__ import annotations

import sys

# Annotations only (they stay text): typing and argparse are not imported at start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Optional, TextIO


def prepare(config: Any, out: Optional[TextIO] = None) -> Any:
    """Everything before serving: the database migrated, the server listening, the
    admin's password made and shown once. Returns the server, not yet serving
    (``serve_forever`` on any thread, ``shutdown`` to stop it). StudioError or
    DatabaseError for what prevents starting."""
    from promptlab.commands.prepare import create_admin_password, migrate_for_use
    from promptlab.sqlite.admin import default_password_warning
    from promptlab.studio.auth import StudioError
    from promptlab.studio.server import open_server

    out = sys.stdout if out is None else out
    try:
        migrated = migrate_for_use(config.db_file)
    except ValueError as exc:  # PROMPTLAB_ADMIN_PASSWORD against the rule
        raise StudioError(str(exc)) from None
    if migrated.count:
        print(f"Applied {migrated.count} migration(s) to {migrated.path}.", file=out)
    print(f"Database: {migrated.path} (revision {migrated.current}).", file=out)
    config.db_file = migrated.path
    # Listen first: the admin's password is made (and shown, once) only when the
    # studio can serve, so a taken port does not lose it.
    server = open_server(config, out)
    # A database the original PromptLab wrote keeps its admin/admin account: serve it
    # on this machine only (with a warning), never to the network.
    warning = default_password_warning(migrated.path)
    if warning and not server.is_loopback:
        server.server_close()
        raise StudioError(f"refusing to listen on {server.host}, reachable from other "
                          f"machines: {warning}")
    try:
        create_admin_password(migrated.path, out)
    except BaseException:
        server.server_close()
        raise
    if warning:
        print(f"Warning: {warning}.", file=out)
    if not server.is_loopback:
        print(f"Listening on {server.host}, reachable from other machines: put a reverse "
              "proxy with TLS in front (see the README).", file=out)
    print(f"PromptLab Studio is running at {server.url} (Ctrl-C to stop).", file=out,
          flush=True)
    return server


def run(config: Any, out: Optional[TextIO] = None) -> int:
    """Prepare, then serve on this (main) thread until SIGINT or SIGTERM; returns the
    exit status."""
    from promptlab.studio.server import serve_until_signal

    out = sys.stdout if out is None else out
    return serve_until_signal(prepare(config, out), out)


def _start(args: argparse.Namespace) -> int:
    import logging

    from promptlab.studio.api import StudioConfig
    from promptlab.studio.auth import StudioError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(StudioConfig.from_env(args.db, host=args.host, port=args.port))
    except StudioError as exc:
        print(f"promptlab: error: {exc}", file=sys.stderr)
        return 1


def _port(text: str) -> int:
    import argparse

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
