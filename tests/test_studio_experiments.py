"""The studio's experiments: posting and listing them in the original shape, the page's
views (summaries, metric averages, records, inputs, comparisons) and health."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import HEAD
from promptlab.types import Dataset
from studiotools import Studio, db_rows, experiment_payload, seed

pytestmark = pytest.mark.usefixtures("config_home")


# --- experiments ---------------------------------------------------------------------------------


def test_posted_experiments_are_stored_and_listed_in_the_original_shape(studio: Studio):
    studio.post("/api/templates", {"name": "qa", "description": "", "version": 0,
                                   "system_prompt": "You are brief.", "user_prompt": "Q?"})
    status, data = studio.post("/api/experiments", experiment_payload("e1", 3))
    assert (status, data) == (200, {"success": True})
    rows = studio.get("/api/experiments")[1]["experiments"]
    assert len(rows) == 3
    first = rows[0]
    assert set(first) == {
        "experiment_id", "completion_model", "embedding_model", "prompt_template_name",
        "prompt_template_version", "dataset_name", "dataset_version", "dataset_record_id",
        "completion", "prompt_tokens", "completion_tokens", "latency_ms", "evaluation",
        "username", "created_at", "system_prompt_template", "user_prompt_template",
        "user_id"}
    assert (first["experiment_id"], first["completion_model"], first["user_id"]) == (
        "e1", "ollama/llama3.2", "root")
    assert first["system_prompt_template"] == "You are brief."
    assert json.loads(first["evaluation"])[0] == {"metric": "exact_match", "result": 1.0}
    # the client's API key is not kept
    (model,) = db_rows(studio.db, "SELECT model FROM experiments")[0]
    assert "sk-secret" not in model and json.loads(model)["completion_model_config"][
        "api_key"] is None
    assert db_rows(studio.db, "SELECT u.username FROM experiments e JOIN users u "
                              "ON u.id = e.user_id") == [("root",)]
    status, data = studio.post("/api/experiments", experiment_payload("e1", 1))
    assert (status, data["message"]) == (409, "Experiment e1 already exists")
    assert db_rows(studio.db, "SELECT COUNT(*) FROM experiment_result") == [(3,)]


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.pop("experiment_summary"), "Missing experiment_config"),
    (lambda p: p.update(experiment_summary=[]), "Missing experiment_config"),
    (lambda p: p.update(experiment_summary={"a": 1}), "must be a JSON array"),
    (lambda p: p.update(experiment_config=[1]), "must be a JSON object"),
    (lambda p: p["experiment_config"].pop("dataset"), "missing field 'dataset'"),
    (lambda p: p["experiment_config"]["dataset"].pop("name"), "dataset: missing field 'name'"),
    (lambda p: p["experiment_config"].update(evaluation=None), "evaluation must be"),
    (lambda p: p["experiment_config"]["evaluation"][0].pop("metric"), "missing field 'metric'"),
    (lambda p: p["experiment_config"]["completion_model_config"].update(name=3),
     "name has the wrong type"),
    (lambda p: p["experiment_summary"][1].pop("completion"), "[1]: missing field 'completion'"),
    (lambda p: p["experiment_summary"][0].update(prompt_tokens="ten"), "prompt_tokens has"),
    (lambda p: p["experiment_summary"][0].update(latency_ms=True), "latency_ms has"),
    (lambda p: p["experiment_summary"][1].update(experiment_id="other"), "differs"),
    (lambda p: p["experiment_summary"].append(7), "[2] must be a JSON object"),
])
def test_bad_experiments_are_400_and_store_nothing(studio: Studio, mutate, message):
    payload = experiment_payload("e1", 2)
    mutate(payload)
    status, data = studio.post("/api/experiments", payload)
    assert status == 400 and message in data["message"], data
    assert db_rows(studio.db, "SELECT COUNT(*) FROM experiments") == [(0,)]


# --- the page's views --------------------------------------------------------------------------


def test_experiment_summaries_with_metric_averages(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=10)
    status, data = studio.get("/api/studio/experiments")
    assert status == 200
    summaries = {e["experiment_id"]: e for e in data["experiments"]}
    assert [e["experiment_id"] for e in data["experiments"]] == ids[::-1]  # newest first
    first, second = summaries[ids[0]], summaries[ids[1]]
    assert (first["completion_model"], first["prompt_template_name"],
            first["prompt_template_version"], first["dataset_name"],
            first["dataset_version"], first["user"], first["records"]) == (
        "ollama/llama3.2", "qa", 0, "arith", 0, "admin", 10)
    assert first["metrics"] == {"exact_match": {"average": 1.0, "count": 10},
                                "fluency": {"average": 0.5, "count": 10}}
    assert second["metrics"]["exact_match"]["average"] == 0.75
    assert first["avg_latency_ms"] == pytest.approx(104.5)
    assert first["prompt_tokens"] == sum(10 + i for i in range(10))
    assert first["completion_tokens"] == 30
    assert "api_key" not in json.dumps(data)


def test_metric_averages_skip_what_is_not_a_number(studio: Studio):
    payload = experiment_payload("odd", 4)
    evaluations = [json.dumps([{"metric": "m", "result": 1}, {"metric": "t", "result": "good"}]),
                   json.dumps({"m": 0.5, "flag": True}), "not json", None]
    for record, evaluation in zip(payload["experiment_summary"], evaluations, strict=True):
        record["evaluation"] = evaluation
    assert studio.post("/api/experiments", payload)[0] == 200
    (summary,) = studio.get("/api/studio/experiments")[1]["experiments"]
    assert summary["metrics"] == {"m": {"average": 0.75, "count": 2},
                                  "flag": {"average": 1.0, "count": 1}}
    records = studio.get("/api/studio/records?experiment_id=odd")[1]["records"]
    assert records[1]["evaluation"] == [{"metric": "m", "result": 0.5},
                                        {"metric": "flag", "result": True}]
    assert records[2]["evaluation"] == [] and records[3]["evaluation"] == []


def test_metric_averages_follow_results_written_later(studio: Studio):
    assert studio.post("/api/experiments", experiment_payload("e", 2))[0] == 200
    (before,) = studio.get("/api/studio/experiments")[1]["experiments"]
    assert before["metrics"]["exact_match"] == {"average": 1.0, "count": 2}
    con = sqlite3.connect(studio.db)
    con.execute("INSERT INTO experiment_result (experiment_id, dataset_record_id, evaluation) "
                "VALUES ('e', '9', ?)", (json.dumps([{"metric": "exact_match", "result": 0}]),))
    con.commit()
    con.close()
    (after,) = studio.get("/api/studio/experiments")[1]["experiments"]
    assert after["metrics"]["exact_match"] == {"average": pytest.approx(2 / 3), "count": 3}
    one = studio.get("/api/studio/records?experiment_id=e")[1]["experiment"]
    assert one["metrics"] == after["metrics"] and one["records"] == 3


def test_records_are_paged_searched_and_show_their_input(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=120)
    status, data = studio.get(f"/api/studio/records?experiment_id={ids[0]}&offset=100"
                              "&limit=50")
    assert status == 200
    assert (data["total"], data["offset"], data["limit"]) == (120, 100, 50)
    assert [r["dataset_record_id"] for r in data["records"]] == [str(i) for i in range(100, 120)]
    assert data["experiment"]["experiment_id"] == ids[0]
    assert data["inputs_note"] is None
    assert data["records"][0]["input"] == {"id": 100, "question": "What is 100 + 100?",
                                           "answer": "200"}
    assert data["records"][0]["evaluation"][0] == {"metric": "exact_match", "result": 1.0}
    found = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=says%20222")[1]
    assert found["total"] == 1 and found["records"][0]["dataset_record_id"] == "111"
    wild = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=%25")[1]
    assert wild["total"] == 0  # % is searched for, not a wildcard
    for query, status in [("experiment_id=nope", 404), ("", 400),
                          (f"experiment_id={ids[0]}&limit=0", 400),
                          (f"experiment_id={ids[0]}&limit=501", 400),
                          (f"experiment_id={ids[0]}&offset=-1", 400),
                          (f"experiment_id={ids[0]}&offset=x", 400)]:
        assert studio.get(f"/api/studio/records?{query}")[0] == status, query


def test_inputs_are_read_only_from_dataset_files(studio: Studio, tmp_path: Path):
    secret = tmp_path / "private.txt"
    secret.write_text('{"id": "0", "password": "hunter2"}\n')
    payload = experiment_payload("e1", 1, dataset="leak")
    studio.tracer.create_dataset(Dataset(name="leak", description="", file_path=str(secret)))
    studio.post("/api/experiments", payload)
    data = studio.get("/api/studio/records?experiment_id=e1")[1]
    assert data["records"][0]["input"] is None and "hunter2" not in json.dumps(data)
    assert ".jsonl" in data["inputs_note"]
    studio.post("/api/experiments", experiment_payload("e2", 1, dataset="missing"))
    assert "not registered" in studio.get("/api/studio/records?experiment_id=e2")[1][
        "inputs_note"]


def _locks_on(path: Path) -> list:
    """This process's entries in /proc/locks on the inode of ``path``."""
    st = os.stat(path)
    inode = f":{st.st_ino} "
    with open("/proc/locks", encoding="ascii") as handle:
        return sorted(line.split(":", 1)[1].strip() for line in handle
                      if f" {os.getpid()} " in line and inode in line)


def test_the_database_itself_is_never_read_as_a_dataset(studio: Studio, tmp_path: Path):
    """A dataset whose file is the studio's own database, through a hard link named
    .json: reading and closing it would drop the studio's SQLite locks on the file."""
    alias = tmp_path / "lab.json"
    os.link(studio.db, alias)
    studio.tracer.create_dataset(Dataset(name="self", description="", file_path=str(alias)))
    studio.post("/api/experiments", experiment_payload("e1", 1, dataset="self"))
    held = _locks_on(studio.db)
    assert held, "the studio holds no lock on its database"
    data = studio.get("/api/studio/records?experiment_id=e1")[1]
    assert "own database" in data["inputs_note"] and data["records"][0]["input"] is None
    assert _locks_on(studio.db) == held


def test_comparison_aligns_records_by_dataset_record(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=60,
               models=("m1", "m2", "m3"))
    query = "&".join(f"experiment_id={i}" for i in ids)
    status, data = studio.get(f"/api/studio/compare?{query}&offset=50&limit=20")
    assert status == 200
    assert [e["experiment_id"] for e in data["experiments"]] == ids
    assert (data["total"], len(data["rows"])) == (60, 10)
    row = data["rows"][0]
    assert row["dataset_record_id"] == "50" and row["input"]["answer"] == "100"
    assert [row["results"][i][0]["completion"] for i in ids] == [
        "m1 says 100", "m2 says 100", "m3 says 100"]
    assert row["results"][ids[2]][0]["evaluation"][0]["result"] == 0.5
    for bad in [f"experiment_id={ids[0]}", f"experiment_id={ids[0]}&experiment_id={ids[0]}",
                "&".join([f"experiment_id=x{i}" for i in range(9)])]:
        assert studio.get(f"/api/studio/compare?{bad}")[0] == 400
    assert studio.get(f"/api/studio/compare?experiment_id={ids[0]}&experiment_id=nope")[0] == 404


def test_comparison_of_experiments_with_different_records(studio: Studio):
    a, b = experiment_payload("a", 3), experiment_payload("b", 5)
    for record in b["experiment_summary"]:
        record["dataset_record_id"] = str(int(record["dataset_record_id"]) + 2)
    studio.post("/api/experiments", a)
    studio.post("/api/experiments", b)
    data = studio.get("/api/studio/compare?experiment_id=a&experiment_id=b")[1]
    assert [r["dataset_record_id"] for r in data["rows"]] == ["0", "1", "2", "3", "4", "5",
                                                              "6"]
    assert [len(data["rows"][0]["results"][i]) for i in "ab"] == [1, 0]
    assert [len(data["rows"][2]["results"][i]) for i in "ab"] == [1, 1]


# --- health ------------------------------------------------------------------------------------


def test_health_for_strangers_and_for_signed_in_users(studio: Studio, tmp_path: Path):
    seed(studio.tracer, tmp_path, records=5)
    status, _, data = studio.request("GET", "/health")
    assert (status, data) == (200, {"status": "healthy", "service": "promptlab-studio"})
    status, data = studio.get("/health")
    assert status == 200 and data["status"] == "healthy"
    db = data["database"]
    assert db["file"] == str(studio.db) and db["size_bytes"] == os.path.getsize(studio.db)
    assert (db["revision"], db["head"], db["pending"], db["up_to_date"]) == (HEAD, HEAD, [],
                                                                             True)
    assert db["integrity"] == "ok" and db["ok"] is True and db["drift"] == []
    expected = {t: db_rows(studio.db, f"SELECT COUNT(*) FROM {t}")[0][0]
                for t in ("users", "assets", "experiments", "experiment_result")}
    assert db["rows"] == expected and expected["experiment_result"] == 10


def test_health_reports_a_schema_changed_by_hand(studio: Studio):
    con = sqlite3.connect(studio.db)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    status, data = studio.get("/health")
    assert status == 503 and data["status"] == "unhealthy"
    assert data["database"]["drift"] and "schema drift" in data["database"]["problems"]
