"""A territory's indicators published as an RDF Data Cube (server/records/cube.py): well formed
by the specification's own integrity constraints (IC-1 to IC-21, tests/data/qb-ic), values per
1,000 inhabitants from the official population with its source, an explicit status where there
is none, small breakdown cells withheld (and the cells that would give them away), and the cube
each write keeps equal to one made from scratch."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyoxigraph import Literal, NamedNode, Quad, Store

from importers import population
from importers.demo import DEMO_TERRITORIES, DemoSource, territory_record
from server.indicators import verify
from server.ingest import load
from server.model.kinds import KINDS
from server.records import Op
from server.records.cube import CONFIDENTIAL, MISSING, period_iri
from server.records.indicators import comparable
from vocabularies import CF, QB, SDMXA, SDMXD, XSD

from .conftest import Territory, killed_at_commit

POPULATIONS = Path(__file__).parent / "data/samples/population/insee_populations_legales_paris_lyon_grenoble_rennes.csv"

IC = Path(__file__).parent / "data" / "qb-ic"


def _op(svc: Any, kind: str, data: dict[str, Any]) -> Op:
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], data["id"], "upsert", svc.records.prepare(KINDS[kind], body, local_id=data["id"]))


def _cube(svc: Any, t: str) -> Store:
    """The territory's published cube graph, in a store of its own (its default graph)."""
    out = Store()
    graph = svc.urls.indicators_cube_graph(t)
    out.extend(Quad(q.subject, q.predicate, q.object) for q in svc.store.quads(graph=graph))
    return out


def violations(cube: Store) -> list[str]:
    """The integrity constraints the cube violates, after the normalisation the ICs assume."""
    for phase in ("normalize-phase-1.ru", "normalize-phase-2.ru"):
        cube.update((IC / phase).read_text())
    found = []
    for path in sorted(IC.glob("ic-*.rq")):
        text = path.read_text()
        prefixes = "".join(line + "\n" for line in text.splitlines() if line.startswith("PREFIX"))
        body = "\n".join(line for line in text.splitlines() if not line.startswith(("PREFIX", "#")))
        if "<$p>" in text:  # IC-20, IC-21: once per property their instantiation query gives
            select = "\n".join(line[1:] for line in text.splitlines() if line.startswith("#   "))
            prefixes += "PREFIX owl: <http://www.w3.org/2002/07/owl#>\n" if "owl:" not in prefixes else ""
            queries = [body.replace("$p", row["p"].value) for row in cube.query(prefixes + select)]
        else:  # IC-19 is two ASK queries
            queries = ["ASK {" + part for part in body.split("ASK {")[1:]]
        if any(cube.query(prefixes + q) for q in queries):
            found.append(text.splitlines()[0])
    return found


def _obs(cube: Store, measure: str, period: str, area: str | None = None, process: str | None = None) -> dict[str, Any]:
    """The one observation (or withheld one) of a measure for a period, area and process."""
    rows = list(
        cube.query(
            f"SELECT ?o ?p ?v WHERE {{ ?o <{QB.measureType}> <{measure}> ; <{SDMXD.refPeriod}> ?period ; "
            f"<{SDMXD.refArea}> ?area ; <{CF.refProcess}> ?process ; ?p ?v "
            f"FILTER(?period = <{period_iri(period)}>) {'FILTER(?area = <' + area + '>)' if area else ''} "
            f"FILTER(?process = <{process or CF.allProcesses}>) }}"
        )
    )
    assert len({r["o"] for r in rows}) == 1, rows
    return {r["p"].value: r["v"] for r in rows}


def test_a_cube_well_formed_normalised_and_protected(svc: Any, lyon: Territory) -> None:
    t, urls = lyon.id, svc.urls
    district = {"id": "d1", "name": "Presqu'île", "level": "quartier",
                "population": {"value": 40000, "year": 2021, "source": "INSEE"}}  # fmt: skip
    ops = [
        _op(svc, "district", district),
        _op(svc, "district", {"id": "d2", "name": "Croix-Rousse", "level": "quartier"}),
    ]
    ops += [_op(svc, "process", {"id": p, "title": p, "type": "consultation"}) for p in ("bp", "c", "e")]
    svc.records.write_internal(t, ops)
    # March 2021: 12 people in bp, 3 in c, 6 in e (all in district d1 or d2); 2025: 2 people.
    ops = []
    for i in range(12):
        ops.append(_op(svc, "proposal", {"id": f"bp{i}", "process": "bp", "title": "Idée", "author": f"bp-{i}",
                                         "created": "2021-03-01T10:00:00Z", "district": "d1"}))  # fmt: skip
    for i in range(3):
        ops.append(_op(svc, "proposal", {"id": f"c{i}", "process": "c", "title": "Idée", "author": f"c-{i}",
                                         "created": "2021-03-02T10:00:00Z", "district": "d2"}))  # fmt: skip
    for i in range(6):
        ops.append(_op(svc, "proposal", {"id": f"e{i}", "process": "e", "title": "Idée", "author": f"e-{i}",
                                         "created": "2021-03-04T10:00:00Z", "district": "d2"}))  # fmt: skip
    for i in range(2):
        ops.append(_op(svc, "proposal", {"id": f"n{i}", "process": "bp", "title": "Idée", "author": f"n-{i}",
                                         "created": "2025-05-02T10:00:00Z"}))  # fmt: skip
    svc.records.write_internal(t, ops)
    cube = _cube(svc, t)
    assert violations(cube) == []
    # Every measure observed is one of the structure's (which the ICs leave unchecked).
    unknown = f"""SELECT DISTINCT ?m WHERE {{ ?o <{QB.measureType}> ?m
        FILTER NOT EXISTS {{ <{CF.indicatorStructure}> <{QB.component}>/<{QB.measure}> ?m }} }}"""
    assert list(cube.query(unknown)) == []
    territory, d1 = urls.territory(t), urls.resource(t, "district", "d1")
    process = {p: urls.resource(t, "process", p) for p in ("bp", "c", "e")}

    # Counts with their unit; per 1,000 inhabitants with the population and its source.
    total = _obs(cube, CF.participants, "2021", territory)
    assert total[CF.participants] == Literal("21", datatype=NamedNode(XSD.integer))
    # The unit is the measure's (attached to the measure property), as the structure says.
    unit = f"""SELECT ?u WHERE {{ <{CF.indicatorStructure}> <{QB.component}> ?c .
        ?c <{QB.attribute}> <{SDMXA.unitMeasure}> ; <{QB.componentAttachment}> <{QB.MeasureProperty}> .
        <{CF.participants}> <{SDMXA.unitMeasure}> ?u }}"""
    assert [r["u"] for r in cube.query(unit)] == [NamedNode("http://qudt.org/vocab/unit/NUM")]
    per = _obs(cube, f"{CF.participants}Per1000", "2021", territory)
    assert Decimal(per[f"{CF.participants}Per1000"].value) == (Decimal(21) * 1000 / 522250).quantize(Decimal("0.001"))
    assert per[CF.population].value == "522250" and per[CF.populationSource] == NamedNode(f"{territory}#population")
    in_d1 = _obs(cube, f"{CF.proposals}Per1000", "2021", d1)  # a district's own population
    assert Decimal(in_d1[f"{CF.proposals}Per1000"].value) == Decimal("0.3") and in_d1[CF.population].value == "40000"
    # 2024 still uses the population of 2021 (three years after it), 2025 none: no value, and
    # an explicit status (district d2 has no population at all).
    missing = _obs(cube, f"{CF.proposals}Per1000", "2025", territory)
    assert missing[SDMXA.obsStatus] == NamedNode(MISSING) and f"{CF.proposals}Per1000" not in missing
    assert str(missing["http://www.w3.org/1999/02/22-rdf-syntax-ns#type"].value) == CF.WithheldObservation

    # Fewer than 5 people in a breakdown cell: withheld as confidential (process c: 3 people;
    # 2025: 2 people in bp).
    assert _obs(cube, CF.participants, "2021", territory, process["c"])[SDMXA.obsStatus] == NamedNode(CONFIDENTIAL)
    assert _obs(cube, CF.participants, "2025", territory, process["bp"])[SDMXA.obsStatus] == NamedNode(CONFIDENTIAL)
    # The territory's yearly total is published, small as it is (no breakdown).
    assert _obs(cube, CF.participants, "2025", territory)[CF.participants].value == "2"
    # ... and the smallest other cell of its breakdown too (e: 6 people), else 21 - 12 gives c's
    # 3 away; bp's 12 stays published. Its value per inhabitant is withheld with it.
    assert _obs(cube, CF.participants, "2021", territory, process["e"])[SDMXA.obsStatus] == NamedNode(CONFIDENTIAL)
    assert _obs(cube, CF.participants, "2021", territory, process["bp"])[CF.participants].value == "12"
    assert _obs(cube, f"{CF.participants}Per1000", "2021", territory, process["c"])[SDMXA.obsStatus] == NamedNode(
        CONFIDENTIAL
    )
    # Counts of things, not people, are never withheld.
    assert _obs(cube, CF.proposals, "2021", territory, process["c"])[CF.proposals].value == "3"
    _no_differencing(cube, territory)


def _no_differencing(cube: Store, territory: str) -> None:
    """No breakdown by process of people's counts has exactly one withheld cell beside a
    published total (but a territory's yearly total over a single process: it is that total)."""
    rows = cube.query(
        f"SELECT ?o ?period ?area ?process ?v ?status WHERE {{ ?o <{QB.measureType}> <{CF.participants}> ; "
        f"<{SDMXD.refPeriod}> ?period ; <{SDMXD.refArea}> ?area ; <{CF.refProcess}> ?process . "
        f"OPTIONAL {{ ?o <{CF.participants}> ?v }} OPTIONAL {{ ?o <{SDMXA.obsStatus}> ?status }} }}"
    )
    cells = {(r["period"].value, r["area"].value, r["process"].value): r["v"] for r in rows}
    by_process: dict[tuple[str, str], list[Any]] = {}
    for (period, area, process), value in cells.items():
        if process != CF.allProcesses:
            by_process.setdefault((period, area), []).append(value)
    for (period, area), members in by_process.items():
        yearly_total = "/year/" in period and area == territory
        if sum(1 for v in members if v is None) == 1 and not (yearly_total and len(members) == 1):
            assert cells[(period, area, CF.allProcesses)] is None, (period, area, members)


def test_the_cube_each_write_keeps_is_the_one_made_from_scratch(svc: Any, lyon: Territory) -> None:
    """After writes that move cells, people across the threshold and records across years, the
    published graph equals a cube rebuilt from scratch (verify --repair leaves it as it is)."""
    t = lyon.id
    svc.records.write_internal(t, [_op(svc, "process", {"id": p, "title": p, "type": "consultation"}) for p in "ab"])
    for step in range(14):
        process = "ab"[step % 2]
        year = 2021 + step % 3
        data = {"id": f"p{step % 9}", "process": process, "title": "Idée", "author": f"u{step % 7}",
                "created": f"{year}-0{1 + step % 9}-03T10:00:00Z"}  # fmt: skip
        if step % 3:  # answered: the median of the days to a decision moves too
            data["answered_at"] = f"{year}-0{1 + step % 9}-{4 + step:02d}T10:00:00Z"
        svc.records.write_internal(t, [_op(svc, "proposal", data)])
        if step % 4 == 3:
            svc.records.write_internal(t, [Op(KINDS["proposal"], f"p{step % 5}", "delete", None)], partial=True)
    kept = _triples(_cube(svc, t))
    assert any(p == f"<{CF.daysToDecision}>" for _, p, _ in kept)
    assert not verify(svc.records, t, repair=True)  # the cells and the cube are right: nothing repaired
    rebuilt = svc.records.writer.cells.rebuild_cube(t, 5)
    # Made again over a cube that is right, it rewrites nothing: only the marker goes.
    assert [cs.insert_count() for cs in rebuilt] == [0]
    for changeset in rebuilt:
        svc.store.apply(changeset)
    assert _triples(_cube(svc, t)) == kept
    assert violations(_cube(svc, t)) == []


def test_a_population_imported_later_fills_the_values_per_inhabitant(svc: Any, lyon: Territory) -> None:
    """Values per inhabitant follow the populations: a year uses its own, or one of at most three
    years before (Lyon's is of 2021); a territory's record rewritten with the population of a
    later year makes that year's values, and the missing ones go."""
    t = lyon.id
    svc.records.write_internal(t, [_op(svc, "process", {"id": "a", "title": "a", "type": "consultation"})])
    for pid, year in (("p1", 2023), ("p2", 2026)):
        data = {"id": pid, "process": "a", "title": "Idée", "author": "x", "created": f"{year}-02-03T10:00:00Z"}
        svc.records.write_internal(t, [_op(svc, "proposal", data)])
    territory = svc.urls.territory(t)
    assert _obs(_cube(svc, t), f"{CF.proposals}Per1000", "2023", territory)[CF.population].value == "522250"
    assert _obs(_cube(svc, t), f"{CF.proposals}Per1000", "2026", territory)[SDMXA.obsStatus] == NamedNode(MISSING)
    record = svc.records.get(t, KINDS["territory"], t)
    record = {k: v for k, v in record.items() if not k.startswith(("record_", "iri"))}
    record["population"] = {"value": 500000, "year": 2026, "source": "INSEE"}
    svc.records.write_internal(t, [_op(svc, "territory", record)])
    got = _obs(_cube(svc, t), f"{CF.proposals}Per1000", "2026", territory)
    assert Decimal(got[f"{CF.proposals}Per1000"].value) == Decimal("0.002") and got[CF.population].value == "500000"


def test_an_imported_population_table_comes_before_the_record(svc: Any, lyon: Territory) -> None:
    """Values per inhabitant take the population of an imported table (INSEE's legal populations,
    the real sample: Lyon 519,127 in 2023, its latest year before 2024) before the territory
    record's own (522,250 in 2021), and name the table's observation as their source."""
    t = lyon.id
    svc.records.write_internal(t, [_op(svc, "process", {"id": "a", "title": "a", "type": "consultation"})])
    data = {"id": "p1", "process": "a", "title": "Idée", "author": "x", "created": "2024-02-03T10:00:00Z"}
    svc.records.write_internal(t, [_op(svc, "proposal", data)])
    territory = svc.urls.territory(t)
    assert _obs(_cube(svc, t), f"{CF.proposals}Per1000", "2024", territory)[CF.population].value == "522250"
    source = population.read(
        POPULATIONS.read_bytes(), name=POPULATIONS.name, territory=t, urls=svc.urls, commune="69123"
    )
    report = load(svc.records, t, source.items(), None, source_id=source.id, partial=True)
    assert report.written, report.to_dict()
    got = _obs(_cube(svc, t), f"{CF.proposals}Per1000", "2024", territory)
    assert got[CF.population].value == "519127"
    assert got[CF.populationSource].value.startswith(svc.urls.source(t, source.id))


def _triples(store: Store) -> set[tuple[str, str, str]]:
    return {comparable((q.subject, q.predicate, q.object)) for q in store}


def test_the_specification_queries_find_what_is_wrong(svc: Any, lyon: Territory) -> None:
    """The IC queries do find violations: an observation without a value, a duplicate."""
    t = lyon.id
    svc.records.write_internal(t, [_op(svc, "process", {"id": "a", "title": "a", "type": "consultation"})])
    data = {"id": "p1", "process": "a", "title": "Idée", "author": "x", "created": "2023-02-03T10:00:00Z"}
    svc.records.write_internal(t, [_op(svc, "proposal", data)])
    cube = _cube(svc, t)
    found = cube.query(
        f"SELECT ?o WHERE {{ ?o <{CF.proposals}> ?v ; <{SDMXD.refPeriod}> <{period_iri('2023')}> ; "
        f"<{CF.refProcess}> <{CF.allProcesses}> }}"
    )
    [obs] = [r["o"] for r in found]
    cube.remove(next(iter(cube.quads_for_pattern(obs, NamedNode(CF.proposals), None))))
    copy = NamedNode(obs.value + "-copy")
    for q in list(cube.quads_for_pattern(obs, None, None)):
        cube.add(Quad(copy, q.predicate, q.object))
    found = violations(cube)
    assert any(re.match(r"# IC-12\b", f) for f in found) and any(re.match(r"# IC-15\b", f) for f in found), found


def _authors(svc: Any, n: int) -> list[Op]:
    """Proposals of process a in January 2024 by n people."""
    data = [
        {"id": f"p{i}", "process": "a", "title": "Idée", "author": f"u{i}", "created": "2024-01-10T10:00:00Z"}
        for i in range(n)
    ]
    return [_op(svc, "proposal", d) for d in data]


def test_votes_are_withheld_with_their_voters(svc: Any, lyon: Territory) -> None:
    """Individual votes are private: in a cell whose participants are withheld, the votes are
    withheld too (one vote and no proposal or comment there would say its one participant)."""
    t = lyon.id
    svc.records.write_internal(t, [_op(svc, "process", {"id": p, "title": p, "type": "consultation"}) for p in "ab"])
    ops = _authors(svc, 6)
    ops.append(_op(svc, "proposal", {"id": "q", "process": "b", "title": "Idée", "author": "u0",
                                     "created": "2023-12-10T10:00:00Z"}))  # fmt: skip
    svc.records.write_internal(t, ops)
    vote = {"id": "v1", "proposal": "q", "voter": "solo", "created": "2024-01-11T10:00:00Z"}
    svc.records.write_internal(t, [_op(svc, "vote", vote)])
    cube, b = _cube(svc, t), svc.urls.resource(t, "process", "b")
    territory = svc.urls.territory(t)
    assert _obs(cube, CF.participants, "2024", territory, b)[SDMXA.obsStatus] == NamedNode(CONFIDENTIAL)
    assert _obs(cube, CF.votes, "2024", territory, b)[SDMXA.obsStatus] == NamedNode(CONFIDENTIAL)
    assert _obs(cube, CF.votes, "2024", territory)[CF.votes].value == "1"  # the yearly total is no breakdown
    assert violations(cube) == []


def test_verify_finds_a_cube_out_of_date_and_sets_it_right(svc: Any, lyon: Territory) -> None:
    """The cube is checked too: a process that died before a write's cube was rebuilt (its
    population changed), or a new INDICATORS_MIN_PEOPLE, is a difference that --repair sets."""
    t = lyon.id
    svc.records.write_internal(t, [_op(svc, "process", {"id": "a", "title": "a", "type": "consultation"})])
    ops = _authors(svc, 3)
    svc.records.write_internal(t, ops)
    assert not verify(svc.records, t)
    writer = svc.records.writer
    writer.min_people = 2  # the setting changed: 3 people in process a are no longer withheld
    try:
        found = verify(svc.records, t)
        assert found.cube > 0 and not found.differences, found
        assert verify(svc.records, t, repair=True) and not verify(svc.records, t)
        a = svc.urls.resource(t, "process", "a")
        assert _obs(_cube(svc, t), CF.participants, "2024", svc.urls.territory(t), a)[CF.participants].value == "3"
    finally:
        writer.min_people = 5
    svc.records.replace_indicators(t, svc.records.recount_indicators(t))
    # A process dying between a write's values and its cube: the marker stays, the next write
    # (or verify) sets the cube right.
    record = svc.records.get(t, KINDS["territory"], t)
    record = {k: v for k, v in record.items() if not k.startswith(("record_", "iri"))}
    record["population"] = {"value": 400000, "year": 2024, "source": "INSEE"}
    # The records with the marker, then the cube.
    with killed_at_commit(writer, 2), pytest.raises(SystemExit):
        svc.records.write_internal(t, [_op(svc, "territory", record)])
    found = verify(svc.records, t)
    assert found.pending and found.cube > 0, found
    svc.records.write_internal(t, [_op(svc, "proposal", {"id": "p9", "process": "a", "title": "Idée",
                                                          "created": "2024-02-10T10:00:00Z"})])  # fmt: skip
    assert not verify(svc.records, t)
    per = _obs(_cube(svc, t), f"{CF.proposals}Per1000", "2024", svc.urls.territory(t))
    assert per[CF.population].value == "400000"


def test_what_is_withheld_does_not_depend_on_the_order_cells_come_in(svc: Any) -> None:
    """A cube kept write by write (cells in the order writes touch them) must withhold what one
    made from scratch withholds: secondary suppression looks at breakdowns in one order. The
    demo's Lyon in one write showed it (two districts' months withheld, or not)."""
    spec = next(s for s in DEMO_TERRITORIES if s.id == "lyon")
    svc.records.create_territory(territory_record(spec))
    load(svc.records, "lyon", DemoSource(spec, 1.0).items(), None)
    found = verify(svc.records, "lyon")
    assert not found, found
