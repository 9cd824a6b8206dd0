"""`GET /api/v1/compare`: territories compared on an indicator for a period, as JSON, CSV, a
Vega-Lite specification (valid against Vega-Lite's schema), SVG and PNG charts; per 1,000
inhabitants with each population's source; withheld values shown as such; clear 4xx errors. And
`/indicators/{territory}`, the cube the values come from."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import altair
import jsonschema
import pytest
import requests
from defusedxml import ElementTree
from flask.testing import FlaskClient
from pyoxigraph import RdfFormat, parse

from server.model.kinds import KINDS
from server.records import Op
from vocabularies import CF, QB, SDMXD

from .conftest import LiveServer, Territory

SVG = "{http://www.w3.org/2000/svg}"


def _op(svc: Any, kind: str, data: dict[str, Any]) -> Op:
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], data["id"], "upsert", svc.records.prepare(KINDS[kind], body, local_id=data["id"]))


@pytest.fixture
def two(svc: Any, lyon: Territory, grenoble: Territory) -> tuple[str, str]:
    """Lyon: 8 authors of 10 proposals in 2024, a population of 2024; Grenoble: 3 authors, no
    population of 2024."""
    record = {
        k: v for k, v in svc.records.get("lyon", KINDS["territory"], "lyon").items() if not k.startswith("record_")
    }
    record.pop("iri", None)
    record["population"] = {"value": 520000, "year": 2024, "source": "INSEE, populations légales 2024"}
    svc.records.write_internal("lyon", [_op(svc, "territory", record)])
    for t, authors, proposals in (("lyon", 8, 10), ("grenoble", 3, 3)):
        ops = [_op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"})]
        ops += [
            _op(
                svc,
                "proposal",
                {
                    "id": f"p{i}",
                    "process": "bp",
                    "title": "Idée",
                    "author": f"a{i % authors}",
                    "created": f"2024-0{1 + i % 3}-10T10:00:00Z",
                },
            )
            for i in range(proposals)
        ]
        svc.records.write_internal(t, ops)
    return "lyon", "grenoble"


def test_compare_as_json_and_csv(client: FlaskClient, two: tuple[str, str]) -> None:
    got = client.get("/api/v1/compare?indicator=proposals&territories=lyon,grenoble&period=2024")
    assert got.status_code == 200 and got.mimetype == "application/json" and got.headers["Vary"] == "Accept"
    body = got.get_json()
    assert body["indicator"]["code"] == "proposals" and body["period"] == "2024" and body["per"] is None
    assert [(r["territory"], r["name"], r["value"], r["status"]) for r in body["rows"]] == [
        ("lyon", "Lyon", 10, "published"),
        ("grenoble", "Grenoble", 3, "published"),
    ]
    assert "civicfed" in body["source"]
    # Participants: Grenoble's 3 are a territory's yearly total, published; months below 5 are withheld.
    body = client.get("/api/v1/compare?indicator=participants&territories=lyon,grenoble&period=2024-01").get_json()
    assert [(r["value"], r["status"]) for r in body["rows"]] == [(None, "confidential"), (None, "confidential")]
    body = client.get("/api/v1/compare?indicator=participants&territories=lyon,grenoble&period=2024").get_json()
    assert [(r["value"], r["status"]) for r in body["rows"]] == [(8, "published"), (3, "published")]
    # A period without records: no data, not zero.
    body = client.get("/api/v1/compare?indicator=proposals&territories=lyon&period=2019").get_json()
    assert body["rows"][0]["value"] is None and body["rows"][0]["status"] == "no_data"
    # CSV (format=, or Accept), one row per territory.
    text = client.get("/api/v1/compare?indicator=proposals&territories=lyon,grenoble&period=2024&format=csv")
    rows = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    assert text.mimetype == "text/csv" and [(r["territory"], r["value"], r["unit"]) for r in rows] == [
        ("lyon", "10", "number"),
        ("grenoble", "3", "number"),
    ]
    accept = client.get("/api/v1/compare?indicator=votes&period=2024", headers={"Accept": "text/csv"})
    assert accept.mimetype == "text/csv" and accept.get_data(as_text=True).count("\n") == 3  # every territory


def test_per_thousand_inhabitants_names_its_population(client: FlaskClient, two: tuple[str, str], svc: Any) -> None:
    body = client.get(
        "/api/v1/compare?indicator=proposals&territories=lyon,grenoble&period=2024&per=1000inhabitants"
    ).get_json()
    lyon, grenoble = body["rows"]
    assert Decimal(str(lyon["value"])) == (Decimal(10) * 1000 / 520000).quantize(Decimal("0.001"))
    assert lyon["population"] == 520000 and lyon["population_source"] == f"{svc.urls.territory('lyon')}#population"
    # Grenoble has no population of 2024: no value, and said so.
    assert grenoble["value"] is None and grenoble["status"] == "missing" and grenoble["population"] is None
    assert body["measure"] == f"{CF.proposals}Per1000" and "per 1,000 inhabitants" in body["label"]
    # A month's: its count over its year's population (4 proposals in January), as the year's
    # observation names it; the cube holds no such observation, which any reader derives.
    query = "/api/v1/compare?indicator=proposals&territories=lyon,grenoble&period=2024-01&per=1000inhabitants"
    lyon, grenoble = client.get(query).get_json()["rows"]
    assert Decimal(str(lyon["value"])) == (Decimal(4) * 1000 / 520000).quantize(Decimal("0.001"))
    assert (lyon["status"], lyon["population"], lyon["population_source"]) == (
        "published",
        520000,
        f"{svc.urls.territory('lyon')}#population",
    )
    assert grenoble["value"] is None and grenoble["status"] == "missing"
    # Withheld with its count (4 authors in January), no data where the month has none.
    query = "/api/v1/compare?indicator=participants&territories=lyon,grenoble&period=2024-01&per=1000inhabitants"
    assert [(r["value"], r["status"]) for r in client.get(query).get_json()["rows"]] == [(None, "confidential")] * 2
    query = "/api/v1/compare?indicator=proposals&territories=lyon&period=2024-07&per=1000inhabitants"
    assert client.get(query).get_json()["rows"][0]["status"] == "no_data"
    months = svc.store.select(
        f"SELECT ?obs WHERE {{ GRAPH ?g {{ ?obs <{QB.measureType}> <{CF.proposals}Per1000> ; "
        f'<{SDMXD.refPeriod}> ?period FILTER(CONTAINS(STR(?period), "/month/")) }} }}'
    )
    assert not list(months)
    # The query docs/indicators.md gives for them finds the same.
    docs = (Path(__file__).parent.parent / "docs" / "indicators.md").read_text(encoding="utf-8")
    query = next(b for b in re.findall(r"```sparql\n(.*?)```", docs, re.S) if "?per1000" in b)
    answer = client.get("/sparql", query_string={"query": query}, headers={"Accept": "application/sparql-results+json"})
    rows = answer.get_json()["results"]["bindings"]
    found = {(r["area"]["value"], r["month"]["value"]): r["per1000"]["value"] for r in rows}
    january = (svc.urls.territory("lyon"), "http://reference.data.gov.uk/id/month/2024-01")
    assert Decimal(found[january]) == Decimal(str(lyon["value"]))


def test_the_chart_as_vega_lite_svg_and_png(client: FlaskClient, two: tuple[str, str]) -> None:
    query = "/api/v1/compare?indicator=proposals&territories=lyon,grenoble&period=2024&per=1000inhabitants"
    spec = client.get(query + "&format=vega-lite")
    assert spec.mimetype == "application/vnd.vegalite+json"
    schema = Path(altair.__file__).parent / "vegalite" / "v6" / "schema" / "vega-lite-schema.json"
    jsonschema.validate(spec.get_json(), json.loads(schema.read_text()))
    svg = client.get(query + "&format=svg")
    assert svg.mimetype == "image/svg+xml"
    texts = [t.text for t in ElementTree.fromstring(svg.get_data()).iter(f"{SVG}text") if t.text]
    assert "Proposals per 1,000 inhabitants, 2024" in texts  # the title
    assert "Proposals per 1,000 inhabitants (number)" in texts  # the axis, with its unit
    assert "Territory" in texts and "Lyon" in texts and "Grenoble" in texts
    assert any(t.startswith("Source: civicfed") for t in texts)
    assert "no population" in texts  # Grenoble's missing value, not a bar at zero
    french = client.get(query + "&format=svg&lang=fr")
    assert "Territoire" in [t.text for t in ElementTree.fromstring(french.get_data()).iter(f"{SVG}text")]
    png = client.get(query, headers={"Accept": "image/png"})
    assert png.mimetype == "image/png" and png.get_data()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("query", "status", "said"),
    [
        ("indicator=nope&period=2024", 400, "indicator"),
        ("indicator=votes", 400, "period"),
        ("indicator=votes&period=2024-13", 400, "period"),
        ("indicator=votes&period=2024&per=100inhabitants", 400, "per"),
        ("indicator=receivable_share&period=2024&per=1000inhabitants", 400, "receivable_share has no value per"),
        ("indicator=votes&period=2024&territories=lyon,atlantis", 404, "atlantis"),
        ("indicator=votes&period=2024&format=gif", 400, "format"),
        ("indicator=votes&period=2024&colour=red", 400, "colour"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    client: FlaskClient, lyon: Territory, query: str, status: int, said: str
) -> None:
    got = client.get(f"/api/v1/compare?{query}")
    assert got.status_code == status, got.get_data(as_text=True)
    assert got.mimetype == "application/problem+json" and said in got.get_data(as_text=True)


def test_the_cube_document(client: FlaskClient, two: tuple[str, str], svc: Any) -> None:
    """What the comparison reads is published at /indicators/{territory}, in RDF."""
    got = client.get("/indicators/lyon", headers={"Accept": "text/turtle"})
    assert got.status_code == 200 and got.mimetype == "text/turtle"
    triples = list(parse(got.get_data(), format=RdfFormat.TURTLE))
    assert any(t.predicate.value == CF.proposals and t.object.value == "10" for t in triples)
    assert any(t.object.value == QB.DataSet for t in triples)
    again = client.get("/indicators/lyon", headers={"Accept": "text/turtle", "If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/indicators/lyon.jsonld").mimetype == "application/ld+json"
    assert client.get("/indicators/atlantis").status_code == 404


def test_compare_on_a_running_server(live_server: LiveServer) -> None:
    """A real client over loopback, on the demo data: the CSV and the SVG."""
    territories = [t["id"] for t in requests.get(f"{live_server.url}/api/v1/territories", timeout=30).json()["items"]]
    listed = requests.get(f"{live_server.url}/api/v1/territories/lyon/proposals", params={"limit": 1000}, timeout=30)
    proposals = listed.json()["items"]
    assert listed.json().get("next") is None
    year = max(p["created"][:4] for p in proposals if p.get("created"))
    params = {"indicator": "proposals", "territories": ",".join(territories), "period": year, "format": "csv"}
    got = requests.get(f"{live_server.url}/api/v1/compare", params=params, timeout=30)
    assert got.status_code == 200, got.text
    rows = {r["territory"]: r for r in csv.DictReader(io.StringIO(got.text))}
    assert set(rows) == set(territories)
    assert int(rows["lyon"]["value"]) == sum(1 for p in proposals if (p.get("created") or "").startswith(year))
    svg = requests.get(f"{live_server.url}/api/v1/compare", params={**params, "format": "svg"}, timeout=60)
    assert svg.headers["Content-Type"].startswith("image/svg+xml") and ElementTree.fromstring(svg.content) is not None
