"""Model adapters over real HTTP against fake servers on 127.0.0.1 (tests/fakes.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from conftest import NEUTRAL_CWD
from fakes import FakeModelServer, embedding_of
from promptlab.model.model import EmbeddingModel, Model
from promptlab.model.model_factory import ModelFactory
from promptlab.model.ollama import base_url
from promptlab.model.retry import TransientModelError
from promptlab.types import ModelConfig, ModelResponse

pytest.importorskip("openai")


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MODEL_BACKOFF", "0.01")
    with FakeModelServer() as server:
        yield server


def completion(name: str, **settings) -> Model:
    return ModelFactory.get_model(ModelConfig(name=name, type="completion", **settings), True)


def embedding(name: str, **settings) -> EmbeddingModel:
    return ModelFactory.get_model(ModelConfig(name=name, type="embedding", **settings), False)


def openai_settings(fake: FakeModelServer, prefix: str) -> dict:
    if prefix == "azure_openai":
        return {"endpoint": fake.url, "api_key": "k", "api_version": "2024-10-21"}
    return {"endpoint": fake.url + "/v1", "api_key": "k"}


# --- Ollama ----------------------------------------------------------------------


def test_ollama_completion_sync_and_async(fake):
    model = completion("ollama/llama3.2", endpoint=fake.url)
    response = model.invoke("be brief", "hello there")
    assert isinstance(response, ModelResponse)
    assert response.response == "4. Feedback on: hello there"
    assert (response.prompt_tokens, response.completion_tokens) == (11, 5)
    assert isinstance(response.latency_ms, int) and response.latency_ms >= 0
    again = asyncio.run(model.ainvoke("be brief", "hello again"))
    assert again.response == "4. Feedback on: hello again"
    request = fake.requests[0]
    assert request["path"] == "/api/chat"
    assert request["body"] == {"model": "llama3.2", "stream": False, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}


def test_ollama_call_is_sync_outside_a_loop_and_a_coroutine_inside(fake):
    model = completion("ollama/llama3.2", endpoint=fake.url)
    assert model("s", "u").response.endswith("u")

    async def inside():
        return await model("s", "v")

    assert asyncio.run(inside()).response.endswith("v")


def test_ollama_embedding(fake):
    model = embedding("ollama/nomic-embed-text:latest", endpoint=fake.url)
    assert model("some text") == embedding_of("some text")
    assert fake.requests[0]["body"] == {"model": "nomic-embed-text:latest", "input": "some text"}


def test_ollama_host_from_environment(fake, monkeypatch):
    port = fake.server_address[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    assert completion("ollama/m").invoke("s", "u").response.endswith("u")
    assert fake.paths() == ["/api/chat"]


def test_ollama_base_url_spellings(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert base_url() == "http://127.0.0.1:11434"
    assert base_url("localhost") == "http://localhost:11434"
    assert base_url("http://example.test:8080/") == "http://example.test:8080"
    assert base_url("https://example.test/ollama") == "https://example.test:11434/ollama"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    assert base_url() == "http://0.0.0.0:9999"
    assert base_url("http://127.0.0.1:1") == "http://127.0.0.1:1"  # the config wins


def test_ollama_unreachable_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MODEL_BACKOFF", "0.01")
    with FakeModelServer() as gone:
        url = gone.url
    with pytest.raises(ConnectionError, match="cannot reach Ollama"):
        completion("ollama/m", endpoint=url).invoke("s", "u")


# --- OpenAI-compatible -------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["openai", "azure_openai", "openrouter", "deepseek"])
def test_openai_compatible_completion_and_embedding(fake, prefix):
    settings = openai_settings(fake, prefix)
    model = completion(f"{prefix}/gpt-4o", **settings)
    response = model.invoke("sys", "what is up")
    assert response.response == "4. Feedback on: what is up"
    assert (response.prompt_tokens, response.completion_tokens) == (13, 6)
    assert asyncio.run(model.ainvoke("sys", "async")).response.endswith("async")
    assert embedding(f"{prefix}/text-embedding-3-small", **settings)("abc") == embedding_of("abc")
    chat = fake.requests[0]
    assert chat["body"]["model"] == "gpt-4o"
    assert chat["body"]["messages"][1] == {"role": "user", "content": "what is up"}
    if prefix == "azure_openai":
        assert chat["path"].startswith("/openai/deployments/gpt-4o/chat/completions")
    else:
        assert chat["path"] == "/v1/chat/completions"
    assert fake.requests[-1]["body"]["model"] == "text-embedding-3-small"
    if prefix == "openrouter":
        assert chat["headers"].get("x-title") == "PromptLab"


def test_openrouter_model_names_keep_their_slash(fake):
    completion("openrouter/meta-llama/llama-3-8b", **openai_settings(fake, "openrouter")
               ).invoke("s", "u")
    assert fake.requests[0]["body"]["model"] == "meta-llama/llama-3-8b"


# --- retries -----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["ollama", "openai"])
def test_rate_limits_and_server_errors_are_retried(fake, prefix):
    settings = ({"endpoint": fake.url} if prefix == "ollama"
                else openai_settings(fake, prefix))
    model = completion(f"{prefix}/m", **settings)
    fake.fail(429, times=2, retry_after=0)
    fake.fail(503)
    assert model.invoke("s", "u").response.endswith("u")
    assert len(fake.requests) == 4
    fake.fail(502)
    assert asyncio.run(model.ainvoke("s", "w")).response.endswith("w")
    assert len(fake.requests) == 6


@pytest.mark.parametrize("prefix", ["ollama", "openai"])
def test_reset_connections_are_retried(fake, prefix):
    settings = ({"endpoint": fake.url} if prefix == "ollama"
                else openai_settings(fake, prefix))
    fake.reset(times=2)
    assert completion(f"{prefix}/m", **settings).invoke("s", "u").response.endswith("u")
    assert len(fake.requests) == 3


def test_retries_are_bounded(fake, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MODEL_RETRIES", "2")
    fake.fail(500, times=10)
    with pytest.raises(TransientModelError, match="500"):
        completion("ollama/m", endpoint=fake.url).invoke("s", "u")
    assert len(fake.requests) == 3


@pytest.mark.parametrize("prefix", ["ollama", "openai"])
def test_client_errors_are_not_retried(fake, prefix):
    import openai

    settings = ({"endpoint": fake.url} if prefix == "ollama"
                else openai_settings(fake, prefix))
    fake.fail(400, times=3)
    with pytest.raises((RuntimeError, openai.BadRequestError)):
        completion(f"{prefix}/m", **settings).invoke("s", "u")
    assert len(fake.requests) == 1


# --- choosing a model ----------------------------------------------------------------


def test_unknown_prefix_names_the_known_ones():
    with pytest.raises(ValueError, match="ollama/.*openai/.*azure_openai/"):
        completion("acme/model-1")
    with pytest.raises(ValueError, match="Unknown model"):
        completion("llama3.2")


def test_a_custom_model_is_used_as_given():
    class Echo(Model):
        def invoke(self, system_prompt, user_prompt):
            return ModelResponse(user_prompt, 0, 0, 0)

        async def ainvoke(self, system_prompt, user_prompt):
            return self.invoke(system_prompt, user_prompt)

    echo = Echo(ModelConfig(name="echo/1", type="completion", max_concurrent_tasks=3))
    assert echo.max_concurrent_tasks == 3
    config = ModelConfig(name="custom/anything", type="completion", model=echo)
    assert ModelFactory.get_model(config) is echo
    assert ModelFactory.get_model({"name": "x/y", "type": "completion"}, model=echo) is echo


def test_missing_models_extra_is_one_line_naming_it():
    code = ("import sys; sys.modules['openai'] = None\n"
            "from promptlab.model.model_factory import ModelFactory\n"
            "ModelFactory.get_model({'name': 'openai/gpt-4o', 'type': 'completion'})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=NEUTRAL_CWD)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:")
    assert "promptlab[models]" in last and "models" in last


def test_ollama_needs_no_extra():
    code = ("import sys; sys.modules['openai'] = None\n"
            "from promptlab.model.model_factory import ModelFactory\n"
            "m = ModelFactory.get_model({'name': 'ollama/x', 'type': 'completion'})\n"
            "print(type(m).__name__)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=NEUTRAL_CWD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Ollama"
