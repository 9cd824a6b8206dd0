"""Soak benchmark of ``make soak``: a mixed load for minutes on one server, watched for errors,
slowdowns and memory growth (issue 8).

``python -m bench.soak [--minutes 10] [--results DIR]``

1. Generate synthetic territories (bench/generate.py; ~35,000 records by default), create them
   with an editor key each, start ``civicfed serve`` (gunicorn, embedded Oxigraph: one worker
   process with threads, the only way to serve the embedded store) on loopback in its own 0700 data
   directory, and ingest them through the API. Then restart it, so that what follows starts from
   a fresh process.
2. Memory after large requests: the worker's RSS at rest, then one large request at a time — an
   NDJSON ingest of ``--large-mb`` MiB with many bad lines (refused as a whole: 422, nothing
   written, so it can be sent again), every page of a territory's votes 1,000 at a time, the
   territory's whole N-Quads dump — with the peak sampled during it and the RSS ``--settle``
   seconds after. ``--rounds`` rounds (2): the first also fills what the process keeps on purpose
   (the record cache, RocksDB's block cache…), the next show whether memory keeps growing.
3. The mixed load, ``--minutes`` long, all at once: JSON API reads (GET one record; list pages
   with filters, search, bounding boxes, incremental sync, cursors), writes (PUT, PATCH, new
   comments), small SPARQL queries in every result format, linked-data dereferences with content
   negotiation, dump downloads (gzip or not, conditional), and once a period (one minute, or half
   the run when shorter) a bulk NDJSON ingest, a query that runs into the SPARQL time limit and a
   burst of queries that overfills the SPARQL gate (503 at once). The period's events happen at
   the same offsets in every period, so the first and the last minute see the same mix.
4. Per request kind: count, errors (any 5xx, a refused connection, a status the request should
   not get), the refusals that are part of the design counted apart (503 from the SPARQL gate or
   time limit), and latency p50/p95/p99 in the first and in the last minute; the RSS of the
   server's processes (gunicorn master, worker, SPARQL query processes, ingest validation
   processes; from /proc) every two seconds; what the server log says (tracebacks, errors,
   restarted workers). Printed, and written to ``--results``: soak.txt, soak.json, soak-server.log.

Pass criteria, printed as PASS/FAIL: no error; nothing wrong in the server log (the exit status
says these two); API GET p95 in the last minute ≤ 2 x the first minute's; master + worker RSS at
the end ≤ 1.5 x after the first minute (no leak); worker RSS after the large requests ≤ 1.25 x its
baseline. The figures of a machine shared with other work are noisy: latency in particular.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import queries
from .backends import wait_for_workers
from .generate import write
from .linked import HEAVY
from .run import free_port, fresh_data_dir, ingest, setup

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://bench.example"
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 1024 * 1024

THEMES = ["mobility", "environment", "green_spaces", "culture", "sport", "social", "education", "energy"]
STATUSES = ["published", "evaluating", "accepted", "rejected", "selected", "implemented"]
WORDS = ["arbres", "vélo", "parc", "école", "rue", "jardin"]
RDF_TYPES = ["text/turtle", "application/ld+json", "application/rdf+xml", "application/n-triples", "text/html"]
SUFFIXES = [".ttl", ".jsonld", ".rdf", ".nt", ".html"]
DUMP_KINDS = {  # kind: located (has a geojson dump)
    "proposals": True,
    "comments": False,
    "meetings": True,
    "projects": True,
    "processes": False,
    "organizations": False,
}
DUMP_FORMATS = ["csv", "json", "ttl", "jsonld", "nt"]
RESULT_TYPES = [
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
]
#: Runs past any time limit: every triple joined with every other twice.
TIME_LIMIT_QUERY = HEAVY
#: A second or so of work each: what a burst sends to overfill the SPARQL gate.
BURST_QUERIES = [
    "SELECT ?s ?p ?o WHERE { ?s ?p ?o }",  # cut at the row cap
    queries.votes_per_theme_public(),
    "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o . ?s ?q ?r }",
]


# -- the server ---------------------------------------------------------------------------------
class SoakServer:
    """``civicfed serve`` in a process group of its own: stopping it ends the master, its worker
    and the worker's query processes, whatever state they are in."""

    def __init__(self, data_dir: Path, threads: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log = self.log_path.open("ab")
        environ = {**os.environ, "CIVICFED_DATA_DIR": str(data_dir), "CIVICFED_BASE_URI": BASE}
        # One client sending thousands of requests is what rate limits stop: they are off here.
        environ["CIVICFED_RATELIMIT_ENABLED"] = "false"
        environ.update(env)
        command = ["serve", "--port", str(self.port), "--threads", str(threads), "--workers", "1"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *command],
            env=environ,
            stdout=self.log,
            stderr=self.log,
            cwd=ROOT,
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/api/v1/territories", timeout=30).raise_for_status()
                wait_for_workers(self.log_path, self.log_offset, 1, self.proc)
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server did not start: see {self.log_path}") from None
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout:g} s: see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        # Whatever of the group outlived the master (a query process of a killed worker).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.log.close()

    def log_text(self) -> str:
        with self.log_path.open("rb") as f:
            f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")


# -- memory (/proc) -------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


#: What the worker starts, by the module it runs.
HELPERS = {b"server.sparql.worker": "sparql", b"server.ingest.worker": "validators"}


def server_processes(pgid: int) -> dict[str, list[tuple[int, int]]]:
    """(pid, RSS bytes) of the processes of the server's group, by role: the gunicorn master (the
    group leader), its workers (its children), and what a worker starts: SPARQL query processes
    and the processes validating large ingests."""
    roles: dict[str, list[tuple[int, int]]] = {"master": [], "workers": [], "sparql": [], "validators": [], "other": []}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        ppid, group = int(fields[1]), int(fields[2])
        if group != pgid:
            continue
        rss = _rss(pid)
        if rss is None:
            continue
        if pid == pgid:
            role = "master"
        elif ppid == pgid:
            role = "workers"
        else:
            command = _cmdline(pid)
            role = next((r for module, r in HELPERS.items() if module in command), "other")
        roles[role].append((pid, rss))
    return roles


#: The rows of the RSS table: sums of these roles.
RSS_ROWS = {
    "master": ("master",),
    "worker": ("workers",),
    "server": ("master", "workers"),
    "sparql": ("sparql",),
    "validators": ("validators",),
    "total": ("master", "workers", "sparql", "validators", "other"),
}


@dataclass
class RssSample:
    t: float
    rss: dict[str, int]  # role → bytes
    counts: dict[str, int]  # role → processes
    worker_pids: list[int]

    def row(self, name: str) -> int:
        return sum(self.rss[role] for role in RSS_ROWS[name])


def rss_sample(pgid: int, t: float) -> RssSample:
    roles = server_processes(pgid)
    return RssSample(
        t=t,
        rss={role: sum(r for _, r in found) for role, found in roles.items()},
        counts={role: len(found) for role, found in roles.items()},
        worker_pids=sorted(p for p, _ in roles["workers"]),
    )


class Sampler(threading.Thread):
    """Samples ``measure()`` every ``every`` seconds until stopped."""

    def __init__(self, measure: Callable[[], Any], every: float) -> None:
        super().__init__(daemon=True)
        self.measure, self.every = measure, every
        self.samples: list[Any] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(self.measure())
            if self.halt.wait(self.every):
                return

    def stop(self) -> list[Any]:
        self.halt.set()
        self.join(10)
        return self.samples


# -- recording requests ---------------------------------------------------------------------------
@dataclass
class Outcome:
    t: float  # seconds since the load started, when the request was sent
    kind: str
    seconds: float
    status: int | None  # None: no answer (connection error, timeout)
    verdict: str  # "ok", "refused: …" (expected), "error: …"


@dataclass
class Recorder:
    t0: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome, method: str, url: str, detail: str) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            if outcome.verdict.startswith("error") and len(self.examples) < 20:
                self.examples.append(
                    {
                        "t": round(outcome.t, 2),
                        "kind": outcome.kind,
                        "request": f"{method} {url}",
                        "status": outcome.status,
                        "detail": detail[:500],
                    }
                )


def sparql_refusal(resp: requests.Response) -> str | None:
    """503s that are the SPARQL endpoint's design, not failures: the gate full (refused at once),
    a wait for a query process past the time limit, a query past the time limit."""
    if resp.status_code != 503:
        return None
    text = resp.text
    if "queue is full" in text:
        return "503 gate full"
    if "every SPARQL worker is busy" in text:
        return "503 waited past the time limit"
    if "was stopped" in text:
        return "503 time limit"
    return None


def call(
    rec: Recorder,
    http: requests.Session,
    kind: str,
    method: str,
    url: str,
    expect: tuple[int, ...] = (200,),
    refusal: Callable[[requests.Response], str | None] | None = None,
    check: Callable[[requests.Response], str | None] | None = None,
    timeout: float = 120,
    **kwargs: Any,
) -> requests.Response | None:
    """Send one request, read the whole answer, record its latency and verdict."""
    sent = time.monotonic()
    start = time.perf_counter()
    try:
        resp = http.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        elapsed = time.perf_counter() - start
        rec.add(Outcome(sent - rec.t0, kind, elapsed, None, f"error: {type(exc).__name__}"), method, url, str(exc))
        return None
    elapsed = time.perf_counter() - start
    verdict = "ok"
    if resp.status_code not in expect:
        reason = refusal(resp) if refusal else None
        verdict = f"refused: {reason}" if reason else f"error: {resp.status_code}"
    elif check is not None:
        problem = check(resp)
        if problem:
            verdict = f"error: {problem}"
    detail = "" if verdict == "ok" else resp.text[:500]
    rec.add(Outcome(sent - rec.t0, kind, elapsed, resp.status_code, verdict), method, url, detail)
    return resp


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    q = [ordered[0]] * 99 if len(ordered) == 1 else statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


# -- the data the load works on -------------------------------------------------------------------
@dataclass
class Territory:
    id: str
    key: str
    records: dict[str, list[dict[str, Any]]]  # kind → NDJSON records

    @property
    def graph(self) -> str:
        return f"{BASE}/graph/{self.id}"


def read_territories(files: list[tuple[dict[str, Any], Path, int]], keys: dict[str, str]) -> list[Territory]:
    out = []
    for record, path, _ in files:
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                item = json.loads(line)
                by_kind[item["kind"]].append(item)
        out.append(Territory(record["id"], keys[record["id"]], dict(by_kind)))
    return out


def as_put(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("kind", "id")}


def large_bad_ndjson(t: Territory, size: int) -> bytes:
    """About ``size`` bytes of NDJSON, four lines in five bad (malformed, unknown kind, dangling
    reference, invalid code): the batch is refused as a whole (422), nothing is written."""
    proposals = t.records["proposal"]
    lines: list[bytes] = []
    total = i = 0
    while total < size:
        p = proposals[i % len(proposals)]
        form = i % 5
        if form == 0:
            item: Any = {**p, "title": f"{p['title']} (révision {i})"}
        elif form == 1:
            item = f'{{"kind": "proposal", "id": "broken-{i}", "process": "{p["process"]}", "title": "Bancs'
        elif form == 2:
            item = {"kind": "petition", "id": f"petition-{i}", "title": "Une pétition " * 8}
        elif form == 3:
            item = {
                "kind": "comment",
                "id": f"dangling-{i}",
                "about": {"kind": "proposal", "id": f"missing-{i}"},
                "body": "Quelle proposition ? " * 6,
                "author": f"user-{i}",
            }
        else:
            item = {**p, "id": f"bad-theme-{i}", "themes": ["not-a-theme"]}
        line = (item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)).encode()
        lines.append(line)
        total += len(line) + 1
        i += 1
    return b"\n".join(lines) + b"\n"


# -- phase 2: memory after large requests ---------------------------------------------------------
def worker_pid(server: SoakServer) -> int:
    workers = server_processes(server.pgid)["workers"]
    if len(workers) != 1:
        raise RuntimeError(f"expected one worker process, found {len(workers)}")
    return workers[0][0]


def warm_up(server: SoakServer, territories: list[Territory]) -> None:
    """A few requests of every kind the load sends (imports, first SPARQL query process, caches)."""
    rec = Recorder()
    with requests.Session() as http:
        for t in territories:
            for p in t.records["proposal"][:20]:
                call(rec, http, "warm", "GET", f"{server.url}/api/v1/territories/{t.id}/proposals/{p['id']}")
                call(rec, http, "warm", "GET", f"{server.url}/id/{t.id}/proposal/{p['id']}")
            call(rec, http, "warm", "GET", f"{server.url}/api/v1/territories/{t.id}/proposals?theme=mobility")
            call(rec, http, "warm", "GET", f"{server.url}/dumps/{t.id}/proposals.csv")
            call(rec, http, "warm", "POST", f"{server.url}/sparql", data={"query": queries.top_proposals(t.graph)})
            body = "\n".join(json.dumps(c, ensure_ascii=False) for c in t.records["comment"][:50]).encode()
            headers = {"Authorization": f"Bearer {t.key}", "Content-Type": "application/x-ndjson"}
            call(
                rec, http, "warm", "POST", f"{server.url}/api/v1/territories/{t.id}/ingest", data=body, headers=headers
            )
    bad = [o for o in rec.outcomes if o.verdict != "ok"]
    if bad:
        raise RuntimeError(f"warm-up requests failed: {bad[:5]}")


def at_rest(pid: int, seconds: float) -> int:
    """The worker's RSS after ``seconds`` of quiet: the median of five samples over the last second."""
    time.sleep(max(0.0, seconds - 1))
    samples = []
    for _ in range(5):
        rss = _rss(pid)
        if rss is None:
            raise RuntimeError(f"the worker {pid} is gone")
        samples.append(rss)
        time.sleep(0.2)
    return int(statistics.median(samples))


def large_requests(server: SoakServer, t: Territory, size: int) -> list[tuple[str, Callable[[], str]]]:
    """The large requests: (name, send → a short description of the answer)."""
    auth = {"Authorization": f"Bearer {t.key}"}
    body = large_bad_ndjson(t, size)

    def bad_ingest() -> str:
        resp = requests.post(
            f"{server.url}/api/v1/territories/{t.id}/ingest",
            data=body,
            headers={**auth, "Content-Type": "application/x-ndjson"},
            timeout=600,
        )
        report = resp.json()
        if resp.status_code != 422 or report.get("written"):
            raise RuntimeError(f"the large bad ingest: {resp.status_code} {resp.text[:300]}")
        return (
            f"{resp.status_code}, {report['rejected']:,} of {report['rejected'] + report['accepted']:,} lines rejected"
        )

    def vote_pages() -> str:
        url: str | None = f"{server.url}/api/v1/territories/{t.id}/votes?limit=1000"
        pages = records = 0
        with requests.Session() as http:
            while url:
                resp = http.get(url, headers=auth, timeout=600)
                resp.raise_for_status()
                page = resp.json()
                pages, records = pages + 1, records + len(page["items"])
                url = page["next"] and page["next"].replace(BASE, server.url)
        return f"{pages} pages, {records:,} votes"

    def nquads_dump() -> str:
        size = 0
        with requests.get(
            f"{server.url}/dumps/{t.id}.nq", headers={"Accept-Encoding": "identity"}, stream=True, timeout=600
        ) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(1 << 16):
                size += len(chunk)
        return f"{size / MIB:.1f} MiB"

    return [
        (f"NDJSON ingest of {len(body) / MIB:.1f} MiB, 4 lines in 5 bad", bad_ingest),
        (f"every page of /territories/{t.id}/votes, limit=1000", vote_pages),
        (f"/dumps/{t.id}.nq", nquads_dump),
    ]


def memory_phase(
    server: SoakServer, territories: list[Territory], size: int, settle: float, rounds: int
) -> dict[str, Any]:
    pid = worker_pid(server)
    start = _rss(pid) or 0
    warm_up(server, territories)
    baseline = at_rest(pid, settle)
    done: list[dict[str, Any]] = []
    plan = large_requests(server, territories[0], size)
    for number in range(1, rounds + 1):
        before_round = at_rest(pid, 1) if number > 1 else baseline
        steps = []
        for name, send in plan:
            before = _rss(pid) or 0
            sampler = Sampler(lambda: _rss(pid) or 0, 0.02)
            sampler.start()
            started = time.perf_counter()
            try:
                answer = send()
            finally:
                peak = max(sampler.stop())
            seconds = time.perf_counter() - started
            after = at_rest(pid, settle)
            steps.append(
                {"request": name, "answer": answer, "seconds": seconds, "before": before, "peak": peak, "after": after}
            )
        done.append(
            {
                "round": number,
                "before": before_round,
                "peak": max(s["peak"] for s in steps),
                "after": steps[-1]["after"],
                "steps": steps,
            }
        )
    if worker_pid(server) != pid:
        raise RuntimeError("the worker was replaced during the large requests: see the server log")
    return {"worker_pid": pid, "at_start": start, "baseline": baseline, "settle_s": settle, "rounds": done}


# -- phase 3: the mixed load ----------------------------------------------------------------------
class Load:
    """The clients of the mixed load, each a thread with its own keep-alive session."""

    def __init__(
        self, server: SoakServer, territories: list[Territory], seconds: float, period: float, seed: int = 11
    ) -> None:
        self.url = server.url
        self.territories = territories
        self.seconds = seconds
        self.period = period
        self.rec = Recorder()
        self.stop = threading.Event()
        self.seed = seed
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.etags: dict[str, str] = {}
        self.load_started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def next_number(self) -> int:
        with self.counter_lock:
            self.counter += 1
            return self.counter

    def _call(self, http: requests.Session, kind: str, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return call(self.rec, http, kind, method, url if url.startswith("http") else self.url + url, *args, **kwargs)

    def _sparql(
        self, http: requests.Session, kind: str, text: str, accept: str | None = None, get: bool = False
    ) -> None:
        headers = {"Accept": accept} if accept else {}
        form = {"params": {"query": text}} if get else {"data": {"query": text}}
        self._call(http, kind, "GET" if get else "POST", "/sparql", refusal=sparql_refusal, headers=headers, **form)

    def _loop(self, name: str, pause: float, step: Callable[[requests.Session, random.Random], None]) -> None:
        rng = random.Random(f"{self.seed}-{name}")
        with requests.Session() as http:
            while not self.stop.is_set():
                step(http, rng)
                if pause and self.stop.wait(pause):
                    return

    def _pick(self, rng: random.Random, *kinds: str) -> tuple[Territory, str, dict[str, Any]]:
        t = rng.choice(self.territories)
        kind = rng.choice([k for k in kinds if t.records.get(k)])
        return t, kind, rng.choice(t.records[kind])

    # continuous clients
    def api_get(self, http: requests.Session, rng: random.Random) -> None:
        t, kind, item = self._pick(rng, "proposal", "proposal", "comment", "meeting", "project", "organization")
        plural = {"proposal": "proposals", "comment": "comments", "meeting": "meetings", "project": "projects"}
        path = f"/api/v1/territories/{t.id}/{plural.get(kind, kind + 's')}/{item['id']}"
        self._call(http, "api_get", "GET", self.url + path)

    def api_list(self, http: requests.Session, rng: random.Random) -> None:
        t = rng.choice(self.territories)
        base = f"{self.url}/api/v1/territories/{t.id}"
        proposal = rng.choice(t.records["proposal"])["id"]
        process = rng.choice(t.records["process"])["id"]
        choices = [
            f"{base}/proposals?theme={rng.choice(THEMES)}",
            f"{base}/proposals?status={rng.choice(STATUSES)}&limit=20",
            f"{base}/proposals?process={process}&sort=-record_modified",
            f"{base}/proposals?q={rng.choice(WORDS)}&limit=10",
            f"{base}/proposals?bbox=-180,-90,180,90&limit=100",
            f"{base}/comments?about=proposal/{proposal}",
            f"{base}/meetings?theme={rng.choice(THEMES)}",
            f"{base}/comments?modified_since={self.load_started}&limit=100",
            f"{self.url}/api/v1/proposals?status={rng.choice(STATUSES)}&limit=50",
            f"{self.url}/api/v1/comments?territory={t.id}&limit=200",
        ]
        resp = self._call(http, "api_list", "GET", rng.choice(choices))
        if resp is not None and resp.status_code == 200 and rng.random() < 0.3:
            following = resp.json().get("next")
            if following:
                self._call(http, "api_list", "GET", following.replace(BASE, self.url))

    def api_write(self, http: requests.Session, rng: random.Random) -> None:
        t = rng.choice(self.territories)
        n = self.next_number()
        auth = {"Authorization": f"Bearer {t.key}"}
        base = f"{self.url}/api/v1/territories/{t.id}"
        form = n % 4
        p = rng.choice(t.records["proposal"])
        if form == 0:
            body = {**as_put(p), "title": f"{p['title']} (soak {n})"}
            self._call(http, "api_write", "PUT", f"{base}/proposals/{p['id']}", (200, 201), json=body, headers=auth)
        elif form == 1:
            patch = {"status": rng.choice(STATUSES)}
            headers = {**auth, "Content-Type": "application/merge-patch+json"}
            url = f"{base}/proposals/{p['id']}"
            self._call(http, "api_write", "PATCH", url, data=json.dumps(patch), headers=headers)
        elif form == 2:
            body = {"about": {"kind": "proposal", "id": p["id"]}, "body": f"Avis {n}", "author": f"soak-{n % 500}"}
            url = f"{base}/comments/soak-comment-{n}"
            self._call(http, "api_write", "PUT", url, (201,), json=body, headers=auth)
        else:
            c = rng.choice(t.records["comment"])
            headers = {**auth, "Content-Type": "application/merge-patch+json"}
            body = json.dumps({"body": f"{c['body']} ({n})"})
            self._call(http, "api_write", "PATCH", f"{base}/comments/{c['id']}", data=body, headers=headers)

    def sparql_small(self, http: requests.Session, rng: random.Random) -> None:
        t = rng.choice(self.territories)
        p = rng.choice(t.records["proposal"])["id"]
        iri = f"{BASE}/id/{t.id}/proposal/{p}"
        accept = rng.choice(RESULT_TYPES)
        texts = [
            (queries.lookup(t.graph, iri), accept),
            (queries.top_proposals(t.graph), accept),
            (queries.title_search(rng.choice(WORDS)), accept),
            (f"ASK {{ <{iri}> ?p ?o }}", "application/sparql-results+json"),
            (f"DESCRIBE <{iri}>", "text/turtle"),
            (f"CONSTRUCT {{ <{iri}> ?p ?o }} WHERE {{ <{iri}> ?p ?o }}", "application/n-triples"),
        ]
        text, accept = rng.choice(texts)
        self._sparql(http, "sparql_small", text, accept, get=rng.random() < 0.5)

    def linked(self, http: requests.Session, rng: random.Random) -> None:
        t, kind, item = self._pick(rng, "proposal", "proposal", "comment", "meeting", "project", "process")
        path = f"/id/{t.id}/{kind}/{item['id']}"
        if rng.random() < 0.25:
            self._call(http, "linked_data", "GET", self.url + path + rng.choice(SUFFIXES))
            return
        accept = rng.choice(RDF_TYPES)

        def negotiated(resp: requests.Response) -> str | None:
            got = resp.headers.get("Content-Type", "")
            return None if got.startswith(accept) else f"asked {accept}, got {got}"

        self._call(http, "linked_data", "GET", self.url + path, check=negotiated, headers={"Accept": accept})

    def dumps(self, http: requests.Session, rng: random.Random) -> None:
        t = rng.choice(self.territories)
        if rng.random() < 0.15:
            path = f"/dumps/{t.id}.{rng.choice(['nq', 'trig'])}"
        else:
            kind = rng.choice(list(DUMP_KINDS))
            formats = DUMP_FORMATS + (["geojson"] if DUMP_KINDS[kind] else [])
            path = f"/dumps/{t.id}/{kind}.{rng.choice(formats)}"
        headers = {"Accept-Encoding": rng.choice(["gzip", "identity"])}
        key = path + headers["Accept-Encoding"]
        if key in self.etags and rng.random() < 0.3:
            headers["If-None-Match"] = self.etags[key]
        resp = self._call(http, "dump", "GET", self.url + path, (200, 304), headers=headers)
        if resp is not None and "ETag" in resp.headers:
            self.etags[key] = resp.headers["ETag"]

    # events, once a period
    def _each_period(self, offset: float, event: Callable[[int], None]) -> None:
        k = 0
        while True:
            when = self.rec.t0 + k * self.period + offset * self.period
            if when >= self.rec.t0 + self.seconds or self.stop.wait(max(0.0, when - time.monotonic())):
                return
            event(k)
            k += 1

    def time_limit_query(self, _: int) -> None:
        with requests.Session() as http:
            self._sparql(http, "sparql_heavy", TIME_LIMIT_QUERY)

    def burst(self, k: int) -> None:
        def one(i: int) -> None:
            with requests.Session() as http:
                self._sparql(http, "sparql_heavy", BURST_QUERIES[(i + k) % len(BURST_QUERIES)])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    def bulk_ingest(self, k: int) -> None:
        """A platform's push: changed proposals, new comments and new votes, about 1,000 lines."""
        t = self.territories[k % len(self.territories)]
        rng = random.Random(f"{self.seed}-ingest-{k}")
        lines = []
        for p in rng.sample(t.records["proposal"], min(300, len(t.records["proposal"]))):
            lines.append({**p, "modified": f"2025-01-01T00:{k % 60:02d}:00Z", "body": f"{p.get('body', '')} [{k}]"})
        for i in range(400):
            p = rng.choice(t.records["proposal"])
            lines.append(
                {
                    "kind": "comment",
                    "id": f"soak-ingest-{k}-{i}",
                    "about": {"kind": "proposal", "id": p["id"]},
                    "body": f"Commentaire {k}/{i}",
                    "author": f"soak-author-{i % 50}",
                }
            )
        for i in range(300):
            p = rng.choice(t.records["proposal"])
            lines.append({"kind": "vote", "id": f"soak-vote-{k}-{i}", "proposal": p["id"], "voter": f"soak-{k}-{i}"})
        body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
        headers = {"Authorization": f"Bearer {t.key}", "Content-Type": "application/x-ndjson"}

        def all_written(resp: requests.Response) -> str | None:
            report = resp.json()
            return None if report.get("written") and not report.get("rejected") else f"report {resp.text[:300]}"

        with requests.Session() as http:
            url = f"/api/v1/territories/{t.id}/ingest"
            self._call(http, "ingest", "POST", url, check=all_written, data=body, headers=headers, timeout=600)

    def run(self) -> Recorder:
        clients: list[tuple[str, float, Callable[[requests.Session, random.Random], None]]] = [
            ("get-1", 0.005, self.api_get),
            ("get-2", 0.005, self.api_get),
            ("list", 0.02, self.api_list),
            ("write", 0.1, self.api_write),
            ("sparql", 0.2, self.sparql_small),
            ("linked", 0.02, self.linked),
            ("dumps", 0.5, self.dumps),
        ]
        threads = [threading.Thread(target=self._loop, args=c, name=c[0], daemon=True) for c in clients]
        events: list[tuple[float, Callable[[int], None]]] = [
            (0.2, self.time_limit_query),
            (0.4, self.bulk_ingest),
            (0.6, self.burst),
        ]
        threads += [threading.Thread(target=self._each_period, args=e, daemon=True) for e in events]
        self.rec.t0 = time.monotonic()
        for th in threads:
            th.start()
        try:
            self.stop.wait(self.seconds)
        finally:
            self.stop.set()
            for th in threads:
                th.join(180)
        return self.rec


# -- figures --------------------------------------------------------------------------------------
def summarise(rec: Recorder, seconds: float, window: float) -> dict[str, Any]:
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in rec.outcomes:
        by_kind[o.kind].append(o)
    out = {}
    for kind, outcomes in sorted(by_kind.items()):
        answered = [o for o in outcomes if o.status is not None]
        first = [o.seconds for o in answered if o.t < window]
        last = [o.seconds for o in answered if o.t >= seconds - window]
        out[kind] = {
            "count": len(outcomes),
            "ok": sum(1 for o in outcomes if o.verdict == "ok"),
            "errors": sum(1 for o in outcomes if o.verdict.startswith("error")),
            "refused": sum(1 for o in outcomes if o.verdict.startswith("refused")),
            "verdicts": dict(Counter(o.verdict for o in outcomes if o.verdict != "ok")),
            "statuses": {str(k): v for k, v in sorted(Counter(o.status for o in outcomes).items(), key=str)},
            "per_s": len(outcomes) / seconds,
            "first": percentiles_ms(first),
            "last": percentiles_ms(last),
            "all": percentiles_ms([o.seconds for o in answered]),
        }
    return out


def read_log(text: str) -> dict[str, Any]:
    tracebacks = [m.start() for m in re.finditer(r"Traceback \(most recent call last\)", text)]
    return {
        "tracebacks": len(tracebacks),
        "first_tracebacks": [text[max(0, i - 300) : i + 2500] for i in tracebacks[:3]],
        "unhandled": len(re.findall(r"unhandled error on", text)),
        "store_errors": len(re.findall(r"store error on", text)),
        "worker_timeouts": len(re.findall(r"WORKER TIMEOUT", text)),
        "workers_booted": len(re.findall(r"Booting worker", text)),
        "errors_logged": len(re.findall(r"\[ERROR\]", text)),
    }


def mib(n: float) -> str:
    return f"{n / MIB:,.0f}"


def report(r: dict[str, Any]) -> tuple[str, bool]:
    """The printed report, and whether the run passes (no error)."""
    lines = [
        "",
        f"civicfed soak — {r['minutes']:g} min of mixed load on `civicfed serve` (embedded store, 1 worker x "
        f"{r['threads']} threads), {r['records']:,} records in {r['territories']} territories; "
        f"latency windows: first and last {r['window_s']:g} s",
        f"  setup: data ingested through the API in {r['setup']['ingest_seconds']:.1f} s "
        f"({r['setup']['ingest_records_per_s']:,.0f} records/s); {r['cpu']['cores']} CPU cores shared with the "
        "client and whatever else runs: figures are noisy",
        "",
        f"{'':14} {'count':>7} {'per s':>6} {'errors':>6} {'refused':>7}   "
        f"{'first: p50':>10} {'p95':>7} {'p99':>7}   {'last: p50':>9} {'p95':>7} {'p99':>7}  (ms)",
    ]
    errors = 0
    for kind, s in r["load"].items():
        errors += s["errors"]
        f, la = s["first"], s["last"]

        def pct(p: dict[str, float], key: str) -> str:
            return f"{p[key]:.1f}" if p.get("n") else "-"

        lines.append(
            f"  {kind:12} {s['count']:>7,} {s['per_s']:>6.1f} {s['errors']:>6} {s['refused']:>7}   "
            f"{pct(f, 'p50_ms'):>10} {pct(f, 'p95_ms'):>7} {pct(f, 'p99_ms'):>7}   "
            f"{pct(la, 'p50_ms'):>9} {pct(la, 'p95_ms'):>7} {pct(la, 'p99_ms'):>7}"
        )
    verdicts = [(kind, v, n) for kind, s in r["load"].items() for v, n in s["verdicts"].items()]
    if verdicts:
        lines.append("  not ok, by kind: " + "; ".join(f"{kind} {v} x{n}" for kind, v, n in verdicts))
    for example in r["error_examples"][:5]:
        lines.append(f"    e.g. {example['request'][:140]} → {example['status']}: {example['detail'][:200]}")

    cpu = r["cpu"]
    lines.append(
        f"  CPU during the load: worker {cpu['worker_s'] / r['seconds']:.0%} of a core, this client "
        f"{cpu['client_s'] / r['seconds']:.0%} (query and validation processes apart), of {cpu['cores']} cores; "
        f"load average {cpu['load_average_1min'][0]:.1f} before, {cpu['load_average_1min'][1]:.1f} at the end"
    )
    rss = r["rss"]
    lines += [
        "",
        "RSS of the server's processes (MiB), sampled every 2 s during the load",
        f"  {'':34} {'start':>7} {'warm':>7} {'max':>7} {'end':>7} {'rest':>7}",
    ]
    most = rss["most_processes"]
    for name in RSS_ROWS:
        row = rss[name]
        label = {
            "server": "master + worker",
            "sparql": f"SPARQL query processes (≤ {most['sparql']})",
            "validators": f"ingest validation processes (≤ {most['validators']})",
            "total": "all of them" + (f" ({most['other']} other)" if most["other"] else ""),
        }.get(name, name)
        lines.append(
            f"  {label:34} {mib(row['start']):>7} {mib(row['warm']):>7} {mib(row['max']):>7} "
            f"{mib(row['end']):>7} {mib(row['rest']):>7}"
        )
    lines.append(
        f"  (warm: after the first {r['window_s']:g} s; rest: {r['settle_s']:g} s after the load stopped; "
        f"worker pids seen: {rss['worker_pids']})"
    )

    mem = r["memory"]
    lines += [
        "",
        f"worker RSS around large requests (MiB; 'after' = {mem['settle_s']:g} s later, at rest)",
        f"  fresh worker {mib(mem['at_start'])}, after warm-up requests (baseline) {mib(mem['baseline'])}",
    ]
    for rnd in mem["rounds"]:
        lines.append(
            f"  round {rnd['round']}: before {mib(rnd['before'])}, peak {mib(rnd['peak'])}, after {mib(rnd['after'])} "
            f"= {rnd['after'] / mem['baseline']:.2f} x baseline"
        )
        for s in rnd["steps"]:
            lines.append(
                f"    {s['request'][:58]:58} {s['seconds']:6.1f} s  {mib(s['before']):>5} → peak {mib(s['peak']):>5}"
                f" → {mib(s['after']):>5}  ({s['answer']})"
            )

    log = r["log"]
    lines += [
        "",
        f"server log: {log['tracebacks']} tracebacks, {log['errors_logged']} [ERROR] lines ({log['unhandled']} "
        f"unhandled errors, {log['store_errors']} store errors), {log['worker_timeouts']} worker timeouts, "
        f"{log['workers_booted']} worker(s) booted",
    ]
    for excerpt in log["first_tracebacks"][:1]:
        lines += ["  first traceback (see soak-server.log):", *("    " + x for x in excerpt.splitlines()[:40])]
    lines.append("")
    get = r["load"].get("api_get", {})
    first_p95 = get.get("first", {}).get("p95_ms", float("nan"))
    last_p95 = get.get("last", {}).get("p95_ms", float("nan"))
    warm, end = rss["server"]["warm"], rss["server"]["end"]
    ratio1 = mem["rounds"][0]["after"] / mem["baseline"]
    ratio2 = mem["rounds"][-1]["after"] / mem["rounds"][-1]["before"]
    checks = [
        (
            errors == 0,
            f"no error (5xx other than the SPARQL gate's and time limit's, no answer, wrong status): {errors}",
        ),
        (
            last_p95 <= 2 * first_p95,
            f"API GET p95, last {r['window_s']:g} s ≤ 2 x first: {last_p95:.1f} ms vs {first_p95:.1f} ms",
        ),
        (
            log["tracebacks"] == 0 and log["errors_logged"] == 0 and log["workers_booted"] == 1,
            "the server log has no traceback and no error, its worker was never replaced",
        ),
        (end <= 1.5 * warm, f"master + worker RSS at the end ≤ 1.5 x after warm-up: {mib(end)} vs {mib(warm)} MiB"),
        (
            ratio1 <= 1.25,
            f"worker RSS after the large requests ≤ 1.25 x baseline: {ratio1:.2f} x "
            f"(second round, against its own start: {ratio2:.2f} x)",
        ),
    ]
    for ok, text in checks:
        lines.append(f"{'PASS' if ok else 'FAIL'}  {text}")
    # The run fails on errors only: the other criteria are figures of a shared, noisy machine.
    return "\n".join(lines), checks[0][0] and checks[2][0]


def rss_figures(samples: list[RssSample], window: float, seconds: float, rest: RssSample) -> dict[str, Any]:
    during = [s for s in samples if s.t <= seconds]
    warm = min(during, key=lambda s: abs(s.t - window))
    out: dict[str, Any] = {}
    for name in RSS_ROWS:
        values = [s.row(name) for s in during]
        out[name] = {
            "start": values[0],
            "warm": warm.row(name),
            "max": max(values),
            "end": values[-1],
            "rest": rest.row(name),
        }
    out["most_processes"] = {role: max(s.counts[role] for s in samples) for role in ("sparql", "validators", "other")}
    out["worker_pids"] = sorted({p for s in samples for p in s.worker_pids})
    out["series"] = [{"t": round(s.t, 1), **s.rss} for s in samples]
    return out


# -- main -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def running(data_dir: Path, threads: int, env: dict[str, str]) -> Iterator[SoakServer]:
    server = SoakServer(data_dir, threads, env)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="Length of the mixed load.")
    parser.add_argument("--quads", type=int, default=300_000, help="Size of the generated data (~35,000 records).")
    parser.add_argument("--territories", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="Server threads (one worker: the embedded store).")
    parser.add_argument("--large-mb", type=float, default=8.5, help="Size of the large bad NDJSON ingest (MiB).")
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of the large requests.")
    parser.add_argument("--settle", type=float, default=5.0, help="Seconds of quiet before an 'at rest' RSS.")
    parser.add_argument("--sparql-timeout", type=float, default=None, help="CIVICFED_SPARQL_TIMEOUT (default: 10).")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the work directory here.")
    parser.add_argument(
        "--results",
        type=Path,
        default=ROOT / "bench" / "results",
        help="Where soak.txt, soak.json and soak-server.log go.",
    )
    args = parser.parse_args(argv)
    if not Path("/proc/self/statm").exists():
        parser.error("the soak reads process memory from /proc (Linux)")

    seconds = args.minutes * 60
    window = min(60.0, seconds / 2)
    env = {}
    if args.sparql_timeout is not None:
        env["CIVICFED_SPARQL_TIMEOUT"] = json.dumps(args.sparql_timeout)
    work = args.keep or Path(tempfile.mkdtemp(prefix="civicfed-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = fresh_data_dir(work / "data")
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    try:
        print(f"generating ~{args.quads:,} quads in {args.territories} territories in {work} …", flush=True)
        files = write(work / "ndjson", args.quads, args.territories)
        keys = setup(data_dir, [record for record, _, _ in files])
        territories = read_territories(files, keys)

        print("ingesting through the API …", flush=True)
        with running(data_dir, args.threads, env) as server:
            loaded = ingest(server, keys, files, batch=5000, clients=2)  # type: ignore[arg-type]

        print("fresh server: worker RSS around large requests …", flush=True)
        with running(data_dir, args.threads, env) as server:
            memory = memory_phase(server, territories, int(args.large_mb * MIB), args.settle, args.rounds)

            print(f"mixed load for {args.minutes:g} min …", flush=True)
            load = Load(server, territories, seconds, period=window)
            sampler = Sampler(lambda: rss_sample(server.pgid, time.monotonic() - load.rec.t0), 2.0)
            worker = worker_pid(server)
            cpu_before = (cpu_seconds(worker), sum(os.times()[:2]), os.getloadavg()[0])
            sampler.start()
            try:
                rec = load.run()
            finally:
                samples = sampler.stop()
            cpu = {
                "worker_s": cpu_seconds(worker) - cpu_before[0],
                "client_s": sum(os.times()[:2]) - cpu_before[1],
                "cores": os.cpu_count(),
                "load_average_1min": [cpu_before[2], os.getloadavg()[0]],
            }
            time.sleep(args.settle)
            rest = rss_sample(server.pgid, time.monotonic() - rec.t0)
            log = read_log(server.log_text())
        shutil.copyfile(data_dir / "server.log", out / "soak-server.log")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results: dict[str, Any] = {
        "minutes": args.minutes,
        "seconds": seconds,
        "window_s": window,
        "threads": args.threads,
        "territories": args.territories,
        "records": loaded["records"],
        "quads": loaded["quads"],
        "settle_s": args.settle,
        "setup": {"ingest_seconds": loaded["seconds"], "ingest_records_per_s": loaded["records_per_s"]},
        "memory": memory,
        "load": summarise(rec, seconds, window),
        "error_examples": rec.examples,
        "rss": rss_figures(samples, window, seconds, rest),
        "log": log,
        "cpu": cpu,
    }
    text, passed = report(results)
    print(text)
    (out / "soak.json").write_text(json.dumps(results, indent=2))
    (out / "soak.txt").write_text(text + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
