"""``LocalTracer``: records assets, experiments and users in a local SQLite file.

Every method calls the data layer (``promptlab.store``) with the tracer's own file,
so tracers on different files may live in one process. Writes run in one
transaction per call; ``trace_experiment`` writes the experiment and all its
results in a single transaction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from promptlab.enums import AssetType
from promptlab.paths import sanitize_path
from promptlab.sqlite.database_manager import db_manager
from promptlab.store import assets, experiments, summaries, users
from promptlab.store.experiments import (  # noqa: F401 - names callers import from here
    EXPERIMENT_COLUMNS,
    SELECT_EXPERIMENT_PARENTS,
    SELECT_EXPERIMENT_RESULTS,
)
from promptlab.store.formats import encode_dataset, encode_experiment, encode_prompt_template
from promptlab.tracer.tracer import Tracer

# Annotations only (they stay text).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Optional, Union

    from promptlab.sqlite import RowMapping
    from promptlab.sqlite.models import Asset, User
    from promptlab.types import Dataset, ExperimentConfig, PromptTemplate, TracerConfig

CURRENT_USERNAME = "admin"  # as the original: there is no login yet
_SQLITE_URL = "sqlite:///"


def _plain_db_file(config: object) -> Optional[str]:
    """The db_file of ``{"type": "local", "db_file": "<valid path>"}``, the config of most
    scripts, as TracerConfig would store it, read without loading promptlab.types; None
    for any other config, which TracerConfig then checks (and words the errors of)."""
    if not (type(config) is dict and config.keys() == {"type", "db_file"}
            and config["type"] == "local" and type(config["db_file"]) is str):
        return None
    try:
        return sanitize_path(config["db_file"])
    except ValueError:
        return None


def _db_file_of(config: Union[TracerConfig, Mapping[str, Any], Any]) -> str:
    """The absolute database path named by a config dict, TracerConfig or object."""
    db_file = _plain_db_file(config)
    if db_file is None:
        if isinstance(config, Mapping):
            from promptlab.types import TracerConfig

            config = TracerConfig(**config)
        db_file = getattr(config, "db_file", None)
    if db_file is None:
        raise ValueError("LocalTracer needs a config with a db_file.")
    db_file = os.fspath(db_file)
    if isinstance(db_file, str):
        if db_file.startswith(_SQLITE_URL):
            db_file = db_file[len(_SQLITE_URL):]
        if db_file == ":memory:" or "://" in db_file:
            return db_file  # the in-memory database, or a URL the core refuses by name
    # Absolute, so that a later chdir cannot send sessions to another file.
    return os.path.abspath(db_file)


class LocalTracer(Tracer):
    """A tracer writing to the SQLite file named by ``config.db_file``."""

    def __init__(self, tracer_config: Union[TracerConfig, Mapping[str, Any], Any]) -> None:
        self._db_file = _db_file_of(tracer_config)
        db_manager.initialize_database(self._db_file)

    @property
    def db_file(self) -> str:
        """The absolute path of this tracer's database."""
        return self._db_file

    # --- assets ------------------------------------------------------------

    def _create_asset(self, name: str, version: int, description: Optional[str],
                      asset_type: AssetType, binary: str, username: str) -> None:
        assets.insert_asset(self._db_file, name, version, description, asset_type.value,
                            binary, username)

    def create_dataset(self, dataset: Dataset) -> None:
        """Store a dataset asset; its binary is ``{"file_path": ...}`` as JSON."""
        if dataset.version is None:
            dataset.version = 0
        binary = encode_dataset(dataset.file_path)
        self._create_asset(dataset.name, dataset.version, dataset.description,
                           AssetType.DATASET, binary, dataset.user)

    def create_prompttemplate(self, template: PromptTemplate) -> None:
        """Store a prompt template asset in the original PromptLab's text format."""
        if template.version is None:
            template.version = 0
        binary = encode_prompt_template(template.system_prompt, template.user_prompt)
        self._create_asset(template.name, template.version, template.description,
                           AssetType.PROMPT_TEMPLATE, binary, template.user)

    def get_asset(self, asset_name: str, asset_version: int) -> Asset:
        """The asset ``asset_name`` at ``asset_version``; ValueError when missing."""
        asset = assets.get_asset(self._db_file, asset_name, asset_version)
        if asset is None:
            raise ValueError(f"Asset {asset_name} with version {asset_version} not found.")
        return asset

    def get_assets_by_type(self, asset_type: Union[str, AssetType]) -> List[Asset]:
        """Every asset of ``asset_type``, each with its ``user``; ValueError for a bad type."""
        if isinstance(asset_type, AssetType):
            asset_type = asset_type.value
        if asset_type not in AssetType._value2member_map_:
            raise ValueError(f"Invalid asset type: {asset_type}")
        return assets.assets_of_type(self._db_file, asset_type)

    def get_latest_asset(self, asset_name: str) -> Optional[Asset]:
        """The highest version of ``asset_name``, or None when there is none."""
        return assets.get_latest_asset(self._db_file, asset_name)

    # --- experiments -------------------------------------------------------

    def trace_experiment(
        self, experiment_config: ExperimentConfig, experiment_summary: List[Dict[str, Any]]
    ) -> None:
        """Store an experiment and all its results in one transaction (all or nothing).

        The experiment id is that of the first record; ``evaluation`` values that are
        dicts or lists are stored as JSON text.
        """
        if not experiment_summary:
            raise ValueError("experiment_summary is empty: there is nothing to trace.")
        model, asset = encode_experiment(experiment_config)
        experiments.insert_experiment(self._db_file, experiment_summary[0]["experiment_id"],
                                      model, asset, experiment_config.user,
                                      experiment_summary)

    def get_experiments(self, experiment_id: Optional[str] = None, *,
                        limit: Optional[int] = None, offset: int = 0) -> List[RowMapping]:
        """One row per experiment result, with the model and asset fields extracted,
        as mappings (row["completion"], dict(row)), as the original returned them,
        newest experiment first. ``experiment_id`` keeps one experiment's rows;
        ``limit``/``offset`` return rows ``offset`` to ``offset + limit`` of that order."""
        return experiments.experiment_rows(self._db_file, experiment_id, limit, offset)

    def iter_experiments(self, experiment_id: Optional[str] = None, *,
                         limit: Optional[int] = None, offset: int = 0) -> Iterator[RowMapping]:
        """The rows of ``get_experiments`` (same arguments, same order) as an iterator
        that builds them a chunk at a time, for callers that need no list: memory stays
        bounded however many rows there are. Until it is exhausted or closed it holds a
        session and a read snapshot of the file; read it on one thread."""
        return experiments.iter_experiment_rows(self._db_file, experiment_id, limit, offset)

    def get_experiment_summaries(self) -> List[Dict[str, Any]]:
        """One dict per experiment, newest first, as the studio's experiment list
        shows it: ``experiment_id``, ``created_at``, ``user``, the model and asset
        names, ``records``, ``avg_latency_ms``, ``prompt_tokens``,
        ``completion_tokens``, ``avg_prompt_tokens``, ``avg_completion_tokens`` and
        ``metrics`` ({metric: {"average", "count"}}), stored when it was traced."""
        return summaries.experiment_summaries(self._db_file)

    # --- users -------------------------------------------------------------

    def get_user_by_username(self, username: str) -> User:
        """The user called ``username`` (active or not); ValueError when missing."""
        user = users.get_user(self._db_file, username)
        if user is None:
            raise ValueError(f"User {username} not found.")
        return user

    def get_users(self) -> List[User]:
        """The active users (status 1), by id."""
        return users.list_users(self._db_file)

    def create_user(self, user: User) -> None:
        """Insert ``user`` (username, password_hash, role; status 1 unless set).

        Sets ``user.id`` to the new row's id.
        """
        users.insert_user(self._db_file, user)

    def get_all_users(self) -> List[User]:
        """Every user, active (status 1) or deactivated, by id."""
        return users.list_users(self._db_file, active_only=False)

    @staticmethod
    def _found(changed: bool, username: str) -> None:
        if not changed:
            raise ValueError(f"User {username} not found.")

    def deactivate_user_by_username(self, username: str) -> None:
        """Set the user's status to 0; ValueError when there is no such user."""
        self._found(users.set_status(self._db_file, username, False), username)

    def reactivate_user_by_username(self, username: str) -> None:
        """Set the user's status back to 1; ValueError when there is no such user."""
        self._found(users.set_status(self._db_file, username, True), username)

    def set_user_role(self, username: str, role: str) -> None:
        """Change the user's role; ValueError when there is no such user."""
        self._found(users.set_role(self._db_file, username, role), username)

    def set_user_password_hash(self, username: str, password_hash: str) -> None:
        """Store a new password hash for the user (hash it with
        ``promptlab._core.hash_password``); ValueError when there is no such user."""
        self._found(users.set_password_hash(self._db_file, username, password_hash),
                    username)

    def me(self) -> User:
        """The current user: ``admin``, as in the original."""
        try:
            return self.get_user_by_username(CURRENT_USERNAME)
        except ValueError:
            raise ValueError("Current user not found.") from None
