"""Type stub for the C extension ``promptlab._core``.

This is the contract between the C core and the Python package; the Python
modules re-export these names and users import them from ``promptlab.sqlite``.
"""

import os
from typing import (
    Any,
    ClassVar,
    Iterable,
    Iterator,
    Literal,
    Mapping,
    Sequence,
    SupportsIndex,
    Union,
    overload,
)

from typing_extensions import TypeVar

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Params = Union[Sequence[Any], Mapping[str, Any], None]
"""qmark values as a sequence, or named values as a mapping (keys the statement
does not name are ignored). A value is None, int, float, str, bytes-like,
datetime/date (stored as its str()), or dict/list (stored as json.dumps() text)."""

sqlite_version: str
"""Version of the SQLite library the extension runs with."""

# Exceptions. Every message names the database file and what to do.
class DatabaseError(Exception):
    path: str | None
    """The database file concerned, when there is one."""
    sqlite_errorcode: int | None
    """SQLite's extended result code, when SQLite reported the error."""

class InvalidDatabaseError(DatabaseError):
    """The file is not a SQLite database, or it is truncated or corrupt. Never modified."""

class DatabasePathError(DatabaseError):
    """The path cannot hold a database: a directory, an unwritable or missing folder,
    too long, containing a NUL byte, or not a str/bytes/os.PathLike."""

class DatabaseBusyError(DatabaseError):
    """Another connection held a lock for longer than the busy timeout."""

class ReadOnlyDatabaseError(DatabaseError): ...
class DiskFullError(DatabaseError): ...

class IntegrityError(DatabaseError):
    """A constraint failed (duplicate key, NOT NULL, foreign key)."""

class ProgrammingError(DatabaseError):
    """Misuse: invalid SQL, wrong number of parameters, a closed session."""

class MigrationError(DatabaseError):
    """A migration file is invalid, or a migration failed; the database stays at the
    last revision that completed."""

class UnknownRevisionError(MigrationError):
    """The database is at a revision this PromptLab does not know (made by a newer one)."""

class ForeignSchemaError(InvalidDatabaseError):
    """The database holds a trigger or view PromptLab did not create; PromptLab refuses
    to write to it rather than run that code inside its statements."""

class StatementTimeoutError(DatabaseError):
    """A statement ran longer than its time limit (``Session.statement_timeout`` or
    ``PROMPTLAB_STATEMENT_TIMEOUT_MS``) and was stopped."""

class ServerUnavailableError(DatabaseError):
    """The database server cannot be reached: not running, starting or shutting down,
    or a wrong host or port. ``path`` names the server and database, never the
    password."""

class ConnectionLostError(ServerUnavailableError):
    """The connection to the database server broke during a call; the server rolled back
    the transaction in progress."""

class AuthenticationError(DatabaseError):
    """The database server refused the user name or password."""

class DatabaseNotFoundError(DatabaseError):
    """The database server has no database of that name."""

class PermissionDeniedError(DatabaseError):
    """The database server does not let this user do that (connect, create, write)."""

def _postgres_probe(url: str) -> "dict[str, Any]":
    """For tests, until sessions run on PostgreSQL: connect to ``url``, read the
    database's name and user, disconnect. ``{"url", "database", "user",
    "server_version"}``; ``url`` without the password."""

def _postgres_copy(db_file: Union[str, "os.PathLike[str]"], url: str,
                   directory: "str | None" = None) -> "dict[str, Any]":
    """``promptlab db copy``: every row of the SQLite file into the PostgreSQL database
    (brought to the file's revision when empty), all or nothing, checked by counts.
    ``{"url": ..., "tables": [(name, rows), ...]}``."""

def _postgres_revision(url: str, directory: "str | None" = None) -> "dict[str, Any]":
    """``database_revision`` for a PostgreSQL database (``path``: the URL without its
    password; ``detected`` always None)."""

class Row(Sequence[Any]):
    """One result row: ``row.col``, ``row["col"]``, ``row[0]``, ``row[1:]`` (a tuple),
    ``len(row)``, iteration over values, ``value in row``, ``row.keys()``,
    ``row._asdict()``, ``row._mapping``, ``row._fields``. Compares (``==``, ``<``, ...)
    and hashes as the tuple of its values.

    ``row.index(value)`` and ``row.count(value)`` as a tuple's; ``reversed(row)`` works
    through ``len`` and ``row[i]``. Registered as a ``collections.abc.Sequence`` by
    ``promptlab.sqlite``."""

    @property
    def _fields(self) -> tuple[str, ...]: ...
    @property
    def _mapping(self) -> dict[str, Any]:
        """A new dict of column name -> value (as ``_asdict()``)."""
    def keys(self) -> list[str]: ...
    def _asdict(self) -> dict[str, Any]: ...
    def index(self, value: Any, start: SupportsIndex = 0, stop: SupportsIndex = ...,
              /) -> int:
        """The first position of ``value`` between ``start`` and ``stop``, as
        ``tuple.index``; ValueError when it is not there."""
    def count(self, value: Any, /) -> int:
        """How many values equal ``value``, as ``tuple.count``."""
    @overload
    def __getitem__(self, key: SupportsIndex | str) -> Any: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Any, ...]: ...
    def __getattr__(self, name: str) -> Any:
        """A column's value (the core looks columns up before other attributes)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __contains__(self, value: object) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __lt__(self, other: Row | tuple[Any, ...]) -> bool: ...
    def __le__(self, other: Row | tuple[Any, ...]) -> bool: ...
    def __gt__(self, other: Row | tuple[Any, ...]) -> bool: ...
    def __ge__(self, other: Row | tuple[Any, ...]) -> bool: ...
    def __hash__(self) -> int: ...

class RowMapping(Mapping[str, Any]):
    """A result row as a read-only mapping (``Result.mappings()``; what
    ``LocalTracer.get_experiments()`` returns, as the original did): ``row["col"]``,
    iteration over the column names, ``name in row``, ``len(row)``, ``dict(row)``,
    ``keys()``/``values()``/``items()``/``get()``, ``row.col``. Equal to a dict with
    the same items; unhashable; registered as a ``collections.abc.Mapping`` by
    ``promptlab.sqlite``."""

    # The core returns lists, not views: indexable, but without the set operations of
    # KeysView/ItemsView.
    def keys(self) -> list[str]: ...  # type: ignore[override]
    def values(self) -> list[Any]: ...  # type: ignore[override]
    def items(self) -> list[tuple[str, Any]]: ...  # type: ignore[override]
    def get(self, name: str, default: Any = None, /) -> Any: ...
    def __getitem__(self, key: str) -> Any: ...
    def __getattr__(self, name: str) -> Any:
        """A column's value (the core looks columns up before other attributes)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def __contains__(self, key: object) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

_R = TypeVar("_R", Row, RowMapping, default=Row)

class Result(Iterator[_R]):
    """The outcome of ``Session.execute``: the rows are fetched when the statement runs.

    ``Result[Row]`` from ``execute``; ``Result[RowMapping]`` from ``mappings()`` and
    ``execute_nested(..., mappings=True)``. Subscriptable at runtime too
    (``__class_getitem__``, a ``types.GenericAlias``), so ``Result[Row]`` works in
    evaluated annotations and ``cast`` calls."""

    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def rowcount(self) -> int:
        """Rows changed by an INSERT/UPDATE/DELETE (summed by executemany); -1 for a query."""
    @property
    def lastrowid(self) -> int | None:
        """The connection's last inserted rowid (``sqlite3_last_insert_rowid``), None when
        0: after a statement that inserts nothing it is an earlier statement's (issue:
        the C docstring says "inserted by this call")."""
    def __iter__(self) -> Result[_R]: ...
    def __next__(self) -> _R: ...
    def __len__(self) -> int:
        """The number of rows the statement returned, read or not."""
    def fetchone(self) -> _R | None: ...
    def fetchall(self) -> list[_R]: ...
    def all(self) -> list[_R]: ...
    def first(self) -> _R | None: ...
    def one(self) -> _R:
        """The only row; ProgrammingError when there are none or several."""
    def mappings(self) -> Result[RowMapping]:
        """The unread rows as RowMappings, in a new Result (they count as read here)."""
    def scalar(self) -> Any:
        """First column of the first row, or None when there is no row."""

class RowIterator(Iterator[_R]):
    """The rows of ``Session.execute_iter`` / ``execute_nested_iter``, built a chunk
    (1,024 rows or 256 KiB of text) at a time, so memory stays bounded. Until it is
    exhausted or closed the session belongs to it: another call on the session from
    the same thread raises ProgrammingError, other threads wait. Read it on the thread
    that opened it (ProgrammingError otherwise); ``close()`` may come from any."""

    def __iter__(self) -> RowIterator[_R]: ...
    def __next__(self) -> _R: ...
    def close(self) -> None:
        """End the query now and release the session; nothing more is yielded."""
    def __enter__(self) -> RowIterator[_R]: ...
    def __exit__(self, *exc: object) -> bool: ...

class Session:
    """A unit of work on one database, on one pooled connection.

    Reads outside a transaction run on their own; the first write statement opens
    ``BEGIN IMMEDIATE`` (or call ``begin()`` first to make a read-then-write atomic),
    and ``commit()``/``rollback()`` end it. Used as a context manager it commits on
    success, rolls back on an exception, and closes. A session may be passed between
    threads; concurrent calls on one session are serialized.
    """

    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def in_transaction(self) -> bool: ...
    statement_timeout: float | None
    """Seconds a statement (or an executemany batch) may run; None for no limit.
    Starts at ``PROMPTLAB_STATEMENT_TIMEOUT_MS``."""
    def execute(self, sql: str, params: Params = None) -> Result[Row]: ...
    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> Result[Row]:
        """Run one statement once per parameter set; the sets are converted
        before the statement runs, then bound and stepped without the GIL."""
    @overload
    def execute_nested(self, parents_sql: str, children_sql: str,
                       columns: tuple[str, ...], params: Params = None, *,
                       mappings: Literal[False] = False) -> Result[Row]:
        """A one-to-many join as two queries in one read snapshot, joined in C.
        Both return an integer join key first; children come grouped by parent,
        in the parents' order. One row per child, with the named columns from
        its parent or itself; parents without children give none. ``params`` are
        bound to both queries, which must take the same parameters in the same
        order. The rows are RowMappings with ``mappings=True`` (no conversion step)."""
    @overload
    def execute_nested(self, parents_sql: str, children_sql: str,
                       columns: tuple[str, ...], params: Params = None, *,
                       mappings: Literal[True]) -> Result[RowMapping]: ...
    @overload
    def execute_nested(self, parents_sql: str, children_sql: str,
                       columns: tuple[str, ...], params: Params = None, *,
                       mappings: bool) -> Result[Any]: ...
    @overload
    def execute_iter(self, sql: str, params: Params = None, *,
                     mappings: Literal[False] = False) -> RowIterator[Row]:
        """As ``execute``, as a RowIterator: the rows are built a chunk at a time."""
    @overload
    def execute_iter(self, sql: str, params: Params = None, *,
                     mappings: Literal[True]) -> RowIterator[RowMapping]: ...
    @overload
    def execute_iter(self, sql: str, params: Params = None, *,
                     mappings: bool) -> RowIterator[Any]: ...
    @overload
    def execute_nested_iter(self, parents_sql: str, children_sql: str,
                            columns: tuple[str, ...], params: Params = None, *,
                            mappings: Literal[False] = False) -> RowIterator[Row]:
        """As ``execute_nested``, as a RowIterator; the read snapshot is held until
        the iterator is exhausted or closed."""
    @overload
    def execute_nested_iter(self, parents_sql: str, children_sql: str,
                            columns: tuple[str, ...], params: Params = None, *,
                            mappings: Literal[True]) -> RowIterator[RowMapping]: ...
    @overload
    def execute_nested_iter(self, parents_sql: str, children_sql: str,
                            columns: tuple[str, ...], params: Params = None, *,
                            mappings: bool) -> RowIterator[Any]: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Session: ...
    def __exit__(self, *exc: object) -> None: ...  # never swallows an exception

class DatabaseManager:
    """The process-wide registry of databases. ``DatabaseManager()`` is the one instance."""

    def __new__(cls) -> DatabaseManager: ...
    def initialize_database(self, db_file: StrPath) -> None: ...
    @property
    def is_ready(self) -> bool: ...
    @property
    def database_url(self) -> str | None: ...
    @property
    def database_path(self) -> str | None: ...
    def get_session(self, db_file: StrPath | None = None) -> Session:
        """A session on the default database, or on ``db_file`` (initialized first
        when needed). RuntimeError before any initialization when db_file is None."""
    def is_initialized(self) -> bool: ...
    def reset_initialization(self) -> None:
        """Forget every database (open sessions keep working); the next
        initialization checks its file again."""

class Lookup:
    """One query whose first row is read without a Session: a pooled connection is
    checked out, its cached statement bound, stepped once and reset, and the
    connection given back; the row becomes a record built in C.

    ``plan`` is ``(cls, field_names, kinds[, (attr, owner_plan)])``: the first
    ``len(field_names)`` columns become those fields of a new ``cls`` (made with
    ``cls.__new__``, fields set in order as a dataclass ``__init__`` sets them), each
    as stored (kind ``"v"``), as ``bool()`` (``"b"``) or as a timestamp (``"t"``: a
    datetime for ``'YYYY-MM-DD HH:MM:SS[.fff|.ffffff]'``, ``parse_timestamp(text)``
    for other text, other values as stored); the owner plan takes the columns that
    follow, and its record (None when its first column is NULL) goes into ``attr``.
    Without a plan ``first()`` returns the row's values as a tuple."""

    def __init__(self, sql: str, plan: tuple[Any, ...] | None = None,
                 parse_timestamp: Any = None) -> None: ...
    @property
    def sql(self) -> str: ...
    def first(self, db_file: StrPath | None, params: tuple[Any, ...]) -> Any:
        """The first row of the query on ``db_file`` (initialized first when needed,
        as ``get_session(db_file)`` does; None: the default database, as
        ``get_session()``) with the qmark ``params``, as the plan's record, or None
        when there is no row. Errors as ``Session.execute``'s."""

class TraceTally(Iterator[Any]):
    """Iterates over ``records``, giving each dict record as the tuple of its values for
    ``names`` (the INSERT's parameters, in order; any other record as it is), and
    tallies the aggregates trace_experiment stores (``promptlab.store.summaries``) from
    those values as they go by. ``names`` must include experiment_id, latency_ms,
    prompt_tokens, completion_tokens and evaluation."""

    def __init__(self, records: Iterable[Any], experiment_id: Any,
                 names: tuple[str, ...]) -> None: ...
    def __iter__(self) -> TraceTally: ...
    def __next__(self) -> Any: ...
    def summary(self) -> tuple[int, float | None, int | None, int | None, float | None,
                               float | None, tuple[tuple[str, float, int], ...]] | None:
        """``(records, avg_latency_ms, prompt_tokens, completion_tokens,
        avg_prompt_tokens, avg_completion_tokens, ((metric, average, count), ...))`` of
        the records iterated so far, equal to what SQLite computes over them once
        stored; None when a record had a form it does not reproduce exactly."""

def hash_password(password: str, rounds: int | None = None) -> str:
    """bcrypt (``$2b$``) hash of ``password`` at cost ``rounds`` (4 to 31; None: the cost
    for stored passwords, unless ``_set_bcrypt_rounds_for_tests`` changed it); the GIL
    is released while hashing."""

def set_admin_password_if_unusable(db_file: StrPath, password: str) -> bool:
    """Initialize ``db_file``, then give its admin user ``password`` (bcrypt-hashed in C,
    the GIL released) while the admin has no usable password, through the same engine
    function that applies ``PROMPTLAB_ADMIN_PASSWORD``. True when it was set; False when
    the admin already had one (another process may have been first) or there is no
    admin user. ValueError when ``password`` breaks the password rule."""

def _set_bcrypt_rounds_for_tests(rounds: int) -> int:
    """For test suites only, never for production: make ``rounds`` (4 to 31) the bcrypt
    cost of new password hashes in this process (``hash_password`` without ``rounds``,
    ``PROMPTLAB_ADMIN_PASSWORD``, generated admin passwords); returns the previous
    cost. A hash carries its cost, so verification is unaffected. ValueError when out
    of range. Present in every build."""

def admin_password_from_environment() -> "str | None":
    """PROMPTLAB_ADMIN_PASSWORD as initialization reads it; None when unset or empty.
    ValueError when it breaks the password rule."""

def check_password(password: str, name: str = "The password") -> None:
    """ValueError, starting with ``name``, unless ``password`` is 8 to 72 bytes of UTF-8
    without a NUL byte: the rule for every password PromptLab stores."""

PASSWORD_MIN_BYTES: int
PASSWORD_MAX_BYTES: int

def _lock_check_self_test(which: str) -> None:
    """For tests: break a lock rule ("order" or "gil") on purpose; aborts the process
    in builds with assertions (``_debug_checks``)."""

def _fail_allocations_after(n: int) -> int:
    """For tests, in builds with assertions only (absent from release builds): make
    the n-th allocation of the C engine from now fail, once (0 disarms); returns
    the number of engine allocations made since the previous call."""

def _stream_chunk_rows(n: int) -> int:
    """For tests: from now, read results ``n`` rows at a time and run executemany ``n``
    parameter sets at a time (defaults 1024 and 1024); returns the previous rows per
    read chunk. Present in every build."""

def _stream_chunks() -> int:
    """For tests: the number of row chunks built into Results since the previous call."""

_debug_checks: bool
"""True when the C assertions (lock order, locks held, no GIL in the engine) are built in."""
_sanitize: str
"""The sanitizers the core was built with ("thread", "address,undefined"), or ""."""

def _close_idle_connections() -> None:
    """Close the pooled connections no session is using (registered with
    ``os.register_at_fork(before=...)`` and ``atexit``)."""

def _rebuild_row(is_mapping: bool, fields: tuple[str, ...],
                 values: tuple[Any, ...]) -> Row | RowMapping:
    """A Row or RowMapping again (pickle)."""

def verify_password(password: str, password_hash: str) -> bool:
    """True when ``password`` matches the bcrypt hash; False for any other hash
    (including the unusable-password marker)."""

UNUSABLE_PASSWORD: str
"""The marker stored for an admin that has no password yet."""

db_manager: DatabaseManager

def migrations(directory: StrPath | None = None) -> list[dict[str, Any]]:
    """The migration chain in ``directory`` (default: the folder in use), first to head,
    read from disk at each call: dicts with revision, parent (None for the first),
    message, created, filename, checksum, up, down, reversible (False when the down
    section is empty). MigrationError when the files are invalid."""

def migrations_dir() -> str:
    """The folder migrations are read from: $PROMPTLAB_MIGRATIONS_DIR, else the one
    shipped beside the module."""

def database_revision(db_file: StrPath, directory: StrPath | None = None) -> dict[str, Any]:
    """Read a database's revision without writing: {exists, path, revision (None at
    base), version_rows, other_tables, detected, history}. ``detected`` is the revision
    whose layout a database without a revision matches (made by an older PromptLab);
    ``history`` the rows of promptlab_migrations as (revision, checksum, message,
    applied_at, duration_ms) tuples, None without that table. The checks of migrate():
    MigrationError for several version rows or tables that match no PromptLab layout,
    UnknownRevisionError for a revision the chain in ``directory`` does not know."""

def database_schema(db_file: StrPath) -> dict[str, list[tuple[Any, ...]]]:
    """The schema of an existing database, read-only, as PRAGMA rows: objects (type, name,
    tbl, sql), columns (tbl, cid, name, type, notnull, default, pk), indexes (tbl, name,
    unique, origin, partial, sql), index_columns (index, seqno, name), foreign_keys (tbl,
    id, seq, table, from, to, on_update, on_delete; ``to`` is the parent's primary-key
    column where the key leaves it out). Bookkeeping tables are left out."""

def chain_schema(revision: str | None = None,
                 directory: StrPath | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """What the migrations produce up to ``revision`` (None or "head": all, "base":
    nothing), applied to an empty in-memory database; shaped like database_schema()."""

SchemaSide = Union[
    tuple[Literal["database"], StrPath],
    tuple[Literal["revision"], str | None],
    tuple[Literal["sql"], str],
    tuple[Literal["catalog"], Mapping[str, Sequence[tuple[Any, ...]]]],
]
"""A schema to compare: a database file, what the migrations produce up to a revision
(an id, "head", "base"; None: head), declarations run on an empty in-memory database
(CREATE TABLE / CREATE INDEX ...), or a catalog shaped like database_schema()."""

SchemaDifference = tuple[str, str | None, str, str | None, str | None]
"""(kind, table, name, expected, actual): kind "table", "column", "index", "constraint"
or "view-or-trigger"; expected and actual what each side has (a column's declaration
as compared, an index's "(columns)", a table's column names, a view's SQL), None on the
side that lacks it."""

def schema_differences(expected: SchemaSide, actual: SchemaSide,
                       directory: StrPath | None = None, *,
                       legacy: Literal["missing", "one-sided", "ignore", "compare"] = "missing",
                       column_order: bool = False) -> list[SchemaDifference]:
    """How ``actual`` differs from ``expected``, by the C comparator that also recognises
    the layout of an older PromptLab's database: types and defaults as normalized,
    NOT NULL, primary key, AUTOINCREMENT, UNIQUE, REFERENCES, named indexes, multi-column
    UNIQUE/FOREIGN KEY, views and triggers; names without case; column order only with
    ``column_order`` (a table, both sides set, whose expected columns are not the actual
    ones it keeps, in order, followed by the ones it adds). ``legacy``: a legacy_* table
    only the expected side holds is no difference ("missing"), nor one only one side
    holds ("one-sided"); "ignore" leaves them out, "compare" compares them.
    ``directory`` is the migrations folder of "revision" sides. MigrationError when
    declarations do not build or a revision is unknown."""

def normalize_type(sql_type: str) -> str:
    """A declared type as schemas are compared (layout detection, drift, ``db revision``):
    upper case, blanks trimmed, one space between words and none around "(", ")" and
    ",": "varchar ( 10 )" gives "VARCHAR(10)"."""

def normalize_default(expr: str) -> str:
    """A DEFAULT expression as schemas are compared: without outer blanks and enclosing
    parentheses, so "((2))", "(2)" and "2" are the same default."""

def is_legacy_table(name: str) -> bool:
    """True for a table named legacy_* (any case): values kept from older layouts, made by
    the migrations and never declared in the models."""

def is_sql_keyword(name: str) -> bool:
    """True when ``name`` is a keyword of the SQLite the core runs on
    (sqlite3_keyword_check, any case): an identifier of that name must be quoted."""

def migrate(db_file: StrPath, target: str | None = None, backup: bool = False,
            directory: StrPath | None = None) -> dict[str, Any]:
    """Apply the pending migrations up to ``target`` (revision, unique prefix, "head",
    "+N"; None: head), each in its own BEGIN IMMEDIATE transaction. A database made by an
    older PromptLab is recognised and marked first; anything else that is not ours is
    refused before the first write. With ``backup``, a database with tables that needs
    changes is first copied next to itself (SQLite online backup). Returns {path,
    before, after, detected, applied, backup}. The GIL is released throughout."""

def downgrade(db_file: StrPath, target: str, backup: bool = False,
              directory: StrPath | None = None) -> dict[str, Any]:
    """Run the down sections after ``target`` (revision, unique prefix, "base", "-N"),
    newest first, one transaction each; an irreversible migration on the way is refused
    before anything changes. Returns {path, before, after, detected, undone, backup}."""

def migration_script(db_file: StrPath, target: str | None = None, downgrade: bool = False,
                     directory: StrPath | None = None) -> str:
    """The SQL migrate() (or downgrade()) would run on ``db_file``, without running it."""
