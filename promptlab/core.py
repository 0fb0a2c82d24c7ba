"""``PromptLab``: the entry point of the original's scripts.

    pl = PromptLab({"type": "local", "db_file": "./promptlab.db"})
    pl.asset.create(...); pl.experiment.run(...); pl.studio.start(8000)
"""

from __future__ import annotations

from typing import Any, Mapping, Union

from promptlab.asset import Asset
from promptlab.experiment import Experiment
from promptlab.studio_launcher import Studio
from promptlab.tracer.tracer_factory import TracerFactory
from promptlab.types import TracerConfig


class PromptLab:
    """Assets, experiments and the studio over one tracer (a local file or a studio)."""

    def __init__(self, tracer_config: Union[TracerConfig, Mapping[str, Any]]) -> None:
        self.tracer = TracerFactory.get_tracer(tracer_config)
        self.asset = Asset(self.tracer)
        self.experiment = Experiment(self.tracer)
        self.studio = Studio(self.tracer)
