"""Checking what clients send: asset and user names, passwords, and JSON objects
built into ``promptlab.types`` records with a 400 that names the field."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from promptlab import _core
from promptlab.studio.http import ApiError
from promptlab.types import (
    Dataset,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    PromptTemplate,
)

ROLES = ("admin", "engineer")
# Names are checked with fullmatch: with "$", "admin\n" and "prod\n" passed.
ASSET_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")  # the original Asset.is_valid_name
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")

_TEXT = (str,)
_OPT_TEXT = (str, type(None))
# What a JSON value may be for each field type of promptlab.types; None: a field
# that never travels as JSON (callables, model and evaluator instances).
_JSON_KINDS: Dict[Any, Any] = {str: _TEXT, Optional[str]: _OPT_TEXT, int: int,
                               Dict[str, Any]: dict}
# Where the studio differs from the types: an asset's description is text, as in
# the original's API, and its user may be null (the studio sets it from the token).
_ASSET_FIELDS = {"description": _TEXT, "user": _OPT_TEXT}


def _field_kinds(cls: Any, **overrides: Any) -> Dict[str, Any]:
    kinds = {name: _JSON_KINDS.get(info.annotation) for name, info in cls.model_fields.items()}
    kinds.update(overrides)
    return kinds


FIELD_KINDS: Dict[type, Dict[str, Any]] = {
    Dataset: _field_kinds(Dataset, **_ASSET_FIELDS),
    PromptTemplate: _field_kinds(PromptTemplate, **_ASSET_FIELDS),
    ModelConfig: _field_kinds(ModelConfig),
    EvaluationConfig: _field_kinds(EvaluationConfig),
}


def build(cls: Any, data: Any, where: str) -> Any:
    """``cls(**data)`` from a JSON object: unknown keys ignored (as pydantic did),
    missing required fields and wrong types are 400s naming the field."""
    if not isinstance(data, dict):
        raise ApiError(400, f"{where} must be a JSON object")
    kinds = FIELD_KINDS[cls]
    values: Dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if name not in data:
            if info.is_required():
                raise ApiError(400, f"{where}: missing field '{name}'")
            continue
        value, kind = data[name], kinds.get(name)
        if kind is None:  # callables and instances never travel as JSON
            continue
        if kind is int:
            value = as_int(value, f"{where}.{name}")
        elif not isinstance(value, kind):
            raise ApiError(400, f"{where}.{name} has the wrong type")
        values[name] = value
    return cls(**values)


def as_int(value: Any, where: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{where} must be an integer")
    return value


def check_asset(name: str, version: int, kind: str) -> None:
    if not ASSET_NAME.fullmatch(name):
        raise ApiError(400, "Name must begin with a letter and use only alphanumeric, "
                            "underscore, or hyphen.")
    if version < 0:
        raise ApiError(400, f"The {kind} version must be 0 or more")


def new_password(data: Dict[str, Any], key: str = "password") -> str:
    password = data.get(key)
    if not isinstance(password, str):
        raise ApiError(400, "Invalid input: the password must be a string")
    try:
        _core.check_password(password, "the password")
    except (ValueError, UnicodeError) as exc:  # a lone surrogate is not UTF-8
        raise ApiError(400, f"Invalid input: {exc}") from None
    return password


def experiment_config(data: Dict[str, Any]) -> ExperimentConfig:
    where = "experiment_config"
    models = {}
    for key in ("completion_model_config", "embedding_model_config"):
        value = data.get(key)
        model = build(ModelConfig, value, f"{where}.{key}") if value is not None else None
        if model is not None:
            model.api_key = None  # a client's credentials are not kept
        models[key] = model
    template = data.get("prompt_template")
    if template is not None:
        template = build(PromptTemplate, template, f"{where}.prompt_template")
    if "dataset" not in data:
        raise ApiError(400, f"{where}: missing field 'dataset'")
    dataset = build(Dataset, data["dataset"], f"{where}.dataset")
    evaluation = data.get("evaluation")
    if not isinstance(evaluation, list):
        raise ApiError(400, f"{where}.evaluation must be a JSON array")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, f"{where}.name must be a string")
    return ExperimentConfig(
        name=name, prompt_template=template, dataset=dataset,
        evaluation=[build(EvaluationConfig, e, f"{where}.evaluation[{i}]")
                    for i, e in enumerate(evaluation)],
        **models)


def experiment_summary(summary: List[Any]) -> List[Dict[str, Any]]:
    kinds = {"experiment_id": (str,), "dataset_record_id": (str, int),
             "completion": (str, type(None)), "prompt_tokens": (int, type(None)),
             "completion_tokens": (int, type(None)),
             "latency_ms": (int, float, type(None)),
             "evaluation": (str, list, dict, type(None))}
    records = []
    first_id = None
    for i, item in enumerate(summary):
        where = f"experiment_summary[{i}]"
        if not isinstance(item, dict):
            raise ApiError(400, f"{where} must be a JSON object")
        record = {}
        for key, kind in kinds.items():
            if key not in item:
                raise ApiError(400, f"{where}: missing field '{key}'")
            value = item[key]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ApiError(400, f"{where}.{key} has the wrong type")
            record[key] = value
        if isinstance(record["dataset_record_id"], int):
            record["dataset_record_id"] = str(record["dataset_record_id"])
        if not record["experiment_id"]:
            raise ApiError(400, f"{where}.experiment_id is empty")
        first_id = first_id or record["experiment_id"]
        if record["experiment_id"] != first_id:
            raise ApiError(400, f"{where}.experiment_id differs from the first record's")
        records.append(record)
    return records
