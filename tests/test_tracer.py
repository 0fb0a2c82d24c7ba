"""LocalTracer, the record types it returns, and the declared schema (models.TABLES).

Every test works on its own database under ``tmp_path`` and checks what the file
holds with the standard library's sqlite3, independently of the C core.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

from promptlab.enums import AssetType, TracerType
from promptlab.sqlite import DatabaseError, IntegrityError, ProgrammingError
from promptlab.sqlite.models import (
    TABLES,
    Asset,
    Experiment,
    ExperimentResult,
    User,
    parse_timestamp,
)
from promptlab.tracer import LocalTracer, Tracer
from factories import make_config, make_dataset, make_summary, make_template
from promptlab.types import (
    Dataset,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    PromptTemplate,
    TracerConfig,
)

BOOKKEEPING_TABLES = {"alembic_version", "promptlab_migrations", "legacy_asset_ids",
                      "sqlite_sequence"}


# --- fixtures and helpers ----------------------------------------------------


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "tracer.db"


@pytest.fixture
def tracer(db_file: Path, at_head) -> LocalTracer:
    return LocalTracer({"type": "local", "db_file": str(at_head(db_file))})


def query(path, sql: str, params=()) -> List[tuple]:
    """Rows of ``sql`` read from ``path`` with the standard library."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def write(path, sql: str, params=()) -> None:
    """Run one write statement on ``path`` with the standard library."""
    con = sqlite3.connect(str(path))
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def count(path, table: str) -> int:
    return query(path, f"SELECT count(*) FROM {table}")[0][0]


def admin_id(path) -> int:
    return query(path, "SELECT id FROM users WHERE username = 'admin'")[0][0]


# The prompt template binary exactly as PromptLab 0.1.11 built it.
def original_template_binary(template: PromptTemplate) -> str:
    binary = f"""
            <<system>>
                {template.system_prompt}
            <<user>>
                {template.user_prompt}
        """
    return binary


# --- the declared schema ---------------------------------------------------------


def test_tables_match_the_migrated_schema(db_file: Path):
    LocalTracer({"type": "local", "db_file": str(db_file)})
    names = {r[0] for r in query(db_file, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names - BOOKKEEPING_TABLES == {t.name for t in TABLES}

    for table in TABLES:
        info = query(db_file, f"PRAGMA table_info({table.name})")
        pk_order = {name: i + 1 for i, name in enumerate(table.primary_key)}
        assert info == [
            (i, c.name, c.sql_type, int(not c.nullable), c.default_sql, pk_order.get(c.name, 0))
            for i, c in enumerate(table.columns)
        ], table.name

        create_sql = query(db_file, "SELECT sql FROM sqlite_master WHERE name = ?",
                           (table.name,))[0][0]
        has_autoincrement = re.search(r"\bAUTOINCREMENT\b", create_sql, re.I) is not None
        assert has_autoincrement == any(c.autoincrement for c in table.columns), table.name

        foreign_keys = {(r[3], f"{r[2]}.{r[4]}")
                        for r in query(db_file, f"PRAGMA foreign_key_list({table.name})")}
        assert foreign_keys == {(c.name, c.references) for c in table.columns if c.references}

        named, unique_columns = {}, set()
        for _, index_name, unique, origin, _ in query(db_file, f"PRAGMA index_list({table.name})"):
            columns = tuple(r[2] for r in query(db_file, f"PRAGMA index_info({index_name})"))
            if origin == "c":
                named[index_name] = (columns, bool(unique))
            elif origin == "u":
                assert len(columns) == 1
                unique_columns.add(columns[0])
        assert named == {i.name: (i.columns, i.unique) for i in table.indexes}, table.name
        assert unique_columns == {c.name for c in table.columns if c.unique}, table.name


def test_declarations_are_what_the_migration_says():
    by_name = {t.name: t for t in TABLES}
    assert [t.name for t in TABLES] == ["users", "assets", "experiments", "experiment_result",
                                        "experiment_summary", "experiment_metric"]
    assert by_name["assets"].primary_key == ("asset_name", "asset_version")
    assert by_name["users"].column("id").autoincrement
    assert not by_name["experiment_result"].column("id").autoincrement
    assert by_name["users"].column("username").unique
    assert by_name["experiment_result"].column("experiment_id").references == \
        "experiments.experiment_id"
    assert {i.name for t in TABLES for i in t.indexes} == {
        "ix_experiment_result_experiment_id", "ix_assets_asset_type",
        "ix_experiments_created_at"}
    with pytest.raises(KeyError):
        by_name["users"].column("nope")


@pytest.mark.parametrize("record, table", [
    (User, "users"), (Asset, "assets"), (Experiment, "experiments"),
    (ExperimentResult, "experiment_result"),
])
def test_record_fields_follow_the_table_columns(record, table):
    declared = {t.name: t for t in TABLES}[table]
    fields = [f.name for f in dataclasses.fields(record) if f.name != "user"]
    assert tuple(fields) == declared.column_names


# --- records and timestamps --------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("2026-11-27 03:10:51.123", datetime(2026, 11, 27, 3, 10, 51, 123000)),
    ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5)),
    ("2024-01-02 03:04:05.123456", datetime(2024, 1, 2, 3, 4, 5, 123456)),
    (None, None),
    ("yesterday", "yesterday"),
])
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected
    assert type(parse_timestamp(text)) is type(expected)


def test_record_from_rows():
    result = ExperimentResult.from_row((7, "e", "r", None, 1, 2, 3.5, "{}", "2024-01-02 03:04:05"))
    assert result.id == 7 and result.completion is None
    assert result.created_at == datetime(2024, 1, 2, 3, 4, 5)
    experiment = Experiment.from_row(("e", "{}", "[]", 1, None, 3))
    assert experiment.experiment_id == "e" and experiment.user_id == 3
    assert experiment.created_at is None and experiment.user is None


# --- types -----------------------------------------------------------------------


def test_tracer_config_stores_the_type_value_and_checks_the_path():
    assert TracerConfig(type=TracerType.LOCAL, db_file="x.db").type == "local"
    assert TracerConfig(type="remote", endpoint="http://h").type == "remote"
    assert TracerConfig(type="local").db_file is None
    assert TracerConfig(type="local", db_file="a/./b.db").db_file == "a/b.db"
    with pytest.raises(ValueError):
        TracerConfig(type="cloud")
    for bad in ["", "a<b.db", "a>b", 'a"b', "a|b", "a?b", "a*b"]:
        with pytest.raises(ValueError):
            TracerConfig(type="local", db_file=bad)


def test_configs_are_keyword_built_with_the_original_defaults():
    with pytest.raises(TypeError):
        Dataset("qa", "d", "/f")  # type: ignore[misc]
    dataset = Dataset(name="qa", description="d", file_path="/f")
    assert (dataset.version, dataset.user) == (0, "admin")
    model = ModelConfig(name="m", type="t")
    assert (model.max_concurrent_tasks, model.api_key, model.model) == (5, None, None)
    config = ExperimentConfig(
        dataset={"name": "qa", "description": "d", "file_path": "/f", "version": 2},
        evaluation=[{"metric": "f1", "column_mapping": {}}],
        completion_model_config={"name": "m", "type": "t"},
        prompt_template={"name": "p", "description": "", "system_prompt": "s",
                         "user_prompt": "u"},
    )
    assert config.dataset == Dataset(name="qa", description="d", file_path="/f", version=2)
    assert config.evaluation == [EvaluationConfig(metric="f1", column_mapping={})]
    assert config.completion_model_config == ModelConfig(name="m", type="t")
    assert config.prompt_template.system_prompt == "s"
    assert (config.name, config.embedding_model_config, config.user) == (None, None, "admin")


# --- construction and isolation ---------------------------------------------------


@pytest.mark.parametrize("kind", ["dict", "tracer_config", "object"])
def test_tracer_accepts_each_config_form(tmp_path: Path, kind: str):
    path = tmp_path / kind / "p.db"
    path.parent.mkdir()
    config = {
        "dict": {"type": "local", "db_file": str(path)},
        "tracer_config": TracerConfig(type=TracerType.LOCAL, db_file=str(path)),
        "object": SimpleNamespace(db_file=path),
    }[kind]
    tracer = LocalTracer(config)
    assert isinstance(tracer, Tracer)
    assert tracer.db_file == str(path)
    assert query(path, "SELECT username FROM users") == [("admin",)]


def test_tracer_rejects_configs_without_a_usable_path(tmp_path: Path):
    with pytest.raises(ValueError):
        LocalTracer({"type": "local", "db_file": str(tmp_path / "a?.db")})
    with pytest.raises(ValueError):
        LocalTracer(SimpleNamespace(db_file=None))
    assert list(tmp_path.iterdir()) == []


def test_tracer_is_abstract_with_the_original_methods():
    with pytest.raises(TypeError):
        Tracer(TracerConfig(type="local"))  # type: ignore[abstract]
    assert Tracer.__abstractmethods__ == {
        "create_dataset", "create_prompttemplate", "trace_experiment", "get_asset",
        "get_assets_by_type", "get_latest_asset", "get_user_by_username",
        "get_experiments", "get_users", "create_user", "deactivate_user_by_username", "me"}


def test_relative_path_keeps_naming_the_same_file_after_chdir(tmp_path: Path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    tracer = LocalTracer({"type": "local", "db_file": "rel.db"})
    monkeypatch.chdir(tmp_path / "b")
    tracer.create_dataset(make_dataset())
    assert count(tmp_path / "a" / "rel.db", "assets") == 1
    assert not (tmp_path / "b" / "rel.db").exists()


def test_two_tracers_in_one_process_each_use_their_own_file(tmp_path: Path):
    path_a, path_b = tmp_path / "a.db", tmp_path / "b.db"
    a = LocalTracer({"type": "local", "db_file": str(path_a)})
    b = LocalTracer({"type": "local", "db_file": str(path_b)})  # initialized last

    a.create_dataset(make_dataset("only-a"))
    b.create_prompttemplate(make_template("only-b"))
    a.create_user(User(username="alice", password_hash="h", role="engineer"))
    b.trace_experiment(make_config(template=None), make_summary("exp-b", 2))
    a.trace_experiment(make_config(template=None), make_summary("exp-a", 3))
    b.deactivate_user_by_username("admin")

    assert query(path_a, "SELECT asset_name FROM assets") == [("only-a",)]
    assert query(path_b, "SELECT asset_name FROM assets") == [("only-b",)]
    assert query(path_a, "SELECT experiment_id FROM experiments") == [("exp-a",)]
    assert query(path_b, "SELECT experiment_id FROM experiments") == [("exp-b",)]
    assert count(path_a, "experiment_result") == 3
    assert count(path_b, "experiment_result") == 2

    assert a.get_latest_asset("only-b") is None
    assert b.get_latest_asset("only-a") is None
    assert [u.username for u in a.get_users()] == ["admin", "alice"]
    assert b.get_users() == []
    with pytest.raises(ValueError):
        b.get_user_by_username("alice")
    assert {r.experiment_id for r in a.get_experiments()} == {"exp-a"}
    assert {r.experiment_id for r in b.get_experiments()} == {"exp-b"}
    assert [x.asset_name for x in a.get_assets_by_type("dataset")] == ["only-a"]
    assert b.get_assets_by_type("dataset") == []


# --- assets ------------------------------------------------------------------------


def test_create_dataset_stores_the_original_binary(tracer: LocalTracer, db_file: Path):
    tracer.create_dataset(make_dataset("qa", 0, description="d", file_path="/data/qa.jsonl"))
    rows = query(db_file, "SELECT asset_name, asset_version, asset_description, asset_type, "
                          "asset_binary, is_deployed, deployment_time, status, user_id, "
                          "created_at FROM assets")
    assert len(rows) == 1
    *values, created_at = rows[0]
    assert values == ["qa", 0, "d", "dataset", '{"file_path": "/data/qa.jsonl"}', 0, None, 1,
                      admin_id(db_file)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", created_at)


def test_get_asset_returns_a_typed_record(tracer: LocalTracer, db_file: Path):
    tracer.create_dataset(make_dataset("qa", 3, description="d"))
    asset = tracer.get_asset("qa", 3)
    stored_created_at = query(db_file, "SELECT created_at FROM assets")[0][0]
    assert isinstance(asset, Asset)
    assert (asset.asset_name, asset.asset_version, asset.asset_description,
            asset.asset_type) == ("qa", 3, "d", "dataset")
    assert json.loads(asset.asset_binary) == {"file_path": "/data/qa.jsonl"}
    assert asset.is_deployed is False
    assert asset.deployment_time is None
    assert asset.status == 1
    assert isinstance(asset.created_at, datetime)
    assert asset.created_at == datetime.fromisoformat(stored_created_at)
    assert asset.user_id == admin_id(db_file)
    assert isinstance(asset.user, User) and asset.user.username == "admin"
    assert isinstance(asset.user.created_at, datetime)


def test_create_prompttemplate_stores_the_original_text(tracer: LocalTracer, db_file: Path):
    template = make_template("tpl", 1, system_prompt="Be {brief}.", user_prompt="Q: <question>")
    tracer.create_prompttemplate(template)
    binary, asset_type = query(db_file, "SELECT asset_binary, asset_type FROM assets")[0]
    assert binary == original_template_binary(template)
    assert asset_type == "prompt_template"
    # The original parser (Utils.split_prompt_template) recovers both prompts.
    pattern = r"<<system>>\s*(.*?)\s*<<user>>\s*(.*?)\s*(?=<<|$)"
    assert re.findall(pattern, tracer.get_asset("tpl", 1).asset_binary, re.DOTALL) == [
        ("Be {brief}.", "Q: <question>")]


def test_versions(tracer: LocalTracer, db_file: Path):
    for version in (0, 2, 1):
        tracer.create_prompttemplate(make_template("tpl", version, description=f"v{version}"))
    assert tracer.get_latest_asset("tpl").asset_version == 2
    assert tracer.get_latest_asset("tpl").asset_description == "v2"
    assert tracer.get_asset("tpl", 1).asset_description == "v1"
    assert tracer.get_latest_asset("missing") is None

    with pytest.raises(IntegrityError):
        tracer.create_prompttemplate(make_template("tpl", 1, description="duplicate"))
    assert query(db_file, "SELECT asset_description FROM assets WHERE asset_version = 1") == \
        [("v1",)]

    dataset = make_dataset("ds")
    dataset.version = None  # type: ignore[assignment]
    tracer.create_dataset(dataset)
    assert dataset.version == 0
    assert query(db_file, "SELECT asset_version FROM assets WHERE asset_name = 'ds'") == [(0,)]


def test_get_asset_missing(tracer: LocalTracer):
    tracer.create_dataset(make_dataset("qa", 0))
    with pytest.raises(ValueError, match=r"^Asset qa with version 1 not found\.$"):
        tracer.get_asset("qa", 1)
    with pytest.raises(ValueError, match=r"^Asset nope with version 0 not found\.$"):
        tracer.get_asset("nope", 0)


def test_get_assets_by_type(tracer: LocalTracer):
    tracer.create_user(User(username="alice", password_hash="h", role="engineer"))
    tracer.create_dataset(make_dataset("b-ds", 0, user="alice"))
    tracer.create_dataset(make_dataset("a-ds", 1))
    tracer.create_dataset(make_dataset("a-ds", 0))
    tracer.create_prompttemplate(make_template("tpl", 0))

    datasets = tracer.get_assets_by_type("dataset")
    # In the order they were created, as the original returned them (issue 13, item 6).
    assert [(a.asset_name, a.asset_version) for a in datasets] == [
        ("b-ds", 0), ("a-ds", 1), ("a-ds", 0)]
    assert all(a.asset_type == "dataset" for a in datasets)
    assert [a.user.username for a in datasets] == ["alice", "admin", "admin"]
    assert datasets[0].user.role == "engineer"
    assert [a.asset_name for a in tracer.get_assets_by_type(AssetType.PROMPT_TEMPLATE)] == ["tpl"]
    for bad in ["datasets", "", "PROMPT_TEMPLATE"]:
        with pytest.raises(ValueError, match="Invalid asset type"):
            tracer.get_assets_by_type(bad)


def test_asset_for_an_unknown_user_is_not_written(tracer: LocalTracer, db_file: Path):
    with pytest.raises(ValueError, match=r"^User ghost not found\.$"):
        tracer.create_dataset(make_dataset(user="ghost"))
    assert count(db_file, "assets") == 0


def test_asset_without_owner_has_no_user(tracer: LocalTracer, db_file: Path):
    write(db_file, "INSERT INTO assets (asset_name, asset_version, asset_type) "
                   "VALUES ('orphan', 0, 'dataset')")
    (asset,) = tracer.get_assets_by_type("dataset")
    assert asset.user is None and asset.user_id is None


def test_legacy_timestamps_and_flags(tracer: LocalTracer, db_file: Path):
    write(db_file,
          "INSERT INTO assets (asset_name, asset_version, asset_type, is_deployed, "
          "deployment_time, created_at, user_id) VALUES (?, ?, 'dataset', ?, ?, ?, ?)",
          ("old", 0, 1, "2024-05-06 07:08:09.123456", "2024-05-06 07:08:09", admin_id(db_file)))
    write(db_file,
          "INSERT INTO assets (asset_name, asset_version, asset_type, is_deployed, "
          "deployment_time, created_at) VALUES ('odd', 0, 'dataset', NULL, NULL, 'not a date')")
    old = tracer.get_asset("old", 0)
    assert old.is_deployed is True
    assert old.deployment_time == datetime(2024, 5, 6, 7, 8, 9, 123456)
    assert old.created_at == datetime(2024, 5, 6, 7, 8, 9)
    odd = tracer.get_latest_asset("odd")
    assert odd.created_at == "not a date"
    assert odd.is_deployed is False and odd.deployment_time is None


def test_unicode_nulls_and_large_text_round_trip(tracer: LocalTracer, db_file: Path):
    unicode_text = "Grüße 👋 — 你好 \u0000 nul and \U0010ffff"
    large = ("0123456789abcdé" * 70000)[: 1 << 20]
    assert len(large) == 1 << 20
    tracer.create_prompttemplate(make_template("ünï", 0, description=unicode_text,
                                               system_prompt=large, user_prompt=unicode_text))
    tracer.create_dataset(make_dataset("empty", 0, description=None))  # type: ignore[arg-type]
    asset = tracer.get_asset("ünï", 0)
    assert asset.asset_description == unicode_text
    assert asset.asset_binary == original_template_binary(
        make_template(system_prompt=large, user_prompt=unicode_text))
    assert tracer.get_asset("empty", 0).asset_description is None

    records = [
        {"experiment_id": "e", "dataset_record_id": "big", "completion": large,
         "prompt_tokens": 1, "completion_tokens": 2, "latency_ms": 0.25,
         "evaluation": {"text": unicode_text}},
        {"experiment_id": "e", "dataset_record_id": None, "completion": None,
         "prompt_tokens": None, "completion_tokens": None, "latency_ms": None,
         "evaluation": None},
        {"experiment_id": "e", "dataset_record_id": "ü", "completion": unicode_text,
         "prompt_tokens": 0, "completion_tokens": 0, "latency_ms": 0.0,
         "evaluation": unicode_text},
    ]
    tracer.trace_experiment(make_config(template=None), records)
    stored = query(db_file, "SELECT dataset_record_id, completion, prompt_tokens, "
                            "completion_tokens, latency_ms, evaluation "
                            "FROM experiment_result ORDER BY id")
    assert stored == [
        ("big", large, 1, 2, 0.25, json.dumps({"text": unicode_text})),
        (None, None, None, None, None, None),
        ("ü", unicode_text, 0, 0, 0.0, unicode_text),
    ]
    rows = tracer.get_experiments()
    assert [r.completion for r in rows] == [large, None, unicode_text]
    assert json.loads(rows[0].evaluation) == {"text": unicode_text}


# --- experiments ---------------------------------------------------------------------


def test_trace_experiment_writes_the_experiment_and_its_results(
        tracer: LocalTracer, db_file: Path):
    tracer.create_user(User(username="bob", password_hash="h", role="engineer"))
    config = make_config(
        completion_model_config=ModelConfig(name="ollama/llama3.2", type="ollama",
                                            endpoint="http://localhost:11434", model=object()),
        embedding_model_config=ModelConfig(name="ollama/nomic", type="ollama",
                                           model=lambda text: [0.0]),
        template=make_template("tpl", 4), dataset=make_dataset("qa", 2), user="bob")
    summary = make_summary("exp-1", 3)
    summary[1]["evaluation"] = {"f1": 0.5}
    summary[2]["evaluation"] = "already text"
    tracer.trace_experiment(config, summary)

    (experiment,) = query(db_file, "SELECT experiment_id, model, asset, status, user_id, "
                                   "created_at FROM experiments")
    assert experiment[0] == "exp-1"
    assert json.loads(experiment[1]) == {
        "completion_model_config": {
            "name": "ollama/llama3.2", "type": "ollama", "api_key": None,
            "api_version": None, "endpoint": "http://localhost:11434",
            "max_concurrent_tasks": 5, "model": None},
        "embedding_model_config": {
            "name": "ollama/nomic", "type": "ollama", "api_key": None, "api_version": None,
            "endpoint": None, "max_concurrent_tasks": 5, "model": None},
    }
    assert json.loads(experiment[2]) == {
        "prompt_template_name": "tpl", "prompt_template_version": 4,
        "dataset_name": "qa", "dataset_version": 2}
    assert experiment[3] == 1
    assert experiment[4] == query(db_file, "SELECT id FROM users WHERE username = 'bob'")[0][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", experiment[5])

    results = query(db_file, "SELECT experiment_id, dataset_record_id, completion, "
                             "prompt_tokens, completion_tokens, latency_ms, evaluation, "
                             "created_at FROM experiment_result ORDER BY id")
    assert [r[:7] for r in results] == [
        ("exp-1", "rec-0", "completion 0", 10, 20, 0.0, '[{"metric": "f1", "result": 0}]'),
        ("exp-1", "rec-1", "completion 1", 11, 21, 1.5, '{"f1": 0.5}'),
        ("exp-1", "rec-2", "completion 2", 12, 22, 3.0, "already text"),
    ]
    assert all(r[7] is not None for r in results)


def test_trace_experiment_model_json_without_model_configs(tracer: LocalTracer, db_file: Path):
    config = make_config(template=None, completion_model_config=None)
    tracer.trace_experiment(config, make_summary("exp", 1))
    model, asset = query(db_file, "SELECT model, asset FROM experiments")[0]
    assert json.loads(model) == {"completion_model_config": None, "embedding_model_config": None}
    assert json.loads(asset)["prompt_template_name"] is None
    assert json.loads(asset)["prompt_template_version"] is None


def test_trace_experiment_keeps_the_model_instance(tracer: LocalTracer):
    instance = object()
    config = make_config(completion_model_config=ModelConfig(name="m", type="t", model=instance))
    tracer.trace_experiment(config, make_summary("exp", 1))
    assert config.completion_model_config.model is instance


def _assert_nothing_traced(db_file: Path) -> None:
    assert count(db_file, "experiments") == 0
    assert count(db_file, "experiment_result") == 0


def test_trace_experiment_is_atomic_when_a_value_cannot_be_stored(
        tracer: LocalTracer, db_file: Path):
    summary = make_summary("exp", 50)
    summary[-1]["completion"] = object()  # fails inside executemany, after the experiment row
    with pytest.raises(DatabaseError):
        tracer.trace_experiment(make_config(), summary)
    _assert_nothing_traced(db_file)


def test_trace_experiment_is_atomic_when_a_constraint_fails(tracer: LocalTracer, db_file: Path):
    summary = make_summary("exp", 20)
    summary[10]["experiment_id"] = "no-such-experiment"  # foreign key violation
    with pytest.raises(IntegrityError):
        tracer.trace_experiment(make_config(), summary)
    _assert_nothing_traced(db_file)


def test_trace_experiment_is_atomic_when_an_evaluation_is_not_json(
        tracer: LocalTracer, db_file: Path):
    summary = make_summary("exp", 5)
    summary[3]["evaluation"] = {"not json": {1, 2}}
    # A DatabaseError since issue 12 (item 10), no longer json.dumps' own TypeError.
    with pytest.raises(ProgrammingError, match=r"parameter set 4, a dict\) cannot be stored as JSON"):
        tracer.trace_experiment(make_config(), summary)
    _assert_nothing_traced(db_file)


def test_trace_experiment_for_an_unknown_user_writes_nothing(tracer: LocalTracer, db_file: Path):
    with pytest.raises(ValueError, match=r"^User ghost not found\.$"):
        tracer.trace_experiment(make_config(user="ghost"), make_summary("exp", 2))
    _assert_nothing_traced(db_file)


def test_trace_experiment_duplicate_id_leaves_the_first_run_intact(
        tracer: LocalTracer, db_file: Path):
    tracer.trace_experiment(make_config(), make_summary("exp", 3))
    with pytest.raises(IntegrityError):
        tracer.trace_experiment(make_config(), make_summary("exp", 4, completion="second"))
    assert count(db_file, "experiments") == 1
    assert query(db_file, "SELECT count(*), max(completion) FROM experiment_result") == \
        [(3, "completion 2")]


def test_trace_experiment_needs_records(tracer: LocalTracer, db_file: Path):
    with pytest.raises(ValueError):
        tracer.trace_experiment(make_config(), [])
    _assert_nothing_traced(db_file)


def test_trace_experiment_with_ten_thousand_results(tracer: LocalTracer, db_file: Path):
    tracer.trace_experiment(make_config(), make_summary("big", 10_000))
    assert query(db_file, "SELECT count(*), sum(prompt_tokens), count(DISTINCT "
                          "dataset_record_id) FROM experiment_result "
                          "WHERE experiment_id = 'big'") == [(10_000, sum(range(10, 10_010)),
                                                             10_000)]


def test_get_experiments_returns_one_row_per_result(tracer: LocalTracer, db_file: Path):
    template = make_template("tpl", 1)
    tracer.create_prompttemplate(template)
    tracer.trace_experiment(make_config(template=template, dataset=make_dataset("qa", 5)),
                            make_summary("first", 2))
    tracer.trace_experiment(make_config(template=None, embedding_model_config=ModelConfig(
        name="emb", type="t")), make_summary("second", 3))
    rows = tracer.get_experiments()
    assert len(rows) == 5
    # Newest experiment first, its results in the order they were traced.
    assert [(r["experiment_id"], r["dataset_record_id"]) for r in rows] == [
        ("second", "rec-0"), ("second", "rec-1"), ("second", "rec-2"),
        ("first", "rec-0"), ("first", "rec-1")]

    first = dict(rows[3])
    created_at = query(db_file, "SELECT created_at FROM experiments "
                                "WHERE experiment_id = 'first'")[0][0]
    assert first == {
        "experiment_id": "first", "completion_model": "ollama/llama3.2",
        "embedding_model": None, "prompt_template_name": "tpl",
        "prompt_template_version": 1, "dataset_name": "qa", "dataset_version": 5,
        "dataset_record_id": "rec-0", "completion": "completion 0", "prompt_tokens": 10,
        "completion_tokens": 20, "latency_ms": 0.0,
        "evaluation": '[{"metric": "f1", "result": 0}]',
        "asset_binary": original_template_binary(template), "username": "admin",
        "created_at": created_at,
    }
    second = rows[0]
    assert second.experiment_id == "second"
    assert second.embedding_model == "emb"
    assert second.prompt_template_name is None and second.asset_binary is None
    assert second["dataset_name"] == "qa" and second.dataset_version == 0


def test_get_experiments_rows_are_mappings_as_in_the_original(tracer: LocalTracer):
    """The original returned SQLAlchemy RowMappings: keys on iteration, dict(row),
    a collections.abc.Mapping (so pandas.DataFrame(rows) gets named columns)."""
    from collections.abc import Mapping

    from promptlab.tracer.local_tracer import EXPERIMENT_COLUMNS

    tracer.trace_experiment(make_config(), make_summary("exp", 2))
    rows = tracer.get_experiments()
    assert all(isinstance(r, Mapping) for r in rows)
    assert list(rows[0]) == list(EXPERIMENT_COLUMNS)
    assert json.loads(json.dumps([dict(r) for r in rows]))[1]["dataset_record_id"] == "rec-1"


def test_get_experiments_empty(tracer: LocalTracer):
    assert list(tracer.get_experiments()) == []


# --- users ---------------------------------------------------------------------------


def test_create_and_get_user(tracer: LocalTracer, db_file: Path):
    user = User(username="alice", password_hash="$2b$hash", role="engineer")
    tracer.create_user(user)
    stored = query(db_file, "SELECT id, username, password_hash, role, status, created_at "
                            "FROM users WHERE username = 'alice'")
    assert len(stored) == 1
    assert stored[0][1:5] == ("alice", "$2b$hash", "engineer", 1)
    assert user.id == stored[0][0]

    fetched = tracer.get_user_by_username("alice")
    assert isinstance(fetched, User)
    assert (fetched.id, fetched.username, fetched.password_hash, fetched.role,
            fetched.status) == (stored[0][0], "alice", "$2b$hash", "engineer", 1)
    assert fetched.created_at == datetime.fromisoformat(stored[0][5])

    with pytest.raises(IntegrityError):
        tracer.create_user(User(username="alice", password_hash="x", role="admin"))
    assert count(db_file, "users") == 2


def test_get_user_by_username_missing(tracer: LocalTracer):
    with pytest.raises(ValueError, match=r"^User nobody not found\.$"):
        tracer.get_user_by_username("nobody")


def test_get_users_lists_active_users_only(tracer: LocalTracer):
    tracer.create_user(User(username="alice", password_hash="h", role="engineer"))
    tracer.create_user(User(username="idle", password_hash="h", role="engineer", status=0))
    tracer.create_user(User(username="carol", password_hash="h", role="engineer"))
    assert [u.username for u in tracer.get_users()] == ["admin", "alice", "carol"]
    assert all(isinstance(u, User) and u.status == 1 for u in tracer.get_users())


def test_deactivate_user(tracer: LocalTracer, db_file: Path):
    tracer.create_user(User(username="alice", password_hash="h", role="engineer"))
    tracer.deactivate_user_by_username("alice")
    assert query(db_file, "SELECT status FROM users WHERE username = 'alice'") == [(0,)]
    assert [u.username for u in tracer.get_users()] == ["admin"]
    assert tracer.get_user_by_username("alice").status == 0
    tracer.deactivate_user_by_username("alice")  # already inactive: still found
    with pytest.raises(ValueError, match=r"^User nobody not found\.$"):
        tracer.deactivate_user_by_username("nobody")
    assert query(db_file, "SELECT status FROM users WHERE username = 'admin'") == [(1,)]


def test_me_is_the_admin(tracer: LocalTracer, db_file: Path):
    me = tracer.me()
    assert (me.id, me.username, me.role) == (admin_id(db_file), "admin", "admin")
    write(db_file, "UPDATE users SET username = 'root' WHERE username = 'admin'")
    with pytest.raises(ValueError, match=r"^Current user not found\.$"):
        tracer.me()


# The original PromptLab 0.1.11 query (sqlite/sql.py), whose results the faster
# SELECT_EXPERIMENTS must reproduce.
ORIGINAL_SELECT_EXPERIMENTS = """
SELECT e.experiment_id,
       json_extract(model, '$.completion_model_config.name') AS completion_model,
       json_extract(model, '$.embedding_model_config.name') AS embedding_model,
       json_extract(asset, '$.prompt_template_name') AS prompt_template_name,
       json_extract(asset, '$.prompt_template_version') AS prompt_template_version,
       json_extract(asset, '$.dataset_name') AS dataset_name,
       json_extract(asset, '$.dataset_version') AS dataset_version,
       er.dataset_record_id as dataset_record_id, er.completion as completion,
       er.prompt_tokens as prompt_tokens, er.completion_tokens as completion_tokens,
       er.latency_ms as latency_ms, er.evaluation as evaluation,
       a.asset_binary, u.username, e.created_at
FROM experiments e
JOIN experiment_result er on e.experiment_id = er.experiment_id
LEFT JOIN assets a ON a.asset_name = prompt_template_name AND a.asset_version = prompt_template_version
LEFT JOIN users u ON e.user_id = u.id
ORDER BY e.created_at DESC
"""


def test_get_experiments_matches_the_original_query(tracer, db_file):
    tracer.create_prompttemplate(make_template("tpl", 0))
    tracer.create_prompttemplate(make_template("tpl", 1, system_prompt="v1"))
    for i in range(6):
        template = None if i == 4 else make_template("tpl", i % 2)
        tracer.trace_experiment(make_config(template=template), make_summary(f"exp-{i}", 5 + i))
    # Ties in created_at, and an experiment whose user is gone.
    write(db_file, "UPDATE experiments SET created_at = '2030-01-01 00:00:00.000' "
                   "WHERE experiment_id IN ('exp-1', 'exp-3')")
    write(db_file, "UPDATE experiments SET user_id = NULL WHERE experiment_id = 'exp-5'")
    ours = [tuple(r.values()) for r in tracer.get_experiments()]
    original = query(db_file, ORIGINAL_SELECT_EXPERIMENTS)
    assert sorted(ours, key=repr) == sorted(original, key=repr)
    stamps = [r[-1] for r in ours]
    assert stamps == sorted(stamps, reverse=True)
    # Each experiment's results stay together and in insertion order.
    seen = [r[0] for r in ours]
    assert [e for i, e in enumerate(seen) if i == 0 or seen[i - 1] != e] == \
        list(dict.fromkeys(seen))
    for experiment in dict.fromkeys(seen):
        records = [r[7] for r in ours if r[0] == experiment]
        assert records == [f"rec-{i}" for i in range(len(records))]


def test_api_keys_are_not_stored(tracer, db_file):
    config = make_config(completion_model_config=ModelConfig(
        name="azure/gpt", type="azure_openai", api_key="sk-live-123", endpoint="https://x"))
    tracer.trace_experiment(config, make_summary("secret", 1))
    (model,) = query(db_file, "SELECT model FROM experiments")[0]
    assert "sk-live-123" not in model
    stored = json.loads(model)["completion_model_config"]
    assert stored["api_key"] is None and stored["endpoint"] == "https://x"
