"""``StudioApp``: the studio's answers for one database file, independent of the
server that carries it. The parts live beside it: ``dispatch`` (routing, the guard
that turns every failure into an answer), ``routes`` (the table), ``handlers_*``
(one file per group of routes), ``http`` (request and response types),
``validation`` (what clients send), ``config``, ``page``."""

from __future__ import annotations

import time
from typing import Optional

from promptlab.studio.auth import load_secret
from promptlab.studio.config import StudioConfig
from promptlab.studio.dispatch import Dispatcher
from promptlab.studio.handlers_assets import AssetHandlers
from promptlab.studio.handlers_experiments import ExperimentHandlers
from promptlab.studio.handlers_users import UserHandlers
from promptlab.studio.handlers_views import ViewHandlers
from promptlab.studio.page import load_page
from promptlab.studio.queries import DatasetFiles, ReadModel
from promptlab.studio.routes import ROUTES
from promptlab.tracer.local_tracer import LocalTracer


class StudioApp(Dispatcher, UserHandlers, ExperimentHandlers, AssetHandlers, ViewHandlers):
    """The studio's answers for one database file: ``handle(Request) -> Response``
    never raises (see ``dispatch``)."""

    def __init__(self, config: StudioConfig, secret: Optional[bytes] = None) -> None:
        self.config = config
        self.tracer = LocalTracer({"type": "local", "db_file": config.db_file})
        self.db_file = self.tracer.db_file
        if secret is None:
            secret, self.secret_source = load_secret(self.db_file)
        else:
            self.secret_source = "argument"
        self.secret = secret
        self.read = ReadModel(self.tracer, DatasetFiles(config.datasets_dir,
                                                        database=self.tracer.db_file))
        self.throttle = config.throttle
        self.page, self.csp = load_page()
        self.started = time.time()
        self._dummy_hash: Optional[str] = None
        self.routes = list(ROUTES)
