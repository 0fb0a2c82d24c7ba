"""Adapters over the official ``openai`` SDK (the ``models`` extra): OpenAI, Azure
OpenAI, and the OpenAI-compatible APIs of OpenRouter and DeepSeek (through ``base_url``).

The SDK's own retries are off (``max_retries=0``) so that every adapter retries the
same way (``promptlab.model.retry``).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from promptlab.model import retry
from promptlab.model.model import EmbeddingModel, Model
from promptlab.types import ModelConfig, ModelResponse

EXTRA_HINT = "pip install 'promptlab[models]'"


def _sdk() -> Any:
    try:
        import openai
    except ImportError:
        raise ImportError(f"this model needs the openai package (the 'models' extra): "
                          f"{EXTRA_HINT}") from None
    return openai


def model_name(config: ModelConfig) -> str:
    """``gpt-4o`` of ``openai/gpt-4o``: everything after the first slash (OpenRouter
    names such as ``openrouter/meta-llama/llama-3`` keep their own slash)."""
    return config.name.split("/", 1)[1] if "/" in config.name else config.name


def _transient(openai: Any, exc: Exception) -> Optional[retry.TransientModelError]:
    """The SDK's error as a TransientModelError when another try may succeed."""
    if isinstance(exc, openai.APIStatusError):
        if not retry.is_transient_status(exc.status_code):
            return None
        after = retry.parse_retry_after(exc.response.headers.get("retry-after"))
        return retry.TransientModelError(str(exc), after)
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return retry.TransientModelError(str(exc))
    return None


class _OpenAICompatible:
    """The client construction and error mapping shared by completion and embedding."""

    default_base_url: Optional[str] = None
    extra_headers: Optional[Dict[str, str]] = None

    def _clients(self, config: ModelConfig, asynchronous: bool) -> None:
        openai = self._openai = _sdk()
        self.model_name = model_name(config)
        self.client: Any = self._make(openai, config, asynchronous=False)
        self.async_client: Any = (self._make(openai, config, asynchronous=True)
                                  if asynchronous else None)

    def _make(self, openai: Any, config: ModelConfig, asynchronous: bool) -> Any:
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls(api_key=config.api_key, base_url=config.endpoint or self.default_base_url,
                   max_retries=0)

    def _call(self, fn: Any) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except self._openai.OpenAIError as exc:
                transient = _transient(self._openai, exc)
                if transient is None:
                    raise
                raise transient from exc
        return retry.call(attempt)

    async def _acall(self, fn: Any) -> Any:
        async def attempt() -> Any:
            try:
                return await fn()
            except self._openai.OpenAIError as exc:
                transient = _transient(self._openai, exc)
                if transient is None:
                    raise
                raise transient from exc
        return await retry.acall(attempt)


def _response(completion: Any, latency_ms: int) -> ModelResponse:
    usage = completion.usage
    return ModelResponse(response=completion.choices[0].message.content or "",
                         prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                         completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                         latency_ms=latency_ms)


class OpenAICompletion(_OpenAICompatible, Model):
    """Chat completions of an OpenAI-compatible API."""

    def __init__(self, model_config: ModelConfig) -> None:
        Model.__init__(self, model_config)
        self._clients(model_config, asynchronous=True)

    def _request(self, system_prompt: str, user_prompt: str) -> Dict[str, Any]:
        return {"model": self.model_name, "extra_headers": self.extra_headers,
                "messages": [{"role": "system", "content": system_prompt},
                             {"role": "user", "content": user_prompt}]}

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        request = self._request(system_prompt, user_prompt)
        start = time.perf_counter()
        completion = self._call(lambda: self.client.chat.completions.create(**request))
        return _response(completion, round((time.perf_counter() - start) * 1000))

    async def ainvoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        request = self._request(system_prompt, user_prompt)
        start = time.perf_counter()
        completion = await self._acall(
            lambda: self.async_client.chat.completions.create(**request))
        return _response(completion, round((time.perf_counter() - start) * 1000))


class OpenAIEmbedding(_OpenAICompatible, EmbeddingModel):
    """Embeddings of an OpenAI-compatible API."""

    def __init__(self, model_config: ModelConfig) -> None:
        EmbeddingModel.__init__(self, model_config)
        self._clients(model_config, asynchronous=False)

    def __call__(self, text: str) -> List[float]:
        result = self._call(lambda: self.client.embeddings.create(
            model=self.model_name, input=text, extra_headers=self.extra_headers))
        return list(result.data[0].embedding)


class _Azure:
    def _make(self, openai: Any, config: ModelConfig, asynchronous: bool) -> Any:
        cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        return cls(api_key=config.api_key, api_version=config.api_version,
                   azure_endpoint=config.endpoint, max_retries=0)


class _OpenRouter:
    default_base_url: Optional[str] = "https://openrouter.ai/api/v1"
    # OpenRouter's optional attribution headers, as the original sent them.
    extra_headers: Optional[Dict[str, str]] = {"HTTP-Referer": "https://promptlab.local",
                                               "X-Title": "PromptLab"}


class _DeepSeek:
    default_base_url: Optional[str] = "https://api.deepseek.com"


class AzOpenAI(_Azure, OpenAICompletion):
    """Azure OpenAI chat completions (``azure_openai/<deployment>``)."""


class AzOpenAI_Embedding(_Azure, OpenAIEmbedding):
    """Azure OpenAI embeddings (``azure_openai/<deployment>``)."""


class OpenRouter(_OpenRouter, OpenAICompletion):
    """OpenRouter chat completions (``openrouter/<model>``)."""


class OpenRouter_Embedding(_OpenRouter, OpenAIEmbedding):
    """OpenRouter embeddings (``openrouter/<model>``)."""


class DeepSeek(_DeepSeek, OpenAICompletion):
    """DeepSeek chat completions (``deepseek/<model>``)."""


class DeepSeek_Embedding(_DeepSeek, OpenAIEmbedding):
    """DeepSeek embeddings (``deepseek/<model>``)."""
