"""The real server (`civicfed serve`, gunicorn) over a loopback socket, with a real HTTP client."""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path

import pytest
import requests

from server.model.examples import RECORDS, record

from .conftest import LiveServer, running_server, start_server, stop_server

# Every test here starts processes (the civicfed command, servers): not in make test-fast.
pytestmark = pytest.mark.live


def test_home_and_docs(live_server: LiveServer) -> None:
    home = requests.get(live_server.url + "/", timeout=10)
    assert home.status_code == 200 and "lyon" in home.text and "/api/v1/docs" in home.text
    spec = requests.get(live_server.url + "/api/v1/openapi.json", timeout=10).json()
    assert spec["info"]["title"] == "civicfed JSON API"
    assert requests.get(live_server.url + "/api/v1/docs", timeout=10).status_code == 200
    assert (
        requests.get(live_server.url + "/ns", headers={"Accept": "text/turtle"}, timeout=10)
        .headers["Content-Type"]
        .startswith("text/turtle")
    )


def test_demo_data_is_there(live_server: LiveServer) -> None:
    territories = requests.get(live_server.url + "/api/v1/territories", timeout=10).json()["items"]
    assert {t["id"] for t in territories} == {"lyon", "grenoble", "rennes"}
    lyon = next(t for t in territories if t["id"] == "lyon")
    assert lyon["population"]["value"] > 500_000 and lyon["population"]["source"].startswith("INSEE")
    proposals = requests.get(live_server.url + "/api/v1/territories/lyon/proposals?limit=1000", timeout=10).json()
    demo = [p for p in proposals["items"] if p["id"].startswith("prop-")]
    assert len(demo) == 60
    assert all(45.6 < p["location"]["lat"] < 45.9 for p in demo)


def test_write_read_delete_over_http(live_server: LiveServer) -> None:
    url = live_server.url + "/api/v1/territories/lyon/proposals/live-1"
    data = record("proposal", id="live-1", author_id=None, author="someone", handled_by=None, process="bp-2024")
    with requests.Session() as http:
        created = http.put(url, json=data, headers=live_server.auth(), timeout=10)
        assert created.status_code == 201, created.text
        assert created.headers["Location"].endswith("/api/v1/territories/lyon/proposals/live-1")
        got = http.get(url, timeout=10)
        assert got.json()["title"] == data["title"] and "author" not in got.json()
        assert http.get(url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10).status_code == 304
        denied = http.put(url, json=data, timeout=10)
        assert denied.status_code == 401 and denied.headers["Content-Type"] == "application/problem+json"
        assert http.delete(url, headers=live_server.auth(), timeout=10).json()["deleted"] is True
        assert http.get(url, timeout=10).status_code == 410


def test_ingest_over_http(live_server: LiveServer) -> None:
    lines = [
        {
            "kind": "proposal",
            **record(
                "proposal",
                id=f"bulk-{i}",
                author_id=None,
                author=f"u{i}",
                handled_by=None,
                process="bp-2024",
                vote_count=None,
                comment_count=None,
            ),
        }
        for i in range(200)
    ] + [{"kind": "vote", "id": f"bv-{i}", "proposal": "bulk-0", "voter": f"u{i}"} for i in range(30)]
    body = "\n".join(json.dumps(x) for x in lines)
    resp = requests.post(
        live_server.url + "/api/v1/territories/lyon/ingest",
        data=body.encode(),
        headers={**live_server.auth(), "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 230
    p = requests.get(live_server.url + "/api/v1/territories/lyon/proposals/bulk-0", timeout=10).json()
    assert p["vote_count"] == 30


def test_concurrent_writers_and_readers(live_server: LiveServer) -> None:
    """Threads of the one worker write and read at once; every write lands, counts stay exact."""
    base = live_server.url + "/api/v1/territories/lyon"

    def vote(i: int) -> int:
        data = {"id": f"cv-{i}", "proposal": "prop-00002", "voter": f"concurrent-{i}"}
        return requests.put(f"{base}/votes/cv-{i}", json=data, headers=live_server.auth(), timeout=30).status_code

    def read(_: int) -> int:
        return requests.get(f"{base}/proposals?limit=20", timeout=30).status_code

    before = requests.get(f"{base}/proposals/prop-00002", timeout=10).json().get("vote_count", 0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        writes = list(pool.map(vote, range(40)))
        reads = list(pool.map(read, range(40)))
    assert writes == [201] * 40 and reads == [200] * 40
    after = requests.get(f"{base}/proposals/prop-00002", timeout=10).json()["vote_count"]
    assert after == before + 40


def test_oversized_and_malformed_over_http(live_server: LiveServer) -> None:
    url = live_server.url + "/api/v1/territories/lyon/ingest"
    headers = {**live_server.auth(), "Content-Type": "application/x-ndjson"}
    too_big = requests.post(url, data=b"x" * (65 * 1024 * 1024), headers=headers, timeout=60)
    assert too_big.status_code == 413
    assert too_big.json()["status"] == 413
    broken = requests.put(
        live_server.url + "/api/v1/territories/lyon/proposals/x",
        data=b"{",
        headers={**live_server.auth(), "Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 400


def _affinity(pid: int, tid: int) -> set[int]:
    line = next(
        x for x in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines() if x.startswith("Cpus_allowed_list")
    )
    cpus: set[int] = set()
    for part in line.split(":")[1].strip().split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _children(pid: int) -> list[int]:
    return [int(p) for t in Path(f"/proc/{pid}/task").iterdir() for p in (t / "children").read_text().split()]


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="CPU pinning needs Linux and at least 2 CPUs",
)
def test_pin_cpu_keeps_request_threads_on_one_cpu_and_nothing_else(
    tmp_path: Path, remote_store_url: str | None
) -> None:
    every = os.sched_getaffinity(0)
    server = start_server(tmp_path, remote_store_url, args=("--pin-cpu",))
    try:
        with requests.Session() as http, concurrent.futures.ThreadPoolExecutor(4) as pool:
            # Several requests at once, so that the worker starts several request threads.
            urls = [f"{server.url}/api/v1/proposals?territory=lyon&limit=5"] * 20
            assert all(r.status_code == 200 for r in pool.map(http.get, urls))
            ask = http.get(f"{server.url}/sparql", params={"query": "ASK {}", "format": "json"})
            assert ask.json()["boolean"] is True
        (worker,) = _children(server.process.pid)
        threads = {int(t.name): (t / "comm").read_text().strip() for t in Path(f"/proc/{worker}/task").iterdir()}
        pinned = {tid for tid in threads if len(_affinity(worker, tid)) == 1}
        assert worker in pinned, "the worker's main thread"
        assert len(pinned) >= 3, "the request threads, started after the pin"
        for tid, name in threads.items():
            if name.startswith("rocksdb"):  # the store's own threads were started before the pin
                assert _affinity(worker, tid) == every, name
        # Processes the server starts (SPARQL query processes) run on every CPU.
        children = _children(worker)
        if remote_store_url is None:
            assert children, "a query process"
        for child in children:
            assert _affinity(child, child) == every
    finally:
        stop_server(server)


def test_links_clients_follow_use_the_address_they_reached(tmp_path: Path, remote_store_url: str | None) -> None:
    """Demo data loaded under one base IRI, the server then reached on another port: IRIs stay on
    the base (they are names), `next` and `Location` point where the client is talking."""
    base = "http://127.0.0.1:8000"
    with running_server(tmp_path, remote_store_url, extra_env={"CIVICFED_BASE_URI": base}) as server:
        page = requests.get(f"{server.url}/api/v1/territories/lyon/proposals?limit=2", timeout=30)
        body = page.json()
        assert body["items"][0]["iri"].startswith(f"{base}/id/lyon/proposal/")
        assert body["next"].startswith(f"{server.url}/api/v1/territories/lyon/proposals?")
        assert page.headers["Link"] == f'<{body["next"]}>; rel="next"'
        assert requests.get(body["next"], timeout=30).status_code == 200  # it can be followed
        created = requests.post(
            f"{server.url}/api/v1/territories/lyon/organizations",
            json={k: v for k, v in RECORDS["organization"].items() if k != "id"},
            headers=server.auth(),
            timeout=30,
        )
        assert created.status_code == 201
        assert created.headers["Location"].startswith(f"{server.url}/api/v1/territories/lyon/organizations/")
        assert requests.get(created.headers["Location"], timeout=30).status_code == 200
        # Forwarded headers are not trusted unless the operator says a proxy sets them.
        forwarded = {"X-Forwarded-Host": "portal.example", "X-Forwarded-Proto": "https"}
        spoofed = requests.get(f"{server.url}/api/v1/proposals?limit=1", headers=forwarded, timeout=30)
        assert spoofed.json()["next"].startswith(f"{server.url}/")


def test_a_stopped_server_leaves_no_snapshot(tmp_path: Path) -> None:
    """SIGTERM (what systemd and the tests send): the worker's snapshots of the embedded store, copies
    of private votes included, are gone with it."""
    server = start_server(tmp_path, None)
    try:
        ask = requests.get(f"{server.url}/sparql", params={"query": "ASK { ?s ?p ?o }", "format": "json"}, timeout=30)
        assert ask.json()["boolean"] is True
        assert list((tmp_path / "snapshots").iterdir())
    finally:
        stop_server(server)
    assert not (tmp_path / "snapshots").exists()


def test_a_stopped_server_leaves_its_writes_flushed(tmp_path: Path) -> None:
    """SIGTERM: the worker flushes the embedded store before it exits. Else the writes since the
    last flush stay in RocksDB's write-ahead log, which the next start replays — after a large
    ingest, hundreds of MB: a slow start, and a new worker that keeps the memory of the replay
    (the soak benchmark found 300 MB)."""
    server = start_server(tmp_path, None)
    try:
        body = {k: v for k, v in RECORDS["organization"].items() if k != "id"}
        for i in range(5):
            url = f"{server.url}/api/v1/territories/lyon/organizations/flushed-{i}"
            assert requests.put(url, json=body, headers=server.auth(), timeout=30).status_code == 201
    finally:
        stop_server(server)
    # The current write-ahead log is the one numbered last (older ones are removed at the next open).
    logs = sorted((tmp_path / "oxigraph").glob("*.log"), key=lambda p: int(p.stem))
    assert logs and logs[-1].stat().st_size == 0, [(p.name, p.stat().st_size) for p in logs]


def test_requests_gunicorn_refuses_get_problem_details(live_server: LiveServer) -> None:
    """A request line or headers over gunicorn's limits never reach the application: they are
    answered by gunicorn, as problem+json too (not an HTML page)."""
    long_url = f"{live_server.url}/api/v1/proposals?q={'x' * 9000}"
    too_long = requests.get(long_url, timeout=30)
    assert too_long.status_code == 414
    assert too_long.headers["Content-Type"] == "application/problem+json"
    assert too_long.json()["type"].endswith("#uri-too-long") and too_long.json()["status"] == 414
    headers = {f"X-Filler-{i}": "y" for i in range(200)}
    too_many = requests.get(f"{live_server.url}/api/v1/proposals", headers=headers, timeout=30)
    assert too_many.status_code == 431 and too_many.json()["status"] == 431
