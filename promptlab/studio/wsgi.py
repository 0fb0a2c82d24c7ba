"""The studio as a WSGI application (PEP 3333), so that a maintained production
server can carry it, for example waitress (``pip install 'promptlab-core[server]'``)::

    PROMPTLAB_STUDIO_DB=/srv/lab.db waitress-serve --listen=127.0.0.1:8000 \\
        promptlab.studio.wsgi:application

``promptlab studio start`` serves the same application with the standard library's
server (``promptlab.studio.server``), so both answer alike.

Per request: the head is admitted first (``StudioApp.admit``: route, token, declared
length), then the body's length is reserved from the studio's ``BodyBudget`` and the
body read, then ``StudioApp.handle`` answers. A stranger's body is never read.
"""

from __future__ import annotations

import logging
import os
import threading
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from promptlab.studio.app import StudioApp
from promptlab.studio.auth import StudioError
from promptlab.studio.config import StudioConfig
from promptlab.studio.http import Request, Response, error_response
from promptlab.studio.limits import BodyBudget, read_body
from promptlab.studio.proxies import client_address

log = logging.getLogger("promptlab.studio")

DB_ENV = "PROMPTLAB_STUDIO_DB"

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)

StartResponse = Callable[..., Any]


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def _headers_of(environ: Dict[str, Any]) -> Dict[str, str]:
    """Request headers by lower-case name, from the CGI-style keys."""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
               if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _text(value: str) -> str:
    """A WSGI "native string" (bytes as latin-1) back to the UTF-8 text it was."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value.encode("latin-1", "replace").decode("utf-8", "replace")


class StudioWSGI:
    """A WSGI callable over one ``StudioApp``."""

    def __init__(self, app: StudioApp) -> None:
        self.app = app
        self.config = app.config
        self.budget = BodyBudget(app.config.max_bodies_bytes)

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        response = self.respond(environ)
        headers = self.response_headers(response)
        start_response(_status_line(response.status), headers)
        if environ.get("REQUEST_METHOD") == "HEAD" or response.status in (204, 304):
            return [b""]
        return [response.body]

    def respond(self, environ: Dict[str, Any]) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return error_response(400, "Invalid Content-Length")
        client, shared = client_address(environ.get("REMOTE_ADDR") or "",
                                        environ.get("HTTP_X_FORWARDED_FOR") or "",
                                        self.config.trusted_proxies)
        request = Request(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=_text(environ.get("PATH_INFO") or "/"),
            query_string=environ.get("QUERY_STRING") or "",
            headers=_headers_of(environ), client=client, shared=shared,
            content_length=length)
        refused = self.app.admit(request)
        if refused is not None:
            return refused
        if length == 0:
            return self.app.handle(request)
        if not self.budget.reserve(length):
            log.warning("%s %s: request bodies in flight are over the budget of %d bytes",
                        request.method, request.path, self.budget.limit)
            return error_response(503, "The studio is receiving too much at once; try "
                                       "again.", [("Retry-After", "1")])
        try:
            try:
                request.body = read_body(environ["wsgi.input"], length)
            except TimeoutError:
                return error_response(408, "The request did not arrive in time")
            except (EOFError, OSError, ValueError) as exc:
                log.info("%s %s: body not received: %s", request.method, request.path, exc)
                return error_response(400, "The request body was cut short")
            return self.app.handle(request)
        finally:
            request.body = b""
            self.budget.release(length)

    @staticmethod
    def response_headers(response: Response) -> List[Tuple[str, str]]:
        headers: List[Tuple[str, str]] = []
        if response.status != 204:
            headers += [("Content-Type", response.content_type),
                        ("Content-Length", str(len(response.body)))]
        if response.content_type.startswith("application/json"):
            headers.append(("Cache-Control", "no-store"))
        return headers + list(SECURITY_HEADERS) + list(response.headers)


def make_app(db_file: Optional[str] = None, environ: Optional[Dict[str, str]] = None,
             secret: Optional[bytes] = None, **settings: Any) -> StudioWSGI:
    """The WSGI application for ``db_file`` (default: ``$PROMPTLAB_STUDIO_DB``), with
    the ``PROMPTLAB_*`` settings of the environment and ``settings`` over them.
    Initializes (upgrades) the database; StudioError when it cannot serve it."""
    from promptlab.sqlite.admin import default_password_warning

    env = os.environ if environ is None else environ
    db_file = db_file or env.get(DB_ENV)
    if not db_file:
        raise StudioError(f"name the database: make_app(db_file) or set {DB_ENV}.")
    config = StudioConfig.from_env(os.fspath(db_file), environ=env)
    for name, value in settings.items():
        if not hasattr(config, name):
            raise TypeError(f"unknown studio setting {name!r}")
        setattr(config, name, value)
    config.__post_init__()
    app = StudioApp(config, secret=secret)
    # A production server is for a team: the original's admin/admin is never served.
    warning = default_password_warning(app.db_file)
    if warning:
        raise StudioError(f"refusing to serve {app.db_file}: {warning}")
    return StudioWSGI(app)


_application: Optional[StudioWSGI] = None
_application_lock = threading.Lock()


def application(environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI entry point for servers given ``promptlab.studio.wsgi:application``:
    the studio of ``$PROMPTLAB_STUDIO_DB``, made at the first request."""
    global _application
    if _application is None:
        with _application_lock:
            if _application is None:
                _application = make_app()
    return _application(environ, start_response)
