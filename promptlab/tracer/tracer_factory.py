"""``TracerFactory.get_tracer(config)``: the tracer a config names (the original's API)."""

from __future__ import annotations

from typing import Any, Mapping, Union

from promptlab.enums import TracerType
from promptlab.tracer.tracer import Tracer
from promptlab.types import TracerConfig


class TracerFactory:
    """Chooses the tracer by the config's ``type``."""

    @staticmethod
    def get_tracer(tracer_config: Union[TracerConfig, Mapping[str, Any], Any]) -> Tracer:
        """``"local"``: a LocalTracer on ``db_file``; ``"remote"``: an ApiTracer sending
        to ``endpoint`` with ``jwt_token``. ``tracer_config`` is a dict, a TracerConfig
        or an object with those attributes; ValueError for another type."""
        if isinstance(tracer_config, TracerConfig):
            config = tracer_config
        elif isinstance(tracer_config, Mapping):
            config = TracerConfig.model_validate(tracer_config)
        else:
            config = TracerConfig(**{name: getattr(tracer_config, name)
                                     for name in TracerConfig.model_fields
                                     if hasattr(tracer_config, name)})
        # Imported here: each pulls in what only it needs (the C core, urllib).
        if config.type == TracerType.REMOTE.value:
            from promptlab.tracer.api_tracer import ApiTracer

            return ApiTracer(config)
        if config.type == TracerType.LOCAL.value:
            from promptlab.tracer.local_tracer import LocalTracer

            return LocalTracer(config)
        raise ValueError(f"Unknown tracer: {config.type}")  # unreachable: TracerConfig checks it
