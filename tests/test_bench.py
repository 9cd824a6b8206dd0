"""`make bench` keeps working: a miniature run of its main sections (the full one takes minutes and
is not a test; what it measures is not asserted here, only that it runs and reports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# It starts servers: not in make test-fast.
pytestmark = pytest.mark.live


def test_a_miniature_benchmark_runs_and_reports(tmp_path: Path) -> None:
    small = [
        "--quads",
        "5000",
        "--territories",
        "2",
        "--gets",
        "20",
        "--pair-quads",
        "3000",
        "--no-backends",
        "--no-linked",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", *small, "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "latest.txt").read_text()
    assert "ingest through POST /api/v1/territories/{t}/ingest" in report
    assert "get_one_warm" in report and "Store.bulk_load" in report
