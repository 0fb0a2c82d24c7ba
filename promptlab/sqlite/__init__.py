"""PromptLab's database layer: the C core, re-exported under its public names."""

from collections.abc import Mapping, Sequence

from promptlab._core import (
    AuthenticationError,
    ConnectionLostError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseNotFoundError,
    DatabasePathError,
    DiskFullError,
    ForeignSchemaError,
    IntegrityError,
    InvalidDatabaseError,
    MigrationError,
    PermissionDeniedError,
    ProgrammingError,
    ReadOnlyDatabaseError,
    Result,
    Row,
    RowIterator,
    RowMapping,
    ServerUnavailableError,
    Session,
    StatementTimeoutError,
    UnknownRevisionError,
)
from promptlab.sqlite.database_manager import DatabaseManager, db_manager
from promptlab.sqlite.session import (
    get_session,
    init_engine,
    is_initialized,
    reset_initialization,
)

__all__ = [
    "AuthenticationError",
    "ConnectionLostError",
    "DatabaseBusyError",
    "DatabaseError",
    "DatabaseManager",
    "DatabaseNotFoundError",
    "DatabasePathError",
    "DiskFullError",
    "ForeignSchemaError",
    "IntegrityError",
    "InvalidDatabaseError",
    "MigrationError",
    "PermissionDeniedError",
    "ProgrammingError",
    "ReadOnlyDatabaseError",
    "Result",
    "Row",
    "RowIterator",
    "RowMapping",
    "ServerUnavailableError",
    "Session",
    "StatementTimeoutError",
    "UnknownRevisionError",
    "db_manager",
    "get_session",
    "init_engine",
    "is_initialized",
    "reset_initialization",
]

# RowMapping is a read-only mapping (isinstance checks, pandas, json helpers).
Mapping.register(RowMapping)
# Row is a read-only sequence of its values (index, count, reversed, isinstance).
Sequence.register(Row)
