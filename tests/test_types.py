"""promptlab.types keeps the original's pydantic contract; the records PromptLab returns
can be kept (pickled, copied, hashed, put in pandas) as the original's could."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest

from factories import make_config, make_dataset, make_summary, make_template
from promptlab.enums import TracerType
from promptlab.sqlite.models import Experiment, ExperimentResult, User
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import (
    Dataset,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    ModelResponse,
    TracerConfig,
    ValidationError,
)

LEGACY = Path(__file__).parent / "data" / "legacy"

# (field value for Dataset.version / Dataset.name, what pydantic 2.14 made of it): the
# answers pydantic's default (lax) mode gives, recorded with pydantic 2.14.4.
INT_CASES = [("3", 3), (3.0, 3), (True, 1), (" 4 ", 4), ("3.0", 3), (b"5", 5), (7, 7), ("1_0", 10)]
INT_ERRORS = [(3.5, "int_from_float"), (None, "int_type"), ("x", "int_parsing"),
              ([1], "int_type"), (float("nan"), "finite_number"), ("inf", "int_parsing")]
STR_CASES = [("qa", "qa"), (b"qa", "qa")]
STR_ERRORS = [(3, "string_type"), (None, "string_type"), (True, "string_type"),
              (["a"], "string_type")]


def dataset(**kw):
    return Dataset(**{"name": "qa", "description": "d", "file_path": "/f", **kw})


@pytest.mark.parametrize("value, expected", INT_CASES)
def test_declared_int_fields_are_coerced_as_pydantic_does(value, expected):
    d = dataset(version=value)
    assert d.version == expected and type(d.version) is int


@pytest.mark.parametrize("value, kind", INT_ERRORS)
def test_values_that_are_no_int_are_validation_errors(value, kind):
    with pytest.raises(ValidationError) as info:
        dataset(version=value)
    assert isinstance(info.value, ValueError)  # as pydantic's ValidationError
    (error,) = info.value.errors()
    assert error["loc"] == ("version",) and error["type"] == kind
    assert str(info.value).startswith("1 validation error for Dataset\nversion\n")


@pytest.mark.parametrize("value, expected", STR_CASES)
def test_str_fields(value, expected):
    assert dataset(name=value).name == expected


@pytest.mark.parametrize("value, kind", STR_ERRORS)
def test_str_fields_refuse_other_types(value, kind):
    with pytest.raises(ValidationError) as info:
        dataset(name=value)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("name",), kind)]


def test_live_pydantic_agrees_when_it_is_installed():
    pydantic = pytest.importorskip("pydantic")

    class Original(pydantic.BaseModel):  # the original's Dataset
        name: str
        description: str
        file_path: str
        version: int = 0
        user: str = "admin"

    for value, _ in INT_CASES:
        assert dataset(version=value).model_dump() == Original(
            name="qa", description="d", file_path="/f", version=value).model_dump()
    for value, kind in INT_ERRORS:
        with pytest.raises(pydantic.ValidationError) as info:
            Original(name="qa", description="d", file_path="/f", version=value)
        assert info.value.errors()[0]["type"] == kind
    for value, expected in STR_CASES:
        assert Original(name=value, description="d", file_path="/f").name == expected
    for value, kind in STR_ERRORS:
        with pytest.raises(pydantic.ValidationError) as info:
            Original(name=value, description="d", file_path="/f")
        assert info.value.errors()[0]["type"] == kind
    assert Original(name="qa", description="d", file_path="/f", colour=1).model_dump() == \
        dataset(colour=1).model_dump()


def test_unknown_keywords_are_ignored_and_positional_arguments_refused():
    d = dataset(version="2", colour="blue", id=7)
    assert d == Dataset(name="qa", description="d", file_path="/f", version=2)
    assert not hasattr(d, "colour")
    with pytest.raises(TypeError):
        Dataset("qa", "d", "/f")  # type: ignore[misc]


def test_every_problem_is_reported_at_once_with_nested_locations():
    with pytest.raises(ValidationError) as info:
        ExperimentConfig(dataset={"name": "qa", "version": "v1"},
                         evaluation=[{"metric": "f1", "column_mapping": {}}, {"metric": 2}],
                         completion_model_config={"name": "m", "type": "t",
                                                  "max_concurrent_tasks": "many"})
    assert sorted((e["loc"], e["type"]) for e in info.value.errors()) == sorted([
        (("dataset", "description"), "missing"), (("dataset", "file_path"), "missing"),
        (("dataset", "version"), "int_parsing"),
        (("evaluation", 1, "metric"), "string_type"),
        (("evaluation", 1, "column_mapping"), "missing"),
        (("completion_model_config", "max_concurrent_tasks"), "int_parsing")])
    assert info.value.error_count() == 6
    assert "6 validation errors for ExperimentConfig" in str(info.value)
    assert "evaluation.1.metric" in str(info.value)
    with pytest.raises(ValidationError, match="Field required"):
        ExperimentConfig(dataset=dataset())  # no evaluation
    with pytest.raises(ValidationError, match="valid dictionary"):
        EvaluationConfig(metric="f1", column_mapping=[("a", "b")])
    with pytest.raises(ValidationError, match="valid list"):
        ExperimentConfig(dataset=dataset(), evaluation={"metric": "f1"})
    with pytest.raises(ValidationError, match="instance of Dataset"):
        ExperimentConfig(dataset="qa", evaluation=[])
    with pytest.raises(ValidationError, match="Evaluator"):
        EvaluationConfig(metric="f1", column_mapping={}, evaluator="exact")


def test_tracer_config():
    assert TracerConfig(type=TracerType.REMOTE, endpoint="http://h").type == "remote"
    assert TracerConfig(type="local", db_file="a//b.db").db_file == "a/b.db"
    with pytest.raises(ValidationError, match="Input should be 'remote' or 'local'"):
        TracerConfig(type="cloud")
    with pytest.raises(ValidationError, match="Value error, Invalid characters"):
        TracerConfig(type="local", db_file="a?b")


def test_model_dump_dict_json_and_back():
    model = object()
    config = make_config(completion_model_config=ModelConfig(name="m", type="t", model=model))
    dumped = config.model_dump()
    assert dumped["dataset"] == {"name": "qa", "description": "questions",
                                 "file_path": "/data/qa.jsonl", "version": 0, "user": "admin"}
    assert dumped["completion_model_config"]["model"] is model  # python mode keeps objects
    assert dumped["evaluation"] == [{"metric": "f1", "column_mapping": {"a": "b"},
                                     "evaluator": None}]
    assert config.dict() == dumped
    assert set(dumped) == {"name", "completion_model_config", "embedding_model_config",
                           "prompt_template", "agent_proxy", "dataset", "evaluation", "user"}
    assert ExperimentConfig.model_validate(dumped) == config
    assert ExperimentConfig.model_validate(config) is config
    with pytest.raises(ValidationError):
        ExperimentConfig.model_validate(["not", "a", "mapping"])
    d = dataset(version=4)
    assert d.json() == d.model_dump_json() == \
        '{"name":"qa","description":"d","file_path":"/f","version":4,"user":"admin"}'
    assert json.loads(d.model_dump_json(indent=2)) == d.model_dump()
    assert Dataset.model_validate_json(d.json()) == d
    assert d.model_dump(exclude={"user"}) == {"name": "qa", "description": "d",
                                              "file_path": "/f", "version": 4}
    assert d.model_dump(include={"name"}) == {"name": "qa"}
    assert "user" not in dataset().model_dump(exclude_defaults=True)
    assert "name" not in ExperimentConfig(dataset=d, evaluation=[]).model_dump(exclude_none=True)
    with pytest.raises(TypeError, match="set it to None"):
        config.json()  # a model instance cannot travel as JSON
    assert TracerConfig(type=TracerType.LOCAL).model_dump(mode="json")["type"] == "local"


def test_model_copy():
    t = make_template(version=1)
    c = t.model_copy(update={"version": 2})
    assert (t.version, c.version, c.name) == (1, 2, t.name)
    config = make_config(completion_model_config=ModelConfig(name="m", type="t"))
    shallow, deep = config.model_copy(), config.model_copy(deep=True)
    assert shallow == deep == config
    assert shallow.dataset is config.dataset and deep.dataset is not config.dataset
    assert config.copy(update={"user": "bob"}).user == "bob"


def test_model_fields_and_dataclass_fields_agree():
    assert list(Dataset.model_fields) == [f.name for f in dataclasses.fields(Dataset)]
    assert Dataset.model_fields["version"].default == 0
    assert Dataset.model_fields["name"].is_required()
    assert not Dataset.model_fields["user"].is_required()


def test_model_fields_hold_the_declared_typing_annotations():
    # The checks are compiled from the annotations' text without the typing module;
    # model_fields gives the annotations as typing objects, as pydantic did.
    import typing

    from promptlab.enums import TracerType

    assert Dataset.model_fields["description"].annotation == typing.Optional[str]
    assert Dataset.model_fields["version"].annotation is int
    assert ExperimentConfig.model_fields["evaluation"].annotation == \
        typing.List[EvaluationConfig]
    assert ExperimentConfig.model_fields["completion_model_config"].annotation == \
        typing.Optional[ModelConfig]
    assert ModelConfig.model_fields["model"].annotation == \
        typing.Optional[typing.Callable[..., typing.Any]]
    assert EvaluationConfig.model_fields["column_mapping"].annotation == \
        typing.Dict[str, typing.Any]
    assert TracerConfig.model_fields["type"].annotation is TracerType


def test_dataclasses_functions_work_on_the_configs():
    # They are not built by @dataclass (issue 16: start-up), yet dataclasses' functions
    # see the same fields, defaults and values.
    config = make_config(completion_model_config=ModelConfig(name="m", type="t"))
    assert dataclasses.is_dataclass(config) and dataclasses.is_dataclass(ExperimentConfig)
    assert dataclasses.asdict(config) == config.model_dump()
    version = {f.name: f for f in dataclasses.fields(Dataset)}["version"]
    assert (version.default, version.type, version.kw_only) == (0, int, True)
    assert dataclasses.replace(config, user="bob").user == "bob"


def test_model_response_is_the_original_dataclass():
    response = ModelResponse(response="hi", prompt_tokens=1, completion_tokens=2,
                             latency_ms=3)
    assert dataclasses.is_dataclass(response)
    assert dataclasses.asdict(response) == {"response": "hi", "prompt_tokens": 1,
                                            "completion_tokens": 2, "latency_ms": 3}
    assert ModelResponse.__module__ == "promptlab.types"
    assert pickle.loads(pickle.dumps(response)) == response
    from promptlab import types

    assert types.ModelResponse is ModelResponse


def test_configs_pickle_and_deepcopy():
    config = make_config(completion_model_config=ModelConfig(name="m", type="t"))
    assert pickle.loads(pickle.dumps(config)) == config
    assert copy.deepcopy(config) == config


# --- records returned by the tracer --------------------------------------------------


@pytest.fixture
def tracer(tmp_path: Path, at_head) -> LocalTracer:
    return LocalTracer({"type": "local", "db_file": str(at_head(tmp_path / "lab.db"))})


def test_assets_and_users_are_hashable(tracer: LocalTracer):
    tracer.create_dataset(make_dataset("qa", 0))
    tracer.create_dataset(make_dataset("qa", 1))
    first, again = tracer.get_asset("qa", 0), tracer.get_asset("qa", 0)
    assets = {first, again, tracer.get_asset("qa", 1)}
    assert len(assets) == 2 and first in assets
    assert {first: "x"}[again] == "x"
    assert hash(first.user) == hash(tracer.me())
    assert len({tracer.me(), tracer.me()}) == 1
    assert hash(Experiment(experiment_id="e")) == hash(Experiment(experiment_id="e"))
    assert len({ExperimentResult(id=1), ExperimentResult(id=2)}) == 2
    assert hash(User(username="u", password_hash="h", role="r")) is not None


def test_assets_by_type_keep_insertion_order(tracer: LocalTracer):
    for name, version in [("b-ds", 0), ("a-ds", 1), ("c-ds", 0), ("a-ds", 0)]:
        tracer.create_dataset(make_dataset(name, version))
    tracer.create_prompttemplate(make_template("tpl", 0))
    assert [(a.asset_name, a.asset_version) for a in tracer.get_assets_by_type("dataset")] == \
        [("b-ds", 0), ("a-ds", 1), ("c-ds", 0), ("a-ds", 0)]


def test_assets_by_type_in_the_order_the_original_returned(tmp_path: Path):
    # A file written by PromptLab 0.1.11: its query (SQLAlchemy's, no ORDER BY) on the
    # file as 0.1.11 left it, then ours on the same file after the upgrade.
    path = tmp_path / "release-0.1.11.db"
    shutil.copyfile(LEGACY / "release-0.1.11.db", path)
    con = sqlite3.connect(path)
    original = con.execute(
        "SELECT assets.asset_name, assets.asset_version FROM assets LEFT OUTER JOIN users "
        "AS users_1 ON users_1.id = assets.user_id WHERE assets.asset_type = ?",
        ("prompt_template",)).fetchall()
    con.close()
    assert original == [("answerer", 0), ("summary_v2", 0), ("answerer", 1)]  # not sorted
    ours = LocalTracer({"type": "local", "db_file": str(path)}).get_assets_by_type(
        "prompt_template")
    assert [(a.asset_name, a.asset_version) for a in ours] == original


def _experiment_rows(tracer: LocalTracer):
    tracer.trace_experiment(make_config(), make_summary("e1", 3))
    rows = tracer.get_experiments()
    assert len(rows) == 3
    return rows


def test_experiment_rows_make_a_pandas_frame(tracer: LocalTracer):
    pandas = pytest.importorskip("pandas")
    rows = _experiment_rows(tracer)
    frame = pandas.DataFrame(rows)
    assert list(frame.columns) == list(rows[0].keys())
    assert list(frame["dataset_record_id"]) == [r["dataset_record_id"] for r in rows]
    assert frame.to_dict("records") == [dict(r) for r in rows]
    assert pandas.DataFrame.from_records([dict(r) for r in rows]).equals(frame)


def test_experiment_rows_pickle(tracer: LocalTracer):
    rows = _experiment_rows(tracer)
    again = pickle.loads(pickle.dumps(rows))
    assert again == rows and type(again[0]) is type(rows[0])
    assert again[0]["completion"] == rows[0].completion


def test_experiment_rows_deepcopy(tracer: LocalTracer):
    rows = _experiment_rows(tracer)
    again = copy.deepcopy(rows)
    assert again == rows and type(again[0]) is type(rows[0])
    assert copy.copy(rows[0]) == rows[0]


def test_plain_rows_pickle_and_copy(tracer: LocalTracer):
    from promptlab.sqlite import Row, get_session

    with get_session(tracer.db_file) as s:
        row = s.execute("SELECT 1 AS one, 'two' AS two, NULL AS three").first()
    again = pickle.loads(pickle.dumps(row))
    assert isinstance(again, Row) and again == row and again.two == "two"
    assert again._fields == ("one", "two", "three") and again["three"] is None
    assert copy.deepcopy(row) == row
