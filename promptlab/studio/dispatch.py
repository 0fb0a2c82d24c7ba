"""Answering a request in two steps, so that a stranger cannot make the studio read
(and hold) a body: ``admit`` decides from the head alone (route, token, role,
declared length) and ``handle`` answers once the body is read. Every failure
becomes an answer here; nothing raises out of the application."""

from __future__ import annotations

import logging
from typing import Callable, Optional, Tuple, TypeVar, Union

from promptlab import _core
from promptlab.studio.handlers_auth import AuthHandlers
from promptlab.studio.http import (
    ApiError,
    Principal,
    Request,
    Response,
    error_response,
    json_response,
)
from promptlab.studio.page import PAGE_PATHS

log = logging.getLogger("promptlab.studio")

SMALL_BODY = 64 * 1024  # login and the routes that take no body

_T = TypeVar("_T", Response, Optional[Response])


class Dispatcher(AuthHandlers):
    """Routing, the request guard and CORS headers over ``self.routes``.

    Part of ``StudioApp`` (``promptlab.studio.app``).
    """

    def admit(self, request: Request) -> Optional[Response]:
        """None when the body of ``request`` may be read; else the answer to send
        without reading it (404/405, 401/403, 413, ...). Never raises."""
        response = self._guard(request, self._admit)
        if response is not None:
            self._cors(request, response)
        return response

    def handle(self, request: Request) -> Response:
        """The response to ``request`` (admitted or not yet); never raises."""
        response: Optional[Response] = None
        if request.route is None:
            response = self._guard(request, self._admit)
        if response is None:
            response = self._guard(request, self._call)
        self._cors(request, response)
        return response

    def body_limit(self, request: Request) -> int:
        """The largest body ``request``'s route takes: the configured limit for the
        routes that need a token, ``SMALL_BODY`` for login and the rest."""
        if request.route is not None and request.route[3]:
            return self.config.max_body_bytes
        return SMALL_BODY

    def _guard(self, request: Request, step: Callable[[Request], _T]) -> Union[_T, Response]:
        """What ``step`` returns, or the error response for what it raised."""
        try:
            return step(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        except _core.DatabaseBusyError:
            log.warning("%s %s: the database stayed busy", request.method, request.path)
            return error_response(503, "The database is busy; try again.",
                                  [("Retry-After", "1")])
        except _core.DatabaseError:
            log.exception("%s %s: database error", request.method, request.path)
            return error_response(503, "The database is unavailable; the studio's log "
                                       "has the details.")
        except Exception:  # noqa: BLE001 - the one place that turns bugs into a 500
            log.exception("%s %s: unexpected error", request.method, request.path)
            return error_response(500, "Internal server error; the studio's log has "
                                       "the details.")

    def _admit(self, request: Request) -> Optional[Response]:
        path = request.path
        if request.query_error:
            raise ApiError(400, request.query_error)
        if "\0" in path:
            raise ApiError(400, "The path holds a NUL character")
        if request.method == "OPTIONS":
            return Response(204, b"")
        if request.method in ("GET", "HEAD") and path in PAGE_PATHS:
            return Response(200, self.page, "text/html; charset=utf-8",
                            [("Content-Security-Policy", self.csp),
                             ("Cache-Control", "no-cache")])
        allowed = []
        for method, pattern, handler, who in self.routes:
            if isinstance(pattern, str):
                args: Tuple[str, ...] = ()
                if pattern != path:
                    continue
            else:
                match = pattern.fullmatch(path)
                if match is None:
                    continue
                args = match.groups()
            allowed.append(method)
            if method != request.method:
                continue
            principal: Optional[Principal] = None
            if who is not None:
                principal = self.authenticate(request)
                if who == "admin" and principal.role != "admin":
                    raise ApiError(403, "Admin access required")
            elif path == "/health":
                principal = self.authenticate(request, optional=True)
            request.route = (handler, args, principal, who is not None)
            if request.content_length > self.body_limit(request):
                limit = self.body_limit(request)
                size = (f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024
                        else f"{limit // 1024} KB")
                raise ApiError(413, f"The request body is larger than {size}")
            return None
        if path.startswith("/api/") and path != "/api/login":
            self.authenticate(request)  # unknown routes tell nothing to strangers
        if allowed:
            raise ApiError(405, f"Method {request.method} not allowed",
                           [("Allow", ", ".join(sorted(set(allowed))))])
        raise ApiError(404, "Not found")

    def _call(self, request: Request) -> Response:
        assert request.route is not None
        handler, args, principal, _ = request.route
        result = handler(self, request, principal, *args)
        return result if isinstance(result, Response) else json_response(result)

    def _cors(self, request: Request, response: Response) -> None:
        origin = request.header("Origin").rstrip("/")
        if not origin or origin not in self.config.cors_origins:
            return
        response.headers += [
            ("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
            ("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"),
            ("Access-Control-Max-Age", "600"),
        ]
