"""The studio's templates and datasets: round trips in the original shapes, the remote
tracer's reads, and errors."""

from __future__ import annotations

import json

import pytest

from studiotools import Studio

pytestmark = pytest.mark.usefixtures("config_home")


# --- assets ------------------------------------------------------------------------------------


def test_templates_and_datasets_round_trip_in_the_original_shapes(studio: Studio):
    status, data = studio.post("/api/templates", {
        "name": "qa", "description": "first", "system_prompt": "Be brief.",
        "user_prompt": "Q: <question>", "version": 0, "user": "admin", "extra": "ignored"})
    assert status == 200
    assert data == {"success": True, "message": "Prompt template created successfully",
                    "template": {"name": "qa", "version": 0, "description": "first",
                                 "system_prompt": "Be brief.", "user_prompt": "Q: <question>"}}
    assert studio.post("/api/templates", {"name": "qa", "description": "second",
                                          "system_prompt": "Be very brief.",
                                          "user_prompt": "Q: <question>",
                                          "version": "1"})[0] == 200
    status, data = studio.post("/api/datasets", {"name": "arith", "description": "sums",
                                                 "file_path": "/data/arith.jsonl"})
    assert status == 200
    assert data["dataset"] == {"name": "arith", "version": 0, "description": "sums",
                               "file_path": "/data/arith.jsonl"}

    prompts = studio.get("/api/prompts")[1]["prompt_templates"]
    assert [(p["asset_name"], p["asset_version"]) for p in prompts] == [("qa", 0), ("qa", 1)]
    assert prompts[1]["system_prompt_template"] == "Be very brief."
    assert prompts[1]["user_prompt_template"] == "Q: <question>"
    assert prompts[1]["user_id"] == "root" and prompts[1]["is_deployed"] is False
    assert set(prompts[0]) == {"asset_name", "asset_description", "asset_version",
                               "asset_type", "created_at", "system_prompt_template",
                               "user_prompt_template", "is_deployed", "deployment_time",
                               "user_id"}
    datasets = studio.get("/api/datasets")[1]["datasets"]
    assert datasets == [{"asset_name": "arith", "asset_description": "sums",
                         "asset_version": 0, "asset_type": "dataset",
                         "created_at": datasets[0]["created_at"],
                         "file_path": "/data/arith.jsonl", "user_id": "root"}]

    status, data = studio.get("/api/assets?asset_name=qa&asset_version=-1")
    assert status == 200 and data["success"] is True
    asset = data["asset"]
    assert (asset["asset_name"], asset["asset_version"], asset["asset_type"]) == (
        "qa", 1, "prompt_template")
    assert "<<system>>" in asset["asset_binary"] and "Be very brief." in asset["asset_binary"]
    assert asset["user_id"] == studio.tracer.get_user_by_username("root").id
    assert "T" in asset["created_at"]  # isoformat, as the remote tracer parses it
    assert studio.get("/api/assets?asset_name=qa&asset_version=0")[1]["asset"][
        "asset_description"] == "first"


def test_remote_tracer_reads_assets_as_the_original_did(studio: Studio):
    """The original ApiTracer._fetch_asset turns the JSON back into an asset."""
    from datetime import datetime

    studio.post("/api/datasets", {"name": "arith", "description": "d", "file_path": "/a.jsonl",
                                  "version": 3})
    _, data = studio.get("/api/assets?asset_name=arith&asset_version=-1")
    info = data["asset"]
    created = datetime.fromisoformat(info["created_at"].replace("Z", "+00:00"))
    assert created.year >= 2024
    assert json.loads(info["asset_binary"]) == {"file_path": "/a.jsonl"}
    assert info["asset_version"] == 3 and info["deployment_time"] is None


def test_asset_errors(studio: Studio):
    studio.post("/api/templates", {"name": "qa", "description": "", "system_prompt": "s",
                                   "user_prompt": "u"})
    for query, status in [("asset_name=nope&asset_version=-1", 404),
                          ("asset_name=nope&asset_version=0", 404),
                          ("asset_name=qa&asset_version=7", 404),
                          ("asset_name=qa", 400), ("asset_version=1", 400),
                          ("asset_name=qa&asset_version=one", 400),
                          ("asset_name=qa&asset_version=1.5", 400)]:
        code, data = studio.get(f"/api/assets?{query}")
        assert code == status and data["success"] is False and data["detail"], query
    assert studio.get("/api/assets?asset_name=nope&asset_version=-1")[1]["detail"] == (
        "Asset nope with version -1 not found")
    for body, message in [
        ({"name": "qa", "description": "", "system_prompt": "s", "user_prompt": "u"},
         "already exists"),
        ({"name": "9lives", "description": "", "system_prompt": "s", "user_prompt": "u"},
         "Name must begin with a letter"),
        ({"name": "qa", "description": "", "system_prompt": "s"}, "missing field 'user_prompt'"),
        ({"name": "qa", "description": "", "system_prompt": 5, "user_prompt": "u",
          "version": 2}, "system_prompt has the wrong type"),
        ({"name": "qa", "description": "", "system_prompt": "s", "user_prompt": "u",
          "version": True}, "version must be an integer"),
        ({"name": "qa", "description": "", "system_prompt": "s", "user_prompt": "u",
          "version": -2}, "0 or more"),
    ]:
        status, data = studio.post("/api/templates", body)
        assert status in (400, 409) and message in data["message"], (body, data)
    status, data = studio.post("/api/datasets", {"name": "d", "description": "x"})
    assert status == 400 and "file_path" in data["message"]
