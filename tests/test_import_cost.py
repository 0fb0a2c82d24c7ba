"""Start-up: which modules the two most common short runs load (structure, not time).

Each run is a fresh interpreter; the test reads ``sys.modules`` at its end. Timings
belong in benchmarks; what is checked here is that the modules each path does not
need stay unloaded:

- opening an existing database with ``LocalTracer`` (the plain config dict) and reading
  its experiments loads neither the studio, nor migration writing/comparison, nor json,
  argparse, typing, dataclasses, ``promptlab.types`` or the record classes;
- the same with a ``TracerConfig`` (the typed config) loads ``promptlab.types`` but
  neither dataclasses (with inspect) nor typing (with re): issue 16, most of such a
  script's start-up;
- ``promptlab db status -d FILE`` (through ``promptlab.cli.main``, as the console
  script and ``python -m promptlab`` call it) loads neither the studio, nor
  ``promptlab.sqlite.autogenerate``/``schema`` (an undrifted database), nor
  argparse, dataclasses, typing or logging.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import NEUTRAL_CWD
from promptlab.tracer.local_tracer import LocalTracer

TRACER_READ = """
import sys
from promptlab.tracer.local_tracer import LocalTracer
rows = LocalTracer({"type": "local", "db_file": sys.argv[1]}).get_experiments()
loaded = sorted(sys.modules)
import json
print(json.dumps([len(rows), loaded]))
"""

# What it loads beyond what the interpreter had (an editable install's finder loads re).
TYPED_TRACER_READ = """
import sys
before = set(sys.modules)
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import TracerConfig
rows = LocalTracer(TracerConfig(type="local", db_file=sys.argv[1])).get_experiments()
loaded = sorted(set(sys.modules) - before)
import json
print(json.dumps([len(rows), loaded]))
"""

DB_STATUS = """
import sys
from promptlab.cli import main
code = main(["db", "status", "-d", sys.argv[1]] + sys.argv[2:])
loaded = sorted(sys.modules)
import json
print(json.dumps([code, loaded]))
"""


def _run(script: str, *args: str) -> list:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                         text=True, check=True, timeout=120, cwd=NEUTRAL_CWD).stdout
    return json.loads(out.splitlines()[-1])


def _loaded(modules: list, *names: str) -> list:
    """Those of ``names`` (or their submodules) in ``modules``."""
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


@pytest.fixture
def db_file(tmp_path):
    path = str(tmp_path / "startup.db")
    LocalTracer({"type": "local", "db_file": path})  # created and migrated
    return path


def test_tracer_open_and_read_loads_only_what_it_needs(db_file):
    rows, modules = _run(TRACER_READ, db_file)
    assert rows == 0
    assert "promptlab.tracer.local_tracer" in modules and "promptlab._core" in modules
    assert _loaded(modules, "promptlab.studio", "promptlab.sqlite.autogenerate",
                   "promptlab.sqlite.schema", "promptlab.sqlite.migrations",
                   "promptlab.tracer.api_tracer", "promptlab.cli", "json", "argparse",
                   "logging", "promptlab.types", "promptlab.sqlite.models", "dataclasses",
                   "typing") == []


def test_a_typed_config_loads_no_dataclasses(db_file):
    rows, modules = _run(TYPED_TRACER_READ, db_file)
    assert rows == 0
    assert "promptlab.types" in modules
    assert _loaded(modules, "dataclasses", "inspect", "ast", "dis", "copy", "typing", "re",
                   "promptlab.model_response", "promptlab.model_protocols",
                   "promptlab.studio", "json") == []


def test_a_config_that_is_not_the_plain_dict_is_still_checked(tmp_path):
    from promptlab.types import ValidationError

    with pytest.raises(ValidationError, match="db_file"):
        LocalTracer({"type": "local", "db_file": str(tmp_path / "a?.db")})
    with pytest.raises(ValidationError, match="type"):
        LocalTracer({"type": "nowhere", "db_file": str(tmp_path / "a.db")})


@pytest.mark.parametrize("options", [[], ["--json"], ["--exit-code"]])
def test_db_status_loads_only_what_it_needs(db_file, options):
    code, modules = _run(DB_STATUS, db_file, *options)
    assert code == 0
    assert "promptlab.sqlite.migrations" in modules
    assert _loaded(modules, "promptlab.studio", "promptlab.sqlite.autogenerate",
                   "promptlab.sqlite.schema", "promptlab.tracer", "promptlab.types",
                   "argparse", "dataclasses", "typing", "logging") == []


def test_db_status_with_drift_still_compares_schemas(db_file):
    from promptlab.sqlite import get_session

    with get_session(db_file) as session:
        session.execute("CREATE TABLE extra (x INTEGER)")
    code, modules = _run(DB_STATUS, db_file, "--exit-code")
    assert code == 4  # drift
    assert "promptlab.sqlite.schema" in modules
    assert _loaded(modules, "promptlab.studio", "promptlab.sqlite.autogenerate") == []


def test_other_commands_still_parse_with_argparse(db_file):
    out = subprocess.run([sys.executable, "-m", "promptlab", "db", "status", "-d", db_file,
                          "--js"], capture_output=True, text=True, timeout=120,
                         cwd=NEUTRAL_CWD)
    assert out.returncode == 0 and json.loads(out.stdout)["up_to_date"] is True
    out = subprocess.run([sys.executable, "-m", "promptlab", "db", "status"],
                         capture_output=True, text=True, timeout=120, cwd=NEUTRAL_CWD)
    assert out.returncode == 2 and "-d/--db" in out.stderr


LIBRARIES = """
import sys
from promptlab.tracer.local_tracer import LocalTracer
LocalTracer({"type": "local", "db_file": sys.argv[1]}).get_experiments()
with open("/proc/self/maps") as f:
    maps = f.read()
import json
print(json.dumps([name for name in ("libpq", "libssl", "libkrb5", "libldap")
                  if name in maps]))
"""


def test_sqlite_users_load_no_postgresql_client_library(db_file):
    # libpq is loaded when a postgresql:// URL is first used (csrc/engine/postgres/pq.c):
    # linked, it brought OpenSSL, Kerberos and LDAP into every process.
    assert _run(LIBRARIES, db_file) == []
