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
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qs

from promptlab.jsonvalues import finite
from promptlab import __version__, _core
from promptlab.enums import AssetType
from promptlab.sqlite.models import User
from promptlab.studio.auth import (
    LoginThrottle,
    StudioError,
    TokenError,
    decode_token,
    issue_token,
    load_secret,
    password_version,
)
from promptlab.studio.proxies import parse_networks
from promptlab.store.formats import display_prompt_template as split_prompt_template
from promptlab.studio.queries import DatasetFiles, ReadModel
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import (
    Dataset,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    PromptTemplate,
)

log = logging.getLogger("promptlab.studio")

ROLES = ("admin", "engineer")
DEFAULT_TOKEN_MINUTES = 30 * 24 * 60  # as the original studio
DEFAULT_MAX_BODY_MB = 32
DEFAULT_MAX_BODIES_MB = 256
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 60.0
SMALL_BODY = 64 * 1024  # login and the routes that take no body
MAX_PAGE = 500
MAX_COMPARED = 8
MAX_TOKEN_MINUTES = 366 * 24 * 60
PREVIEW_MAX = 50
COMPARE_ONLY = ("differ", "failures")
EXPERIMENT_ROWS_PAGE = 10000  # GET /api/experiments: rows per page by default...
EXPERIMENT_ROWS_MAX = 50000   # ...and at most
# Names are checked with fullmatch: with "$", "admin\n" and "prod\n" passed.
_ASSET_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")  # the original Asset.is_valid_name
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_PAGE_PATHS = ("/", "/index.html", "/experiments", "/prompts", "/datasets")


# --- configuration ------------------------------------------------------------


@dataclass
class StudioConfig:
    """How a studio runs. ``from_env`` reads the ``PROMPTLAB_*`` variables."""

    db_file: str
    host: str = "127.0.0.1"
    port: int = 8000
    token_ttl_seconds: float = DEFAULT_TOKEN_MINUTES * 60
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 1024 * 1024
    cors_origins: Tuple[str, ...] = ()
    datasets_dir: Optional[str] = None
    """Folders (``os.pathsep``-separated) dataset files are read from; None: the
    database's folder."""
    max_connections: int = 256
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds for a request line and headers to arrive (also how long an idle
    keep-alive connection stays open)."""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    """Seconds for a whole request, headers and body, to arrive."""
    max_bodies_bytes: int = DEFAULT_MAX_BODIES_MB * 1024 * 1024
    """Request bodies held at once, all requests together."""
    trusted_proxies: Tuple[Any, ...] = ()
    """Addresses or networks whose X-Forwarded-For is believed."""
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    def __post_init__(self) -> None:
        try:
            self.trusted_proxies = parse_networks(
                str(p) for p in self.trusted_proxies)
        except ValueError as exc:
            raise StudioError(f"PROMPTLAB_STUDIO_TRUSTED_PROXIES: {exc}") from None

    @classmethod
    def from_env(cls, db_file: str, host: str = "127.0.0.1", port: int = 8000,
                 environ: Optional[Mapping[str, str]] = None) -> "StudioConfig":
        """A config for ``db_file`` with the environment's settings; StudioError for a
        value that does not parse."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                value = -1
            if not math.isfinite(value) or value <= 0:
                raise StudioError(f"{name}={raw!r}: expected a positive number.")
            return value

        origins = tuple(o.strip().rstrip("/") for o in
                        env.get("PROMPTLAB_STUDIO_CORS_ORIGINS", "").split(",") if o.strip())
        if "*" in origins:
            raise StudioError("PROMPTLAB_STUDIO_CORS_ORIGINS: list the origins to allow; "
                              "'*' is not accepted.")
        return cls(
            db_file=db_file, host=host, port=port,
            token_ttl_seconds=number("PROMPTLAB_TOKEN_EXPIRE_MINUTES",
                                     DEFAULT_TOKEN_MINUTES) * 60,
            max_body_bytes=int(number("PROMPTLAB_STUDIO_MAX_BODY_MB", DEFAULT_MAX_BODY_MB)
                               * 1024 * 1024),
            max_bodies_bytes=int(number("PROMPTLAB_STUDIO_MAX_BODIES_MB",
                                        DEFAULT_MAX_BODIES_MB) * 1024 * 1024),
            header_timeout=number("PROMPTLAB_STUDIO_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT),
            request_timeout=number("PROMPTLAB_STUDIO_REQUEST_TIMEOUT",
                                   DEFAULT_REQUEST_TIMEOUT),
            cors_origins=origins,
            datasets_dir=env.get("PROMPTLAB_STUDIO_DATASETS_DIR") or None,
            trusted_proxies=tuple(p for p in env.get(
                "PROMPTLAB_STUDIO_TRUSTED_PROXIES", "").split(",") if p.strip()),
        )


# --- requests and responses ------------------------------------------------------


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
    body: bytes = b""
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


# --- helpers -------------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value


def _username_of(asset: Any) -> Optional[str]:
    return asset.user.username if asset.user is not None else None


_TEXT = (str,)
_OPT_TEXT = (str, type(None))
_FIELD_TYPES: Dict[type, Dict[str, Any]] = {
    Dataset: {"name": _TEXT, "description": _TEXT, "file_path": _TEXT, "version": int,
              "user": _OPT_TEXT},
    PromptTemplate: {"name": _TEXT, "description": _TEXT, "system_prompt": _TEXT,
                     "user_prompt": _TEXT, "version": int, "user": _OPT_TEXT},
    ModelConfig: {"name": _TEXT, "type": _TEXT, "api_key": _OPT_TEXT,
                  "api_version": _OPT_TEXT, "endpoint": _OPT_TEXT,
                  "max_concurrent_tasks": int, "model": None},
    EvaluationConfig: {"metric": _TEXT, "column_mapping": dict, "evaluator": None},
}


def _build(cls: type, data: Any, where: str) -> Any:
    """``cls(**data)`` from a JSON object: unknown keys ignored (as pydantic did),
    missing required fields and wrong types are 400s naming the field."""
    if not isinstance(data, dict):
        raise ApiError(400, f"{where} must be a JSON object")
    kinds = _FIELD_TYPES[cls]
    values: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ApiError(400, f"{where}: missing field '{f.name}'")
            continue
        value, kind = data[f.name], kinds.get(f.name)
        if kind is None:  # callables and instances never travel as JSON
            continue
        if kind is int:
            value = _as_int(value, f"{where}.{f.name}")
        elif not isinstance(value, kind):
            raise ApiError(400, f"{where}.{f.name} has the wrong type")
        values[f.name] = value
    return cls(**values)


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{where} must be an integer")
    return value


def _check_asset(name: str, version: int, kind: str) -> None:
    if not _ASSET_NAME.fullmatch(name):
        raise ApiError(400, "Name must begin with a letter and use only alphanumeric, "
                            "underscore, or hyphen.")
    if version < 0:
        raise ApiError(400, f"The {kind} version must be 0 or more")


def _load_page() -> Tuple[bytes, str]:
    """The page and its Content-Security-Policy (hashes of its inline script and style,
    so nothing else can run or style it)."""
    try:
        page = resources.files("promptlab.studio").joinpath("static/index.html").read_bytes()
    except (OSError, ModuleNotFoundError):
        raise StudioError("the studio page (promptlab/studio/static/index.html) is missing "
                          "from this installation; reinstall PromptLab.") from None

    def hashes(tag: bytes) -> str:
        blocks = re.findall(rb"<" + tag + rb"(?:\s[^>]*)?>(.*?)</" + tag + rb">", page,
                            re.DOTALL)
        return " ".join("'sha256-%s'" % base64.b64encode(hashlib.sha256(b).digest()).decode()
                        for b in blocks)

    csp = (f"default-src 'none'; script-src {hashes(b'script')}; "
           f"style-src {hashes(b'style')}; img-src 'self' data:; connect-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page, csp


# --- the application -----------------------------------------------------------------


Handler = Callable[["StudioApp", Request, Optional[Principal]], Any]


class StudioApp:
    """The studio's answers for one database file."""

    def __init__(self, config: StudioConfig, secret: Optional[bytes] = None) -> None:
        self.config = config
        self.tracer = LocalTracer({"type": "local", "db_file": config.db_file})
        self.db_file = self.tracer.db_file
        if secret is None:
            secret, self.secret_source = load_secret(self.db_file)
        else:
            self.secret_source = "argument"
        self.secret = secret
        self.read = ReadModel(self.tracer, DatasetFiles(config.datasets_dir,
                                                        database=self.tracer.db_file))
        self.throttle = config.throttle
        self.page, self.csp = _load_page()
        self.started = time.time()
        self._dummy_hash: Optional[str] = None
        # (method, path or pattern, handler, who: None = anyone, "user", "admin")
        self.routes: List[Tuple[str, Any, Handler, Optional[str]]] = [
            ("POST", "/api/login", StudioApp.login, None),
            ("GET", "/api/me", StudioApp.me, "user"),
            ("GET", "/api/experiments", StudioApp.get_experiments, "user"),
            ("POST", "/api/experiments", StudioApp.post_experiment, "user"),
            ("GET", "/api/prompts", StudioApp.get_prompts, "user"),
            ("GET", "/api/datasets", StudioApp.get_datasets, "user"),
            ("POST", "/api/datasets", StudioApp.post_dataset, "user"),
            ("POST", "/api/templates", StudioApp.post_template, "user"),
            ("GET", "/api/assets", StudioApp.get_asset, "user"),
            ("GET", "/api/users", StudioApp.get_users, "admin"),
            ("POST", "/api/users", StudioApp.post_user, "admin"),
            ("DELETE", re.compile(r"/api/users/([^/]+)"), StudioApp.delete_user, "admin"),
            ("POST", re.compile(r"/api/users/([^/]+)/reactivate"), StudioApp.reactivate_user,
             "admin"),
            ("POST", re.compile(r"/api/users/([^/]+)/role"), StudioApp.set_user_role, "admin"),
            ("POST", re.compile(r"/api/users/([^/]+)/password"), StudioApp.reset_password,
             "admin"),
            ("POST", "/api/me/password", StudioApp.change_own_password, "user"),
            ("POST", "/api/token", StudioApp.new_token, "user"),
            ("GET", "/api/studio/datasets", StudioApp.studio_datasets, "user"),
            ("GET", "/api/studio/dataset", StudioApp.studio_dataset, "user"),
            ("GET", "/api/studio/experiments", StudioApp.studio_experiments, "user"),
            ("GET", "/api/studio/records", StudioApp.studio_records, "user"),
            ("GET", "/api/studio/compare", StudioApp.studio_compare, "user"),
            ("GET", "/health", StudioApp.health, None),
        ]

    # --- dispatch ------------------------------------------------------------------
    #
    # A request is answered in two steps, so that a stranger cannot make the studio
    # read (and hold) a body: ``admit`` decides from the head alone (route, token,
    # role, declared length) and ``handle`` answers once the body is read.

    def admit(self, request: Request) -> Optional[Response]:
        """None when the body of ``request`` may be read; else the answer to send
        without reading it (404/405, 401/403, 413, ...). Never raises."""
        response = self._guard(request, self._admit)
        if response is not None:
            self._cors(request, response)
        return response

    def handle(self, request: Request) -> Response:
        """The response to ``request`` (admitted or not yet); never raises."""
        response = None
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

    def _guard(self, request: Request, step: Callable[[Request], Optional[Response]]
               ) -> Optional[Response]:
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
        if request.method in ("GET", "HEAD") and path in _PAGE_PATHS:
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
            principal = None
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

    def authenticate(self, request: Request, optional: bool = False) -> Optional[Principal]:
        """The user a bearer token names, still active, with the role the database holds
        now, whose password has not changed since the token was issued; ApiError 401
        otherwise (None when ``optional`` and there is no valid token)."""
        scheme, _, token = request.header("Authorization").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            if optional:
                return None
            raise ApiError(401, "Not authenticated", [("WWW-Authenticate", "Bearer")])
        try:
            claims = decode_token(token.strip(), self.secret)
        except TokenError as exc:
            if optional:
                return None
            reason = str(exc)  # "Invalid token", "Invalid token signature", "Token expired"
            message = reason if reason.lower().startswith("invalid token") else \
                f"Invalid token: {reason[:1].lower()}{reason[1:]}"
            raise ApiError(401, message,
                           [("WWW-Authenticate", 'Bearer error="invalid_token"')]) from None
        username = claims.get("sub")
        user = self._user(username) if isinstance(username, str) else None
        problem = None
        if user is None or user.status != 1:
            problem = "the user does not exist or was deactivated"
        elif claims.get("pwv") != password_version(user.password_hash, self.secret):
            problem = "the password changed since it was issued; sign in again"
        if problem is not None:
            if optional:
                return None
            raise ApiError(401, f"Invalid token: {problem}",
                           [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return Principal(user.username, user.role)

    def _user(self, username: str) -> Optional[User]:
        try:
            return self.tracer.get_user_by_username(username)
        except ValueError:
            return None

    # --- login -----------------------------------------------------------------------

    def login(self, request: Request, _: None) -> Response:
        data = request.json_object()
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            raise ApiError(400, "username and password are required strings")
        if len(username) > 256 or len(password) > 1024:
            raise ApiError(400, "username or password too long")
        if "\0" in username or "\0" in password:
            raise ApiError(400, "username and password must not hold a NUL character")
        keys = self.throttle.keys(username, request.client, request.shared)
        wait = self.throttle.attempt(keys)
        if wait:
            seconds = max(1, math.ceil(wait))
            log.warning("login for %r from %s refused: too many attempts", username,
                        request.client)
            return error_response(429, f"Too many failed logins; try again in {seconds} s.",
                                  [("Retry-After", str(seconds))])
        user = self._user(username)
        if user is not None and user.status == 1:
            ok = _core.verify_password(password, user.password_hash)
        else:  # spend the same time, so the answer does not tell which users exist
            _core.verify_password(password, self._dummy())
            ok = False
        if not ok:
            log.info("failed login for %r from %s", username, request.client)
            return json_response({"success": False, "message": "Invalid credentials"}, 401)
        self.throttle.success(keys)
        token, expires = issue_token(user.username, user.role, self.secret,
                                     self.config.token_ttl_seconds,
                                     password_hash=user.password_hash)
        return json_response({"success": True, "access_token": token, "token_type": "bearer",
                              "username": user.username, "role": user.role,
                              "expires_at": expires})

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = _core.hash_password(os.urandom(16).hex())
        return self._dummy_hash

    def me(self, request: Request, who: Principal) -> Dict[str, Any]:
        return {"username": who.username, "role": who.role}

    # --- experiments ---------------------------------------------------------------

    def get_experiments(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The original shape, one object per result row with the prompts split out,
        a page at a time (the original sent every row: 497 MB for 1M rows). The first
        page is what the original's clients read; ``next_offset`` asks for the next."""
        offset = request.int_param("offset", 0, 0, 2 ** 62)
        limit = request.int_param("limit", EXPERIMENT_ROWS_PAGE, 1, EXPERIMENT_ROWS_MAX)
        rows = self.read.experiment_rows(offset, limit + 1)  # one more: is there a next?
        more = len(rows) > limit
        split: Dict[Optional[str], Tuple[str, str]] = {}
        out = []
        for row in rows[:limit]:
            data = dict(row)
            binary = data.pop("asset_binary", None)
            if binary not in split:
                split[binary] = split_prompt_template(binary)
            data["system_prompt_template"], data["user_prompt_template"] = split[binary]
            data["user_id"] = data.get("username")
            out.append(data)
        return {"experiments": out, "offset": offset, "limit": limit,
                "next_offset": offset + limit if more else None}

    def post_experiment(self, request: Request, who: Principal) -> Dict[str, Any]:
        data = request.json_object()
        config_data = data.get("experiment_config")
        summary = data.get("experiment_summary")
        if not config_data or not summary:
            raise ApiError(400, "Missing experiment_config or experiment_summary data")
        if not isinstance(config_data, dict):
            raise ApiError(400, "experiment_config must be a JSON object")
        if not isinstance(summary, list):
            raise ApiError(400, "experiment_summary must be a JSON array")
        config = self._experiment_config(config_data)
        config.user = who.username
        records = self._experiment_summary(summary)
        try:
            self.tracer.trace_experiment(config, records)
        except _core.IntegrityError:
            raise ApiError(409, f"Experiment {records[0]['experiment_id']} already "
                                "exists") from None
        return {"success": True}

    @staticmethod
    def _experiment_config(data: Dict[str, Any]) -> ExperimentConfig:
        where = "experiment_config"
        models = {}
        for key in ("completion_model_config", "embedding_model_config"):
            value = data.get(key)
            model = _build(ModelConfig, value, f"{where}.{key}") if value is not None else None
            if model is not None:
                model.api_key = None  # a client's credentials are not kept
            models[key] = model
        template = data.get("prompt_template")
        if template is not None:
            template = _build(PromptTemplate, template, f"{where}.prompt_template")
        if "dataset" not in data:
            raise ApiError(400, f"{where}: missing field 'dataset'")
        dataset = _build(Dataset, data["dataset"], f"{where}.dataset")
        evaluation = data.get("evaluation")
        if not isinstance(evaluation, list):
            raise ApiError(400, f"{where}.evaluation must be a JSON array")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, f"{where}.name must be a string")
        return ExperimentConfig(
            name=name, prompt_template=template, dataset=dataset,
            evaluation=[_build(EvaluationConfig, e, f"{where}.evaluation[{i}]")
                        for i, e in enumerate(evaluation)],
            **models)

    @staticmethod
    def _experiment_summary(summary: List[Any]) -> List[Dict[str, Any]]:
        kinds = {"experiment_id": (str,), "dataset_record_id": (str, int),
                 "completion": (str, type(None)), "prompt_tokens": (int, type(None)),
                 "completion_tokens": (int, type(None)),
                 "latency_ms": (int, float, type(None)),
                 "evaluation": (str, list, dict, type(None))}
        records = []
        first_id = None
        for i, item in enumerate(summary):
            where = f"experiment_summary[{i}]"
            if not isinstance(item, dict):
                raise ApiError(400, f"{where} must be a JSON object")
            record = {}
            for key, kind in kinds.items():
                if key not in item:
                    raise ApiError(400, f"{where}: missing field '{key}'")
                value = item[key]
                if isinstance(value, bool) or not isinstance(value, kind):
                    raise ApiError(400, f"{where}.{key} has the wrong type")
                record[key] = value
            if isinstance(record["dataset_record_id"], int):
                record["dataset_record_id"] = str(record["dataset_record_id"])
            if not record["experiment_id"]:
                raise ApiError(400, f"{where}.experiment_id is empty")
            first_id = first_id or record["experiment_id"]
            if record["experiment_id"] != first_id:
                raise ApiError(400, f"{where}.experiment_id differs from the first record's")
            records.append(record)
        return records

    # --- assets ---------------------------------------------------------------------

    def get_prompts(self, request: Request, who: Principal) -> Dict[str, Any]:
        out = []
        for t in self.tracer.get_assets_by_type(AssetType.PROMPT_TEMPLATE):
            system, user = split_prompt_template(t.asset_binary)
            out.append({"asset_name": t.asset_name, "asset_description": t.asset_description,
                        "asset_version": t.asset_version, "asset_type": t.asset_type,
                        "created_at": _iso(t.created_at), "system_prompt_template": system,
                        "user_prompt_template": user, "is_deployed": t.is_deployed,
                        "deployment_time": _iso(t.deployment_time),
                        "user_id": _username_of(t)})
        return {"prompt_templates": out}

    def get_datasets(self, request: Request, who: Principal) -> Dict[str, Any]:
        out = []
        for d in self.tracer.get_assets_by_type(AssetType.DATASET):
            file_path = d.file_path
            out.append({"asset_name": d.asset_name, "asset_description": d.asset_description,
                        "asset_version": d.asset_version, "asset_type": d.asset_type,
                        "created_at": _iso(d.created_at), "file_path": file_path,
                        "user_id": _username_of(d)})
        return {"datasets": out}

    def get_asset(self, request: Request, who: Principal) -> Dict[str, Any]:
        name = request.param("asset_name")
        raw_version = request.param("asset_version")
        if not name:
            raise ApiError(400, "asset_name is required")
        if raw_version is None:
            raise ApiError(400, "asset_version is required (-1 for the latest)")
        version = _as_int(raw_version, "asset_version")
        if version == -1:
            asset = self.tracer.get_latest_asset(name)
        else:
            try:
                asset = self.tracer.get_asset(name, version)
            except ValueError:
                asset = None
        if asset is None:
            raise ApiError(404, f"Asset {name} with version {version} not found")
        return {"success": True, "asset": {
            "asset_name": asset.asset_name, "asset_version": asset.asset_version,
            "asset_description": asset.asset_description, "asset_type": asset.asset_type,
            "asset_binary": asset.asset_binary, "created_at": _iso(asset.created_at),
            "user_id": asset.user_id, "is_deployed": asset.is_deployed,
            "deployment_time": _iso(asset.deployment_time)}}

    def post_dataset(self, request: Request, who: Principal) -> Dict[str, Any]:
        dataset = _build(Dataset, request.json_object(), "dataset")
        _check_asset(dataset.name, dataset.version, "dataset")
        if "\0" in dataset.file_path:
            raise ApiError(400, "dataset.file_path holds a NUL character")
        dataset.user = who.username
        try:
            self.tracer.create_dataset(dataset)
        except _core.IntegrityError:
            raise ApiError(409, f"Dataset {dataset.name} version {dataset.version} already "
                                "exists") from None
        return {"success": True, "message": "Dataset created successfully",
                "dataset": {"name": dataset.name, "version": dataset.version,
                            "description": dataset.description,
                            "file_path": dataset.file_path}}

    def post_template(self, request: Request, who: Principal) -> Dict[str, Any]:
        template = _build(PromptTemplate, request.json_object(), "template")
        _check_asset(template.name, template.version, "template")
        template.user = who.username
        try:
            self.tracer.create_prompttemplate(template)
        except _core.IntegrityError:
            raise ApiError(409, f"Prompt template {template.name} version "
                                f"{template.version} already exists") from None
        return {"success": True, "message": "Prompt template created successfully",
                "template": {"name": template.name, "version": template.version,
                             "description": template.description,
                             "system_prompt": template.system_prompt,
                             "user_prompt": template.user_prompt}}

    # --- users ----------------------------------------------------------------------

    def get_users(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The active users (the original's answer); with ``?all=1`` the deactivated
        ones too, each with ``active``."""
        every = (request.param("all") or "").lower() in ("1", "true", "yes")
        users = self.tracer.get_all_users() if every else self.tracer.get_users()
        out = []
        for u in users:
            item = {"id": u.id, "username": u.username, "role": u.role,
                    "created_at": _iso(u.created_at)}
            if every:  # the original's answer keeps its four keys
                item["active"] = u.status == 1
            out.append(item)
        return {"users": out}

    @staticmethod
    def _new_password(data: Dict[str, Any], key: str = "password") -> str:
        password = data.get(key)
        if not isinstance(password, str):
            raise ApiError(400, "Invalid input: the password must be a string")
        try:
            _core.check_password(password, "the password")
        except (ValueError, UnicodeError) as exc:  # a lone surrogate is not UTF-8
            raise ApiError(400, f"Invalid input: {exc}") from None
        return password

    def _existing(self, username: str) -> User:
        user = self._user(username)
        if user is None:
            raise ApiError(404, f"User {username} not found")
        return user

    def reactivate_user(self, request: Request, who: Principal, username: str) -> Response:
        user = self._existing(username)
        if user.status != 1:
            self.tracer.reactivate_user_by_username(username)
            log.info("%s reactivated user %r", who.username, username)
        return json_response({"success": True, "user": {
            "id": user.id, "username": username, "role": user.role, "active": True}})

    def set_user_role(self, request: Request, who: Principal, username: str) -> Response:
        role = request.json_object().get("role")
        if role not in ROLES:
            raise ApiError(400, f"Invalid input: role must be one of {', '.join(ROLES)}")
        user = self._existing(username)
        if username == who.username and role != user.role:
            raise ApiError(400, "Cannot change your own role; another admin can")
        self.tracer.set_user_role(username, role)
        log.info("%s set the role of %r to %s", who.username, username, role)
        return json_response({"success": True, "user": {
            "id": user.id, "username": username, "role": role, "active": user.status == 1}})

    def reset_password(self, request: Request, who: Principal, username: str) -> Response:
        """An admin sets another user's password; their tokens stop working."""
        password = self._new_password(request.json_object())
        self._existing(username)
        if username == who.username:
            raise ApiError(400, "Change your own password with POST /api/me/password "
                                "(it asks for the current one)")
        self.tracer.set_user_password_hash(username, _core.hash_password(password))
        log.info("%s reset the password of %r", who.username, username)
        return json_response({"success": True})

    def change_own_password(self, request: Request, who: Principal) -> Response:
        """The signed-in user's new password, given the current one. Older tokens stop
        working; the answer carries a new token."""
        data = request.json_object()
        current = data.get("current_password")
        if not isinstance(current, str) or not current or len(current) > 1024:
            raise ApiError(400, "current_password is required")
        password = self._new_password(data, "new_password")
        user = self._existing(who.username)
        if not _core.verify_password(current, user.password_hash):
            raise ApiError(403, "The current password is wrong")
        hashed = _core.hash_password(password)
        self.tracer.set_user_password_hash(who.username, hashed)
        log.info("%s changed their password", who.username)
        token, expires = issue_token(user.username, user.role, self.secret,
                                     self.config.token_ttl_seconds, password_hash=hashed)
        return json_response({"success": True, "access_token": token, "token_type": "bearer",
                              "expires_at": expires})

    def new_token(self, request: Request, who: Principal) -> Response:
        """A token for the signed-in user with a chosen lifetime (``minutes``, up to a
        year), e.g. for a remote tracer's ``jwt_token``."""
        data = request.json_object()
        minutes = data.get("minutes", DEFAULT_TOKEN_MINUTES)
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) \
                or not math.isfinite(minutes) or not 1 <= minutes <= MAX_TOKEN_MINUTES:
            raise ApiError(400, f"minutes must be a number from 1 to {MAX_TOKEN_MINUTES}")
        user = self._existing(who.username)
        token, expires = issue_token(user.username, user.role, self.secret, minutes * 60,
                                     password_hash=user.password_hash)
        log.info("%s made a token for %s minutes", who.username, minutes)
        return json_response({"success": True, "access_token": token, "token_type": "bearer",
                              "username": user.username, "expires_at": expires})

    def post_user(self, request: Request, who: Principal) -> Response:
        data = request.json_object()
        username, role = data.get("username"), data.get("role")
        if not isinstance(username, str) or not _USERNAME.fullmatch(username):
            raise ApiError(400, "Invalid input: username must be 1-64 letters, digits or "
                                "._@+- and start with a letter or digit")
        password = self._new_password(data)
        if role not in ROLES:
            raise ApiError(400, f"Invalid input: role must be one of {', '.join(ROLES)}")
        existing = self._user(username)
        if existing is not None and existing.status != 1:
            raise ApiError(409, f"User {username} already exists (deactivated): reactivate "
                                f"them instead (Users page, or POST /api/users/{username}"
                                "/reactivate); a name is never reused for another person")
        if existing is not None:
            raise ApiError(409, f"User {username} already exists")
        user = User(username=username, password_hash=_core.hash_password(password), role=role)
        try:
            self.tracer.create_user(user)
        except _core.IntegrityError:
            raise ApiError(409, f"User {username} already exists") from None
        log.info("%s created user %r (%s)", who.username, username, role)
        return json_response({"success": True, "user": {
            "id": user.id, "username": username, "role": role}})

    def delete_user(self, request: Request, who: Principal, username: str) -> Response:
        if username == who.username:
            raise ApiError(400, "Cannot delete yourself")
        try:
            self.tracer.deactivate_user_by_username(username)
        except ValueError:
            raise ApiError(404, f"User {username} not found") from None
        log.info("%s deactivated user %r", who.username, username)
        return json_response({"success": True})

    # --- the page's read-only views --------------------------------------------------

    def studio_experiments(self, request: Request, who: Principal) -> Dict[str, Any]:
        return {"experiments": self.read.summaries()}

    def _experiment(self, experiment_id: Optional[str]) -> Dict[str, Any]:
        if not experiment_id:
            raise ApiError(400, "experiment_id is required")
        experiment = self.read.summary(experiment_id)
        if experiment is None:
            raise ApiError(404, f"Experiment {experiment_id} not found")
        return experiment

    def studio_records(self, request: Request, who: Principal) -> Dict[str, Any]:
        experiment = self._experiment(request.param("experiment_id"))
        offset = request.int_param("offset", 0, 0, 2 ** 62)
        limit = request.int_param("limit", 50, 1, MAX_PAGE)
        search = (request.param("q") or "").strip()[:200] or None
        page = self.read.records(experiment, offset, limit, search)
        return {"experiment": experiment, **page}

    def studio_compare(self, request: Request, who: Principal) -> Dict[str, Any]:
        ids = [i for i in request.query.get("experiment_id", []) if i]
        ids = list(dict.fromkeys(ids))
        if not 2 <= len(ids) <= MAX_COMPARED:
            raise ApiError(400, f"Give 2 to {MAX_COMPARED} different experiment_id values")
        experiments = [self._experiment(i) for i in ids]
        offset = request.int_param("offset", 0, 0, 2 ** 62)
        limit = request.int_param("limit", 50, 1, MAX_PAGE)
        only = request.param("only") or None
        if only is not None and only not in COMPARE_ONLY:
            raise ApiError(400, f"only must be one of {', '.join(COMPARE_ONLY)}")
        return {"experiments": experiments,
                **self.read.compare(experiments, offset, limit, only)}

    def studio_datasets(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The datasets with their record counts (None and a ``note`` when the file is
        not read)."""
        out = []
        for d in self.tracer.get_assets_by_type(AssetType.DATASET):
            path = d.file_path
            if path is None:
                records, note = {}, "the dataset names no file"
            else:
                records, note = self.read.datasets.records(path)
            out.append({"asset_name": d.asset_name, "asset_version": d.asset_version,
                        "asset_description": d.asset_description,
                        "created_at": _iso(d.created_at), "file_path": path,
                        "user_id": _username_of(d),
                        "records": None if note else len(records), "note": note})
        return {"datasets": out}

    def studio_dataset(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The first ``limit`` records of one dataset version's file."""
        name = request.param("asset_name")
        if not name:
            raise ApiError(400, "asset_name is required")
        version = request.int_param("asset_version", 0, 0, 2 ** 62)
        limit = request.int_param("limit", 5, 1, PREVIEW_MAX)
        try:
            asset = self.tracer.get_asset(name, version)
        except ValueError:
            asset = None
        if asset is None or asset.asset_type != AssetType.DATASET.value:
            raise ApiError(404, f"Dataset {name} version {version} not found")
        path = asset.file_path
        records, note = self.read.datasets.records(path) if path else ({}, "no file")
        return {"asset_name": name, "asset_version": version, "file_path": path,
                "records": None if note else len(records), "note": note,
                "preview": list(records.values())[:limit]}

    # --- health ------------------------------------------------------------------------

    def health(self, request: Request, who: Optional[Principal]) -> Response:
        """The original answer; with a valid token also the database's health (the
        integrity check reads the whole file, so strangers only get a ping)."""
        if who is None:
            ok = self.read.ping()
            return json_response({"status": "healthy" if ok else "unhealthy",
                                  "service": "promptlab-studio"}, 200 if ok else 503)
        database = self.read.health()
        return json_response({
            "status": "healthy" if database["ok"] else "unhealthy",
            "service": "promptlab-studio", "version": __version__,
            "uptime_seconds": round(time.time() - self.started, 1),
            "database": database}, 200 if database["ok"] else 503)
