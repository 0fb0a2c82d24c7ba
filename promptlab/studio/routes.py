"""Every route of the studio: method, path (or pattern whose groups are handler
arguments), handler, and who may call it (None: anyone; "user": a signed-in user;
"admin": an admin). ``Dispatcher`` matches requests against this table in order."""

from __future__ import annotations

import re
from typing import Any, List, Optional, Tuple

from promptlab.studio.handlers_assets import AssetHandlers as A
from promptlab.studio.handlers_auth import AuthHandlers as Auth
from promptlab.studio.handlers_experiments import ExperimentHandlers as E
from promptlab.studio.handlers_users import UserHandlers as U
from promptlab.studio.handlers_views import ViewHandlers as V

_USER = r"/api/users/([^/]+)"

ROUTES: List[Tuple[str, Any, Any, Optional[str]]] = [
    ("POST", "/api/login", Auth.login, None),
    ("GET", "/api/me", Auth.me, "user"),
    ("GET", "/api/experiments", E.get_experiments, "user"),
    ("POST", "/api/experiments", E.post_experiment, "user"),
    ("GET", "/api/prompts", A.get_prompts, "user"),
    ("GET", "/api/datasets", A.get_datasets, "user"),
    ("POST", "/api/datasets", A.post_dataset, "user"),
    ("POST", "/api/templates", A.post_template, "user"),
    ("GET", "/api/assets", A.get_asset, "user"),
    ("GET", "/api/users", U.get_users, "admin"),
    ("POST", "/api/users", U.post_user, "admin"),
    ("DELETE", re.compile(_USER), U.delete_user, "admin"),
    ("POST", re.compile(_USER + "/reactivate"), U.reactivate_user, "admin"),
    ("POST", re.compile(_USER + "/role"), U.set_user_role, "admin"),
    ("POST", re.compile(_USER + "/password"), U.reset_password, "admin"),
    ("POST", "/api/me/password", Auth.change_own_password, "user"),
    ("POST", "/api/token", Auth.new_token, "user"),
    ("GET", "/api/studio/datasets", V.studio_datasets, "user"),
    ("GET", "/api/studio/dataset", V.studio_dataset, "user"),
    ("GET", "/api/studio/experiments", V.studio_experiments, "user"),
    ("GET", "/api/studio/records", V.studio_records, "user"),
    ("GET", "/api/studio/compare", V.studio_compare, "user"),
    ("GET", "/health", V.health, None),
]
