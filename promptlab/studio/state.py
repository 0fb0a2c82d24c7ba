"""What a ``StudioApp`` holds, declared once for the handler classes it is made of
(``dispatch``, ``handlers_*``); ``app.StudioApp.__init__`` sets it."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from promptlab.studio.auth import LoginThrottle
from promptlab.studio.config import StudioConfig
from promptlab.studio.queries import ReadModel
from promptlab.tracer.local_tracer import LocalTracer


class StudioState:
    """The studio's state for one database file."""

    config: StudioConfig
    tracer: LocalTracer
    db_file: str
    secret: bytes
    secret_source: str
    read: ReadModel
    throttle: LoginThrottle
    page: bytes
    csp: str
    started: float
    _dummy_hash: Optional[str]
    routes: List[Tuple[str, Any, Any, Optional[str]]]
    """(method, path or pattern, handler, who), see ``routes.ROUTES``."""
