"""Bounded retries with exponential backoff for model calls.

Rate limits (429), server errors (5xx), timeouts and dropped connections are worth
another try; anything else (a wrong key, an unknown model) is raised at once.
``PROMPTLAB_MODEL_RETRIES`` (attempts after the first, default 5) and
``PROMPTLAB_MODEL_BACKOFF`` (first delay in seconds, default 0.5; doubled each time,
at most 30 s, or the server's ``Retry-After`` when it sends one, also at most 30 s)
tune it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Awaitable, Callable, Optional, Tuple, TypeVar

_T = TypeVar("_T")

MAX_DELAY = 30.0


class TransientModelError(Exception):
    """A model call failed in a way another try may not: 429, 5xx, a reset connection."""

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status is worth another try."""
    return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """A ``Retry-After`` header in seconds (its date form is ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _settings() -> Tuple[int, float]:
    def number(name: str, default: float) -> float:
        try:
            return max(0.0, float(os.environ.get(name, "") or default))
        except ValueError:
            return default
    return int(number("PROMPTLAB_MODEL_RETRIES", 5)), number("PROMPTLAB_MODEL_BACKOFF", 0.5)


def _delay(attempt: int, base: float, error: TransientModelError) -> float:
    if error.retry_after is not None:
        return min(error.retry_after, MAX_DELAY)
    # Full jitter keeps many concurrent workers from retrying in step.
    return min(base * (2.0 ** attempt), MAX_DELAY) * (0.5 + random.random() / 2)


def call(fn: Callable[[], _T]) -> _T:
    """``fn()``, tried again after each TransientModelError, a bounded number of times."""
    retries, base = _settings()
    for attempt in range(retries + 1):
        try:
            return fn()
        except TransientModelError as error:
            if attempt == retries:
                raise
            time.sleep(_delay(attempt, base, error))
    raise AssertionError("unreachable")


async def acall(fn: Callable[[], Awaitable[_T]]) -> _T:
    """``await fn()``, tried again after each TransientModelError, a bounded number of times."""
    retries, base = _settings()
    for attempt in range(retries + 1):
        try:
            return await fn()
        except TransientModelError as error:
            if attempt == retries:
                raise
            await asyncio.sleep(_delay(attempt, base, error))
    raise AssertionError("unreachable")
