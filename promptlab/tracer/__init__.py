"""Tracers record assets and experiment runs: ``LocalTracer`` writes a SQLite file,
``ApiTracer`` sends to a studio over HTTP; ``TracerFactory.get_tracer(config)`` picks
one by the config's ``type`` (``"local"`` or ``"remote"``)."""

from promptlab.tracer.api_tracer import ApiTracer, RemoteTracerError
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.tracer.tracer import Tracer
from promptlab.tracer.tracer_factory import TracerFactory

__all__ = ["ApiTracer", "LocalTracer", "RemoteTracerError", "Tracer", "TracerFactory"]
