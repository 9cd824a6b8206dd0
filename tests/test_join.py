"""`GET /api/v1/join`: an indicator beside a measure of the territories' tables, per territory or
per district, with Pearson's and Spearman's correlations: values and coefficients against
hand-computed ones, districts added up to a coarser level (and withheld when a part is), the real
Lyon quartiers and INSEE populations against the SPARQL query that gives the same numbers, the
outputs (CSV, a Vega-Lite specification valid against its schema, SVG, PNG) and clear 4xx errors."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import altair
import jsonschema
import pytest
import requests
from defusedxml import ElementTree
from flask.testing import FlaskClient

from importers import boundaries, population
from server.ingest import load
from server.model.kinds import KINDS
from server.records import Op
from vocabularies import CF, prefix_declarations

from .conftest import LiveServer, Territory, make_territory

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
LYON = SAMPLES / "boundaries" / "lyon_quartiers_grandlyon.geojson"
POPULATIONS = SAMPLES / "population" / "insee_populations_legales_paris_lyon_grenoble_rennes.csv"
SVG = "{http://www.w3.org/2000/svg}"
#: Proposals per quartier (a, b) of each arrondissement 1 to 5: 2, 1, 4, 3, 5 per arrondissement.
PROPOSALS = {1: (1, 1), 2: (1, 0), 3: (2, 2), 4: (2, 1), 5: (3, 2)}


def _op(svc: Any, kind: str, data: dict[str, Any]) -> Op:
    body = {k: v for k, v in data.items() if k != "id"}
    return Op(KINDS[kind], data["id"], "upsert", svc.records.prepare(KINDS[kind], body, local_id=data["id"]))


@pytest.fixture
def nested(svc: Any, lyon: Territory) -> str:
    """Five arrondissements of 1,000 to 5,000 inhabitants (2024), two quartiers each, and 2, 1, 4,
    3, 5 proposals in them, each by its own author; 2 votes in quartier 1a."""
    ops = [_op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"})]
    for i, (a, b) in PROPOSALS.items():
        people = {"value": 1000 * i, "year": 2024, "source": "Recensement (test)"}
        arrondissement = {"id": f"a{i}", "name": f"Arr. {i}", "level": "arrondissement", "population": people}
        ops.append(_op(svc, "district", arrondissement))
        for q, n in (("a", a), ("b", b)):
            quartier = f"q{i}{q}"
            ops.append(
                _op(svc, "district", {"id": quartier, "name": f"Q {i}{q}", "level": "quartier", "parent": f"a{i}"})
            )
            for j in range(n):
                proposal = {"id": f"p{quartier}{j}", "process": "bp", "title": "Idée", "district": quartier}
                proposal |= {"author": f"u{quartier}{j}", "created": "2024-03-10T10:00:00Z"}
                ops.append(_op(svc, "proposal", proposal))
    ops += [
        _op(svc, "vote", {"id": f"v{j}", "proposal": "pq1a0", "voter": f"w{j}", "created": "2024-03-11T10:00:00Z"})
        for j in range(2)
    ]
    svc.records.write_internal("lyon", ops)
    return "lyon"


def _join(client: FlaskClient, **params: str) -> dict[str, Any]:
    got = client.get("/api/v1/join", query_string=params)
    assert got.status_code == 200, got.get_data(as_text=True)
    assert got.headers["Vary"] == "Accept"
    return got.get_json()


def test_districts_added_up_and_correlated(client: FlaskClient, nested: str) -> None:
    query = {"indicator": "proposals", "period": "2024", "measure": "cf:inhabitants", "territories": "lyon"}
    body = _join(client, **query, on="district", level="arrondissement")
    rows = {r["area"]: r for r in body["rows"]}
    assert [(a, rows[a]["value"], rows[a]["measure"]) for a in sorted(rows)] == [
        ("a1", 2, 1000),
        ("a2", 1, 2000),
        ("a3", 4, 3000),
        ("a4", 3, 4000),
        ("a5", 5, 5000),
    ]
    assert sorted(rows["a1"]["parts"]) == ["a1", "q1a", "q1b"]
    assert body["measure"]["iri"] == CF.inhabitants and body["measure"]["period"] == "2024" and body["n"] == 5
    # x = 1..5, y = 2, 1, 4, 3, 5: r = 0.8 (R's cor.test: t = 2.3094, df = 3, p = 0.1041, 95% CI
    # -0.2796 to 0.9862, Fisher's z).
    pearson, spearman = body["correlation"]["pearson"], body["correlation"]["spearman"]
    assert pearson["coefficient"] == pytest.approx(0.8)
    assert pearson["p_value"] == pytest.approx(0.1041, abs=1e-4)
    assert pearson["confidence_interval"] == pytest.approx([-0.2796, 0.9862], abs=1e-4)
    assert spearman["coefficient"] == pytest.approx(0.8)  # no ties: the ranks are the values
    assert spearman["p_value"] == pytest.approx(16 / 120, abs=1e-6)  # exact: R's cor.test(method = "spearman"), 0.1333
    lo, hi = spearman["confidence_interval"]
    assert lo < pearson["confidence_interval"][0] and hi > pearson["confidence_interval"][1]  # 1.06/(n-3)
    # Per 1,000 inhabitants of each arrondissement, naming the population it rests on.
    per = _join(client, **query, on="district", level="arrondissement", per="1000inhabitants")
    a3 = next(r for r in per["rows"] if r["area"] == "a3")
    assert (a3["value"], a3["population"]) == (1.333, 3000)  # 4 * 1000 / 3000, to 3 decimals as the cube
    assert a3["population_source"].startswith("http") and "/district/a3" in a3["population_source"]
    # The quartiers: each its own value (one had none: 0, the territory has proposals that year);
    # no population there, so no pair.
    quartiers = _join(client, **query, on="district", level="quartier")
    values = {r["area"]: r["value"] for r in quartiers["rows"]}
    assert values["q3a"] == 2 and values["q2b"] == 0 and len(values) == 10
    assert quartiers["n"] == 0 and quartiers["correlation"]["pearson"]["coefficient"] is None
    assert "0 pairs" in quartiers["correlation"]["pearson"]["note"]


def test_what_does_not_add_up_is_refused_and_withheld_parts_withhold_the_sum(client: FlaskClient, nested: str) -> None:
    query = {"period": "2024", "measure": "cf:inhabitants", "territories": "lyon", "on": "district"}
    got = client.get("/api/v1/join", query_string={**query, "indicator": "participants", "level": "arrondissement"})
    assert got.status_code == 400 and "not the sum of its parts" in got.get_json()["detail"]
    # Quartier 1a has 3 participants (an author, 2 voters): withheld, and its 2 votes with them; the
    # 1st arrondissement's votes would give them away.
    votes = _join(client, **query, indicator="votes", level="arrondissement")
    rows = {r["area"]: r for r in votes["rows"]}
    assert (rows["a1"]["value"], rows["a1"]["status"]) == (None, "confidential")
    # (Every quartier here has fewer than 5 participants: their votes, even none, are withheld too.)
    assert {r["status"] for r in votes["rows"]} == {"confidential"} and votes["n"] == 0
    several = client.get("/api/v1/join", query_string={**query, "indicator": "proposals"})
    assert several.status_code == 400 and "level" in several.get_data(as_text=True)


def test_territories_joined_with_their_populations(client: FlaskClient, svc: Any, lyon: Territory) -> None:
    """On the territory: each territory's own population (as its record says) beside its value."""
    rennes = {"id": "rennes", "name": "Rennes", "insee_cog": "35238", "country": "FR"}
    grenoble = {"id": "grenoble", "name": "Grenoble", "insee_cog": "38185", "country": "FR"}
    for data, people, year in ((rennes, 227830, 2022), (grenoble, 158198, 2021)):
        data["population"] = {"value": people, "year": year, "source": "INSEE"}
        make_territory(svc, data, ("admin",))
    for t, n in (("lyon", 3), ("rennes", 2), ("grenoble", 1)):
        ops = [_op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"})]
        ops += [
            _op(svc, "proposal", {"id": f"p{i}", "process": "bp", "title": "Idée", "created": "2024-05-01T10:00:00Z"})
            for i in range(n)
        ]
        svc.records.write_internal(t, ops)
    query = {"indicator": "proposals", "period": "2024", "measure": "cf:inhabitants"}
    body = _join(client, **query, territories="lyon,rennes,grenoble")
    rows = {r["territory"]: r for r in body["rows"]}
    assert (rows["rennes"]["value"], rows["rennes"]["measure"], rows["rennes"]["measure_period"]) == (2, 227830, "2022")
    assert (rows["lyon"]["measure"], rows["lyon"]["measure_period"]) == (522250, "2021")  # its record's
    # Each its latest census: Grenoble's of 2021 beside Rennes's of 2022 (the cube's rule).
    assert rows["grenoble"]["measure_period"] == "2021" and body["measure"]["period"] is None
    assert body["n"] == 3 and "3 pairs" in body["correlation"]["spearman"]["note"]
    table = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    "/api/v1/join", query_string={**query, "territories": "rennes,grenoble", "format": "csv"}
                ).get_data(as_text=True)
            )
        )
    )
    assert [(r["territory"], r["value"], r["measure_value"], r["measure_period"]) for r in table] == [
        ("rennes", "2", "227830", "2022"),
        ("grenoble", "1", "158198", "2021"),
    ]
    # A measure period asked for: the same for all, and who has none has no pair.
    same = _join(client, **query, territories="rennes,grenoble", measure_period="2022")
    assert [r["measure"] for r in same["rows"]] == [227830, None] and same["measure"]["period"] == "2022"
    none = _join(client, **query, territories="rennes,grenoble", measure_period="2019")
    assert none["n"] == 0 and all(r["measure"] is None for r in none["rows"])
    # A census older than the window (3 years before 2026) is too old to pair.
    old = _join(client, **{**query, "period": "2026"}, territories="rennes,grenoble")
    assert [r["measure_period"] for r in old["rows"]] == [None, None]


def test_the_scatter_plot(client: FlaskClient, nested: str) -> None:
    query = "/api/v1/join?indicator=proposals&period=2024&measure=cf:inhabitants&territories=lyon"
    query += "&on=district&level=arrondissement"
    spec = client.get(query + "&format=vega-lite")
    assert spec.mimetype == "application/vnd.vegalite+json"
    schema = Path(altair.__file__).parent / "vegalite" / "v6" / "schema" / "vega-lite-schema.json"
    jsonschema.validate(spec.get_json(), json.loads(schema.read_text()))
    svg = client.get(query, headers={"Accept": "image/svg+xml"})
    assert svg.mimetype == "image/svg+xml"
    root = ElementTree.fromstring(svg.get_data())
    texts = [t.text for t in [*root.iter(f"{SVG}text"), *root.iter(f"{SVG}tspan")] if t.text]
    assert "Proposals and inhabitants, by arrondissement" in texts
    assert any("Pearson r = 0.80 [-0.28, 0.99]" in t and "n = 5" in t for t in texts), texts
    assert "inhabitants, 2024" in texts and "Proposals (number), 2024" in texts
    french = ElementTree.fromstring(client.get(query + "&format=svg&lang=fr").get_data())
    assert "Propositions et inhabitants, par arrondissement" in [t.text for t in french.iter(f"{SVG}text")]
    png = client.get(query + "&format=png")
    assert png.get_data()[:8] == b"\x89PNG\r\n\x1a\n"


def _load(svc: Any, read: Any, path: Path, **options: Any) -> dict[str, Any]:
    source = read(path.read_bytes(), name=path.name, **options)
    report = load(svc.records, "lyon", source.items(), None, source_id=source.id, partial=True).to_dict()
    assert report["written"] and report["rejected"] == 0, report
    return report | {"source_id": source.id}


def test_lyon_arrondissements_from_the_real_samples_match_sparql(client: FlaskClient, svc: Any) -> None:
    """Lyon's 36 quartiers (Grand Lyon) in 9 arrondissements, INSEE's populations, and proposals
    placed in quartiers: proposals per arrondissement beside its population, as the docs' worked
    example gives them, equal to what one SPARQL query over the records and the table counts."""
    make_territory(svc, {"id": "lyon", "name": "Lyon", "insee_cog": "69123", "country": "FR"}, ("admin",))
    options = {"level": "quartier", "code_list": "local", "parent": "6938{numero_arrondissement}"}
    options |= {"parent_label": "Lyon {numero_arrondissement}", "parent_code_list": "insee-cog"}
    _load(svc, boundaries.read, LYON, **options)
    insee = _load(svc, population.read, POPULATIONS, territory="lyon", urls=svc.urls, commune="69123")
    quartiers = sorted(
        d["id"] for d in client.get("/api/v1/territories/lyon/districts?level=quartier&limit=100").get_json()["items"]
    )
    assert len(quartiers) == 36
    ops = [_op(svc, "process", {"id": "bp", "title": "Budget", "type": "participatory_budget"})]
    for i, q in enumerate(quartiers):
        for j in range(i % 4):
            ops.append(
                _op(
                    svc,
                    "proposal",
                    {
                        "id": f"p{q}-{j}",
                        "process": "bp",
                        "title": "Idée",
                        "district": q,
                        "created": "2025-02-01T10:00:00Z",
                    },
                )
            )
    svc.records.write_internal("lyon", ops)
    query = {"indicator": "proposals", "period": "2025", "measure": "cf:inhabitants", "territories": "lyon"}
    body = _join(client, **query, on="district", level="arrondissement", dataset=insee["source_id"])
    assert len(body["rows"]) == 9 and body["n"] == 9
    sparql = (
        prefix_declarations(("cf", "dct", "geo", "qb", "sdmxd"), sparql=True)
        + f"""
        SELECT ?arrondissement ?inhabitants (COUNT(DISTINCT ?p) AS ?proposals) WHERE {{
          ?arrondissement a cf:District ; dct:type cf:district-level-arrondissement .
          ?obs qb:dataSet <{svc.urls.source("lyon", insee["source_id"])}#dataset> ;
               sdmxd:refArea ?arrondissement ; sdmxd:refPeriod ?year ; cf:inhabitants ?inhabitants .
          FILTER(STR(?year) = "{body["measure"]["period"]}")
          ?quartier geo:sfWithin ?arrondissement .
          OPTIONAL {{ ?p a cf:Proposal ; dct:spatial ?quartier ; dct:created ?created . FILTER(YEAR(?created) = 2025) }}
        }} GROUP BY ?arrondissement ?inhabitants"""
    )
    resp = client.get("/sparql", query_string={"query": sparql}, headers={"Accept": "application/sparql-results+json"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    expected = {
        b["arrondissement"]["value"]: (int(b["proposals"]["value"]), int(b["inhabitants"]["value"]))
        for b in resp.get_json()["results"]["bindings"]
    }
    assert {r["iri"]: (r["value"], r["measure"]) for r in body["rows"]} == expected
    assert sum(v for v, _ in expected.values()) == sum(i % 4 for i in range(36))
    assert all(r["dataset"] == f"{svc.urls.source('lyon', insee['source_id'])}#dataset" for r in body["rows"])


@pytest.mark.parametrize(
    ("query", "status", "said"),
    [
        ("indicator=votes&period=2024", 400, "measure"),
        ("indicator=votes&period=2024&measure=foo:bar", 400, "unknown prefix"),
        ("indicator=votes&period=2024&measure=stations", 400, "needs dataset"),
        (
            "indicator=votes&period=2024&measure=cf:inhabitants&on=district&territories=lyon,atlantis",
            400,
            "one territory",
        ),
        ("indicator=votes&period=2024&measure=cf:inhabitants&on=district&territories=lyon", 404, "no districts"),
        ("indicator=votes&period=2024&measure=cf:inhabitants&level=quartier", 400, "Only with on=district"),
        ("indicator=votes&period=2024&measure=cf:inhabitants&on=street", 400, "on"),
        ("indicator=votes&period=2024&measure=cf:inhabitants&measure_period=2024-1", 400, "measure_period"),
        ("indicator=votes&period=2024&measure=cf:inhabitants&territories=atlantis", 404, "atlantis"),
        ("indicator=votes&period=2024&measure=stations&dataset=no%20such", 400, "dataset"),
        # IRIs the store would refuse: a stray %, a control character, a bad host (500s once).
        ("indicator=votes&period=2024&measure=http://x/%25zz", 400, "not a valid IRI"),
        ("indicator=votes&period=2024&measure=http://x/a%01b", 400, "measure"),
        ("indicator=votes&period=2024&measure=http://[::1", 400, "not a valid IRI"),
        ("indicator=votes&period=2024&measure=cf:inhabitants&dataset=http://x/%7F", 400, "dataset"),
        ("indicator=budget_allocated&period=2024&measure=cf:inhabitants&on=district&territories=lyon", 400, "district"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    client: FlaskClient, lyon: Territory, query: str, status: int, said: str
) -> None:
    got = client.get(f"/api/v1/join?{query}")
    assert got.status_code == status, got.get_data(as_text=True)
    assert got.mimetype == "application/problem+json" and said in got.get_data(as_text=True), got.get_data(as_text=True)


def test_hand_computed_values_are_decimals(client: FlaskClient, nested: str) -> None:
    """CSV values as the cube has them: a decimal per 1,000 inhabitants, written as such."""
    got = client.get(
        "/api/v1/join",
        query_string={
            "indicator": "proposals",
            "period": "2024",
            "measure": "cf:inhabitants",
            "territories": "lyon",
            "on": "district",
            "level": "arrondissement",
            "per": "1000inhabitants",
            "format": "csv",
        },
    )
    rows = {r["area"]: r for r in csv.DictReader(io.StringIO(got.get_data(as_text=True)))}
    assert Decimal(rows["a3"]["value"]) == Decimal("1.333") and rows["a3"]["measure_value"] == "3000"


def test_join_on_a_running_server(live_server: LiveServer) -> None:
    """A real client over loopback, on the demo data: Lyon's quartiers beside their populations
    (the demo shares the city's out among them), and the three cities beside theirs."""
    url = f"{live_server.url}/api/v1/join"
    listed = requests.get(f"{live_server.url}/api/v1/territories/lyon/proposals", params={"limit": 1000}, timeout=30)
    # (Other tests write proposals to this shared server's Lyon without a location: no district.)
    proposals = [p for p in listed.json()["items"] if p.get("created") and p.get("district")]
    year = max(p["created"][:4] for p in proposals)
    params = {"indicator": "proposals", "period": year, "measure": "cf:inhabitants"}
    got = requests.get(url, params={**params, "on": "district", "territories": "lyon"}, timeout=30)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["n"] == len(body["rows"]) == 8 and body["level"] == "quartier"
    assert sum(r["value"] for r in body["rows"]) == sum(1 for p in proposals if p["created"].startswith(year))
    assert sum(r["measure"] for r in body["rows"]) == 522_250  # the city's, shared out
    assert -1 <= body["correlation"]["pearson"]["coefficient"] <= 1
    cities = requests.get(url, params={**params, "format": "csv"}, timeout=30)
    rows = list(csv.DictReader(io.StringIO(cities.text)))
    assert {r["territory"] for r in rows} >= {"lyon", "grenoble", "rennes"}
    assert all(r["measure_period"] == "2021" and int(r["measure_value"]) > 100_000 for r in rows)
    svg = requests.get(url, params={**params, "on": "district", "territories": "lyon", "format": "svg"}, timeout=60)
    assert svg.headers["Content-Type"].startswith("image/svg+xml") and ElementTree.fromstring(svg.content) is not None


def test_small_samples_get_no_interval_they_cannot_have() -> None:
    """3 pairs: a coefficient but no interval; a perfect order of 3: Spearman's exact p is 2/6
    (two of the six orders are as extreme), not the t approximation's 0."""
    from server.indicators.join import correlations

    pearson, spearman = correlations([1.0, 2.0, 3.0], [30.0, 20.0, 10.0])
    assert spearman.coefficient == pytest.approx(-1) and spearman.p_value == pytest.approx(1 / 3)
    assert spearman.interval is None and "3 pairs" in (spearman.note or "")
    assert pearson.interval is None
    perfect = correlations([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])[0]
    assert perfect.coefficient == pytest.approx(1) and perfect.interval is None and "perfect" in (perfect.note or "")
    assert [c.note for c in correlations([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0])] == [
        "one side is constant: no correlation"
    ] * 2
