"""Receivability rules evaluated automatically (docs/rules.md): every write that touches a
proposal, its supports or its process's rules decides the proposal anew; each decision (status,
each condition met, unmet or pending, the value that decided it) is published as a
cf:ReceivabilityDecision / m8g:Evidence with its time, and a new decision replaces the last one
without erasing it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.model.kinds import KINDS
from server.records import Op
from server.records.decisions import decision_history
from vocabularies import CF, M8G

from .conftest import Territory, put

LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
EARLIER = "2024-01-31T23:00:00Z"


def _op(svc: Any, kind: str, data: dict[str, Any], action: str = "upsert") -> Op:
    if action == "delete":
        return Op(KINDS[kind], data["id"], "delete", None)
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], data["id"], action, svc.records.prepare(KINDS[kind], body, local_id=data["id"]))


def _write(svc: Any, *ops: tuple[str, dict[str, Any]]) -> None:
    report = svc.records.write_internal("lyon", [_op(svc, k, d) for k, d in ops])
    assert report.written, report


def _decisions(svc: Any, proposal: str) -> list[dict[str, Any]]:
    return decision_history(svc.records.reader, "lyon", svc.records.urls.resource("lyon", "proposal", proposal))


def _status(svc: Any, proposal: str) -> str | None:
    found = _decisions(svc, proposal)
    return found[0]["status"] if found else None


def _votes(svc: Any, proposal: str, n: int, start: int = 0, created: str | None = None) -> None:
    votes = [{"id": f"{proposal}-v{i}", "proposal": proposal, "voter": f"voter-{i}"} for i in range(start, start + n)]
    if created:
        for v in votes:
            v["created"] = created
    _write(svc, *(("vote", v) for v in votes))


@pytest.fixture
def bp(svc: Any, lyon: Territory) -> str:
    """Process bp with rule r1: 3 supports by a deadline a month away, themes mobility or
    environment, at most 10,000 EUR."""
    _write(
        svc,
        ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        (
            "rule",
            {
                "id": "r1",
                "process": "bp",
                "title": "Recevabilité",
                "min_votes": 3,
                "votes_deadline": LATER,
                "allowed_themes": ["mobility", "environment"],
                "max_budget": {"amount": 10000},
            },
        ),
    )
    return "bp"


def _proposal(pid: str = "p1", **extra: Any) -> tuple[str, dict[str, Any]]:
    data = {"id": pid, "process": "bp", "title": "Pistes cyclables", "author": "alice", "themes": ["mobility"]}
    data["estimated_cost"] = {"amount": 8000}
    return ("proposal", {**data, **extra})


def test_pending_until_the_threshold_exactly(svc: Any, bp: str) -> None:
    _write(svc, _proposal())
    [first] = _decisions(svc, "p1")
    assert first["status"] == "pending"
    supports = next(c for c in first["conditions"] if c["condition"] == "min-votes")
    assert (supports["outcome"], supports["value"], supports["expected"]) == ("pending", "0", f">= 3 by {LATER}")
    assert {c["condition"]: c["outcome"] for c in first["conditions"]} == {
        "min-votes": "pending",
        "themes": "met",
        "max-budget": "met",
    }
    _votes(svc, "p1", 2)
    assert len(_decisions(svc, "p1")) == 1  # 2 of 3: nothing new decided
    _votes(svc, "p1", 1, start=2)
    latest, previous = _decisions(svc, "p1")
    assert latest["status"] == "receivable"  # exactly at the threshold
    assert latest["replaces"] == previous["iri"] == first["iri"]
    assert next(c for c in latest["conditions"] if c["condition"] == "min-votes")["value"] == "3"
    _votes(svc, "p1", 1, start=3)
    assert len(_decisions(svc, "p1")) == 2  # one more support decides nothing new


def test_theme_not_allowed_and_cost_over_the_cap(svc: Any, bp: str) -> None:
    _write(svc, _proposal("p2", themes=["culture"]), _proposal("p3", estimated_cost={"amount": 10000.01}))
    [p2] = _decisions(svc, "p2")
    assert p2["status"] == "not_receivable"
    themes = next(c for c in p2["conditions"] if c["condition"] == "themes")
    assert (themes["outcome"], themes["value"]) == ("unmet", "culture")
    [p3] = _decisions(svc, "p3")
    assert p3["status"] == "not_receivable"
    cost = next(c for c in p3["conditions"] if c["condition"] == "max-budget")
    assert (cost["outcome"], cost["value"], cost["expected"]) == ("unmet", "10000.01 EUR", "<= 10000 EUR")


def test_rule_changed_after_votes(svc: Any, bp: str) -> None:
    _write(svc, _proposal())
    _votes(svc, "p1", 2)
    assert _status(svc, "p1") == "pending"
    rule = {k: v for k, v in svc.records.get("lyon", KINDS["rule"], "r1").items() if not k.startswith("record_")}
    rule.pop("iri", None), rule.pop("territory", None)
    _write(svc, ("rule", {**rule, "min_votes": 2}))
    latest = _decisions(svc, "p1")[0]
    assert latest["status"] == "receivable"
    assert next(c for c in latest["conditions"] if c["condition"] == "min-votes")["expected"] == f">= 2 by {LATER}"
    # The rule deleted: no rule applies, the history stays.
    svc.records.write_internal("lyon", [Op(KINDS["rule"], "r1", "delete", None)])
    latest, first = _decisions(svc, "p1")
    assert not latest["current"] and latest["ended_at"] is not None  # it stood until the rule went
    assert first["ended_at"] == latest["decided_at"]
    p1 = svc.records.urls.resource("lyon", "proposal", "p1")
    graph = svc.records.urls.receivability_graph("lyon")
    got = svc.records.select(f"SELECT ?d WHERE {{ GRAPH <{graph}> {{ <{p1}> <{CF.receivability}> ?d }} }}")
    assert got == []


def test_after_the_votes_deadline(svc: Any, lyon: Territory) -> None:
    """Supports given after the votes' deadline do not count."""
    _write(
        svc,
        ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        ("rule", {"id": "r1", "process": "bp", "title": "R", "min_votes": 2, "votes_deadline": EARLIER}),
        _proposal(),
    )
    _votes(svc, "p1", 1, created="2024-01-30T10:00:00Z")
    _votes(svc, "p1", 1, start=1, created=EARLIER)  # at the deadline: counts
    _votes(svc, "p1", 3, start=2)  # recorded now, after it
    latest = _decisions(svc, "p1")[0]
    assert latest["status"] == "receivable"
    assert next(c for c in latest["conditions"] if c["condition"] == "min-votes")["value"] == "2"
    svc.records.write_internal("lyon", [Op(KINDS["vote"], "p1-v1", "delete", None)])
    latest = _decisions(svc, "p1")[0]
    assert latest["status"] == "not_receivable"
    assert next(c for c in latest["conditions"] if c["condition"] == "min-votes")["explanation"] == (
        f"1 supports by {EARLIER}, 2 needed"
    )


def test_submission_deadline_and_deleted_proposal(svc: Any, lyon: Territory) -> None:
    _write(
        svc,
        ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        ("rule", {"id": "r1", "process": "bp", "title": "R", "deadline": EARLIER}),
        _proposal("on-time", created=EARLIER),
        _proposal("late", created="2024-01-31T23:00:00.000001Z"),
    )
    assert _status(svc, "on-time") == "receivable"
    assert _status(svc, "late") == "not_receivable"
    svc.records.write_internal("lyon", [Op(KINDS["proposal"], "late", "delete", None)])
    assert _decisions(svc, "late") == []


def _box(south: float, north: float) -> dict[str, Any]:
    ring = [[4.80, south], [4.86, south], [4.86, north], [4.80, north], [4.80, south]]
    return {"type": "Polygon", "coordinates": [ring]}


SQUARE = _box(45.74, 45.78)


def test_within_a_district(svc: Any, lyon: Territory) -> None:
    """Inside: its district is the rule's or lies in it, or its point is inside the boundary."""
    _write(
        svc,
        ("district", {"id": "69381", "name": "Lyon 1er", "level": "arrondissement", "geometry": SQUARE}),
        ("district", {"id": "pentes", "name": "Les Pentes", "level": "quartier", "parent": "69381"}),
        ("district", {"id": "69383", "name": "Lyon 3e", "level": "arrondissement"}),
        ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        ("rule", {"id": "local", "process": "bp", "title": "Dans le 1er", "within": "69381"}),
        _proposal("in-quartier", district="pentes"),
        _proposal("at-point", location={"lat": 45.76, "lon": 4.83}),
        _proposal("outside-point", location={"lat": 45.70, "lon": 4.83}),
        _proposal("other-district", district="69383"),
        _proposal("nowhere"),
    )
    got = {p: _decisions(svc, p)[0] for p in ("in-quartier", "at-point", "outside-point", "other-district", "nowhere")}
    assert {p: d["status"] for p, d in got.items()} == {
        "in-quartier": "receivable",
        "at-point": "receivable",
        "outside-point": "not_receivable",
        "other-district": "not_receivable",
        "nowhere": "not_receivable",
    }
    assert got["nowhere"]["conditions"][0]["explanation"] == "no location given"
    # The boundary moves: the proposals located by their point are decided again.
    moved = _box(45.60, 45.72)
    _write(svc, ("district", {"id": "69381", "name": "Lyon 1er", "level": "arrondissement", "geometry": moved}))
    assert (_status(svc, "at-point"), _status(svc, "outside-point")) == ("not_receivable", "receivable")


def test_votes_close_without_a_write(svc: Any, lyon: Territory) -> None:
    """A proposal short of supports is pending until the votes close; the sweep (run by `civicfed
    serve` when a deadline passes) then finds it not receivable, with no write in between."""
    closes = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    _write(
        svc,
        ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        ("rule", {"id": "r1", "process": "bp", "title": "R", "min_votes": 2, "votes_deadline": closes.isoformat()}),
        _proposal("short"),
        _proposal("enough"),
    )
    _votes(svc, "short", 1)
    _votes(svc, "enough", 2, start=5)
    assert (_status(svc, "short"), _status(svc, "enough")) == ("pending", "receivable")
    records = svc.records
    before = closes - dt.timedelta(minutes=1)
    assert records.due_processes("lyon", before - dt.timedelta(minutes=1), before) == set()
    assert records.decide("lyon", now=before) == 0  # nothing turns before the deadline
    after = closes + dt.timedelta(seconds=1)
    assert records.due_processes("lyon", before, after) == {"bp"}
    assert records.decide("lyon", {"bp"}, now=after) == 1
    assert (_status(svc, "short"), _status(svc, "enough")) == ("not_receivable", "receivable")
    assert records.decide("lyon", {"bp"}, now=after) == 0  # decided once


def test_decisions_conform_to_the_shapes(svc: Any, bp: str, client: FlaskClient) -> None:
    import pyshacl
    import rdflib

    from vocabularies import SHAPES_FILE

    _write(svc, _proposal(), _proposal("p2", themes=["culture"]))
    _votes(svc, "p1", 3)
    graph = svc.records.urls.receivability_graph("lyon")
    nt = "\n".join(
        f"{r['s']} {r['p']} {r['o']} ."
        for r in svc.records.select(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    )
    # The rules' constraints the decisions point to, with the decisions.
    data = rdflib.Graph().parse(data=nt, format="nt")
    rule = client.get("/id/lyon/rule/r1", headers={"Accept": "text/turtle"}).data
    data += rdflib.Graph().parse(data=rule, format="turtle")
    decisions = list(data.subjects(rdflib.RDF.type, rdflib.URIRef(CF.ReceivabilityDecision)))
    assert len(decisions) == 3
    conforms, _, report = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES_FILE))
    assert conforms, report
    # A decision without its status does not.
    data.remove((decisions[0], rdflib.URIRef(CF.decisionStatus), None))
    assert not pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES_FILE))[0]


def test_api_document_and_page(svc: Any, bp: str, client: FlaskClient, lyon: Territory) -> None:
    assert put(client, lyon, "proposal", dict(_proposal()[1])).status_code == 201
    assert put(client, lyon, "proposal", dict(_proposal("p2", themes=["culture"])[1])).status_code == 201
    for i in range(3):
        assert put(client, lyon, "vote", {"id": f"v{i}", "proposal": "p1", "voter": f"u{i}"}).status_code == 201

    got = client.get("/api/v1/territories/lyon/proposals/p1/receivability")
    assert got.status_code == 200, got.get_json()
    body = got.get_json()
    assert (body["status"], len(body["history"])) == ("receivable", 2)
    assert body["decision"] == body["history"][0]["iri"] and body["history"][0]["current"]
    assert body["history"][0]["replaces"] == body["history"][1]["iri"]
    assert body["decision"].startswith(body["document"] + "#")

    got = client.get("/api/v1/territories/lyon/processes/bp/receivability").get_json()
    assert got["counts"] == {"receivable": 1, "not_receivable": 1, "pending": 0}
    assert [p["id"] for p in got["proposals"]] == ["p1"]
    got = client.get("/api/v1/territories/lyon/processes/bp/receivability?status=not_receivable").get_json()
    assert [p["id"] for p in got["proposals"]] == ["p2"]
    bad = client.get("/api/v1/territories/lyon/processes/bp/receivability?status=maybe")
    assert bad.status_code == 400 and "status" in bad.get_data(as_text=True)
    rules = client.get("/api/v1/territories/lyon/processes/bp/rules").get_json()
    assert [r["id"] for r in rules["rules"]] == ["r1"]
    for url in (
        "/api/v1/territories/lyon/proposals/nope/receivability",
        "/api/v1/territories/lyon/processes/nope/rules",
        "/api/v1/territories/lyon/processes/nope/receivability",
        "/receivability/lyon/nope",
    ):
        missing = client.get(url, headers={"Accept": "application/json"})
        assert missing.status_code == 404, url
        assert missing.get_json()["status"] == 404

    from pyoxigraph import RdfFormat, parse

    doc = client.get("/receivability/lyon/p1", headers={"Accept": "text/turtle"})
    assert doc.status_code == 200 and doc.mimetype == "text/turtle"
    triples = list(parse(doc.data, format=RdfFormat.TURTLE))
    nodes = {t.subject.value for t in triples if t.object.value.endswith("#ReceivabilityDecision")}
    assert nodes == {h["iri"] for h in body["history"]}
    assert client.get("/receivability/lyon/p1.nt").mimetype == "application/n-triples"
    ld = client.get("/receivability/lyon/p1", headers={"Accept": "application/ld+json"}).get_json()
    keys = {k for node in ld["@graph"] for k in node}
    assert {"decisionStatus", "supportsValue", "outcome", "expected"} <= keys
    assert not [k for k in keys if k.startswith(("http", str(CF), str(M8G)))]  # every term compacted
    assert client.get("/receivability/lyon/p1", headers={"If-None-Match": doc.headers["ETag"]}).status_code == 304

    page = client.get("/id/lyon/proposal/p2", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Receivability" in page and "Not receivable" in page and "culture" in page
    french = client.get("/id/lyon/proposal/p2", headers={"Accept": "text/html", "Accept-Language": "fr"})
    assert "Non recevable" in french.get_data(as_text=True)
    # The rule changes: the page's entity tag too, though the proposal did not change.
    tag = client.get("/id/lyon/proposal/p2", headers={"Accept": "text/html"}).headers["ETag"]
    rule = {k: v for k, v in svc.records.get("lyon", KINDS["rule"], "r1").items() if not k.startswith("record_")}
    rule.pop("iri", None), rule.pop("territory", None)
    assert put(client, lyon, "rule", {**rule, "allowed_themes": ["culture"]}, role="admin").status_code == 200
    again = client.get("/id/lyon/proposal/p2", headers={"Accept": "text/html", "If-None-Match": tag})
    assert again.status_code == 200 and "Pending" in again.get_data(as_text=True)


def test_rule_fields_validated(client: FlaskClient, lyon: Territory, bp: str) -> None:
    lone = {"id": "r2", "process": "bp", "title": "R", "votes_deadline": LATER, "allowed_themes": ["culture"]}
    got = put(client, lyon, "rule", lone, role="admin")
    assert got.status_code == 422
    assert any(e.get("pointer") == "#/votes_deadline" for e in got.get_json()["errors"]), got.get_json()
    got = put(client, lyon, "rule", {"id": "r2", "process": "bp", "title": "R", "within": "nowhere"}, role="admin")
    assert got.status_code == 422 and "nowhere" in got.get_data(as_text=True)


def test_shares_kept_by_writes_and_the_sweep(svc: Any, lyon: Territory) -> None:
    """receivable_share and taken_up_share of the proposals created in May 2024 move with their
    decisions and take-ups, whether a write or a deadline moves them, and equal a computation from
    scratch. Hand-computed: 1 receivable of 2 decided (50 %), then 1 of 3 (33.33 %); 0 then
    100 % of the receivable ones taken up."""
    from decimal import Decimal

    from server.indicators.compute import recompute

    closes = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    may = "2024-05-10T10:00:00Z"
    rule = {"id": "r1", "process": "bp", "title": "R", "min_votes": 2, "votes_deadline": closes.isoformat()}
    _write(
        svc,
        ("organization", {"id": "voirie", "name": "Voirie", "type": "public_body", "competences": ["mobility"]}),
        ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}),
        ("rule", {**rule, "allowed_themes": ["mobility"]}),
        _proposal("yes", created=may),
        _proposal("no", created=may, themes=["culture"]),
        _proposal("short", created=may),
    )
    _votes(svc, "yes", 2)
    _votes(svc, "short", 1, start=10)

    def share(code: str, period: str = "2024", process: str | None = None) -> Any:
        return svc.records.indicator_values("lyon").get((code, period, process, None))

    assert share("receivable_share") == Decimal("50.00")  # "short" is pending: not decided yet
    assert share("receivable_share", "2024-05", "bp") == Decimal("50.00")
    assert share("taken_up_share") == Decimal("0.00")
    svc.records.take_up("lyon", "yes", None, "voirie")
    assert share("taken_up_share") == Decimal("100.00")
    # "short" turns; "no" stays not receivable, its supports now unmet rather than pending.
    assert svc.records.decide("lyon", now=closes + dt.timedelta(seconds=1)) == 2
    assert share("receivable_share") == Decimal("33.33")
    assert svc.records.indicator_values("lyon") == recompute(svc.records, "lyon")
    # The cube publishes them as decimals.
    cube = "\n".join(str(t) for t in svc.records.indicator_cube_triples("lyon"))
    assert f'<{CF.receivableShare}> "33.33"^^<http://www.w3.org/2001/XMLSchema#decimal>' in cube
    assert f'<{CF.takenUpShare}> "100"^^<http://www.w3.org/2001/XMLSchema#decimal>' in cube  # (canonical)
    assert svc.records.indicator_cube_differences("lyon", svc.records.indicator_values("lyon")) == 0


BP = ("process", {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"})
MAY = "2024-05-10T10:00:00Z"


def test_votes_dated_by_their_first_recording(svc: Any, lyon: Territory) -> None:
    """An undated vote counts from when this server first recorded it: changed after the votes
    closed, a vote given in time still counts."""
    rule = {"id": "r1", "process": "bp", "title": "R", "min_votes": 2}
    _write(svc, BP, ("rule", rule), _proposal())
    _votes(svc, "p1", 2)
    closed = dt.datetime.now(dt.UTC)
    _write(svc, ("rule", {**rule, "votes_deadline": closed.isoformat()}))
    assert _status(svc, "p1") == "receivable"
    _write(svc, ("vote", {"id": "p1-v0", "proposal": "p1", "voter": "someone-else"}))
    assert _status(svc, "p1") == "receivable"
    _votes(svc, "p1", 1, start=7)  # a new one, after the deadline, does not count
    latest = _decisions(svc, "p1")[0]
    assert next(c for c in latest["conditions"] if c["condition"] == "min-votes")["value"] == "2"


def test_undated_proposal_submitted_when_first_recorded(svc: Any, lyon: Territory) -> None:
    """A proposal without `created` was submitted when this server first recorded it, not when
    its supports last moved it (a rule added later judges it so)."""
    _write(svc, BP, _proposal())
    deadline = dt.datetime.now(dt.UTC)
    _votes(svc, "p1", 1)  # rewrites the proposal's count after the deadline
    _write(svc, ("rule", {"id": "r1", "process": "bp", "title": "R", "deadline": deadline.isoformat()}))
    assert _status(svc, "p1") == "receivable"


def test_reparented_district_decides_again(svc: Any, lyon: Territory) -> None:
    quartier = {"id": "pentes", "name": "Pentes", "level": "quartier", "parent": "69381"}
    _write(
        svc,
        ("district", {"id": "69381", "name": "1er", "level": "arrondissement", "geometry": SQUARE}),
        ("district", {"id": "69383", "name": "3e", "level": "arrondissement"}),
        ("district", quartier),
        BP,
        ("rule", {"id": "r1", "process": "bp", "title": "R", "within": "69381"}),
        _proposal(district="pentes"),
    )
    assert _status(svc, "p1") == "receivable"
    _write(svc, ("district", {**quartier, "parent": "69383"}))
    assert _status(svc, "p1") == "not_receivable"


def test_a_cap_however_written_decides_nothing_new(svc: Any, lyon: Territory) -> None:
    _write(svc, BP, ("rule", {"id": "r1", "process": "bp", "title": "R", "max_budget": {"amount": 10000.0},
                              "min_votes": 5}), _proposal())  # fmt: skip
    _votes(svc, "p1", 1)
    [only] = _decisions(svc, "p1")
    assert next(c for c in only["conditions"] if c["condition"] == "max-budget")["expected"] == "<= 10000 EUR"


def test_last_vote_deleted_as_the_decision_moves(svc: Any, lyon: Territory) -> None:
    """The proposal's votes go back to what its platform reported (none) as its decision moves."""
    from server.indicators.compute import recompute

    _write(svc, BP, ("rule", {"id": "r1", "process": "bp", "title": "R", "min_votes": 1}), _proposal(created=MAY))
    _votes(svc, "p1", 1)
    svc.records.write_internal("lyon", [Op(KINDS["vote"], "p1-v0", "delete", None)])
    assert _status(svc, "p1") == "pending"
    assert svc.records.indicator_values("lyon") == recompute(svc.records, "lyon")


def test_old_store_vote_keeps_its_time_once_rewritten(svc: Any, lyon: Territory) -> None:
    """A vote recorded before civicfed kept first recordings is dated by its last change then,
    and keeps that date when rewritten."""
    rule = {"id": "r1", "process": "bp", "title": "R", "min_votes": 2}
    _write(svc, BP, ("rule", rule), _proposal())
    _votes(svc, "p1", 2)
    svc.records.store.update(f"DELETE WHERE {{ GRAPH ?g {{ ?s <{CF.recordCreated}> ?o }} }}")  # an older store
    _write(svc, ("rule", {**rule, "votes_deadline": dt.datetime.now(dt.UTC).isoformat()}))
    _write(svc, ("vote", {"id": "p1-v0", "proposal": "p1", "voter": "someone-else"}))
    assert _status(svc, "p1") == "receivable"
    _votes(svc, "p1", 1, start=7)  # a later vote, after the deadline
    assert _status(svc, "p1") == "receivable"


def test_cells_of_an_older_civicfed_counted_again(svc: Any, lyon: Territory) -> None:
    """Cells kept by a civicfed without the shares' counts (no version) are counted again from
    the records by the next write, not added to (the shares went negative)."""
    from server.indicators.compute import recompute

    rule = {"id": "r1", "process": "bp", "title": "R", "allowed_themes": ["mobility"]}
    _write(svc, BP, ("rule", rule), _proposal(created=MAY), _proposal("p2", created=MAY))
    # As such a civicfed left them: in the store, without a version (or the shares' counts).
    g = svc.records.urls.indicators_graph("lyon")
    svc.records.writer.cells.rows.clear("lyon")
    svc.records.store.update(f"DELETE WHERE {{ GRAPH <{g}> {{ <{g}#cells> ?p ?o }} }}")
    old = f"<{g}/proposals/2024/_/_> <{CF.cellValue}> 2"
    svc.records.store.update(f"INSERT DATA {{ GRAPH <{g}> {{ {old} }} }}")
    _write(svc, _proposal("p3", created=MAY))
    assert not svc.records.store.select(f"SELECT ?v WHERE {{ GRAPH <{g}> {{ ?s <{CF.cellValue}> ?v }} }}")
    _write(svc, ("rule", {**rule, "allowed_themes": ["culture"]}))
    assert svc.records.indicator_values("lyon") == recompute(svc.records, "lyon")
    assert svc.records.indicator_values("lyon")[("receivable_share", "2024", None, None)] == 0
