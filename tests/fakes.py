"""Fake model servers on 127.0.0.1 for tests: real HTTP, no model.

``FakeModelServer`` answers Ollama's ``/api/chat`` and ``/api/embed`` and the
OpenAI-compatible ``/v1/chat/completions`` and ``/v1/embeddings`` (also under Azure's
``/openai/deployments/NAME/...``). Completions are deterministic text built from the
request; embeddings are vectors derived from the text's hash. Tests can queue
failures (an HTTP status, or a reset connection) and read every request (header names in lower case).
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional


def embedding_of(text: str, dims: int = 8) -> List[float]:
    """A deterministic unit vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    values = [b / 255.0 + 0.01 for b in digest[:dims]]
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


def default_reply(messages: List[Dict[str, Any]]) -> str:
    """Deterministic text that starts with a score, so model judges can read one."""
    user = next((m.get("content", "") for m in reversed(messages)
                 if m.get("role") == "user"), "")
    return f"4. Feedback on: {' '.join(str(user).split())[:80]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FakeModelServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        fake = self.server
        with fake.lock:
            fake.requests.append({"path": self.path, "body": body,
                                  "headers": {k.lower(): v for k, v in self.headers.items()}})
            failure = fake.failures.pop(0) if fake.failures else None
        if failure == "reset":
            # An RST instead of an answer: the client sees a reset connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return self._send(status, {"error": {"message": f"fake {status}",
                                                 "type": "fake_error"}}, headers)
        fake.enter()
        try:
            path = self.path.split("?", 1)[0]
            if path == "/api/chat":
                return self._send(200, fake.ollama_chat(body))
            if path == "/api/embed":
                return self._send(200, fake.ollama_embed(body))
            if path.endswith("/chat/completions"):
                return self._send(200, fake.openai_chat(body))
            if path.endswith("/embeddings"):
                return self._send(200, fake.openai_embed(body))
            return self._send(404, {"error": f"no route {path}"})
        finally:
            fake.leave()

    def _send(self, status: int, payload: Dict[str, Any],
              headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeModelServer(ThreadingHTTPServer):
    """A fake Ollama and OpenAI-compatible server; use as a context manager."""

    daemon_threads = True

    def __init__(self, reply: Callable[[List[Dict[str, Any]]], str] = default_reply) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.lock = threading.Lock()
        self.requests: List[Dict[str, Any]] = []
        self.failures: List[Any] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._gate: Optional[int] = None
        self._changed = threading.Condition(self.lock)
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default).
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "FakeModelServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)

    # --- what tests set -------------------------------------------------------

    def fail(self, status: int, times: int = 1, retry_after: Optional[float] = None) -> None:
        """Answer the next ``times`` requests with ``status``."""
        with self.lock:
            self.failures.extend([(status, retry_after)] * times)

    def reset(self, times: int = 1) -> None:
        """Reset the connection of the next ``times`` requests."""
        with self.lock:
            self.failures.extend(["reset"] * times)

    def hold_until(self, count: int) -> None:
        """Hold each request until ``count`` are in progress at once (at most 10 s),
        so a test sees whether the client really sends that many concurrently."""
        with self.lock:
            self._gate = count

    def paths(self) -> List[str]:
        with self.lock:
            return [r["path"] for r in self.requests]

    # --- bookkeeping ----------------------------------------------------------

    def enter(self) -> None:
        with self._changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()
            if self._gate is not None:
                deadline = time.monotonic() + 10
                while self.max_in_flight < self._gate and time.monotonic() < deadline:
                    self._changed.wait(deadline - time.monotonic())

    def leave(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    # --- answers --------------------------------------------------------------

    def _text(self, messages: List[Dict[str, Any]]) -> str:
        return self.reply(messages)

    def ollama_chat(self, body: Dict[str, Any]) -> Dict[str, Any]:
        text = self._text(body.get("messages", []))
        return {"model": body.get("model"), "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": text}, "done": True,
                "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 0,
                "prompt_eval_count": 11, "prompt_eval_duration": 0,
                "eval_count": len(text.split()), "eval_duration": 0}

    def ollama_embed(self, body: Dict[str, Any]) -> Dict[str, Any]:
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        return {"model": body.get("model"),
                "embeddings": [embedding_of(str(text)) for text in inputs]}

    def openai_chat(self, body: Dict[str, Any]) -> Dict[str, Any]:
        text = self._text(body.get("messages", []))
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 13, "completion_tokens": len(text.split()),
                          "total_tokens": 13 + len(text.split())}}

    def openai_embed(self, body: Dict[str, Any]) -> Dict[str, Any]:
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        return {"object": "list", "model": body.get("model"),
                "data": [{"object": "embedding", "index": i, "embedding": embedding_of(str(t))}
                         for i, t in enumerate(inputs)],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}
