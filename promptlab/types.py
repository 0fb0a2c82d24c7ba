"""Configuration and value types, with the field names and defaults of PromptLab 0.1.x.

Plain dataclasses (the original used pydantic). They are built with keywords, as the
pydantic models were, and nested configuration may be given as dicts:
``ExperimentConfig(dataset={"name": ..., ...}, evaluation=[{...}])`` works as before.
Validation is limited to what the original checked explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Type,
    TypeVar,
    Union,
    runtime_checkable,
)

from promptlab.enums import TracerType

_T = TypeVar("_T")

_INVALID_PATH_CHARS = '<>"|?*'


def _coerce(cls: Type[_T], value: Any) -> Any:
    """``cls(**value)`` when ``value`` is a mapping; anything else unchanged."""
    return cls(**value) if isinstance(value, Mapping) else value


def sanitize_path(value: Union[str, "os.PathLike[str]"]) -> str:
    """Reject an empty path or one holding any of ``<>"|?*``; return it normalized.

    Same checks as the original ``Utils.sanitize_path`` (ValueError on failure).
    """
    value = os.fspath(value)
    if any(char in value for char in _INVALID_PATH_CHARS):
        raise ValueError("Invalid characters in file path")
    if not value:
        raise ValueError("File path cannot be empty")
    if "://" in value:
        return value  # a database URL (sqlite:///path): normpath would eat a slash
    return os.path.normpath(value)


@dataclass
class ModelResponse:
    """What a model returns for one completion."""

    response: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


@dataclass(kw_only=True)
class ModelConfig:
    """A model to call: ``name`` like ``"ollama/llama3.2"``, and its connection settings."""

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


@dataclass(kw_only=True)
class Dataset:
    """A dataset asset: a JSONL file registered under a name and version."""

    name: str
    description: str
    file_path: str
    version: int = 0
    user: str = "admin"


@dataclass(kw_only=True)
class PromptTemplate:
    """A prompt template asset: a system and a user prompt under a name and version."""

    name: str
    description: str
    system_prompt: str
    user_prompt: str
    version: int = 0
    user: str = "admin"


@dataclass(kw_only=True)
class EvaluationConfig:
    """One metric to compute, with the mapping from its inputs to dataset columns."""

    metric: str
    column_mapping: Dict[str, Any]
    evaluator: Optional[Any] = None


@dataclass(kw_only=True)
class ExperimentConfig:
    """Everything an experiment run needs; nested configs may be given as dicts."""

    name: Optional[str] = None
    completion_model_config: Optional[ModelConfig] = None
    embedding_model_config: Optional[ModelConfig] = None
    prompt_template: Optional[PromptTemplate] = None
    agent_proxy: Optional[Callable[..., Any]] = None
    dataset: Dataset
    evaluation: List[EvaluationConfig]
    user: str = "admin"

    def __post_init__(self) -> None:
        self.completion_model_config = _coerce(ModelConfig, self.completion_model_config)
        self.embedding_model_config = _coerce(ModelConfig, self.embedding_model_config)
        self.prompt_template = _coerce(PromptTemplate, self.prompt_template)
        self.dataset = _coerce(Dataset, self.dataset)
        self.evaluation = [_coerce(EvaluationConfig, e) for e in self.evaluation]


@dataclass(kw_only=True)
class TracerConfig:
    """Where to trace: ``type`` is a TracerType or its value, stored as the string value."""

    type: Union[TracerType, str]
    db_file: Optional[str] = None
    endpoint: Optional[str] = None
    jwt_token: Optional[str] = None

    def __post_init__(self) -> None:
        self.type = TracerType(self.type).value  # ValueError for an unknown type
        if self.db_file is not None:
            self.db_file = sanitize_path(self.db_file)
