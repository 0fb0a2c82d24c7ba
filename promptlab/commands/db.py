"""``promptlab db ...``: create, migrate, downgrade and inspect a database file, and
write new migrations. Each command calls one function of
``promptlab.sqlite.migrations`` and prints its outcome."""

from __future__ import annotations

import os
import sys

# Annotations only (they stay text): typing and argparse are not imported at
# start-up (``parse_status`` answers ``db status`` without argparse).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Callable, List, Optional

EXIT_PENDING = 3
EXIT_DRIFT = 4


def _warn_if_default_admin_password(path: str) -> None:
    from promptlab.sqlite.admin import default_password_warning
    from promptlab.sqlite.migrations import is_postgres_url

    if is_postgres_url(path):
        return  # the original's admin/admin exists only in its SQLite files

    warning = default_password_warning(path)
    if warning:
        print(f"promptlab: warning: {warning}", file=sys.stderr)


def _init(args: argparse.Namespace) -> int:
    from promptlab.commands.prepare import create_admin_password, migrate_for_use

    try:
        run = migrate_for_use(args.db)
    except ValueError as exc:  # PROMPTLAB_ADMIN_PASSWORD against the rule
        print(f"promptlab: error: {exc}", file=sys.stderr)
        return 1
    print(f"Initialized {run.path} at revision {run.current}.")
    # The URL as given: it may carry the password the shown one (run.path) leaves out.
    from promptlab.sqlite.migrations import is_postgres_url

    if not create_admin_password(args.db if is_postgres_url(args.db) else run.path):
        _warn_if_default_admin_password(run.path)
    return 0


def _admin_password(args: argparse.Namespace) -> int:
    from promptlab.commands.prepare import print_admin_password
    from promptlab.sqlite import DatabasePathError
    from promptlab.sqlite.admin import password_from_environment, set_admin_password

    path = os.path.abspath(args.db)
    if not os.path.exists(path):
        raise DatabasePathError(f"{path} does not exist; create it with: "
                                f"promptlab db init -d {args.db}")
    try:
        given = password_from_environment()
        password = set_admin_password(path, given)
    except ValueError as exc:  # a password against the rule, or no admin user
        print(f"promptlab: error: {exc}", file=sys.stderr)
        return 1
    if given:
        print(f"Set the admin user's password of {path} from PROMPTLAB_ADMIN_PASSWORD.")
    else:
        print_admin_password(password, "Set")
    return 0


def _copy(args: argparse.Namespace) -> int:
    from promptlab import _core

    if not args.to.startswith(("postgresql://", "postgres://")):
        print("promptlab: error: --to takes a postgresql:// URL", file=sys.stderr)
        return 2
    done = _core._postgres_copy(args.db, args.to)
    total = sum(rows for _, rows in done["tables"])
    for name, rows in done["tables"]:
        print(f"  {name}: {rows} row(s)")
    print(f"Copied {total} row(s) in {len(done['tables'])} table(s) from "
          f"{os.path.abspath(args.db)} to {done['url']}; each table's count checked.")
    return 0


def _print_run(run, verb: str) -> None:
    if run.backup:
        print(f"Backed up {run.path} to {run.backup} before changing it.")
    if run.detected:
        print(f"Recognised the layout of an older PromptLab at revision {run.detected}; "
              "marked the database there.")
    if run.count:
        print(f"{verb} {run.count} migration(s) on {run.path}; now at revision "
              f"{run.current or 'base'}.")
    else:
        print(f"{run.path} is up to date at revision {run.current or 'base'}."
              if verb == "Applied" else
              f"{run.path} is already at revision {run.current or 'base'}.")


def _migrate(args: argparse.Namespace) -> int:
    from promptlab.sqlite.migrations import head_revision, sql, upgrade

    if args.sql:
        print(sql(args.db, args.to), end="")
        return 0
    run = upgrade(args.db, args.to, backup=args.backup)
    _print_run(run, "Applied")
    if run.current == head_revision():  # the check opens a session, which migrates to head
        _warn_if_default_admin_password(run.path)
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from promptlab.sqlite.migrations import downgrade, sql

    if args.sql:
        print(sql(args.db, args.revision, downgrade=True), end="")
        return 0
    _print_run(downgrade(args.db, args.revision, backup=args.backup), "Undid")
    return 0


def _status(args: argparse.Namespace) -> int:
    from promptlab.sqlite.migrations import status

    state = status(args.db)
    if args.json:
        import json

        print(json.dumps(state.to_json()))
    else:
        # not /work/./promptlab.db; a URL as it is
        shown = state.path if "://" in state.path else os.path.normpath(state.path)
        print(f"Database:  {shown}{'' if state.exists else ' (does not exist yet)'}")
        if state.detected:
            print(f"Current:   none; the layout of an older PromptLab, matching revision "
                  f"{state.detected} (the next migrate marks it there)")
        else:
            print(f"Current:   {state.current or 'base (no revision)'}")
        print(f"Head:      {state.head or 'base (no migrations)'}")
        if state.pending:
            print(f"Pending:   {len(state.pending)} migration(s)")
            for m in state.pending:
                print(f"  {m.revision}  {m.message}")
        else:
            print("Pending:   none, up to date")
        if state.drift:
            print(f"DRIFT:     {len(state.drift)} difference(s)")
            for d in state.drift:
                print(f"  {d}")
        elif state.exists and not state.schema_compared:
            print("Drift:     none in the history (the schema itself is not compared on "
                  "PostgreSQL yet)")
        elif state.exists:
            print("Drift:     none")
    if args.exit_code:
        if state.drift:
            return EXIT_DRIFT
        if not state.up_to_date:
            return EXIT_PENDING
    return 0


def _revision(args: argparse.Namespace) -> int:
    from promptlab.sqlite.migrations import revision

    made = revision(args.message, args.dir, empty=args.empty, models=args.models,
                    db_file=args.db)
    if made.path is None:
        print("No changes: the models match the schema the migrations produce. Nothing was "
              "written (use --empty for a migration to write by hand).")
        return 0
    print(f"Wrote {made.path} (revision {made.revision}, parent {made.parent or 'base'}).")
    for change in made.changes:
        print(f"  {change}")
    return 0


class StatusArgs:
    """The namespace argparse would give ``db status`` (``parse_status``)."""

    group = "db"
    command = "status"

    def __init__(self, db: str, json: bool, exit_code: bool) -> None:
        self.db, self.json, self.exit_code = db, json, exit_code
        self.func = _status


def parse_status(argv: List[str]) -> Optional[StatusArgs]:
    """``argv`` parsed as argparse parses it when it is exactly ``db status`` with
    ``-d FILE`` or ``--db FILE`` once and ``--json``/``--exit-code`` at most once each
    (FILE not starting with ``-``); None for anything else, which argparse parses.

    Building the whole parser (argparse imports re, enum, gettext, locale, shutil)
    costs more than the rest of ``db status``: this is the command scripts and
    health checks run most often."""
    if argv[:2] != ["db", "status"]:
        return None
    db: Optional[str] = None
    flags = {"--json": False, "--exit-code": False}
    rest = argv[2:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if token in ("-d", "--db") and db is None and i + 1 < len(rest):
            db = rest[i + 1]
            if not db or db.startswith("-"):
                return None
            i += 2
        elif token in flags and not flags[token]:
            flags[token] = True
            i += 1
        else:
            return None
    if db is None:
        return None
    return StatusArgs(db, flags["--json"], flags["--exit-code"])


def register(commands: "argparse._SubParsersAction") -> None:
    """Add the ``db`` command group."""
    db = commands.add_parser("db", help="create, migrate and inspect a database")
    db_commands = db.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def db_command(name: str, func: Callable[[argparse.Namespace], int], help_text: str,
                   needs_db: bool = True):
        sub = db_commands.add_parser(name, help=help_text, description=help_text)
        if needs_db:
            sub.add_argument("-d", "--db", required=True, metavar="FILE",
                             help="path of the SQLite database file")
        sub.set_defaults(func=func)
        return sub

    db_command("init", _init,
               "create the database (and its folders) if missing, apply migrations, "
               "and create the admin user's password")
    mig = db_command("migrate", _migrate, "apply pending migrations (each in its own "
                     "transaction); a database made by an older PromptLab is recognised "
                     "and upgraded")
    mig.add_argument("--to", metavar="REV", default=None,
                     help="stop at this revision (a full id or a unique prefix, or +N); "
                          "default: head")
    mig.add_argument("--sql", action="store_true",
                     help="print the SQL that would run, run nothing")
    mig.add_argument("--backup", action="store_true",
                     help="first copy a database that holds data next to itself "
                          "(SQLite online backup) and say where")
    down = db_command("downgrade", _downgrade, "undo migrations by running their down "
                      "sections, newest first, each in its own transaction")
    down.add_argument("-r", "--revision", required=True, metavar="REV",
                      help="the revision to go back to: a full id or unique prefix, -N "
                           "(N steps back) or base")
    down.add_argument("--sql", action="store_true",
                      help="print the SQL that would run, run nothing")
    down.add_argument("--backup", action="store_true",
                      help="first copy the database next to itself and say where")
    st = db_command("status", _status,
                    "show the current and head revision, pending migrations and drift")
    st.add_argument("--json", action="store_true", help="print JSON for machines")
    st.add_argument("--exit-code", action="store_true",
                    help=f"exit with status {EXIT_PENDING} when migrations are pending and "
                         f"{EXIT_DRIFT} when the database drifted")
    db_command("admin-password", _admin_password,
               "replace the admin user's password: PROMPTLAB_ADMIN_PASSWORD when set, "
               "otherwise a generated one, printed once (an older database is upgraded "
               "first, as any use of it does)")
    copy = db_command("copy", _copy, "copy every row of a SQLite database file into a "
                      "PostgreSQL database (a new, empty one: it is first brought to the "
                      "file's revision); all rows or none, checked by counts")
    copy.add_argument("--to", required=True, metavar="URL",
                      help="postgresql://user@host:port/dbname (libpq's syntax; the password "
                           "from the URL, PGPASSWORD or ~/.pgpass)")
    rev = db_command("revision", _revision,
                     "write a new migration file after the head, generated from the "
                     "tables declared in promptlab/sqlite/models.py", needs_db=False)
    rev.add_argument("-m", "--message", required=True, help="what the migration changes")
    rev.add_argument("-d", "--db", metavar="FILE", default=None,
                     help="compare the models with this database (at the head, without "
                          "drift) instead of the schema the migrations produce, as "
                          "Alembic's autogenerate does")
    rev.add_argument("--dir", metavar="DIR", default=None,
                     help="the migrations folder to write into (default: the one in use, "
                          "which must be a source checkout's: never an installed package)")
    rev.add_argument("--empty", action="store_true",
                     help="write a migration with empty sections to fill by hand")
    rev.add_argument("--models", metavar="FILE", default=None,
                     help="a Python file or module declaring TABLES (default: "
                          "promptlab.sqlite.models)")
