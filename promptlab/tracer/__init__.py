"""Tracers record assets and experiment runs; ``LocalTracer`` writes a SQLite file."""

from promptlab.tracer.local_tracer import LocalTracer
from promptlab.tracer.tracer import Tracer

__all__ = ["LocalTracer", "Tracer"]
