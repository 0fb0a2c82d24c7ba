"""The studio's HTTP API, independent of the server that carries it.

``StudioApp.handle(Request) -> Response`` answers one request and never raises: bad
input is a 400 with a message, unknown things a 404, and anything unexpected is
logged here and answered with a 500 that tells nothing about the inside.

The routes and JSON shapes of the original PromptLab studio are kept so that its
clients (the ``remote`` tracer, scripts) keep working: ``POST /api/login``, ``GET
/api/experiments``, ``GET /api/prompts``, ``GET /api/datasets``, ``GET /api/assets``,
``GET|POST /api/users``, ``DELETE /api/users/{username}``, ``POST /api/experiments``,
``POST /api/datasets``, ``POST /api/templates`` and ``GET /health``. The page also
uses ``GET /api/me`` and the read-only ``/api/studio/...`` routes.

The application is split by concern (see ``promptlab.studio.app``); this module
keeps the names it has always offered.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from promptlab.store.formats import display_prompt_template as split_prompt_template
from promptlab.studio.app import StudioApp
from promptlab.studio.config import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODIES_MB,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TOKEN_MINUTES,
    StudioConfig,
)
from promptlab.studio.dispatch import SMALL_BODY
from promptlab.studio.handlers_auth import MAX_TOKEN_MINUTES
from promptlab.studio.handlers_experiments import EXPERIMENT_ROWS_MAX, EXPERIMENT_ROWS_PAGE
from promptlab.studio.handlers_views import COMPARE_ONLY, MAX_COMPARED, MAX_PAGE, PREVIEW_MAX
from promptlab.studio.http import (
    ApiError,
    Principal,
    Request,
    Response,
    error_response,
    json_bytes,
    json_response,
)
from promptlab.studio.validation import ROLES

Handler = Callable[[StudioApp, Request, Optional[Principal]], Any]

__all__ = [
    "COMPARE_ONLY", "DEFAULT_HEADER_TIMEOUT", "DEFAULT_MAX_BODIES_MB", "DEFAULT_MAX_BODY_MB",
    "DEFAULT_REQUEST_TIMEOUT", "DEFAULT_TOKEN_MINUTES", "EXPERIMENT_ROWS_MAX",
    "EXPERIMENT_ROWS_PAGE", "MAX_COMPARED", "MAX_PAGE", "MAX_TOKEN_MINUTES", "PREVIEW_MAX",
    "ROLES", "SMALL_BODY", "ApiError", "Handler", "Principal", "Request", "Response",
    "StudioApp", "StudioConfig", "error_response", "json_bytes", "json_response",
    "split_prompt_template",
]
