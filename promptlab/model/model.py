"""The model bases of PromptLab 0.1.x: subclass ``Model`` (completion) or
``EmbeddingModel`` to bring your own model, as the original's custom-model sample does."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Awaitable, List, Union

from promptlab.types import ModelConfig, ModelResponse

__all__ = ["Model", "EmbeddingModel", "ModelConfig", "ModelResponse"]


class Model(ABC):
    """A completion model: ``invoke`` (blocking) and ``ainvoke`` (async)."""

    def __init__(self, model_config: ModelConfig) -> None:
        self.model_config = model_config
        self.max_concurrent_tasks = getattr(model_config, "max_concurrent_tasks", 5) or 5

    @abstractmethod
    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        """One completion, blocking."""

    @abstractmethod
    async def ainvoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        """One completion, awaited."""

    def __call__(self, system_prompt: str, user_prompt: str
                 ) -> Union[ModelResponse, Awaitable[ModelResponse]]:
        """``ainvoke`` (a coroutine) inside a running event loop, else ``invoke``,
        as the original did."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.invoke(system_prompt, user_prompt)
        return self.ainvoke(system_prompt, user_prompt)


class EmbeddingModel(ABC):
    """An embedding model: ``model(text)`` returns the text's vector."""

    def __init__(self, model_config: ModelConfig) -> None:
        self.model_config = model_config

    @abstractmethod
    def __call__(self, text: str) -> List[float]:
        """The embedding of ``text``."""
