"""``Model`` and ``EmbeddingModel``, the protocols a model object follows. Their public
names are ``promptlab.types.Model`` and ``promptlab.types.EmbeddingModel``; they live
here because a Protocol needs the typing module, which ``promptlab.types`` does not
import at start-up (issue 16)."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Protocol, runtime_checkable

if TYPE_CHECKING:
    from promptlab.model_response import ModelResponse


@runtime_checkable
class Model(Protocol):
    """A completion model."""

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse: ...
    async def ainvoke(self, system_prompt: str, user_prompt: str) -> ModelResponse: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    """An embedding model."""

    def __call__(self, text: str) -> List[float]: ...


Model.__module__ = EmbeddingModel.__module__ = "promptlab.types"  # their public home
