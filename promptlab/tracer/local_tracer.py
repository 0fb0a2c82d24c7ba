"""``LocalTracer``: records assets, experiments and users in a local SQLite file.

Every method opens a session on the tracer's own file
(``db_manager.get_session(self._db_file)``), so tracers on different files may live
in one process. Writes run in one transaction per call; ``trace_experiment`` writes
the experiment and all its results in a single transaction.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from typing import Any, Dict, List, Mapping, Optional, Union

from promptlab.sqlite import RowMapping, Session
from promptlab.enums import AssetType
from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.models import Asset, User
from promptlab.tracer.tracer import Tracer
from promptlab.types import Dataset, ExperimentConfig, ModelConfig, PromptTemplate, TracerConfig

# --- users -----------------------------------------------------------------

_USER_COLUMNS = "id, username, password_hash, role, status, created_at"
SELECT_USER_ID = "SELECT id FROM users WHERE username = ?"
SELECT_USER_BY_USERNAME = f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?"
SELECT_ACTIVE_USERS = f"SELECT {_USER_COLUMNS} FROM users WHERE status = 1 ORDER BY id"
INSERT_USER = "INSERT INTO users (username, password_hash, role, status) VALUES (?, ?, ?, ?)"
DEACTIVATE_USER = "UPDATE users SET status = 0 WHERE username = ?"
SELECT_ALL_USERS = f"SELECT {_USER_COLUMNS} FROM users ORDER BY id"
REACTIVATE_USER = "UPDATE users SET status = 1 WHERE username = ?"
SET_USER_ROLE = "UPDATE users SET role = ? WHERE username = ?"
SET_USER_PASSWORD_HASH = "UPDATE users SET password_hash = ? WHERE username = ?"

# --- assets ----------------------------------------------------------------

INSERT_ASSET = """
INSERT INTO assets (asset_name, asset_version, asset_description, asset_type,
                    asset_binary, user_id)
VALUES (?, ?, ?, ?, ?, ?)
"""

# The assets columns in table order, then the owner's users columns (Asset.from_row).
_SELECT_ASSETS = """
SELECT a.asset_name, a.asset_version, a.asset_description, a.asset_type, a.asset_binary,
       a.is_deployed, a.deployment_time, a.status, a.created_at, a.user_id,
       u.id AS user__id, u.username AS user__username,
       u.password_hash AS user__password_hash, u.role AS user__role,
       u.status AS user__status, u.created_at AS user__created_at
FROM assets a
LEFT JOIN users u ON u.id = a.user_id
"""
SELECT_ASSET = _SELECT_ASSETS + "WHERE a.asset_name = ? AND a.asset_version = ?"
SELECT_LATEST_ASSET = (
    _SELECT_ASSETS + "WHERE a.asset_name = ? ORDER BY a.asset_version DESC LIMIT 1"
)
# In insertion order, as the original returned them (its query had no ORDER BY and
# SQLite read the table in rowid order). ix_assets_asset_type ends with the rowid, so
# the index gives this order without a sort.
SELECT_ASSETS_BY_TYPE = _SELECT_ASSETS + "WHERE a.asset_type = ? ORDER BY a.rowid"

# The original binary format of a prompt template (PromptLab 0.1.x, whitespace included).
PROMPT_TEMPLATE_BINARY = (
    "\n            <<system>>\n                {system_prompt}"
    "\n            <<user>>\n                {user_prompt}\n        "
)

# --- experiments -----------------------------------------------------------

# promptlab_now() (a C function on every connection) stamps each row at insert
# time in the format of the created_at DEFAULT, at a twentieth of strftime's cost.
INSERT_EXPERIMENT = (
    "INSERT INTO experiments (experiment_id, model, asset, user_id, created_at) "
    "VALUES (?, ?, ?, ?, promptlab_now())"
)
# Bound by name straight from the summary records (the C core walks each dict
# once; keys the statement does not name are ignored, dict and list values such
# as evaluation are stored as json.dumps() text).
INSERT_EXPERIMENT_RESULT = """
INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, prompt_tokens,
                               completion_tokens, latency_ms, evaluation, created_at)
VALUES (:experiment_id, :dataset_record_id, :completion, :prompt_tokens,
        :completion_tokens, :latency_ms, :evaluation, promptlab_now())
"""

# The original SELECT_EXPERIMENTS_QUERY: one row per result, newest experiment
# first, with the same columns and values; run as two queries joined in C by
# Session.execute_nested (csrc/engine/nest.c). As one SELECT, SQLite re-read the 10
# experiment columns for every result row; now it reads them once per
# experiment (10,000 rows: 21 ms before, see benchmarks/README.md for after).
# - Experiments come newest first through ix_experiments_created_at (its entries
#   end with the rowid, so that order is the ORDER BY and nothing is sorted); the
#   JSON fields, template and user are computed once per experiment.
# - Results come in the same experiment order (CROSS JOIN fixes the loop order),
#   each experiment's through ix_experiment_result_experiment_id, in insertion
#   order, which tests check. The original query left that order unspecified.
# - The experiment's rowid is the join key, first in both.
SELECT_EXPERIMENT_PARENTS = """
SELECT e.rowid AS erowid, e.experiment_id AS experiment_id,
       json_extract(e.model, '$.completion_model_config.name') AS completion_model,
       json_extract(e.model, '$.embedding_model_config.name') AS embedding_model,
       json_extract(e.asset, '$.prompt_template_name') AS prompt_template_name,
       json_extract(e.asset, '$.prompt_template_version') AS prompt_template_version,
       json_extract(e.asset, '$.dataset_name') AS dataset_name,
       json_extract(e.asset, '$.dataset_version') AS dataset_version,
       a.asset_binary AS asset_binary, u.username AS username, e.created_at AS created_at
FROM experiments e INDEXED BY ix_experiments_created_at
LEFT JOIN assets a
       ON a.asset_name = json_extract(e.asset, '$.prompt_template_name')
      AND a.asset_version = json_extract(e.asset, '$.prompt_template_version')
LEFT JOIN users u ON u.id = e.user_id
ORDER BY e.created_at DESC, e.rowid DESC
"""
SELECT_EXPERIMENT_RESULTS = """
SELECT e.rowid AS erowid, er.dataset_record_id AS dataset_record_id,
       er.completion AS completion, er.prompt_tokens AS prompt_tokens,
       er.completion_tokens AS completion_tokens, er.latency_ms AS latency_ms,
       er.evaluation AS evaluation
FROM experiments e INDEXED BY ix_experiments_created_at
CROSS JOIN experiment_result er INDEXED BY ix_experiment_result_experiment_id
        ON er.experiment_id = e.experiment_id
ORDER BY e.created_at DESC, e.rowid DESC
"""
# The columns of a get_experiments() row, in the original's order.
EXPERIMENT_COLUMNS = (
    "experiment_id", "completion_model", "embedding_model", "prompt_template_name",
    "prompt_template_version", "dataset_name", "dataset_version", "dataset_record_id",
    "completion", "prompt_tokens", "completion_tokens", "latency_ms", "evaluation",
    "asset_binary", "username", "created_at",
)

CURRENT_USERNAME = "admin"  # as the original: there is no login yet
_SQLITE_URL = "sqlite:///"


def _db_file_of(config: Union[TracerConfig, Mapping[str, Any], Any]) -> str:
    """The absolute database path named by a config dict, TracerConfig or object."""
    if isinstance(config, Mapping):
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


def _model_config_json(config: Optional[ModelConfig]) -> Optional[Dict[str, Any]]:
    """A model config as a JSON-ready dict, with the model instance left out (None).

    The API key is not stored (None): the original PromptLab wrote it in plain text
    into experiments.model, where anyone who can read the file or the studio sees it.
    """
    if config is None:
        return None
    data = {f.name: getattr(config, f.name) for f in fields(config)}
    data["model"] = None
    data["api_key"] = None
    return data


class LocalTracer(Tracer):
    """A tracer writing to the SQLite file named by ``config.db_file``."""

    def __init__(self, tracer_config: Union[TracerConfig, Mapping[str, Any], Any]) -> None:
        self._db_file = _db_file_of(tracer_config)
        db_manager.initialize_database(self._db_file)

    @property
    def db_file(self) -> str:
        """The absolute path of this tracer's database."""
        return self._db_file

    def _session(self) -> Session:
        return db_manager.get_session(self._db_file)

    @staticmethod
    def _user_id(session: Session, username: str) -> int:
        user_id = session.execute(SELECT_USER_ID, (username,)).scalar()
        if user_id is None:
            raise ValueError(f"User {username} not found.")
        return user_id

    # --- assets ------------------------------------------------------------

    def _create_asset(self, name: str, version: int, description: Optional[str],
                      asset_type: AssetType, binary: str, username: str) -> None:
        with self._session() as session:
            session.begin()
            user_id = self._user_id(session, username)
            session.execute(
                INSERT_ASSET, (name, version, description, asset_type.value, binary, user_id)
            )

    def create_dataset(self, dataset: Dataset) -> None:
        """Store a dataset asset; its binary is ``{"file_path": ...}`` as JSON."""
        if dataset.version is None:
            dataset.version = 0
        binary = json.dumps({"file_path": dataset.file_path})
        self._create_asset(dataset.name, dataset.version, dataset.description,
                           AssetType.DATASET, binary, dataset.user)

    def create_prompttemplate(self, template: PromptTemplate) -> None:
        """Store a prompt template asset in the original ``<<system>>``/``<<user>>`` text."""
        if template.version is None:
            template.version = 0
        binary = PROMPT_TEMPLATE_BINARY.format(
            system_prompt=template.system_prompt, user_prompt=template.user_prompt
        )
        self._create_asset(template.name, template.version, template.description,
                           AssetType.PROMPT_TEMPLATE, binary, template.user)

    def get_asset(self, asset_name: str, asset_version: int) -> Asset:
        """The asset ``asset_name`` at ``asset_version``; ValueError when missing."""
        with self._session() as session:
            row = session.execute(SELECT_ASSET, (asset_name, asset_version)).first()
        if row is None:
            raise ValueError(f"Asset {asset_name} with version {asset_version} not found.")
        return Asset.from_row(row)

    def get_assets_by_type(self, asset_type: Union[str, AssetType]) -> List[Asset]:
        """Every asset of ``asset_type``, each with its ``user``; ValueError for a bad type."""
        if isinstance(asset_type, AssetType):
            asset_type = asset_type.value
        if asset_type not in AssetType._value2member_map_:
            raise ValueError(f"Invalid asset type: {asset_type}")
        with self._session() as session:
            rows = session.execute(SELECT_ASSETS_BY_TYPE, (asset_type,)).all()
        return [Asset.from_row(row) for row in rows]

    def get_latest_asset(self, asset_name: str) -> Optional[Asset]:
        """The highest version of ``asset_name``, or None when there is none."""
        with self._session() as session:
            row = session.execute(SELECT_LATEST_ASSET, (asset_name,)).first()
        return None if row is None else Asset.from_row(row)

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
        experiment_id = experiment_summary[0]["experiment_id"]
        model = {
            "completion_model_config": _model_config_json(
                experiment_config.completion_model_config),
            "embedding_model_config": _model_config_json(
                experiment_config.embedding_model_config),
        }
        template = experiment_config.prompt_template
        asset = {
            "prompt_template_name": template.name if template else None,
            "prompt_template_version": template.version if template else None,
            "dataset_name": experiment_config.dataset.name,
            "dataset_version": experiment_config.dataset.version,
        }
        experiment = (experiment_id, json.dumps(model), json.dumps(asset))
        with self._session() as session:  # commits once; rolls back on any error
            session.begin()
            user_id = self._user_id(session, experiment_config.user)
            session.execute(INSERT_EXPERIMENT, experiment + (user_id,))
            # The records are bound in C: no Python code runs per row.
            session.executemany(INSERT_EXPERIMENT_RESULT, experiment_summary)

    def get_experiments(self) -> List[RowMapping]:
        """One row per experiment result, with the model and asset fields extracted,
        as mappings (row["completion"], dict(row)), as the original returned them."""
        with self._session() as session:
            return session.execute_nested(SELECT_EXPERIMENT_PARENTS,
                                          SELECT_EXPERIMENT_RESULTS,
                                          EXPERIMENT_COLUMNS, mappings=True).all()

    # --- users -------------------------------------------------------------

    def get_user_by_username(self, username: str) -> User:
        """The user called ``username`` (active or not); ValueError when missing."""
        with self._session() as session:
            row = session.execute(SELECT_USER_BY_USERNAME, (username,)).first()
        if row is None:
            raise ValueError(f"User {username} not found.")
        return User.from_row(row)

    def get_users(self) -> List[User]:
        """The active users (status 1), by id."""
        with self._session() as session:
            rows = session.execute(SELECT_ACTIVE_USERS).all()
        return [User.from_row(row) for row in rows]

    def create_user(self, user: User) -> None:
        """Insert ``user`` (username, password_hash, role; status 1 unless set).

        Sets ``user.id`` to the new row's id.
        """
        status = 1 if user.status is None else user.status
        with self._session() as session:
            result = session.execute(
                INSERT_USER, (user.username, user.password_hash, user.role, status)
            )
        user.id = result.lastrowid
        user.status = status

    def deactivate_user_by_username(self, username: str) -> None:
        """Set the user's status to 0; ValueError when there is no such user."""
        with self._session() as session:
            changed = session.execute(DEACTIVATE_USER, (username,)).rowcount
        if changed == 0:
            raise ValueError(f"User {username} not found.")

    def get_all_users(self) -> List[User]:
        """Every user, active (status 1) or deactivated, by id."""
        with self._session() as session:
            rows = session.execute(SELECT_ALL_USERS).all()
        return [User.from_row(row) for row in rows]

    def _update_user(self, sql: str, params: tuple, username: str) -> None:
        with self._session() as session:
            changed = session.execute(sql, params).rowcount
        if changed == 0:
            raise ValueError(f"User {username} not found.")

    def reactivate_user_by_username(self, username: str) -> None:
        """Set the user's status back to 1; ValueError when there is no such user."""
        self._update_user(REACTIVATE_USER, (username,), username)

    def set_user_role(self, username: str, role: str) -> None:
        """Change the user's role; ValueError when there is no such user."""
        self._update_user(SET_USER_ROLE, (role, username), username)

    def set_user_password_hash(self, username: str, password_hash: str) -> None:
        """Store a new password hash for the user (hash it with
        ``promptlab._core.hash_password``); ValueError when there is no such user."""
        self._update_user(SET_USER_PASSWORD_HASH, (password_hash, username), username)

    def me(self) -> User:
        """The current user: ``admin``, as in the original."""
        try:
            return self.get_user_by_username(CURRENT_USERNAME)
        except ValueError:
            raise ValueError("Current user not found.") from None
