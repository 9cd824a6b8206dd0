"""The participation indicators computed from scratch (server/indicators), against values
counted by hand on a small territory: which period and process each record counts in, distinct
participants, votes reported as counts, deletions, currencies."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

import pytest
from flask import current_app

from server.cli import cli
from server.indicators import recompute
from server.model.kinds import KINDS
from server.model.terms import period_iri
from server.records import Op
from server.records.contributions import median
from vocabularies import CF, SDMXD, XSD

from .conftest import Territory


def _write(svc: Any, territory: str, kind: str, data: dict[str, Any]) -> None:
    local_id = data.pop("id")
    loaded = svc.records.prepare(KINDS[kind], data, local_id=local_id)  # as the API validates it
    report = svc.records.write_internal(territory, [Op(KINDS[kind], local_id, "upsert", loaded)])
    assert report.written, report


@pytest.fixture
def counted(svc: Any, lyon: Territory) -> str:
    """A small territory whose indicators were counted by hand (below)."""
    t = lyon.id
    for pid, kind in (("bp", "participatory_budget"), ("c", "consultation")):
        _write(svc, t, "process", {"id": pid, "title": f"Démarche {pid}", "type": kind})
    for pid, process, created, author, extra in (
        ("p1", "bp", "2024-03-05T10:00:00Z", "alice", {}),
        ("p2", "bp", "2024-03-20T10:00:00Z", "bob", {"vote_count": 7}),  # votes its platform counted
        ("p3", "c", "2024-04-01T10:00:00Z", "alice", {}),
        ("p4", "bp", "2025-01-10T10:00:00Z", "carol", {}),
        ("p5", "bp", "2024-03-01T10:00:00Z", "zoe", {}),  # deleted below: counts nowhere
    ):
        data = {"id": pid, "process": process, "title": f"Idée {pid}", "created": created, "author": author}
        _write(svc, t, "proposal", data | extra)
    svc.records.write_internal(t, [Op(KINDS["proposal"], "p5", "delete", None)])
    for vid, proposal, voter, created in (
        ("v1", "p1", "bob", "2024-03-06T10:00:00Z"),
        ("v2", "p1", "dave", "2024-04-02T10:00:00Z"),
        ("v3", "p3", "alice", "2024-04-03T10:00:00Z"),
    ):
        _write(svc, t, "vote", {"id": vid, "proposal": proposal, "voter": voter, "created": created})
    _write(svc, t, "comment", {"id": "c1", "about": {"kind": "proposal", "id": "p1"}, "body": "Oui",
                               "author": "erin", "created": "2024-03-07T10:00:00Z"})  # fmt: skip
    _write(svc, t, "comment", {"id": "c2", "about": {"kind": "process", "id": "c"}, "body": "Et si…",
                               "author": "bob", "created": "2024-04-05T10:00:00Z"})  # fmt: skip
    _write(svc, t, "meeting", {"id": "m1", "process": "bp", "title": "Atelier", "start": "2024-03-10T17:00:00Z",
                               "mode": "in_person", "attendees_count": 30})  # fmt: skip
    _write(
        svc,
        t,
        "meeting",
        {"id": "m2", "process": "c", "title": "Débat", "start": "2024-04-11T17:00:00Z", "mode": "online"},
    )
    _write(svc, t, "project", {"id": "pr1", "process": "bp", "title": "Arbres", "status": "completed",
                               "end_date": "2024-06-30", "cost": {"amount": 1000.5, "currency": "EUR"}})  # fmt: skip
    _write(svc, t, "project", {"id": "pr2", "process": "bp", "title": "Bancs", "status": "completed",
                               "end_date": "2024-06-30", "cost": {"amount": 999, "currency": "CHF"}})  # fmt: skip
    _write(svc, t, "project", {"id": "pr3", "process": "bp", "title": "Piste", "status": "in_progress"})
    _write(svc, t, "budget", {"id": "b1", "process": "bp", "title": "Enveloppe",
                              "amount": {"amount": 50000, "currency": "EUR"}, "fiscal_year": 2024})  # fmt: skip
    return t


def test_indicators_counted_by_hand(svc: Any, counted: str) -> None:
    got = recompute(svc.records, counted)
    expected = {
        # The year, every process: p1 p2 p3; 3 votes + the 7 p2's platform counted; alice, bob,
        # dave (a voter), erin (a commenter) — p4's carol is 2025, p5's zoe was deleted.
        ("proposals", "2024", None, None): 3,
        ("votes", "2024", None, None): 10,
        ("comments", "2024", None, None): 2,
        ("meetings", "2024", None, None): 2,
        ("attendance", "2024", None, None): 30,
        ("participants", "2024", None, None): 4,
        ("projects_delivered", "2024", None, None): 2,  # (its cost in CHF is not added to euros)
        ("budget_spent", "2024", None, None): Decimal("1000.5"),
        ("budget_allocated", "2024", None, None): Decimal("50000"),
        # Months.
        ("proposals", "2024-03", None, None): 2,
        ("votes", "2024-03", None, None): 8,
        ("participants", "2024-03", None, None): 3,  # alice, bob (an author and a voter), erin
        ("votes", "2024-04", None, None): 2,
        ("participants", "2024-04", None, None): 3,  # alice (twice), dave, bob
        ("comments", "2024-04", None, None): 1,
        ("projects_delivered", "2024-06", None, None): 2,
        ("proposals", "2025", None, None): 1,
        ("participants", "2025", None, None): 1,
        # A period or process with records: the counts it has none of are 0, not absent.
        ("votes", "2025", None, None): 0,
        ("comments", "2025-01", "bp", None): 0,
        ("meetings", "2024-04", "bp", None): 0,
        # By process: a vote and a comment count in their proposal's process, a comment about a
        # process in that one.
        ("proposals", "2024", "bp", None): 2,
        ("votes", "2024", "bp", None): 9,
        ("comments", "2024", "bp", None): 1,
        ("participants", "2024", "bp", None): 4,  # alice, bob, dave, erin
        ("votes", "2024", "c", None): 1,
        ("comments", "2024", "c", None): 1,
        ("participants", "2024", "c", None): 2,  # alice, bob
        ("meetings", "2024-04", "c", None): 1,
        ("budget_allocated", "2024", "bp", None): Decimal("50000"),
    }
    assert {cell: got.get(cell) for cell in expected} == expected
    assert ("attendance", "2024-04", None, None) not in got  # m2 has no count: no value, not a zero
    assert ("meetings", "2024-03", "c", None) not in got  # process c has no record in March
    assert ("budget_allocated", "2024-03", None, None) not in got  # a fiscal year has no months
    assert not {
        cell for cell in got if cell[0] in ("receivable_share", "taken_up_share", "days_to_decision")
    }  # none answered
    assert {cell[2] for cell in got} == {None, "bp", "c"}


def test_days_to_a_decision_counted_by_hand(svc: Any, lyon: Territory) -> None:
    """The median of the whole days from a proposal's submission to its answer, kept by every
    write as a computation from scratch gives it, and published in the cube as a decimal."""
    t = lyon.id
    for pid in ("bp", "c"):
        _write(svc, t, "process", {"id": pid, "title": f"Démarche {pid}", "type": "consultation"})
    for pid, process, created, answered in (
        ("p1", "bp", "2024-03-05T10:00:00Z", "2024-03-15T09:00:00Z"),  # 9 days 23 hours: 9
        ("p2", "bp", "2024-03-20T10:00:00Z", "2024-04-19T10:00:00Z"),  # 30
        ("p3", "c", "2024-04-01T10:00:00Z", "2024-04-04T11:00:00+02:00"),  # 09:00 UTC: 2
        ("p4", "c", "2024-04-02T10:00:00Z", None),  # not answered
        ("p5", "c", "2024-04-03T10:00:00Z", "2024-04-01T10:00:00Z"),  # answered before it came: not counted
    ):
        data = {"id": pid, "process": process, "title": "Idée", "created": created, "author": "ann"}
        _write(svc, t, "proposal", data | ({"answered_at": answered} if answered else {}))
    got = recompute(svc.records, t)
    expected = {
        ("days_to_decision", "2024", None, None): Decimal("9.0"),  # 2, 9, 30
        ("days_to_decision", "2024", "bp", None): Decimal("19.5"),  # 9, 30: the two middle ones
        ("days_to_decision", "2024", "c", None): Decimal("2.0"),
        ("days_to_decision", "2024-03", None, None): Decimal("19.5"),  # by the month of submission
        ("days_to_decision", "2024-04", None, None): Decimal("2.0"),
        ("days_to_decision", "2024-03", "bp", None): Decimal("19.5"),
        ("days_to_decision", "2024-04", "c", None): Decimal("2.0"),
    }
    assert {cell: v for cell, v in got.items() if cell[0] == "days_to_decision"} == expected
    assert svc.records.indicator_values(t) == got
    # An answer given later moves the median, in the write that changes it.
    _write(svc, t, "proposal", {"id": "p1", "process": "bp", "title": "Idée", "created": "2024-03-05T10:00:00Z",
                                "author": "ann", "answered_at": "2024-04-14T10:00:00Z"})  # fmt: skip
    got = recompute(svc.records, t)
    assert got[("days_to_decision", "2024", None, None)] == Decimal("30.0")  # 2, 30, 40
    assert svc.records.indicator_values(t) == got
    cube = svc.urls.indicators_cube_graph(t)
    rows = svc.store.select(
        f"SELECT ?v WHERE {{ GRAPH <{cube}> {{ ?o <{CF.daysToDecision}> ?v ; "
        f"<{SDMXD.refPeriod}> <{period_iri('2024')}> ; <{CF.refProcess}> <{CF.allProcesses}> ; "
        f"<{SDMXD.refArea}> <{svc.urls.territory(t)}> }} }}"
    )
    assert [(Decimal(r["v"].value), r["v"].datatype.value) for r in rows] == [(Decimal(30), XSD.decimal)]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [([(5, 1)], "5.0"), ([(1, 1), (4, 1)], "2.5"), ([(0, 2), (7, 1)], "0.0"), ([(3, 2), (1, 1), (9, 1)], "3.0")],
)
def test_a_median_of_a_distribution(counts: list[tuple[int, int]], expected: str) -> None:
    assert median(counts) == Decimal(expected)


def test_the_command_line_prints_them(svc: Any, counted: str) -> None:
    """`civicfed indicators compute`: CSV of the cells, a period's months with it."""
    run = current_app.test_cli_runner().invoke(
        cli, ["indicators", "compute", "--territory", counted, "--period", "2024-03"]
    )
    assert run.exit_code == 0, run.output
    rows = list(csv.DictReader(run.output.splitlines()))
    expected = {cell: v for cell, v in recompute(svc.records, counted).items() if cell[1] == "2024-03"}
    assert {(r["indicator"], r["period"], r["process"] or None, r["district"] or None): r["value"] for r in rows} == {
        cell: str(v) for cell, v in expected.items()
    }
    assert rows[0]["indicator"] == "participants"  # in the order of the definitions
    for args, said in (
        (["--territory", counted, "--period", "2024-13"], "is a year or a month"),
        (["--territory", "nowhere"], "unknown territory"),
    ):
        run = current_app.test_cli_runner().invoke(cli, ["indicators", "compute", *args])
        assert run.exit_code != 0 and said in run.output, run.output


def test_what_is_not_counted_and_what_counts_elsewhere(svc: Any, lyon: Territory) -> None:
    """Votes and comments about a deleted proposal are not counted (they stay stored: a deletion
    leaves what points to it); an undated vote counts at its proposal's creation, and hides the
    proposal's reported figure as its published vote count does; a project without a process
    is in its budget's; a meeting without one only in the whole territory's counts."""
    t = lyon.id
    _write(svc, t, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"})
    _write(svc, t, "proposal", {"id": "gone", "process": "bp", "title": "Retirée", "author": "ann",
                                "created": "2024-05-02T10:00:00Z"})  # fmt: skip
    _write(svc, t, "vote", {"id": "v1", "proposal": "gone", "voter": "ben", "created": "2024-05-03T10:00:00Z"})
    _write(svc, t, "comment", {"id": "c1", "about": {"kind": "proposal", "id": "gone"}, "body": "Dommage",
                               "author": "cat", "created": "2024-05-04T10:00:00Z"})  # fmt: skip
    svc.records.write_internal(t, [Op(KINDS["proposal"], "gone", "delete", None)])
    _write(svc, t, "proposal", {"id": "p1", "process": "bp", "title": "Idée", "author": "dan", "vote_count": 40,
                                "created": "2024-06-01T10:00:00Z"})  # fmt: skip
    _write(svc, t, "vote", {"id": "v2", "proposal": "p1", "voter": "eve"})  # no date
    assert svc.records.get(t, KINDS["proposal"], "p1")["vote_count"] == 1  # (what is published)
    _write(svc, t, "budget", {"id": "b1", "process": "bp", "title": "Enveloppe",
                              "amount": {"amount": 1000, "currency": "EUR"}})  # fmt: skip
    _write(svc, t, "project", {"id": "pr1", "budget": "b1", "title": "Bancs", "status": "completed",
                               "end_date": "2024-07-15"})  # fmt: skip
    _write(svc, t, "meeting", {"id": "m1", "title": "Réunion", "start": "2024-06-20T18:00:00Z", "mode": "online"})
    got = recompute(svc.records, t)
    assert got[("votes", "2024", None, None)] == 1 and got[("votes", "2024-06", "bp", None)] == 1  # eve's, at p1's date
    assert got[("participants", "2024", None, None)] == 2  # dan and eve: not ben nor cat (about "gone")
    assert got[("comments", "2024", None, None)] == 0 and ("votes", "2024-05", None, None) not in got
    assert got[("projects_delivered", "2024-07", "bp", None)] == 1
    assert got[("meetings", "2024-06", None, None)] == 1 and got[("meetings", "2024-06", "bp", None)] == 0
