"""Personal data never reaches the store; pseudonyms are stable per territory, distinct across."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from server.model.examples import record
from server.privacy import pseudonym

from .conftest import Territory, put, snapshot

IDENTITIES = ["Alice Martin", "alice.martin@example.org", "bob-77", "Chloé Durand", "chloe@example.org"]


def everything_stored(svc: Any) -> str:
    return snapshot(svc).decode()


def test_no_identity_in_the_store_after_ingest(client: FlaskClient, seeded: Territory, svc: Any) -> None:
    lines = [
        {
            "kind": "proposal",
            **record(
                "proposal", id="p2", author_id=None, author="Alice Martin", author_email="alice.martin@example.org"
            ),
        },
        {"kind": "comment", **record("comment", id="c1", author_id=None, author="bob-77")},
        {"kind": "comment", **record("comment", id="c2", author_id=None, author_email="Chloe@Example.org")},
        {"kind": "vote", "id": "v1", "proposal": "p2", "voter": "Chloé Durand"},
        {"kind": "vote", "id": "v2", "proposal": "p2", "voter": "alice.martin@example.org"},
    ]
    body = b"\n".join(json.dumps(x).encode() for x in lines)
    report = client.post(
        "/api/v1/territories/lyon/ingest", data=body, content_type="application/x-ndjson", headers=seeded.auth()
    ).get_json()
    assert report["written"], report
    stored = everything_stored(svc).lower()
    for identity in [*IDENTITIES, "chloe@example.org"]:
        assert identity.lower() not in stored
    assert "example.org" not in stored.replace("https://visio.example.org", "")
    # And nothing comes back out of the API either.
    text = json.dumps(client.get("/api/v1/territories/lyon/comments").get_json()).lower()
    assert "bob-77" not in text and "chloe" not in text


def test_same_person_same_pseudonym(client: FlaskClient, seeded: Territory, svc: Any) -> None:
    put(client, seeded, "proposal", record("proposal", id="p2", author_id=None, author="bob-77"))
    put(client, seeded, "comment", record("comment", author_id=None, author="bob-77"))
    put(client, seeded, "vote", {"id": "v1", "proposal": "p2", "voter": "bob-77"})
    proposal = client.get("/api/v1/territories/lyon/proposals/p2").get_json()
    comment = client.get("/api/v1/territories/lyon/comments/c1").get_json()
    vote = client.get("/api/v1/territories/lyon/votes/v1", headers=seeded.auth()).get_json()
    assert proposal["author_id"] == comment["author_id"] == vote["voter_id"]
    assert proposal["author_id"] == pseudonym(svc.state.secret("lyon"), "bob-77")
    # Emails are compared case-insensitively; an email stands in for a missing user id.
    put(client, seeded, "comment", record("comment", id="c2", author_id=None, author_email="Bob@Example.org"))
    put(client, seeded, "comment", record("comment", id="c3", author_id=None, author_email="bob@example.org"))
    c2 = client.get("/api/v1/territories/lyon/comments/c2").get_json()
    c3 = client.get("/api/v1/territories/lyon/comments/c3").get_json()
    assert c2["author_id"] == c3["author_id"] != proposal["author_id"]


def test_pseudonyms_differ_between_territories(
    client: FlaskClient, seeded: Territory, grenoble: Territory, svc: Any
) -> None:
    assert svc.state.secret("lyon") != svc.state.secret("grenoble")
    assert pseudonym(svc.state.secret("lyon"), "bob-77") != pseudonym(svc.state.secret("grenoble"), "bob-77")


def test_votes_live_in_an_unpublished_graph(client: FlaskClient, seeded: Territory, svc: Any) -> None:
    put(client, seeded, "vote", {"id": "v1", "proposal": "p1", "voter": "alice"})
    public = svc.urls.territory_graph("lyon")
    vote_iri = svc.urls.resource("lyon", "vote", "v1")
    assert not list(svc.store.quads(subject=vote_iri, graph=public))
    assert list(svc.store.quads(subject=vote_iri, graph=svc.urls.private_graph("lyon")))
    assert svc.urls.is_internal_graph(svc.urls.private_graph("lyon"))
