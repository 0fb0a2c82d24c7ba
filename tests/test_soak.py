"""The soak test of issue 11 (tests/soak/runner.py) as a pytest test: a studio and a
tracer holding one database, short-lived writers (some killed with SIGKILL), and the
calls that inspect the file (status, sql, migrate --backup, downgrade --sql, health,
admin-password), also from inside the holders, for PROMPTLAB_SOAK_SECONDS (default 60).
After every round: integrity_check ok, every acknowledged experiment present with all
its rows, no live process with a deleted -wal/-shm open. ``python -m tests.soak
--seconds 600`` runs it longer."""

from __future__ import annotations

import os

import pytest

from soak.runner import run_soak


@pytest.mark.slow
def test_soak_loses_no_acknowledged_write(tmp_path):
    seconds = float(os.environ.get("PROMPTLAB_SOAK_SECONDS", "60"))
    report = run_soak(seconds, tmp_path / "soak")
    print(report.text())
    assert report.ok, report.text()
    assert report.rounds >= 1
    assert report.acknowledged > 0
    assert report.lost == []
