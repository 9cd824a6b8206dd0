"""Indicator values kept current by every write (server/records/indicators.py) equal a computation
from scratch after each write: the records a write touches, and those whose contributions move
with them (the votes and comments of a proposal moved or deleted, the projects of a budget, a
proposal's reported votes once its first vote arrives), in single writes, batches, and random
sequences of them."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from flask import current_app

from server.cli import cli
from server.indicators import recompute
from server.indicators.verify import verify
from server.ingest import Record, load
from server.model.kinds import KINDS
from server.records import Op
from server.records.indicators import CELLS_VERSION
from server.store import Changeset, Stage
from vocabularies import CF, XSD, indicators

from .conftest import Territory, killed_at_commit


def _op(svc: Any, kind: str, data: dict[str, Any] | None, local_id: str | None = None) -> Op:
    if data is None:
        return Op(KINDS[kind], local_id, "delete", None)  # type: ignore[arg-type]
    local_id = data["id"]
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], local_id, "upsert", svc.records.prepare(KINDS[kind], body, local_id=local_id))


def _write(svc: Any, t: str, *ops: Op, partial: bool = False) -> Any:
    report = svc.records.write_internal(t, list(ops), partial=partial)
    assert partial or report.written, [o.error for o in report.outcomes if o.error]
    return report


def _same(svc: Any, t: str) -> dict[Any, Any]:
    maintained, scratch = svc.records.indicator_values(t), recompute(svc.records, t)
    assert maintained == scratch, {
        c: (maintained.get(c), scratch.get(c)) for c in {*maintained, *scratch} if maintained.get(c) != scratch.get(c)
    }
    return maintained


def _proposal(pid: str, process: str, created: str, author: str, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "process": process, "title": f"Idée {pid}", "created": created, "author": author, **extra}


def test_what_moves_with_a_record(svc: Any, lyon: Territory) -> None:
    t = lyon.id
    for pid in ("bp", "c"):
        _write(svc, t, _op(svc, "process", {"id": pid, "title": pid, "type": "consultation"}))
    _write(svc, t, _op(svc, "proposal", _proposal("p1", "bp", "2024-03-05T10:00:00Z", "ann")))
    _write(
        svc,
        t,
        _op(svc, "vote", {"id": "v1", "proposal": "p1", "voter": "ben", "created": "2024-03-06T10:00:00Z"}),
        _op(svc, "vote", {"id": "v2", "proposal": "p1", "voter": "cat"}),  # undated: at p1's date
        _op(
            svc,
            "comment",
            {
                "id": "k1",
                "about": {"kind": "proposal", "id": "p1"},
                "body": "Oui",
                "author": "dan",
                "created": "2024-04-01T10:00:00Z",
            },
        ),
    )
    got = _same(svc, t)
    assert got[("votes", "2024", "bp", None)] == 2 and got[("participants", "2024", "bp", None)] == 4
    # p1 moves to process c and to another month: its votes and comment follow.
    p1 = svc.records.get(t, KINDS["proposal"], "p1")
    _write(
        svc, t, _op(svc, "proposal", _proposal("p1", "c", "2024-05-05T10:00:00Z", "ann", vote_count=p1["vote_count"]))
    )
    got = _same(svc, t)
    assert got[("votes", "2024", "c", None)] == 2 and ("votes", "2024", "bp", None) not in got  # bp has nothing left
    assert got[("votes", "2024-05", None, None)] == 1 and got[("comments", "2024", "c", None)] == 1
    # Deleted: nothing of it counts; written again: its votes (still stored) count again.
    _write(svc, t, _op(svc, "proposal", None, "p1"))
    got = _same(svc, t)
    assert got == {}  # p1 was all the territory had
    _write(svc, t, _op(svc, "proposal", _proposal("p1", "bp", "2024-03-05T10:00:00Z", "ann")))
    assert _same(svc, t)[("votes", "2024", "bp", None)] == 2
    # Votes a platform reported count until the first individual vote, and again after the last.
    _write(svc, t, _op(svc, "proposal", _proposal("p2", "bp", "2024-06-01T10:00:00Z", "eve", vote_count=40)))
    assert _same(svc, t)[("votes", "2024-06", None, None)] == 40
    _write(svc, t, _op(svc, "vote", {"id": "v3", "proposal": "p2", "voter": "fay", "created": "2024-06-02T10:00:00Z"}))
    assert _same(svc, t)[("votes", "2024-06", None, None)] == 1
    _write(svc, t, _op(svc, "vote", None, "v3"))
    assert _same(svc, t)[("votes", "2024-06", None, None)] == 40
    # By district: a proposal's votes are where it is, and move with it.
    for did in ("n1", "n2"):
        _write(svc, t, _op(svc, "district", {"id": did, "name": did, "level": "quartier"}))
    p2 = svc.records.get(t, KINDS["proposal"], "p2")
    located = _proposal("p2", "bp", "2024-06-01T10:00:00Z", "eve", vote_count=40, district="n1")
    _write(svc, t, _op(svc, "proposal", located))
    _write(svc, t, _op(svc, "vote", {"id": "v5", "proposal": "p2", "voter": "hal", "created": "2024-06-04T10:00:00Z"}))
    got = _same(svc, t)
    assert got[("votes", "2024-06", None, "n1")] == 1 and got[("participants", "2024", None, "n1")] == 2
    _write(svc, t, _op(svc, "proposal", located | {"district": "n2"}))
    got = _same(svc, t)
    assert got[("votes", "2024-06", None, "n2")] == 1 and ("votes", "2024-06", None, "n1") not in got
    assert p2["vote_count"] == 40
    # A budget moving to another process moves its projects without one, and their comments.
    _write(
        svc,
        t,
        _op(
            svc,
            "budget",
            {
                "id": "b1",
                "process": "bp",
                "title": "Enveloppe",
                "fiscal_year": 2024,
                "amount": {"amount": 1000.25, "currency": "EUR"},
            },
        ),
        _op(
            svc,
            "project",
            {
                "id": "pr1",
                "budget": "b1",
                "title": "Bancs",
                "status": "completed",
                "end_date": "2024-07-15",
                "cost": {"amount": 800, "currency": "EUR"},
            },
        ),
    )
    _write(
        svc,
        t,
        _op(
            svc,
            "comment",
            {
                "id": "k2",
                "about": {"kind": "project", "id": "pr1"},
                "body": "Bien",
                "author": "gus",
                "created": "2024-07-20T10:00:00Z",
            },
        ),
    )
    assert _same(svc, t)[("comments", "2024-07", "bp", None)] == 1
    budget = svc.records.get(t, KINDS["budget"], "b1")
    _write(
        svc, t, _op(svc, "budget", {**{k: budget[k] for k in ("id", "title", "fiscal_year", "amount")}, "process": "c"})
    )
    got = _same(svc, t)
    assert got[("comments", "2024-07", "c", None)] == 1 and got[("projects_delivered", "2024", "c", None)] == 1
    _write(svc, t, _op(svc, "budget", None, "b1"))
    got = _same(svc, t)
    assert got[("comments", "2024-07", None, None)] == 1 and ("comments", "2024-07", "c", None) not in got
    # One batch: a proposal deleted and a vote for another, a meeting's attendance set.
    _write(
        svc,
        t,
        _op(svc, "proposal", None, "p1"),
        _op(svc, "vote", {"id": "v4", "proposal": "p2", "voter": "ann", "created": "2024-06-03T10:00:00Z"}),
        _op(
            svc,
            "meeting",
            {
                "id": "m1",
                "process": "bp",
                "title": "Atelier",
                "mode": "online",
                "start": "2024-03-31T23:30:00-02:00",
                "attendees_count": 12,
            },
        ),
    )
    got = _same(svc, t)
    assert got[("attendance", "2024-04", "bp", None)] == 12  # 1 April in UTC
    # Cells nobody contributes to any more are gone, not zeros.
    _write(svc, t, _op(svc, "meeting", None, "m1"))
    assert ("attendance", "2024-04", "bp", None) not in _same(svc, t)


@pytest.mark.parametrize("seed", [20261130, 1, 2])
def test_random_writes(svc: Any, lyon: Territory, seed: int) -> None:
    """Random batches over a few records of every counted kind: after each, the maintained
    values equal a computation from scratch."""
    t, rnd = lyon.id, random.Random(seed)
    processes = ["bp", "c", "d"]
    for pid in processes:
        _write(svc, t, _op(svc, "process", {"id": pid, "title": pid, "type": "consultation"}))
    people = ["ann", "ben", "cat", "dan"]
    for did in ("n1", "n2"):
        _write(svc, t, _op(svc, "district", {"id": did, "name": f"Quartier {did}", "level": "quartier"}))

    def district() -> dict[str, str]:
        return {"district": rnd.choice(["n1", "n2"])} if rnd.random() < 0.6 else {}

    def day() -> str:
        return f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"

    def record() -> tuple[str, dict[str, Any]]:
        kind = rnd.choice(["proposal", "proposal", "vote", "vote", "vote", "comment", "meeting", "project", "budget"])
        n = rnd.randint(0, 4)
        if kind == "proposal":
            extra = {"vote_count": rnd.choice([0, 5, 12])} if rnd.random() < 0.5 else {}
            extra |= district()
            if rnd.random() < 0.5:  # answered, at times (an answer before the proposal counts nowhere)
                extra["answered_at"] = f"{day()}T{rnd.randint(0, 23):02d}:00:00Z"
            return kind, _proposal(f"p{n}", rnd.choice(processes), day() + "T12:00:00Z", rnd.choice(people), **extra)
        if kind == "vote":
            data = {"id": f"v{rnd.randint(0, 9)}", "proposal": f"p{n}", "voter": rnd.choice(people)}
            return kind, data | ({"created": day() + "T08:00:00Z"} if rnd.random() < 0.7 else {})
        if kind == "comment":
            about = rnd.choice(
                [
                    ("proposal", f"p{n}"),
                    ("process", rnd.choice(processes)),
                    ("project", f"pr{n % 3}"),
                    ("budget", f"b{n % 2}"),
                    ("meeting", f"m{n % 3}"),
                ]
            )
            return kind, {
                "id": f"k{rnd.randint(0, 5)}",
                "about": {"kind": about[0], "id": about[1]},
                "body": "…",
                "author": rnd.choice(people),
                "created": day() + "T09:00:00Z",
            }
        if kind == "meeting":
            extra = {"attendees_count": rnd.randint(0, 50)} if rnd.random() < 0.6 else {}
            extra |= district()
            return kind, {
                "id": f"m{n % 3}",
                "process": rnd.choice(processes),
                "title": "Réunion",
                "mode": "online",
                "start": day() + "T18:00:00Z",
                **extra,
            }
        if kind == "project":
            extra = {"process": rnd.choice(processes)} if rnd.random() < 0.3 else {}
            extra |= district()
            return kind, {
                "id": f"pr{n % 3}",
                "budget": f"b{n % 2}",
                "title": "Projet",
                "end_date": day(),
                "status": rnd.choice(["completed", "in_progress"]),
                "cost": {"amount": rnd.randint(1, 9999) / 4, "currency": "EUR"},
                **extra,
            }
        return kind, {
            "id": f"b{n % 2}",
            "process": rnd.choice(processes),
            "title": "Enveloppe",
            "fiscal_year": rnd.choice([2024, 2025]),
            "amount": {"amount": rnd.randint(1, 10**6), "currency": "EUR"},
        }

    written = medians = 0
    for _ in range(120):
        ops = []
        for _ in range(rnd.randint(1, 4)):
            kind, data = record()
            if rnd.random() < 0.2:
                ops.append(_op(svc, kind, None, data["id"]))
            else:
                ops.append(_op(svc, kind, data))
        written += _write(svc, t, *ops, partial=True).written
        medians += any(cell[0] == "days_to_decision" for cell in _same(svc, t))
    assert written > 60  # most batches wrote something (references to missing records are refused)
    assert {cell[3] for cell in _same(svc, t)} == {None, "n1", "n2"}  # broken down by district too
    assert medians > 20  # medians of the days to a decision were kept too


def test_an_import_in_batches(svc: Any, lyon: Territory) -> None:
    """A large source is written batch by batch (to a staged copy on the embedded store), the
    records a batch refused once more at the end: the cells follow every batch."""
    t = lyon.id
    items = [Record(KINDS["process"], {"id": "bp", "title": "Budget", "type": "participatory_budget"})]
    items += [  # votes and comments before their proposals: written after the batches
        Record(
            KINDS["vote"],
            {"id": f"v{i}", "proposal": f"p{i % 5}", "voter": f"u{i}", "created": f"2024-0{1 + i % 9}-02T10:00:00Z"},
            line=i,
        )
        for i in range(30)
    ]
    items += [
        Record(
            KINDS["comment"],
            {
                "id": f"k{i}",
                "about": {"kind": "proposal", "id": f"p{i % 5}"},
                "body": "…",
                "author": f"u{i}",
                "created": "2024-05-05T10:00:00Z",
            },
            line=100 + i,
        )
        for i in range(10)
    ]
    items += [
        Record(KINDS["proposal"], _proposal(f"p{i}", "bp", "2024-02-01T10:00:00Z", f"a{i}", vote_count=9), line=200 + i)
        for i in range(8)
    ]
    report = load(svc.records, t, items, None, batch=7)
    assert report.written and report.rejected == 0, report.to_dict()
    got = _same(svc, t)
    assert got[("votes", "2024", "bp", None)] == 30 + 3 * 9  # p5 p6 p7 have no vote: their reported 9
    assert got[("participants", "2024", None, None)] == 30 + 8  # u0…u29 (voters and commenters), a0…a7


def test_an_import_thrown_away_counts_nobody(svc: Any, lyon: Territory) -> None:
    """A load in batches that is not kept (a line refused, all or nothing) throws its staged
    copy of the store away, and with it the participants its batches counted: the territory's
    next write counts them from its records (they are in the state database, which no copy
    holds)."""
    t = lyon.id
    _write(svc, t, _op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"}))
    _write(svc, t, _op(svc, "proposal", _proposal("p0", "bp", "2024-02-01T10:00:00Z", "ann")))
    items = [
        Record(KINDS["proposal"], _proposal(f"q{i}", "bp", "2024-02-01T10:00:00Z", f"u{i}"), line=i) for i in range(9)
    ]
    items.append(Record(KINDS["proposal"], _proposal("q9", "nowhere", "2024-02-01T10:00:00Z", "u9"), line=9))
    report = load(svc.records, t, items, None, batch=3)
    assert not report.written and report.rejected == 1, report.to_dict()
    participants = svc.records.writer.cells.participants
    # Written to a staged copy, its batches counted their people: until a write counts again.
    assert participants.unsettled(t) == svc.store.stages
    _write(svc, t, _op(svc, "proposal", _proposal("p1", "bp", "2024-03-01T10:00:00Z", "zed")))
    assert _same(svc, t)[("participants", "2024", None, None)] == 2  # ann and zed
    assert participants.count(t, [("2024", None, None)]) == {("2024", None, None): 2}
    assert not participants.unsettled(t)
    # A load that fails on the way (its process killed, here an error) leaves the same.
    stage = svc.store.staged() if svc.store.stages else contextlib.nullcontext(Stage())
    with pytest.raises(RuntimeError), svc.records.writer.cells.staged(t, stage):
        participants.add(t, [(("2024", None, None), "ghost")])
        raise RuntimeError("killed")
    assert participants.unsettled(t)
    _write(svc, t, _op(svc, "proposal", _proposal("p2", "bp", "2024-03-01T10:00:00Z", "zed")))
    assert _same(svc, t)[("participants", "2024", None, None)] == 2 and not participants.unsettled(t)


def test_verify_finds_a_wrong_value_and_repairs_it(svc: Any, lyon: Territory) -> None:
    """`civicfed indicators verify`: a cell set wrong, or cells never kept (a state database set up
    beside a store written before), is a difference and exit 1; --repair sets them from the
    records."""
    t = lyon.id
    _write(svc, t, _op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"}))
    _write(svc, t, _op(svc, "proposal", _proposal("p1", "bp", "2024-03-05T10:00:00Z", "ann", vote_count=3)))
    cli_run = current_app.test_cli_runner()
    run = cli_run.invoke(cli, ["indicators", "verify"])
    assert run.exit_code == 0 and f"{t}: ok" in run.output, run.output
    rows = svc.records.writer.cells.rows
    rows.write(t, {("votes", "2024-03", None, None): ("4", 1)}, CELLS_VERSION)
    run = cli_run.invoke(cli, ["indicators", "verify", "--territory", t])
    assert run.exit_code == 1 and f"{t},votes,2024-03,,,4,3" in run.output and "--repair" in run.output, run.output
    rows.clear(t)  # (a state database set up anew beside the store)
    run = cli_run.invoke(cli, ["indicators", "verify", "--territory", t])
    assert run.exit_code == 1 and f"{t},proposals,2024,,,,1" in run.output, run.output
    run = cli_run.invoke(cli, ["indicators", "verify", "--repair"])
    assert run.exit_code == 0 and f"{t}: repaired" in run.output, run.output
    assert _same(svc, t)[("votes", "2024-03", "bp", None)] == 3
    # The repaired cells go on being kept by the writes.
    _write(svc, t, _op(svc, "vote", {"id": "v1", "proposal": "p1", "voter": "ben", "created": "2024-03-06T10:00:00Z"}))
    assert _same(svc, t)[("votes", "2024-03", "bp", None)] == 1
    run = cli_run.invoke(cli, ["indicators", "verify", "--territory", "nowhere"])
    assert run.exit_code != 0 and "unknown territory" in run.output, run.output


def _published(svc: Any, t: str, cell: tuple[str, str, str | None, str | None]) -> bool:
    """Whether the territory's cube has an observation, with its value, of this cell."""
    measure = indicators()[cell[0]].iri
    found = svc.records.indicator_observations([(svc.records.indicator_cube(t), cell)], measure)
    return "value" in found.get((t, cell), {})


def test_values_lost_with_a_process_are_set_right_by_the_next_write(svc: Any, lyon: Territory) -> None:
    """A write's values follow its records in a write of their own: a process dying in between
    (its cells and participants written to the state database, its cube not) leaves a marker, and
    the territory's next write recounts."""
    t = lyon.id
    _write(svc, t, _op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"}))
    # Its records with its new participants, then its values.
    with killed_at_commit(svc.records.writer, 2), pytest.raises(SystemExit):
        _write(svc, t, _op(svc, "proposal", _proposal("p1", "bp", "2024-03-05T10:00:00Z", "ann")))
    assert svc.records.get(t, KINDS["proposal"], "p1")["title"] == "Idée p1"  # the records landed
    assert svc.records.writer.cells.pending(t) and not _published(svc, t, ("proposals", "2024", None, None))
    _write(svc, t, _op(svc, "proposal", _proposal("p2", "bp", "2024-03-06T10:00:00Z", "ben")))
    assert _same(svc, t)[("proposals", "2024", None, None)] == 2 and not svc.records.writer.cells.pending(t)


def test_a_marker_removed_after_its_values_outlives_a_process_dying_in_between(svc: Any, lyon: Territory) -> None:
    """On the embedded store, values that only add statements (a first import whose cube is made
    whole: its districts' populations) are loaded, and the marker removed by a write of its own
    after them: a process dying in between leaves the marker, and the next write recounts. (A
    store that writes insertions for no less removes it with the values: the last commit.)"""
    t = lyon.id
    split = svc.store.cheaper_insertions
    people = {"value": 40000, "year": 2021, "source": "INSEE"}
    district = {"id": "d1", "name": "Presqu'île", "level": "quartier", "population": people}
    process = {"id": "bp", "title": "Budget", "type": "participatory_budget"}
    first = [_op(svc, "district", district), _op(svc, "process", process)]
    first.append(_op(svc, "proposal", _proposal("p1", "bp", "2024-03-05T10:00:00Z", "ann", district="d1")))
    # Its records with the marker, its values, the marker's removal.
    with killed_at_commit(svc.records.writer, 3 if split else 2), pytest.raises(SystemExit):
        _write(svc, t, *first)
    assert svc.records.writer.cells.pending(t)  # the marker stayed (and the values landed, if split)
    assert _published(svc, t, ("proposals", "2024", None, "d1")) is split
    _write(svc, t, _op(svc, "proposal", _proposal("p2", "bp", "2024-03-06T10:00:00Z", "ben", district="d1")))
    assert _same(svc, t)[("proposals", "2024", None, "d1")] == 2 and not svc.records.writer.cells.pending(t)


def test_cells_kept_in_the_state_database(svc: Any, lyon: Territory) -> None:
    """A territory's cells are rows of the state database (value and contributions), not
    statements of the store; a state database without them beside a store that has its cube (set
    up anew, restored from an older backup) has them counted again by the next write."""
    t = lyon.id
    _write(svc, t, _op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"}))
    _write(svc, t, _op(svc, "proposal", _proposal("p1", "bp", "2024-03-05T10:00:00Z", "ann", vote_count=3)))
    graph = svc.urls.indicators_graph(t)
    assert not svc.store.select(f"SELECT ?s WHERE {{ GRAPH <{graph}> {{ ?s <{CF.cellValue}> ?v }} }}")
    rows = svc.records.writer.cells.rows
    votes = ("votes", "2024-03", None, None)
    assert rows.read(t, [votes, ("votes", "2025", None, None)]) == {votes: ("3", 1)}  # one proposal's 3 votes
    assert rows.version(t) == CELLS_VERSION
    rows.clear(t)
    _write(svc, t, _op(svc, "proposal", _proposal("p2", "bp", "2024-03-06T10:00:00Z", "ben")))
    assert _same(svc, t)[("proposals", "2024", None, None)] == 2 and rows.version(t) == CELLS_VERSION


def test_participants_kept_in_the_state_database(svc: Any, lyon: Territory) -> None:
    """A place's participants are rows of the state database, not statements of the store; cells
    of a civicfed that kept them in the store (cells version 2) are counted again by the next
    write, which leaves none of those statements."""
    t = lyon.id
    _write(svc, t, _op(svc, "process", {"id": "bp", "title": "BP", "type": "participatory_budget"}))
    for pid, author in (("p1", "ann"), ("p2", "ben")):
        _write(svc, t, _op(svc, "proposal", _proposal(pid, "bp", "2024-03-05T10:00:00Z", author)))
    _write(svc, t, _op(svc, "vote", {"id": "v1", "proposal": "p1", "voter": "cat", "created": "2024-03-06T10:00:00Z"}))
    participants = svc.records.writer.cells.participants
    year = ("2024", None, None)
    assert participants.count(t, [year, ("2024", "bp", None)]) == {year: 3, ("2024", "bp", None): 3}
    graph = svc.urls.indicators_graph(t)
    held = f"SELECT ?s WHERE {{ GRAPH <{graph}> {{ ?s <{CF.participantIn}> ?c }} }}"
    assert not svc.store.select(held)
    # As an older civicfed left them: version 2, the people in the store, none in the database.
    cells = Changeset()
    cells.drop(graph, f"{graph}#cells")
    cells.add(graph, [f'<{graph}#cells> <{CF.cellsVersion}> "2"^^<{XSD.integer}>'])
    cells.add(graph, [f"<{graph}/people/2024/_/_/x> <{CF.participantIn}> <{graph}/participants/2024/_/_>"])
    svc.store.apply(cells)
    participants.replace(t, [])
    participants.settle(t)  # the cells' version alone says they are to be counted again
    _write(svc, t, _op(svc, "proposal", _proposal("p3", "bp", "2024-04-05T10:00:00Z", "dan")))
    assert _same(svc, t)[("participants", "2024", None, None)] == 4
    assert participants.count(t, [year]) == {year: 4}
    assert not svc.store.select(held)
    # The state database restored alone (without a participant): verify finds it and repairs it.
    participants.remove(t, [(year, next(p for place, p in participants.pairs(t) if place == "2024/_/_"))])
    assert verify(svc.records, t).participants == 1
    assert verify(svc.records, t, repair=True) and not verify(svc.records, t)
    assert participants.count(t, [year]) == {year: 4}
