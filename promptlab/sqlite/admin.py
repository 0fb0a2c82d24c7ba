"""The default admin user's password.

A new database gets an ``admin`` user without a usable password, so that library
start-up never spends time hashing and no well-known default exists. The
password comes from ``PROMPTLAB_ADMIN_PASSWORD`` at initialization, or is
generated here, once, by ``promptlab db init`` or the studio.
"""

from __future__ import annotations

import os
import secrets
from typing import Optional, Union

from promptlab._core import UNUSABLE_PASSWORD, hash_password
from promptlab.sqlite.database_manager import db_manager

_SELECT_ADMIN_HASH = "SELECT password_hash FROM users WHERE username = 'admin'"
_SET_ADMIN_HASH = (
    "UPDATE users SET password_hash = ? WHERE username = 'admin' AND password_hash = ?"
)


def admin_has_password(db_file: Union[str, "os.PathLike[str]"]) -> bool:
    """True when the admin user of ``db_file`` has a usable password."""
    with db_manager.get_session(db_file) as session:
        current = session.execute(_SELECT_ADMIN_HASH).scalar()
    return current is not None and current != UNUSABLE_PASSWORD


def generate_admin_password(db_file: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """Give the admin of ``db_file`` a new random password and return it.

    Returns None when the admin already has a usable password (so that two
    processes racing here never both print a password: only one update wins).
    """
    if admin_has_password(db_file):
        return None
    password = secrets.token_urlsafe(15)
    hashed = hash_password(password)  # slow: done before the write lock is taken
    with db_manager.get_session(db_file) as session:
        changed = session.execute(_SET_ADMIN_HASH, (hashed, UNUSABLE_PASSWORD)).rowcount
    return password if changed == 1 else None
