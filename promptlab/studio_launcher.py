"""``pl.studio``: serve the studio for the PromptLab's database from a script, as
``promptlab studio start -d FILE -p PORT`` does (``promptlab.studio.server.run``)."""

from __future__ import annotations

import os
import threading
from typing import Any


class Studio:
    """Starts the studio on this machine (127.0.0.1) for a local tracer's file."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    def _config(self, port: int) -> Any:
        # The studio's modules load only when it starts, not with every PromptLab.
        from promptlab.studio.api import StudioConfig
        from promptlab.studio.auth import StudioError

        db_file = getattr(self.tracer, "db_file", None)
        if db_file is None:
            raise StudioError("The studio serves a local database: this PromptLab traces "
                              "to a remote studio already.")
        return StudioConfig.from_env(os.fspath(db_file), port=port)

    def start(self, port: int = 8000) -> int:
        """Serve until Ctrl-C or SIGTERM (on the main thread); returns the exit status."""
        from promptlab.studio.server import run

        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("pl.studio.start() serves until a signal arrives, so it "
                               "must run on the main thread.")
        return run(self._config(port))

    async def start_async(self, port: int = 8000) -> int:
        """``start`` from a coroutine, as ``asyncio.run(pl.studio.start_async(8000))``
        in the original's samples. It serves on this thread until Ctrl-C or SIGTERM
        (the signal handlers need it), so other tasks wait until the studio stops."""
        return self.start(port)
