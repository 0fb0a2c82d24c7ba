"""Tracers record assets and experiment runs: ``LocalTracer`` writes a SQLite file,
``ApiTracer`` sends to a studio over HTTP; ``TracerFactory.get_tracer(config)`` picks
one by the config's ``type`` (``"local"`` or ``"remote"``).

The remote tracer and the factory load on first use: ``urllib.request`` alone costs
about 60 ms of start-up, which a script that only traces locally should not pay.
"""

from __future__ import annotations

from promptlab.tracer.local_tracer import LocalTracer
from promptlab.tracer.tracer import Tracer

__all__ = ["ApiTracer", "LocalTracer", "RemoteTracerError", "Tracer", "TracerFactory"]


def __getattr__(name: str) -> object:
    if name in ("ApiTracer", "RemoteTracerError"):
        from promptlab.tracer import api_tracer

        return getattr(api_tracer, name)
    if name == "TracerFactory":
        from promptlab.tracer.tracer_factory import TracerFactory

        return TracerFactory
    raise AttributeError(f"module 'promptlab.tracer' has no attribute {name!r}")
