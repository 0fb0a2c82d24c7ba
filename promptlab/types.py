"""Configuration and value types, with the field names, defaults and behaviour of
PromptLab 0.1.x.

The original declared these as pydantic v2 models. They are plain classes here, with
the part of pydantic's contract that PromptLab's users rely on (``_Model``):

- built from keywords only; keywords that are not fields are ignored;
- each value is checked and coerced to its declared type as pydantic's default (lax)
  mode does: ``version="3"`` becomes ``3``, ``3.5`` or ``"x"`` for an ``int`` is an
  error, nested configs may be dicts; every problem is reported at once in one
  ``ValidationError`` (a ``ValueError``, as pydantic's is);
- ``model_dump``/``dict``, ``model_dump_json``/``json``, ``model_validate``,
  ``model_validate_json``, ``model_copy``/``copy`` and ``model_fields``.

Why not pydantic itself: it costs more than the rest of ``import promptlab.types``
together (README, "Types"). Nor ``dataclasses``: it imports ``inspect`` (with ``ast``,
``dis`` and ``tokenize``), about half of a script's start-up (issue 16); the fields are
read from the class's annotations instead, and ``dataclasses.fields()`` still works on
these classes (the module is imported when it is first asked). As in pydantic,
assignment after construction is not validated.
"""

# The typing module is not imported at run time (issue 16: with re, which it imports,
# it is a third of a short script's start-up). The fields' annotations stay text; the
# check of each field is compiled from that text (_checker), and ``model_fields``
# (whose annotations are typing objects) is made when it is first read.
from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from reprlib import recursive_repr

from promptlab.enums import TracerType
from promptlab.paths import sanitize_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, Type, TypeVar, Union

    from promptlab.model_protocols import EmbeddingModel, Model
    from promptlab.model_response import ModelResponse

    _M = TypeVar("_M", bound="_Model")
    _Check = Callable[[Any], Any]

__all__ = [
    "Dataset", "EmbeddingModel", "EvaluationConfig", "ExperimentConfig", "FieldInfo",
    "Model", "ModelConfig", "ModelResponse", "PromptTemplate", "TracerConfig",
    "ValidationError", "sanitize_path",
]


# --- validation -------------------------------------------------------------------


class ValidationError(ValueError):
    """One or more fields did not validate; ``errors()`` lists them as pydantic does
    (``type``, ``loc``, ``msg``, ``input``), and the message names each field."""

    def __init__(self, title: str, errors: List[Dict[str, Any]]) -> None:
        self.title = title
        self._errors = errors
        super().__init__(self._message())

    def errors(self) -> List[Dict[str, Any]]:
        return [dict(e) for e in self._errors]

    def error_count(self) -> int:
        return len(self._errors)

    def _message(self) -> str:
        n = len(self._errors)
        lines = [f"{n} validation error{'s' if n != 1 else ''} for {self.title}"]
        for e in self._errors:
            loc = ".".join(str(part) for part in e["loc"]) or "__root__"
            shown = repr(e["input"])
            if len(shown) > 80:
                shown = shown[:77] + "..."
            lines.append(f"{loc}\n  {e['msg']} [type={e['type']}, input_value={shown}, "
                         f"input_type={type(e['input']).__name__}]")
        return "\n".join(lines)


class _Invalid(Exception):
    """A value that does not fit: collected into a ValidationError by the model."""

    def __init__(self, kind: str, msg: str, value: Any,
                 errors: Optional[List[Dict[str, Any]]] = None) -> None:
        self.kind, self.msg, self.value, self.nested = kind, msg, value, errors


class _Missing:
    """The default of a field that has none (a required field)."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


def _check_str(value: Any) -> str:
    if isinstance(value, str):
        return str(value)  # a str subclass (an str Enum member) becomes a plain str
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("string_unicode", "Input should be a valid string, unable to "
                           "parse raw data as a unicode string", value) from None
    raise _Invalid("string_type", "Input should be a valid string", value)


def _check_int(value: Any) -> int:
    if isinstance(value, int):  # bool too: pydantic's lax mode takes True as 1
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Invalid("finite_number", "Input should be a finite number", value)
        if not value.is_integer():
            raise _Invalid("int_from_float", "Input should be a valid integer, got a "
                           "number with a fractional part", value)
        return int(value)
    if isinstance(value, (str, bytes, bytearray)):
        text = value.decode("utf-8", "replace") if not isinstance(value, str) else value
        text = text.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and number.is_integer() and len(text) <= 4300:
            return int(number)
        raise _Invalid("int_parsing", "Input should be a valid integer, unable to parse "
                       "string as an integer", value)
    raise _Invalid("int_type", "Input should be a valid integer", value)


def _check_float(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return float(value)
        except ValueError:
            raise _Invalid("float_parsing", "Input should be a valid number, unable to "
                           "parse string as a number", value) from None
    raise _Invalid("float_type", "Input should be a valid number", value)


def _check_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "t", "yes", "y", "on"):
            return True
        if text in ("0", "false", "f", "no", "n", "off"):
            return False
    raise _Invalid("bool_parsing", "Input should be a valid boolean", value)


def _check_dict(value: Any) -> Dict[Any, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise _Invalid("dict_type", "Input should be a valid dictionary", value)


def _check_list_of(item: _Check) -> _Check:
    def check(value: Any) -> List[Any]:
        if not isinstance(value, (list, tuple)):
            raise _Invalid("list_type", "Input should be a valid list", value)
        out, errors = [], []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except _Invalid as exc:
                errors.extend(_located(exc, (i,)))
        if errors:
            raise _Invalid("", "", value, errors)
        return out
    return check


def _check_optional(inner: _Check) -> _Check:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)
    return check


def _check_enum_value(cls: Type[enum.Enum]) -> _Check:
    """The member's value (pydantic's ``use_enum_values``, as the original TracerConfig)."""
    def check(value: Any) -> Any:
        if isinstance(value, cls):
            return value.value
        try:
            return cls(value).value
        except ValueError:
            choices = " or ".join(repr(m.value) for m in cls)
            raise _Invalid("enum", f"Input should be {choices}", value) from None
    return check


def _check_model(cls: Type["_Model"]) -> _Check:
    def check(value: Any) -> Any:
        if isinstance(value, cls):
            return value  # kept as it is, as pydantic does (revalidate_instances="never")
        if isinstance(value, Mapping):
            try:
                return cls._validated(value)
            except ValidationError as exc:
                raise _Invalid("", "", value, exc.errors()) from None
        raise _Invalid("model_type", f"Input should be a valid dictionary or instance of "
                       f"{cls.__name__}", value)
    return check


def _check_any(value: Any) -> Any:
    return value


def _located(exc: _Invalid, prefix: Tuple[Any, ...]) -> List[Dict[str, Any]]:
    """The errors of ``exc`` with ``prefix`` in front of their location."""
    if exc.nested is not None:
        return [dict(e, loc=prefix + tuple(e["loc"])) for e in exc.nested]
    return [{"type": exc.kind, "loc": prefix, "msg": exc.msg, "input": exc.value}]


def _split_args(text: str) -> List[str]:
    """The comma-separated arguments inside ``X[...]`` (brackets nest)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _checker(hint: str, names: Dict[str, Any]) -> _Check:
    """The check for a declared type, from the text of its annotation (the kinds these
    models declare: str, int, float, bool, an enum, a model, ``Optional``, ``Union``,
    ``X | None``, ``List``, ``Dict``, ``Any``, ``Callable``). ``names``: the module's
    globals, where the classes are found."""
    hint = hint.strip()
    head, bracket, rest = hint.partition("[")
    args = _split_args(rest[:-1]) if bracket else []
    options = None
    if head == "Optional":
        options = [args[0], "None"]
    elif head == "Union":
        options = args
    elif not bracket and "|" in hint:
        options = [part.strip() for part in hint.split("|")]
    if options is not None:
        kept = [o for o in options if o not in ("None", "NoneType")]
        inner = _checker(kept[0], names) if len(kept) == 1 else _check_any
        return _check_optional(inner) if len(kept) < len(options) else inner
    if head in ("List", "list"):
        return _check_list_of(_checker(args[0], names) if args else _check_any)
    if head in ("Dict", "dict"):
        return _check_dict
    if bracket:  # Callable[...] and other generics: not checked (SkipValidation)
        return _check_any
    simple = {"str": _check_str, "bool": _check_bool, "int": _check_int,
              "float": _check_float}
    if head in simple:
        return simple[head]
    cls = names.get(head)
    if isinstance(cls, type) and issubclass(cls, _Model):
        return _check_model(cls)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return _check_enum_value(cls)
    return _check_any  # Any, object


class FieldInfo:
    """What ``Model.model_fields[name]`` says about a field (read-only)."""

    __slots__ = ("annotation", "default", "required")
    annotation: Any
    default: Any
    required: bool

    def __init__(self, annotation: Any, default: Any = None, required: bool = False) -> None:
        object.__setattr__(self, "annotation", annotation)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "required", required)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: FieldInfo is read-only")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, FieldInfo)
        return ((self.annotation, self.default, self.required)
                == (other.annotation, other.default, other.required))

    def __hash__(self) -> int:
        return hash((self.annotation, self.default, self.required))

    def __repr__(self) -> str:
        return (f"FieldInfo(annotation={self.annotation!r}, default={self.default!r}, "
                f"required={self.required!r})")

    def is_required(self) -> bool:
        return self.required


class _ModelFields:
    """``model_fields`` of the models, made when first read: their annotations are
    typing objects, so only then is the typing module imported."""

    def __get__(self, obj: Any, cls: Any) -> Dict[str, FieldInfo]:
        import typing

        # The annotations' text names typing's names, which this module imports only
        # for type checkers: the evaluation gets them beside the module's own.
        names = {**vars(typing), **globals()}
        own = cls.__dict__.get("__annotations__", {})
        made = {name: FieldInfo(eval(own[name], names), None if default is _MISSING
                                else default, default is _MISSING)
                for name, default in cls._fields}
        cls.model_fields = made  # later reads find it on the class
        return made


class _DataclassFields:
    """``__dataclass_fields__`` of the models, made when first read: ``dataclasses.fields``,
    ``asdict`` and ``is_dataclass`` work on them without every import paying for the
    ``dataclasses`` module."""

    def __get__(self, obj: Any, cls: Any) -> Dict[str, Any]:
        import dataclasses

        made = {}
        for name, default in cls._fields:
            f: Any = dataclasses.field(default=dataclasses.MISSING if default is _MISSING
                                  else default, kw_only=True)
            # What @dataclass sets on each of its fields (dataclasses._process_class).
            f.name, f.type = name, cls.model_fields[name].annotation
            f._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
            made[name] = f
        cls.__dataclass_fields__ = made  # later reads find it on the class
        return made


def _plain(value: Any, json_mode: bool) -> Any:
    """``value`` with models turned into dicts, recursively (``model_dump``)."""
    if isinstance(value, _Model):
        return value.model_dump(mode="json" if json_mode else "python")
    if isinstance(value, (list, tuple)):
        items = [_plain(v, json_mode) for v in value]
        return items if json_mode or isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _plain(v, json_mode) for k, v in value.items()}
    if json_mode and isinstance(value, enum.Enum):
        return value.value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (os.PathLike,)):
        return os.fspath(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Unable to serialize a {type(value).__name__} as JSON: set it to None "
                    "first (callables and model instances never travel as JSON)")


class _Model:
    """pydantic-style behaviour for the models below (see the module docstring).

    Subclasses are declared with ``@_model``; ``_checks`` maps each field to its check,
    ``_after`` to a check of the class's own run after it (a field validator)."""

    # Each field's name and default (_MISSING when required), in declaration order:
    # set on each subclass by @_model.
    _fields: ClassVar[Tuple[Tuple[str, Any], ...]] = ()
    __dataclass_fields__: ClassVar[Any] = _DataclassFields()
    _checks: ClassVar[Dict[str, _Check]] = {}
    _after: ClassVar[Dict[str, _Check]] = {}
    _required: ClassVar[Tuple[str, ...]] = ()
    model_fields: ClassVar[Dict[str, FieldInfo]] = _ModelFields()  # type: ignore[assignment]

    def __init__(self, /, **data: Any) -> None:
        errors: List[Dict[str, Any]] = []
        for name, default in self._fields:
            if name in data:
                value = data[name]
                try:
                    value = self._checks[name](value)
                    after = self._after.get(name)
                    if after is not None and value is not None:
                        try:
                            value = after(value)
                        except (ValueError, TypeError) as exc:
                            raise _Invalid("value_error", f"Value error, {exc}", value) from None
                except _Invalid as exc:
                    errors.extend(_located(exc, (name,)))
                    continue
            elif default is not _MISSING:
                value = default  # defaults are not validated, as in pydantic
            else:
                errors.append({"type": "missing", "loc": (name,), "msg": "Field required",
                               "input": dict(data)})
                continue
            object.__setattr__(self, name, value)
        if errors:
            raise ValidationError(type(self).__name__, errors)

    @classmethod
    def _validated(cls: Type[_M], data: Mapping[str, Any]) -> _M:
        return cls(**{str(k): v for k, v in data.items()})

    # --- pydantic's names ---

    @classmethod
    def model_validate(cls: Type[_M], obj: Any) -> _M:
        """``obj`` as a ``cls``: an instance is returned as it is, a mapping validated."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, Mapping):
            return cls._validated(obj)
        raise ValidationError(cls.__name__, [{
            "type": "model_type", "loc": (),
            "msg": f"Input should be a valid dictionary or instance of {cls.__name__}",
            "input": obj}])

    @classmethod
    def model_validate_json(cls: Type[_M], json_data: Union[str, bytes]) -> _M:
        import json

        try:
            data = json.loads(json_data)
        except ValueError as exc:
            raise ValidationError(cls.__name__, [{"type": "json_invalid", "loc": (),
                                                  "msg": f"Invalid JSON: {exc}",
                                                  "input": json_data}]) from None
        return cls.model_validate(data)

    def model_dump(self, *, mode: str = "python", include: Any = None, exclude: Any = None,
                   exclude_none: bool = False, exclude_defaults: bool = False,
                   **_ignored: Any) -> Dict[str, Any]:
        """The fields as a dict, nested models as dicts too (``mode="json"``: enums as
        their values). ``include``/``exclude``: field names; options of pydantic that
        this model has no use for are accepted and ignored."""
        json_mode = mode == "json"
        out: Dict[str, Any] = {}
        for name, default in self._fields:
            if include is not None and name not in include:
                continue
            if exclude is not None and name in exclude:
                continue
            value = getattr(self, name)
            if exclude_none and value is None:
                continue
            if exclude_defaults and default is not _MISSING and value == default:
                continue
            out[name] = _plain(value, json_mode)
        return out

    def model_dump_json(self, *, indent: Optional[int] = None, **kwargs: Any) -> str:
        """``model_dump(mode="json")`` as JSON text, compact as pydantic writes it."""
        import json

        data = self.model_dump(mode="json", **kwargs)
        return json.dumps(data, indent=indent, ensure_ascii=False, default=_json_default,
                          separators=(",", ":") if indent is None else None)

    def model_copy(self: _M, *, update: Optional[Mapping[str, Any]] = None,
                   deep: bool = False) -> _M:
        """A copy (``deep``: nested values copied too) with ``update`` applied, which is
        not validated (as in pydantic)."""
        import copy

        new = copy.deepcopy(self) if deep else copy.copy(self)
        for name, value in (update or {}).items():
            object.__setattr__(new, name, value)
        return new

    # ``==`` and ``repr`` as a dataclass's.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = [name for name, _ in self._fields]
        return (tuple(getattr(self, n) for n in names)
                == tuple(getattr(other, n) for n in names))

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    @recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self._fields)
        return f"{type(self).__qualname__}({shown})"

    # pydantic v1 names, which pydantic v2 keeps (deprecated) and PromptLab's users call.
    def dict(self, **kwargs: Any) -> Dict[str, Any]:
        return self.model_dump(**kwargs)

    def json(self, **kwargs: Any) -> str:
        return self.model_dump_json(**kwargs)

    def copy(self: _M, *, update: Optional[Mapping[str, Any]] = None, deep: bool = False) -> _M:
        return self.model_copy(update=update, deep=deep)


def _model(cls: Type[_M]) -> Type[_M]:
    """Read the fields of ``cls`` from its own annotations (text), each one's default
    from the class attribute of its name, and compile the check of each field."""
    hints = cls.__dict__.get("__annotations__", {})
    cls._fields = tuple((name, cls.__dict__.get(name, _MISSING)) for name in hints)
    cls._checks = {name: _checker(hint, globals()) for name, hint in hints.items()}
    return cls


# --- the types -----------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    # ModelResponse is a dataclass, as in the original: made on first use, so that a
    # script that only traces does not import the dataclasses module.
    if name == "ModelResponse":
        from promptlab.model_response import ModelResponse

        globals()["ModelResponse"] = ModelResponse
        return ModelResponse
    if name in ("Model", "EmbeddingModel"):  # Protocols need the typing module
        from promptlab import model_protocols

        value = globals()[name] = getattr(model_protocols, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@_model
class ModelConfig(_Model):
    """A model to call: ``name`` like ``"ollama/llama3.2"``, and its connection settings.
    ``model`` (a model instance) is not checked, as the original's SkipValidation."""

    name: str
    type: str
    api_key: Optional[str] = None
    api_version: Optional[str] = None
    endpoint: Optional[str] = None
    max_concurrent_tasks: int = 5
    model: Optional[Callable[..., Any]] = None


@_model
class Dataset(_Model):
    """A dataset asset: a JSONL file registered under a name and version."""

    name: str
    description: Optional[str]  # None is accepted (the column is nullable); the original said str
    file_path: str
    version: int = 0
    user: str = "admin"


@_model
class PromptTemplate(_Model):
    """A prompt template asset: a system and a user prompt under a name and version."""

    name: str
    description: Optional[str]  # as Dataset.description
    system_prompt: str
    user_prompt: str
    version: int = 0
    user: str = "admin"


def _check_evaluator(value: Any) -> Any:
    # The original declared Optional[Evaluator]; checked by its method, so that this
    # module need not import the evaluators (which import these types).
    if not callable(getattr(value, "evaluate", None)):
        raise ValueError("evaluator should be an Evaluator (an object with an evaluate "
                         "method)")
    return value


@_model
class EvaluationConfig(_Model):
    """One metric to compute, with the mapping from its inputs to dataset columns."""

    metric: str
    column_mapping: Dict[str, Any]
    evaluator: Optional[Any] = None
    _after = {"evaluator": _check_evaluator}


@_model
class ExperimentConfig(_Model):
    """Everything an experiment run needs; nested configs may be given as dicts."""

    name: Optional[str] = None
    completion_model_config: Optional[ModelConfig] = None
    embedding_model_config: Optional[ModelConfig] = None
    prompt_template: Optional[PromptTemplate] = None
    agent_proxy: Optional[Callable[..., Any]] = None
    dataset: Dataset
    evaluation: List[EvaluationConfig]
    user: str = "admin"


@_model
class TracerConfig(_Model):
    """Where to trace: ``type`` is a TracerType or its value, stored as the value
    (``"local"``, ``"remote"``); ``db_file`` is checked and normalized."""

    type: TracerType
    db_file: Optional[str] = None
    endpoint: Optional[str] = None
    jwt_token: Optional[str] = None
    _after = {"db_file": sanitize_path}
