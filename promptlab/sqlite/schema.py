"""Schemas as data: read from a database, from the migrations, or from the models.

The C core catalogues a schema (``_core.database_schema`` for a database file,
``_core.chain_schema`` for what the migrations produce) as rows of PRAGMA
output. This module turns those rows, or the ``TABLES`` declared in
``promptlab.sqlite.models``, into :class:`Schema` values, writes a schema as
declarations (CREATE TABLE / CREATE INDEX, which ``promptlab db revision``
builds its migrations from), and puts the differences between two schemas into
sentences.

It does not compare schemas: the C core does, once, for every path
(``_core.schema_differences``: recognising the layout of an older PromptLab's
database, drift in ``promptlab db status``, ``promptlab db revision``). Models
are compared by running their declarations on an empty in-memory database and
cataloguing it, as the migrations are. Which tables are legacy ones (``legacy_*``:
values kept from older layouts, made by the migrations and never declared in the
models) and how declared types and DEFAULT expressions are normalized is the
core's rule too (``_core.is_legacy_table``, ``_core.normalize_type``,
``_core.normalize_default``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from promptlab import _core

_AUTOINCREMENT = re.compile(r"\bAUTOINCREMENT\b", re.IGNORECASE)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_STRING = re.compile(r"'(?:[^']|'')*'\Z")
_BLOB = re.compile(r"[xX]'[0-9A-Fa-f]*'\Z")

Difference = Tuple[str, Optional[str], str, Optional[str], Optional[str]]
"""A row of ``_core.schema_differences``: (kind, table, name, expected, actual)."""


def quote(name: str) -> str:
    """An identifier as SQL: bare when plain and not one of SQLite's keywords (asked of
    the SQLite PromptLab runs on), else in double quotes."""
    if _PLAIN.match(name) and not _core.is_sql_keyword(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(quote(n) for n in names)


def is_legacy(name: str) -> bool:
    """True for a ``legacy_*`` table, in any case."""
    return _core.is_legacy_table(name)


def normalize_type(sql_type: Optional[str]) -> str:
    """A declared type as compared: upper case, single spaces, none around parentheses
    and commas (``VARCHAR (10)`` is ``VARCHAR(10)``)."""
    return _core.normalize_type(sql_type or "")


def normalize_default(default_sql: Optional[str]) -> Optional[str]:
    """A DEFAULT expression without enclosing parentheses or outer blanks
    (``((2))`` is ``2``)."""
    return None if default_sql is None else _core.normalize_default(default_sql)


@dataclass(frozen=True)
class ColumnSpec:
    """One column. ``primary_key`` is its position in the primary key (0: not in it);
    ``references`` is ``"table.column"`` for a single-column foreign key."""

    name: str
    sql_type: str = ""
    primary_key: int = 0
    nullable: bool = True
    default_sql: Optional[str] = None
    references: Optional[str] = None
    unique: bool = False
    autoincrement: bool = False

    def clauses(self, primary_key: bool, default: Optional[str],
                references: Optional[str]) -> List[str]:
        """The clauses after the type, in the order CREATE TABLE declares them: NOT NULL,
        PRIMARY KEY [AUTOINCREMENT] (when ``primary_key``), UNIQUE, DEFAULT ``default``
        and REFERENCES ``references`` (each when not None, as SQL)."""
        parts = [] if self.nullable else ["NOT NULL"]
        if primary_key:
            parts.append("PRIMARY KEY" + (" AUTOINCREMENT" if self.autoincrement else ""))
        if self.unique:
            parts.append("UNIQUE")
        if default is not None:
            parts.append(f"DEFAULT {default}")
        if references:
            parts.append(f"REFERENCES {references}")
        return parts


@dataclass(frozen=True)
class IndexSpec:
    """A named index (CREATE INDEX). ``sql`` is its statement when it was read from a
    database (needed to recreate partial or expression indexes)."""

    name: str
    columns: Tuple[str, ...]
    unique: bool = False
    sql: Optional[str] = field(default=None, compare=False)


@dataclass(frozen=True)
class TableSpec:
    """A table: columns in order, named indexes, and the table constraints that no
    single column carries (multi-column UNIQUE and FOREIGN KEY clauses, as SQL, their
    names quoted as :func:`quote` does)."""

    name: str
    columns: Tuple[ColumnSpec, ...]
    indexes: Tuple[IndexSpec, ...] = ()
    constraints: Tuple[str, ...] = ()

    @property
    def primary_key(self) -> Tuple[str, ...]:
        cols = sorted((c for c in self.columns if c.primary_key), key=lambda c: c.primary_key)
        return tuple(c.name for c in cols)

    def column(self, name: str) -> Optional[ColumnSpec]:
        for col in self.columns:
            if col.name.lower() == name.lower():
                return col
        return None

    def index(self, name: str) -> Optional[IndexSpec]:
        for idx in self.indexes:
            if idx.name.lower() == name.lower():
                return idx
        return None


@dataclass(frozen=True)
class Schema:
    """Tables by name, in creation order, plus views and triggers (name -> SQL)."""

    tables: Dict[str, TableSpec]
    others: Dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> Optional[TableSpec]:
        for key, table in self.tables.items():
            if key.lower() == name.lower():
                return table
        return None

    # -- constructors ---------------------------------------------------------

    @classmethod
    def from_catalog(cls, catalog: Mapping[str, Sequence[Sequence[Any]]]) -> "Schema":
        """From ``_core.database_schema()`` or ``_core.chain_schema()``."""
        objects = catalog["objects"]
        index_columns: Dict[str, List[Tuple[int, Optional[str]]]] = {}
        for idx, seqno, name in catalog["index_columns"]:
            index_columns.setdefault(idx.lower(), []).append((seqno, name))
        idx_cols = {k: tuple(n or "?" for _, n in sorted(v)) for k, v in index_columns.items()}

        unique_single: Dict[str, set] = {}
        unique_multi: Dict[str, List[Tuple[str, ...]]] = {}
        named: Dict[str, List[IndexSpec]] = {}
        for tbl, name, unique, origin, _partial, sql in catalog["indexes"]:
            cols = idx_cols.get(name.lower(), ())
            if origin == "c":
                named.setdefault(tbl.lower(), []).append(
                    IndexSpec(name, cols, bool(unique), sql))
            elif origin == "u":
                if len(cols) == 1:
                    unique_single.setdefault(tbl.lower(), set()).add(cols[0].lower())
                else:
                    unique_multi.setdefault(tbl.lower(), []).append(cols)

        fk_groups: Dict[Tuple[str, int], List[Tuple[int, str, str, Optional[str]]]] = {}
        for tbl, fk_id, seq, ref, frm, to, _upd, _del in catalog["foreign_keys"]:
            fk_groups.setdefault((tbl.lower(), fk_id), []).append((seq, ref, frm, to))

        columns: Dict[str, List[Tuple[Any, ...]]] = {}
        for tbl, cid, name, sql_type, notnull, dflt, pk in catalog["columns"]:
            columns.setdefault(tbl.lower(), []).append((cid, name, sql_type, notnull, dflt, pk))

        # The core records a key's parent columns also where it leaves them out
        # (its parent's primary key); None only where that has none.
        single_fk: Dict[str, Dict[str, str]] = {}
        multi_fk: Dict[str, List[str]] = {}
        for (tbl, _fk_id), rows in fk_groups.items():
            rows.sort()
            ref = rows[0][1]
            if len(rows) == 1:
                _, _, frm, to = rows[0]
                to = to or "rowid"
                single_fk.setdefault(tbl, {})[frm.lower()] = f"{ref}.{to}"
            else:
                frm, to = _quoted(r[2] for r in rows), _quoted(r[3] or "?" for r in rows)
                multi_fk.setdefault(tbl, []).append(
                    f"FOREIGN KEY ({frm}) REFERENCES {quote(ref)} ({to})")

        tables: Dict[str, TableSpec] = {}
        others: Dict[str, str] = {}
        for kind, name, _tbl, sql in objects:
            if kind != "table":
                others[name] = sql or ""
                continue
            key = name.lower()
            autoinc = bool(sql and _AUTOINCREMENT.search(sql))
            table_cols: List[ColumnSpec] = []
            for _cid, cname, sql_type, notnull, dflt, pk in sorted(columns.get(key, [])):
                table_cols.append(ColumnSpec(
                    name=cname, sql_type=sql_type or "", primary_key=pk, nullable=not notnull,
                    default_sql=dflt, references=single_fk.get(key, {}).get(cname.lower()),
                    unique=cname.lower() in unique_single.get(key, set()),
                    autoincrement=autoinc and pk == 1 and normalize_type(sql_type) == "INTEGER"))
            constraints = tuple(f"UNIQUE ({_quoted(c)})" for c in unique_multi.get(key, []))
            constraints += tuple(multi_fk.get(key, []))
            tables[name] = TableSpec(name, tuple(table_cols), tuple(named.get(key, [])),
                                     constraints)
        return cls(tables, others)

    @classmethod
    def from_models(cls, tables: Iterable[Any]) -> "Schema":
        """From declarations shaped like ``promptlab.sqlite.models.TABLES``: objects with
        ``name``, ``columns`` (``name``, ``sql_type``, ``primary_key``, ``nullable``,
        ``default_sql``, ``references``, ``unique``, ``autoincrement``) and ``indexes``
        (``name``, ``columns``, ``unique``)."""
        result: Dict[str, TableSpec] = {}
        for table in tables:
            pk_names = [c.name for c in table.columns if getattr(c, "primary_key", False)]
            cols = tuple(
                ColumnSpec(
                    name=c.name,
                    sql_type=getattr(c, "sql_type", "") or "",
                    primary_key=pk_names.index(c.name) + 1 if c.name in pk_names else 0,
                    nullable=bool(getattr(c, "nullable", True)),
                    default_sql=getattr(c, "default_sql", None),
                    references=getattr(c, "references", None),
                    unique=bool(getattr(c, "unique", False)),
                    autoincrement=bool(getattr(c, "autoincrement", False)),
                )
                for c in table.columns)
            indexes = tuple(IndexSpec(i.name, tuple(i.columns), bool(getattr(i, "unique", False)))
                            for i in getattr(table, "indexes", ()))
            result[table.name] = TableSpec(table.name, cols, indexes)
        return cls(result)

    def without_legacy(self) -> "Schema":
        """This schema without the ``legacy_*`` tables."""
        return Schema({k: v for k, v in self.tables.items() if not is_legacy(k)},
                      dict(self.others))


    def sql(self) -> str:
        """The schema as declarations: CREATE TABLE and CREATE INDEX for each table, in
        order, then its views and triggers; what ``_core.schema_differences`` compares
        as an ``("sql", ...)`` side."""
        out: List[str] = []
        for name, table in self.tables.items():
            out.append(create_table_sql(table, name))
            out.extend(create_index_sql(i, name) for i in table.indexes)
        out.extend(sql.rstrip().rstrip(";") + ";" for sql in self.others.values() if sql)
        return "\n".join(out) + "\n"


# -- declarations ---------------------------------------------------------------------


def _is_literal(expr: str) -> bool:
    return bool(_NUMBER.match(expr) or _STRING.match(expr) or _BLOB.match(expr)
                or expr.upper() in ("NULL", "TRUE", "FALSE"))


def default_expr(default_sql: str) -> str:
    """A DEFAULT clause's expression: literals and CURRENT_* bare, the rest in parentheses."""
    expr = normalize_default(default_sql) or "NULL"
    if _is_literal(expr) or expr.upper() in ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"):
        return expr
    return f"({expr})"


def column_sql(col: ColumnSpec, inline_pk: bool) -> str:
    """The column definition inside CREATE TABLE or ALTER TABLE ADD COLUMN."""
    references = None
    if col.references:
        table, _, column = col.references.partition(".")
        references = f"{quote(table)} ({quote(column)})" if column else quote(table)
    default = default_expr(col.default_sql) if col.default_sql is not None else None
    return " ".join([quote(col.name)] + ([col.sql_type] if col.sql_type else [])
                    + col.clauses(inline_pk, default, references))


def create_table_sql(table: TableSpec, name: Optional[str] = None) -> str:
    """CREATE TABLE for ``table`` (under ``name`` when given)."""
    pk = table.primary_key
    lines = [column_sql(c, inline_pk=len(pk) == 1 and c.primary_key == 1) for c in table.columns]
    if len(pk) > 1:
        lines.append(f"PRIMARY KEY ({', '.join(quote(c) for c in pk)})")
    lines.extend(table.constraints)
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {quote(name or table.name)} (\n    {body}\n);"


def create_index_sql(index: IndexSpec, table: str) -> str:
    """CREATE INDEX for ``index`` on ``table``."""
    if index.sql:
        return index.sql.rstrip().rstrip(";") + ";"
    unique = "UNIQUE " if index.unique else ""
    cols = ", ".join(quote(c) for c in index.columns)
    return f"CREATE {unique}INDEX {quote(index.name)} ON {quote(table)} ({cols});"


# -- differences, as the core finds them ------------------------------------------------


def describe_difference(kind: str, table: Optional[str], name: str, expected: Optional[str],
                        actual: Optional[str]) -> str:
    """One sentence for a difference found by ``_core.schema_differences`` (``expected``
    is what the migrations make): what ``promptlab db status`` reports as drift."""
    if kind == "table" and expected is not None and actual is not None:
        return (f"table {name}: its columns are in the order ({actual}), the migrations "
                f"make ({expected})")
    what = f"{name} (view or trigger)" if kind == "view-or-trigger" else (
        f"table {name}" if kind == "table" else f"table {table}: {kind} {name}")
    if actual is None:
        return f"{what} is missing"
    if expected is None:
        return f"{what} is not made by the migrations"
    if kind == "view-or-trigger":
        return f"{what} has a different definition"
    if kind == "index":
        return f"{what} is on {actual}, the migrations put it on {expected}"
    return f"{what} is {actual}, the migrations make it {expected}"


def compare(expected: Schema, actual: Schema, ignore_missing_legacy: bool = True) -> List[str]:
    """How ``actual`` differs from ``expected``, one sentence per difference, as the core
    compares them (their declarations, catalogued: ``_core.schema_differences``).

    Column order is not compared. A ``legacy_*`` table that ``actual`` lacks is not a
    difference when ``ignore_missing_legacy``: databases that were made by an older
    PromptLab get it later.
    """
    found = _core.schema_differences(("sql", expected.sql()), ("sql", actual.sql()),
                                     legacy="missing" if ignore_missing_legacy else "compare")
    return [describe_difference(*d) for d in found]
