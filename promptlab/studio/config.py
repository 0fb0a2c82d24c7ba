"""How a studio runs: ``StudioConfig`` and the ``PROMPTLAB_*`` variables it reads."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from promptlab.studio.auth import LoginThrottle, StudioError
from promptlab.studio.proxies import parse_networks

DEFAULT_TOKEN_MINUTES = 30 * 24 * 60  # as the original studio
DEFAULT_MAX_BODY_MB = 32
DEFAULT_MAX_BODIES_MB = 256
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 60.0


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
