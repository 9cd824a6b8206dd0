"""JSON API behaviour through Flask's test client (the live-server tests repeat the key paths
over a real socket)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.model.examples import PLURALS, RECORDS, TERRITORY, record
from server.model.kinds import RECORD_KINDS
from server.services import services

from .conftest import BASE, Territory, make_app, make_territory, put

READ_ONLY = ("iri", "territory", "record_modified")


def url(t: Territory, kind: str, local_id: str | None = None) -> str:
    base = f"/api/v1/territories/{t.id}/{PLURALS[kind]}"
    return f"{base}/{local_id}" if local_id else base


def stripped(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in READ_ONLY}


def write_all(client: FlaskClient, t: Territory) -> None:
    for kind in ("organization", "process", "budget", "rule", "proposal", "vote", "comment", "meeting", "project"):
        resp = put(client, t, kind, RECORDS[kind])
        assert resp.status_code == 201, (kind, resp.get_json())


# -- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["organization", "process", "budget", "rule", "meeting", "project"])
def test_round_trip_json_rdf_json(client: FlaskClient, lyon: Territory, kind: str) -> None:
    """What a platform PUTs is what GET returns: JSON → RDF in Oxigraph → JSON, field for field."""
    write_all(client, lyon)
    got = client.get(url(lyon, kind, RECORDS[kind]["id"]), headers=lyon.auth()).get_json()
    assert stripped(got) == RECORDS[kind]
    assert got["iri"] == f"{BASE}/id/lyon/{kind}/{RECORDS[kind]['id']}"
    assert got["territory"] == "lyon"


def test_round_trip_proposal_comment_vote(client: FlaskClient, lyon: Territory) -> None:
    write_all(client, lyon)
    proposal = client.get(url(lyon, "proposal", "p1")).get_json()
    # vote_count and comment_count are now maintained from the recorded vote and comment.
    assert stripped(proposal) == {**RECORDS["proposal"], "vote_count": 1, "comment_count": 1}
    comment = client.get(url(lyon, "comment", "c1")).get_json()
    assert stripped(comment) == RECORDS["comment"]
    vote = client.get(url(lyon, "vote", "v1"), headers=lyon.auth()).get_json()
    assert stripped(vote) == RECORDS["vote"]


def test_territory_round_trip(client: FlaskClient, lyon: Territory) -> None:
    got = client.get("/api/v1/territories/lyon").get_json()
    assert stripped(got) == TERRITORY


def test_put_back_what_was_got(client: FlaskClient, seeded: Territory) -> None:
    got = client.get(url(seeded, "proposal", "p1")).get_json()
    resp = client.put(url(seeded, "proposal", "p1"), json=got, headers=seeded.auth())
    assert resp.status_code == 200, resp.get_json()
    assert stripped(resp.get_json()) == stripped(got)


# -- create, replace, patch, delete ---------------------------------------------------------------


def test_put_creates_then_replaces(client: FlaskClient, seeded: Territory) -> None:
    data = record("proposal", id="p2", vote_count=None, comment_count=None, status=None)
    first = put(client, seeded, "proposal", data)
    assert first.status_code == 201
    # Where the client is talking (the test client: localhost), not the base IRI.
    assert first.headers["Location"] == "http://localhost/api/v1/territories/lyon/proposals/p2"
    second = put(client, seeded, "proposal", {**data, "title": "Nouveau titre"})
    assert second.status_code == 200
    got = client.get(url(seeded, "proposal", "p2")).get_json()
    assert got["title"] == "Nouveau titre"
    assert "status" not in got  # replace, not merge
    assert got["record_modified"] > first.get_json()["record_modified"]


def test_post_makes_an_id(client: FlaskClient, seeded: Territory) -> None:
    data = record("proposal", id=None)
    resp = client.post(url(seeded, "proposal"), json=data, headers=seeded.auth())
    assert resp.status_code == 201, resp.get_json()
    new = resp.get_json()
    assert new["id"] != "p1" and resp.headers["Location"].endswith(f"/proposals/{new['id']}")
    assert client.get(url(seeded, "proposal", new["id"])).status_code == 200
    refused = client.post(url(seeded, "proposal"), json=record("proposal"), headers=seeded.auth())
    assert refused.status_code == 422


def test_body_id_must_match_url(client: FlaskClient, seeded: Territory) -> None:
    resp = client.put(url(seeded, "proposal", "other"), json=record("proposal"), headers=seeded.auth())
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["pointer"] == "#/id"


def test_patch_is_a_merge_patch(client: FlaskClient, seeded: Territory) -> None:
    resp = client.patch(
        url(seeded, "proposal", "p1"),
        json={"status": "accepted", "address": None, "location": {"lat": 45.75}},
        headers=seeded.auth(),
    )
    assert resp.status_code == 200, resp.get_json()
    got = resp.get_json()
    assert got["status"] == "accepted"
    assert "address" not in got
    assert got["location"] == {"lat": 45.75, "lon": RECORDS["proposal"]["location"]["lon"]}
    assert got["title"] == RECORDS["proposal"]["title"]
    assert got["author_id"] == RECORDS["proposal"]["author_id"]  # pseudonym kept, not re-hashed


def test_patch_validates_the_result(client: FlaskClient, seeded: Territory) -> None:
    resp = client.patch(url(seeded, "proposal", "p1"), json={"title": None}, headers=seeded.auth())
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["pointer"] == "#/title"
    assert client.get(url(seeded, "proposal", "p1")).get_json()["title"] == RECORDS["proposal"]["title"]


def test_patch_missing_record(client: FlaskClient, seeded: Territory) -> None:
    assert client.patch(url(seeded, "proposal", "nope"), json={}, headers=seeded.auth()).status_code == 404


def test_delete_keeps_a_tombstone(client: FlaskClient, seeded: Territory) -> None:
    before = client.get(url(seeded, "proposal", "p1")).get_json()
    resp = client.delete(url(seeded, "proposal", "p1"), headers=seeded.auth())
    assert resp.status_code == 200
    tomb = resp.get_json()
    assert tomb["deleted"] is True and tomb["id"] == "p1" and tomb["deleted_at"] >= before["record_modified"]
    gone = client.get(url(seeded, "proposal", "p1"))
    assert gone.status_code == 410
    assert gone.get_json()["record"]["deleted_at"] == tomb["deleted_at"]
    # Hidden from plain lists, visible to sync consumers (modified_since / include_deleted).
    assert [p["id"] for p in client.get(url(seeded, "proposal")).get_json()["items"]] == []
    synced = client.get(url(seeded, "proposal") + f"?modified_since={before['record_modified']}").get_json()
    assert synced["items"] == [tomb]
    assert client.get(url(seeded, "proposal") + "?include_deleted=true").get_json()["items"] == [tomb]
    # Deleting twice says so; re-creating works.
    assert client.delete(url(seeded, "proposal", "p1"), headers=seeded.auth()).status_code == 410
    assert put(client, seeded, "proposal", RECORDS["proposal"]).status_code == 201
    assert client.get(url(seeded, "proposal", "p1")).status_code == 200


def test_delete_unknown(client: FlaskClient, seeded: Territory) -> None:
    assert client.delete(url(seeded, "proposal", "nope"), headers=seeded.auth()).status_code == 404


def test_get_unknown_and_unknown_territory(client: FlaskClient, seeded: Territory) -> None:
    assert client.get(url(seeded, "proposal", "nope")).status_code == 404
    resp = client.get("/api/v1/territories/atlantis/proposals")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert "atlantis" in resp.get_json()["detail"]
    assert client.get("/api/v1/proposals?territory=atlantis").status_code == 404


@pytest.mark.parametrize("q", ["a\x00b", "\x1b[0m", "\x07"])
def test_text_search_with_control_characters_is_refused(client: FlaskClient, seeded: Territory, q: str) -> None:
    # A NUL reached Virtuoso inside a SPARQL string and came back as a 503.
    resp = client.get("/api/v1/proposals", query_string={"q": q})
    assert resp.status_code == 400
    assert "q" in resp.get_json()["detail"] and "control character" in resp.get_json()["detail"]


def test_text_search_matches_composed_and_decomposed_accents(client: FlaskClient, seeded: Territory) -> None:
    assert "é à ç" in RECORDS["proposal"]["body"]
    decomposed = unicodedata.normalize("NFD", "é à ç")  # as some keyboards and browsers send it
    assert decomposed != "é à ç"
    found = client.get("/api/v1/proposals", query_string={"q": decomposed}).get_json()["items"]
    assert [p["id"] for p in found] == ["p1"]


@pytest.mark.parametrize("territory", ["a\x00b", "Lyon", "-x", "x" * 300, "é"])
def test_strings_that_cannot_be_territory_ids_are_unknown_territories(
    client: FlaskClient, seeded: Territory, territory: str
) -> None:
    # Found by the fuzz test on PostgreSQL, which refuses NUL bytes in text with an error (500).
    resp = client.get("/api/v1/organizations", query_string={"territory": territory})
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert client.get(f"/dumps/{territory}/proposals.csv").status_code == 404


# -- conditional requests -------------------------------------------------------------------------


def test_etag_if_none_match_and_if_match(client: FlaskClient, seeded: Territory) -> None:
    resp = client.get(url(seeded, "proposal", "p1"))
    tag = resp.headers["ETag"]
    assert client.get(url(seeded, "proposal", "p1"), headers={"If-None-Match": tag}).status_code == 304
    stale = {**seeded.auth(), "If-Match": '"1"'}
    assert client.patch(url(seeded, "proposal", "p1"), json={"status": "accepted"}, headers=stale).status_code == 412
    fresh = {**seeded.auth(), "If-Match": tag}
    ok = client.patch(url(seeded, "proposal", "p1"), json={"status": "accepted"}, headers=fresh)
    assert ok.status_code == 200 and ok.headers["ETag"] != tag
    # The old tag is now stale.
    assert client.patch(url(seeded, "proposal", "p1"), json={"status": "rejected"}, headers=fresh).status_code == 412
    must_exist = {"If-Match": "*"}
    assert put(client, seeded, "proposal", record("proposal", id="new"), headers=must_exist).status_code == 412


def test_conditional_get_takes_what_caches_send(client: FlaskClient, seeded: Territory) -> None:
    """One conditional-GET implementation for every surface: a cache holding several variants sends
    a list, some as weak tags; without If-None-Match, If-Modified-Since decides."""
    import time
    from email.utils import format_datetime, parsedate_to_datetime

    time.sleep(1.1)  # Last-Modified is sent once the record's second is over
    resp = client.get(url(seeded, "proposal", "p1"))
    tag, stamp = resp.headers["ETag"], resp.headers["Last-Modified"]
    listed = client.get(url(seeded, "proposal", "p1"), headers={"If-None-Match": f'"other", W/{tag}'})
    assert listed.status_code == 304 and listed.headers["ETag"] == tag and not listed.data
    assert client.get(url(seeded, "proposal", "p1"), headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url(seeded, "proposal", "p1"), headers={"If-Modified-Since": stamp}).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(stamp).replace(year=2020), usegmt=True)
    assert client.get(url(seeded, "proposal", "p1"), headers={"If-Modified-Since": earlier}).status_code == 200


# -- references and counts --------------------------------------------------------------------------


def test_links_must_name_existing_records(client: FlaskClient, seeded: Territory) -> None:
    resp = put(client, seeded, "proposal", record("proposal", id="p9", process="nope"))
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == [{"pointer": "#/process", "detail": "Unknown process 'nope'."}]
    resp = put(client, seeded, "comment", record("comment", about={"kind": "meeting", "id": "nope"}))
    assert resp.get_json()["errors"][0]["pointer"] == "#/about"
    client.delete(url(seeded, "process", "bp-2024"), headers=seeded.auth())
    assert put(client, seeded, "proposal", record("proposal", id="p9")).status_code == 422  # deleted process


def test_counts_are_maintained_from_votes_and_comments(client: FlaskClient, seeded: Territory) -> None:
    # The platform's own count is kept while no vote is recorded.
    assert client.get(url(seeded, "proposal", "p1")).get_json()["vote_count"] == 12
    before = client.get(url(seeded, "proposal", "p1")).get_json()["record_modified"]
    for i in range(3):
        vote = {"id": f"v{i}", "proposal": "p1", "voter": f"user-{i}"}
        assert put(client, seeded, "vote", vote).status_code == 201
    got = client.get(url(seeded, "proposal", "p1")).get_json()
    assert got["vote_count"] == 3
    assert got["record_modified"] > before  # a sync consumer sees the count change
    client.delete(url(seeded, "vote", "v0"), headers=seeded.auth())
    assert client.get(url(seeded, "proposal", "p1")).get_json()["vote_count"] == 2
    # Moving a vote to another proposal updates both.
    put(client, seeded, "proposal", record("proposal", id="p2", vote_count=None, comment_count=None))
    put(client, seeded, "vote", {"id": "v1", "proposal": "p2", "voter": "user-1"})
    assert client.get(url(seeded, "proposal", "p1")).get_json()["vote_count"] == 1
    assert client.get(url(seeded, "proposal", "p2")).get_json()["vote_count"] == 1
    # Rewriting the proposal keeps the maintained count, whatever it says.
    put(client, seeded, "proposal", record("proposal", vote_count=999))
    assert client.get(url(seeded, "proposal", "p1")).get_json()["vote_count"] == 1
    # Comments likewise; a reply counts, a comment on something else does not.
    put(client, seeded, "comment", record("comment", id="c1"))
    put(client, seeded, "comment", record("comment", id="c2", reply_to="c1"))
    put(client, seeded, "comment", record("comment", id="c3", about={"kind": "process", "id": "bp-2024"}))
    assert client.get(url(seeded, "proposal", "p1")).get_json()["comment_count"] == 2
    client.delete(url(seeded, "comment", "c2"), headers=seeded.auth())
    assert client.get(url(seeded, "proposal", "p1")).get_json()["comment_count"] == 1


def test_a_count_goes_with_the_last_vote_when_none_was_reported(client: FlaskClient, seeded: Territory) -> None:
    """A proposal whose platform reported no count publishes none once its last vote is gone (it
    kept publishing 1, its last maintained value)."""
    put(client, seeded, "proposal", record("proposal", id="p2", vote_count=None, comment_count=None))
    put(client, seeded, "vote", {"id": "v1", "proposal": "p2", "voter": "user-1"})
    assert client.get(url(seeded, "proposal", "p2")).get_json()["vote_count"] == 1
    put(client, seeded, "vote", {"id": "v1", "proposal": "p1", "voter": "user-1"})  # moved elsewhere
    assert "vote_count" not in client.get(url(seeded, "proposal", "p2")).get_json()
    put(client, seeded, "vote", {"id": "v2", "proposal": "p2", "voter": "user-2"})
    client.delete(url(seeded, "vote", "v2"), headers=seeded.auth())
    assert "vote_count" not in client.get(url(seeded, "proposal", "p2")).get_json()


def test_one_vote_per_voter_per_proposal(client: FlaskClient, seeded: Territory) -> None:
    assert put(client, seeded, "vote", {"id": "a", "proposal": "p1", "voter": "alice"}).status_code == 201
    twice = put(client, seeded, "vote", {"id": "b", "proposal": "p1", "voter": "alice"})
    assert twice.status_code == 409
    assert "already voted" in twice.get_json()["detail"]
    # Re-sending the same vote is fine (idempotent upsert).
    assert put(client, seeded, "vote", {"id": "a", "proposal": "p1", "voter": "alice"}).status_code == 200
    assert client.get(url(seeded, "proposal", "p1")).get_json()["vote_count"] == 1


# -- lists --------------------------------------------------------------------------------------------


def _ids(resp: Any) -> list[str]:
    return [r["id"] for r in resp.get_json()["items"]]


def test_cursor_paging_is_stable_and_complete(client: FlaskClient, seeded: Territory) -> None:
    for i in range(25):
        put(client, seeded, "proposal", record("proposal", id=f"q{i:02d}", vote_count=None, comment_count=None))
    seen: list[str] = []
    next_url: str | None = url(seeded, "proposal") + "?limit=7"
    pages = 0
    while next_url:
        resp = client.get(next_url.removeprefix(BASE))
        assert resp.status_code == 200
        body = resp.get_json()
        seen += [r["id"] for r in body["items"]]
        next_url = body["next"]
        if next_url:
            assert resp.headers["Link"] == f'<{next_url}>; rel="next"'
        if pages == 1:  # a write while paging: the changed record moves to the end, nothing is lost
            put(client, seeded, "proposal", record("proposal", id="q00", title="changed"))
        pages += 1
    assert pages == 4
    assert sorted(set(seen)) == sorted(["p1", *[f"q{i:02d}" for i in range(25)]])
    assert seen.count("q00") == 2 and len(seen) == 27
    desc = _ids(client.get(url(seeded, "proposal") + "?sort=-record_modified&limit=3"))
    assert desc[0] == "q00"


def test_filters(client: FlaskClient, seeded: Territory) -> None:
    put(
        client,
        seeded,
        "proposal",
        record(
            "proposal",
            id="p2",
            themes=["sport"],
            status="accepted",
            location={"lat": 45.70, "lon": 4.80},
            title="Terrain de basket",
            body="Un terrain de sport.",
        ),
    )
    base = url(seeded, "proposal")
    assert _ids(client.get(base + "?theme=sport")) == ["p2"]
    assert _ids(client.get(base + "?theme=green_spaces")) == ["p1"]
    assert _ids(client.get(base + "?status=accepted")) == ["p2"]
    assert _ids(client.get(base + "?process=bp-2024")) == ["p1", "p2"]
    assert _ids(client.get(base + "?handled_by=voirie")) == ["p1", "p2"]
    assert _ids(client.get(base + "?q=BASKET")) == ["p2"]
    assert _ids(client.get(base + "?q=guillemets")) == ["p1"]  # body text too
    assert _ids(client.get(base + "?bbox=4.84,45.75,4.86,45.77")) == ["p1"]
    assert _ids(client.get(base + "?bbox=4.84,45.75,4.86,45.77&theme=sport")) == []
    assert _ids(client.get(base + '?q=a"b\\c')) == []  # quotes cannot break the query


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=5000", "limit"),
        ("theme=unknown", "theme"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=5,45,4,46", "bbox"),
        ("modified_since=yesterday", "modified_since"),
        ("cursor=garbage", "cursor"),
        ("sorting=title", "sorting"),
        ("process=a%20b", "process"),
    ],
)
def test_bad_list_parameters(client: FlaskClient, seeded: Territory, query: str, parameter: str) -> None:
    resp = client.get(url(seeded, "proposal") + "?" + query)
    assert resp.status_code == 400, resp.get_json()
    body = resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert any(parameter in (e.get("parameter") or e.get("pointer", "")) for e in body["errors"]), body


def test_lists_across_territories(client: FlaskClient, seeded: Territory, grenoble: Territory) -> None:
    put(client, grenoble, "process", record("process", organizer=None))
    put(client, grenoble, "proposal", record("proposal", handled_by=None))
    everything = client.get("/api/v1/proposals").get_json()["items"]
    assert sorted((p["territory"], p["id"]) for p in everything) == [("grenoble", "p1"), ("lyon", "p1")]
    only = client.get("/api/v1/proposals?territory=grenoble").get_json()["items"]
    assert [p["territory"] for p in only] == ["grenoble"]
    assert _ids(client.get("/api/v1/proposals?theme=mobility")) == ["p1", "p1"]
    needs_one = client.get("/api/v1/proposals?process=bp-2024")
    assert needs_one.status_code == 400
    territories = client.get("/api/v1/territories").get_json()["items"]
    assert sorted(t["id"] for t in territories) == ["grenoble", "lyon"]


def test_modified_since_is_incremental_sync(client: FlaskClient, seeded: Territory) -> None:
    mark = client.get(url(seeded, "proposal", "p1")).get_json()["record_modified"]
    put(client, seeded, "proposal", record("proposal", id="p2"))
    changed = _ids(client.get(url(seeded, "proposal") + f"?modified_since={mark}"))
    assert changed == ["p1", "p2"]  # modified_since is inclusive
    later = client.get(url(seeded, "proposal", "p2")).get_json()["record_modified"]
    assert _ids(client.get(url(seeded, "proposal") + f"?modified_since={later}")) == ["p2"]


# -- errors -------------------------------------------------------------------------------------------


def test_malformed_json(client: FlaskClient, seeded: Territory) -> None:
    resp = client.put(
        url(seeded, "proposal", "p1"), data=b'{"title": ', content_type="application/json", headers=seeded.auth()
    )
    assert resp.status_code == 400
    assert "line 1, column" in resp.get_json()["detail"]


def test_wrong_media_type(client: FlaskClient, seeded: Territory) -> None:
    resp = client.put(
        url(seeded, "proposal", "p1"),
        data=b"title=x",
        content_type="application/x-www-form-urlencoded",
        headers=seeded.auth(),
    )
    assert resp.status_code == 415


def test_body_is_not_utf8(client: FlaskClient, seeded: Territory) -> None:
    resp = client.put(
        url(seeded, "proposal", "p1"), data=b'{"title": "\xff"}', content_type="application/json", headers=seeded.auth()
    )
    assert resp.status_code == 400


def test_oversized_body(tmp_path: Any, remote_store_url: str | None) -> None:
    from server.services import services

    app = make_app(tmp_path, remote_store_url, MAX_CONTENT_LENGTH=1000)
    with app.app_context():
        services().records.create_territory(TERRITORY)
        key = services().state.create_key("lyon", "editor")[1]
    resp = app.test_client().put(
        "/api/v1/territories/lyon/proposals/p1",
        json=record("proposal", body="x" * 5000),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 413
    assert resp.mimetype == "application/problem+json"
    app.extensions["civicfed"].close()


def test_method_not_allowed_and_unknown_route(client: FlaskClient, seeded: Territory) -> None:
    resp = client.post(url(seeded, "proposal", "p1"), json={}, headers=seeded.auth())
    assert resp.status_code == 405
    assert "PUT" in resp.headers["Allow"]
    assert client.get("/api/v1/nothing-here").status_code == 404


def test_problem_details_shape(client: FlaskClient, seeded: Territory) -> None:
    body = put(client, seeded, "proposal", record("proposal", title="")).get_json()
    assert body["type"].startswith("https://w3id.org/civicfed/problems#")
    assert body["status"] == 422 and body["title"] and body["detail"]
    assert body["instance"] == "/api/v1/territories/lyon/proposals/p1"


def test_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert "/api/v1/territories/{territory}/proposals/{local_id}" in paths
    assert set(paths["/api/v1/territories/{territory}/proposals/{local_id}"]) >= {"get", "put", "patch", "delete"}
    assert "/api/v1/territories/{territory}/ingest" in paths
    proposal = spec["components"]["schemas"]["Proposal"]
    assert "title" in proposal["required"]
    assert proposal["properties"]["author"]["writeOnly"] is True
    params = {p["name"] for p in paths["/api/v1/proposals"]["get"]["parameters"]}
    assert {"territory", "theme", "status", "bbox", "q", "cursor", "limit", "modified_since"} <= params
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"/api/v1/territories/{territory}/ingest" in docs.data


# -- found in review -------------------------------------------------------------------------------


def test_territory_conditional_get(client: FlaskClient, lyon: Territory) -> None:
    resp = client.get("/api/v1/territories/lyon")
    assert client.get("/api/v1/territories/lyon", headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304


def test_patch_on_deleted_is_gone(client: FlaskClient, seeded: Territory) -> None:
    client.delete(url(seeded, "proposal", "p1"), headers=seeded.auth())
    assert (
        client.patch(url(seeded, "proposal", "p1"), json={"status": "accepted"}, headers=seeded.auth()).status_code
        == 410
    )


def test_page_size_follows_the_setting(tmp_path: Any, remote_store_url: str | None) -> None:
    from server.services import services

    app = make_app(tmp_path, remote_store_url, MAX_PAGE_SIZE=5, PAGE_SIZE=2)
    with app.app_context():
        services().records.create_territory(TERRITORY)
    client = app.test_client()
    assert client.get("/api/v1/territories?limit=6").status_code == 400
    assert client.get("/api/v1/territories?limit=5").status_code == 200
    app.extensions["civicfed"].close()


def test_a_bad_key_is_refused_even_on_reads(client: FlaskClient, seeded: Territory) -> None:
    resp = client.get(url(seeded, "proposal"), headers={"Authorization": "Bearer cfk_revoked"})
    assert resp.status_code == 401


def test_votes_default_to_the_keys_territory(client: FlaskClient, seeded: Territory, grenoble: Territory) -> None:
    put(client, seeded, "vote", {"id": "v1", "proposal": "p1", "voter": "ann"})
    listed = client.get("/api/v1/votes", headers=seeded.auth()).get_json()["items"]
    assert [(v["territory"], v["id"]) for v in listed] == [("lyon", "v1")]
    assert client.get("/api/v1/votes?territory=lyon", headers=grenoble.auth()).status_code == 403


def test_put_needs_plain_json(client: FlaskClient, seeded: Territory) -> None:
    resp = client.put(
        url(seeded, "proposal", "p1"), data=b"{}", content_type="application/merge-patch+json", headers=seeded.auth()
    )
    assert resp.status_code == 415


def test_writing_the_same_record_changes_nothing(client: FlaskClient, seeded: Territory) -> None:
    before = client.get(url(seeded, "proposal", "p1"))
    again = put(client, seeded, "proposal", RECORDS["proposal"])
    assert again.status_code == 200
    assert again.headers["ETag"] == before.headers["ETag"]
    assert again.get_json()["record_modified"] == before.get_json()["record_modified"]


def test_filtered_sync_sees_deletions(client: FlaskClient, seeded: Territory) -> None:
    mark = client.get(url(seeded, "proposal", "p1")).get_json()["record_modified"]
    client.delete(url(seeded, "proposal", "p1"), headers=seeded.auth())
    for query in ("theme=green_spaces", "status=evaluating", "process=bp-2024", "handled_by=voirie"):
        items = client.get(url(seeded, "proposal") + f"?{query}&modified_since={mark}").get_json()["items"]
        assert [(i["id"], i.get("deleted")) for i in items] == [("p1", True)], query


def test_openapi_documents_errors_and_security(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    put_op = spec["paths"]["/api/v1/territories/{territory}/proposals/{local_id}"]["put"]
    assert put_op["security"] == [{"bearer": []}]
    assert {"200", "201", "401", "403", "422"} <= set(put_op["responses"])
    get_op = spec["paths"]["/api/v1/territories/{territory}/proposals/{local_id}"]["get"]
    assert "security" not in get_op and "410" in get_op["responses"]
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    unauthorized = spec["components"]["responses"]["UNAUTHORIZED"]
    assert "application/problem+json" in unauthorized["content"]


def test_openapi_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    try:
        validate(spec)
    except OpenAPIValidationError as exc:  # the message says which operation and why
        pytest.fail(f"invalid OpenAPI document: {exc.message} at {'/'.join(map(str, exc.path))}")
    # The servers entry is relative: the API is wherever the client found this document.
    assert spec["servers"] == [{"url": "/"}]


# -- links: what a client can do next with an answer ------------------------------------------

BODY_POINTER = re.compile(r"\$response\.body#(/[^}]*)")


def resolved(spec: dict[str, Any], obj: Any) -> Any:
    while isinstance(obj, dict) and "$ref" in obj:
        obj = reduce(lambda node, key: node[key], obj["$ref"][2:].split("/"), spec)
    return obj


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """operationId → (path, method, operation, its parameters and its path's)."""
    out = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                assert op["operationId"] not in out, op["operationId"]
                out[op["operationId"]] = (path, method, op, item.get("parameters", []) + op.get("parameters", []))
    return out


def document_links(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    """(source operationId, source response, link name, link) for every link of the document."""
    for op_id, (_, _, op, _) in operations(spec).items():
        for response in op["responses"].values():
            response = resolved(spec, response)
            for name, link in response.get("links", {}).items():
                yield op_id, response, name, resolved(spec, link)


def can_hold(spec: dict[str, Any], schema: dict[str, Any], pointer: str) -> bool:
    """Whether a document valid against ``schema`` may have a value at ``pointer``."""
    schema = resolved(spec, schema)
    if not pointer:
        return True
    head, _, rest = pointer[1:].partition("/")
    rest = f"/{rest}" if rest else ""
    # `anyOf` alternatives (a record or a tombstone), or only requirements beside the properties.
    for option in [schema, *(resolved(spec, s) for s in schema.get("anyOf", []))]:
        if head.isdigit() and "items" in option and can_hold(spec, option["items"], rest):
            return True
        if head in option.get("properties", {}) and can_hold(spec, option["properties"][head], rest):
            return True
    return False


def evaluate(expression: str, body: Any) -> Any:
    """A link parameter's runtime expression (whole, or embedded in a string) on an answer body."""

    def at(pointer: str) -> Any:
        return reduce(
            lambda node, key: node[int(key)] if isinstance(node, list) else node[key], pointer[1:].split("/"), body
        )

    if expression.startswith("$response.body#"):
        return at(expression[len("$response.body#") :])
    return re.sub(r"\{\$response\.body#([^}]*)\}", lambda m: str(at(m.group(1))), expression)


def follow(client: FlaskClient, spec: dict[str, Any], link: dict[str, Any], answer: Any, **kwargs: Any) -> Any:
    path, method, _, parameters = operations(spec)[link["operationId"]]
    where = {p["name"]: p["in"] for p in parameters}
    values = {name: evaluate(expression, answer) for name, expression in link["parameters"].items()}
    target = path.format(**{k: v for k, v in values.items() if where[k] == "path"})
    query = {k: v for k, v in values.items() if where[k] == "query"}
    return client.open(target, method=method.upper(), query_string=query, **kwargs)


def test_openapi_links_name_real_operations_and_fields(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    ops = operations(spec)
    links = list(document_links(spec))
    for source, response, name, link in links:
        where = f"{source} → {name}"
        _, _, _, parameters = ops[link["operationId"]]
        names = {p["name"] for p in parameters}
        required = {p["name"] for p in parameters if p.get("required")}
        assert required <= set(link["parameters"]) <= names, where
        body = response["content"]["application/json"]["schema"]
        for expression in link["parameters"].values():
            pointers = BODY_POINTER.findall(expression)
            assert pointers, where
            assert all(can_hold(spec, body, pointer) for pointer in pointers), (where, expression)
    # From every answer holding a record or a page of it, of every kind.
    sources = {source for source, *_ in links}
    for kind in RECORD_KINDS:
        assert {
            f"{kind.name}_{op}" for op in ("list_all", "list", "create", "get", "put", "patch", "delete")
        } <= sources
    assert {"territory_list", "territory_get", "territory_put", "territory_patch"} <= sources


def test_links_lead_where_they_say(client: FlaskClient, lyon: Territory) -> None:
    write_all(client, lyon)
    spec = client.get("/api/v1/openapi.json").get_json()
    admin = lyon.auth("admin")
    links = {(source, name): link for source, _, name, link in document_links(spec)}
    read_operations = {op_id for op_id, (_, method, _, _) in operations(spec).items() if method == "get"}
    listed = 0
    # From each record: the records it names, and the lists naming it.
    for kind in [k.name for k in RECORD_KINDS] + ["territory"]:
        source = url(lyon, kind, RECORDS[kind]["id"]) if kind != "territory" else "/api/v1/territories/lyon"
        answer = client.get(source, headers=admin).get_json()
        for (op_id, name), link in links.items():
            if op_id != f"{kind}_get" or link["operationId"] not in read_operations:
                continue
            if any(BODY_POINTER.findall(e)[0].split("/")[1] not in answer for e in link["parameters"].values()):
                continue  # a reference the example leaves out
            resp = follow(client, spec, link, answer, headers=admin)
            assert resp.status_code == 200, (kind, name, resp.get_json())
            got = resp.get_json()
            if "items" in got:  # a list naming this record
                listed += len(got["items"])
                assert all(answer["id"] in json.dumps(item) for item in got["items"]), (kind, name)
            else:  # the record named
                assert got["id"] in json.dumps(answer[name]), (kind, name)
    assert listed >= 10
    # A page's first item.
    page = client.get(url(lyon, "proposal")).get_json()
    assert follow(client, spec, links["proposal_list", "first"], page).get_json() == page["items"][0]
    # A record made by POST: get it, change it, replace it, delete it, and find it gone.
    data = {k: v for k, v in RECORDS["organization"].items() if k != "id"}
    created = client.post(url(lyon, "organization"), json=data, headers=admin).get_json()
    got = follow(client, spec, links["organization_create", "get"], created)
    assert got.status_code == 200 and got.get_json() == created
    changed = follow(client, spec, links["organization_create", "change"], created, json={"name": "X"}, headers=admin)
    assert changed.status_code == 200 and changed.get_json()["name"] == "X"
    replaced = follow(
        client, spec, links["organization_patch", "replace"], changed.get_json(), json=created, headers=admin
    )
    assert replaced.status_code == 200 and replaced.get_json()["name"] == created["name"]
    deleted = follow(client, spec, links["organization_put", "delete"], replaced.get_json(), headers=admin)
    assert deleted.status_code == 200 and deleted.get_json()["deleted"] is True
    assert follow(client, spec, links["organization_delete", "get"], deleted.get_json()).status_code == 410


def test_openapi_describes_what_the_api_answers(client: FlaskClient, seeded: Territory) -> None:
    """Found by the fuzz along the links: answers the document described otherwise."""
    from jsonschema import Draft202012Validator

    spec = client.get("/api/v1/openapi.json").get_json()
    ops = operations(spec)

    def check(op_id: str, status: int, body: Any) -> None:
        response = resolved(spec, ops[op_id][2]["responses"][str(status)])
        (content,) = response["content"].values()
        schema = {**content["schema"], "components": spec["components"]}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
        assert not errors, (op_id, status, errors)

    # Problem details carry extension members: a 404's territory, a 410's tombstone.
    check("proposal_get", 404, client.get("/api/v1/territories/nowhere/proposals/p1").get_json())
    deleted = client.delete(url(seeded, "proposal", "p1"), headers=seeded.auth())
    # DELETE answers the tombstone, and lists that include deletions list it.
    check("proposal_delete", 200, deleted.get_json())
    check("proposal_get", 410, client.get(url(seeded, "proposal", "p1")).get_json())
    check("proposal_list", 200, client.get(url(seeded, "proposal") + "?include_deleted=true").get_json())
    # POST makes the id: its body has none.
    new = resolved(spec, ops["proposal_create"][2]["requestBody"]["content"]["application/json"]["schema"])
    assert "id" not in new["properties"] and "process" in new["properties"]
    # A territory's merge patch has its body documented, and reading votes needs a key.
    assert "application/merge-patch+json" in ops["territory_patch"][2]["requestBody"]["content"]
    for op_id in ("vote_get", "vote_list", "vote_list_all"):
        assert ops[op_id][2]["security"] == [{"bearer": []}]


def test_behind_a_proxy_links_use_the_forwarded_address(tmp_path: Path) -> None:
    app = make_app(tmp_path, None, PROXY_FIX=1)
    with app.app_context():
        territory = make_territory(services(), TERRITORY, ("editor",))
    client = app.test_client()
    forwarded = {"X-Forwarded-Host": "participation.example.org", "X-Forwarded-Proto": "https"}
    for i in range(2):
        assert put(client, territory, "organization", {**RECORDS["organization"], "id": f"o{i}"}).status_code == 201
    page = client.get("/api/v1/territories/lyon/organizations?limit=1", headers=forwarded).get_json()
    assert page["next"].startswith("https://participation.example.org/api/v1/territories/lyon/organizations?")
    assert page["items"][0]["iri"].startswith(f"{BASE}/id/lyon/")  # IRIs stay on the base
    app.extensions["civicfed"].close()


def test_reached_under_the_base_host_links_keep_the_base_scheme(tmp_path: Path) -> None:
    """A proxy terminating TLS forwards plain http with the public Host: links stay on the base
    IRI (https) without any proxy setting."""
    app = make_app(tmp_path, None, BASE_URI="https://participation.example.org")
    with app.app_context():
        territory = make_territory(services(), TERRITORY, ("editor",))
    client = app.test_client()
    public = {"Host": "participation.example.org"}
    for i in range(2):
        data = {**RECORDS["organization"], "id": f"o{i}"}
        resp = client.put(
            f"/api/v1/territories/lyon/organizations/o{i}", json=data, headers={**territory.auth(), **public}
        )
        assert resp.status_code == 201
    assert resp.headers["Location"] == "https://participation.example.org/api/v1/territories/lyon/organizations/o1"
    page = client.get("/api/v1/territories/lyon/organizations?limit=1", headers=public).get_json()
    assert page["next"].startswith("https://participation.example.org/api/v1/territories/lyon/organizations?")
    app.extensions["civicfed"].close()


def test_openapi_states_what_the_server_refuses(client: FlaskClient) -> None:
    """The document says the rules validation enforces, from the same schemas: clients and
    generated code learn them, and data valid against it is not refused for them."""
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    proposal, meeting = schemas["Proposal"]["properties"], schemas["Meeting"]["properties"]

    def valid(schema: dict[str, Any], value: Any) -> bool:
        from jsonschema import Draft202012Validator

        return Draft202012Validator({**schema, "components": spec["components"]}).is_valid(value)

    # Text: its length (control characters are refused too, said in docs/api.md, not a pattern).
    for text in (proposal["title"], meeting["place_name"]):
        assert valid(text, "Deux\tlignes\r\n") and not valid(text, "x" * 501)
    # Date-times: RFC 3339 as the server reads it, years 1000 to 9000.
    created = proposal["created"]
    assert created["format"] == "date-time"
    assert valid(created, "2024-02-01T10:00:00+01:00") and valid(created, "9000-12-31T23:59:59.5Z")
    assert not valid(created, "0999-12-31T23:59:59Z") and not valid(created, "9001-01-01T00:00:00Z")
    # URLs: absolute http(s) URIs (not apispec's "url"), at most 2048 characters.
    for url_field in (proposal["url"], meeting["online_url"], schemas["Organization"]["properties"]["homepage"]):
        assert url_field["format"] == "uri" and url_field["maxLength"] == 2048
        assert valid(url_field, "https://participation.example.org/p/1?x=1#top")
        assert not valid(url_field, "ftp://example.org/x") and not valid(url_field, "https://example.org/a b")
    # Money: four decimal places at most, non-negative, below 10^15.
    amount = schemas["Money"]["properties"]["amount"]
    assert (amount["multipleOf"], amount["minimum"], amount["exclusiveMaximum"]) == (0.0001, 0, 10**15)
    # Integers: within xsd:long, or the field's own range.
    for name in ("vote_count", "comment_count"):
        assert (proposal[name]["minimum"], proposal[name]["maximum"]) == (0, 2**63 - 1)
    assert (meeting["capacity"]["minimum"], meeting["capacity"]["maximum"]) == (0, 2**63 - 1)
    # A language tag; a vote needs its voter; a rule says something; an online meeting has no place.
    assert valid(proposal["language"], "zh-Hant-TW") and not valid(proposal["language"], "fr_FR")
    vote = {k: v for k, v in schemas["Vote"].items() if k in ("anyOf", "if", "then")}
    assert valid(vote, {"proposal": "p1", "voter": "ann"}) and not valid(vote, {"proposal": "p1"})
    rule = {k: v for k, v in schemas["Rule"].items() if k in ("anyOf", "if", "then")}
    assert valid(rule, {"process": "x", "title": "t", "min_votes": 0})
    assert not valid(rule, {"process": "x", "title": "t"})
    assert not valid(rule, {"process": "x", "title": "t", "allowed_themes": []})
    online = {k: v for k, v in schemas["Meeting"].items() if k in ("anyOf", "if", "then")}
    assert not valid(online, {"title": "t", "start": "x", "mode": "online", "address": "1 rue"})
    assert valid(online, {"title": "t", "start": "x", "mode": "hybrid", "address": "1 rue"})
    # Lists: the page size's bounds, and filters on a record needing one territory across territories.
    ops = operations(spec)
    for op_id in ("proposal_list", "proposal_list_all"):
        params = {p["name"]: p for p in ops[op_id][3]}
        assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 1000)
        single = "Needs a single `territory=`" in params["process"]["description"]
        assert single == (op_id == "proposal_list_all")
    assert "Needs a single `territory=`" in {p["name"]: p for p in ops["comment_list_all"][3]}["about"]["description"]
    # A record's id in the path.
    local_id = {p["name"]: p for p in ops["proposal_put"][3]}["local_id"]["schema"]
    assert valid(local_id, "p-1.x~y_z") and not valid(local_id, "a b") and not valid(local_id, "-x")


def test_openapi_page_size_follows_the_setting(tmp_path: Path) -> None:
    app = make_app(tmp_path, None, MAX_PAGE_SIZE=5)
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    (limit,) = [p for p in operations(spec)["territory_list"][3] if p["name"] == "limit"]
    assert limit["schema"]["maximum"] == 5
    app.extensions["civicfed"].close()
