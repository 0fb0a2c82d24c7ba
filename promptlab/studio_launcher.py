"""``pl.studio``: serve the studio for the PromptLab's database from a script, as
``promptlab studio start -d FILE -p PORT`` does (``promptlab.commands.studio.run``)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any


def _close_when_ready(done: Any) -> None:
    if not done.cancelled() and done.exception() is None:
        done.result().server_close()


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
        from promptlab.commands.studio import run

        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("pl.studio.start() serves until a signal arrives, so it "
                               "must run on the main thread.")
        return run(self._config(port))

    async def start_async(self, port: int = 8000) -> int:
        """Serve from a coroutine, as ``asyncio.run(pl.studio.start_async(8000))`` in
        the original's samples: the studio runs on a worker thread, so the event loop
        and its other tasks go on. Cancelling the task (Ctrl-C under asyncio.run does)
        stops the studio cleanly."""
        import asyncio

        from promptlab.commands.studio import prepare

        preparing = asyncio.ensure_future(asyncio.to_thread(prepare, self._config(port)))
        try:
            server = await asyncio.shield(preparing)
        except asyncio.CancelledError:  # the server it makes is closed when it is ready
            preparing.add_done_callback(_close_when_ready)
            raise
        loop = asyncio.get_running_loop()
        serving = asyncio.ensure_future(asyncio.to_thread(server.serve_forever, 0.25))
        # SIGINT and SIGTERM stop it as they stop `promptlab studio start`.
        signals = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, server.shutdown_soon)
                signals.append(sig)
        try:
            await asyncio.shield(serving)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            server.stopping = True
            if not serving.done():
                await asyncio.to_thread(server.shutdown)  # once serve_forever stopped
            server.server_close()
            await asyncio.to_thread(server.wait_idle, 10.0)
        return 0
