"""The ``users`` table: every statement over it, and the admin's password hash.

The C core creates the ``admin`` row when it initializes a file (and gives it
``PROMPTLAB_ADMIN_PASSWORD`` then, csrc/engine/initialize.c), and it alone gives a
password to an admin that has none (``_core.set_admin_password_if_unusable``, used by
``promptlab.store.admin``); everything else goes through here.
"""

from __future__ import annotations

import os

from promptlab.sqlite import Session
from promptlab.sqlite.database_manager import db_manager
from promptlab.store import lookup, record_classes

# Annotations only; records are built through record_classes(), so that reading
# experiments does not load the record classes (issue 16, start-up).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Union

    from promptlab.sqlite.models import User

    DbFile = Union[str, os.PathLike[str]]

ADMIN = "admin"

_COLUMNS = "id, username, password_hash, role, status, created_at"
SELECT_USER_ID = "SELECT id FROM users WHERE username = ?"
SELECT_USER_BY_USERNAME = f"SELECT {_COLUMNS} FROM users WHERE username = ?"
SELECT_ACTIVE_USERS = f"SELECT {_COLUMNS} FROM users WHERE status = 1 ORDER BY id"
SELECT_ALL_USERS = f"SELECT {_COLUMNS} FROM users ORDER BY id"
INSERT_USER = "INSERT INTO users (username, password_hash, role, status) VALUES (?, ?, ?, ?)"
SET_USER_STATUS = "UPDATE users SET status = ? WHERE username = ?"
SET_USER_ROLE = "UPDATE users SET role = ? WHERE username = ?"
SET_USER_PASSWORD_HASH = "UPDATE users SET password_hash = ? WHERE username = ?"


def user_id(session: Session, username: str) -> int:
    """The id of ``username`` inside ``session``'s transaction; ValueError when missing."""
    found = session.execute(SELECT_USER_ID, (username,)).scalar()
    if found is None:
        raise ValueError(f"User {username} not found.")
    return found


# Read without a session (promptlab._core.Lookup, as store.assets' lookups).
_by_username = None


def get_user(db_file: DbFile, username: str) -> Optional[User]:
    """The user called ``username`` (active or not), or None."""
    global _by_username
    if _by_username is None:
        _by_username = lookup(SELECT_USER_BY_USERNAME, "USER_PLAN")
    return _by_username.first(db_file, (username,))


def list_users(db_file: DbFile, active_only: bool = True) -> List[User]:
    """The users by id: the active ones (status 1), or every one."""
    with db_manager.get_session(db_file) as session:
        rows = session.execute(SELECT_ACTIVE_USERS if active_only else SELECT_ALL_USERS).all()
    return [record_classes().User.from_row(row) for row in rows]


def insert_user(db_file: DbFile, user: User) -> None:
    """Insert ``user`` (status 1 unless set); sets ``user.id`` and ``user.status``."""
    status = 1 if user.status is None else user.status
    with db_manager.get_session(db_file) as session:
        result = session.execute(
            INSERT_USER, (user.username, user.password_hash, user.role, status))
    user.id = result.lastrowid
    user.status = status


def _update(db_file: DbFile, sql: str, params: tuple) -> bool:
    with db_manager.get_session(db_file) as session:
        return session.execute(sql, params).rowcount > 0


def set_status(db_file: DbFile, username: str, active: bool) -> bool:
    """Activate or deactivate ``username``; False when there is no such user."""
    return _update(db_file, SET_USER_STATUS, (1 if active else 0, username))


def set_role(db_file: DbFile, username: str, role: str) -> bool:
    """Change the role of ``username``; False when there is no such user."""
    return _update(db_file, SET_USER_ROLE, (role, username))


def set_password_hash(db_file: DbFile, username: str, password_hash: str) -> bool:
    """Store a new password hash for ``username``; False when there is no such user."""
    return _update(db_file, SET_USER_PASSWORD_HASH, (password_hash, username))


# --- the admin ---------------------------------------------------------------------


def admin_password_hash(db_file: DbFile) -> Optional[str]:
    """The admin's stored hash (``UNUSABLE_PASSWORD`` when it has none), or None
    when there is no admin row."""
    admin = get_user(db_file, ADMIN)
    return None if admin is None else admin.password_hash
