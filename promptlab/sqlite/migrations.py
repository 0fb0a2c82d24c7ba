"""Schema migrations: the chain, where a database stands on it, moving it, drift.

The C core does the work (``promptlab._core``: ``migrate``, ``downgrade``,
``migration_script``, ``database_revision``, ``chain_schema``): each migration in
its own transaction under the write lock, a database made by an older
PromptLab recognised by its layout and marked at its revision first, and
nothing written to a file that is not ours. This module gives those answers
names and types, and checks for drift. ``promptlab db ...`` is a thin layer
over it; ``docs/migrations.md`` explains the workflow.

Every function takes ``directory``, the folder of migration files; None means
the folder in use: ``$PROMPTLAB_MIGRATIONS_DIR``, else the one shipped with
PromptLab. Files are read from disk at each call, so an edited file is seen.
"""

from __future__ import annotations

import os

from promptlab import _core
from promptlab.sqlite.database_manager import db_manager

# Writing revisions (promptlab.sqlite.autogenerate) and describing schema differences
# (promptlab.sqlite.schema) load on first use: `promptlab db status` needs neither
# when the database has not drifted. The values below are plain frozen
# classes, not dataclasses, and typing is for type checkers only: `dataclasses`
# (inspect, ast, ...) and `typing` cost more start-up than the rest of the command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Union

    from promptlab.sqlite.autogenerate import NewRevision

    StrPath = Union[str, "os.PathLike[str]"]

__all__ = [
    "Applied", "Drift", "Migration", "MigrationRun", "NewRevision", "Status", "downgrade",
    "head_revision", "migrations", "revision", "sql", "status", "upgrade",
]


class _Frozen:
    """A frozen value compared, hashed and shown by its ``_fields`` (in ``repr``,
    those not in ``_hidden``), as ``@dataclass(frozen=True)`` would."""

    __slots__ = ()
    _fields: tuple = ()
    _hidden: tuple = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields
                          if name not in self._hidden)
        return f"{type(self).__name__}({shown})"


class Migration(_Frozen):
    """One migration file.

    ``reversible`` is False when the down section is empty: the migration cannot be
    undone. ``up_postgresql``/``down_postgresql``: the file's PostgreSQL sections, None
    when it has none; ``checksum`` covers what runs on SQLite (the text before them),
    ``checksum_postgresql`` the whole file."""

    __slots__ = ("revision", "parent", "message", "created", "filename", "checksum", "up",
                 "down", "reversible", "up_postgresql", "down_postgresql",
                 "checksum_postgresql")
    _fields = __slots__
    _hidden = ("up", "down", "up_postgresql", "down_postgresql", "checksum_postgresql")
    revision: str
    parent: Optional[str]
    message: str
    created: str
    filename: str
    checksum: str
    up: str
    down: str
    reversible: bool
    up_postgresql: Optional[str]
    down_postgresql: Optional[str]
    checksum_postgresql: Optional[str]

    def __init__(self, revision: str, parent: Optional[str], message: str, created: str,
                 filename: str, checksum: str, up: str, down: str,
                 reversible: bool = True, up_postgresql: Optional[str] = None,
                 down_postgresql: Optional[str] = None,
                 checksum_postgresql: Optional[str] = None) -> None:
        self._set(revision=revision, parent=parent, message=message, created=created,
                  filename=filename, checksum=checksum, up=up, down=down,
                  reversible=reversible, up_postgresql=up_postgresql,
                  down_postgresql=down_postgresql, checksum_postgresql=checksum_postgresql)


class Applied(_Frozen):
    """A row of the history table ``promptlab_migrations``."""

    __slots__ = ("revision", "checksum", "message", "applied_at", "duration_ms")
    _fields = __slots__
    revision: str
    checksum: str
    message: str
    applied_at: str
    duration_ms: float

    def __init__(self, revision: str, checksum: str, message: str, applied_at: str,
                 duration_ms: float) -> None:
        self._set(revision=revision, checksum=checksum, message=message,
                  applied_at=applied_at, duration_ms=duration_ms)


class Drift(_Frozen):
    """One way a database differs from what its migrations say it should be.

    ``kind`` is ``"checksum"`` (an applied migration's file changed since),
    ``"missing"`` (an applied revision has no file any more), ``"history"`` (the
    history records a revision the database is not at) or ``"schema"`` (the live
    schema differs from what the migrations produce).
    """

    __slots__ = ("kind", "detail", "revision")
    _fields = __slots__
    kind: str
    detail: str
    revision: Optional[str]

    def __init__(self, kind: str, detail: str, revision: Optional[str] = None) -> None:
        self._set(kind=kind, detail=detail, revision=revision)

    def __str__(self) -> str:
        return self.detail


class Status(_Frozen):
    """Where a database stands on the migration chain.

    ``detected``: for a database made by an older PromptLab (tables, no revision),
    the revision its layout matches, where the next upgrade marks it.
    ``schema_compared``: False when only the history was checked for drift (a
    PostgreSQL database, whose live schema is not compared yet)."""

    __slots__ = ("path", "exists", "current", "head", "pending", "detected", "drift",
                 "history", "schema_compared")
    _fields = __slots__
    path: str
    exists: bool
    current: Optional[str]
    head: Optional[str]
    pending: List[Migration]
    detected: Optional[str]
    drift: List[Drift]
    history: List[Applied]
    schema_compared: bool

    def __init__(self, path: str, exists: bool, current: Optional[str], head: Optional[str],
                 pending: List[Migration], detected: Optional[str] = None,
                 drift: Optional[List[Drift]] = None,
                 history: Optional[List[Applied]] = None,
                 schema_compared: bool = True) -> None:
        self._set(path=path, exists=exists, current=current, head=head, pending=pending,
                  detected=detected, drift=[] if drift is None else drift,
                  history=[] if history is None else history,
                  schema_compared=schema_compared)

    # Lists inside: not hashable, as the dataclass was not.
    __hash__ = None  # type: ignore[assignment]

    @property
    def up_to_date(self) -> bool:
        return self.exists and not self.pending and self.detected is None

    @property
    def drifted(self) -> bool:
        return bool(self.drift)

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict (``promptlab db status --json``)."""
        return {
            "path": self.path,
            "exists": self.exists,
            "current": self.current,
            "head": self.head,
            "pending": [m.revision for m in self.pending],
            "detected": self.detected,
            "drift": [{"kind": d.kind, "revision": d.revision, "detail": d.detail}
                      for d in self.drift],
            "up_to_date": self.up_to_date,
            "schema_compared": self.schema_compared,
        }


class MigrationRun(_Frozen):
    """What ``upgrade`` or ``downgrade`` did to one database: its ``path``, the
    revision ``before`` (None: base, or a database without a revision) and
    ``current`` (now), the revision an older PromptLab's database was ``detected``
    at and marked, the ``count`` of migrations applied (upgrade) or undone
    (downgrade), and where the ``backup`` taken before the change is, if one was."""

    __slots__ = ("path", "before", "current", "detected", "count", "backup")
    _fields = __slots__
    path: str
    before: Optional[str]
    current: Optional[str]
    detected: Optional[str]
    count: int
    backup: Optional[str]

    def __init__(self, path: str, before: Optional[str], current: Optional[str],
                 detected: Optional[str], count: int, backup: Optional[str]) -> None:
        self._set(path=path, before=before, current=current, detected=detected,
                  count=count, backup=backup)


def __getattr__(name: str) -> object:
    if name == "NewRevision":
        from promptlab.sqlite.autogenerate import NewRevision

        return NewRevision
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def revision(message: str, directory: Optional[StrPath] = None, empty: bool = False,
             models: Any = None, db_file: Optional[StrPath] = None) -> NewRevision:
    """Write a new migration file after the head (``promptlab.sqlite.autogenerate``,
    which documents it); its ``path`` is None when there was nothing to write."""
    from promptlab.sqlite.autogenerate import revision as write_revision

    return write_revision(message, directory, empty=empty, models=models, db_file=db_file)


def _dir(directory: Optional[StrPath]) -> Optional[str]:
    return os.fspath(directory) if directory is not None else None


def is_postgres_url(db_file: Any) -> bool:
    """Whether ``db_file`` names a PostgreSQL database (``postgresql://`` or
    ``postgres://``)."""
    return isinstance(db_file, str) and db_file.startswith(("postgresql://", "postgres://"))


def migrations(directory: Optional[StrPath] = None) -> List[Migration]:
    """The migration chain, first to head (MigrationError when the files are invalid)."""
    return [Migration(**m) for m in _core.migrations(_dir(directory))]


def head_revision(directory: Optional[StrPath] = None) -> Optional[str]:
    """The newest revision of the chain, or None when there is no migration."""
    chain = migrations(directory)
    return chain[-1].revision if chain else None


def status(db_file: StrPath, directory: Optional[StrPath] = None,
           check_drift: bool = True) -> Status:
    """Read where ``db_file`` stands without writing to it.

    A missing file has every migration pending. The C core checks the rest, as
    ``upgrade`` does: a database at a revision this version does not know raises
    UnknownRevisionError; one with several version rows, or with tables that are
    not a PromptLab layout, raises MigrationError. With ``check_drift`` the
    history's checksums are compared with the files, and the live schema with
    the one the migrations produce at the database's revision.
    """
    if is_postgres_url(db_file):
        return _postgres_status(str(db_file), directory, check_drift)
    chain = migrations(directory)
    info = _core.database_revision(db_file, _dir(directory))
    head = chain[-1].revision if chain else None
    if not info["exists"]:
        return Status(info["path"], False, None, head, chain)
    current = info["revision"]  # database_revision refused one the chain does not know
    known = [m.revision for m in chain]
    position = current if current is not None else info["detected"]
    start = known.index(position) + 1 if position is not None else 0
    history = [Applied(*row) for row in (info["history"] or [])]
    drift: List[Drift] = []
    if check_drift:
        drift = _drift(info["path"], chain, current, history, info["detected"], directory)
    return Status(info["path"], True, current, head, chain[start:], info["detected"], drift,
                  history)


def _postgres_status(url: str, directory: Optional[StrPath], check_drift: bool) -> Status:
    """``status`` of a PostgreSQL database: its revision, pending migrations and the
    history's drift (checksums of the whole files); its live schema is not compared
    yet (``schema_compared`` is False)."""
    chain = migrations(directory)
    info = _core._postgres_revision(url, _dir(directory))
    current = info["revision"]
    known = [m.revision for m in chain]
    start = known.index(current) + 1 if current is not None else 0
    history = [Applied(*row) for row in (info["history"] or [])]
    drift = (_history_drift(chain, current, history, lambda m: m.checksum_postgresql)
             if check_drift else [])
    return Status(info["path"], True, current, chain[-1].revision if chain else None,
                  chain[start:], None, drift, history, schema_compared=False)


def _history_drift(chain: List[Migration], current: Optional[str], history: List[Applied],
                   checksum_of: Any) -> List[Drift]:
    """The history's drift: revisions no file declares, files changed since they were
    applied (``checksum_of(migration)``: the checksum its backend records), and
    revisions recorded beyond the current one."""
    out: List[Drift] = []
    by_rev = {m.revision: (i, m) for i, m in enumerate(chain)}
    at = by_rev[current][0] if current is not None else -1
    for row in history:
        found = by_rev.get(row.revision)
        if found is None:
            out.append(Drift("missing", f"revision {row.revision} was applied on "
                             f"{row.applied_at} but no migration file declares it any more",
                             row.revision))
            continue
        index, m = found
        if checksum_of(m) != row.checksum:
            out.append(Drift("checksum", f"{m.filename} ({m.revision}) changed after it was "
                             f"applied on {row.applied_at} (checksum {row.checksum} then, "
                             f"{checksum_of(m)} now)", m.revision))
        if index > at:
            out.append(Drift("history", f"the history records {m.revision} ({m.filename}) "
                             f"as applied, but the database is at "
                             f"{current or 'base'}", m.revision))
    return out


def _drift(path: str, chain: List[Migration], current: Optional[str], history: List[Applied],
           detected: Optional[str], directory: Optional[StrPath]) -> List[Drift]:
    out = _history_drift(chain, current, history, lambda m: m.checksum)
    if detected is None and not _is_shipped_head(path, chain, current):
        # The core compares (the comparator that also recognises layouts); only the
        # sentences are made here, and only when there is a difference.
        differ = _core.schema_differences(("catalog", _chain_schema(chain, current, directory)),
                                          ("database", path))
        if differ:
            from promptlab.sqlite.schema import describe_difference

            out.extend(Drift("schema", f"schema: {describe_difference(*d)}") for d in differ)
    return out


def _is_shipped_head(path: str, chain: List[Migration], current: Optional[str]) -> bool:
    """True when the database is at the head of the shipped chain, unchanged, and its
    schema objects are, SQL text for SQL text, the ones recorded for that head
    (``promptlab.sqlite.head_schema``): then there is no drift to look for, without
    running the chain in memory (the cost of ``db status``). Anything else, or any
    doubt, is left to the comparator."""
    from promptlab.sqlite import head_schema

    if current != head_schema.REVISION or \
            tuple(m.checksum for m in chain) != head_schema.CHECKSUMS:
        return False
    return _core.database_schema(path) == head_schema.CATALOG


def write_head_schema() -> str:
    """Write ``promptlab/sqlite/head_schema.py`` for the chain in use (run it after
    adding a migration: ``python -m promptlab.sqlite.head_schema``). Returns its path."""
    import os as _os

    chain = migrations()
    catalog = _core.chain_schema("head")
    lines = ['"""The schema catalog (`_core.chain_schema("head")`: objects, columns, indexes,',
             "their columns, foreign keys) the shipped migrations make at their head, and the",
             "files' checksums: `promptlab db status` compares a database at that head with",
             "this instead of running the chain in memory. Generated by `python -m",
             "promptlab.sqlite.head_schema` (tests/test_head_schema.py fails while it is",
             'stale); do not edit."""', "",
             f"REVISION = {chain[-1].revision!r}",
             f"CHECKSUMS = {tuple(m.checksum for m in chain)!r}",
             'CATALOG: "dict[str, list[tuple]]" = {']
    for part, rows in catalog.items():
        lines.append(f"    {part!r}: [")
        lines += [f"        {tuple(row)!r}," for row in rows]
        lines.append("    ],")
    lines += ["}", "", 'if __name__ == "__main__":',
              "    from promptlab.sqlite.migrations import write_head_schema", "",
              "    print(write_head_schema())", ""]
    path = _os.path.join(_os.path.dirname(__file__), "head_schema.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


# The schemas the migrations produce, by revision, folder and the checksums of the
# files up to that revision (so an edited file is seen, as everywhere here).
_CHAIN_SCHEMAS: Dict[Any, Any] = {}


def _chain_schema(chain: List[Migration], current: Optional[str],
                  directory: Optional[StrPath]) -> Any:
    """``_core.chain_schema(current or "base", directory)``, computed once per process
    for the same migration files (it runs the chain on an in-memory database)."""
    upto = [m.checksum for m in chain]
    if current is not None:
        upto = upto[:[m.revision for m in chain].index(current) + 1]
    else:
        upto = []
    key = (current, _dir(directory), tuple(upto))
    catalog = _CHAIN_SCHEMAS.get(key)
    if catalog is None:
        catalog = _core.chain_schema(current or "base", _dir(directory))
        if len(_CHAIN_SCHEMAS) >= 32:
            _CHAIN_SCHEMAS.clear()
        _CHAIN_SCHEMAS[key] = catalog
    return catalog


def upgrade(db_file: StrPath, to: Optional[str] = None, backup: bool = False,
            directory: Optional[StrPath] = None) -> MigrationRun:
    """Apply the pending migrations of ``db_file`` up to ``to`` (a revision, a unique
    prefix of one, ``"+N"``; None or ``"head"``: all), each in its own transaction.

    A missing file (and its folders) is created. A database made by an older
    PromptLab is recognised and marked at its revision first. With ``backup``, a
    database that holds tables and needs changes is first copied next to itself
    with SQLite's online backup API (``MigrationRun.backup`` says where). At head,
    the admin user is ensured as ``initialize_database`` does.
    """
    run = _core.migrate(db_file, to, backup, _dir(directory))
    if (directory is None and run["after"] is not None and run["after"] == head_revision()
            and not is_postgres_url(db_file)):  # sessions on PostgreSQL: issue 15
        db_manager.initialize_database(run["path"])
    return MigrationRun(run["path"], run["before"], run["after"], run["detected"],
                        run["applied"], run["backup"])


def downgrade(db_file: StrPath, to: str, backup: bool = False,
              directory: Optional[StrPath] = None) -> MigrationRun:
    """Undo migrations of ``db_file`` down to ``to`` (a revision, a unique prefix,
    ``"-N"`` or ``"base"``), running the down sections newest first, each in its own
    transaction. An irreversible migration on the way (empty down section) is
    refused before anything changes. ``backup`` as for :func:`upgrade`.

    In a process that already initialized this file, sessions keep their view of
    the registry: call ``reset_initialization()`` before using it again.
    """
    run = _core.downgrade(db_file, to, backup, _dir(directory))
    return MigrationRun(run["path"], run["before"], run["after"], run["detected"],
                        run["undone"], run["backup"])


def sql(db_file: StrPath, to: Optional[str] = None, downgrade: bool = False,
        directory: Optional[StrPath] = None) -> str:
    """The SQL that :func:`upgrade` (or :func:`downgrade`) would run, without running it."""
    return _core.migration_script(db_file, to, downgrade, _dir(directory))
