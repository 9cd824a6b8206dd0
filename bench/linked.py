"""Linked-data section of ``make bench`` (issue #4).

1. The four reference queries, public versions (what ``/sparql`` may see), run directly with
   pyoxigraph on the store (same dataset: the public graphs) and through ``POST /sparql`` over
   HTTP (JSON results), in the same run. Target: HTTP p50 ≤ direct p50 x 1.2 + 2 ms.
2. Dereferencing one proposal IRI (``GET /id/…``, Turtle): p50 (target ≤ 5 ms), and throughput
   with wrk (10 s, 16 connections) next to a bare Flask + pyoxigraph endpoint doing the same
   look-up under the same gunicorn settings (target ≥ 70%).
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from . import queries
from .backends import throughput, wait_for_workers

BASE = "https://bench.example"
RESULTS_JSON = "application/sparql-results+json"
TURTLE = "text/turtle"


def _public_queries(proposals: list[str]) -> dict[str, tuple[Callable[[int], str], int]]:
    graph = f"{BASE}/graph/bench-00"
    return {  # name: (query for run i, runs)
        "lookup": (lambda i: queries.lookup(graph, proposals[i % len(proposals)]), 200),
        "votes_per_theme": (lambda i: queries.votes_per_theme_public(), 10),
        "top10": (lambda i: queries.top_proposals(graph), 30),
        "title_search": (lambda i: queries.title_search("arbres"), 30),
    }


def _direct(store_dir: Path, plan: dict[str, tuple[Callable[[int], str], int]]) -> dict[str, dict[str, float]]:
    import pyoxigraph

    store = pyoxigraph.Store.read_only(str(store_dir))
    public = [g for g in store.named_graphs() if isinstance(g, pyoxigraph.NamedNode) and "/graph/" in g.value]
    out = {}
    for name, (make, runs) in plan.items():
        samples, rows = [], 0
        for i in range(-2, runs):  # two warm-up runs
            start = time.perf_counter()
            result = store.query(make(i), default_graph=public, named_graphs=public)
            names = [v.value for v in result.variables]
            rows = len([[s[v] for v in names] for s in result])
            if i >= 0:
                samples.append(time.perf_counter() - start)
        out[name] = {"p50_ms": statistics.median(samples) * 1000, "rows": rows}
    del store
    return out


def _over_http(url: str, plan: dict[str, tuple[Callable[[int], str], int]]) -> dict[str, dict[str, float]]:
    # A lean keep-alive client (http.client): requests spends ~0.5 ms per call of its own, which
    # would be counted as the server's overhead against an in-process baseline.
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    headers = {"Accept": RESULTS_JSON, "Content-Type": "application/x-www-form-urlencoded"}
    out = {}
    try:
        for name, (make, runs) in plan.items():
            samples, rows = [], 0
            parts: dict[str, list[float]] = {}
            for i in range(-2, runs):
                form = urllib.parse.urlencode({"query": make(i)})
                start = time.perf_counter()
                conn.request("POST", "/sparql", body=form, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                elapsed = time.perf_counter() - start
                if resp.status != 200:
                    raise RuntimeError(f"/sparql {name}: {resp.status} {body[:300]!r}")
                if i >= 0:
                    samples.append(elapsed)
                    rows = len(json.loads(body)["results"]["bindings"])
                    timing = _server_timing(resp.getheader("Server-Timing", ""))
                    # The rest: HTTP both ways, gunicorn, Flask and the endpoint's own code.
                    timing["rest"] = elapsed * 1000 - sum(timing.values())
                    for part, ms in timing.items():
                        parts.setdefault(part, []).append(ms)
            out[name] = {
                "p50_ms": statistics.median(samples) * 1000,
                "rows": rows,
                "parts_p50_ms": {part: statistics.median(ms) for part, ms in parts.items()},
            }
    finally:
        conn.close()
    return out


def _server_timing(field: str) -> dict[str, float]:
    """``read;dur=0.02, wait;dur=0.01, …`` (W3C Server Timing) as {name: milliseconds}."""
    out = {}
    for item in filter(None, (part.strip() for part in field.split(","))):
        name, _, duration = item.partition(";dur=")
        out[name] = float(duration or 0)
    return out


def _deref_latency(url: str, paths: list[str]) -> dict[str, float]:
    out = {}
    with requests.Session() as http:
        http.headers["Accept"] = TURTLE
        for name in ("cold", "warm"):
            samples = []
            for p in paths:
                start = time.perf_counter()
                resp = http.get(url + p, timeout=60)
                samples.append(time.perf_counter() - start)
                if resp.status_code != 200 or not resp.headers["Content-Type"].startswith(TURTLE):
                    raise RuntimeError(f"{p}: {resp.status_code} {resp.text[:300]}")
            out[f"{name}_p50_ms"] = statistics.median(samples) * 1000
            out[f"{name}_p95_ms"] = statistics.quantiles(samples, n=20)[18] * 1000
    return out


class BareServer:
    def __init__(
        self, store_dir: Path, port: int, workers: int, threads: int, log: Path, pin_cpu: bool = False
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        offset = log.stat().st_size if log.exists() else 0
        self.log = log.open("ab")
        args = [str(store_dir), BASE, str(port), str(workers), str(threads), *(["pin"] if pin_cpu else [])]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bare", *args],
            stdout=self.log,
            stderr=self.log,
            cwd=Path(__file__).parent.parent,
        )
        for _ in range(300):
            try:
                requests.get(self.url + "/ping", timeout=5)
                wait_for_workers(log, offset, workers, self.proc)
                return
            except requests.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"bare server did not start: see {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def _api_under_sparql_load(
    url: str, paths: list[str], *, polite: bool, clients: int = 10, seconds: float = 10.0
) -> dict[str, Any]:
    """JSON API GET one record, p95, idle and while ``clients`` clients each keep a heavy SPARQL
    query going (each runs until the time limit, or is refused when the queue is full).

    ``polite`` clients wait the ``Retry-After`` of a refusal before sending again, as a client of
    an HTTP API should: ten heavy queries at all times. Impolite ones send again at once: a flood
    of refused requests, each of which still costs the server a request's work."""

    def p95_of(n: int) -> float:
        samples = []
        with requests.Session() as http:
            for path in (paths * (n // len(paths) + 1))[:n]:
                started = time.perf_counter()
                http.get(url + path, timeout=60).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
        return statistics.quantiles(samples, n=20)[18]

    idle = p95_of(200)
    stop = time.monotonic() + seconds
    answers: list[int] = []

    def hammer() -> None:
        with requests.Session() as http:
            while time.monotonic() < stop:
                answer = http.post(url + "/sparql", data={"query": HEAVY}, timeout=60)
                answers.append(answer.status_code)
                if polite and answer.status_code == 503:
                    time.sleep(min(float(answer.headers.get("Retry-After", 1)), max(0.0, stop - time.monotonic())))

    pool = [threading.Thread(target=hammer) for _ in range(clients)]
    for t in pool:
        t.start()
    time.sleep(1.0)  # the queries are running, waiting, or being refused
    loaded = p95_of(200)
    for t in pool:
        t.join(120)
    refused = sum(1 for a in answers if a == 503)
    return {"idle_p95_ms": idle, "loaded_p95_ms": loaded, "sparql_answers": len(answers), "sparql_503": refused}


def run_linked(
    data_dir: Path,
    start_server: Callable[..., Any],
    proposal_ids: list[str],
    free_port: Callable[[], int],
    threads: int,
) -> dict[str, Any]:
    proposals = [f"{BASE}/id/bench-00/proposal/{p}" for p in proposal_ids]
    paths = [f"/id/bench-00/proposal/{p}" for p in proposal_ids[:500]]
    plan = _public_queries(proposals)
    results: dict[str, Any] = {"direct": _direct(data_dir / "oxigraph", plan)}
    server = start_server(data_dir, None, 1)
    try:
        results["http"] = _over_http(server.url, plan)
        results["deref"] = _deref_latency(server.url, paths)
        api_paths = [f"/api/v1/territories/bench-00/proposals/{p}" for p in proposal_ids[:200]]
        results["isolation"] = _api_under_sparql_load(server.url, api_paths, polite=True)
        results["isolation_flood"] = _api_under_sparql_load(server.url, api_paths, polite=False)
        results["throughput"] = {"civicfed, 1 worker": throughput(server.url, paths, accept=TURTLE)}
    finally:
        server.stop()
    server = start_server(data_dir, None, 1, pin_cpu=True)
    try:
        results["throughput"]["civicfed, 1 worker, --pin-cpu"] = throughput(server.url, paths, accept=TURTLE)
    finally:
        server.stop()
    for workers, pin in ((1, False), (1, True), (2, False)):
        bare = BareServer(data_dir / "oxigraph", free_port(), workers, threads, data_dir / "bare.log", pin)
        try:
            key = f"bare Flask + pyoxigraph, {workers} worker{'s' if workers > 1 else ''}{', pinned' if pin else ''}"
            results["throughput"][key] = throughput(bare.url, paths, accept=TURTLE)
        finally:
            bare.stop()
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "",
        "SPARQL through /sparql over HTTP vs directly with pyoxigraph (same store, public graphs; p50 ms)",
        f"  {'':20} {'direct':>10} {'HTTP':>10} {'overhead':>10} {'rows':>6}  target HTTP ≤ direct x 1.2 + 2 ms",
    ]
    for name, direct in results["direct"].items():
        http = results["http"][name]
        limit = direct["p50_ms"] * 1.2 + 2
        verdict = "PASS" if http["p50_ms"] <= limit else "FAIL"
        overhead = http["p50_ms"] - direct["p50_ms"]
        lines.append(
            f"  {name:20} {direct['p50_ms']:>10.2f} {http['p50_ms']:>10.2f} {overhead:>+10.2f} {http['rows']:>6}"
            f"  ≤ {limit:.2f}: {verdict}"
        )
    lines.append("  where the HTTP time goes (Server-Timing medians, ms): read the text, wait for a process,")
    lines.append("  run (query + result writing, in the process), hand-off (job out, result back), rest (HTTP, Flask)")
    for name, http in results["http"].items():
        parts = http.get("parts_p50_ms", {})
        cells = "  ".join(f"{part} {ms:.2f}" for part, ms in parts.items())
        lines.append(f"  {name:20} {cells}")
    iso, flood = results["isolation"], results["isolation_flood"]
    verdict = "PASS" if iso["loaded_p95_ms"] <= 2 * iso["idle_p95_ms"] else "FAIL"
    lines += [
        "",
        "JSON API GET one record while 10 clients each keep a heavy SPARQL query going (p95 ms)",
        f"  clients that wait Retry-After when refused: idle {iso['idle_p95_ms']:.2f}, under load "
        f"{iso['loaded_p95_ms']:.2f}  target ≤ 2 x idle: {verdict}  ({iso['sparql_answers']} SPARQL answers, "
        f"{iso['sparql_503']} of them 503)",
        f"  clients that send again at once (a flood of refusals): idle {flood['idle_p95_ms']:.2f}, under load "
        f"{flood['loaded_p95_ms']:.2f} = {flood['loaded_p95_ms'] / flood['idle_p95_ms']:.1f}x  "
        f"({flood['sparql_answers']} SPARQL answers, {flood['sparql_503']} of them 503; rate limits answer those)",
    ]
    d = results["deref"]
    lines += [
        "",
        "dereferencing one IRI (GET /id/…, Accept: text/turtle, one keep-alive client)",
        f"  cold p50 {d['cold_p50_ms']:.2f} ms (p95 {d['cold_p95_ms']:.2f}), warm p50 {d['warm_p50_ms']:.2f} ms "
        f"(p95 {d['warm_p95_ms']:.2f})  target p50 ≤ 5 ms: {'PASS' if d['cold_p50_ms'] <= 5 else 'FAIL'}",
        "throughput (16 connections, 10 s, loopback, same gunicorn settings)",
    ]
    tp = results["throughput"]
    for name, rps in tp.items():
        lines.append(f"  {name:40} {rps:>10,.0f} requests/s")
    ours, bare = tp["civicfed, 1 worker"], tp["bare Flask + pyoxigraph, 1 worker"]
    ratio = ours / bare
    lines.append(
        f"  civicfed / bare (1 worker each) = {ratio:.0%}  (target ≥ 70%: {'PASS' if ratio >= 0.7 else 'FAIL'})"
    )
    pinned = tp["civicfed, 1 worker, --pin-cpu"] / tp["bare Flask + pyoxigraph, 1 worker, pinned"]
    lines.append(f"  civicfed / bare, both with request threads on one CPU = {pinned:.0%}")
    return "\n".join(lines)
