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
        # TracerConfig.type holds the member's value ("local"), as the original's
        # use_enum_values did, though it is declared a TracerType: compare members.
        kind = TracerType(config.type)
        # Imported here: each pulls in what only it needs (the C core, urllib).
        if kind is TracerType.REMOTE:
            from promptlab.tracer.api_tracer import ApiTracer

            return ApiTracer(config)
        if kind is TracerType.LOCAL:
            from promptlab.tracer.local_tracer import LocalTracer

            return LocalTracer(config)
        raise ValueError(f"Unknown tracer: {config.type}")  # unreachable: TracerConfig checks it
