"""The benchmark of ``make bench``: figures printed next to baselines measured in the same run.

1. Generate synthetic territories (~2M quads by default) as NDJSON.
2. Start ``civicfed serve`` (gunicorn, embedded Oxigraph) on loopback and ingest everything
   through ``POST /api/v1/territories/{t}/ingest`` with concurrent clients.
3. Baseline: bulk-load the very quads the API wrote into an empty store with raw ``pyoxigraph``
   (``Store.bulk_load``), and with its transactional ``Store.load``.
4. Restart the server (empty caches) and time GET one record and list pages over HTTP with a
   keep-alive client: first pass cold, second pass warm.
5. Backends side by side: the same quads bulk-loaded into an Oxigraph SPARQL server and into
   Virtuoso (when installed and ``../shared/tools/virtuoso`` is there); the four reference SPARQL
   queries on each (through the store interface), and the API reads with civicfed serving from each.
6. Throughput of the JSON API (GET one record) with 1, 2 and 4 worker processes on the Oxigraph
   server (wrk when installed, else a threaded Python client), next to 1 worker on the embedded store.
7. Linked data (bench/linked.py): the reference queries through ``/sparql`` next to pyoxigraph
   directly, and dereferencing IRIs next to a bare Flask + pyoxigraph endpoint.

Targets (issue #2): ingest ≥ 25% of raw bulk-load quads/s; get one p50 ≤ 5 ms; list page p50 ≤ 20 ms.
(issue #4): /sparql p50 ≤ direct x 1.2 + 2 ms; dereference p50 ≤ 5 ms, throughput ≥ 70% of bare.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from .backends import wait_for_workers
from .generate import write

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: What a worker logs once its catalog is built and its pages written (server/serve.py).
PREPARED = rb"worker (\d+) prepared its catalog"


class Server:
    """``civicfed serve`` in a subprocess, on its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        threads: int,
        store: str | None = None,
        workers: int = 1,
        pin_cpu: bool = False,
        port: int | None = None,
        base: str = "https://bench.example",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CIVICFED_DATA_DIR": str(data_dir), "CIVICFED_BASE_URI": base, **(extra_env or {})}
        # One client sending thousands of requests is what rate limits stop: they are off here.
        self.env["CIVICFED_RATELIMIT_ENABLED"] = "false"
        if store:
            self.env["CIVICFED_STORE"] = store
        log = data_dir / "server.log"
        offset = log.stat().st_size if log.exists() else 0
        self.log = log.open("ab")
        command = ["serve", "--port", str(self.port), "--threads", str(threads), "--workers", str(workers)]
        command += ["--pin-cpu"] if pin_cpu else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *command],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            cwd=ROOT,
        )
        for _ in range(300):
            try:
                requests.get(self.url + "/api/v1/territories", timeout=30)
                wait_for_workers(log, offset, workers, self.proc)
                # Measure once the catalog is prepared, not while its background build competes.
                wait_for_workers(log, offset, workers, self.proc, pattern=PREPARED)
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server did not start: see {data_dir / 'server.log'}") from None
                time.sleep(0.1)
        raise RuntimeError("server did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def fresh_data_dir(data_dir: Path) -> Path:
    """An empty data directory at ``data_dir``, only its owner's (serve refuses one others can
    read, as PostgreSQL does)."""
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(mode=0o700, parents=True)
    data_dir.chmod(0o700)  # whatever the umask
    return data_dir


def setup(data_dir: Path, territories: list[dict[str, Any]], base: str = "https://bench.example") -> dict[str, str]:
    """Create the territories and one editor key each (what an operator does with the CLI)."""
    from server.app import create_app
    from server.services import services

    app = create_app({"DATA_DIR": str(data_dir), "BASE_URI": base})
    with app.app_context():
        svc = services()
        keys = {}
        for t in territories:
            svc.records.create_territory(t)
            keys[t["id"]] = svc.state.create_key(t["id"], "editor", "bench")[1]
    app.extensions["civicfed"].close()
    return keys


def batches(path: Path, size: int) -> list[bytes]:
    lines = path.read_bytes().splitlines()
    return [b"\n".join(lines[i : i + size]) for i in range(0, len(lines), size)]


def ingest(
    server: Server, keys: dict[str, str], files: list[tuple[dict[str, Any], Path, int]], batch: int, clients: int
) -> dict[str, float]:
    work = [(record["id"], batches(path, batch)) for record, path, _ in files]

    def one_territory(item: tuple[str, list[bytes]]) -> tuple[int, int]:
        territory, bodies = item
        records = quads = 0
        with requests.Session() as http:
            for body in bodies:
                resp = http.post(
                    f"{server.url}/api/v1/territories/{territory}/ingest",
                    data=body,
                    headers={"Authorization": f"Bearer {keys[territory]}", "Content-Type": "application/x-ndjson"},
                    timeout=600,
                )
                report = resp.json()
                if resp.status_code != 200 or report["rejected"]:
                    raise RuntimeError(f"ingest refused: {json.dumps(report)[:800]}")
                records += report["created"] + report["updated"]
                quads += report["quads"]
        return records, quads

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one_territory, work))
    elapsed = time.perf_counter() - start
    records = sum(r for r, _ in results)
    quads = sum(q for _, q in results)
    return {
        "seconds": elapsed,
        "records": records,
        "quads": quads,
        "records_per_s": records / elapsed,
        "quads_per_s": quads / elapsed,
    }


def concurrent_territories(work: Path, quads: int, batch: int, threads: int) -> dict[str, Any]:
    """Two territories ingesting at once vs one alone (writes of different territories proceed
    concurrently: each builds its changeset under its own territory's lock). Each case on a fresh
    store, the same data: ``quads`` per territory."""
    files = write(work / "pair-ndjson", quads * 2, 2, seed=11)
    out: dict[str, Any] = {}
    for case, chosen in (("one", files[:1]), ("two", files)):
        data_dir = fresh_data_dir(work / f"pair-{case}")
        keys = setup(data_dir, [record for record, _, _ in files])
        server = Server(data_dir, threads)
        try:
            out[case] = ingest(server, keys, chosen, batch, clients=len(chosen))
        finally:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    out["speedup"] = out["two"]["quads_per_s"] / out["one"]["quads_per_s"]
    return out


def raw_baselines(data_dir: Path, work: Path) -> dict[str, float]:
    """Load the quads the API wrote into empty stores with raw pyoxigraph."""
    import pyoxigraph

    dump = work / "store.nq"
    src = pyoxigraph.Store.read_only(str(data_dir / "oxigraph"))
    src.dump(str(dump), format=pyoxigraph.RdfFormat.N_QUADS)
    n = len(src)
    del src
    out: dict[str, float] = {"quads": n}
    for name in ("bulk_load", "load"):
        target = work / f"raw-{name}"
        shutil.rmtree(target, ignore_errors=True)
        store = pyoxigraph.Store(str(target))
        start = time.perf_counter()
        getattr(store, name)(path=str(dump), format=pyoxigraph.RdfFormat.N_QUADS)
        store.flush()
        elapsed = time.perf_counter() - start
        assert len(store) == n
        out[f"{name}_seconds"] = elapsed
        out[f"{name}_quads_per_s"] = n / elapsed
        del store
        shutil.rmtree(target, ignore_errors=True)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "max_ms": ordered[-1] * 1000}


def timed(http: requests.Session, url: str) -> tuple[float, Any]:
    start = time.perf_counter()
    resp = http.get(url, timeout=60)
    elapsed = time.perf_counter() - start
    if resp.status_code != 200:
        raise RuntimeError(f"{url}: {resp.status_code} {resp.text[:300]}")
    return elapsed, resp.json()


def latency(server: Server, files: list[tuple[dict[str, Any], Path, int]], n_get: int, seed: int = 1) -> dict:
    """Cold then warm passes over the same URLs with one keep-alive client.

    The cold pass runs on a freshly started server: GETs first (nothing cached), then every page
    of every proposal and comment list (cursor walks). The warm pass repeats the same URLs.
    """
    rng = random.Random(seed)
    proposal_urls = []
    for record, path, _ in files:
        for line in path.open(encoding="utf-8"):
            item = json.loads(line)
            if item["kind"] == "proposal":
                proposal_urls.append(f"{server.url}/api/v1/territories/{record['id']}/proposals/{item['id']}")
    sample = rng.sample(proposal_urls, min(n_get, len(proposal_urls)))
    walks = {
        (kind, record["id"]): [f"{server.url}/api/v1/territories/{record['id']}/{kind}?limit=50"]
        for kind in ("proposals", "comments")
        for record, _, _ in files
    }
    out: dict[str, dict[str, float]] = {}
    with requests.Session() as http:
        for pass_name in ("cold", "warm"):
            gets = [timed(http, u)[0] for u in sample]
            pages: dict[str, list[float]] = {"proposals": [], "comments": []}
            for (kind, _), urls in walks.items():
                if pass_name == "warm":
                    pages[kind] += [timed(http, u)[0] for u in urls]
                    continue
                url: str | None = urls[0]
                while url:
                    elapsed, body = timed(http, url)
                    pages[kind].append(elapsed)
                    # `next` links are built on the public base IRI; this server listens elsewhere.
                    url = body["next"] and body["next"].replace("https://bench.example", server.url)
                    if url:
                        urls.append(url)
            across = [timed(http, f"{server.url}/api/v1/proposals?limit=50")[0] for _ in range(30)]
            out[f"get_one_{pass_name}"] = percentiles(gets)
            out[f"list_proposals_{pass_name}"] = percentiles(pages["proposals"])
            out[f"list_comments_{pass_name}"] = percentiles(pages["comments"])
            out[f"list_all_territories_{pass_name}"] = percentiles(across)
    return out


def report(results: dict[str, Any]) -> str:
    ing, raw = results["ingest"], results["raw"]
    ratio = ing["quads_per_s"] / raw["bulk_load_quads_per_s"]
    lines = [
        "",
        f"civicfed benchmark — {results['store_quads']:,} quads in the store, {results['territories']} territories, "
        f"{results['clients']} ingest clients, batches of {results['batch']} records"
        + (", server with --pin-cpu" if results.get("pin_cpu") else ""),
        "",
        "ingest through POST /api/v1/territories/{t}/ingest (HTTP, validation, pseudonymisation, counts, index)",
        f"  {ing['records']:,} records, {ing['quads']:,} quads in {ing['seconds']:.1f} s: "
        f"{ing['records_per_s']:,.0f} records/s, {ing['quads_per_s']:,.0f} quads/s",
        "baselines on the same quads, same run (raw pyoxigraph, no validation, no HTTP)",
        f"  Store.bulk_load: {raw['bulk_load_quads_per_s']:,.0f} quads/s ({raw['bulk_load_seconds']:.1f} s)",
        f"  Store.load (transactional): {raw['load_quads_per_s']:,.0f} quads/s ({raw['load_seconds']:.1f} s)",
        f"  ingest / bulk_load = {ratio:.0%}  (target ≥ 25%, set for a 1M-quad store: "
        f"{'PASS' if ratio >= 0.25 else 'FAIL'} at {results['store_quads'] / 1e6:.1f}M)",
        f"  ingest / transactional load = {ing['quads_per_s'] / raw['load_quads_per_s']:.0%}",
        "",
    ]
    pair = results["concurrent_territories"]
    one, two = pair["one"], pair["two"]
    lines += [
        f"two territories ingesting at once vs one alone (fresh store each, {one['quads']:,} quads per territory)",
        f"  one: {one['quads_per_s']:,.0f} quads/s; two at once: {two['quads_per_s']:,.0f} quads/s in all = "
        f"{pair['speedup']:.2f}x  (target ≥ 1.6x on 2 cores: {'PASS' if pair['speedup'] >= 1.6 else 'FAIL'}, "
        f"{os.cpu_count()} CPUs here)",
        "",
        f"{'latency over HTTP (keep-alive)':44} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target",
    ]
    targets = {"get_one": 5.0, "list_proposals": 20.0, "list_comments": 20.0, "list_all_territories": 20.0}
    for key, stats in results["latency"].items():
        base = key.rsplit("_", 1)[0]
        target = targets.get(base)
        verdict = f"p50 ≤ {target:g} ms: {'PASS' if stats['p50_ms'] <= target else 'FAIL'}" if target else ""
        figures = f"{stats['n']:>5} {stats['p50_ms']:>8.2f} {stats['p95_ms']:>8.2f} {stats['max_ms']:>8.1f}"
        lines.append(f"  {key:42} {figures}  {verdict}")
    return "\n".join(lines)


def proposal_ids(path: Path) -> list[str]:
    """The ids of the proposals of one generated NDJSON file, in file order."""
    with path.open(encoding="utf-8") as lines:
        return [rec["id"] for rec in map(json.loads, lines) if rec["kind"] == "proposal"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quads", type=int, default=2_000_000)
    parser.add_argument("--territories", type=int, default=5)
    parser.add_argument("--clients", type=int, default=2, help="Concurrent ingest clients.")
    parser.add_argument("--batch", type=int, default=5000, help="Records per ingest request.")
    parser.add_argument("--threads", type=int, default=8, help="Server threads.")
    parser.add_argument("--gets", type=int, default=500, help="GET-one requests per pass.")
    parser.add_argument(
        "--pair-quads", type=int, default=200_000, help="Quads per territory, two territories ingesting at once."
    )
    parser.add_argument("--keep", type=Path, default=None, help="Keep the work directory here.")
    parser.add_argument(
        "--results", type=Path, default=ROOT / "bench" / "results", help="Where latest.txt and latest.json go."
    )
    parser.add_argument("--no-backends", action="store_true", help="Skip the backends and workers sections.")
    parser.add_argument("--no-virtuoso", action="store_true", help="Skip Virtuoso in the backends section.")
    parser.add_argument("--no-linked", action="store_true", help="Skip the linked-data section.")
    parser.add_argument("--no-catalog", action="store_true", help="Skip the portal surfaces (catalog, CKAN API).")
    parser.add_argument("--catalog-datasets", type=int, default=10_000, help="Datasets of the portal-surfaces section.")
    parser.add_argument(
        "--no-imports", action="store_true", help="Skip the importers section (Decidim export, districts)."
    )
    parser.add_argument(
        "--import-proposals",
        type=int,
        # The figure (staged imports keep the memory bounded: docs/benchmarks.md).
        default=100_000,
        help="Proposals of the Decidim export imported (with twice as many comments, ten votes each).",
    )
    parser.add_argument("--no-federation", action="store_true", help="Skip the federation section (LDES sync).")
    parser.add_argument(
        "--federation-quads",
        type=int,
        default=1_000_000,
        help="Quads of the territory the federation section replicates.",
    )
    parser.add_argument("--no-indicators", action="store_true", help="Skip the indicators section (compare, upkeep).")
    parser.add_argument(
        "--indicators-quads", type=int, default=2_000_000, help="Quads of the indicators section's 100 territories."
    )
    parser.add_argument(
        "--indicators-rounds",
        type=int,
        default=5,
        help="Ingests of each side of the indicators' upkeep (the median counts).",
    )
    parser.add_argument(
        "--pin-cpu", action="store_true", help="Ingest and latency sections: serve with `civicfed serve --pin-cpu`."
    )
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="civicfed-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = fresh_data_dir(work / "data")
    print(f"generating ~{args.quads:,} quads of synthetic participation data in {work} …", flush=True)
    files = write(work / "ndjson", args.quads, args.territories)
    keys = setup(data_dir, [record for record, _, _ in files])

    print("ingesting through the API …", flush=True)
    server = Server(data_dir, args.threads, pin_cpu=args.pin_cpu)
    try:
        ingested = ingest(server, keys, files, args.batch, args.clients)
    finally:
        server.stop()

    print("raw pyoxigraph baselines on the same quads …", flush=True)
    raw = raw_baselines(data_dir, work)

    print("latency (fresh server: cold pass, then warm pass) …", flush=True)
    server = Server(data_dir, args.threads, pin_cpu=args.pin_cpu)
    try:
        lat = latency(server, files, args.gets)
    finally:
        server.stop()

    print("two territories ingesting concurrently vs one …", flush=True)
    pair = concurrent_territories(work, args.pair_quads, args.batch, args.threads)

    results: dict[str, Any] = {
        "concurrent_territories": pair,
        "store_quads": raw["quads"],
        "territories": args.territories,
        "clients": args.clients,
        "batch": args.batch,
        "pin_cpu": args.pin_cpu,
        "ingest": ingested,
        "raw": raw,
        "latency": lat,
    }
    text = report(results)

    def start(data: Path, store: str | None, workers: int, pin_cpu: bool = False) -> Server:
        return Server(data, args.threads, store=store, workers=workers, pin_cpu=pin_cpu)

    if not args.no_linked:
        from . import linked

        print("linked data: /sparql and dereferencing …", flush=True)
        ids = proposal_ids(files[0][1])
        random.Random(5).shuffle(ids)
        results["linked"] = linked.run_linked(data_dir, start, ids, free_port, args.threads)
        text += "\n" + linked.report(results["linked"])
        print(linked.report(results["linked"]), flush=True)
    if not args.no_catalog:
        from . import catalog

        print(f"portal surfaces at {args.catalog_datasets:,} datasets …", flush=True)
        results["catalog"] = catalog.run_catalog(work, args.threads, args.catalog_datasets)
        text += "\n" + catalog.report(results["catalog"])
        print(catalog.report(results["catalog"]), flush=True)
    if not args.no_imports:
        from . import districts, imports

        n = args.import_proposals
        print(f"importers: a Decidim export of {n:,} proposals, districts …", flush=True)
        results["imports"] = imports.run_imports(work, n, 2 * n, 10 * n)
        results["districts"] = districts.run()
        text += "\n" + imports.report(results["imports"]) + "\n" + districts.report(results["districts"])
        print("\n".join(text.splitlines()[-6:]), flush=True)
    if not args.no_federation:
        from . import federation

        print(
            f"federation: a territory of ~{args.federation_quads:,} quads replicated, then 1,000 changes …", flush=True
        )
        results["federation"] = federation.run_federation(work, args.federation_quads, threads=args.threads)
        text += "\n" + federation.report(results["federation"])
        print(federation.report(results["federation"]), flush=True)
    if not args.no_indicators:
        from . import indicators

        print(f"indicators: 100 territories, ~{args.indicators_quads:,} quads, compare …", flush=True)
        results["indicators"] = indicators.run_indicators(
            work, args.indicators_quads, threads=args.threads, rounds=args.indicators_rounds
        )
        text += "\n" + indicators.report(results["indicators"])
        print(indicators.report(results["indicators"]), flush=True)
    if not args.no_backends:
        from . import backends

        print("backends side by side, and workers …", flush=True)
        record, path, _ = files[0]
        proposal_urls = [
            f"https://bench.example/api/v1/territories/{record['id']}/proposals/{p}" for p in proposal_ids(path)
        ]
        random.Random(3).shuffle(proposal_urls)
        results["backends"] = backends.run_backends(
            work, work / "store.nq", data_dir, start, proposal_urls, free_port, with_virtuoso=not args.no_virtuoso
        )
        text += "\n" + backends.report(results["backends"])
    print(text)
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    (out / "latest.txt").write_text(text + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
