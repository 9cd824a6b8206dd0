"""Rate limits: budgets per client address for reads, SPARQL and dumps, per API key for writes;
the IETF RateLimit fields on every answer; 429 with Retry-After past a limit; off when switched off."""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from limits.errors import ConfigurationError

from server.app import create_app
from server.model.examples import RECORDS, TERRITORY
from server.services import Civicfed, services
from server.state import State
from server.web.limit_storage import AutoStorage, MemoryCounts, StateStorage, row_key

from .conftest import (
    BASE,
    TEST_STATE_DB,
    LiveServer,
    civicfed,
    drop_state_schema,
    make_app,
    make_territory,
    put,
    running_server,
    state_db_url,
)

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_READS": "5 per minute",
    "RATELIMIT_SPARQL": "2 per minute",
    "RATELIMIT_DUMPS": "3 per minute",
    "RATELIMIT_WRITES": "3 per minute",
}


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Callable[..., FlaskClient]]:
    """Clients of applications with small limits (closed, and their state database dropped, after)."""
    apps: list[Flask] = []

    def make(**config: object) -> FlaskClient:
        apps.append(make_app(tmp_path / f"app{len(apps)}", None, **{**LIMITS, **config}))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["civicfed"].close()
        drop_state_schema(app.config["STATE_DB"])


def services_of(client: FlaskClient) -> Civicfed:
    return client.application.extensions["civicfed"]


def from_(address: str) -> dict[str, object]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_reads_have_a_budget_per_client_address(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    answers = [client.get("/api/v1/territories", **from_("192.0.2.1")) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].headers["RateLimit-Policy"] == '"reads";q=5;w=60'
    assert re.fullmatch(r'"reads";r=4;t=\d+', answers[0].headers["RateLimit"])
    refused = answers[-1]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.get_json()["type"].endswith("#rate-limited") and refused.get_json()["status"] == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # The budget is the client's: another address, or another surface of reads, shares nothing with it
    # but the reads budget itself (linked data counts against reads too).
    assert client.get("/api/v1/territories", **from_("192.0.2.2")).status_code == 200
    assert client.get("/ns", **from_("192.0.2.1")).status_code == 429


def test_sparql_and_dumps_have_budgets_of_their_own(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    with client.application.app_context():
        make_territory(services(), TERRITORY, ("editor",))
    ask = {"query": "ASK { ?s ?p ?o }", "format": "json"}
    sparql = [client.get("/sparql", query_string=ask, **from_("192.0.2.3")).status_code for _ in range(3)]
    assert sparql == [200, 200, 429]
    dumps = [client.get("/dumps/lyon/proposals.csv", **from_("192.0.2.3")).status_code for _ in range(4)]
    assert dumps == [200, 200, 200, 429]
    # Reads are still in budget for that address.
    reads = client.get("/api/v1/territories", **from_("192.0.2.3"))
    assert reads.status_code == 200 and reads.headers["RateLimit-Policy"] == '"reads";q=5;w=60'


def test_writes_have_a_budget_per_key(limited: Callable[..., FlaskClient]) -> None:
    client = limited(RATELIMIT_READS="100 per minute")
    with client.application.app_context():
        lyon = make_territory(services(), TERRITORY, ("editor", "admin"))
    statuses = []
    for i in range(4):
        statuses.append(put(client, lyon, "organization", {**RECORDS["organization"], "id": f"o{i}"}).status_code)
    assert statuses == [201, 201, 201, 429]
    # Another key has its own budget, from the same address.
    other = put(client, lyon, "organization", {**RECORDS["organization"], "id": "o9"}, role="admin")
    assert other.status_code == 201 and other.headers["RateLimit-Policy"] == '"writes";q=3;w=60'


def test_limits_can_be_switched_off(limited: Callable[..., FlaskClient]) -> None:
    client = limited(RATELIMIT_ENABLED=False)
    answers = [client.get("/api/v1/territories") for _ in range(10)]
    assert all(a.status_code == 200 and "RateLimit" not in a.headers for a in answers)


def test_limits_over_http(tmp_path: Path, remote_store_url: str | None) -> None:
    """The real server, through a real client: the fields, then 429 with Retry-After."""
    extra = {"CIVICFED_RATELIMIT_ENABLED": "true", "CIVICFED_RATELIMIT_SPARQL": "2 per minute"}
    server: LiveServer
    with running_server(tmp_path, remote_store_url, extra_env=extra) as server, requests.Session() as http:
        params = {"query": "ASK { ?s ?p ?o }", "format": "json"}
        answers = [http.get(f"{server.url}/sparql", params=params, timeout=30) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["RateLimit-Policy"] == '"sparql";q=2;w=60'
    assert answers[2].headers["Retry-After"] and answers[2].headers["Content-Type"].startswith("text/plain")


# -- counts in the state database ------------------------------------------------------------


@pytest.fixture(params=["state", "memory"])
def counts(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StateStorage | MemoryCounts]:
    """Rate-limit counts in a state database of the test's own (SQLite, or a PostgreSQL schema),
    and in memory (``auto`` with one process): the same fixed windows."""
    if request.param == "memory":
        yield MemoryCounts()
        return
    url = state_db_url(tmp_path)
    state = State(url)
    yield StateStorage(state=lambda: state)
    state.close()
    drop_state_schema(url)


def test_state_counts_windows(counts: StateStorage | MemoryCounts) -> None:
    key, short, other = (
        "LIMITER/192.0.2.1/reads/5/1/minute",
        "LIMITER/192.0.2.3/sparql/2/1/second",
        "LIMITER/192.0.2.4/dumps/3/1/second",
    )
    before = time.time()
    assert counts.incr(short, 1) == 1 and counts.incr(short, 1) == 2 and counts.incr(other, 1) == 1
    short_end, other_end = counts.get_expiry(short), counts.get_expiry(other)
    assert [counts.incr(key, 60) for _ in range(3)] == [1, 2, 3]
    assert counts.incr(key, 60, amount=2) == 5 and counts.get(key) == 5
    # The window is fixed: it ends a minute after its first hit, whatever the later hits.
    assert before + 60 <= counts.get_expiry(key) <= time.time() + 60
    assert counts.get("LIMITER/192.0.2.2/reads/5/1/minute") == 0
    counts.clear(key)
    assert counts.get(key) == 0 and counts.incr(key, 60) == 1
    # A window that is over counts as zero; the next hit starts a new one.
    time.sleep(max(0.0, short_end - time.time(), other_end - time.time()) + 0.05)
    assert counts.get(short) == 0 and counts.get_expiry(short) <= time.time()
    assert counts.incr(short, 1) == 1 and counts.get_expiry(short) > short_end
    # Finished windows are deleted now and then (the live one stays); reset deletes every count.
    assert counts.sweep() == 1 and counts.get(short) == 1 and counts.get(key) == 1
    assert counts.reset() == 2 and counts.get(key) == 0
    assert counts.check()
    if isinstance(counts, StateStorage) and counts.engine.dialect.name == "postgresql":  # no WAL, no flush per request
        with counts.engine.connect() as conn:
            query = "SELECT relpersistence FROM pg_class WHERE oid = 'rate_limits'::regclass"
            assert conn.execute(sqlalchemy.text(query)).scalar() == "u"


def test_state_counts_take_any_key(counts: StateStorage | MemoryCounts) -> None:
    """Keys carry the client's address, which a proxy forwards as the client sent it: a long one,
    or one with characters PostgreSQL refuses, is counted under its digest."""
    for key in ("LIMITER/" + "x" * 5000 + "/reads", "LIMITER/a\x00b/reads", "LIMITER/adresse-été/reads"):
        assert [counts.incr(key, 60) for _ in range(2)] == [1, 2] and counts.get(key) == 2
        assert len(row_key(key)) <= 255
    assert row_key("LIMITER/192.0.2.1/reads/5/1/minute") == "LIMITER/192.0.2.1/reads/5/1/minute"


def test_state_counts_are_exact_under_concurrency(counts: StateStorage | MemoryCounts) -> None:
    """Every hit gets its own count: no two concurrent hits read the same one."""
    key = "LIMITER/198.51.100.7/writes/100/1/minute"

    def hits(_: int) -> list[int]:
        return [counts.incr(key, 60) for _ in range(50)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        seen = [n for batch in pool.map(hits, range(8)) for n in batch]
    assert sorted(seen) == list(range(1, 401)) and counts.get(key) == 400


def test_state_storage_shares_one_budget_between_processes(tmp_path: Path) -> None:
    """Two applications (two worker processes, or two servers) on one state database count
    against one budget; with memory:// each would have its own."""
    url = state_db_url(tmp_path)

    def process(name: str) -> FlaskClient:
        settings = {"DATA_DIR": str(tmp_path / name), "BASE_URI": BASE, "TESTING": True, "STATE_DB": url}
        return create_app({**settings, **LIMITS, "RATELIMIT_STORAGE_URI": "state"}).test_client()

    first, second = process("a"), process("b")
    try:
        answers = [(first, second)[i % 2].get("/api/v1/territories", **from_("192.0.2.9")) for i in range(7)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
        remaining = [a.headers["RateLimit"].split(";")[1] for a in answers]
        assert remaining == [f"r={n}" for n in (4, 3, 2, 1, 0, 0, 0)]
    finally:
        for client in (first, second):
            services_of(client).close()
        drop_state_schema(url)


def test_auto_counts_where_the_processes_meet() -> None:
    """``auto``: in memory while one process serves the instance (embedded store), in the state
    database when the store is shared (several workers or servers may serve it)."""
    for shared, kind in ((False, MemoryCounts), (True, StateStorage)):
        stub = SimpleNamespace(store=SimpleNamespace(shared=shared), state=None)
        assert isinstance(AutoStorage(services=stub).chosen, kind)  # type: ignore[arg-type]


def test_counts_in_memory_start_no_thread() -> None:
    """A hit counted in memory starts no thread (limits' MemoryStorage starts a timer thread on
    nearly every hit to expire its keys: a thread a request)."""
    memory = MemoryCounts()
    before = {t.ident for t in threading.enumerate()}
    assert [memory.incr(f"LIMITER/192.0.2.{i % 3}/reads/5/1/minute", 60) for i in range(6)] == [1, 1, 1, 2, 2, 2]
    assert {t.ident for t in threading.enumerate()} == before


def test_the_state_database_counts_fixed_windows_only(tmp_path: Path) -> None:
    settings = {"DATA_DIR": str(tmp_path), "STATE_DB": f"sqlite:///{tmp_path / 'state.sqlite3'}", **LIMITS}
    with pytest.raises(ConfigurationError, match=r"fixed windows only, not RATELIMIT_STRATEGY=moving-window"):
        create_app({**settings, "RATELIMIT_STORAGE_URI": "state", "RATELIMIT_STRATEGY": "moving-window"})
    with pytest.raises(ConfigurationError, match=r"SQLite or PostgreSQL, not mysql"):
        create_app({**settings, "STATE_DB": "mysql://db.example/civicfed"})  # auto may choose it
    # Other storages keep flask-limiter's strategies.
    app = create_app({**settings, "RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_STRATEGY": "moving-window"})
    assert app.test_client().get("/api/v1/territories").status_code == 200
    app.extensions["civicfed"].close()


def test_counts_fall_back_to_memory_while_the_database_fails(limited: Callable[..., FlaskClient]) -> None:
    """A state database that fails does not fail the requests: each process counts in memory."""
    client = limited(RATELIMIT_STORAGE_URI="state")
    assert client.get("/api/v1/territories", **from_("192.0.2.5")).status_code == 200
    with services_of(client).state.engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE rate_limits"))
    answers = [client.get("/api/v1/territories", **from_("192.0.2.5")) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].headers["RateLimit"].startswith('"reads";r=4;')


def create_state_database(env: dict[str, str]) -> None:
    civicfed(env, "territory", "list")


def test_workers_share_one_budget(tmp_path: Path, shared_store: str) -> None:
    """`serve --workers 2` on a shared store: the counts live in the state database (``auto``), so
    requests spread over both workers meet one budget. The same server counting in memory lets
    about twice the budget through (which shows the requests did reach both workers)."""
    budget, sent = 8, 24
    ask = {"query": "ASK { ?s ?p ?o }", "format": "json"}

    def run(storage: str | None, where: Path) -> list[tuple[int, str]]:
        # (The SPARQL budget: waiting for the server to answer spends some of the reads budget.)
        extra = {"CIVICFED_RATELIMIT_ENABLED": "true", "CIVICFED_RATELIMIT_SPARQL": f"{budget} per minute"}
        if storage:
            extra["CIVICFED_RATELIMIT_STORAGE_URI"] = storage
        if TEST_STATE_DB:
            extra["CIVICFED_STATE_DB"] = state_db_url(where)
        # The state database is created first: workers booting on a fresh one race to create its tables.
        start = {"extra_env": extra, "demo": False, "args": ("--workers", "2"), "prepare": create_state_database}
        try:
            with running_server(where, shared_store, **start) as server:
                # A new connection per request: the kernel spreads them over the workers' sockets.
                answers = [requests.get(f"{server.url}/sparql", params=ask, timeout=30) for _ in range(sent)]
        finally:
            if TEST_STATE_DB:
                drop_state_schema(extra["CIVICFED_STATE_DB"])
        return [(a.status_code, a.headers.get("RateLimit", "")) for a in answers]

    shared = run(None, tmp_path / "shared")
    assert [status for status, _ in shared] == [200] * budget + [429] * (sent - budget)
    assert [field.split(";")[1] for _, field in shared[:budget]] == [f"r={budget - 1 - i}" for i in range(budget)]
    apart = run("memory://", tmp_path / "apart")
    assert budget < sum(status == 200 for status, _ in apart) <= 2 * budget
