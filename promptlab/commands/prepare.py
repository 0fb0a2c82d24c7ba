"""Getting a database ready for use, shared by ``promptlab db init`` and
``promptlab studio start`` (and ``pl.studio``): check ``PROMPTLAB_ADMIN_PASSWORD``
before anything is written, migrate the file to the head revision, and give the
admin a generated password when it has none, shown only that once.

The C core gives the admin ``PROMPTLAB_ADMIN_PASSWORD`` when it initializes a file
(csrc/engine/initialize.c); what is left to do here is the generated password.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional, TextIO, Union

DbFile = Union[str, "os.PathLike[str]"]


def migrate_for_use(db_file: DbFile) -> Any:
    """Check ``PROMPTLAB_ADMIN_PASSWORD`` against the password rule (ValueError, and
    no file is created), then migrate ``db_file`` to the head revision. Returns the
    migration run (``path``, ``current``, ``count``)."""
    from promptlab.sqlite.admin import password_from_environment
    from promptlab.sqlite.migrations import upgrade

    password_from_environment()
    return upgrade(db_file)


def print_admin_password(password: str, verb: str, out: Optional[TextIO] = None) -> None:
    """The one place a password is shown: ``verb`` ("Created", "Set") and the lines,
    on ``out`` (default: standard output)."""
    out = sys.stdout if out is None else out
    print(f"{verb} the admin user's password; it is shown only this once:", file=out)
    print(f"  username: admin\n  password: {password}", file=out)


def create_admin_password(db_file: DbFile, out: Optional[TextIO] = None) -> bool:
    """Give the admin of ``db_file`` a generated password when it has no usable one,
    and show it once on ``out``; False when the admin had a password (or another
    process gave it one first)."""
    from promptlab._core import set_admin_password_if_unusable
    from promptlab.sqlite.admin import generate_admin_password, password_from_environment
    from promptlab.sqlite.migrations import is_postgres_url

    if is_postgres_url(db_file):
        # SQLite's initialization gives the admin PROMPTLAB_ADMIN_PASSWORD; a
        # PostgreSQL database gets it here (no session opens it yet).
        given = password_from_environment()
        if given is not None:
            set_admin_password_if_unusable(db_file, given)
            return False
    password = generate_admin_password(db_file)
    if password is None:
        return False
    print_admin_password(password, "Created", out)
    return True
