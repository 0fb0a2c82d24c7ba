"""The ``assets`` table: prompt templates and datasets, versioned by name.

What an asset's ``asset_binary`` holds is ``promptlab.store.formats``' business;
these functions store and return the text as it is.
"""

from __future__ import annotations

from promptlab.sqlite.database_manager import db_manager
from promptlab.store import lookup, record_classes
from promptlab.store.users import user_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

    from promptlab.sqlite.models import Asset
    from promptlab.store.users import DbFile

INSERT_ASSET = """
INSERT INTO assets (asset_name, asset_version, asset_description, asset_type,
                    asset_binary, user_id)
VALUES (?, ?, ?, ?, ?, ?)
"""

# The assets columns, then the owner's users columns as user__<column> (Asset.from_row).
_SELECT_ASSETS = """
SELECT a.asset_name, a.asset_version, a.asset_description, a.asset_type, a.asset_binary,
       a.is_deployed, a.deployment_time, a.status, a.created_at, a.user_id,
       u.id AS user__id, u.username AS user__username,
       u.password_hash AS user__password_hash, u.role AS user__role,
       u.status AS user__status, u.created_at AS user__created_at
FROM assets a
LEFT JOIN users u ON u.id = a.user_id
"""
SELECT_ASSET = _SELECT_ASSETS + "WHERE a.asset_name = ? AND a.asset_version = ?"
SELECT_LATEST_ASSET = (
    _SELECT_ASSETS + "WHERE a.asset_name = ? ORDER BY a.asset_version DESC LIMIT 1"
)
# In insertion order, as the original returned them (its query had no ORDER BY and
# SQLite read the table in rowid order). ix_assets_asset_type ends with the rowid, so
# the index gives this order without a sort.
SELECT_ASSETS_BY_TYPE = _SELECT_ASSETS + "WHERE a.asset_type = ? ORDER BY a.rowid"


def insert_asset(db_file: DbFile, name: str, version: int, description: Optional[str],
                 asset_type: str, binary: str, username: str) -> None:
    """Store one asset version owned by ``username``; ValueError when that user does
    not exist, IntegrityError when the name and version exist."""
    with db_manager.get_session(db_file) as session:
        session.begin()
        owner = user_id(session, username)
        session.execute(INSERT_ASSET, (name, version, description, asset_type, binary, owner))


# The point lookups read without a session (promptlab._core.Lookup: one pooled
# connection's cached statement, the record built in C); made on first use.
_by_version = _latest = None


def get_asset(db_file: DbFile, name: str, version: int) -> Optional[Asset]:
    """The asset ``name`` at ``version`` with its owner, or None."""
    global _by_version
    if _by_version is None:
        _by_version = lookup(SELECT_ASSET, "ASSET_PLAN")
    return _by_version.first(db_file, (name, version))


def get_latest_asset(db_file: DbFile, name: str) -> Optional[Asset]:
    """The highest version of ``name``, or None."""
    global _latest
    if _latest is None:
        _latest = lookup(SELECT_LATEST_ASSET, "ASSET_PLAN")
    return _latest.first(db_file, (name,))


def assets_of_type(db_file: DbFile, asset_type: str) -> List[Asset]:
    """Every asset of ``asset_type``, in the order they were stored."""
    with db_manager.get_session(db_file) as session:
        rows = session.execute(SELECT_ASSETS_BY_TYPE, (asset_type,)).all()
    return [record_classes().Asset.from_row(row) for row in rows]
