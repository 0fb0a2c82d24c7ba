"""A one-line progress bar on stderr for experiment runs (standard library only).

Shown when stderr is a terminal, or always with ``PROMPTLAB_PROGRESS=1``;
``PROMPTLAB_PROGRESS=0`` hides it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Optional, TextIO

WIDTH = 30


def wanted(stream: TextIO) -> bool:
    """Whether to draw on ``stream``."""
    setting = os.environ.get("PROMPTLAB_PROGRESS", "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """Counts finished records and redraws at most ten times a second."""

    def __init__(self, label: str, total: int, stream: Optional[TextIO] = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = total > 0 and wanted(self.stream)
        self.label = label
        self.total = total
        self.done = 0
        self._drawn = 0.0
        self._lock = threading.Lock()  # records finish on worker threads

    def advance(self) -> None:
        """One more record finished."""
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if self.enabled and (now - self._drawn >= 0.1 or self.done == self.total):
                self._drawn = now
                self._draw()

    def _draw(self) -> None:
        filled = WIDTH * self.done // self.total
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        """End the line (the bar stays as the last state)."""
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
