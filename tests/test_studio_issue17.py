"""Issue 17, the API and command-line side: record search in the inputs, the
comparison's filters, users (reactivate, role, password reset, own password), tokens
for remote tracers, dataset counts and previews, the health of an unreadable status,
the studio secret out of the working tree, the one-time password when the port is
taken, and the small messages. The page's side is in test_studio_ui.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import NEUTRAL_CWD
from helpers import cli
from promptlab import _core
from promptlab.studio import auth
from promptlab.studio.auth import decode_token
from promptlab.tracer.local_tracer import LocalTracer
from studiotools import SECRET, Studio, experiment_payload, read_until_url, seed, start_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.delenv(auth.SECRET_ENV, raising=False)
    return folder




# --- item 3: record search reads the inputs too ---------------------------------------


def test_record_search_matches_the_input_text(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=30)
    status, data = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=what+is+7+%2B+7")
    assert status == 200, data
    assert [r["dataset_record_id"] for r in data["records"]] == ["7"] and data["total"] == 1
    assert data["records"][0]["input"]["question"] == "What is 7 + 7?"
    # the completion is still searched; the record's id is not "input text"
    status, data = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=says+58")
    assert [r["dataset_record_id"] for r in data["records"]] == ["29"]
    status, data = studio.get(f"/api/studio/records?experiment_id={ids[0]}&q=no+such+words")
    assert data["total"] == 0 and data["records"] == []


# --- item 2: the comparison's filters --------------------------------------------------


def _post(studio: Studio, experiment_id: str, results):
    payload = experiment_payload(experiment_id, len(results))
    for record, (completion, score) in zip(payload["experiment_summary"], results):
        record["completion"] = completion
        record["evaluation"] = json.dumps([{"metric": "exact_match", "result": score}])
    assert studio.post("/api/experiments", payload)[0] == 200


def test_compare_only_records_that_differ_or_fail(studio: Studio):
    # record 0: same, passing; 1: completions differ; 2: same text, a metric of 0 in b;
    # 3: an empty completion in a; 4: same, passing, false nowhere
    _post(studio, "a", [("x", 1), ("one", 1), ("z", 1), ("", 1), ("w", True)])
    _post(studio, "b", [("x", 1), ("two", 1), ("z", 0), ("v", 1), ("w", True)])

    def rows(only=""):
        status, data = studio.get("/api/studio/compare?experiment_id=a&experiment_id=b"
                                  + (f"&only={only}" if only else ""))
        assert status == 200, data
        return data["total"], [r["dataset_record_id"] for r in data["rows"]]

    assert rows() == (5, ["0", "1", "2", "3", "4"])
    assert rows("differ") == (3, ["1", "2", "3"])
    assert rows("failures") == (2, ["2", "3"])
    status, data = studio.get("/api/studio/compare?experiment_id=a&experiment_id=b&only=x")
    assert status == 400 and "differ" in data["message"]
    _post(studio, "c", [("x", False)])  # record 0 fails in c; c has no result for 1-4
    status, data = studio.get("/api/studio/compare?experiment_id=a&experiment_id=c"
                              "&only=differ&limit=2")
    assert (data["total"], [r["dataset_record_id"] for r in data["rows"]]) == (5, ["0", "1"])
    status, data = studio.get("/api/studio/compare?experiment_id=a&experiment_id=c"
                              "&only=failures")
    assert [r["dataset_record_id"] for r in data["rows"]] == ["0", "3"]


# --- item 4: users ---------------------------------------------------------------------


def test_deactivated_users_are_listed_and_reactivated_not_recreated(studio: Studio):
    studio.add_user("ann", "ann-password")
    assert studio.request("DELETE", "/api/users/ann", token=studio.token)[0] == 200
    status, data = studio.get("/api/users")
    assert "ann" not in [u["username"] for u in data["users"]]  # the original's answer
    status, data = studio.get("/api/users?all=1")
    assert {u["username"]: u["active"] for u in data["users"]} == {
        "admin": True, "root": True, "ann": False}
    status, data = studio.post("/api/users", {"username": "ann", "password": "ann-password2",
                                              "role": "engineer"})
    assert status == 409 and "reactivate" in data["message"]
    assert studio.request("POST", "/api/login", {"username": "ann",
                                                 "password": "ann-password"})[0] == 401
    status, data = studio.post("/api/users/ann/reactivate", {})
    assert status == 200 and data["user"]["active"] is True
    assert studio.login("ann", "ann-password")
    assert studio.post("/api/users/ghost/reactivate", {})[0] == 404
    ann = studio.login("ann", "ann-password")
    assert studio.post("/api/users/root/reactivate", {}, token=ann)[0] == 403


def test_an_admin_changes_roles_and_resets_passwords(studio: Studio):
    studio.add_user("bob", "bob-password")
    bob = studio.login("bob", "bob-password")
    assert studio.get("/api/users", token=bob)[0] == 403
    status, data = studio.post("/api/users/bob/role", {"role": "admin"})
    assert status == 200 and data["user"]["role"] == "admin"
    assert studio.get("/api/users", token=bob)[0] == 200  # the role is read each time
    assert studio.post("/api/users/bob/role", {"role": "root"})[0] == 400
    status, data = studio.post("/api/users/root/role", {"role": "engineer"})
    assert status == 400 and "own role" in data["message"]
    assert studio.post("/api/users/ghost/role", {"role": "admin"})[0] == 404
    # a reset: the new password signs in, the old one and bob's tokens do not
    for bad in ["short", "x" * 73, 5]:
        status, data = studio.post("/api/users/bob/password", {"password": bad})
        assert status == 400 and data["message"].startswith("Invalid input"), bad
    assert studio.post("/api/users/bob/password", {"password": "new-bob-password"})[0] == 200
    assert studio.get("/api/me", token=bob)[0] == 401
    assert studio.request("POST", "/api/login", {"username": "bob",
                                                 "password": "bob-password"})[0] == 401
    assert studio.login("bob", "new-bob-password")
    status, data = studio.post("/api/users/root/password", {"password": "another-one"})
    assert status == 400 and "/api/me/password" in data["message"]


def test_every_user_changes_their_own_password(studio: Studio):
    studio.add_user("eng", "eng-password")
    eng = studio.login("eng", "eng-password")
    older = studio.login("eng", "eng-password")
    status, data = studio.post("/api/me/password", {"current_password": "wrong-password",
                                                    "new_password": "eng-password-2"}, token=eng)
    assert status == 403 and "current password" in data["message"]
    status, data = studio.post("/api/me/password", {"current_password": "eng-password",
                                                    "new_password": "short"}, token=eng)
    assert status == 400 and "Invalid input" in data["message"]
    assert studio.post("/api/me/password", {"new_password": "eng-password-2"},
                       token=eng)[0] == 400
    status, data = studio.post("/api/me/password", {"current_password": "eng-password",
                                                    "new_password": "eng-password-2"}, token=eng)
    assert status == 200, data
    assert studio.get("/api/me", token=older)[0] == 401  # older tokens are signed out
    assert studio.get("/api/me", token=eng)[0] == 401
    assert studio.get("/api/me", token=data["access_token"])[1]["username"] == "eng"
    assert studio.login("eng", "eng-password-2")


# --- item 6: tokens for remote tracers -------------------------------------------------


def test_a_token_with_a_chosen_lifetime_for_a_remote_tracer(studio: Studio):
    studio.add_user("eng", "eng-password")
    eng = studio.login("eng", "eng-password")
    status, data = studio.post("/api/token", {"minutes": 90}, token=eng)
    assert status == 200, data
    claims = decode_token(data["access_token"], SECRET)
    assert claims["sub"] == "eng" and claims["exp"] - claims["iat"] == 90 * 60
    assert data["expires_at"] == claims["exp"]
    from promptlab.tracer.api_tracer import ApiTracer
    from promptlab.types import TracerConfig

    tracer = ApiTracer(TracerConfig(type="remote", endpoint=studio.url.rstrip("/"),
                                    jwt_token=data["access_token"]))
    assert studio.get("/api/me", token=data["access_token"])[1]["username"] == "eng"
    assert tracer is not None
    for bad in [0, -5, "60", True, 10 ** 9, None]:
        status, data = studio.post("/api/token", {"minutes": bad}, token=eng)
        assert status == 400 and "minutes" in data["message"], bad
    assert studio.request("POST", "/api/token", {"minutes": 5})[0] == 401


# --- item 7: datasets ------------------------------------------------------------------


def test_datasets_with_record_counts_and_a_preview(studio: Studio, tmp_path: Path):
    from promptlab.types import Dataset

    seed(studio.tracer, tmp_path, records=12)
    studio.tracer.create_dataset(Dataset(name="elsewhere", description="",
                                         file_path="/nowhere/else.jsonl"))
    status, data = studio.get("/api/studio/datasets")
    assert status == 200
    by_name = {d["asset_name"]: d for d in data["datasets"]}
    assert by_name["arith"]["records"] == 12 and by_name["arith"]["note"] is None
    assert by_name["elsewhere"]["records"] is None and by_name["elsewhere"]["note"]
    status, data = studio.get("/api/studio/dataset?asset_name=arith&asset_version=0&limit=3")
    assert status == 200 and data["records"] == 12
    assert [r["id"] for r in data["preview"]] == [0, 1, 2]
    status, data = studio.get("/api/studio/dataset?asset_name=elsewhere&asset_version=0")
    assert data["preview"] == [] and data["note"]
    assert studio.get("/api/studio/dataset?asset_name=qa&asset_version=0")[0] == 404
    assert studio.get("/api/studio/dataset?asset_name=arith&asset_version=0&limit=51")[0] \
        == 400


# --- item 8: health when the status cannot be read -------------------------------------


def test_health_says_the_migration_status_is_unknown(studio: Studio, monkeypatch):
    assert studio.get("/health")[1]["database"]["status_known"] is True

    def broken(path):
        raise _core.DatabaseError("file is not a database")

    monkeypatch.setattr("promptlab.sqlite.migrations.status", broken)
    status, data = studio.get("/health")
    assert status == 503
    db = data["database"]
    assert db["status_known"] is False and db["head"] is None and "not a database" in \
        db["status_error"]


# --- item 9: the secret out of the working tree ----------------------------------------


def test_the_secret_lives_in_the_config_folder_keyed_by_the_database(tmp_path: Path,
                                                                    config_home: Path):
    a, b = tmp_path / "a" / "lab.db", tmp_path / "b" / "lab.db"
    secret_a, where_a = auth.load_secret(str(a))
    secret_b, where_b = auth.load_secret(str(b))
    assert secret_a != secret_b and where_a != where_b
    folder = config_home / "promptlab"
    assert Path(where_a).parent.parent == folder
    for path in (folder, Path(where_a).parent):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(where_a).st_mode) == 0o600
    # the same file by another spelling of its path is the same secret
    assert auth.load_secret(str(tmp_path / "a" / "." / "lab.db"))[0] == secret_a
    assert list(tmp_path.glob("**/*.studio-secret")) == []


def test_an_older_secret_beside_the_database_is_still_read(tmp_path: Path):
    db = tmp_path / "lab.db"
    legacy = Path(auth.secret_path(str(db)))
    legacy.write_text("L" * 43 + "\n")
    os.chmod(legacy, 0o600)
    assert auth.load_secret(str(db)) == (b"L" * 43, str(legacy))
    assert not os.path.exists(auth.config_secret_path(str(db)))
    assert auth.load_secret(str(db), {auth.SECRET_ENV: "e" * 40}) == (b"e" * 40,
                                                                     "environment")


def test_home_config_without_xdg(tmp_path: Path):
    assert auth.config_dir({"HOME": str(tmp_path)}) in (
        os.path.join(os.path.expanduser("~"), ".config", "promptlab"),)
    assert auth.config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == str(tmp_path / "promptlab")
    assert auth.config_dir({"XDG_CONFIG_HOME": "relative"}).endswith(
        os.path.join(".config", "promptlab"))


def test_gitignore_keeps_the_database_and_secrets_out():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = ["promptlab.db", "x/lab.db.studio-secret"]
    out = subprocess.run(["git", "-C", str(ROOT), "check-ignore", *names],
                         capture_output=True, text=True)
    assert out.stdout.split() == names


# --- item 5: the one-time password is not lost when the port is taken ------------------


def test_a_taken_port_prints_no_password_and_suggests_another(tmp_path: Path):
    db = tmp_path / "lab.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_command(db, "-p", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "password:" not in out
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"promptlab: error: cannot listen on 127.0.0.1:{port}")
    assert "-p 0" in last
    proc = start_command(db, "-p", "0")  # the password is made (and shown) now
    try:
        lines, url = read_until_url(proc)
        assert "  username: admin" in lines and any("password: " in x for x in lines)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


# --- item 10: small messages -----------------------------------------------------------


def test_invalid_token_is_said_once(studio: Studio):
    status, _, data = studio.request("GET", "/api/me", token="not-a-token")
    assert status == 401 and data["message"] == "Invalid token"
    status, _, data = studio.request("GET", "/api/me", token="a.b.c")
    assert data["message"].count("nvalid token") == 1


def test_db_status_prints_a_normalized_path(tmp_path: Path):
    out = cli("db", "status", "-d", "./promptlab.db", cwd=tmp_path)
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"Database:  {os.path.realpath(tmp_path)}{os.sep}promptlab.db") \
        or first.startswith(f"Database:  {tmp_path}{os.sep}promptlab.db"), out.stdout
    assert "/./" not in out.stdout


def test_fuzz_run_without_clang_says_what_is_missing(tmp_path: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dirname",):
        os.symlink(shutil.which(tool), bindir / tool)
    out = subprocess.run(["/bin/bash", str(ROOT / "fuzz" / "run.sh"), "5"],
                         env={"PATH": str(bindir)}, capture_output=True, text=True,
                         timeout=60, cwd=NEUTRAL_CWD)
    assert out.returncode == 1
    assert "clang" in out.stderr and "apt-get install" in out.stderr


def test_library_user_methods(tmp_path: Path):
    from promptlab.sqlite.models import User

    tracer = LocalTracer({"type": "local", "db_file": str(tmp_path / "t.db")})
    tracer.create_user(User(username="zed", password_hash="h", role="engineer"))
    tracer.deactivate_user_by_username("zed")
    assert "zed" not in [u.username for u in tracer.get_users()]
    assert [u.status for u in tracer.get_all_users() if u.username == "zed"] == [0]
    tracer.reactivate_user_by_username("zed")
    tracer.set_user_role("zed", "admin")
    tracer.set_user_password_hash("zed", "h2")
    zed = tracer.get_user_by_username("zed")
    assert (zed.status, zed.role, zed.password_hash) == (1, "admin", "h2")
    for method, args in [(tracer.reactivate_user_by_username, ()),
                         (tracer.set_user_role, ("admin",)),
                         (tracer.set_user_password_hash, ("h",))]:
        with pytest.raises(ValueError, match="not found"):
            method("ghost", *args)
