"""The schema, declared once as data, and the records the tracer returns.

``TABLES`` describes the four tables exactly as the head migration creates them
(``migrations/versions/0004_promptlab_c_core.sql``); the tests compare it with
``PRAGMA table_info``/``index_list``/``foreign_key_list`` of a migrated database,
and ``promptlab db revision`` diffs it against a database's schema. The migration
files stay the source that creates tables; change both together.

``User``, ``Asset``, ``Experiment`` and ``ExperimentResult`` are plain records with
the attribute names of the original SQLAlchemy models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional, Sequence, Tuple, Union

# ---------------------------------------------------------------------------
# Declarative schema
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column, as declared in CREATE TABLE.

    ``nullable`` is False only for a column declared NOT NULL (SQLite reports an
    ``INTEGER PRIMARY KEY`` without NOT NULL as nullable, although it is the rowid
    and can never be NULL). ``default_sql`` is the DEFAULT expression as SQLite
    reports it in ``PRAGMA table_info`` (without enclosing parentheses).
    ``references`` is ``"table.column"``.
    """

    name: str
    sql_type: str
    primary_key: bool = False
    nullable: bool = True
    default_sql: Optional[str] = None
    references: Optional[str] = None
    unique: bool = False
    autoincrement: bool = False


@dataclass(frozen=True)
class Index:
    """A named index created with CREATE INDEX (not the automatic PK/UNIQUE ones)."""

    name: str
    columns: Tuple[str, ...]
    unique: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))


@dataclass(frozen=True)
class Table:
    """A table: its columns in declaration order and its named indexes.

    Columns with ``primary_key=True`` form the primary key, in column order.
    """

    name: str
    columns: Tuple[Column, ...]
    indexes: Tuple[Index, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "indexes", tuple(self.indexes))

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def primary_key(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.primary_key)

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError when there is none)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name}")


_NOW_UTC = "strftime('%Y-%m-%d %H:%M:%f', 'now')"

USERS = Table(
    "users",
    columns=[
        Column("id", "INTEGER", primary_key=True, autoincrement=True),
        Column("username", "VARCHAR", nullable=False, unique=True),
        Column("password_hash", "VARCHAR", nullable=False),
        Column("role", "VARCHAR", nullable=False),
        Column("status", "INTEGER", default_sql="1"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
    ],
)

ASSETS = Table(
    "assets",
    columns=[
        Column("asset_name", "VARCHAR", primary_key=True, nullable=False),
        Column("asset_version", "INTEGER", primary_key=True, nullable=False),
        Column("asset_description", "TEXT"),
        Column("asset_type", "VARCHAR"),
        Column("asset_binary", "TEXT"),
        Column("is_deployed", "BOOLEAN", default_sql="0"),
        Column("deployment_time", "DATETIME"),
        Column("status", "INTEGER", default_sql="1"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
        Column("user_id", "INTEGER", references="users.id"),
    ],
    indexes=[Index("ix_assets_asset_type", ["asset_type"])],
)

EXPERIMENTS = Table(
    "experiments",
    columns=[
        Column("experiment_id", "VARCHAR", primary_key=True, nullable=False),
        Column("model", "TEXT"),
        Column("asset", "TEXT"),
        Column("status", "INTEGER", default_sql="1"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
        Column("user_id", "INTEGER", references="users.id"),
    ],
    indexes=[Index("ix_experiments_created_at", ["created_at"])],
)

EXPERIMENT_RESULT = Table(
    "experiment_result",
    columns=[
        Column("id", "INTEGER", primary_key=True),
        Column("experiment_id", "VARCHAR", references="experiments.experiment_id"),
        Column("dataset_record_id", "VARCHAR"),
        Column("completion", "TEXT"),
        Column("prompt_tokens", "INTEGER"),
        Column("completion_tokens", "INTEGER"),
        Column("latency_ms", "FLOAT"),
        Column("evaluation", "TEXT"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
    ],
    indexes=[Index("ix_experiment_result_experiment_id", ["experiment_id"])],
)

TABLES: Tuple[Table, ...] = (USERS, ASSETS, EXPERIMENTS, EXPERIMENT_RESULT)
"""The application tables, in dependency order (a table follows those it references)."""

TABLES_BY_NAME: Dict[str, Table] = {t.name: t for t in TABLES}

# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

Timestamp = Union[datetime, str, None]
"""A datetime; the raw stored value when it is not an ISO timestamp; None when NULL."""


def parse_timestamp(value: Any) -> Any:
    """A stored timestamp as a ``datetime`` (naive, as stored: UTC for new rows).

    Accepts 'YYYY-MM-DD HH:MM:SS[.fff|.ffffff]' and other ISO forms; None stays None,
    and a value that does not parse is returned unchanged.
    """
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


@dataclass(kw_only=True)
class User:
    """A row of ``users``; ``status`` 1 is active, 0 inactive."""

    id: Optional[int] = None
    username: str
    password_hash: str
    role: str
    status: int = 1
    created_at: Timestamp = None

    def __hash__(self) -> int:
        # Hashable as the original's SQLAlchemy objects were; by the unique username,
        # so that equal records hash alike (a changed username changes the hash).
        return hash(("users", self.username))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "User":
        """From the ``users`` columns in table order."""
        id_, username, password_hash, role, status, created_at = row
        return cls(id=id_, username=username, password_hash=password_hash, role=role,
                   status=status, created_at=parse_timestamp(created_at))


@dataclass(kw_only=True)
class Asset:
    """A row of ``assets``, with its owner in ``user`` when it was loaded."""

    asset_name: str
    asset_version: int
    asset_description: Optional[str] = None
    asset_type: Optional[str] = None
    asset_binary: Optional[str] = None
    is_deployed: bool = False
    deployment_time: Timestamp = None
    status: int = 1
    created_at: Timestamp = None
    user_id: Optional[int] = None
    user: Optional[User] = None

    def __hash__(self) -> int:
        # Hashable as the original's SQLAlchemy objects were (sets, dict keys); by the
        # primary key, so that equal records hash alike.
        return hash(("assets", self.asset_name, self.asset_version))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "Asset":
        """From the ``assets`` columns in table order, optionally followed by the
        ``users`` columns of a LEFT JOIN (all NULL when there is no owner)."""
        (name, version, description, asset_type, binary, is_deployed, deployment_time,
         status, created_at, user_id) = row[:10]
        user = User.from_row(row[10:16]) if len(row) > 10 and row[10] is not None else None
        return cls(asset_name=name, asset_version=version, asset_description=description,
                   asset_type=asset_type, asset_binary=binary,
                   is_deployed=bool(is_deployed), deployment_time=parse_timestamp(deployment_time),
                   status=status, created_at=parse_timestamp(created_at), user_id=user_id,
                   user=user)


@dataclass(kw_only=True)
class Experiment:
    """A row of ``experiments``: ``model`` and ``asset`` hold JSON text."""

    experiment_id: str
    model: Optional[str] = None
    asset: Optional[str] = None
    status: int = 1
    created_at: Timestamp = None
    user_id: Optional[int] = None
    user: Optional[User] = None

    def __hash__(self) -> int:
        return hash(("experiments", self.experiment_id))  # by the primary key, as Asset

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "Experiment":
        """From the ``experiments`` columns in table order."""
        experiment_id, model, asset, status, created_at, user_id = row
        return cls(experiment_id=experiment_id, model=model, asset=asset, status=status,
                   created_at=parse_timestamp(created_at), user_id=user_id)


@dataclass(kw_only=True)
class ExperimentResult:
    """A row of ``experiment_result``: one dataset record's completion and evaluation."""

    id: Optional[int] = None
    experiment_id: Optional[str] = None
    dataset_record_id: Optional[str] = None
    completion: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    latency_ms: Optional[float] = None
    evaluation: Optional[str] = None
    created_at: Timestamp = None

    def __hash__(self) -> int:
        return hash(("experiment_result", self.id))  # by the primary key, as Asset

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "ExperimentResult":
        """From the ``experiment_result`` columns in table order."""
        (id_, experiment_id, dataset_record_id, completion, prompt_tokens,
         completion_tokens, latency_ms, evaluation, created_at) = row
        return cls(id=id_, experiment_id=experiment_id, dataset_record_id=dataset_record_id,
                   completion=completion, prompt_tokens=prompt_tokens,
                   completion_tokens=completion_tokens, latency_ms=latency_ms,
                   evaluation=evaluation, created_at=parse_timestamp(created_at))
