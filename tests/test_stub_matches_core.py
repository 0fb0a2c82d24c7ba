"""promptlab/_core.pyi declares what the C module really has, and nothing it lacks, so the
stub cannot drift from csrc/ (issue 14, item 5). The stub is read with ``ast``, never
imported; the module is inspected with ``dir``, ``vars`` and ``inspect.signature``.

When a test here fails after a change to csrc/python/, the message names the entry: declare
the new name in promptlab/_core.pyi (with types and a docstring), or remove the stale one.
"""

from __future__ import annotations

import ast
import collections.abc
import inspect
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

import promptlab
import promptlab.sqlite  # registers RowMapping as a Mapping
from promptlab import _core

STUB = Path(promptlab.__file__).with_name("_core.pyi")
HOW = "; update promptlab/_core.pyi (see csrc/python/ for the C definitions)"

# Sequence mixins the stub's Row inherits but the C type does not implement yet: remove
# a name here when csrc/python/row.c gains it (the test says so).
ROW_NOT_YET: Set[str] = set()

# Names the module has only in builds with assertions (PROMPTLAB_DEBUG, the sanitizer
# builds): the stub declares them, a release build lacks them.
ASSERTION_BUILDS_ONLY = {"_fail_allocations_after"}


def _stub() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def _declared(body: List[ast.stmt]) -> Dict[str, ast.stmt]:
    """Names a module or class body declares: classes, functions, annotated names."""
    names: Dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.setdefault(node.name, node)  # the first of a run of @overloads
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


def _module_names() -> Dict[str, ast.stmt]:
    return _declared(_stub().body)


def _aliases() -> Set[str]:
    """``StrPath = Union[...]``, ``_R = TypeVar(...)``: names for the checker only."""
    return {t.id for n in _stub().body if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name)}


def _classes() -> Dict[str, ast.ClassDef]:
    return {n.name: n for n in _stub().body if isinstance(n, ast.ClassDef)}


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def test_module_names_match():
    runtime = {n for n in dir(_core) if not _is_dunder(n)}
    declared = set(_module_names())
    missing = sorted(runtime - declared)
    assert not missing, (f"promptlab._core has {missing}, which the stub does not declare{HOW}")
    stale = sorted(declared - runtime - ASSERTION_BUILDS_ONLY)
    assert not stale, f"the stub declares {stale}, which promptlab._core does not have{HOW}"
    assert not _aliases() & runtime, "a stub-only alias shadows a real name of promptlab._core"


def _declared_with_bases(name: str) -> Set[str]:
    """What the stub declares on class ``name`` and on its bases declared in the stub."""
    node = _classes()[name]
    names = set(_declared(node.body))
    for base in node.bases:
        base_name = ast.unparse(base).split("[")[0]  # Mapping[str, Any] -> Mapping
        if base_name in _classes():
            names |= _declared_with_bases(base_name)
        elif hasattr(collections.abc, base_name):  # the mixin methods of an ABC
            names |= set(dir(getattr(collections.abc, base_name)))
    return names


@pytest.mark.parametrize("name", sorted(_classes()))
def test_class_members_match(name):
    cls = getattr(_core, name)
    assert isinstance(cls, type), f"_core.{name} is not a class{HOW}"
    declared = _declared(_classes()[name].body)
    for member in declared:
        if member == "__getattr__":  # the C types look columns up in tp_getattro
            assert cls.__getattribute__ is not object.__getattribute__, (
                f"the stub gives _core.{name} a __getattr__ the C type lacks{HOW}")
            continue
        assert hasattr(cls, member), (
            f"the stub declares _core.{name}.{member}, which the C type does not have{HOW}")
    own = {m for m in vars(cls) if not _is_dunder(m)}
    missing = sorted(own - _declared_with_bases(name))
    assert not missing, f"_core.{name} has {missing}, which the stub does not declare{HOW}"


@pytest.mark.parametrize("name", sorted(_classes()))
def test_declared_bases_match(name):
    """A stub base that is a real class of _core is a real base (the exceptions' tree)."""
    cls = getattr(_core, name)
    for base in _classes()[name].bases:
        base_name = ast.unparse(base)
        if base_name in _classes():
            assert issubclass(cls, getattr(_core, base_name)), (
                f"the stub derives _core.{name} from {base_name}; the C type does not{HOW}")


def _stub_params(fn: ast.FunctionDef, method: bool) -> List[tuple]:
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [(p.arg, d is not None) for p, d in zip(positional, defaults, strict=True)]
    if method:
        params = params[1:]  # self
    params += [(p.arg, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    return params


def _runtime_params(obj: object) -> Optional[List[tuple]]:
    try:
        sig = inspect.signature(obj)  # from the C docstring's "name(...)\n--\n\n" line
    except (TypeError, ValueError):
        return None  # no text signature: nothing to compare
    return [(p.name, p.default is not p.empty) for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _functions():
    for name, node in _module_names().items():
        if isinstance(node, ast.FunctionDef):
            yield f"{name}", getattr(_core, name, None), node, False
    for cname, cnode in _classes().items():
        for name, node in _declared(cnode.body).items():
            if isinstance(node, ast.FunctionDef) and not _is_dunder(name) and not any(
                    ast.unparse(d) == "property" for d in node.decorator_list):
                yield f"{cname}.{name}", getattr(getattr(_core, cname), name, None), node, True


@pytest.mark.parametrize("qualname,obj,node,method",
                         list(_functions()), ids=[f[0] for f in _functions()])
def test_signatures_match(qualname, obj, node, method):
    """Parameter names, order and which have defaults, where the C function gives a text
    signature (a docstring starting "name(a, b=None)\\n--\\n\\n")."""
    if obj is None and qualname in ASSERTION_BUILDS_ONLY:
        pytest.skip(f"{qualname} exists only in builds with assertions")
    assert obj is not None, f"the stub declares {qualname}, which _core does not have{HOW}"
    runtime = _runtime_params(obj)
    if runtime is None:
        return
    assert _stub_params(node, method) == runtime, (
        f"{qualname}: the stub's parameters {_stub_params(node, method)} differ from the "
        f"C function's {runtime} (name, has a default){HOW}")


def test_row_is_the_sequence_the_stub_says():
    missing = {m for m in collections.abc.Sequence.__abstractmethods__ | {
        "__contains__", "__iter__", "index", "count"} if not hasattr(_core.Row, m)}
    assert missing == ROW_NOT_YET, (
        f"Row lacks {sorted(missing)} of Sequence; known: {sorted(ROW_NOT_YET)}. When the C "
        "type gains one, remove it from ROW_NOT_YET and the note in the stub's Row docstring")


def test_rows_behave_as_declared(db_path):
    """What the stub's types promise, on real rows: a tuple from a slice, a tuple's
    comparisons and hash, lists from RowMapping.keys/values/items, Result an iterator."""
    _core.db_manager.initialize_database(db_path)
    with _core.db_manager.get_session(db_path) as s:
        result = s.execute("SELECT 1 AS a, 'x' AS b")
        assert isinstance(result, collections.abc.Iterator)
        row = result.one()
        assert row[0:1] == (1,) and isinstance(row[1:], tuple)
        assert list(reversed(row)) == ["x", 1]
        assert row < (2, "x") and hash(row) == hash((1, "x")) and "x" in row
        assert row._mapping == {"a": 1, "b": "x"} and row._fields == ("a", "b")
        mapping = s.execute("SELECT 1 AS a").mappings().one()
        assert isinstance(mapping, collections.abc.Mapping)
        assert mapping.keys() == ["a"] and mapping.values() == [1]
        assert mapping.items() == [("a", 1)] and mapping.get("z", 3) == 3
        with pytest.raises(TypeError):
            hash(mapping)
        for prop in ("path", "closed", "in_transaction"):
            with pytest.raises(AttributeError):
                setattr(s, prop, getattr(s, prop))
        s.statement_timeout = s.statement_timeout  # the one settable attribute
        for prop in ("columns", "rowcount", "lastrowid"):
            with pytest.raises(AttributeError):
                setattr(result, prop, getattr(result, prop))
