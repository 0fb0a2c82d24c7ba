"""Make the release-*.db files of this folder with the original PromptLab releases.

Not run by CI: the .db files it writes are committed, and tests/test_legacy_releases.py
upgrades copies of them. Run it again only to remake them (the times and experiment ids
in the files will differ; the tests do not depend on them):

    python3 -m venv /tmp/rel-0.0.3  && /tmp/rel-0.0.3/bin/pip install promptlab==0.0.3
    python3 -m venv /tmp/rel-0.1.3  && /tmp/rel-0.1.3/bin/pip install promptlab==0.1.3
    python3 -m venv /tmp/rel-0.1.11 && /tmp/rel-0.1.11/bin/pip install promptlab==0.1.11
    python3 tests/data/legacy/make_release_dbs.py            # writes into this folder

Each release runs in its own process with its own venv, through its public API only
(PromptLab(...).asset / .experiment, as its README shows). Their model calls go to a
fake Ollama server this script runs on 127.0.0.1 (POST /api/chat and /api/embed, the
Ollama HTTP API), through the real `ollama` client library of each release: no network,
no mock of the client. The releases write local times, so the script runs them with a
fixed TZ (Asia/Tokyo, UTC+9, no daylight saving time), which the tests rely on to know
what the stored local times mean.

Files:
  release-0.0.3.db                    PromptLab 0.0.3: L1 (assets.asset_id; experiments
                                      refer to their assets by id)
  release-0.1.3.db                    PromptLab 0.1.3: L2
  release-0.1.11.db                   PromptLab 0.1.11: L3
  release-0.1.3-opened-by-0.1.11.db   release-0.1.3.db after PromptLab 0.1.11 opened it
                                      once: 0.1.11 added its users table (with admin) and
                                      then failed on its first query
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
TZ = "Asia/Tokyo"


class FakeOllama(BaseHTTPRequestHandler):
    """Answers Ollama's /api/chat and /api/embed like a tiny deterministic model."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/api/chat":
            user = [m["content"] for m in body.get("messages", []) if m["role"] == "user"]
            text = user[-1] if user else ""
            answer = {"model": body.get("model"), "created_at": "2025-01-01T00:00:00Z",
                      "message": {"role": "assistant",
                                  "content": f"Answer to: {text.strip()[:60]}"},
                      "done": True, "done_reason": "stop", "total_duration": 12_345_678,
                      "load_duration": 1000, "prompt_eval_count": 11 + len(text) % 7,
                      "prompt_eval_duration": 1000, "eval_count": 5 + len(text) % 3,
                      "eval_duration": 1000}
        elif self.path in ("/api/embed", "/api/embeddings"):
            inputs = body.get("input") or body.get("prompt") or ""
            inputs = inputs if isinstance(inputs, list) else [inputs]
            answer = {"model": body.get("model"),
                      "embeddings": [[(len(t) % 10) / 10, 0.5, 0.25] for t in inputs],
                      "embedding": [0.1, 0.5, 0.25]}
        else:
            self.send_error(404)
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


# --- what each release does, run by that release's own Python -------------------------

COMMON = '''
import json, sys
from pathlib import Path
db, work = sys.argv[1], Path(sys.argv[2])
data = work / "qa.jsonl"
data.write_text("".join(json.dumps(r) + "\\n" for r in [
    {"id": "q1", "question": "What is 2+2?", "answer": "4"},
    {"id": "q2", "question": "Capital of France?", "answer": "Paris"},
    {"id": "q3", "question": "Café or thé? ¿Por qué? 日本語", "answer": "both"},
]))
'''

RELEASE_0_0_3 = COMMON + '''
from promptlab import PromptLab
from promptlab.types import Dataset, PromptTemplate
pl = PromptLab({"type": "sqlite", "db_file": db})
ds = pl.asset.create_or_update(Dataset(name="qa-set", description="three questions",
                                       file_path=str(data)))
pt = pl.asset.create_or_update(PromptTemplate(
    name="answerer", description="answers briefly",
    system_prompt="You answer in one word.", user_prompt="Question: <question>"))
other = pl.asset.create_or_update(PromptTemplate(
    name="résumé ✨", description="unused template",
    system_prompt="Summarize.", user_prompt="<text>"))
model = {"type": "ollama", "inference_model_deployment": "llama3.2",
         "embedding_model_deployment": "nomic-embed-text"}
evaluation = [{"type": "ragas", "metric": "ExactMatch",
               "column_mapping": {"response": "$inference", "reference": "answer"}}]
pl.experiment.run({"model": model, "prompt_template": {"id": pt.id, "version": 0},
                   "dataset": {"id": ds.id, "version": 0}, "evaluation": evaluation})
pt2 = pl.asset.create_or_update(PromptTemplate(id=pt.id, description="answers politely",
                                               user_prompt="Please answer: <question>"))
ds2 = pl.asset.create_or_update(Dataset(name=None, description=None, file_path=str(data),
                                        id=ds.id))
pl.experiment.run({"model": model, "prompt_template": {"id": pt.id, "version": pt2.version},
                   "dataset": {"id": ds.id, "version": ds2.version}, "evaluation": evaluation})
pl.experiment.run({"model": model, "prompt_template": {"id": pt.id, "version": 0},
                   "dataset": {"id": ds.id, "version": ds2.version}, "evaluation": []})
deploy = work / "deployed"
deploy.mkdir()
pl.asset.deploy(pt2, str(deploy))
'''

RELEASE_0_1_3 = COMMON + '''
from promptlab import PromptLab
from promptlab.types import Dataset, PromptTemplate, ModelConfig
from promptlab.model.ollama import Ollama, Ollama_Embedding
pl = PromptLab({"type": "sqlite", "db_file": db})
ds = pl.asset.create(Dataset(name="qa-set", description="three questions",
                             file_path=str(data)))
pt = pl.asset.create(PromptTemplate(
    name="answerer", description="answers briefly",
    system_prompt="You answer in one word.", user_prompt="Question: <question>"))
pl.asset.create(PromptTemplate(name="summary_v2", description="unused template: résumé ✨",
                               system_prompt="Summarize.", user_prompt="<text>"))
model = Ollama(ModelConfig(model_deployment="llama3.2"))
embedding = Ollama_Embedding(ModelConfig(model_deployment="nomic-embed-text"))
evaluation = [{"metric": "ExactMatch",
               "column_mapping": {"response": "$inference", "reference": "answer"}}]
pl.experiment.run({"name": "first-run", "inference_model": model,
                   "embedding_model": embedding, "prompt_template": pt, "dataset": ds,
                   "evaluation": evaluation})
pt2 = pl.asset.update(PromptTemplate(name="answerer", description="answers politely",
                                     system_prompt="You answer politely.",
                                     user_prompt="Please answer: <question>"))
pl.experiment.run({"name": "second-run", "inference_model": model,
                   "embedding_model": embedding, "prompt_template": pt2, "dataset": ds,
                   "evaluation": evaluation})
pl.experiment.run({"inference_model": model, "embedding_model": embedding,
                   "prompt_template": pt, "dataset": ds, "evaluation": []})
deploy = work / "deployed"
deploy.mkdir()
pl.asset.deploy(pt2, str(deploy))
'''

RELEASE_0_1_11 = COMMON + '''
from promptlab import PromptLab
from promptlab.types import Dataset, PromptTemplate
pl = PromptLab({"type": "local", "db_file": db})
ds = pl.asset.create(Dataset(name="qa-set", description="three questions",
                             file_path=str(data)))
pt = pl.asset.create(PromptTemplate(
    name="answerer", description="answers briefly",
    system_prompt="You answer in one word.", user_prompt="Question: <question>"))
pl.asset.create(PromptTemplate(name="summary_v2", description="unused template: résumé ✨",
                               system_prompt="Summarize.", user_prompt="<text>"))
completion = {"name": "ollama/llama3.2", "type": "completion"}
embedding = {"name": "ollama/nomic-embed-text", "type": "embedding"}
evaluation = [{"metric": "ExactMatch",
               "column_mapping": {"response": "$completion", "reference": "answer"}}]
pl.experiment.run({"name": "first-run", "completion_model_config": completion,
                   "embedding_model_config": embedding, "prompt_template": pt,
                   "dataset": ds, "evaluation": evaluation})
pt2 = pl.asset.update(PromptTemplate(name="answerer", description="answers politely",
                                     system_prompt="You answer politely.",
                                     user_prompt="Please answer: <question>"))
pl.experiment.run({"name": "second-run", "completion_model_config": completion,
                   "embedding_model_config": embedding, "prompt_template": pt2,
                   "dataset": ds, "evaluation": evaluation})
pl.experiment.run({"name": "third-run", "completion_model_config": completion,
                   "embedding_model_config": embedding, "prompt_template": pt,
                   "dataset": ds, "evaluation": []})
'''

# 0.1.11 opening a 0.1.3 file: PromptLab() runs create_all (adds users, inserts admin),
# then its first query fails on the L2 tables; the error is printed, not hidden.
OPEN_WITH_0_1_11 = '''
import sys
from promptlab import PromptLab
pl = PromptLab({"type": "local", "db_file": sys.argv[1]})
try:
    pl.asset.get("answerer", 0)
except Exception as e:
    print("0.1.11 failed as expected:", type(e).__name__, str(e).splitlines()[0])
else:
    sys.exit("0.1.11 read the 0.1.3 file: the premise of this file is gone")
'''


def run(venv: Path, code: str, *args: str, port: int) -> None:
    env = dict(os.environ, TZ=TZ, OLLAMA_HOST=f"http://127.0.0.1:{port}",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory() as cwd:  # the releases write logs into the cwd
        subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code), *args],
                       check=True, env=env, cwd=cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venvs", default="/tmp", help="folder of rel-<version> venvs")
    parser.add_argument("--out", default=str(HERE), help="where to write the .db files")
    args = parser.parse_args()
    venvs, out = Path(args.venvs), Path(args.out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        for version, code in (("0.0.3", RELEASE_0_0_3), ("0.1.3", RELEASE_0_1_3),
                              ("0.1.11", RELEASE_0_1_11)):
            target = out / f"release-{version}.db"
            target.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory() as work:
                run(venvs / f"rel-{version}", code, str(target), work, port=port)
            print(f"wrote {target}")
        hybrid = out / "release-0.1.3-opened-by-0.1.11.db"
        hybrid.unlink(missing_ok=True)
        shutil.copyfile(out / "release-0.1.3.db", hybrid)
        run(venvs / "rel-0.1.11", OPEN_WITH_0_1_11, str(hybrid), port=port)
        print(f"wrote {hybrid}")
    finally:
        server.shutdown()
    for db in sorted(out.glob("release-*.db")):
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete", db
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for (t,) in
                  con.execute("SELECT name FROM sqlite_schema WHERE type = 'table' "
                              "AND name NOT LIKE 'sqlite_%' ORDER BY name")}
        con.close()
        print(f"{db.name}: {os.path.getsize(db)} bytes, rows {counts}")


if __name__ == "__main__":
    sys.exit(main())
