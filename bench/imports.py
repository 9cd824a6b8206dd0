"""Importers at scale: a Decidim open-data export of 100,000 proposals (1,000,000 votes as their
counts, 200,000 comments) in the real layout, imported with ``civicfed import decidim`` as an
operator does, in its own process:

- records per second (every record written: processes, proposals, comments) and the peak RSS of
  the importing process (``getrusage`` of the finished child);
- the baseline, measured in the same run: reading the same export through the importer alone
  (every item mapped, nothing validated or written), in its own process too.

Targets (issue #10): ≥ 5,000 records/s, RSS bounded. ``python -m bench.imports`` runs this alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyoxigraph

from server.store.staging import live_dir

from .decidim_export import write_export
from .run import ROOT, fresh_data_dir

TARGET_RECORDS_PER_S = 5000.0

#: Reads the export through the importer only, and says how many items and how long.
_READ_ONLY = """
import json, sys, time
from importers import IMPORTERS
started = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    source = IMPORTERS["decidim"].read(f, name=sys.argv[1])
    n = sum(1 for _ in source.items())
print(json.dumps({"items": n, "seconds": time.perf_counter() - started}))
"""


#: Loads the quads the import wrote into a fresh store with ``bulk_load`` (no validation, no
#: transaction, no Python per record): what the store alone takes to write them, the ceiling.
_BULK_ONLY = """
import json, sys, time
from pyoxigraph import RdfFormat, Store
store = Store(sys.argv[2])
started = time.perf_counter()
store.bulk_load(path=sys.argv[1], format=RdfFormat.N_QUADS)
store.flush()
print(json.dumps({"quads": len(store), "seconds": time.perf_counter() - started}))
"""


def _child(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run a child process; its wall time and peak RSS (KiB, from the kernel's accounting of
    this child alone: a fresh interpreter per measure, so the maxima do not mix)."""
    script = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps({'rc': done.returncode, 'out': done.stdout, 'err': done.stderr[-4000:],\n"
        "  'seconds': time.perf_counter() - t, 'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    wrapper = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(wrapper.stdout)
    done = subprocess.CompletedProcess(args, result["rc"], result["out"], result["err"])
    return done, result["seconds"], int(result["rss_kib"])


def run_imports(
    work: Path, proposals: int = 100_000, comments: int = 200_000, votes: int = 1_000_000
) -> dict[str, Any]:
    export = work / "decidim-export.zip"
    started = time.perf_counter()
    write_export(export, proposals, comments, votes)
    out: dict[str, Any] = {
        "proposals": proposals,
        "comments": comments,
        "votes": votes,
        "export_mb": export.stat().st_size / 1e6,
        "generate_s": time.perf_counter() - started,
    }
    data_dir = fresh_data_dir(work / "import-data")
    env = {**os.environ, "CIVICFED_DATA_DIR": str(data_dir), "CIVICFED_BASE_URI": "https://bench.example"}
    cli = [sys.executable, "-m", "server.cli"]
    subprocess.run([*cli, "territory", "create", "participa", "--name", "Participa"], env=env, check=True, cwd=ROOT)

    read, seconds, rss = _child([sys.executable, "-c", _READ_ONLY, str(export)], env)
    if read.returncode != 0:
        raise RuntimeError(f"reading the export failed: {read.stderr}")
    baseline = json.loads(read.stdout)
    out["read_only"] = {"items": baseline["items"], "seconds": seconds, "rss_mb": rss / 1024}

    done, seconds, rss = _child([*cli, "import", "decidim", str(export), "--territory", "participa"], env)
    if done.returncode != 0:
        raise RuntimeError(f"the import failed: {done.stderr}")
    run = json.loads(done.stdout)
    written = run["created"] + run["updated"]
    out["import"] = {
        "status": run["status"],
        "read": run["read"],
        "written": written,
        "rejected": run["rejected"],
        "seconds": seconds,
        "records_per_s": written / seconds,
        "rss_mb": rss / 1024,
    }
    # The ceiling: the same quads bulk-loaded, measured in the same run.
    quads_file = work / "imported.nq"
    with open(quads_file, "wb") as f:
        pyoxigraph.Store.read_only(str(live_dir(data_dir / "oxigraph"))).dump(f, format=pyoxigraph.RdfFormat.N_QUADS)
    bulk, seconds, rss = _child([sys.executable, "-c", _BULK_ONLY, str(quads_file), str(work / "bulk-store")], env)
    if bulk.returncode != 0:
        raise RuntimeError(f"bulk-loading the imported quads failed: {bulk.stderr}")
    loaded = json.loads(bulk.stdout)
    out["bulk_only"] = {"quads": loaded["quads"], "seconds": loaded["seconds"], "rss_mb": rss / 1024}
    return out


def report(results: dict[str, Any]) -> str:
    imp, base, bulk = results["import"], results["read_only"], results["bulk_only"]
    verdict = "PASS" if imp["records_per_s"] >= TARGET_RECORDS_PER_S else "FAIL"
    return "\n".join(
        [
            "",
            f"import of a Decidim export: {results['proposals']:,} proposals, {results['comments']:,} comments, "
            f"{results['votes']:,} votes as counts ({results['export_mb']:.0f} MB zip)",
            f"  civicfed import decidim: {imp['written']:,} records written ({imp['rejected']:,} quarantined) in "
            f"{imp['seconds']:.1f} s = {imp['records_per_s']:,.0f} records/s (target ≥ {TARGET_RECORDS_PER_S:,.0f}: "
            f"{verdict}); peak RSS {imp['rss_mb']:,.0f} MB",
            f"  baseline, the importer reading alone: {base['items']:,} items in {base['seconds']:.1f} s "
            f"= {base['items'] / base['seconds']:,.0f} items/s; peak RSS {base['rss_mb']:,.0f} MB",
            f"  ceiling, the {bulk['quads']:,} quads it wrote bulk-loaded into a fresh store (pyoxigraph alone): "
            f"{bulk['seconds']:.1f} s = {bulk['quads'] / bulk['seconds']:,.0f} quads/s, "
            f"{imp['written'] / bulk['seconds']:,.0f} records/s; the import runs at "
            f"{imp['records_per_s'] * bulk['seconds'] / imp['written']:.0%} of it",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=200_000)
    parser.add_argument("--votes", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="civicfed-bench-imports-") as work:
        results = run_imports(Path(work), args.proposals, args.comments, args.votes)
    print(report(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
