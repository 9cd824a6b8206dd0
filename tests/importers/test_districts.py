"""Districts without a store: the index that locates points, the GeoJSON boundaries importer on
the real samples (Paris arrondissements, Lyon quartiers, communes), statistical tables and their
mappings, and the INSEE populations sample."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import shapely
from pyoxigraph import RdfFormat, parse

from bench import districts as bench
from importers import boundaries, population, table
from importers.table_mapping import load_mapping
from server.errors import MalformedBody
from server.ingest import Item, Record, Rejected, Statements
from server.ingest.districts import LOCATED_KINDS, DistrictIndex
from server.model.kinds import KINDS
from server.urls import Urls
from vocabularies import CF, QB, RDF, SDMXD

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
PARIS = SAMPLES / "boundaries" / "paris_arrondissements.opendata.paris.fr.geojson"
LYON = SAMPLES / "boundaries" / "lyon_quartiers_grandlyon.geojson"
COMMUNES = SAMPLES / "boundaries" / "communes_paris_lyon_grenoble_rennes.france-geojson.geojson"
POPULATIONS = SAMPLES / "population" / "insee_populations_legales_paris_lyon_grenoble_rennes.csv"
#: Lyon's arrondissements, made from its quartiers (no arrondissement file was found).
LYON_OPTIONS = {
    "level": "quartier",
    "code_list": "local",
    "parent": "6938{numero_arrondissement}",
    "parent_label": "Lyon {numero_arrondissement}",
    "parent_code_list": "insee-cog",
}
URLS = Urls("http://civicfed.test")


def square(x0: float, y0: float, size: float) -> dict[str, Any]:
    x1, y1 = x0 + size, y0 + size
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def items_of(path: Path, **options: str) -> list[Item]:
    with path.open("rb") as f:
        return list(boundaries.read(f, name=path.name, **options).items())


def records(items: list[Item]) -> dict[str, dict[str, Any]]:
    return {i.data["id"]: i.data for i in items if isinstance(i, Record)}


def rejected(items: list[Item]) -> list[Rejected]:
    return [i for i in items if isinstance(i, Rejected)]


def geojson(features: list[dict[str, Any]], **top: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", **top, "features": features}).encode()


def feature(code: Any, geometry: Any, name: str = "D") -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code, "nom": name}, "geometry": geometry}


def read_geojson(data: bytes, **options: str) -> list[Item]:
    return list(boundaries.read(data, name="test.geojson", **options).items())


# -- the index ------------------------------------------------------------------------------------

NESTED = [
    {"id": "c", "level": "commune", "geometry": square(0, 0, 10)},
    {"id": "a", "level": "arrondissement", "parent": "c", "geometry": square(0, 0, 5)},
    {"id": "q", "level": "quartier", "parent": "a", "geometry": square(1, 1, 2)},
    # An "other" division under the quartier: one level deeper than its parent.
    {"id": "o", "level": "other", "parent": "q", "geometry": square(1.5, 1.5, 0.5)},
    {"id": "next", "level": "arrondissement", "parent": "c", "geometry": square(5, 0, 5)},
    {"id": "no-boundary", "level": "quartier"},
]


def test_the_finest_district_containing_a_point() -> None:
    index = DistrictIndex(NESTED)
    assert len(index) == 5  # the district without a boundary is not indexed
    assert index.locate(1.2, 1.2) == "q"
    assert index.locate(1.7, 1.7) == "o"
    assert index.locate(4, 4) == "a"
    assert index.locate(7, 2) == "next"
    assert index.locate(9, 4.5) == "next"
    assert index.locate(9, 9.5) == "c"
    assert index.locate(11, 1) is None
    assert index.locate(5, 1) in ("a", "next")  # on a shared border: in one of them, always the same
    assert index.locate(5, 1) == index.locate(5, 1) == "a"  # same level and area: the smaller id
    assert index.locate(0, 0) == "a"  # a corner is in the district (covered, not within)
    assert DistrictIndex([]).locate(1, 1) is None


def test_locate_many_is_locate_for_each_point() -> None:
    index = DistrictIndex(records(items_of(PARIS)).values())
    points = [(2.2 + i * 0.0037, 48.80 + (i * 7 % 100) * 0.0011) for i in range(300)]
    many = index.locate_many([p[0] for p in points], [p[1] for p in points])
    assert many == [index.locate(*p) for p in points]
    assert 0 < sum(1 for m in many if m) < len(points)
    assert index.locate_many([], []) == []


def test_assign_fills_missing_districts_only() -> None:
    index = DistrictIndex(NESTED)
    data = [
        {"id": "p1", "location": {"lat": 1.2, "lon": 1.2}},
        {"id": "p2", "location": {"lat": 1.2, "lon": 1.2}, "district": "next"},  # the source says: kept
        {"id": "p3", "location": {"lat": 50, "lon": 50}},  # in no district
        {"id": "p4"},  # no location
    ]
    index.assign(data)
    assert [d.get("district") for d in data] == ["q", "next", None, None]
    assert {k.name for k in LOCATED_KINDS} == {"proposal", "meeting", "project"}


def test_the_benchmark_runs() -> None:
    result = bench.run(points=5_000, polygons=100)
    assert result["polygons"] == 100 and result["points"] == 5_000
    assert result["located"] > 4_000
    tiles = [shapely.from_geojson(json.dumps(d["geometry"])) for d in bench.grid(100)]
    assert all(shapely.is_valid(t) for t in tiles)
    # The tiles share their borders: no overlap between neighbours.
    assert abs(shapely.union_all(tiles).area - sum(t.area for t in tiles)) < 1e-12


# -- boundaries on the real samples ---------------------------------------------------------------


def test_paris_arrondissements() -> None:
    items = items_of(PARIS)
    got = records(items)
    assert len(items) == 20 and not rejected(items)
    assert sorted(got) == [f"751{n:02d}" for n in range(1, 21)]
    ninth = got["75109"]
    assert (ninth["name"], ninth["level"], ninth["code_list"]) == ("9ème Ardt", "arrondissement", "insee-cog")
    assert ninth["geometry"]["type"] == "Polygon" and "parent" not in ninth
    index = DistrictIndex(got.values())
    assert index.locate(2.3317, 48.8720) == "75109"  # Palais Garnier
    assert index.locate(2.2945, 48.8584) == "75107"  # Eiffel Tower
    assert index.locate(4.8320, 45.7578) is None  # Lyon
    for data in got.values():
        KINDS["district"].loader.load(data)  # valid records, as the loader will find them


def test_lyon_quartiers_and_the_arrondissements_made_of_them() -> None:
    items = items_of(LYON, **LYON_OPTIONS)
    got = records(items)
    assert len(got) == 36 + 9 and not rejected(items)
    gerland = got["701"]
    assert (gerland["name"], gerland["level"], gerland["parent"]) == ("Gerland", "quartier", "69387")
    seventh = got["69387"]
    assert (seventh["name"], seventh["level"], seventh["code_list"]) == ("Lyon 7", "arrondissement", "insee-cog")
    assert sum(1 for d in got.values() if d.get("parent") == "69387") == 3
    # With the commune from the communes file: a point gets its quartier, the finest level.
    communes = records(items_of(COMMUNES, level="commune", code_list="insee-cog"))
    index = DistrictIndex([*got.values(), communes["69123"]])
    bellecour = index.locate(4.8320, 45.7578)
    assert bellecour is not None and got[bellecour]["parent"] == "69382"
    assert index.locate(4.845, 45.690) in (None, "69123")  # south of the quartiers' outline


def test_communes() -> None:
    got = records(items_of(COMMUNES, level="commune", code_list="insee-cog"))
    assert {k: v["name"] for k, v in got.items()} == {
        "75056": "Paris",
        "69123": "Lyon",
        "38185": "Grenoble",
        "35238": "Rennes",
    }
    # Without options: the code property says nothing of the level or code list.
    plain = records(items_of(COMMUNES))["75056"]
    assert plain["level"] == "other" and "code_list" not in plain


def test_options_name_properties_templates_and_constants() -> None:
    got = records(items_of(PARIS, code="c_arinsee", label="{l_aroff} ({c_ar})", parent="=75056"))
    assert got["75109"]["name"] == "Opéra (9)" and got["75109"]["parent"] == "75056"


# -- malformed boundaries: one case per class -----------------------------------------------------

INVALID_OPTIONS = [
    ({"level": "ward"}, "option level"),
    ({"code_list": "insee"}, "option code_list"),
    ({"parent_label": "X {nom}"}, "parent_label needs parent"),
    ({"code": "{}"}, "empty {} field"),
    ({"nope": "1"}, "unknown option"),
]


@pytest.mark.parametrize(("options", "message"), INVALID_OPTIONS)
def test_bad_options_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(MalformedBody, match=message):
        boundaries.read(b"{}", **options)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"type": "FeatureCollection", "features": [', "test.geojson: malformed JSON"),
        (b'{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        (
            geojson([], crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}}),
            "EPSG::2154; civicfed reads WGS84",
        ),
        (geojson([{"type": "Feature", "properties": {"id": 1}, "geometry": None}]), "properties are: id"),
        (geojson([], crs={"properties": "x"}), "civicfed reads WGS84"),  # not an object: a 400, not a crash
    ],
)
def test_unreadable_sources(data: bytes, message: str) -> None:
    with pytest.raises(MalformedBody, match=message):
        read_geojson(data)


def test_crs84_is_accepted() -> None:
    data = geojson([feature("1", square(2, 48, 0.01))], crs={"properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}})
    assert len(records(read_geojson(data))) == 1


BOWTIE = {"type": "Polygon", "coordinates": [[[2, 48], [2.1, 48.1], [2.1, 48], [2, 48.1], [2, 48]]]}


@pytest.mark.parametrize(
    ("feat", "pointer", "message"),
    [
        (feature("1", {"type": "Point", "coordinates": [2, 48]}), "#/geometry", "not Point"),
        (feature("1", square(650000, 6860000, 1000)), "#/geometry", "reproject"),  # Lambert 93, no crs
        (feature("1", BOWTIE), "#/geometry", "Self-intersection"),
        (feature("1", {"type": "Polygon", "coordinates": [[[2, 48], [3, 48]]]}), "#/geometry", "Unreadable"),
        (feature(None, square(2, 48, 0.1)), "#/id", "No code"),
        (feature("a b", square(2, 48, 0.1)), "#/id", "not an identifier"),
        (feature("1", square(2, 48, 0.1), name=""), "#/name", "No name"),
        ("not a feature", "#", "Not a GeoJSON Feature"),
    ],
)
def test_features_that_cannot_be_districts_are_rejected(feat: Any, pointer: str, message: str) -> None:
    items = read_geojson(geojson([feat, feature("ok", square(3, 48, 0.1))]), code="code", label="nom")
    (bad,) = rejected(items)
    assert bad.line == 1 and bad.kind == "district"
    assert bad.error.errors[0]["pointer"] == pointer and message in bad.error.detail
    assert list(records(items)) == ["ok"]


def test_codes_of_a_code_list_and_duplicates() -> None:
    data = geojson([feature("701", square(2, 48, 0.1)), feature("69381", square(3, 48, 0.1))])
    (bad,) = rejected(read_geojson(data, code_list="insee-cog"))
    assert "not a code of the insee-cog code list" in bad.error.detail and bad.local_id == "701"
    (dup,) = rejected(read_geojson(geojson([feature("1", square(2, 48, 0.1)), feature("1", square(3, 48, 0.1))])))
    assert dup.line == 2 and "also that of feature 1" in dup.error.detail


def test_repair_is_asked_for() -> None:
    got = records(read_geojson(geojson([feature("1", BOWTIE)]), repair="yes"))
    assert got["1"]["geometry"]["type"] == "MultiPolygon"
    assert shapely.is_valid(shapely.from_geojson(json.dumps(got["1"]["geometry"])))


def test_altitude_is_dropped_and_coordinates_rounded() -> None:
    ring = [[2.123456789, 48.0, 35.0], [2.2, 48.0, 35.0], [2.2, 48.1, 35.0], [2.123456789, 48.0, 35.0]]
    got = records(read_geojson(geojson([feature("1", {"type": "Polygon", "coordinates": [ring]})])))
    assert got["1"]["geometry"]["coordinates"][0][0] == [2.1234568, 48.0]


def test_source_identity_and_digest() -> None:
    source = boundaries.read(PARIS.read_bytes(), name=PARIS.name)
    list(source.items())
    assert source.id == "boundaries-paris_arrondissements.opendata.paris.fr"
    assert source.sha256 == __import__("hashlib").sha256(PARIS.read_bytes()).hexdigest()
    assert boundaries.IMPORTER.snapshot


# -- tables and their mappings --------------------------------------------------------------------

MAPPING = """
[key]
column = "code"
code_list = "insee-cog"
territory = "69123"

[period]
column = "annee"

[dataset]
title = "Équipements"

[[measures]]
column = "écoles"
unit = "schools"
datatype = "integer"

[[measures]]
column = "revenu médian"
name = "median-income"
unit = "http://qudt.org/vocab/unit/EUR"
"""
CSV = (
    "code;annee;écoles;revenu médian\n"
    "69123;2021;206;25 310,5\n"
    "69381;2021;7;\n"  # no income figure: no observation
    "69382;2021;deux;24100\n"  # not a number: that cell is quarantined
    "6938;2021;5;1\n"  # not a COG code
    "69381;2021;8;1\n"  # the same area and period again
    "69383;21;8;1\n"  # not a period
)


def table_items(csv_text: str = CSV, mapping: str = MAPPING) -> list[Item]:
    return list(table.read(csv_text.encode(), territory="lyon", urls=URLS, mapping=mapping, name="eq.csv").items())


def statements(items: list[Item]) -> str:
    (st,) = [i for i in items if isinstance(i, Statements)]
    return "".join(s + " .\n" for s in st.statements)


def test_a_table_becomes_data_cube_observations() -> None:
    items = table_items()
    triples = list(parse(statements(items), format=RdfFormat.N_TRIPLES))
    observations = {
        t.subject.value for t in triples if t.predicate.value == RDF.type and t.object.value == QB.Observation
    }
    assert len(observations) == 4  # 69123: 2 measures; 69381: schools; 69382: income
    base = "http://civicfed.test/id/lyon/source/table-eq#"
    by = {(t.subject.value, t.predicate.value): t.object for t in triples}
    assert by[(base + "obs/69123/2021/ecoles", SDMXD.refArea)].value == "http://civicfed.test/id/lyon"
    assert by[(base + "obs/69381/2021/ecoles", SDMXD.refArea)].value == URLS.resource("lyon", "district", "69381")
    assert by[(base + "obs/69123/2021/median-income", base + "measure-median-income")].value == "25310.5"
    assert by[(base + "obs/69381/2021/ecoles", base + "measure-ecoles")].value == "7"
    assert by[(base + "obs/69381/2021/ecoles", SDMXD.refPeriod)].datatype.value.endswith("#gYear")
    assert by[(base + "dataset", QB.structure)].value == base + "structure"
    bad = rejected(items)
    assert [(r.line, r.error.errors[0]["pointer"]) for r in bad] == [
        (4, "#/écoles"),
        (5, "#/code"),
        (6, "#/code"),
        (7, "#/annee"),
    ]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("[key]\ncolumn = 'code'\n[period]\nvalue = '2021'\n[[measures]]\ncolumn = 'x'\nunit = 'u'", "key.code_list"),
        (
            '{"key": {"column": "c", "code_list": "iris"}, "period": {"value": "2021"}, "measures": [{"column": "x"}]}',
            "measures.0.unit",
        ),
        (
            "[key]\ncolumn='c'\ncode_list='iris'\n[period]\ncolumn='a'\nvalue='2021'\n[[measures]]\ncolumn='x'\nunit='u'",
            "period.column: Give exactly one",
        ),
        (
            "[key]\ncolumn='c'\ncode_list='iris'\n[period]\nvalue='21'\n[[measures]]\ncolumn='x'\nunit='u'",
            "period.value",
        ),
        (
            "[key]\ncolumn='c'\ncode_list='iris'\n[period]\nvalue='2021'\n[[measures]]\ncolumn='x'\nunit='u'\n[[measures]]\ncolumn='x'\nunit='v'",
            "measures.1.name",
        ),
        ("[key]\ncolumn='c'\ncode_list='iris'\nextra=1\n[period]\nvalue='2021'\nmeasures=[]", "key.extra"),
        ("key = [", "neither TOML nor JSON"),
    ],
)
def test_mapping_errors_name_the_key(mapping: str, message: str) -> None:
    with pytest.raises(MalformedBody, match=message.replace(".", r"\.")):
        load_mapping(mapping)


def test_a_mapping_naming_missing_columns() -> None:
    mapping = MAPPING.replace('column = "revenu médian"', 'column = "revenu"')
    with pytest.raises(MalformedBody) as err:
        table_items(mapping=mapping)
    assert "measures.1.column names 'revenu'" in err.value.detail
    assert "its columns: code, annee, écoles, revenu médian" in err.value.detail


def test_populations_by_district_and_the_territory() -> None:
    source = population.read(
        POPULATIONS.read_bytes(), territory="lyon", urls=URLS, name=POPULATIONS.name, commune="69123"
    )
    items = list(source.items())
    assert not rejected(items)
    triples = list(parse(statements(items), format=RdfFormat.N_TRIPLES))
    values = {
        (t.subject.value.split("#obs/")[1]): int(t.object.value) for t in triples if t.predicate.value == CF.inhabitants
    }
    assert len(values) == 20  # Lyon and its 9 arrondissements, 2022 and 2023
    assert values["69381/2022/population"] == 29040 and values["69123/2023/population"] == 519127
    areas = Counter(t.object.value for t in triples if t.predicate.value == SDMXD.refArea)
    assert areas["http://civicfed.test/id/lyon"] == 2 and areas[URLS.resource("lyon", "district", "69389")] == 2
    every = list(population.read(POPULATIONS.read_bytes(), territory="lyon", urls=URLS).items())
    assert statements(every).count(f'<{CF.inhabitants}> "') == 66  # every row without the option
    with pytest.raises(MalformedBody, match="option commune"):
        population.read(b"", territory="lyon", urls=URLS, commune="Lyon")


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("", "eq.csv is empty"),
        ('code;annee;écoles;revenu médian\n69123;2021;"1;2\n', "broken quoting"),
        ("code;annee;écoles;revenu médian\n69123;2021;1;2;3;4\n", "6 fields for 4 columns"),
    ],
)
def test_unreadable_tables(csv_text: str, message: str) -> None:
    with pytest.raises(MalformedBody, match=message):
        table_items(csv_text)
