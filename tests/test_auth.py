"""Who may write what: no key → 401, wrong territory or role → 403; reads are public."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from server.model.examples import RECORDS, record

from .conftest import Territory, put

P1 = "/api/v1/territories/lyon/proposals/p1"


def test_reads_are_public(client: FlaskClient, seeded: Territory) -> None:
    assert client.get(P1).status_code == 200
    assert client.get("/api/v1/territories/lyon/proposals").status_code == 200


def test_no_key_bad_key_revoked_key(client: FlaskClient, seeded: Territory, svc: Any) -> None:
    data = RECORDS["proposal"]
    no_key = client.put(P1, json=data)
    assert no_key.status_code == 401
    assert no_key.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.put(P1, json=data, headers={"Authorization": "Bearer cfk_nope"}).status_code == 401
    assert client.put(P1, json=data, headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    key_id, key = svc.state.create_key("lyon", "editor")
    assert client.put(P1, json=data, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert svc.state.revoke_key(key_id)
    assert client.put(P1, json=data, headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_key_of_another_territory(client: FlaskClient, seeded: Territory, grenoble: Territory) -> None:
    resp = client.put(P1, json=RECORDS["proposal"], headers=grenoble.auth())
    assert resp.status_code == 403
    assert "grenoble" in resp.get_json()["detail"]


def test_keys_are_stored_hashed(svc: Any, seeded: Territory) -> None:
    from sqlalchemy import text

    with svc.state.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT key_hash FROM api_keys"))]
    for key in seeded.keys.values():
        assert key not in stored
        assert all(key not in s for s in stored)


MATRIX = [
    # role, method, kind, data changes or patch, expected status
    ("admin", "PUT", "territory", None, 200),
    ("editor", "PUT", "territory", None, 403),
    ("editor", "PUT", "proposal", {}, 200),
    ("editor", "DELETE", "proposal", None, 200),
    ("organization:voirie", "PUT", "proposal", {}, 403),
    ("organization:voirie", "PATCH", "proposal", {"status": "accepted"}, 200),
    ("organization:voirie", "PATCH", "proposal", {"title": "Autre titre"}, 403),
    ("organization:voirie", "DELETE", "proposal", None, 403),
    ("organization:voirie", "PUT", "project", {}, 201),
    ("organization:voirie", "PUT", "project", {"implemented_by": "jardins"}, 403),
    ("organization:voirie", "PATCH", "organization", {"description": "Nouveau"}, 200),
    ("organization:voirie", "DELETE", "organization", None, 403),
    ("organization:voirie", "PUT", "meeting", {}, 403),
    ("organization:jardins", "PATCH", "proposal", {"status": "accepted"}, 403),
]


@pytest.mark.parametrize(("role", "method", "kind", "change", "expected"), MATRIX)
def test_role_matrix(
    client: FlaskClient, svc: Any, seeded: Territory, role: str, method: str, kind: str, change: Any, expected: int
) -> None:
    put(client, seeded, "organization", record("organization", id="jardins"))
    key = seeded.keys.get(role) or svc.state.create_key("lyon", role)[1]
    headers = {"Authorization": f"Bearer {key}"}
    if kind == "territory":
        from server.model.examples import TERRITORY

        resp = client.put("/api/v1/territories/lyon", json=TERRITORY, headers=headers)
    else:
        path = f"/api/v1/territories/lyon/{kind}s/{RECORDS[kind]['id']}".replace("processs", "processes")
        if method == "PUT":
            resp = client.put(path, json=record(kind, **(change or {})), headers=headers)
        elif method == "PATCH":
            resp = client.patch(path, json=change, headers=headers)
        else:
            resp = client.delete(path, headers=headers)
    assert resp.status_code == expected, resp.get_json()


def test_votes_are_not_published(client: FlaskClient, seeded: Territory, svc: Any) -> None:
    put(client, seeded, "vote", {"id": "v1", "proposal": "p1", "voter": "alice"})
    assert client.get("/api/v1/territories/lyon/votes").status_code == 401
    assert client.get("/api/v1/territories/lyon/votes/v1").status_code == 401
    assert client.get("/api/v1/votes").status_code == 401
    org = {"Authorization": f"Bearer {seeded.keys['organization:voirie']}"}
    assert client.get("/api/v1/territories/lyon/votes", headers=org).status_code == 403
    listed = client.get("/api/v1/territories/lyon/votes", headers=seeded.auth()).get_json()["items"]
    assert [v["id"] for v in listed] == ["v1"]
    # The count is public.
    assert client.get(P1).get_json()["vote_count"] == 1
