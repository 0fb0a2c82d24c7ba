"""``TracerFactory.get_tracer``: the tracer a config's ``type`` names.

Minimal version (local only) until the remote tracer lands beside it.
"""

from __future__ import annotations

from typing import Any, Mapping, Union

from promptlab.enums import TracerType
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.tracer.tracer import Tracer
from promptlab.types import TracerConfig


class TracerFactory:
    """Chooses a tracer by ``type``, as the original's factory did."""

    @staticmethod
    def get_tracer(tracer_config: Union[TracerConfig, Mapping[str, Any]]) -> Tracer:
        """A LocalTracer for ``{"type": "local", "db_file": ...}``."""
        config = (TracerConfig(**tracer_config) if isinstance(tracer_config, Mapping)
                  else tracer_config)
        if config.type == TracerType.LOCAL.value:
            return LocalTracer(config)
        if config.type == TracerType.REMOTE.value:
            raise ValueError("The remote tracer is not in this build yet; use "
                             "{'type': 'local', 'db_file': ...}.")
        raise ValueError(f"Unknown tracer type: {config.type!r}")
