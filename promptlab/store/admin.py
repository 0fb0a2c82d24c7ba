"""The default admin user's password.

A new database gets an ``admin`` user without a usable password, so that library
start-up never spends time hashing and no well-known default exists. The
password comes from ``PROMPTLAB_ADMIN_PASSWORD`` at initialization, or is
generated here, once, by ``promptlab db init`` or the studio.

Databases written by the original PromptLab (0.1.4 to 0.1.11) keep the admin
row they had, whose password is the well-known ``admin``: the commands that
upgrade or serve such a file say so (``admin_has_default_password``), and
``promptlab db admin-password`` replaces it (``set_admin_password``).

Every function here opens a session, so it initializes the database (migrating it
to head) first, as any use of the library does.
"""

from __future__ import annotations

import os
import secrets
from typing import Optional, Union

from promptlab import _core
from promptlab._core import (
    UNUSABLE_PASSWORD,
    check_password,
    hash_password,
    set_admin_password_if_unusable,
    verify_password,
)
from promptlab.store import users

# The password the original PromptLab gave every admin it created.
ORIGINAL_DEFAULT_PASSWORD = "admin"

PASSWORD_ENV = "PROMPTLAB_ADMIN_PASSWORD"


def password_from_environment() -> Optional[str]:
    """``PROMPTLAB_ADMIN_PASSWORD`` when it is set and not empty, else None, read by the
    C core as initialization reads it (``_core.admin_password_from_environment``).

    ValueError when it breaks the password rule (8 to 72 bytes of UTF-8, the
    studio's rule): commands call this before they create or change anything, so a
    bad value leaves no file behind.
    """
    return _core.admin_password_from_environment()


def admin_has_password(db_file: Union[str, "os.PathLike[str]"]) -> bool:
    """True when the admin user of ``db_file`` has a usable password."""
    current = users.admin_password_hash(db_file)
    return current is not None and current != UNUSABLE_PASSWORD


def admin_has_default_password(db_file: Union[str, "os.PathLike[str]"]) -> bool:
    """True when the admin of ``db_file`` still signs in with the original
    PromptLab's default password. Costs one bcrypt verification (~0.2 s)."""
    current = users.admin_password_hash(db_file)
    if current is None or current == UNUSABLE_PASSWORD:
        return False
    return verify_password(ORIGINAL_DEFAULT_PASSWORD, current)


def default_password_warning(db_file: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """The line to show when the admin of ``db_file`` has the original default
    password (see ``admin_has_default_password``), else None."""
    if not admin_has_default_password(db_file):
        return None
    path = os.fspath(db_file)
    return (f"the admin user of {path} still has the original PromptLab's default "
            f"password '{ORIGINAL_DEFAULT_PASSWORD}'; set a new one with: "
            f"promptlab db admin-password -d {path}")


def set_admin_password(db_file: Union[str, "os.PathLike[str]"],
                       password: Optional[str] = None) -> str:
    """Replace the admin's password of ``db_file`` with ``password`` (or a new
    random one) and return it. ValueError when there is no admin user or the
    password breaks the rule (8 to 72 bytes)."""
    if password is None:
        password = secrets.token_urlsafe(15)
    check_password(password, "The admin password")
    hashed = hash_password(password)  # slow: done before the write lock is taken
    if not users.set_password_hash(db_file, users.ADMIN, hashed):
        raise ValueError(f"{os.fspath(db_file)} has no admin user.")
    return password


def generate_admin_password(db_file: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """Give the admin of ``db_file`` a new random password and return it.

    Returns None when the admin already has a usable password (so that two
    processes racing here never both print a password: only one update wins).
    """
    from promptlab.sqlite.migrations import is_postgres_url

    # On PostgreSQL the conditional update alone decides (no session there yet).
    if not is_postgres_url(db_file) and admin_has_password(db_file):
        return None
    password = secrets.token_urlsafe(15)
    # The C core hashes it (GIL released) and writes it only while the admin has no
    # usable password, as initialization does for PROMPTLAB_ADMIN_PASSWORD.
    return password if set_admin_password_if_unusable(db_file, password) else None
