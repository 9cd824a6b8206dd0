"""Organizations take up receivable proposals within their competences (docs/rules.md, "Taking a
proposal up"): `POST …/proposals/{id}/take-up` makes the proposal handled by the organization and
creates a co-construction project it implements, in one write; every other role, organization
or state of the proposal gets a problem saying why, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from server.model.kinds import KINDS
from server.records import Op
from vocabularies import CF

from .conftest import LiveServer, Territory

PROPOSALS = ("p-admin", "p-editor", "p-org", "p-other")


def _op(svc: Any, kind: str, data: dict[str, Any]) -> Op:
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], data["id"], "upsert", svc.records.prepare(KINDS[kind], body, local_id=data["id"]))


@pytest.fixture
def city(svc: Any, lyon: Territory, grenoble: Territory) -> dict[str, Territory]:
    """Lyon's process bp admits mobility and culture proposals with one support and at most
    10,000 EUR. Organizations voirie (mobility, safety) and culture (culture); keys for them, for
    an organization without a record (ghost), and Grenoble's admin. Receivable proposals
    p-admin, p-editor, p-org, p-other (mobility); p-pending has no support yet; p-over costs too
    much."""
    keys = {role: svc.state.create_key("lyon", role)[1] for role in ("organization:culture", "organization:ghost")}
    lyon.keys.update(keys)
    public = {"type": "public_body"}
    rule = {"id": "r1", "process": "bp", "title": "R", "min_votes": 1, "max_budget": {"amount": 10000}}
    ops = [
        _op(svc, "organization", {"id": "voirie", "name": "Voirie", **public, "competences": ["mobility", "safety"]}),
        _op(svc, "organization", {"id": "culture", "name": "Culture", **public, "competences": ["culture"]}),
        _op(svc, "process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        _op(svc, "rule", {**rule, "allowed_themes": ["mobility", "culture"]}),
    ]
    for pid in (*PROPOSALS, "p-pending", "p-over"):
        cost = 20000 if pid == "p-over" else 5000
        data = {
            "id": pid,
            "process": "bp",
            "title": f"Idée {pid}",
            "body": "Une piste cyclable.",
            "themes": ["mobility"],
        }
        ops.append(_op(svc, "proposal", {**data, "author": "alice", "estimated_cost": {"amount": cost}}))
        if pid != "p-pending":
            ops.append(_op(svc, "vote", {"id": f"v-{pid}", "proposal": pid, "voter": "bob"}))
    report = svc.records.write_internal("lyon", ops)
    assert report.written, report
    return {"lyon": lyon, "grenoble": grenoble}


def _take_up(client: FlaskClient, auth: dict[str, str], proposal: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    return client.post(f"/api/v1/territories/lyon/proposals/{proposal}/take-up", headers=auth, **kwargs)


def _untouched(svc: Any, proposal: str) -> None:
    assert "handled_by" not in svc.records.get("lyon", KINDS["proposal"], proposal)
    assert not svc.records.list(KINDS["project"], territories=["lyon"], filters={"implemented_by": "culture"}).items


# (who, body, status, what the problem says)
REFUSED = [
    ("no key", None, None, 401, "API key"),
    ("grenoble", "admin", {"organization": "voirie"}, 403, "territory 'grenoble'"),
    ("admin without organization", "admin", {}, 422, "names the organization"),
    ("admin for culture", "admin", {"organization": "culture"}, 403, "do not cover the proposal's themes (mobility)"),
    ("editor for culture", "editor", {"organization": "culture"}, 403, "competences (culture)"),
    ("culture", "organization:culture", None, 403, "competences (culture) do not cover"),
    ("voirie for culture", "organization:voirie", {"organization": "culture"}, 403, "cannot take proposals up for"),
    ("ghost", "organization:ghost", None, 403, "has no record"),
    ("admin for ghost", "admin", {"organization": "ghost"}, 403, "has no record"),
]  # fmt: skip


@pytest.mark.parametrize(("who", "role", "body", "status", "says"), REFUSED, ids=[r[0] for r in REFUSED])
def test_who_may_not(client: FlaskClient, svc: Any, city: dict[str, Territory], who: str, role: str | None,
                     body: Any, status: int, says: str) -> None:  # fmt: skip
    territory = city["grenoble"] if who == "grenoble" else city["lyon"]
    auth = territory.auth(role) if role else {}
    got = _take_up(client, auth, "p-other", body)
    assert got.status_code == status, got.get_json()
    problem = got.get_json()
    assert problem["status"] == status and says in problem["detail"], problem
    _untouched(svc, "p-other")


@pytest.mark.parametrize(
    ("role", "body", "proposal"),
    [("admin", {"organization": "voirie"}, "p-admin"), ("editor", {"organization": "voirie"}, "p-editor"),
     ("organization:voirie", None, "p-org")],
)  # fmt: skip
def test_who_may(
    client: FlaskClient, svc: Any, city: dict[str, Territory], role: str, body: Any, proposal: str
) -> None:
    got = _take_up(client, city["lyon"].auth(role), proposal, body)
    assert got.status_code == 201, got.get_json()
    answer = got.get_json()
    assert answer["organization"] == "voirie"
    assert answer["proposal"]["handled_by"] == "voirie"
    project = answer["project"]
    assert (project["id"], project["status"], project["implemented_by"], project["proposals"]) == (
        proposal, "co_construction", "voirie", [proposal],
    )  # fmt: skip
    assert project["process"] == "bp" and project["themes"] == ["mobility"]
    assert project["milestones"][0]["title"] == "Proposition reprise par Voirie"  # in Lyon's language
    assert got.headers["Location"].endswith(f"/api/v1/territories/lyon/projects/{proposal}")
    # Taken up once: a second organization, or the same, is told who has it.
    again = _take_up(client, city["lyon"].auth("admin"), proposal, {"organization": "voirie"})
    assert again.status_code == 409 and "already taken up by organization 'voirie'" in again.get_json()["detail"]


def test_only_receivable_proposals(client: FlaskClient, svc: Any, city: dict[str, Territory]) -> None:
    auth = city["lyon"].auth("organization:voirie")
    for proposal, status in (("p-pending", "pending"), ("p-over", "not_receivable")):
        got = _take_up(client, auth, proposal)
        assert got.status_code == 409, got.get_json()
        assert got.get_json()["receivability"] == status
        assert f"its receivability is {status}" in got.get_json()["detail"]
    assert _take_up(client, auth, "nope").status_code == 404


def test_bad_bodies(client: FlaskClient, svc: Any, city: dict[str, Territory]) -> None:
    auth = city["lyon"].auth("organization:voirie")
    cases = [
        ({"organisation": "voirie"}, 422, "#/organisation"),
        ({"project": {"status": "unknown"}}, 422, "#/project/status"),
        ({"project": {"implemented_by": "culture"}}, 422, "#/project/implemented_by"),
        ([1], 422, "#"),
    ]
    for body, status, pointer in cases:
        got = _take_up(client, auth, "p-other", body)
        assert got.status_code == status, (body, got.get_json())
        assert pointer in [e["pointer"] for e in got.get_json()["errors"]], got.get_json()
    text = client.post(
        "/api/v1/territories/lyon/proposals/p-other/take-up", data="x", headers={**auth, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    _untouched(svc, "p-other")
    # The project's own fields go through: an id and a title of the organization's choosing.
    given = {"project": {"id": "pistes-2025", "title": "Pistes cyclables 2025", "start_date": "2025-03-01"}}
    got = _take_up(client, auth, "p-other", given)
    assert got.status_code == 201, got.get_json()
    assert (got.get_json()["project"]["id"], got.get_json()["project"]["title"]) == (
        "pistes-2025",
        "Pistes cyclables 2025",
    )


def test_published_as_linked_data(client: FlaskClient, svc: Any, city: dict[str, Territory]) -> None:
    assert _take_up(client, city["lyon"].auth("organization:voirie"), "p-org").status_code == 201
    urls = svc.records.urls
    proposal, org, project = (
        urls.resource("lyon", k, i)
        for k, i in (("proposal", "p-org"), ("organization", "voirie"), ("project", "p-org"))
    )
    rows = svc.records.select(
        f"SELECT ?s ?p ?o WHERE {{ GRAPH <{urls.territory_graph('lyon')}> {{ VALUES (?s ?p ?o) {{ "
        f"(<{proposal}> <{CF.handledBy}> <{org}>) (<{project}> <{CF.implementedBy}> <{org}>) }} ?s ?p ?o }} }}"
    )
    assert len(rows) == 2
    assert client.get("/id/lyon/project/p-org", headers={"Accept": "text/turtle"}).status_code == 200


@pytest.mark.live
def test_take_up_over_http(live_server: LiveServer) -> None:
    """On the demo: a receivable proposal of Lyon's budget taken up by the organization of its
    theme with the admin key, through a real server."""
    base = f"{live_server.url}/api/v1/territories/lyon"
    listed = requests.get(f"{base}/processes/bp-2024/receivability", timeout=30).json()
    assert listed["counts"]["receivable"] > 0
    free = None
    for item in listed["proposals"]:
        proposal = requests.get(f"{base}/proposals/{item['id']}", timeout=30).json()
        if not proposal.get("handled_by"):
            free = proposal
            break
    assert free is not None, "every receivable proposal of the demo is taken up already"
    orgs = requests.get(f"{base}/organizations?limit=100", timeout=30).json()["items"]
    org = next(o["id"] for o in orgs if set(o.get("competences", [])) & set(free["themes"]))
    got = requests.post(
        f"{base}/proposals/{free['id']}/take-up",
        json={"organization": org},
        headers=live_server.auth("admin"),
        timeout=30,
    )
    assert got.status_code == 201, got.text
    project = requests.get(got.headers["Location"], timeout=30).json()
    assert (project["implemented_by"], project["proposals"], project["status"]) == (
        org,
        [free["id"]],
        "co_construction",
    )
    assert requests.get(f"{base}/proposals/{free['id']}", timeout=30).json()["handled_by"] == org
