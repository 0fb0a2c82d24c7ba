"""The schema, declared once as data, and the records the tracer returns.

``TABLES`` describes the tables exactly as the migrations create them (the four of
``migrations/versions/0004_promptlab_c_core.sql`` and the two summary tables of
``0005_experiment_summaries.sql``); the tests compare it with
``PRAGMA table_info``/``index_list``/``foreign_key_list`` of a migrated database,
and ``promptlab db revision`` diffs it against a database's schema. The migration
files stay the source that creates tables; change both together.

``User``, ``Asset``, ``Experiment`` and ``ExperimentResult`` are plain records with
the attribute names of the original SQLAlchemy models.
"""

# No ``from __future__ import annotations``: the fields' annotations are objects
# when the classes are built (a little less start-up work for dataclasses).

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from reprlib import recursive_repr
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
    columns=(
        Column("id", "INTEGER", primary_key=True, autoincrement=True),
        Column("username", "VARCHAR", nullable=False, unique=True),
        Column("password_hash", "VARCHAR", nullable=False),
        Column("role", "VARCHAR", nullable=False),
        Column("status", "INTEGER", default_sql="1"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
    ),
)

ASSETS = Table(
    "assets",
    columns=(
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
    ),
    indexes=(Index("ix_assets_asset_type", ("asset_type",)),),
)

EXPERIMENTS = Table(
    "experiments",
    columns=(
        Column("experiment_id", "VARCHAR", primary_key=True, nullable=False),
        Column("model", "TEXT"),
        Column("asset", "TEXT"),
        Column("status", "INTEGER", default_sql="1"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
        Column("user_id", "INTEGER", references="users.id"),
    ),
    indexes=(Index("ix_experiments_created_at", ("created_at",)),),
)

EXPERIMENT_RESULT = Table(
    "experiment_result",
    columns=(
        Column("id", "INTEGER", primary_key=True),
        Column("experiment_id", "VARCHAR", references="experiments.experiment_id"),
        Column("dataset_record_id", "VARCHAR"),
        Column("completion", "TEXT"),
        Column("prompt_tokens", "INTEGER"),
        Column("completion_tokens", "INTEGER"),
        Column("latency_ms", "FLOAT"),
        Column("evaluation", "TEXT"),
        Column("created_at", "DATETIME", default_sql=_NOW_UTC),
    ),
    indexes=(Index("ix_experiment_result_experiment_id", ("experiment_id",)),),
)

# Written by promptlab.store (store/summaries.py) with each experiment's results
# (migrations/versions/0005_experiment_summaries.sql). The columns without a type
# keep what the aggregate returned.
EXPERIMENT_SUMMARY = Table(
    "experiment_summary",
    columns=(
        Column("experiment_id", "VARCHAR", primary_key=True, nullable=False,
               references="experiments.experiment_id"),
        Column("records", "INTEGER", nullable=False),
        Column("avg_latency_ms", "REAL"),
        Column("prompt_tokens", ""),
        Column("completion_tokens", ""),
        Column("avg_prompt_tokens", "REAL"),
        Column("avg_completion_tokens", "REAL"),
        Column("last_result_id", "INTEGER"),
    ),
)

EXPERIMENT_METRIC = Table(
    "experiment_metric",
    columns=(
        Column("experiment_id", "VARCHAR", primary_key=True, nullable=False,
               references="experiments.experiment_id"),
        Column("metric", "", primary_key=True, nullable=False),
        Column("average", "REAL"),
        Column("count", "INTEGER"),
    ),
)

TABLES: Tuple[Table, ...] = (USERS, ASSETS, EXPERIMENTS, EXPERIMENT_RESULT,
                              EXPERIMENT_SUMMARY, EXPERIMENT_METRIC)
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


# A getter of a table's columns (in table order) per result shape. The rows of one
# result share one _fields tuple, so it is keyed by that tuple's identity (kept in
# the entry, so the id is not reused while the entry lives) and made once per shape.
_GETTERS: Dict[Tuple[int, str, str], Tuple[Tuple[str, ...], Any]] = {}


def _getter(names: Tuple[str, ...], table: Table, prefix: str = "") -> Any:
    """An itemgetter of ``table``'s columns, named ``prefix`` + column in ``names``."""
    key = (id(names), table.name, prefix)
    entry = _GETTERS.get(key)
    if entry is not None and entry[0] is names:
        return entry[1]
    index = {name: i for i, name in enumerate(names)}
    try:
        getter = itemgetter(*(index[prefix + c] for c in table.column_names))
    except KeyError as exc:
        raise KeyError(f"a {table.name} row needs the column {exc.args[0]}") from None
    if len(_GETTERS) >= 1024:  # many one-off results: start again rather than grow
        _GETTERS.clear()
    _GETTERS[key] = (names, getter)
    return getter


def _pick(row: Sequence[Any], table: Table, prefix: str = "") -> Sequence[Any]:
    """The values of ``table``'s columns in table order: from a result row by name
    (``prefix`` + column name), or a plain sequence as it is (already in table order)."""
    names = getattr(row, "_fields", None)
    return row if names is None else _getter(names, table, prefix)(row)


class _Record:
    """``==`` and ``repr`` as a dataclass's, shared by the records below (declared with
    ``eq=False, repr=False``: two generated methods fewer to compile per class)."""

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        return (tuple(getattr(self, n) for n in names)
                == tuple(getattr(other, n) for n in names))

    def __hash__(self) -> int:  # each record hashes by its primary key
        raise NotImplementedError

    @recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{type(self).__qualname__}({shown})"


@dataclass(kw_only=True, eq=False, repr=False)
class User(_Record):
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
    def from_row(cls, row: Sequence[Any], prefix: str = "") -> "User":
        """From a ``users`` row: by column name (``prefix`` + name) when the row has
        names, else the columns in table order."""
        id_, username, password_hash, role, status, created_at = _pick(row, USERS, prefix)
        return cls(id=id_, username=username, password_hash=password_hash, role=role,
                   status=status, created_at=parse_timestamp(created_at))


@dataclass(kw_only=True, eq=False, repr=False)
class Asset(_Record):
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
        """From an ``assets`` row (by column name when the row has names, else in
        table order), optionally with the owner's ``users`` columns as
        ``user__<column>`` (after the assets columns; all NULL when there is no owner)."""
        width = len(ASSETS.columns)
        names = getattr(row, "_fields", None)
        if names is None:
            values, owner = row[:width], row[width:width + len(USERS.columns)]
        else:
            values = _getter(names, ASSETS)(row)
            owner = _getter(names, USERS, "user__")(row) if len(names) > width else ()
        (name, version, description, asset_type, binary, is_deployed, deployment_time,
         status, created_at, user_id) = values
        # No owner columns, or a LEFT JOIN that found no owner.
        user = User.from_row(owner) if owner and owner[0] is not None else None
        return cls(asset_name=name, asset_version=version, asset_description=description,
                   asset_type=asset_type, asset_binary=binary,
                   is_deployed=bool(is_deployed), deployment_time=parse_timestamp(deployment_time),
                   status=status, created_at=parse_timestamp(created_at), user_id=user_id,
                   user=user)

    @property
    def file_path(self) -> Optional[str]:
        """The file of a dataset asset; None when its stored text names none."""
        from promptlab.store.formats import dataset_file_path

        return dataset_file_path(self.asset_binary)

    def prompts(self) -> Tuple[str, str]:
        """``(system_prompt, user_prompt)`` of a prompt template asset, exactly as
        stored; ValueError when its text is not a prompt template."""
        from promptlab.store.formats import decode_prompt_template

        return decode_prompt_template(self.asset_binary)


# How a point lookup's row becomes a record in C (``promptlab._core.Lookup``, used by
# promptlab.store): the class, its fields in column order, and one letter per field:
# 'v' as stored, 'b' bool(), 't' parse_timestamp() (done in C for the form the schema
# writes). An Asset's owner is a User over the columns that follow, None when the
# LEFT JOIN found none. The records equal those from_row builds (tests/test_lookups.py).
USER_PLAN = (User, USERS.column_names, "vvvvvt")
ASSET_PLAN = (Asset, ASSETS.column_names, "vvvvvbtvtv", ("user", USER_PLAN))


@dataclass(kw_only=True, eq=False, repr=False)
class Experiment(_Record):
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
        """From an ``experiments`` row, by name when it has names, else in table order."""
        experiment_id, model, asset, status, created_at, user_id = _pick(row, EXPERIMENTS)
        return cls(experiment_id=experiment_id, model=model, asset=asset, status=status,
                   created_at=parse_timestamp(created_at), user_id=user_id)


@dataclass(kw_only=True, eq=False, repr=False)
class ExperimentResult(_Record):
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
        """From an ``experiment_result`` row, by name when it has names, else in
        table order."""
        (id_, experiment_id, dataset_record_id, completion, prompt_tokens,
         completion_tokens, latency_ms, evaluation, created_at) = _pick(row, EXPERIMENT_RESULT)
        return cls(id=id_, experiment_id=experiment_id, dataset_record_id=dataset_record_id,
                   completion=completion, prompt_tokens=prompt_tokens,
                   completion_tokens=completion_tokens, latency_ms=latency_ms,
                   evaluation=evaluation, created_at=parse_timestamp(created_at))
