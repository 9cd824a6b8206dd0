"""Rate limits: budgets per client address for reads, SPARQL and dumps, per API key for writes;
the IETF RateLimit fields on every answer; 429 with Retry-After past a limit; off when switched off."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from flask.testing import FlaskClient

from server.model.examples import RECORDS, TERRITORY
from server.services import services

from .conftest import LiveServer, make_app, make_territory, put, running_server

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_READS": "5 per minute",
    "RATELIMIT_SPARQL": "2 per minute",
    "RATELIMIT_DUMPS": "3 per minute",
    "RATELIMIT_WRITES": "3 per minute",
}


def limited(tmp_path: Path, **config: object) -> FlaskClient:
    app = make_app(tmp_path, None, **{**LIMITS, **config})
    return app.test_client()


def from_(address: str) -> dict[str, object]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_reads_have_a_budget_per_client_address(tmp_path: Path) -> None:
    client = limited(tmp_path)
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


def test_sparql_and_dumps_have_budgets_of_their_own(tmp_path: Path) -> None:
    client = limited(tmp_path)
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


def test_writes_have_a_budget_per_key(tmp_path: Path) -> None:
    client = limited(tmp_path, RATELIMIT_READS="100 per minute")
    with client.application.app_context():
        lyon = make_territory(services(), TERRITORY, ("editor", "admin"))
    statuses = []
    for i in range(4):
        statuses.append(put(client, lyon, "organization", {**RECORDS["organization"], "id": f"o{i}"}).status_code)
    assert statuses == [201, 201, 201, 429]
    # Another key has its own budget, from the same address.
    other = put(client, lyon, "organization", {**RECORDS["organization"], "id": "o9"}, role="admin")
    assert other.status_code == 201 and other.headers["RateLimit-Policy"] == '"writes";q=3;w=60'


def test_limits_can_be_switched_off(tmp_path: Path) -> None:
    client = limited(tmp_path, RATELIMIT_ENABLED=False)
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
