"""``promptlab db ...``: create, migrate and inspect a database file."""

from __future__ import annotations

import argparse
import json
from typing import Callable


def _init(args: argparse.Namespace) -> int:
    from promptlab.sqlite.admin import generate_admin_password
    from promptlab.sqlite.migrations import upgrade

    state = upgrade(args.db)
    print(f"Initialized {state.path} at revision {state.current}.")
    password = generate_admin_password(state.path)
    if password is not None:
        print("Created the admin user's password; it is shown only this once:")
        print(f"  username: admin\n  password: {password}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from promptlab.sqlite.migrations import status, upgrade

    before = status(args.db)
    after = upgrade(args.db)
    applied = len(before.pending) - len(after.pending)
    if applied:
        print(f"Applied {applied} migration(s) to {after.path}; now at revision {after.current}.")
    else:
        print(f"{after.path} is up to date at revision {after.current}.")
    return 0


def _status(args: argparse.Namespace) -> int:
    from promptlab.sqlite.migrations import status

    state = status(args.db)
    if args.json:
        print(json.dumps({
            "path": state.path,
            "exists": state.exists,
            "current": state.current,
            "head": state.head,
            "pending": [m.revision for m in state.pending],
        }))
    else:
        print(f"Database:  {state.path}{'' if state.exists else ' (does not exist yet)'}")
        print(f"Current:   {state.current or 'base (no revision)'}")
        print(f"Head:      {state.head or 'base (no migrations)'}")
        if state.pending:
            print(f"Pending:   {len(state.pending)} migration(s)")
            for m in state.pending:
                print(f"  {m.revision}  {m.message}")
        else:
            print("Pending:   none, up to date")
    if args.exit_code and not state.up_to_date:
        return 3
    return 0


def register(commands: "argparse._SubParsersAction") -> None:
    """Add the ``db`` command group."""
    db = commands.add_parser("db", help="create, migrate and inspect a database")
    db_commands = db.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def db_command(name: str, func: Callable[[argparse.Namespace], int], help_text: str):
        sub = db_commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("-d", "--db", required=True, metavar="FILE",
                         help="path of the SQLite database file")
        sub.set_defaults(func=func)
        return sub

    db_command("init", _init,
               "create the database (and its folders) if missing, apply migrations, "
               "and create the admin user's password")
    db_command("migrate", _migrate, "apply pending migrations")
    st = db_command("status", _status,
                    "show the current and head revision and pending migrations")
    st.add_argument("--json", action="store_true", help="print JSON for machines")
    st.add_argument("--exit-code", action="store_true",
                    help="exit with status 3 when migrations are pending")
