"""Backends side by side: the same quads in the embedded store, an Oxigraph server and Virtuoso.

Each backend gets the N-Quads dump of the benchmark store through its own bulk loader; then the
four reference queries run through civicfed's store interface (what every surface uses), and
the JSON API reads are timed with civicfed serving from each backend.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from server.store import Store, open_store

from . import queries

ROOT = Path(__file__).resolve().parent.parent


def oxigraph_binary() -> str:
    local = Path(sys.executable).parent / "oxigraph"
    found = str(local) if local.exists() else shutil.which("oxigraph")
    if not found:
        raise RuntimeError("the oxigraph server is not installed (pip install oxigraph)")
    return found


class OxigraphServer:
    def __init__(self, location: Path, dump: Path, port: int) -> None:
        binary = oxigraph_binary()
        start = time.perf_counter()
        subprocess.run(
            [binary, "load", "--location", str(location), "--file", str(dump)], check=True, capture_output=True
        )
        self.load_seconds = time.perf_counter() - start
        self.proc = subprocess.Popen(
            [binary, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}/query"
        for _ in range(300):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                return
            except requests.ConnectionError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Oxigraph server on port {port} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def shared_tools() -> Path:
    """The shared tools beside the project (CIVICFED_SHARED overrides)."""
    for candidate in (os.environ.get("CIVICFED_SHARED"), ROOT.parent / "shared"):
        if candidate and (Path(candidate) / "tools").is_dir():
            return Path(candidate) / "tools"
    return ROOT.parent / "shared" / "tools"


class Virtuoso:
    """Virtuoso Open Source via ../shared/tools/virtuoso/start.sh, loaded with its bulk loader."""

    def __init__(self, work: Path, dump: Path, http_port: int, isql_port: int) -> None:
        script = shared_tools() / "virtuoso" / "start.sh"
        if not script.exists():
            raise RuntimeError(f"{script} is not there")
        # start.sh installs Virtuoso when it is missing; a benchmark must not change the machine.
        missing = [tool for tool in ("virtuoso-t", "isql-vt") if not shutil.which(tool)]
        if missing:
            raise RuntimeError(
                f"Virtuoso is not installed ({', '.join(missing)} not found;"
                " to use it: apt-get install virtuoso-opensource)"
            )
        self.dir, self.isql_port = work, isql_port
        (work / "load").mkdir(parents=True, exist_ok=True)
        shutil.copy(dump, work / "load" / "store.nq")
        out = subprocess.run(
            ["bash", str(script), str(work), str(http_port), str(isql_port)], check=True, capture_output=True, text=True
        )
        self.url = out.stdout.strip().splitlines()[-1]
        start = time.perf_counter()
        self.isql(f"ld_dir('{work / 'load'}', '*.nq', 'urn:default'); rdf_loader_run(); checkpoint;")
        self.load_seconds = time.perf_counter() - start

    def isql(self, command: str) -> None:
        subprocess.run(
            ["isql-vt", f"127.0.0.1:{self.isql_port}", "dba", "dba", f"exec={command}"],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.isql("shutdown;")


def time_query(store: Store, sparql: str, runs: int) -> dict[str, float]:
    store.select(sparql)  # warm-up (and a check that it runs)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        rows = store.select(sparql)
        samples.append(time.perf_counter() - start)
    return {"p50_ms": statistics.median(samples) * 1000, "min_ms": min(samples) * 1000, "rows": len(rows)}


def reference_queries(store: Store, base: str, territory: str, proposal: str, runs: int = 7) -> dict[str, Any]:
    graph = f"{base}/graph/{territory}"
    return {
        "lookup": time_query(store, queries.lookup(graph, proposal), runs * 5),
        "votes_per_theme": time_query(store, queries.votes_per_theme(), max(3, runs // 2)),
        "top10": time_query(store, queries.top_proposals(graph), runs),
        "title_search": time_query(store, queries.title_search("arbres"), runs),
    }


def api_reads(url: str, proposal_urls: list[str], n: int) -> dict[str, float]:
    """p50 of GET one record and of a first list page, one keep-alive client, warm."""
    with requests.Session() as http:
        for u in proposal_urls[:n]:
            http.get(u, timeout=60)
        gets = []
        for u in proposal_urls[:n]:
            start = time.perf_counter()
            http.get(u, timeout=60).raise_for_status()
            gets.append(time.perf_counter() - start)
        lists = []
        for _ in range(30):
            start = time.perf_counter()
            http.get(f"{url}/api/v1/territories/bench-00/proposals?limit=50", timeout=60).raise_for_status()
            lists.append(time.perf_counter() - start)
    return {"get_p50_ms": statistics.median(gets) * 1000, "list_p50_ms": statistics.median(lists) * 1000}


def wait_for_workers(
    log: Path,
    offset: int,
    workers: int,
    proc: subprocess.Popen[bytes],
    timeout: float = 300,
    pattern: bytes = rb"worker (\d+) ready",
) -> None:
    """Return once every worker of a server started by ``server/serve.py`` logged that it is ready
    (the log read from ``offset``): with SO_REUSEPORT the kernel also hands connections to the
    socket of a worker still loading, and a run started early measures fewer workers. With
    another ``pattern``: once each logged that (it prepared its catalog…)."""
    deadline = time.monotonic() + timeout
    ready: set[bytes] = set()
    while time.monotonic() < deadline:
        with log.open("rb") as f:
            f.seek(offset)
            ready = set(re.findall(pattern, f.read()))
        if len(ready) >= workers:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: see {log}")
        time.sleep(0.1)
    raise RuntimeError(f"{workers - len(ready)} worker(s) not ready after {timeout:g} s: see {log}")


def throughput(
    url: str, paths: list[str], seconds: int = 10, connections: int = 16, accept: str | None = None
) -> float:
    """Requests per second of GETs over these paths, with wrk if installed, else a threaded client."""
    wrk = shutil.which("wrk")
    if wrk:
        script = Path(os.environ.get("TMPDIR", "/tmp")) / "civicfed-bench-paths.lua"
        lines = ",".join(f'"{p}"' for p in paths)
        headers = f'{{["Accept"] = "{accept}"}}' if accept else "nil"
        script.write_text(
            f"paths = {{{lines}}}\ni = 0\nrequest = function()\n  i = i % #paths + 1\n"
            f'  return wrk.format("GET", paths[i], {headers})\nend\n'
        )
        out = subprocess.run(
            [wrk, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError(f"the throughput run had errors:\n{out}")
        for line in out.splitlines():
            if line.startswith("Requests/sec:"):
                return float(line.split()[1])
        raise RuntimeError(out)
    return _python_load(url, paths, seconds, connections, accept)


def _python_load(url: str, paths: list[str], seconds: int, connections: int, accept: str | None = None) -> float:
    import concurrent.futures

    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> int:
        done = 0
        with requests.Session() as http:
            if accept:
                http.headers["Accept"] = accept
            while time.perf_counter() < deadline:
                http.get(url + paths[(offset + done) % len(paths)], timeout=60)
                done += 1
        return done

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(worker, range(connections)))
    return total / (time.perf_counter() - start)


def run_backends(
    work: Path,
    dump: Path,
    data_dir: Path,
    start_server: Callable[..., Any],
    proposal_urls: list[str],
    free_port: Callable[[], int],
    with_virtuoso: bool = True,
) -> dict[str, Any]:
    base = "https://bench.example"
    proposal = proposal_urls[0].split("/proposals/")[1]
    proposal_iri = f"{base}/id/bench-00/proposal/{proposal}"
    paths = ["/" + u.split("/", 3)[3] for u in proposal_urls[:500]]
    results: dict[str, Any] = {"backends": {}, "workers": {}}

    # Embedded: queries in-process through the store interface (nothing else may open it meanwhile).
    embedded = open_store(str(data_dir / "oxigraph"))
    results["backends"]["embedded"] = {"queries": reference_queries(embedded, base, "bench-00", proposal_iri)}
    embedded.close()
    del embedded
    server = start_server(data_dir, None, 1)
    try:
        results["backends"]["embedded"]["api"] = api_reads(server.url, _at(proposal_urls, server.url), 300)
        results["workers"]["embedded, 1 worker"] = throughput(server.url, paths)
    finally:
        server.stop()
    server = start_server(data_dir, None, 1, pin_cpu=True)
    try:
        results["workers"]["embedded, 1 worker, --pin-cpu"] = throughput(server.url, paths)
    finally:
        server.stop()

    def remote(url: str, load_seconds: float) -> dict[str, Any]:
        """The reference queries through the store interface, then the API reads, on a remote store."""
        store = open_store(url)
        try:
            queries = reference_queries(store, base, "bench-00", proposal_iri)
        finally:
            store.close()
        out: dict[str, Any] = {"load_seconds": load_seconds, "queries": queries}
        server = start_server(data_dir, url, 1)
        try:
            out["api"] = api_reads(server.url, _at(proposal_urls, server.url), 300)
        finally:
            server.stop()
        return out

    oxi = OxigraphServer(work / "oxigraph-server", dump, free_port())
    try:
        results["backends"]["oxigraph-server"] = remote(oxi.url, oxi.load_seconds)
        for workers in (1, 2, 4):
            server = start_server(data_dir, oxi.url, workers)
            try:
                results["workers"][f"oxigraph-server, {workers} worker{'s' if workers > 1 else ''}"] = throughput(
                    server.url, paths
                )
            finally:
                server.stop()
    finally:
        oxi.stop()

    if with_virtuoso:
        try:
            virt = Virtuoso(work / "virtuoso", dump, free_port(), free_port())
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            results["backends"]["virtuoso"] = {"skipped": str(exc)}
        else:
            try:
                results["backends"]["virtuoso"] = remote(virt.url, virt.load_seconds)
            finally:
                virt.stop()
    return results


def _at(urls: list[str], server_url: str) -> list[str]:
    return [server_url + "/" + u.split("/", 3)[3] for u in urls]


def report(results: dict[str, Any]) -> str:
    names = list(results["backends"])
    lines = ["", "backends side by side (same quads; queries through civicfed's store interface; p50 ms)"]
    header = f"  {'':28}" + "".join(f"{n:>18}" for n in names)
    lines.append(header)
    for q in ("lookup", "votes_per_theme", "top10", "title_search"):
        row = f"  {q:28}"
        for n in names:
            b = results["backends"][n]
            row += f"{b['queries'][q]['p50_ms']:>18.2f}" if "queries" in b else f"{'skipped':>18}"
        lines.append(row)
    for key, label in (("get_p50_ms", "API GET one"), ("list_p50_ms", "API list page")):
        row = f"  {label:28}"
        for n in names:
            b = results["backends"][n]
            row += f"{b['api'][key]:>18.2f}" if "api" in b else f"{'skipped':>18}"
        lines.append(row)
    for n in names:
        b = results["backends"][n]
        if "skipped" in b:
            lines.append(f"  {n}: skipped — {b['skipped']}")
        elif "load_seconds" in b:
            lines.append(f"  {n}: bulk load of the dump {b['load_seconds']:.1f} s")
    lines += ["", "JSON API throughput, GET one record (16 connections, 10 s, loopback)"]
    for name, rps in results["workers"].items():
        lines.append(f"  {name:32} {rps:>10,.0f} requests/s")
    return "\n".join(lines)
