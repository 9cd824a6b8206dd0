"""Districts in a real store: Paris's arrondissements loaded and dereferenced with their boundary,
a located proposal put in its district, and INSEE populations joined with Lyon's districts in
SPARQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from importers import boundaries, population
from server.ingest import Record, load
from server.ingest.districts import DistrictIndex, place_in_districts, reassign_ops
from server.model.kinds import KINDS
from server.records import Op
from vocabularies import prefix_declarations

from .conftest import make_territory

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
PARIS = SAMPLES / "boundaries" / "paris_arrondissements.opendata.paris.fr.geojson"
LYON = SAMPLES / "boundaries" / "lyon_quartiers_grandlyon.geojson"
POPULATIONS = SAMPLES / "population" / "insee_populations_legales_paris_lyon_grenoble_rennes.csv"


def load_file(svc: Any, into: str, read: Any, path: Path, **options: Any) -> dict[str, Any]:
    source = read(path.read_bytes(), name=path.name, **options)
    return load(svc.records, into, source.items(), None, source_id=source.id, partial=True).to_dict()


def test_arrondissements_dereference_and_located_records_get_theirs(client: FlaskClient, svc: Any) -> None:
    make_territory(svc, {"id": "paris", "name": "Paris", "insee_cog": "75056", "country": "FR"}, ("admin",))
    report = load_file(svc, "paris", boundaries.read, PARIS)
    assert report["written"] and (report["created"], report["rejected"]) == (20, 0), report
    turtle = client.get("/id/paris/district/75109", headers={"Accept": "text/turtle"})
    assert turtle.status_code == 200
    # WKT as written (Virtuoso keeps its own, single-precision form), GeoJSON exactly as imported.
    assert "cf:District" in turtle.text and re.search(r'"POLYGON ?\(\(2\.339', turtle.text)
    assert "[2.3397765,48.8820293]" in turtle.text.replace(" ", "")
    ninth = client.get("/api/v1/territories/paris/districts/75109").get_json()
    assert (ninth["name"], ninth["level"], ninth["code_list"]) == ("9ème Ardt", "arrondissement", "insee-cog")
    assert ninth["geometry"]["coordinates"][0][0] == [2.3397765, 48.8820293]  # as sent, on every store
    # A proposal at the Palais Garnier written without its district, then placed by the boundaries.
    process = {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}
    proposal = {"id": "p1", "process": "bp", "title": "Bancs", "location": {"lat": 48.872, "lon": 2.3317}}
    ops = [
        Op(KINDS[k], d["id"], "upsert", svc.records.prepare(KINDS[k], d))
        for k, d in (("process", process), ("proposal", proposal))
    ]
    svc.records.write_internal("paris", ops)
    assert DistrictIndex.for_territory(svc.records, "paris").locate(2.3317, 48.872) == "75109"
    changes = reassign_ops(svc.records, "paris")
    assert [(o.kind.name, o.local_id, o.action, o.data) for o in changes] == [
        ("proposal", "p1", "patch", {"district": "75109"})
    ]
    svc.records.write_internal("paris", changes)
    listed = client.get("/api/v1/territories/paris/proposals", query_string={"district": "75109"}).get_json()
    assert [p["id"] for p in listed["items"]] == ["p1"] and listed["items"][0]["district"] == "75109"
    assert reassign_ops(svc.records, "paris") == []  # nothing left to move
    # In a batch: the same boundaries again move nothing; the 9th arrondissement deleted takes p1 out.
    district = KINDS["district"]
    same = svc.records.prepare(district, svc.records.get("paris", district, "75101"))
    assert place_in_districts(svc.records, "paris", [Op(district, "75101", "upsert", same)]) == []
    gone = place_in_districts(svc.records, "paris", [Op(district, "75109", "delete")])
    assert [(o.local_id, o.data) for o in gone] == [("p1", {"district": None})]


def test_populations_join_districts_in_sparql(client: FlaskClient, svc: Any) -> None:
    make_territory(svc, {"id": "lyon", "name": "Lyon", "insee_cog": "69123", "country": "FR"}, ("admin",))
    options = {"level": "quartier", "code_list": "local", "parent": "6938{numero_arrondissement}"}
    options |= {"parent_label": "Lyon {numero_arrondissement}", "parent_code_list": "insee-cog"}
    report = load_file(svc, "lyon", boundaries.read, LYON, **options)
    assert (report["created"], report["rejected"]) == (36 + 9, 0), report
    report = load_file(svc, "lyon", population.read, POPULATIONS, territory="lyon", urls=svc.urls, commune="69123")
    assert report["written"] and report["rejected"] == 0, report
    # Two proposals written as the loader will: their districts filled from their coordinates.
    process = {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"}
    places = {"p1": (45.7578, 4.8320), "p2": (45.7601, 4.8519)}  # Bellecour (2e), rue Garibaldi (3e)
    data = [("process", process)] + [
        ("proposal", {"id": i, "process": "bp", "title": i, "location": {"lat": lat, "lon": lon}})
        for i, (lat, lon) in places.items()
    ]
    ops = [Op(KINDS[k], d["id"], "upsert", svc.records.prepare(KINDS[k], d)) for k, d in data]
    assert place_in_districts(svc.records, "lyon", ops) == []
    svc.records.write_internal("lyon", ops)
    quartiers = {i: client.get(f"/api/v1/territories/lyon/proposals/{i}").get_json()["district"] for i in places}
    assert quartiers["p1"].startswith("2") and quartiers["p2"].startswith(
        "3"
    )  # a quartier code: arrondissement, then number
    # Proposals per 10,000 inhabitants of each arrondissement: records, districts and statistics in one query.
    query = (
        prefix_declarations(("cf", "dct", "geo", "skos", "sdmxd", "xsd"), sparql=True)
        + """
        SELECT ?name ?inhabitants (COUNT(DISTINCT ?quartier) AS ?quartiers) (COUNT(DISTINCT ?p) AS ?proposals)
               (xsd:decimal(COUNT(DISTINCT ?p)) * 10000 / ?inhabitants AS ?rate) WHERE {
          ?district a cf:District ; dct:type cf:district-level-arrondissement ; skos:prefLabel ?name .
          ?observation sdmxd:refArea ?district ; sdmxd:refPeriod "2023"^^xsd:gYear ; cf:inhabitants ?inhabitants .
          ?quartier geo:sfWithin ?district .
          OPTIONAL { ?p a cf:Proposal ; dct:spatial ?quartier }
        } GROUP BY ?name ?inhabitants ORDER BY ?name"""
    )
    resp = client.get("/sparql", query_string={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert resp.status_code == 200, resp.text
    rows = {b["name"]["value"]: b for b in resp.get_json()["results"]["bindings"]}
    assert len(rows) == 9
    third = rows["Lyon 3"]
    assert (third["inhabitants"]["value"], third["quartiers"]["value"], third["proposals"]["value"]) == (
        "100679",
        "5",
        "1",
    )
    assert float(third["rate"]["value"]) == pytest.approx(10000 / 100679)  # decimals: stores round differently
    assert rows["Lyon 9"]["proposals"]["value"] == "0"
    assert sum(int(r["inhabitants"]["value"]) for r in rows.values()) == 519127  # the arrondissements make up Lyon


def test_the_loader_places_what_it_loads_and_moves_records_when_boundaries_arrive(
    client: FlaskClient, svc: Any
) -> None:
    """Through the one loading path: records loaded before the boundaries are moved into their
    districts by the boundaries' import; records loaded after get theirs as they are written."""
    make_territory(svc, {"id": "paris", "name": "Paris", "insee_cog": "75056", "country": "FR"}, ("admin",))
    process = Record(KINDS["process"], {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"})
    garnier = {"id": "p1", "process": "bp", "title": "Bancs", "location": {"lat": 48.872, "lon": 2.3317}}
    load(svc.records, "paris", [process, Record(KINDS["proposal"], garnier)], None)
    assert "district" not in client.get("/api/v1/territories/paris/proposals/p1").get_json()
    report = load_file(svc, "paris", boundaries.read, PARIS)
    assert report["created"] == 20 and report["updated"] == 1, report
    assert client.get("/api/v1/territories/paris/proposals/p1").get_json()["district"] == "75109"
    notre_dame = {"id": "p2", "process": "bp", "title": "Fontaine", "location": {"lat": 48.853, "lon": 2.3499}}
    load(svc.records, "paris", [Record(KINDS["proposal"], notre_dame)], None)
    assert client.get("/api/v1/territories/paris/proposals/p2").get_json()["district"] == "75104"
