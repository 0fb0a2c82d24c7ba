"""The studio's HTTP types: a request (head first, body later), a response, the
signed-in user, errors as answers, and JSON bodies both ways."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs

from promptlab.jsonvalues import finite

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class ApiError(Exception):
    """An answer other than 200: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str,
                 headers: Sequence[Tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


@dataclass
class Request:
    """One HTTP request: the head first (``admit`` decides on it), the body later.

    ``path`` is decoded (as WSGI's ``PATH_INFO``), ``headers`` are keyed by lower-case
    name, ``client`` is the address the login slow-down counts (``shared`` when it
    may stand for many people, see ``proxies.client_address``)."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Union[bytes, bytearray] = b""
    """The bytearray ``limits.read_body`` filled in place (not copied) once admitted."""
    client: str = ""
    shared: bool = True
    content_length: int = 0
    query: Dict[str, List[str]] = field(default_factory=dict)
    query_error: Optional[str] = None
    route: Optional[Tuple[Any, Tuple[str, ...], Optional["Principal"], bool]] = None
    """Set by ``admit``: handler, path arguments, user, whether a token was needed."""

    def __post_init__(self) -> None:
        self.path = self.path or "/"
        try:
            self.query = parse_qs(self.query_string, keep_blank_values=True,
                                  max_num_fields=200)
        except ValueError:
            self.query_error = "Too many query parameters"
            return
        for values in self.query.values():
            if any("\0" in v for v in values):
                self.query_error = "A query parameter holds a NUL character"

    def header(self, name: str) -> str:
        return self.headers.get(name.lower()) or ""

    def json(self) -> Any:
        """The body as JSON (an object or array); ApiError 400/415 otherwise."""
        ctype = self.header("Content-Type").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "Send the body as JSON with Content-Type: application/json")
        if not self.body:
            raise ApiError(400, "The request body is empty; expected JSON")
        try:
            data = json.loads(self.body.decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError(400, "The request body is not UTF-8") from None
        except RecursionError:
            raise ApiError(400, "The JSON body is nested too deeply") from None
        except ValueError as exc:
            raise ApiError(400, f"Malformed JSON: {exc}") from None
        # JSON may escape a lone surrogate ("\\ud800"), which no UTF-8 text (nor the
        # database) can hold: refuse it here rather than fail deep inside.
        if _SURROGATE_ESCAPE.search(self.body) and _has_surrogate(data):
            raise ApiError(400, "The JSON body holds a lone surrogate (\\ud800-\\udfff), "
                                "which is not valid Unicode")
        return data

    def json_object(self) -> Dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise ApiError(400, "The JSON body must be an object")
        return data

    def param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_param(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ApiError(400, f"{name} must be between {low} and {high}")
        return value


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: List[Tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request (role read from the database, not the token)."""

    username: str
    role: str


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def json_bytes(data: Any) -> bytes:
    try:
        text = json.dumps(data, default=_default, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(finite(data), default=_default, ensure_ascii=False)
    return text.encode("utf-8")


def json_response(data: Any, status: int = 200,
                  headers: Sequence[Tuple[str, str]] = ()) -> Response:
    return Response(status, json_bytes(data), headers=list(headers))


def error_response(status: int, message: str,
                   headers: Sequence[Tuple[str, str]] = ()) -> Response:
    """The error shape: ``success``/``message`` as the original's JSONResponse errors,
    and ``detail`` as its HTTPException errors."""
    return json_response({"success": False, "message": message, "detail": message},
                         status, headers)


def iso(value: Any) -> Any:
    """A datetime as ISO text for JSON; anything else as it is."""
    return value.isoformat() if isinstance(value, (datetime, date)) else value
