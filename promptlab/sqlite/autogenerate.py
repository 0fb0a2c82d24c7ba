"""``promptlab db revision``: write a new migration file, generated from the models.

The tables declared in ``promptlab.sqlite.models`` (``TABLES``) are compared with
the schema the existing migrations produce by the C core's comparator
(``_core.schema_differences``: the models' declarations are run on an empty
in-memory database and catalogued, as the migrations are); this module only
turns the differences it reports into SQL. Added and removed tables, columns
and indexes become ``CREATE``/``DROP``/``ALTER TABLE ... ADD|DROP COLUMN``
statements; a change that ``ALTER TABLE`` cannot make in place (a column's type,
NOT NULL, default, key, UNIQUE or REFERENCES, or a column added anywhere but at
the end) is written as the table rebuild SQLite documents
(https://www.sqlite.org/lang_altertable.html#otheralter): create the new table,
copy the rows, drop the old table, rename, recreate the indexes; PromptLab then
runs ``PRAGMA foreign_key_check`` and rolls the migration back if it broke a
foreign key. The down section is generated the same way, in the other direction.

Before it returns, the new file is checked on a scratch database: upgrading must
produce exactly the models' tables and downgrading the previous schema, or the
file is removed and MigrationError says what differed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from promptlab import _core
from promptlab.sqlite.schema import (
    ColumnSpec,
    Difference,
    Schema,
    TableSpec,
    _is_literal,
    column_sql,
    create_index_sql,
    create_table_sql,
    default_expr,
    describe_difference,
    normalize_default,
    quote,
)

__all__ = [
    "NewRevision", "Plan", "column_sql", "create_index_sql", "create_table_sql",
    "default_expr", "differences", "installed_package_folder", "load_tables", "plan", "quote",
    "revision",
]

StrPath = Union[str, "os.PathLike[str]"]
if TYPE_CHECKING:
    from promptlab._core import SchemaSide as Side
else:
    Side = Tuple[str, Any]


@dataclass
class Plan:
    """SQL that turns one schema into another, and a line per change."""

    statements: List[str] = field(default_factory=list)
    changes: List[str] = field(default_factory=list)

    @property
    def sql(self) -> str:
        return "\n".join(self.statements) + ("\n" if self.statements else "")


def _can_add(col: ColumnSpec) -> bool:
    """Whether ALTER TABLE ADD COLUMN accepts the column."""
    if col.primary_key or col.unique or col.autoincrement:
        return False
    default = normalize_default(col.default_sql)
    if default is not None and not _is_literal(default):
        return False  # CURRENT_* and expressions are refused
    if not col.nullable and (default is None or default.upper() == "NULL"):
        return False
    if col.references and default not in (None, "NULL"):
        return False
    return True


def _can_drop(col: ColumnSpec, table: TableSpec) -> bool:
    """Whether ALTER TABLE DROP COLUMN can remove the column."""
    if col.primary_key or col.unique or col.references or col.autoincrement:
        return False
    word = re.compile(rf"\b{re.escape(col.name)}\b", re.IGNORECASE)
    return not any(word.search(c) for c in table.constraints)


def _rebuild(old: TableSpec, new: TableSpec, reasons: Sequence[str]) -> List[str]:
    """The documented 12-step rebuild of one table, as statements."""
    tmp = f"{new.name}__rebuild"
    names, exprs = [], []
    for col in new.columns:
        before = old.column(col.name)
        if before is None:
            continue
        expr = quote(before.name)
        if not col.nullable and before.nullable and col.default_sql is not None:
            expr = f"COALESCE({expr}, {default_expr(col.default_sql)})"
        names.append(quote(col.name))
        exprs.append(expr)
    out = [
        f"-- Rebuild {new.name}: {'; '.join(reasons)}.",
        "-- ALTER TABLE cannot do this in place; the documented procedure (new table, copy,",
        "-- drop, rename, indexes) runs with foreign keys off inside the migration's",
        "-- transaction, and PRAGMA foreign_key_check must pass afterwards.",
    ]
    for col in new.columns:
        if old.column(col.name) is None and not col.nullable and col.default_sql is None:
            out.append(f"-- Column {col.name} is NOT NULL without a default: the copy fails "
                       "if the table has rows; give it a default.")
    out.append(create_table_sql(new, tmp))
    if names:
        out.append(f"INSERT INTO {quote(tmp)} ({', '.join(names)})\n"
                   f"    SELECT {', '.join(exprs)} FROM {quote(old.name)} ORDER BY rowid;")
    out.append(f"DROP TABLE {quote(old.name)};")
    out.append(f"ALTER TABLE {quote(tmp)} RENAME TO {quote(new.name)};")
    out.extend(create_index_sql(i, new.name) for i in new.indexes)
    out.append(f"-- PRAGMA foreign_key_check({new.name}) runs after the migration.")
    return out


def differences(expected: Side, actual: Side) -> List[Difference]:
    """How schema ``actual`` differs from ``expected`` as a plan needs it: from the core's
    comparator, with column order, and without the ``legacy_*`` tables only one side has
    (the migrations made them to keep values of older layouts; models never declare
    them)."""
    return _core.schema_differences(expected, actual, legacy="one-sided", column_order=True)


def _plan_table(old: TableSpec, new: TableSpec, found: Sequence[Difference], plan: Plan,
                force_rebuild: bool) -> None:
    """Add to ``plan`` what turns table ``old`` into ``new``, which differ by ``found``."""
    t = new.name
    column = {name.lower(): (want, have) for kind, _, name, want, have in found
              if kind == "column"}
    index = {name.lower(): (want, have) for kind, _, name, want, have in found
             if kind == "index"}
    added = [c for c in new.columns if column.get(c.name.lower(), ("", ""))[1] is None]
    removed = [c for c in old.columns if column.get(c.name.lower(), ("", ""))[0] is None]
    changed = [(c.name, *column[c.name.lower()]) for c in new.columns
               if c.name.lower() in column and None not in column[c.name.lower()]]
    drop_idx = [i for i in old.indexes if index.get(i.name.lower(), (None, None))[1] is not None]
    make_idx = [i for i in new.indexes if index.get(i.name.lower(), (None, None))[0] is not None]
    declared = {c.name.lower(): column[c.name.lower()][0] for c in added}  # as compared
    was = {c.name.lower(): column[c.name.lower()][1] for c in removed}

    reasons = [f"column {name} becomes {want} (was {have})" for name, want, have in changed]
    if any(kind == "table" for kind, *_ in found):
        reasons.append("the column order changes")
    for col in added:
        if not _can_add(col):
            reasons.append(f"new column {col.name} ({declared[col.name.lower()]}) cannot be "
                           "added in place")
    for col in removed:
        if not _can_drop(col, old):
            reasons.append(f"column {col.name} ({was[col.name.lower()]}) cannot be dropped "
                           "in place")
    if any(kind == "constraint" for kind, *_ in found):
        reasons.append("its table constraints change")

    for col in added:
        plan.changes.append(f"+ column {t}.{col.name} {declared[col.name.lower()]}")
    for col in removed:
        plan.changes.append(f"- column {t}.{col.name}")
    for name, want, have in changed:
        plan.changes.append(f"~ column {t}.{name}: {have} -> {want}")
    for idx in drop_idx:
        plan.changes.append(f"- index {idx.name} on {t}")
    for idx in make_idx:
        plan.changes.append(f"+ index {idx.name} on {t} ({', '.join(idx.columns)})")
    if reasons and not (added or removed or changed):
        plan.changes.append(f"~ table {t}: {'; '.join(reasons)}")

    if reasons or (force_rebuild and (added or removed or changed)):
        plan.statements.extend(_rebuild(old, new, reasons or ["rebuilt instead of altered"]))
        plan.statements.append("")
        return
    out = plan.statements
    for idx in drop_idx:
        out.append(f"DROP INDEX {quote(idx.name)};")
    for col in removed:
        out.append(f"-- The values of {t}.{col.name} are lost.")
        out.append(f"ALTER TABLE {quote(t)} DROP COLUMN {quote(col.name)};")
    for col in added:
        out.append(f"ALTER TABLE {quote(t)} ADD COLUMN {column_sql(col, inline_pk=False)};")
    for idx in make_idx:
        out.append(create_index_sql(idx, t))
    if drop_idx or removed or added or make_idx:
        out.append("")


def plan(old: Schema, new: Schema, found: Sequence[Difference],
         force_rebuild: bool = False) -> Plan:
    """The statements that turn schema ``old`` into schema ``new``, which differ by
    ``found`` (``differences(new, old)``: the core compares, this builds the SQL).

    With ``force_rebuild`` every changed table is rebuilt instead of altered. Views and
    triggers are left alone: models do not declare them.
    """
    result = Plan()
    by_table: Dict[str, List[Difference]] = {}
    for d in found:
        kind, owner, name = d[0], d[1], d[2]
        if kind != "view-or-trigger":
            by_table.setdefault((name if kind == "table" else owner or "").lower(), []).append(d)
    for name, table in new.tables.items():
        mine = by_table.get(name.lower(), [])
        before = old.table(name)
        if any(kind == "table" and have is None for kind, _, _, _, have in mine):
            result.changes.append(f"+ table {name}")
            result.statements.append(create_table_sql(table))
            result.statements.extend(create_index_sql(i, name) for i in table.indexes)
            result.statements.append("")
        elif mine and before is not None:
            _plan_table(before, table, mine, result, force_rebuild)
    for name in reversed(list(old.tables)):
        if any(kind == "table" and want is None
               for kind, _, _, want, _ in by_table.get(name.lower(), [])):
            result.changes.append(f"- table {name}")
            result.statements.append(f"-- The rows of {name} are lost.")
            result.statements.append(f"DROP TABLE {quote(name)};")
            result.statements.append("")
    while result.statements and result.statements[-1] == "":
        result.statements.pop()
    return result


# -- models -------------------------------------------------------------------------


def load_tables(models: Any = None) -> Sequence[Any]:
    """The ``TABLES`` of ``models``: None for ``promptlab.sqlite.models``, a path to a
    ``.py`` file, a module name, a module, or a sequence of tables."""
    if models is None or (isinstance(models, str) and not models.endswith(".py")
                          and os.sep not in models):
        name = models or "promptlab.sqlite.models"
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise _core.MigrationError(f"cannot import the models module {name}: {exc}; "
                                       "pass --models FILE.") from exc
    elif isinstance(models, (str, os.PathLike)) and (
            str(models).endswith(".py") or os.sep in str(models)):
        path = Path(models)
        if not path.is_file():
            raise _core.MigrationError(f"{path}: no such models file; pass the path of a "
                                       "Python file that declares TABLES.")
        name = f"_promptlab_models_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            # No loader for the file's suffix (a path without ".py").
            raise _core.MigrationError(f"{path}: cannot load the models file: not a Python "
                                       "source file; pass a .py file that declares TABLES.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it runs
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise _core.MigrationError(f"{path}: cannot load the models file: "
                                       f"{type(exc).__name__}: {exc}") from exc
    else:
        module = models
    tables = getattr(module, "TABLES", module)
    if not isinstance(tables, Iterable) or isinstance(tables, (str, bytes)):
        raise _core.MigrationError(f"{models!r} declares no TABLES; declare the tables as "
                                   "promptlab/sqlite/models.py does.")
    return list(tables)


# -- writing a revision ---------------------------------------------------------------


@dataclass(frozen=True)
class NewRevision:
    """What ``revision()`` did: ``path`` is None when nothing was written."""

    path: Optional[Path]
    revision: Optional[str]
    parent: Optional[str]
    changes: List[str]


def _next_filename(folder: Path, message: str) -> str:
    numbers = [int(m.group(1)) for p in folder.glob("*.sql")
               if (m := re.match(r"(\d+)_", p.name))]
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "migration"
    return f"{(max(numbers) + 1) if numbers else 1:04d}_{slug}.sql"


def _render(revision: str, parent: Optional[str], message: str, changes: Sequence[str],
            source: str, up: str, down: str) -> str:
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    one_line = " ".join(message.split())
    head = [
        f"-- revision: {revision}",
        f"-- parent: {parent or 'base'}",
        f"-- message: {one_line}",
        f"-- created: {created}",
        "--",
    ]
    if changes:
        head.append(f"-- Generated by `promptlab db revision` from {source}:")
        head.extend(f"--   {c}" for c in changes)
        head.append("-- Review it before committing; every migration runs in one transaction.")
    else:
        head.append("-- Written by `promptlab db revision --empty`: fill in both sections.")
        head.append("-- An empty down section makes the migration irreversible.")
    return "\n".join(head) + f"\n\n-- migrate:up\n{up}\n-- migrate:down\n{down}"


def _check(folder: Path, models: Side, previous: Side) -> List[str]:
    """Upgrade a scratch database with the chain in ``folder`` and downgrade it once:
    how it differs from the models (``legacy_*`` tables left out) and then from the
    previous schema, as the core compares them."""
    problems: List[str] = []
    with tempfile.TemporaryDirectory(prefix="promptlab-revision-") as tmp:
        db = os.path.join(tmp, "check.db")
        _core.migrate(db, directory=str(folder))
        problems += [f"after upgrading: {describe_difference(*d)}" for d in
                     _core.schema_differences(models, ("database", db), legacy="ignore")]
        _core.downgrade(db, "-1", directory=str(folder))
        problems += [f"after downgrading: {describe_difference(*d)}" for d in
                     _core.schema_differences(previous, ("database", db))]
    return problems


def _site_dirs() -> List[Path]:
    """The folders installed packages live in."""
    import site
    import sysconfig

    dirs = [sysconfig.get_paths().get(k) for k in ("purelib", "platlib")]
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # a virtualenv's old site.py
        pass
    return [Path(d).resolve() for d in dirs if d]


def installed_package_folder(folder: StrPath) -> Optional[Path]:
    """The installed package that holds ``folder``, or None when ``folder`` is not in
    one: a ``site-packages``/``dist-packages`` folder (or the interpreter's own site
    folders) on its path."""
    path = Path(folder).resolve()
    site_dirs = _site_dirs()
    for parent in (path, *path.parents):
        if parent.parent.name in ("site-packages", "dist-packages") or \
                parent.parent in site_dirs:
            return parent
    return None


def _is_source_checkout(folder: Path) -> bool:
    """True for ``<checkout>/migrations/versions`` of a PromptLab source tree: what
    ``promptlab db revision`` writes into by default."""
    root = folder.resolve().parent.parent
    return (folder.resolve() == root / "migrations" / "versions"
            and (root / "pyproject.toml").is_file()
            and (root / "promptlab" / "sqlite" / "models.py").is_file()
            and installed_package_folder(folder) is None)


def _writable_folder(directory: Optional[StrPath]) -> Path:
    """The folder a new migration goes to; MigrationError for one inside an installed
    package, and for the default folder when it is not a source checkout's."""
    if directory is not None:
        folder = Path(directory)
    else:
        folder = Path(_core.migrations_dir())
        chosen = bool(os.environ.get("PROMPTLAB_MIGRATIONS_DIR"))
        if not chosen and not _is_source_checkout(folder):
            raise _core.MigrationError(
                f"{folder} is the migrations folder of an installed PromptLab, not of a "
                "source checkout: a migration written there would change the installed "
                "package and be lost on its next upgrade. Pass --dir DIR (the migrations "
                "folder of your checkout: migrations/versions), or run the command from a "
                "source checkout installed with pip install -e.")
    package = installed_package_folder(folder)
    if package is not None:
        raise _core.MigrationError(
            f"{folder} is inside the installed package {package}: PromptLab never writes a "
            "migration into an installed package. Pass --dir with a folder of your own "
            "(copy the migration files there first), or use a source checkout.")
    return folder


def _database_schema(db_file: StrPath, folder: Path) -> Dict[str, Any]:
    """The catalog of ``db_file``, which must be at the head of ``folder`` and
    hold exactly what the migrations produce (Alembic's autogenerate also needs an
    up-to-date database)."""
    from promptlab.sqlite.migrations import status  # migrations imports this module

    state = status(db_file, directory=folder)
    if not state.exists:
        raise _core.DatabasePathError(
            f"{state.path} does not exist: -d names the database to compare the models "
            "with. Create it (promptlab db init -d FILE), or leave out -d to compare with "
            "the schema the migrations produce.")
    if not state.up_to_date:
        at = (f"the layout of revision {state.detected} (an older PromptLab's)"
              if state.detected else f"revision {state.current or 'base'}")
        raise _core.MigrationError(
            f"{state.path} is at {at}, not at the head {state.head} of {folder}: upgrade it "
            f"first (promptlab db migrate -d {db_file}), so that the new migration follows "
            "what it already has. Nothing was written.")
    schema_drift = [str(d) for d in state.drift if d.kind == "schema"]
    if schema_drift:
        raise _core.MigrationError(
            f"{state.path} differs from the schema its migrations produce "
            f"({'; '.join(schema_drift[:5])}): a migration generated from it would not "
            "apply to the other databases. Undo those changes, or leave out -d to "
            "generate from the migrations alone. Nothing was written.")
    return _core.database_schema(state.path)


def revision(message: str, directory: Optional[StrPath] = None, empty: bool = False,
             models: Any = None, db_file: Optional[StrPath] = None) -> NewRevision:
    """Write a new migration file whose parent is the head of ``directory``.

    Without ``empty``, its SQL is generated from the difference between ``models``
    (see :func:`load_tables`) and the schema the migrations produce, or, with
    ``db_file``, that database's schema (which must be at the head and match the
    migrations); when there is none, nothing is written and the result's ``path``
    is None. ``directory`` None is the folder in use, which must be a source
    checkout's (or ``$PROMPTLAB_MIGRATIONS_DIR``): nothing is ever written into an
    installed package.
    """
    if not message or not message.strip():
        raise _core.MigrationError("a revision needs a message (-m \"what it changes\").")
    folder = _writable_folder(directory)
    if not folder.is_dir():
        raise _core.MigrationError(f"{folder}: no such migrations folder; create it or pass "
                                   "--dir.")
    chain = _core.migrations(str(folder))
    parent = chain[-1]["revision"] if chain else None
    changes: List[str] = []
    up = down = ""
    if not empty:
        source = "promptlab/sqlite/models.py" if models is None else str(models)
        wanted = Schema.from_models(load_tables(models))
        if db_file is not None:
            catalog = _database_schema(db_file, folder)
            source += f" against {os.fspath(db_file)}"
        else:
            catalog = _core.chain_schema(None, str(folder))
        current = Schema.from_catalog(catalog)
        wanted_side: Side = ("sql", wanted.sql())
        current_side: Side = ("catalog", catalog)
        ahead = differences(wanted_side, current_side)
        back = differences(current_side, wanted_side)
        forward = plan(current, wanted, ahead)
        if not forward.changes:
            return NewRevision(None, None, parent, [])
        changes = forward.changes
    new_rev = secrets.token_hex(6)
    path = folder / _next_filename(folder, message)
    for force in ((False, True) if not empty else (False,)):
        if not empty:
            up = plan(current, wanted, ahead, force).sql
            down = plan(wanted, current, back, force).sql
        text = _render(new_rev, parent, message, changes, "" if empty else source, up, down)
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
        if empty:
            break
        try:
            problems = _check(folder, wanted_side, current_side)
        except _core.DatabaseError as exc:
            problems = [str(exc)]
        if not problems:
            break
        path.unlink()
        if force:
            raise _core.MigrationError(
                f"{path}: the generated migration does not reproduce the models, so it was "
                f"not written: {'; '.join(problems[:5])}. Write this migration by hand "
                "(promptlab db revision --empty).")
    return NewRevision(path, new_rev, parent, changes)
