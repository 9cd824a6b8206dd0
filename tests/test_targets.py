"""Targets for pilot projects: a territory and its processes set values on indicators for a year or
a month (`targets` of their records, published as cf:Target nodes); `GET
/api/v1/territories/{t}/targets` sets each beside the indicator's value with its progress and
whether it is met, and the territory's page shows them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from pyoxigraph import RdfFormat, parse

from server.indicators.targets import targets
from server.model.kinds import KINDS
from server.records import Op
from vocabularies import CF

from .conftest import Territory, put


def _op(svc: Any, kind: str, data: dict[str, Any]) -> Op:
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], data["id"], "upsert", svc.records.prepare(KINDS[kind], body, local_id=data["id"]))


@pytest.fixture
def aims(svc: Any, lyon: Territory) -> str:
    """Lyon (522,250 inhabitants in 2021) aims at 10 proposals in 2024 and 1 per 1,000
    inhabitants; its process bp at 8 participants in 2024, 3 proposals in March 2024, and 40
    proposals in 2030; process "quiet" at 2 proposals in 2024. 12 proposals in 2024, 6 authors,
    all in bp, 4 of them in March."""
    record = {
        k: v for k, v in svc.records.get("lyon", KINDS["territory"], "lyon").items() if not k.startswith("record_")
    }
    record.pop("iri", None)
    record["targets"] = [
        {"indicator": "proposals", "period": "2024", "value": 10, "title": "Dix propositions"},
        {"indicator": "proposals", "period": "2024", "value": 1, "per": "1000inhabitants"},
    ]
    ops = [_op(svc, "territory", record)]
    bp = {"id": "bp", "title": "Budget", "type": "participatory_budget"}
    bp["targets"] = [
        {"indicator": "participants", "period": "2024", "value": 8},
        {"indicator": "proposals", "period": "2024-03", "value": 3},
        {"indicator": "proposals", "period": "2030", "value": 40},
        {"indicator": "days_to_decision", "period": "2024", "value": 30, "direction": "at_most"},
    ]
    quiet = {"id": "quiet", "title": "Consultation", "type": "consultation"}
    quiet["targets"] = [{"indicator": "proposals", "period": "2024", "value": 2}]
    ops += [_op(svc, "process", bp), _op(svc, "process", quiet)]
    ops += [
        _op(
            svc,
            "proposal",
            {
                "id": f"p{i}",
                "process": "bp",
                "title": "Idée",
                "author": f"a{i % 6}",
                "created": f"2024-{3 if i < 4 else 5:02d}-10T10:00:00Z",
            },
        )
        for i in range(12)
    ]
    svc.records.write_internal("lyon", ops)
    return "lyon"


def test_targets_beside_their_values(client: FlaskClient, aims: str) -> None:
    got = client.get("/api/v1/territories/lyon/targets")
    assert got.status_code == 200, got.get_data(as_text=True)
    rows = [
        (t["process"], t["indicator"], t["period"], t["per"], t["target"], t["actual"], t["progress"], t["met"])
        for t in got.get_json()["targets"]
    ]
    assert rows == [
        (None, "proposals", "2024", None, 10, 12, 1.2, True),
        # 12 * 1000 / 522,250 = 0.023: far from 1, and 2024 is over.
        (None, "proposals", "2024", "1000inhabitants", 1, 0.023, 0.023, False),
        ("bp", "participants", "2024", None, 8, 6, 0.75, False),
        ("bp", "proposals", "2024-03", None, 3, 4, 1.3333, True),
        ("bp", "proposals", "2030", None, 40, None, None, None),  # not yet: open
        ("bp", "days_to_decision", "2024", None, 30, None, None, None),  # no decision counted
        ("quiet", "proposals", "2024", None, 2, 0, 0.0, False),  # nothing there, the territory has some
    ]
    first = got.get_json()["targets"][0]
    assert first["title"] == "Dix propositions" and first["scope"] == "territory" and first["period_over"]
    per = next(t for t in got.get_json()["targets"] if t["per"])
    assert per["population"] == 522250 and per["label"] == "Proposals per 1,000 inhabitants"
    assert client.get("/api/v1/territories/atlantis/targets").status_code == 404


@pytest.mark.parametrize(
    ("direction", "actual", "over", "met"),
    [
        ("at_least", 10, False, True),  # exactly at the target: reached
        ("at_least", 9, False, None),
        ("at_least", 9, True, False),
        ("at_most", 10, True, True),  # exactly at the target, the period over: kept under
        ("at_most", 10, False, None),
        ("at_most", 11, False, False),  # exceeded: missed at once
    ],
)
def test_met_at_the_threshold_and_after_the_period(direction: str, actual: int, over: bool, met: bool | None) -> None:
    from decimal import Decimal

    from server.indicators.targets import Target

    target = Target(None, "proposals", "2024", Decimal(10), None, direction, None, actual, "published")
    target.period_over = over
    assert target.met is met


def test_a_target_on_the_last_day_of_its_period_is_still_open(svc: Any, aims: str) -> None:
    march = next(t for t in targets(svc.records, "lyon", today=dt.date(2024, 3, 31)) if t.period == "2024-03")
    assert not march.period_over
    assert next(t for t in targets(svc.records, "lyon", today=dt.date(2024, 4, 1)) if t.period == "2024-03").period_over


def test_targets_are_validated_and_published(client: FlaskClient, lyon: Territory) -> None:
    bad = {
        "title": "B",
        "type": "consultation",
        "targets": [{"indicator": "receivable_share", "period": "2024", "value": 1, "per": "1000inhabitants"}],
    }
    got = put(client, lyon, "process", {"id": "x", **bad})
    assert got.status_code == 422 and "targets" in got.get_data(as_text=True)
    for wrong in (
        {"indicator": "nope", "period": "2024", "value": 1},
        {"indicator": "votes", "period": "2024-13", "value": 1},
        {"indicator": "votes", "period": "2024", "value": -1},
    ):
        got = put(client, lyon, "process", {"id": "x", "title": "B", "type": "consultation", "targets": [wrong]})
        assert got.status_code == 422, wrong
    good = {
        "title": "B",
        "type": "consultation",
        "targets": [{"indicator": "votes", "period": "2025-06", "value": 120, "direction": "at_most"}],
    }
    assert put(client, lyon, "process", {"id": "x", **good}).status_code in (200, 201)
    back = client.get("/api/v1/territories/lyon/processes/x").get_json()
    assert back["targets"] == good["targets"]
    turtle = client.get("/id/lyon/process/x", headers={"Accept": "text/turtle"})
    triples = list(parse(turtle.get_data(), format=RdfFormat.TURTLE))
    node = next(t.object for t in triples if t.predicate.value == CF.hasTarget)
    said = {t.predicate.value: t.object.value for t in triples if t.subject == node}
    assert said[CF.targetIndicator] == CF.votes and said[CF.targetDirection] == CF.atMost
    assert said[CF.targetPeriod] == "http://reference.data.gov.uk/id/month/2025-06"


def test_the_territory_page_shows_its_targets(client: FlaskClient, svc: Any, aims: str) -> None:
    page = client.get("/id/lyon", headers={"Accept": "text/html"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<h2 id="targets">Targets</h2>' in html and html.count('<tr class="target">') == 7
    assert "Dix propositions" in html and "120.0 %" in html
    # A new proposal moves a value shown: the page's entity tag changes with it.
    again = client.get("/id/lyon", headers={"Accept": "text/html", "If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    svc.records.write_internal(
        "lyon",
        [
            _op(
                svc,
                "proposal",
                {"id": "p99", "process": "bp", "title": "Une de plus", "created": "2024-06-01T10:00:00Z"},
            )
        ],
    )
    after = client.get("/id/lyon", headers={"Accept": "text/html", "If-None-Match": page.headers["ETag"]})
    assert after.status_code == 200 and "130.0 %" in after.get_data(as_text=True)
    french = client.get("/id/lyon", headers={"Accept": "text/html", "Accept-Language": "fr"}).get_data(as_text=True)
    assert "Objectifs" in french


def test_unknown_values_decide_nothing_and_shares_wait_for_their_period(svc: Any, aims: str) -> None:
    """A withheld value (4 participants in March, under k = 5) is not a missed target; a count
    with no data at all in a period over is 0; a median is decided at the period's end only."""
    from decimal import Decimal

    from server.indicators.targets import Target

    bp = {k: v for k, v in svc.records.get("lyon", KINDS["process"], "bp").items() if not k.startswith("record_")}
    bp.pop("iri", None)
    bp["targets"] = [{"indicator": "participants", "period": "2024-03", "value": 3}]
    svc.records.write_internal("lyon", [_op(svc, "process", bp)])
    march = next(t for t in targets(svc.records, "lyon") if t.period == "2024-03")
    assert (march.actual, march.status, march.met) == (None, "confidential", None)
    nothing = Target(None, "votes", "2019", Decimal(5), None, "at_least", None, None, "no_data")
    nothing.period_over = True
    assert nothing.met is False
    median = Target(None, "days_to_decision", "2024", Decimal(30), None, "at_most", None, 45, "published")
    assert median.met is None  # the year's median may still come under 30
    median.period_over = True
    assert median.met is False


@pytest.mark.parametrize("period", ["0000", "9999-12", "\u0662\u0660\u0662\u0664"])
def test_periods_out_of_range_or_not_ascii_are_refused(client: FlaskClient, lyon: Territory, period: str) -> None:
    """(A year 0 reached the date arithmetic and broke the territory's page; Arabic-Indic digits
    passed the schema and made IRIs the shapes refuse.)"""
    data = {
        "id": "x",
        "title": "B",
        "type": "consultation",
        "targets": [{"indicator": "votes", "period": period, "value": 1}],
    }
    got = put(client, lyon, "process", data)
    assert got.status_code == 422 and "targets" in got.get_data(as_text=True)
    assert client.get("/api/v1/territories/lyon/targets").status_code == 200


def test_a_project_has_targets_counted_from_its_own_records(client: FlaskClient, svc: Any, aims: str) -> None:
    """A pilot project's targets are counted from its records: the proposals it comes from (not
    the process's others), their votes, the comments on them and on it; per 1,000 inhabitants
    of the territory; its people protected as the cube's: a project of fewer than k people, a
    month under k, and one the year would give away by difference, withheld with their votes."""
    ops = [
        _op(svc, "vote", {"id": f"v{i}", "proposal": "p0", "voter": f"voter-{i}", "created": "2024-05-11T10:00:00Z"})
        for i in range(3)
    ]
    comment = {"id": "c0", "about": {"kind": "project", "id": "pilot"}, "body": "Bien", "author": "c-0"}
    ops.append(_op(svc, "comment", {**comment, "created": "2024-05-20T10:00:00Z"}))
    pilot = {"id": "pilot", "title": "Jardins partagés", "process": "bp", "proposals": [f"p{i}" for i in range(6)]}
    pilot["targets"] = [
        {"indicator": "participants", "period": "2024", "value": 10},
        {"indicator": "proposals", "period": "2024", "value": 7},
        {"indicator": "votes", "period": "2024", "value": 2},
        {"indicator": "proposals", "period": "2024", "value": 0.01, "per": "1000inhabitants"},
        {"indicator": "participants", "period": "2024-03", "value": 3},
        {"indicator": "participants", "period": "2024-05", "value": 3},
        {"indicator": "votes", "period": "2024-05", "value": 1},
        {"indicator": "meetings", "period": "2024", "value": 1},
        {"indicator": "proposals", "period": "2031", "value": 1},
    ]
    tiny = {"id": "tiny", "title": "Un banc", "proposals": ["p11"]}
    tiny["targets"] = [{"indicator": "participants", "period": "2024", "value": 1}]
    svc.records.write_internal("lyon", [*ops, _op(svc, "project", pilot), _op(svc, "project", tiny)])
    got = client.get("/api/v1/territories/lyon/targets").get_json()["targets"]
    rows = [(t["project"], t["indicator"], t["per"], t["actual"], t["status"], t["met"]) for t in got if t["project"]]
    assert rows == [
        # 6 authors (a0..a5), 3 voters, 1 commenter; 6 of the process's 12 proposals; 3 votes.
        ("pilot", "participants", None, 10, "published", True),
        ("pilot", "proposals", None, 6, "published", False),
        ("pilot", "votes", None, 3, "published", True),
        ("pilot", "proposals", "1000inhabitants", 0.011, "published", True),  # 6 * 1000 / 522,250
        # March: 4 authors, under k. May: 2 authors, 3 voters, 1 commenter, which the year's 10
        # less March's 4 would give: withheld too, and its votes with its people.
        ("pilot", "participants", None, None, "confidential", None),
        ("pilot", "participants", None, None, "confidential", None),
        ("pilot", "votes", None, None, "confidential", None),
        ("pilot", "meetings", None, 0, "published", False),  # none, while Lyon has records in 2024
        ("pilot", "proposals", None, None, "no_data", None),  # nothing known of 2031 yet
        ("tiny", "participants", None, None, "confidential", None),  # 1 person: withheld
    ]
    assert {t["scope"] for t in got if t["project"]} == {"project"}
    per = next(t for t in got if t["project"] and t["per"])
    assert per["population"] == 522250 and per["population_source"].endswith("/id/lyon#population")
    back = client.get("/api/v1/territories/lyon/projects/pilot").get_json()
    assert back["targets"][0] == {"indicator": "participants", "period": "2024", "value": 10}
