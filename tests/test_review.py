"""Defects found in review, each pinned by a test that failed before its fix."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.model.examples import RECORDS, record
from server.model.kinds import KINDS
from server.records import Op

from .conftest import Territory, make_app, put, reopen_app

ORG = KINDS["organization"]


def org(svc: Any, local_id: str) -> Op:
    data = svc.records.prepare(ORG, {"id": local_id, "name": local_id, "type": "public_body"})
    return Op(ORG, local_id, "upsert", data)


def test_record_times_follow_commit_order_across_territories(
    client: FlaskClient, svc: Any, app: Any, seeded: Territory, grenoble: Territory
) -> None:
    """A slow commit in one territory must not let a later commit elsewhere take an earlier time:
    a consumer paging across territories would skip it for good."""
    real_apply = svc.store.apply

    def slow_apply(changeset: Any) -> None:
        if any("/graph/lyon" in g for g in changeset.insert):
            time.sleep(0.4)
        real_apply(changeset)

    svc.store.apply = slow_apply

    def write_lyon() -> None:
        with app.app_context():
            svc.records.write_internal("lyon", [org(svc, "slow")])

    writer = threading.Thread(target=write_lyon)
    writer.start()
    time.sleep(0.1)
    svc.records.write_internal("grenoble", [org(svc, "fast")])
    writer.join()
    svc.store.apply = real_apply
    slow = svc.records.get("lyon", ORG, "slow")["record_modified"]
    fast = svc.records.get("grenoble", ORG, "fast")["record_modified"]
    assert fast > slow  # grenoble waited for lyon's commit, then took a later time


def test_clock_never_goes_back_after_a_restart(
    tmp_path: Any, remote_store_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.services import services

    app = make_app(tmp_path, remote_store_url)
    with app.app_context():
        services().records.create_territory({"id": "lyon", "name": "Lyon"})
        services().records.write_internal("lyon", [org(services(), "before")])
        before = services().records.get("lyon", ORG, "before")["record_modified"]
    app.extensions["civicfed"].close()
    real = time.time_ns
    # The host clock one hour behind:
    monkeypatch.setattr("server.records.clock.time.time_ns", lambda: real() - 3600 * 10**9)
    again = reopen_app(app)
    with again.app_context():
        services().records.write_internal("lyon", [org(services(), "after")])
        after = services().records.get("lyon", ORG, "after")["record_modified"]
    again.extensions["civicfed"].close()
    assert after > before


def test_deleted_votes_reach_filtered_syncs(client: FlaskClient, seeded: Territory) -> None:
    put(client, seeded, "vote", {"id": "v1", "proposal": "p1", "voter": "ann"})
    mark = client.get("/api/v1/territories/lyon/votes/v1", headers=seeded.auth()).get_json()["record_modified"]
    client.delete("/api/v1/territories/lyon/votes/v1", headers=seeded.auth())
    items = client.get(
        f"/api/v1/territories/lyon/votes?proposal=p1&modified_since={mark}", headers=seeded.auth()
    ).get_json()["items"]
    assert [(v["id"], v.get("deleted")) for v in items] == [("v1", True)]


def test_two_lines_on_one_record_blame_the_right_line(client: FlaskClient, seeded: Territory) -> None:
    lines = [
        {"kind": "comment", **record("comment", id="c9")},
        {"kind": "comment", **record("comment", id="c9", about={"kind": "proposal", "id": "nope"})},
    ]
    body = b"\n".join(json.dumps(x).encode() for x in lines)
    report = client.post(
        "/api/v1/territories/lyon/ingest?partial=true",
        data=body,
        content_type="application/x-ndjson",
        headers=seeded.auth(),
    ).get_json()
    assert [e["line"] for e in report["errors"]] == [2]
    assert report["superseded"] == 1 and report["updated"] == report["created"] == 0


def test_published_count_depends_on_state_not_history(client: FlaskClient, seeded: Territory) -> None:
    url = "/api/v1/territories/lyon/proposals/p1"
    assert client.get(url).get_json()["vote_count"] == 12  # as reported
    put(client, seeded, "vote", {"id": "v1", "proposal": "p1", "voter": "ann"})
    assert client.get(url).get_json()["vote_count"] == 1  # recorded
    client.delete("/api/v1/territories/lyon/votes/v1", headers=seeded.auth())
    assert client.get(url).get_json()["vote_count"] == 12  # no recorded vote left: the report again
    assert put(client, seeded, "proposal", RECORDS["proposal"]).status_code == 200
    assert client.get(url).get_json()["vote_count"] == 12


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", "/api/v1/territories/lyon/proposals/p1%0A", None, 404),
        ("GET", "/api/v1/territories/lyon/proposals?process=bp-2024%0A", None, 400),
        ("GET", "/api/v1/territories/lyon/comments?about=proposal/p1%0A", None, 400),
        ("PUT", "/api/v1/territories/lyon/proposals/p2%0A", "proposal", 422),
        ("PUT", "/api/v1/territories/lyon/proposals/p2", {"author_id": "0" * 32 + "\n"}, 422),
    ],
)
def test_trailing_newlines_are_not_identifiers(
    client: FlaskClient, seeded: Territory, method: str, path: str, body: Any, expected: int
) -> None:
    data = None
    if body == "proposal":
        data = record("proposal", id=None)
    elif body:
        data = record("proposal", id="p2", **body)
    resp = client.open(path, method=method, json=data, headers=seeded.auth())
    assert resp.status_code == expected, resp.get_data(as_text=True)


def test_crafted_cursors_are_refused(client: FlaskClient, seeded: Territory) -> None:
    for moment in ('2024-01-01"00:00:00', "2024-01-01\\00:00:00"):
        cursor = base64.urlsafe_b64encode(json.dumps([moment, "http://x/y"]).encode()).decode().rstrip("=")
        assert client.get(f"/api/v1/territories/lyon/proposals?cursor={cursor}").status_code == 400


def test_extreme_dates_and_json(client: FlaskClient, seeded: Territory) -> None:
    assert client.get("/api/v1/proposals?modified_since=0001-01-01T00:00:00%2B05:00").status_code == 400
    resp = put(client, seeded, "proposal", record("proposal", id="p3", created="9999-12-31T23:00:00-05:00"))
    assert resp.status_code == 422
    url = "/api/v1/territories/lyon/proposals/p3"
    big = b'{"title": ' + b"9" * 5000 + b"}"
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (big, deep):
        resp = client.put(url, data=body, content_type="application/json", headers=seeded.auth())
        assert resp.status_code == 400


def test_deleting_a_process_leaves_its_proposals_editable(client: FlaskClient, seeded: Territory) -> None:
    client.delete("/api/v1/territories/lyon/processes/bp-2024", headers=seeded.auth())
    resp = client.patch("/api/v1/territories/lyon/proposals/p1", json={"status": "accepted"}, headers=seeded.auth())
    assert resp.status_code == 200, resp.get_json()
    # A new link to the deleted process is still refused.
    assert put(client, seeded, "proposal", record("proposal", id="p9")).status_code == 422


def test_a_territory_named_twice_is_listed_once(client: FlaskClient, seeded: Territory) -> None:
    items = client.get("/api/v1/proposals?territory=lyon,lyon").get_json()["items"]
    assert [p["id"] for p in items] == ["p1"]


def test_etags_are_exact_microseconds() -> None:
    from server.records import etag

    moment = dt.datetime(2026, 11, 25, 18, 33, 33, 115965, tzinfo=dt.UTC)
    assert etag(moment) == '"1795631613115965"'


# -- issue 8, smaller defects ----------------------------------------------------------------------


def test_if_none_match_star_on_put_creates_only(client: FlaskClient, seeded: Territory) -> None:
    only_new = {"If-None-Match": "*"}
    assert put(client, seeded, "proposal", record("proposal", id="fresh"), headers=only_new).status_code == 201
    again = put(client, seeded, "proposal", record("proposal", id="fresh", title="Autre"), headers=only_new)
    assert again.status_code == 412
    assert client.get("/api/v1/territories/lyon/proposals/fresh").get_json()["title"] != "Autre"
    tags = put(client, seeded, "proposal", record("proposal", id="fresh"), headers={"If-None-Match": '"1"'})
    assert tags.status_code == 400


def test_about_names_a_kind_comments_can_be_about(client: FlaskClient, seeded: Territory) -> None:
    resp = client.get("/api/v1/territories/lyon/comments?about=vote/x")
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["parameter"] == "about"
    assert client.get("/api/v1/territories/lyon/comments?about=proposal/p1").status_code == 200


def test_a_parameter_given_twice_is_refused(client: FlaskClient, seeded: Territory) -> None:
    resp = client.get("/api/v1/territories/lyon/proposals?limit=1&limit=2")
    assert resp.status_code == 400 and resp.get_json()["errors"] == [
        {"parameter": "limit", "detail": "Given more than once."}
    ]


def test_bodies_are_utf8_only(client: FlaskClient, seeded: Territory) -> None:
    body = json.dumps(record("proposal", id="u16")).encode("utf-16")
    resp = client.put(
        "/api/v1/territories/lyon/proposals/u16",
        data=body,
        headers={**seeded.auth(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and "not UTF-8" in resp.get_json()["detail"]


def test_a_malformed_query_is_a_400_whatever_the_accept(client: FlaskClient, seeded: Territory) -> None:
    resp = client.get("/sparql", query_string={"query": "SELEC * WHERE {"}, headers={"Accept": "image/png"})
    assert resp.status_code == 400


def test_csv_cells_never_start_a_formula(client: FlaskClient, seeded: Territory) -> None:
    """A title like `=HYPERLINK(...)` would run in a spreadsheet: text cells starting with = + - @
    are written after an apostrophe; numbers (negative ones included) are written as they are."""
    title = '=HYPERLINK("http://evil.example","clic")'
    data = record("proposal", id="f1", title=title, location={"lat": -21.1, "lon": 55.5})
    assert put(client, seeded, "proposal", data).status_code == 201
    rows = list(csv.DictReader(io.StringIO(client.get("/dumps/lyon/proposals.csv").get_data(as_text=True))))
    row = next(r for r in rows if r["id"] == "f1")
    assert row["title"] == "'" + title and row["location_lat"] == "-21.1"


def test_a_territory_s_large_write_does_not_hold_up_another_territory(
    client: FlaskClient, lyon: Territory, grenoble: Territory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The changeset of a write is built under its territory's lock only; the instance-wide lock
    covers the record times and the store write. A one-record PUT in Grenoble waited 28 s behind a
    bulk ingest in Lyon when the whole build was under the instance lock."""
    mapping = KINDS["organization"].mapping
    real = mapping.to_ntriples

    def slow_in_lyon(iri: str, data: dict[str, Any], ctx: Any) -> list[str]:
        if ctx.territory == "lyon":
            time.sleep(0.3)  # mapping thousands of records, in miniature
        return real(iri, data, ctx)

    monkeypatch.setattr(mapping, "to_ntriples", slow_in_lyon)
    bulk = b"\n".join(
        json.dumps({"kind": "organization", **RECORDS["organization"], "id": f"org-{i}"}).encode() for i in range(8)
    )
    results: dict[str, Any] = {}

    def ingest() -> None:
        started = time.monotonic()
        results["lyon"] = client.post(
            "/api/v1/territories/lyon/ingest", data=bulk, content_type="application/x-ndjson", headers=lyon.auth()
        )
        results["lyon_time"] = time.monotonic() - started

    worker = threading.Thread(target=ingest)
    worker.start()
    time.sleep(0.5)  # Lyon's batch is being built
    started = time.monotonic()
    other = put(client, grenoble, "organization", {**RECORDS["organization"], "id": "g1"})
    grenoble_time = time.monotonic() - started
    worker.join(30)
    assert other.status_code == 201 and results["lyon"].status_code == 200
    assert results["lyon_time"] > 2.0
    assert grenoble_time < 1.0, f"Grenoble's PUT waited {grenoble_time:.1f} s behind Lyon's ingest"
