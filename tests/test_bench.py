"""`make bench` and `make soak` keep working: a miniature run of each (the full ones take minutes and
are not tests; what they measure is not asserted here, only that they run and report)."""

from __future__ import annotations

import json
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
        "--catalog-datasets",
        "40",
        "--import-proposals",
        "200",
        "--federation-quads",
        "5000",
        # Not the 2M quads of the real run: that alone took most of the timeout, and over it
        # on a loaded machine.
        "--indicators-quads",
        "20000",
        "--indicators-rounds",
        "1",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", *small, "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,  # a hang guard: under a parallel `make test` it shares the CPUs
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "latest.txt").read_text()
    assert "ingest through POST /api/v1/territories/{t}/ingest" in report
    assert "get_one_warm" in report and "Store.bulk_load" in report
    assert "package_search fq, rows=100" in report and "the catalog walked end to end" in report
    assert "civicfed import decidim: 601 records written" in report and "district assignment" in report
    assert "initial replication:" in report and "a sync with nothing new: 1 request, 0 bytes" in report
    assert "cost of keeping them:" in report and "join_territories" in report


@pytest.mark.slow  # about 40 s
def test_a_miniature_soak_runs_and_reports(tmp_path: Path) -> None:
    """`make soak` keeps working: every kind of request of the mixed load is sent and answered
    without error, and the report has its figures (the thresholds are not asserted: 18 s on a
    tiny territory say nothing about them)."""
    tiny = ["--minutes", "0.3", "--quads", "5000", "--large-mb", "1", "--settle", "1", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", *tiny, "--sparql-timeout", "2", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "soak.json").read_text())
    kinds = {"api_get", "api_list", "api_write", "sparql_small", "sparql_heavy", "linked_data", "dump", "ingest"}
    assert set(results["load"]) == kinds
    assert all(results["load"][kind]["ok"] for kind in kinds), results["load"]
    # The heavy queries ran into the time limit and the full gate: refused, as designed, not errors.
    assert results["load"]["sparql_heavy"]["refused"]
    assert results["memory"]["rounds"][0]["peak"] >= results["memory"]["baseline"] > 0
    assert results["rss"]["worker"]["max"] > 0 and results["log"]["tracebacks"] == 0
    report = (tmp_path / "soak.txt").read_text()
    assert "PASS  no error" in report and "worker RSS around large requests" in report
