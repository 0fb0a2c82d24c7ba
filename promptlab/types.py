"""Configuration and value types, with the field names, defaults and behaviour of
PromptLab 0.1.x.

The original declared these as pydantic v2 models. They are dataclasses here, with
the part of pydantic's contract that PromptLab's users rely on (``_Model``):

- built from keywords only; keywords that are not fields are ignored;
- each value is checked and coerced to its declared type as pydantic's default (lax)
  mode does: ``version="3"`` becomes ``3``, ``3.5`` or ``"x"`` for an ``int`` is an
  error, nested configs may be dicts; every problem is reported at once in one
  ``ValidationError`` (a ``ValueError``, as pydantic's is);
- ``model_dump``/``dict``, ``model_dump_json``/``json``, ``model_validate``,
  ``model_validate_json``, ``model_copy``/``copy`` and ``model_fields``.

Why not pydantic itself: it costs more than the rest of ``import promptlab.types``
together (README, "Types"), and these classes stay dataclasses, which the studio's
request parsing reads with ``dataclasses.fields``. As in pydantic, assignment after
construction is not validated.
"""

# No ``from __future__ import annotations``: the fields' annotations are objects,
# so the classes are built without compiling each one from text at import time
# (typing.get_type_hints, dataclasses' ClassVar check), a few ms of start-up.

import copy as _copy
import dataclasses
import enum
import os
import typing
from dataclasses import dataclass
from reprlib import recursive_repr
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    Type,
    TypeVar,
    Union,
    runtime_checkable,
)

from promptlab.enums import TracerType
from promptlab.paths import sanitize_path

_M = TypeVar("_M", bound="_Model")

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


_Check = Callable[[Any], Any]
_MISSING = dataclasses.MISSING


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


def _checker(hint: Any) -> _Check:
    """The check for a declared type (the few kinds these models declare)."""
    if hint is Any or hint is object:
        return _check_any
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union:
        rest = [a for a in args if a is not type(None)]
        inner = _checker(rest[0]) if len(rest) == 1 else _check_any
        return _check_optional(inner) if len(rest) < len(args) else inner
    if origin in (list, List):
        return _check_list_of(_checker(args[0]) if args else _check_any)
    if origin in (dict, Dict) or hint is dict:
        return _check_dict
    if origin is not None:  # Callable[...] and other generics: not checked (SkipValidation)
        return _check_any
    if isinstance(hint, type):
        if issubclass(hint, _Model):
            return _check_model(hint)
        if issubclass(hint, enum.Enum):
            return _check_enum_value(hint)
        simple = {str: _check_str, bool: _check_bool, int: _check_int, float: _check_float}
        if hint in simple:
            return simple[hint]
    return _check_any


@dataclass(frozen=True)
class FieldInfo:
    """What ``Model.model_fields[name]`` says about a field."""

    annotation: Any
    default: Any = None
    required: bool = False

    def is_required(self) -> bool:
        return self.required


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
    """pydantic-style behaviour for the dataclasses below (see the module docstring).

    Subclasses are declared with ``@_model``; ``_checks`` maps each field to its check,
    ``_after`` to a check of the class's own run after it (a field validator)."""

    # Set on each subclass by @_model (a dataclass); declared here for type checkers,
    # which do not see through @_model, so that dataclasses.fields() accepts a _Model.
    __dataclass_fields__: ClassVar[Dict[str, dataclasses.Field[Any]]]
    _checks: ClassVar[Dict[str, _Check]] = {}
    _after: ClassVar[Dict[str, _Check]] = {}
    _required: ClassVar[Tuple[str, ...]] = ()
    model_fields: ClassVar[Dict[str, FieldInfo]] = {}

    def __init__(self, /, **data: Any) -> None:
        errors: List[Dict[str, Any]] = []
        for f in dataclasses.fields(self):
            if f.name in data:
                value = data[f.name]
                try:
                    value = self._checks[f.name](value)
                    after = self._after.get(f.name)
                    if after is not None and value is not None:
                        try:
                            value = after(value)
                        except (ValueError, TypeError) as exc:
                            raise _Invalid("value_error", f"Value error, {exc}", value) from None
                except _Invalid as exc:
                    errors.extend(_located(exc, (f.name,)))
                    continue
            elif f.default is not _MISSING:
                value = f.default  # defaults are not validated, as in pydantic
            elif f.default_factory is not _MISSING:
                value = f.default_factory()
            else:
                errors.append({"type": "missing", "loc": (f.name,), "msg": "Field required",
                               "input": dict(data)})
                continue
            object.__setattr__(self, f.name, value)
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
        for f in dataclasses.fields(self):
            if include is not None and f.name not in include:
                continue
            if exclude is not None and f.name in exclude:
                continue
            value = getattr(self, f.name)
            if exclude_none and value is None:
                continue
            if exclude_defaults and f.default is not _MISSING and value == f.default:
                continue
            out[f.name] = _plain(value, json_mode)
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
        new = _copy.deepcopy(self) if deep else _copy.copy(self)
        for name, value in (update or {}).items():
            object.__setattr__(new, name, value)
        return new

    # ``==`` and ``repr`` as a dataclass's (its generated ones are not made: @_model
    # passes eq=False, repr=False, which saves compiling two methods per class).
    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = [f.name for f in dataclasses.fields(self)]
        return (tuple(getattr(self, n) for n in names)
                == tuple(getattr(other, n) for n in names))

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    @recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in dataclasses.fields(self) if f.repr)
        return f"{type(self).__qualname__}({shown})"

    # pydantic v1 names, which pydantic v2 keeps (deprecated) and PromptLab's users call.
    def dict(self, **kwargs: Any) -> Dict[str, Any]:
        return self.model_dump(**kwargs)

    def json(self, **kwargs: Any) -> str:
        return self.model_dump_json(**kwargs)

    def copy(self: _M, *, update: Optional[Mapping[str, Any]] = None, deep: bool = False) -> _M:
        return self.model_copy(update=update, deep=deep)


def _model(cls: Type[_M]) -> Type[_M]:
    """Make ``cls`` a dataclass (for ``dataclasses.fields``, ``==`` and ``repr``) with
    ``_Model``'s validating ``__init__``, and compile the check of each field."""
    cls = dataclass(init=False, repr=False, eq=False, kw_only=True)(cls)
    hints = typing.get_type_hints(cls)
    cls._checks = {f.name: _checker(hints[f.name]) for f in dataclasses.fields(cls)}
    cls.model_fields = {
        f.name: FieldInfo(hints[f.name], None if f.default is _MISSING else f.default,
                          f.default is _MISSING and f.default_factory is _MISSING)
        for f in dataclasses.fields(cls)}
    return cls


# --- the types -----------------------------------------------------------------------


@dataclass
class ModelResponse:
    """What a model returns for one completion (a plain dataclass, as in the original)."""

    response: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


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


@runtime_checkable
class Model(Protocol):
    """A completion model."""

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse: ...
    async def ainvoke(self, system_prompt: str, user_prompt: str) -> ModelResponse: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    """An embedding model."""

    def __call__(self, text: str) -> List[float]: ...


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
