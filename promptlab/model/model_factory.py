"""``ModelFactory.get_model``: the adapter named by the prefix of ``ModelConfig.name``."""

from __future__ import annotations

import importlib
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from promptlab.model.model import EmbeddingModel, Model
from promptlab.types import ModelConfig

# prefix -> (module, completion class, embedding class); imported on first use, so
# that the openai SDK is needed only by the models that use it.
ADAPTERS: Dict[str, Tuple[str, str, str]] = {
    "ollama": ("promptlab.model.ollama", "Ollama", "Ollama_Embedding"),
    "openai": ("promptlab.model.openai_compat", "OpenAICompletion", "OpenAIEmbedding"),
    "azure_openai": ("promptlab.model.openai_compat", "AzOpenAI", "AzOpenAI_Embedding"),
    "openrouter": ("promptlab.model.openai_compat", "OpenRouter", "OpenRouter_Embedding"),
    "deepseek": ("promptlab.model.openai_compat", "DeepSeek", "DeepSeek_Embedding"),
}


class ModelFactory:
    """Chooses a model adapter, as the original's factory did."""

    @staticmethod
    def get_model(model_config: Union[ModelConfig, Mapping[str, Any]], completion: bool = True,
                  model: Optional[Any] = None) -> Union[Model, EmbeddingModel, Any]:
        """``model`` when given (a custom model), else the adapter for the name's prefix;
        ValueError naming the known prefixes for any other name."""
        if isinstance(model_config, Mapping):
            model_config = ModelConfig(**model_config)
        if model is None:
            model = getattr(model_config, "model", None)
        if model is not None:
            return model
        prefix = model_config.name.split("/", 1)[0]
        if prefix not in ADAPTERS or "/" not in model_config.name:
            known = ", ".join(f"{p}/..." for p in ADAPTERS)
            raise ValueError(f"Unknown model {model_config.name!r}: name a model as one of "
                             f"{known}, or pass your own Model as the config's 'model'.")
        module, completion_class, embedding_class = ADAPTERS[prefix]
        cls = getattr(importlib.import_module(module),
                      completion_class if completion else embedding_class)
        return cls(model_config)
