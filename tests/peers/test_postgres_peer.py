"""The PostgreSQL peer's own promise: a missing server skips its tests on a laptop and fails
them under CI (that the server it starts is durable: tests/service/test_store_postgres.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
def test_needs_postgres(new_database):
    assert new_database
"""


def run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text("from tests.peers.postgres import new_database, postgres  # noqa\n" + PROBE)
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(probe)],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), **env},
        check=False,
    )


@pytest.mark.slow
def test_without_postgresql_a_laptop_skips_and_ci_fails(tmp_path: Path) -> None:
    laptop = run_probe(tmp_path, NOTIFY_DEVINO_PG_BIN="/nonexistent")
    assert "1 skipped" in laptop.stdout, laptop.stdout
    assert "no PostgreSQL server binaries" in laptop.stdout
    ci = run_probe(tmp_path, NOTIFY_DEVINO_PG_BIN="/nonexistent", CI="true")
    assert ci.returncode != 0
    assert "CI=true and no PostgreSQL server binaries" in ci.stdout, ci.stdout
