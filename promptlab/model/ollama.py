"""Ollama through its HTTP API (``/api/chat``, ``/api/embed``) with the standard library.

The server is ``ModelConfig.endpoint``, else ``OLLAMA_HOST`` (as the ``ollama`` client
reads it: ``host``, ``host:port`` or a URL), else ``http://127.0.0.1:11434``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional

from promptlab.model import retry
from promptlab.model.model import EmbeddingModel, Model
from promptlab.types import ModelConfig, ModelResponse

DEFAULT_HOST = "http://127.0.0.1:11434"
TIMEOUT = float(os.environ.get("PROMPTLAB_MODEL_TIMEOUT", "600"))


def base_url(endpoint: Optional[str] = None) -> str:
    """The Ollama server's URL, without a trailing slash (port 11434 when none is given)."""
    host = (endpoint or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    parts = urllib.parse.urlsplit(host)
    netloc = parts.netloc if parts.port is not None else f"{parts.netloc}:11434"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def model_name(config: ModelConfig) -> str:
    """``llama3.2`` of ``ollama/llama3.2`` (everything after the first slash)."""
    return config.name.split("/", 1)[1] if "/" in config.name else config.name


def _post(url: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """POST JSON, return JSON; TransientModelError for what is worth another try."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        message = f"Ollama at {url} answered {exc.code}: {detail}"
        if retry.is_transient_status(exc.code):
            raise retry.TransientModelError(
                message, retry.parse_retry_after(exc.headers.get("Retry-After"))) from None
        raise RuntimeError(message) from None
    except (ConnectionResetError, ConnectionAbortedError, http.client.RemoteDisconnected,
            TimeoutError) as exc:  # socket.timeout is TimeoutError since 3.10
        raise retry.TransientModelError(f"Ollama at {url}: {exc}") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (ConnectionResetError, ConnectionAbortedError, socket.timeout,
                               TimeoutError)):
            raise retry.TransientModelError(f"Ollama at {url}: {reason}") from exc
        raise ConnectionError(f"cannot reach Ollama at {url}: {reason} (is `ollama serve` "
                              "running? set OLLAMA_HOST or the model config's endpoint)"
                              ) from None
    if not isinstance(answer, dict):
        raise RuntimeError(f"Ollama at {url} answered {type(answer).__name__} JSON, "
                           "not an object")
    return answer


class Ollama(Model):
    """A completion model served by Ollama (``ollama/<model>``)."""

    def __init__(self, model_config: ModelConfig) -> None:
        super().__init__(model_config)
        self.model_name = model_name(model_config)
        self.url = base_url(model_config.endpoint) + "/api/chat"

    def _chat(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        body = {"model": self.model_name, "stream": False,
                "messages": [{"role": "system", "content": system_prompt},
                             {"role": "user", "content": user_prompt}]}
        start = time.perf_counter()
        data = retry.call(lambda: _post(self.url, body))
        latency_ms = round((time.perf_counter() - start) * 1000)  # ModelResponse: int ms
        return ModelResponse(response=(data.get("message") or {}).get("content", ""),
                             prompt_tokens=data.get("prompt_eval_count") or 0,
                             completion_tokens=data.get("eval_count") or 0,
                             latency_ms=latency_ms)

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        return self._chat(system_prompt, user_prompt)

    async def ainvoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        # urllib blocks: run it on a worker thread, as the original ran its client.
        return await asyncio.to_thread(self._chat, system_prompt, user_prompt)


class Ollama_Embedding(EmbeddingModel):
    """An embedding model served by Ollama (``ollama/<model>``)."""

    def __init__(self, model_config: ModelConfig) -> None:
        super().__init__(model_config)
        self.model_name = model_name(model_config)
        self.url = base_url(model_config.endpoint) + "/api/embed"

    def __call__(self, text: str) -> List[float]:
        body = {"model": self.model_name, "input": text}
        data = retry.call(lambda: _post(self.url, body))
        embeddings = data.get("embeddings") or []
        if not embeddings:
            raise RuntimeError(f"Ollama at {self.url} returned no embedding")
        return [float(x) for x in embeddings[0]]


# The original's factory names: <prefix>_<type>.
ollama_completion = Ollama
ollama_embedding = Ollama_Embedding
