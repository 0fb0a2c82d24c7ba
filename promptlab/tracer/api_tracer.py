"""``ApiTracer``: records assets and experiments in a PromptLab studio over HTTP.

The tracer of ``{"type": "remote", "endpoint": URL, "jwt_token": TOKEN}``. It uses the
routes and JSON bodies of the original PromptLab's ``ApiTracer`` (``POST
/api/datasets``, ``/api/templates``, ``/api/experiments``; ``GET /api/assets``), with
the standard library's ``urllib`` only.

A request that fails on the way (the connection refused, reset or timed out, or the
studio answers 5xx or 429) is sent again, at most ``attempts`` times in all, after a
growing pause (``backoff``, doubled each time, with jitter; a ``Retry-After`` is
honoured up to ``max_backoff``). A repeated POST can never store a thing twice: the
studio keys an experiment by its id and an asset by its name and version, and answers
409 for a second one. A 409 to a *repeated* POST means an earlier attempt was stored
and only its answer was lost, so the tracer reads what the studio holds and returns
normally when it is what was sent (the same records, or the same kind of asset with
the same description); anything else, and any 409 to a first attempt, is an error.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from promptlab.jsonvalues import finite
from promptlab.sqlite.models import Asset, User, parse_timestamp
from promptlab.tracer.tracer import Tracer
from promptlab.types import Dataset, ExperimentConfig, PromptTemplate, TracerConfig

# The most rows the studio sends in one page of GET /api/experiments
# (promptlab.studio.handlers_experiments.EXPERIMENT_ROWS_MAX; not imported: a tracer
# does not load the studio).
STUDIO_PAGE_MAX = 50000

log = logging.getLogger("promptlab.tracer")

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 8.0
DEFAULT_TIMEOUT = 60.0
_PAGE = 500  # records read per request when a repeated upload is checked


class RemoteTracerError(RuntimeError):
    """The studio refused a request or could not be reached. ``status`` is the HTTP
    status (None when no answer came), ``detail`` the studio's message."""

    def __init__(self, message: str, status: Optional[int] = None,
                 detail: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class _Retry(Exception):
    """An attempt whose failure may pass: a lost connection, a 5xx or a 429."""

    def __init__(self, reason: str, wait: Optional[float] = None,
                 status: Optional[int] = None) -> None:
        super().__init__(reason)
        self.reason, self.wait, self.status = reason, wait, status


def _config_of(config: Union[TracerConfig, Mapping[str, Any], Any]) -> TracerConfig:
    if isinstance(config, TracerConfig):
        return config
    if isinstance(config, Mapping):
        return TracerConfig.model_validate(config)
    return TracerConfig(**{name: getattr(config, name) for name in TracerConfig.model_fields
                           if hasattr(config, name)})


def _json_body(data: Any) -> bytes:
    """``data`` as JSON; NaN and infinities become null (JSON has no such numbers, and
    the studio stores them as null anyway)."""
    def default(value: Any) -> Any:
        if hasattr(value, "isoformat"):
            return value.isoformat()
        raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")

    try:
        text = json.dumps(data, default=default, allow_nan=False)
    except ValueError:
        text = json.dumps(finite(data), default=default, allow_nan=False)
    return text.encode("utf-8")




def _detail(data: Any, fallback: str) -> str:
    if isinstance(data, dict):
        for key in ("detail", "message"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    return fallback


def login(endpoint: str, username: str, password: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """A token for ``jwt_token``: signs in at the studio (``POST /api/login``)."""
    tracer = ApiTracer(TracerConfig(type="remote", endpoint=endpoint), timeout=timeout)
    status, data, _ = tracer._request("POST", "/login",
                                      {"username": username, "password": password})
    token = data.get("access_token") if isinstance(data, dict) else None
    if status != 200 or not isinstance(token, str) or not token:
        raise RemoteTracerError(f"{tracer.endpoint}/login: signing in as {username!r} failed "
                                f"({status}: {_detail(data, 'no token')})", status,
                                _detail(data, ""))
    return token


class ApiTracer(Tracer):
    """A tracer that sends to the studio at ``config.endpoint`` with ``config.jwt_token``.

    ``attempts``, ``backoff``, ``max_backoff`` (seconds) and ``timeout`` (seconds per
    request) tune the retries; ``sleep`` is how it waits (tests pass their own).
    """

    def __init__(self, tracer_config: Union[TracerConfig, Mapping[str, Any], Any], *,
                 attempts: int = DEFAULT_ATTEMPTS, backoff: float = DEFAULT_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF, timeout: float = DEFAULT_TIMEOUT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        config = _config_of(tracer_config)
        if not config.endpoint:
            raise ValueError("A remote tracer needs an endpoint: the studio's URL, e.g. "
                             "{'type': 'remote', 'endpoint': 'http://127.0.0.1:8000', "
                             "'jwt_token': ...}")
        parts = urllib.parse.urlsplit(config.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint {config.endpoint!r} is not an http:// or https:// URL")
        if attempts < 1:
            raise ValueError("attempts must be 1 or more")
        self.endpoint = config.endpoint.rstrip("/") + "/api"  # as the original
        self.jwt_token = config.jwt_token
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep

    # --- HTTP ------------------------------------------------------------------------

    def _once(self, method: str, url: str, body: Optional[bytes]) -> Tuple[int, Any]:
        """One request: (status, parsed JSON or None). _Retry when it may pass."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.jwt_token:
            headers["Authorization"] = f"Bearer {self.jwt_token}"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
                retry_after = response.headers.get("Retry-After")
        except urllib.error.HTTPError as exc:
            status, retry_after = exc.code, exc.headers.get("Retry-After")
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # Refused, reset, closed before the answer, timed out: the request may or
            # may not have been handled.
            reason = getattr(exc, "reason", exc)
            raise _Retry(f"{type(reason).__name__}: {reason}") from None
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            data = None
        if status >= 500 or status == 429:
            wait = None
            if retry_after and retry_after.strip().isdigit():
                wait = float(retry_after.strip())
            raise _Retry(f"{status}: {_detail(data, 'no detail')}", wait, status)
        return status, data

    def _request(self, method: str, path: str, payload: Any = None,
                 params: Optional[Mapping[str, Any]] = None) -> Tuple[int, Any, bool]:
        """(status, JSON, repeated): ``repeated`` is True when an earlier attempt failed
        in a way that leaves open whether the studio handled it."""
        url = self.endpoint + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        body = _json_body(payload) if payload is not None else None
        repeated = False
        for attempt in range(1, self.attempts + 1):
            try:
                status, data = self._once(method, url, body)
                return status, data, repeated
            except _Retry as exc:
                failure = exc
            if attempt == self.attempts:
                break
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)  # so that many clients do not retry in step
            if failure.wait is not None:
                delay = min(self.max_backoff, max(delay, failure.wait))
            log.warning("%s %s failed (%s); attempt %d of %d in %.1f s", method, url,
                        failure.reason, attempt + 1, self.attempts, delay)
            repeated = True
            self._sleep(delay)
        raise RemoteTracerError(
            f"{method} {url} failed {self.attempts} time(s), last: {failure.reason}. "
            "Check that the studio runs there (promptlab studio start) and try again.",
            failure.status, failure.reason)

    def _fail(self, method: str, path: str, status: int, data: Any) -> RemoteTracerError:
        detail = _detail(data, "no detail")
        hint = ""
        if status == 401:
            hint = (" The token was refused: sign in again (POST /api/login, or "
                    "promptlab.tracer.api_tracer.login) and set jwt_token to the new "
                    "access_token.")
        elif status == 403:
            hint = " The token's user may not do this."
        return RemoteTracerError(f"{method} {self.endpoint}{path}: the studio answered "
                                 f"{status}: {detail}.{hint}", status, detail)

    def _post_once(self, path: str, payload: Any, stored: Callable[[], bool],
                   what: str) -> Any:
        """POST ``payload``; a 409 to a repeated attempt is success when ``stored()``
        finds the studio holds what was sent (an earlier attempt's answer was lost)."""
        status, data, repeated = self._request("POST", path, payload)
        if status == 200:
            return data
        if status == 409 and repeated:
            if stored():
                log.info("%s was stored by an earlier attempt whose answer was lost", what)
                return data
            raise RemoteTracerError(f"{what} exists in the studio with other contents "
                                    f"({_detail(data, 'conflict')}).", 409,
                                    _detail(data, ""))
        raise self._fail("POST", path, status, data)

    def _get(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Tuple[int, Any]:
        status, data, _ = self._request("GET", path, params=params)
        if status not in (200, 404):
            raise self._fail("GET", path, status, data)
        return status, data

    # --- assets ------------------------------------------------------------------------

    def _asset_json(self, name: str, version: int) -> Optional[Dict[str, Any]]:
        status, data = self._get("/assets", {"asset_name": name, "asset_version": version})
        asset = data.get("asset") if isinstance(data, dict) else None
        if status == 404 or not isinstance(asset, dict):
            return None
        return asset

    def _same_asset(self, name: str, version: int, asset_type: str,
                    description: Optional[str]) -> Callable[[], bool]:
        def stored() -> bool:
            asset = self._asset_json(name, version)
            return (asset is not None and asset.get("asset_type") == asset_type
                    and asset.get("asset_description") == description)
        return stored

    def create_dataset(self, dataset: Dataset) -> None:
        """``POST /api/datasets`` with the dataset's fields (as the original)."""
        dataset = Dataset.model_validate(dataset)
        self._post_once("/datasets", dataset.model_dump(mode="json"),
                        self._same_asset(dataset.name, dataset.version, "dataset",
                                         dataset.description),
                        f"Dataset {dataset.name} version {dataset.version}")

    def create_prompttemplate(self, template: PromptTemplate) -> None:
        """``POST /api/templates`` with the template's fields (as the original)."""
        template = PromptTemplate.model_validate(template)
        self._post_once("/templates", template.model_dump(mode="json"),
                        self._same_asset(template.name, template.version, "prompt_template",
                                         template.description),
                        f"Prompt template {template.name} version {template.version}")

    def _asset(self, data: Dict[str, Any]) -> Asset:
        return Asset(asset_name=data["asset_name"], asset_version=data["asset_version"],
                     asset_description=data.get("asset_description"),
                     asset_type=data.get("asset_type"), asset_binary=data.get("asset_binary"),
                     is_deployed=bool(data.get("is_deployed")),
                     deployment_time=parse_timestamp(data.get("deployment_time")),
                     created_at=parse_timestamp(data.get("created_at")),
                     user_id=data.get("user_id"))

    def get_asset(self, asset_name: str, asset_version: int) -> Asset:
        """The asset at that version (``GET /api/assets``); ValueError when missing."""
        data = self._asset_json(asset_name, asset_version)
        if data is None:
            raise ValueError(f"Asset {asset_name} with version {asset_version} not found.")
        return self._asset(data)

    def get_latest_asset(self, asset_name: str) -> Optional[Asset]:
        """The highest version of ``asset_name`` (``asset_version=-1``), or None."""
        data = self._asset_json(asset_name, -1)
        return None if data is None else self._asset(data)

    def get_assets_by_type(self, asset_type: str) -> List[Asset]:
        raise NotImplementedError("The remote tracer does not list assets; the studio "
                                  "shows them (GET /api/prompts, GET /api/datasets).")

    # --- experiments ---------------------------------------------------------------------

    @staticmethod
    def _config_json(config: ExperimentConfig) -> Dict[str, Any]:
        """The original payload: the config's fields, without what cannot or should not
        travel (model instances, the agent proxy, evaluators, API keys). The caller's
        config is left as it was (the original set those fields to None in place)."""
        data = config.model_dump()
        data["agent_proxy"] = None
        for key in ("completion_model_config", "embedding_model_config"):
            if data.get(key) is not None:
                data[key]["model"] = None
                data[key]["api_key"] = None  # the studio drops it anyway; never send it
        for evaluation in data.get("evaluation") or []:
            evaluation["evaluator"] = None
        return data

    def _same_records(self, experiment_id: str,
                      summary: Sequence[Mapping[str, Any]]) -> Callable[[], bool]:
        """Whether the studio holds exactly these records under ``experiment_id``."""
        def stored() -> bool:
            sent = [(str(r.get("dataset_record_id")), r.get("completion")) for r in summary]
            offset = 0
            while offset < len(sent):  # bounded: at most len(sent) / _PAGE + 1 requests
                status, data = self._get("/studio/records", {
                    "experiment_id": experiment_id, "offset": offset, "limit": _PAGE})
                if status != 200 or not isinstance(data, dict):
                    return False
                if data.get("total") != len(sent):
                    return False
                page = data.get("records") or []
                held = [(str(r.get("dataset_record_id")), r.get("completion")) for r in page]
                if not held or held != sent[offset:offset + len(held)]:
                    return False
                offset += len(held)
            return True
        return stored

    def trace_experiment(self, experiment_config: ExperimentConfig,
                         experiment_summary: List[Dict[str, Any]]) -> None:
        """``POST /api/experiments`` with ``experiment_config`` and
        ``experiment_summary``; stored once however often it is sent."""
        if not experiment_summary:
            raise ValueError("experiment_summary is empty: there is nothing to trace.")
        config = ExperimentConfig.model_validate(experiment_config)
        experiment_id = experiment_summary[0]["experiment_id"]
        payload = {"experiment_config": self._config_json(config),
                   "experiment_summary": list(experiment_summary)}
        self._post_once("/experiments", payload,
                        self._same_records(experiment_id, experiment_summary),
                        f"Experiment {experiment_id}")

    def get_experiments(self, experiment_id: Optional[str] = None, *,
                        limit: Optional[int] = None, offset: int = 0) -> List[Dict[str, Any]]:
        """``GET /api/experiments``: one dict per result row, as the studio answers, every
        page of it (the studio answers a page at a time); the arguments as
        ``LocalTracer.get_experiments``'s."""
        if limit is not None and limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        rows: List[Dict[str, Any]] = []
        params: Dict[str, Any] = {"offset": offset}
        if experiment_id is not None:
            params["experiment_id"] = experiment_id
        while limit is None or len(rows) < limit:
            if limit is not None:
                params["limit"] = min(limit - len(rows), STUDIO_PAGE_MAX)
            status, data = self._get("/experiments", params)
            if status != 200 or not isinstance(data, dict):
                raise self._fail("GET", "/experiments", status, data)
            rows.extend(data.get("experiments") or [])
            if data.get("next_offset") is None:  # the last page (or an original studio)
                break
            params["offset"] = data["next_offset"]
        return rows if limit is None else rows[:limit]  # an original studio sends all

    # --- users: the studio's admins manage them, not tracers ------------------------------

    def _no_users(self) -> NotImplementedError:
        return NotImplementedError("The remote tracer does not manage users; an admin does "
                                   "it in the studio (GET/POST /api/users).")

    def get_user_by_username(self, username: str) -> User:
        raise self._no_users()

    def get_users(self) -> List[User]:
        raise self._no_users()

    def create_user(self, user: User) -> None:
        raise self._no_users()

    def deactivate_user_by_username(self, username: str) -> None:
        raise self._no_users()

    def me(self) -> User:
        raise self._no_users()


# The class name tells what it talks to; both names work.
RemoteTracer = ApiTracer
