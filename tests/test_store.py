"""The data layer (promptlab.store): the stored formats round-trip, records are
read from result rows by column name, and no other module writes SQL or parses a
stored format itself."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from promptlab.sqlite.database_manager import db_manager
from promptlab.sqlite.models import Asset, Experiment, User
from promptlab.store import assets, formats, users
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import Dataset, ExperimentConfig, ModelConfig, PromptTemplate

ROOT = Path(__file__).resolve().parent.parent / "promptlab"


@pytest.fixture
def tracer(tmp_path, at_head):
    return LocalTracer({"type": "local", "db_file": str(at_head(tmp_path / "store.db"))})


# --- formats -------------------------------------------------------------------------


@pytest.mark.parametrize("system, user", [
    ("Be brief.", "Q: <question>"),
    ("", ""),
    ("  spaced  \n", "\nmulti\nline <<not a marker"),
    ("has <<user>> inside", "tail"),
])
def test_prompt_template_round_trips(system, user):
    text = formats.encode_prompt_template(system, user)
    assert formats.decode_prompt_template(text) == (system, user)
    assert formats.display_prompt_template(text)[1] == user.strip()


def test_prompt_template_other_spellings_and_no_markers():
    assert formats.decode_prompt_template("<<system>> s <<user>> u ") == ("s", "u")
    assert formats.decode_prompt_template(None) == ("", "")
    with pytest.raises(ValueError):
        formats.decode_prompt_template("just text")
    assert formats.display_prompt_template("  just text ") == ("", "just text")
    assert formats.display_prompt_template(None) == ("", "")


@pytest.mark.parametrize("path", ["/data/qa.jsonl", "relative/é.json", ""])
def test_dataset_round_trips(path):
    assert formats.dataset_file_path(formats.encode_dataset(path)) == path


@pytest.mark.parametrize("text", [None, "", "not json", "[]", '{"file_path": 3}', "{}"])
def test_dataset_without_a_file(text):
    assert formats.dataset_file_path(text) is None


def test_experiment_round_trips():
    config = ExperimentConfig(
        completion_model_config=ModelConfig(name="m1", type="ollama", api_key="secret"),
        embedding_model_config=None,
        prompt_template=PromptTemplate(name="tpl", description="t", system_prompt="s",
                                       user_prompt="u", version=2),
        dataset=Dataset(name="qa", description=None, file_path="/x.jsonl", version=1),
        evaluation=[])
    model, asset = formats.encode_experiment(config)
    assert "secret" not in model  # the API key is never stored
    assert formats.decode_experiment(model, asset) == {
        "completion_model": "m1", "embedding_model": None,
        "prompt_template_name": "tpl", "prompt_template_version": 2,
        "dataset_name": "qa", "dataset_version": 1}
    assert set(formats.decode_experiment("bad", None).values()) == {None}


def test_evaluation_both_forms():
    listed = '[{"metric": "a", "result": 1}, {"metric": "b", "result": true}]'
    assert formats.decode_evaluation(listed) == [{"metric": "a", "result": 1},
                                                 {"metric": "b", "result": True}]
    assert formats.decode_evaluation('{"a": 0.5}') == [{"metric": "a", "result": 0.5}]
    assert formats.decode_evaluation("oops") == []


# --- records by column name ------------------------------------------------------------


def test_asset_from_row_reads_columns_by_name(tracer):
    tracer.create_dataset(Dataset(name="qa", description="d", file_path="/f.jsonl"))
    with db_manager.get_session(tracer.db_file) as session:
        # The columns in another order than the table's, with the owner's renamed.
        row = session.execute(
            "SELECT u.username AS user__username, a.user_id, a.created_at, a.status,"
            " a.deployment_time, a.is_deployed, a.asset_binary, a.asset_type,"
            " a.asset_description, a.asset_version, a.asset_name, u.created_at AS"
            " user__created_at, u.status AS user__status, u.role AS user__role,"
            " u.password_hash AS user__password_hash, u.id AS user__id"
            " FROM assets a JOIN users u ON u.id = a.user_id").first()
    asset = Asset.from_row(row)
    assert asset == tracer.get_asset("qa", 0)
    assert asset.asset_name == "qa" and asset.user.username == "admin"
    assert asset.file_path == "/f.jsonl"
    with pytest.raises(KeyError, match="asset_name"):
        with db_manager.get_session(tracer.db_file) as session:
            Asset.from_row(session.execute("SELECT asset_version FROM assets").first())


def test_user_and_experiment_from_rows_by_name(tracer):
    with db_manager.get_session(tracer.db_file) as session:
        row = session.execute("SELECT created_at, status, role, password_hash, username, id"
                              " FROM users WHERE username = 'admin'").first()
        experiment = session.execute(
            "SELECT 3 AS user_id, NULL AS created_at, 1 AS status, '[]' AS asset,"
            " '{}' AS model, 'e' AS experiment_id").first()
    assert User.from_row(row) == users.get_user(tracer.db_file, "admin")
    assert Experiment.from_row(experiment) == Experiment.from_row(("e", "{}", "[]", 1, None, 3))


def test_asset_prompts(tracer):
    tracer.create_prompttemplate(PromptTemplate(name="tpl", description="t",
                                                 system_prompt="S", user_prompt="U"))
    assert assets.get_asset(tracer.db_file, "tpl", 0).prompts() == ("S", "U")
    assert assets.get_asset(tracer.db_file, "tpl", 1) is None


# --- one owner -------------------------------------------------------------------------

# The modules above the data layer: none writes SQL or reads a stored format.
CALLERS = sorted(
    [*ROOT.glob("studio/*.py"), *ROOT.glob("tracer/*.py"), *ROOT.glob("commands/*.py"),
     ROOT / "asset.py", ROOT / "experiment.py", ROOT / "templates.py", ROOT / "cli.py",
     ROOT / "sqlite" / "admin.py"])
SQL = re.compile(r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|PRAGMA\s"
                 r"|json_extract|CREATE\s+TABLE)")
FORMAT = re.compile(r"<<system>>|<<user>>|[\"']file_path[\"']\s*\]|json\.loads\([^)]*"
                    r"(asset_binary|\.model|\.asset|evaluation)")


def _strings_and_code(path: Path):
    """The string literals of a module (docstrings too) and its code without comments."""
    strings, code = [], []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline)
    for tok in tokens:
        if tok.type == tokenize.STRING:
            strings.append(tok.string)
        if tok.type != tokenize.COMMENT:
            code.append(tok.string)
    return strings, " ".join(code)


def test_the_callers_exist():
    assert len(CALLERS) > 15 and all(p.exists() for p in CALLERS)


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_outside_the_store(path):
    strings, _ = _strings_and_code(path)
    found = [s for s in strings if SQL.search(s)]
    assert not found, f"{path.name} holds SQL; move it to promptlab/store: {found[:2]}"


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stored_format_parsed_outside_the_store(path):
    _, code = _strings_and_code(path)
    found = FORMAT.findall(code)
    assert not found, f"{path.name} reads a stored format itself; use promptlab.store.formats"


def test_the_checks_catch_a_broken_rule(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('Q = "SELECT id FROM users"\n'
                   'import json\npath = json.loads(asset.asset_binary)["file_path"]\n')
    strings, code = _strings_and_code(bad)
    assert any(SQL.search(s) for s in strings) and FORMAT.search(code)
