"""Every importer of ``importers.IMPORTERS`` fed malformed and extreme input: huge and special
numbers, impossible dates, empty and header-only files, duplicated columns, BOMs, binary garbage,
odd ZIP entries, long lines, deeply nested JSON and XML, XML entities, broken geometries, Pabulib
files out of order. Reading may only end in a CivicfedError, a ValueError or an OSError (which the
loader makes a 400), and each item must be a Record, Deletion, Rejected or Statements: anything
else escaping ``read`` or ``items()`` is an internal error of the import run. Then one test per bug
these inputs found, each naming the line and field it rejects."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from importers import IMPORTERS
from importers.ckan_dcat import package_statements
from importers.remote import Fetched
from importers.tabular import MAX_LINE
from server.errors import CivicfedError, MalformedBody, ValidationFailed
from server.ingest import Deletion, Item, Record, Rejected, Statements
from server.urls import Urls

URLS = Urls("http://civicfed.test")
ALLOWED = (CivicfedError, ValueError, OSError)

# -- what the cases are made of ------------------------------------------------------------------

HUGE = ["1e400", "99999999999999999999999999", "-0", "NaN", "inf", "Infinity", "1e999999999", "9" * 5000, "sNaN"]
DATES = ["0000-00-00", "9999-99-99", "10000-01-01", "0001-01-01 00:00:00 +0100", "9999-12-31 23:59:59 -0100"]
GARBAGE = bytes(range(256)) * 8
BOM = b"\xef\xbb\xbf"
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def deep_xml(root: str, item: str) -> bytes:
    return f"<{root}><{item}>".encode() + b"<a>" * 5000 + b"</a>" * 5000 + f"</{item}></{root}>".encode()


ENTITY_XML = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b"<service_requests><request><service_request_id>1</service_request_id><title>&b;</title></request>"
    b"</service_requests>"
)
EXTERNAL_XML = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="http://x/a">'
    b"<rdf:value>&e;</rdf:value></rdf:Description></rdf:RDF>"
)


def archive(*entries: tuple[str, bytes | str], declared: dict[str, int] | None = None) -> bytes:
    """A ZIP of these entries (a name ending in / is a folder); ``declared`` overrides the
    uncompressed size the central directory states for an entry (a zip bomb says little or much)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
    data = out.getvalue()
    for name, size in (declared or {}).items():
        # Its central directory entry: the uncompressed size at offset 24, the name at 46.
        at = data.index(b"PK\x01\x02")
        while data[at + 46 : at + 46 + len(name)] != name.encode():
            at = data.index(b"PK\x01\x02", at + 4)
        data = data[: at + 24] + size.to_bytes(4, "little") + data[at + 28 :]
    return data


H = "h-open-data-"
PROPOSALS = "id;title/en;participatory_space/url;votes;cost;latitude;longitude;created_at\n"
SPACE = "https://decidim.example.org/processes/p"


def proposal_row(i: int, value: str = "5", date: str = "2020-01-01 00:00:00 UTC") -> str:
    return f"{i};Title {i};{SPACE};{value};{value};{value};{value};{date}\n"


PB = (
    "META\nkey;value\ncountry;Poland\nunit;Town\ninstance;2020\nbudget;{budget}\ndate_begin;{date}\n"
    "PROJECTS\nproject_id;cost;votes;latitude;longitude\nP1;{cost};1;{coordinate};{coordinate}\nP2;10;{votes};;\n"
    "VOTES\nvoter_id;vote\n1;P1\n2;P9\n3;P2,P2\n"
)


def pb(budget: str = "100", date: str = "3.10.2019", cost: str = "10", coordinate: str = "50", votes: str = "0") -> str:
    return PB.format(budget=budget, date=date, cost=cost, coordinate=coordinate, votes=votes)


PARIS = (
    "Identifiant du projet lauréat;Edition;Titre du projet lauréat;Budget global du projet lauréat;"
    "geo_point_2d;Arrondissement du projet lauréat;Date de lancement des travaux du projet\n"
)
POPULATION = "code_insee,nom,commune_parente,population,annee_reference_population\n"
MAPPING = {
    "key": {"column": "code", "code_list": "insee-cog"},
    "period": {"column": "year"},
    "measures": [{"column": "value", "unit": "euros", "datatype": "decimal"}],
}
CONSUL_CSV = "id,title,cached_votes_up,comments_count,created_at\n"
SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]


def geojson(*geometries: Any, raw: bytes | None = None) -> bytes:
    features = [
        {"type": "Feature", "properties": {"code": f"c{i}", "nom": "D"}, "geometry": g}
        for i, g in enumerate(geometries)
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    return body if raw is None else body.replace(b'"RAW"', raw)


def open311(*requests: bytes) -> bytes:
    return b"[" + b",".join(requests) + b"]"


def request(extra: bytes = b"") -> bytes:
    return b'{"service_request_id": "1", "title": "Pothole"' + extra + b"}"


def graphql(nodes: list[Any], page_info: Any = None) -> bytes:
    info = {"hasNextPage": False} if page_info is None else page_info
    edges = [{"node": n} for n in nodes]
    return json.dumps({"data": {"proposals": {"pageInfo": info, "edges": edges}}}).encode()


NO_DEBATES = json.dumps({"data": {"debates": {"pageInfo": {"hasNextPage": False}, "edges": []}}}).encode()


def node(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "title": "A proposal", "comments_count": 0, **fields}


def ckan(results: Any, count: Any = None) -> bytes:
    size = len(results) if count is None and isinstance(results, list) else count
    return json.dumps({"success": True, "result": {"count": size, "results": results}}).encode()


DATASET = "<http://x/ds> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://www.w3.org/ns/dcat#Dataset> .\n"

# -- running a case ---------------------------------------------------------------------------------


@dataclass
class FakeFetcher:
    """Answers every request with the next body (the last one again when they run out)."""

    bodies: list[bytes]
    received: int = 0
    asked: list[str] = field(default_factory=list)

    def check(self, url: str) -> None:
        pass

    def request(self, method: str, url: str, **_: Any) -> Fetched:
        self.asked.append(url)
        body = self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]
        return Fetched(url, 200, {"Content-Type": "application/json"}, body)

    def get(self, url: str, **kwargs: Any) -> Fetched:
        return self.request("GET", url, **kwargs)


#: Formats whose source is a file path, or a URL fetched through the fetcher.
PATH_FORMATS = {"open311", "dcat"}
REMOTE_FORMATS = {"consul": "https://consul.example.org", "ckan": "https://ckan.example.org"}


def read_all(fmt: str, data: Any, tmp_path: Path, **options: Any) -> list[Item]:
    """``IMPORTERS[fmt].read(…)`` and its items, the way the run does: ``data`` is the file's bytes
    (written to ``options["file"]`` for a format that reads a path), the fetched bodies of a remote
    format, or the source's name (demo)."""
    importer = IMPORTERS[fmt]
    if fmt in PATH_FORMATS:
        path = tmp_path / options.pop("file")
        path.write_bytes(data)
        source = importer.read(str(path), **options)
    elif fmt in REMOTE_FORMATS:
        source = importer.read(REMOTE_FORMATS[fmt], fetcher=FakeFetcher(list(data)), **options)
    elif fmt == "demo":
        source = importer.read(data, **options)
    else:
        source = importer.read(io.BytesIO(data), **options)
    return list(source.items())


def outcome(fmt: str, data: Any, tmp_path: Path, **options: Any) -> list[Item] | BaseException:
    """The items, or the exception reading ended with; anything but the allowed ones fails the test."""
    try:
        items = read_all(fmt, data, tmp_path, **options)
    except ALLOWED as exc:
        return exc
    for item in items:
        assert isinstance(item, Record | Deletion | Rejected | Statements), item
        if isinstance(item, Rejected):
            assert isinstance(item.error, CivicfedError) and item.error.detail, item
    return items


def rejected(items: list[Item] | BaseException) -> list[Rejected]:
    assert isinstance(items, list), items
    return [i for i in items if isinstance(i, Rejected)]


def records(items: list[Item] | BaseException, kind: str | None = None) -> list[Record]:
    assert isinstance(items, list), items
    return [i for i in items if isinstance(i, Record) and (kind is None or i.kind.name == kind)]


# -- the cases --------------------------------------------------------------------------------------

Case = tuple[str, Any, dict[str, Any]]


def _cases() -> dict[str, Callable[[], Case]]:
    cases: dict[str, Callable[[], Case]] = {}

    def case(case_id: str, fmt: str, data: Any, /, **options: Any) -> None:
        assert case_id not in cases, case_id
        cases[case_id] = lambda: (fmt, data, dict(options))

    # Decidim: a ZIP, or one CSV.
    single = {"name": f"{H}proposals.csv"}
    for n, value in enumerate(HUGE):
        case(f"decidim-number-{n}", "decidim", (PROPOSALS + proposal_row(1, value)).encode(), **single)
    for n, date in enumerate(DATES):
        case(f"decidim-date-{n}", "decidim", (PROPOSALS + proposal_row(1, date=date)).encode(), **single)
    good = PROPOSALS + proposal_row(1)
    case("decidim-empty", "decidim", b"", **single)
    case("decidim-header-only", "decidim", PROPOSALS.encode(), **single)
    case("decidim-bom", "decidim", BOM + good.encode(), **single)
    case("decidim-utf16", "decidim", good.encode("utf-16"), **single)
    case("decidim-garbage", "decidim", GARBAGE, **single)
    case("decidim-duplicated-column", "decidim", ("id;id;" + good).encode(), **single)
    case("decidim-missing-columns", "decidim", b"title/en\nT\n", **single)
    case("decidim-short-row", "decidim", (PROPOSALS + "1;T\n").encode(), **single)
    case("decidim-long-row", "decidim", (good.rstrip("\n") + ";x;y;z\n").encode(), **single)
    case("decidim-broken-quote", "decidim", (PROPOSALS + '1;"T\n').encode(), **single)
    case("decidim-unnamed", "decidim", good.encode(), name="export.csv")
    zip_ = {"name": "export.zip"}
    case("decidim-zip-empty-file", "decidim", b"", **zip_)
    case("decidim-zip-truncated", "decidim", archive((f"{H}proposals.csv", good))[:60], **zip_)
    case("decidim-zip-no-entry", "decidim", archive(), **zip_)
    case("decidim-zip-garbage", "decidim", b"PK\x03\x04" + GARBAGE, **zip_)
    case("decidim-zip-folder", "decidim", archive((f"{H}proposals/", b""), (f"{H}proposals.csv", good)), **zip_)
    case("decidim-zip-not-csv", "decidim", archive((f"{H}proposals.pdf", GARBAGE), (f"{H}proposals.csv", good)), **zip_)
    case("decidim-zip-binary-csv", "decidim", archive((f"{H}proposals.csv", GARBAGE)), **zip_)
    macos = (f"__MACOSX/._{H}proposals.csv", b"\x00\x05\x16\x07" + GARBAGE)
    case("decidim-zip-macos", "decidim", archive(macos, (f"{H}proposals.csv", good)), **zip_)
    case("decidim-zip-comments-only", "decidim", archive((f"{H}proposal_comments.csv", "id;body\n1;x\n")), **zip_)
    bomb = archive((f"{H}proposals.csv", good + "x" * 100_000), declared={f"{H}proposals.csv": 2**32 - 1})
    case("decidim-zip-declares-huge", "decidim", bomb, max_entry_size="1000000", **zip_)
    liar = archive((f"{H}proposals.csv", good + "x" * 100_000), declared={f"{H}proposals.csv": 10})
    case("decidim-zip-declares-small", "decidim", liar, **zip_)
    case("decidim-zip-long-line", "decidim", archive((f"{H}proposals.csv", "id;t\n1;" + "a" * (MAX_LINE + 1))), **zip_)
    case("decidim-option-size", "decidim", good.encode(), max_entry_size="²", **single)

    # CONSUL CSV.
    for n, value in enumerate(HUGE):
        case(f"consul-csv-number-{n}", "consul-csv", (CONSUL_CSV + f"1,T,{value},{value},\n").encode())
    for n, date in enumerate([*DATES, "31/12/9999 23:59:59", "01/01/0001 00:00"]):
        case(f"consul-csv-date-{n}", "consul-csv", (CONSUL_CSV + f"1,T,1,1,{date}\n").encode(), timezone="Asia/Tokyo")
    case("consul-csv-empty", "consul-csv", b"")
    case("consul-csv-header-only", "consul-csv", CONSUL_CSV.encode())
    case("consul-csv-bom", "consul-csv", BOM + (CONSUL_CSV + "1,T,1,1,\n").encode())
    case("consul-csv-garbage", "consul-csv", GARBAGE)
    case("consul-csv-duplicated-column", "consul-csv", b"id,title,title\n1,T,U\n")
    case("consul-csv-bad-url", "consul-csv", b"URL,Title,Supporters\nhttp://[::1/proposals/1,T,1\n")
    case(
        "consul-csv-bad-url-city", "consul-csv", b"URL,Title,Supporters,City\nhttp://[::1/proposals/1,T,1,A\n", city="A"
    )
    comments = b"id,body,commentable_type,commentable_id,ancestry\n1,b,Proposal,5,3/4\n2,b,Budget,5,\n3,,,,\n,x,,,\n"
    case("consul-csv-comments", "consul-csv", comments)

    # CONSUL GraphQL answers.
    case("consul-deep-json", "consul", [DEEP_JSON])
    case("consul-deep-data", "consul", [b'{"data": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}"])
    case("consul-not-json", "consul", [GARBAGE])
    case("consul-empty", "consul", [b""])
    case("consul-errors", "consul", [b'{"errors": [5, {"message": [1]}]}'])
    case("consul-no-data", "consul", [b'{"data": 5}'])
    case("consul-page-info", "consul", [graphql([node()], page_info=[1]), NO_DEBATES])
    case("consul-no-cursor", "consul", [graphql([node()], page_info={"hasNextPage": True, "endCursor": 5})])
    case("consul-edges", "consul", [json.dumps({"data": {"proposals": {"edges": [5]}}}).encode()])
    big = json.dumps({"data": {"proposals": {"edges": [{"node": node()}]}}}).replace('"comments_count": 0', "C")
    case("consul-huge-count", "consul", [big.replace("C", '"comments_count": 1' + "0" * 400).encode(), NO_DEBATES])
    for n, value in enumerate([5, [1], {"a": 1}, True, None]):
        fields = {"title": value, "summary": value, "description": value, "public_created_at": value}
        case(f"consul-types-{n}", "consul", [graphql([node(**fields, cached_votes_up=value)]), NO_DEBATES])
    for n, date in enumerate(DATES):
        case(f"consul-date-{n}", "consul", [graphql([node(public_created_at=date)]), NO_DEBATES])
    with_comments = graphql([node(comments_count=1)])
    for n, value in enumerate([5, [1], "0001-01-01 00:00:00 +0100"]):
        answer = {"c0": {"comments": {"edges": [{"node": {"id": 9, "body": value, "public_created_at": value}}]}}}
        case(f"consul-comment-{n}", "consul", [with_comments, json.dumps({"data": answer}).encode(), NO_DEBATES])

    # Open311: saved responses.
    json_file, xml_file = {"file": "city_requests.json"}, {"file": "city_requests.xml"}
    for n, value in enumerate(HUGE):
        extra = f', "lat": "{value}", "long": {json.dumps(value)}'.encode()
        case(f"open311-number-{n}", "open311", open311(request(extra)), **json_file)
    case(
        "open311-integer-400-digits",
        "open311",
        open311(request(b', "lat": 1' + b"0" * 400 + b', "long": 1')),
        **json_file,
    )
    case("open311-nan", "open311", open311(request(b', "lat": NaN, "long": Infinity')), **json_file)
    case("open311-out-of-range", "open311", open311(request(b', "lat": 500, "long": -999')), **json_file)
    for n, date in enumerate([*DATES, "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00"]):
        extra = f', "requested_datetime": "{date}"'.encode()
        case(f"open311-date-{n}", "open311", open311(request(extra)), timezone="Pacific/Kiritimati", **json_file)
    case("open311-empty", "open311", b"", **json_file)
    case("open311-bom", "open311", BOM + open311(request()), **json_file)
    case("open311-garbage", "open311", GARBAGE, **json_file)
    case("open311-deep-json", "open311", DEEP_JSON, **json_file)
    case("open311-deep-value", "open311", open311(request(b', "x": ' + DEEP_JSON)), **json_file)
    case("open311-deep-xml", "open311", deep_xml("service_requests", "request"), **xml_file)
    case("open311-entities", "open311", ENTITY_XML, **xml_file)
    case("open311-external-entity", "open311", EXTERNAL_XML.replace(b"rdf:RDF", b"service_requests"), **xml_file)
    case("open311-broken-xml", "open311", b"<service_requests><request>", **xml_file)
    case("open311-odd-entries", "open311", b'[[1], "x", null, {"service_request_id": [1]}, {}]', **json_file)
    case(
        "open311-odd-values",
        "open311",
        open311(request(b', "agency_responsible": {"recipient": [1, [2]]}')),
        **json_file,
    )
    case("open311-services-deep", "open311", open311(request()), services="services.json", **json_file)

    # Pabulib and the Paris participatory budget.
    for n, value in enumerate(HUGE):
        case(f"pabulib-number-{n}", "pabulib", pb(budget=value, cost=value, coordinate=value, votes=value).encode())
    for n, date in enumerate([*DATES, "1.1.10000", "99.99.9999"]):
        case(f"pabulib-date-{n}", "pabulib", pb(date=date).encode())
    good_pb = pb()
    case("pabulib-empty", "pabulib", b"")
    case("pabulib-header-only", "pabulib", b"META\nkey;value\n")
    case("pabulib-bom", "pabulib", BOM + good_pb.encode())
    case("pabulib-garbage", "pabulib", GARBAGE)
    case("pabulib-out-of-order", "pabulib", good_pb.replace("VOTES", "X").replace("PROJECTS", "VOTES").encode())
    case("pabulib-section-twice", "pabulib", (good_pb + "META\nkey;value\n").encode())
    case("pabulib-no-meta", "pabulib", good_pb[good_pb.index("PROJECTS") :].encode())
    case("pabulib-duplicated-column", "pabulib", good_pb.replace("cost;votes", "cost;cost").encode())
    case("pabulib-missing-column", "pabulib", good_pb.replace("project_id;cost", "project_id;price").encode())
    case("pabulib-long-line", "pabulib", (good_pb + "4;" + "P1," * 400_000 + "\n").encode())
    case("pabulib-unknown-projects", "pabulib", (good_pb + "4;P7,P8\n5;\n6;,,,\n").encode())
    for n, value in enumerate(HUGE):
        row = f"1;2020;T;{value};{value},{value};75001;2020-01\n2;2020;U;{value};1,2;75001;2020-01\n"
        case(f"paris-bp-number-{n}", "paris-bp", (PARIS + row).encode())
    case("paris-bp-dates", "paris-bp", (PARIS + "1;10000;T;1;;75099;9999-99\n2;0000;T;1;;;0000-00\n").encode())
    case("paris-bp-empty", "paris-bp", b"")
    case("paris-bp-header-only", "paris-bp", PARIS.encode())
    case("paris-bp-garbage", "paris-bp", GARBAGE)
    case("paris-bp-missing-column", "paris-bp", b"Edition;Titre du projet laur\xc3\xa9at\n2020;T\n")

    # Tables and populations.
    table = {"territory": "t", "urls": URLS, "mapping": json.dumps(MAPPING)}
    for n, value in enumerate(HUGE):
        case(f"table-number-{n}", "table", f"code,year,value\n69123,2020,{value}\n".encode(), **table)
    for n, date in enumerate(["0000", "9999-99-99", "10000", "2020-13"]):
        case(f"table-period-{n}", "table", f"code,year,value\n69123,{date},1\n".encode(), **table)
    case("table-deep-json-mapping", "table", b"code,year,value\n", **{**table, "mapping": "{" + "[" * 100_000})
    deep_toml = "a = " + "[" * 100_000 + "]" * 100_000
    case("table-deep-toml-mapping", "table", b"code,year,value\n", **{**table, "mapping": deep_toml})
    case("table-huge-mapping-number", "table", b"code,year,value\n", **{**table, "mapping": "a = " + "1" * 5000})
    case("table-empty", "table", b"", **table)
    case("table-header-only", "table", b"code,year,value\n", **table)
    case("table-duplicated-column", "table", b"code,year,value,value\n69123,2020,1,2\n", **table)
    case("table-utf16-truncated", "table", b"\xff\xfe" + "code,year\n".encode("utf-16-le") + b"\x00", **table)
    pop = {"territory": "t", "urls": URLS}
    for n, value in enumerate(HUGE):
        case(f"population-number-{n}", "population", (POPULATION + f"69123,L,,{value},2022\n").encode(), **pop)
    case("population-garbage", "population", GARBAGE, **pop)
    case("population-bom", "population", BOM + (POPULATION + "69123,L,,5,2022\n").encode(), **pop)
    case("population-missing-column", "population", b"code_insee,population\n69123,5\n", **pop)

    # Boundaries: GeoJSON with invalid geometries.
    geometries = {
        "self-intersecting": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
        "empty": {"type": "Polygon", "coordinates": []},
        "empty-ring": {"type": "Polygon", "coordinates": [[]]},
        "empty-multi": {"type": "MultiPolygon", "coordinates": [[]]},
        "unclosed": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
        "out-of-range": {"type": "Polygon", "coordinates": [[[0, 0], [500, 0], [500, 100], [0, 100], [0, 0]]]},
        "too-deep": {"type": "MultiPolygon", "coordinates": [[[[[[[[SQUARE]]]]]]]]},
        "not-a-list": {"type": "Polygon", "coordinates": "abc"},
        "null": {"type": "Polygon", "coordinates": None},
        "no-coordinates": {"type": "Polygon"},
        "objects": {"type": "Polygon", "coordinates": [[{}, {}, {}, {}]]},
        "booleans": {"type": "Polygon", "coordinates": [[[True, False], [1, 0], [1, 1], [True, False]]]},
        "collection": {"type": "GeometryCollection", "geometries": [{"type": "Polygon", "coordinates": [SQUARE]}]},
        "none": None,
    }
    for name, geometry in geometries.items():
        for repair in ("no", "yes"):
            case(f"boundaries-{name}-repair-{repair}", "boundaries", geojson(geometry), repair=repair)
    for n, value in enumerate([b"1e400", b"NaN", b"-Infinity", b"1" + b"0" * 400, b"1" + b"0" * 5000]):
        raw = b"[[[0, 0], [" + value + b", 0], [1, 1], [0, 0]]]"
        case(f"boundaries-number-{n}", "boundaries", geojson({"type": "Polygon", "coordinates": "RAW"}, raw=raw))
    deep = b"[" * 100_000 + b"]" * 100_000
    case("boundaries-nested-too-deep", "boundaries", geojson({"type": "Polygon", "coordinates": "RAW"}, raw=deep))
    case("boundaries-empty", "boundaries", b"")
    case("boundaries-garbage", "boundaries", GARBAGE)
    case("boundaries-not-a-collection", "boundaries", b"[]")
    case("boundaries-crs", "boundaries", b'{"type": "FeatureCollection", "crs": [1], "features": []}')
    weird = {"type": "FeatureCollection", "features": [5, {"type": "Feature", "properties": {"code": 1e300}}]}
    case("boundaries-odd-features", "boundaries", json.dumps(weird).encode(), code="code", label="code")
    parents = geojson({"type": "Polygon", "coordinates": [SQUARE]}, geometries["self-intersecting"])
    case("boundaries-parents", "boundaries", parents, parent="=p1", parent_label="P", repair="yes")

    # DCAT catalogs: saved files.
    chain = DATASET + "<http://x/ds> <http://x/p> _:b0 .\n"
    chain += "".join(f"_:b{i} <http://x/p> _:b{i + 1} .\n" for i in range(3000))
    case("dcat-blank-node-chain", "dcat", chain.encode(), file="chain.nt")
    items = " ".join(str(i) for i in range(3000))
    long_list = f"<http://x/ds> a <http://www.w3.org/ns/dcat#Dataset> ; <http://x/l> ({items}) ."
    case("dcat-long-list", "dcat", long_list.encode(), file="list.ttl")
    cycle = DATASET + "<http://x/ds> <http://x/p> _:a .\n_:a <http://x/p> _:b .\n_:b <http://x/p> _:a .\n"
    case("dcat-blank-node-cycle", "dcat", cycle.encode(), file="cycle.nt")
    case("dcat-entities", "dcat", EXTERNAL_XML, file="catalog.rdf")
    case("dcat-deep-jsonld", "dcat", DEEP_JSON, file="catalog.jsonld")
    case(
        "dcat-deep-turtle",
        "dcat",
        b"<http://x/a> <http://x/p> " + b"[ <http://x/p> " * 5000 + b"1" + b"]" * 5000 + b" .",
        file="deep.ttl",
    )
    case("dcat-garbage", "dcat", GARBAGE, file="catalog.ttl")
    case("dcat-empty", "dcat", b"", file="catalog.ttl")
    literals = "".join(
        f'<http://x/ds> <http://x/p{n}> "{v}"^^<http://www.w3.org/2001/XMLSchema#{t}> .\n'
        for n, (v, t) in enumerate([("1e400", "double"), ("9" * 50, "integer"), ("0000-00-00", "date"), ("x", "int")])
    )
    case("dcat-literals", "dcat", (DATASET + literals).encode(), file="literals.nt")

    # CKAN portals: package_search answers.
    case("ckan-not-json", "ckan", [GARBAGE])
    case("ckan-odd-packages", "ckan", [ckan([5, None, "x", {"id": 5}])])
    case("ckan-huge-count", "ckan", [ckan([{"name": "a"}], count=10**30)])
    case("ckan-no-results", "ckan", [json.dumps({"success": True, "result": {"count": 1}}).encode()])
    for n, package in enumerate(ODD_PACKAGES[:-2]):  # the last two: see test_ckan_portal_answers
        case(f"ckan-package-{n}", "ckan", [ckan([package])])

    # NDJSON.
    case("ndjson-deep", "ndjson", DEEP_JSON)
    case("ndjson-huge-number", "ndjson", b'{"kind": "proposal", "id": ' + b"1" * 5000 + b"}")
    case("ndjson-garbage", "ndjson", GARBAGE)
    case("ndjson-odd", "ndjson", b'{"kind": [1]}\n{"kind": "proposal", "id": [1], "deleted": true}\n5\n\n')
    case("ndjson-long-line", "ndjson", b"{" + b" " * 2_000_000 + b"}", max_line="1000")
    return cases


#: CKAN package dicts with every field of the wrong type, or nested too deeply.
ODD_PACKAGES: list[Any] = [
    {"name": "a", "extras": [{"key": [1], "value": 2}, {"key": "uri", "value": [1]}, 5]},
    {"name": "a", "extras": 5, "tags": 5, "groups": 7, "resources": 5},
    {"name": "a", "extras": "text", "tags": "text", "groups": {"a": 1}, "resources": {"a": 1}},
    {"name": "a", "theme": "[" * 100_000},
    {"name": "a", "spatial": "[" * 100_000 + "]" * 100_000},
    {"name": "a", "spatial": '{"type": "Point", "coordinates": ' + "[" * 100_000 + "]" * 100_000 + "}"},
    {"name": "a", "license_id": [1], "license_url": 5, "license_title": {"a": 1}},
    {"name": "a", "metadata_created": "9999-12-31T23:59:59-23:59", "issued": "0000-00-00", "modified": 5},
    {"name": "a", "temporal_start": "10000-01-01", "temporal_end": "9999-99-99"},
    {"name": "a", "resources": [{"size": 10**400, "format": 5, "url": 5, "id": 3, "created": 5, "mimetype": 5}]},
    {"name": "a", "title_translated": {"en": "x", "fr": 5, "": "y"}, "organization": {"name": "o", "title": 5}},
    {"name": "a", "tags": [{"name": 5}, "x", None, {"display_name": ["x"]}], "url": 5},
    {"name": ["x"]},
    {"id": {"a": 1}},
]

CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_extreme_input_ends_in_items_or_a_client_error(name: str, tmp_path: Path) -> None:
    fmt, data, options = CASES[name]()
    if options.get("services"):
        (tmp_path / options["services"]).write_bytes(DEEP_JSON)
        options["services"] = str(tmp_path / options["services"])
    outcome(fmt, data, tmp_path, **options)


def test_every_importer_has_cases() -> None:
    assert {CASES[name]()[0] for name in CASES} >= set(IMPORTERS) - {"demo"}


@pytest.mark.parametrize("scale", ["inf", "-1", "1e400"])
def test_demo_scale(scale: str, tmp_path: Path) -> None:
    outcome("demo", "lyon", tmp_path, scale=scale)


@pytest.mark.parametrize(
    "body",
    [DEEP_JSON, ckan([{"id": [1], "name": "b"}])],
    ids=["deep-answer", "unhashable-id"],
)
def test_ckan_portal_answers(body: bytes, tmp_path: Path) -> None:
    outcome("ckan", [body], tmp_path)


# -- the bugs found, one test each -------------------------------------------------------------------


def test_decidim_refuses_a_line_longer_than_max_line_before_holding_it(tmp_path: Path) -> None:
    # Short fields, so that the CSV reader's field limit does not stop it first: the line itself
    # was held whole (hundreds of MB for a large entry) before the fix.
    csv = "id;title/en\n1;" + "a;" * (MAX_LINE // 2)
    for name, data in (("export.zip", archive((f"{H}proposals.csv", csv))), (f"{H}proposals.csv", csv.encode())):
        with pytest.raises(MalformedBody, match=rf"line 2: longer than {MAX_LINE} bytes"):
            read_all("decidim", data, tmp_path, name=name)


def test_decidim_zip_skips_folders_other_files_and_macos_metadata(tmp_path: Path) -> None:
    good = PROPOSALS + proposal_row(1)
    data = archive(
        (f"{H}proposals/", b""),
        (f"__MACOSX/._{H}proposals.csv", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"),
        (f"{H}proposals.pdf", b"%PDF-1.4\x00\xff"),
        (f"{H}proposals.csv", good),
    )
    items = outcome("decidim", data, tmp_path, name="export.zip")
    assert [r.data["id"] for r in records(items, "proposal")] == ["1"] and not rejected(items)


def test_decidim_count_of_thousands_of_digits_is_left_to_the_schema(tmp_path: Path) -> None:
    row = f"1;T;{SPACE};{'9' * 5000};;;;\n2;U;{SPACE};12;;;;\n"
    items = outcome("decidim", (PROPOSALS + row).encode(), tmp_path, name=f"{H}proposals.csv")
    votes = {r.data["id"]: r.data["vote_count"] for r in records(items, "proposal")}
    assert votes == {"1": "9" * 5000, "2": 12}  # the string: the schema rejects it, pointing at vote_count


@pytest.mark.parametrize(
    ("fmt", "data", "options"),
    [
        ("decidim", b"id;title/en;id\n1;T;2\n", {"name": f"{H}proposals.csv"}),
        ("paris-bp", (PARIS.rstrip("\n") + ";Edition\n1;2020;T;1;;;;2021\n").encode(), {}),
        ("table", b"code,year,value,value\n69123,2020,1,2\n", {"territory": "t", "urls": URLS, "mapping": MAPPING}),
        ("consul-csv", b"id,title,title\n1,T,U\n", {}),
        ("pabulib", pb().replace("cost;votes", "cost;cost").encode(), {}),
    ],
    ids=["decidim", "paris-bp", "table", "consul-csv", "pabulib"],
)
def test_a_column_named_twice_is_refused_naming_it(fmt: str, data: bytes, options: Any, tmp_path: Path) -> None:
    with pytest.raises(MalformedBody, match=r"line \d+: the .*column\(s\) .*(id|Edition|value|title|cost).* appear"):
        read_all(fmt, data, tmp_path, **options)


def test_a_truncated_utf16_table_is_a_malformed_body(tmp_path: Path) -> None:
    data = b"\xff\xfe" + "code,year,value\n".encode("utf-16-le") + b"\x00"
    with pytest.raises(MalformedBody, match="not UTF-16 text"):
        read_all("table", data, tmp_path, territory="t", urls=URLS, mapping=MAPPING)


@pytest.mark.parametrize(
    ("date", "timezone"),
    [
        ("0001-01-01 00:00:00 +0100", None),
        ("9999-12-31 23:59:59 -0100", None),
        ("31/12/9999 23:59:59", "America/New_York"),
    ],
)
def test_consul_csv_time_out_of_range_is_rejected(date: str, timezone: str | None, tmp_path: Path) -> None:
    data = (CONSUL_CSV + f"1,T,1,1,{date}\n2,U,1,1,2020-01-01 00:00:00 +0100\n").encode()
    items = outcome("consul-csv", data, tmp_path, timezone=timezone)
    [bad] = rejected(items)
    assert (bad.line, bad.local_id, bad.error.errors[0]["pointer"]) == (2, "consul-proposal-1", "#/created")
    assert "out of range" in bad.error.detail
    assert [r.data["id"] for r in records(items, "proposal")] == ["consul-proposal-2"]


def test_consul_csv_url_that_cannot_be_split_is_rejected(tmp_path: Path) -> None:
    data = b"URL,Title,Supporters,City\nhttp://[::1/proposals/1,T,1,A\nhttps://a.example/proposals/2,U,1,A\n"
    items = outcome("consul-csv", data, tmp_path, city="A")
    [bad] = rejected(items)
    assert (bad.line, bad.error.errors[0]["pointer"]) == (2, "#/url") and "cannot be read" in bad.error.detail
    assert [r.data["id"] for r in records(items, "proposal")] == ["a.example-proposal-2"]


def test_consul_answers_nested_too_deep_are_malformed(tmp_path: Path) -> None:
    with pytest.raises(MalformedBody, match=r"with no JSON .*recursion"):
        read_all("consul", [DEEP_JSON], tmp_path)


def test_consul_page_info_not_an_object_is_malformed(tmp_path: Path) -> None:
    with pytest.raises(MalformedBody, match="pageInfo that is not an object"):
        read_all("consul", [graphql([node()], page_info="next"), NO_DEBATES], tmp_path)


def test_consul_node_values_of_the_wrong_type_or_range_are_rejected(tmp_path: Path) -> None:
    nodes = [
        node(id=1, title=5),
        node(id=2, summary=["x"]),
        node(id=3, cached_votes_up=10**400),
        node(id=4, public_created_at="0001-01-01 00:00:00 +0100"),
        node(id=5),
    ]
    items = outcome("consul", [graphql(nodes), NO_DEBATES], tmp_path)
    found = {r.local_id: r.error.errors[0]["pointer"] for r in rejected(items)}
    prefix = "consul.example.org-proposal-"
    assert found == {
        f"{prefix}1": "#/title",
        f"{prefix}2": "#/summary",
        f"{prefix}3": "#/vote_count",
        f"{prefix}4": "#/created",
    }
    assert [r.data["id"] for r in records(items, "proposal")] == [f"{prefix}5"]


def test_consul_comment_body_of_the_wrong_type_is_rejected(tmp_path: Path) -> None:
    answer = {"c0": {"comments": {"edges": [{"node": {"id": 9, "body": 5}}, {"node": {"id": 10, "body": "ok"}}]}}}
    bodies = [graphql([node(comments_count=2)]), json.dumps({"data": answer}).encode(), NO_DEBATES]
    items = outcome("consul", bodies, tmp_path)
    [bad] = rejected(items)
    assert (bad.kind, bad.local_id, bad.error.errors[0]["pointer"]) == (
        "comment",
        "consul.example.org-comment-9",
        "#/body",
    )
    assert [r.data["id"] for r in records(items, "comment")] == ["consul.example.org-comment-10"]


@pytest.mark.parametrize(
    ("body", "file", "message"),
    [
        (DEEP_JSON, "x_requests.json", "neither JSON nor XML: .*recursion"),
        (deep_xml("service_requests", "request"), "x_requests.xml", "<a> is nested more than 32 elements deep"),
    ],
    ids=["json", "xml"],
)
def test_open311_nested_too_deep_is_malformed(body: bytes, file: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(MalformedBody, match=message):
        read_all("open311", body, tmp_path, file=file)


def test_open311_coordinate_of_400_digits_is_rejected(tmp_path: Path) -> None:
    data = open311(
        request(b', "lat": 1' + b"0" * 400 + b', "long": 1'), request(b', "lat": 1, "long": 2').replace(b'"1"', b'"2"')
    )
    items = outcome("open311", data, tmp_path, file="x_requests.json")
    [bad] = rejected(items)
    assert (bad.line, bad.local_id, bad.error.errors[0]["pointer"]) == (1, "1", "#/lat")
    assert [r.data["id"] for r in records(items, "proposal")] == ["2"]


@pytest.mark.parametrize("cost", ["1e999999999", "1e31", "1e-31"])
def test_paris_amount_of_absurd_magnitude_is_rejected_not_summed(cost: str, tmp_path: Path) -> None:
    data = (PARIS + f"1;2020;T;{cost};;;\n2;2020;U;{cost};;;\n3;2020;V;1000;;;\n").encode()
    items = outcome("paris-bp", data, tmp_path)
    assert [(r.line, r.error.errors[0]["pointer"]) for r in rejected(items)] == [
        (2, "#/cost/amount"),
        (3, "#/cost/amount"),
    ]
    [budget] = records(items, "budget")
    assert budget.data["amount"]["amount"] == 1000


def test_pabulib_amount_of_absurd_magnitude_is_rejected(tmp_path: Path) -> None:
    items = outcome("pabulib", pb(budget="1e999999999", cost="1e999999999").encode(), tmp_path)
    pointers = {(r.kind, r.error.errors[0]["pointer"]) for r in rejected(items) if r.kind in ("project", "budget")}
    assert pointers == {("project", "#/cost/amount"), ("budget", "#/amount/amount")}


@pytest.mark.parametrize(
    "mapping",
    ["{" + '"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "a = " + "[" * 100_000 + "]" * 100_000, "a = " + "1" * 5000],
    ids=["json-nested", "toml-nested", "toml-long-number"],
)
def test_a_table_mapping_nested_too_deep_is_malformed(mapping: str, tmp_path: Path) -> None:
    with pytest.raises(MalformedBody, match="the mapping is neither TOML nor JSON"):
        read_all("table", b"code,year,value\n", tmp_path, territory="t", urls=URLS, mapping=mapping)


@pytest.mark.parametrize("package", ODD_PACKAGES[:-2], ids=lambda p: ",".join(p)[:40])
def test_ckan_package_fields_of_the_wrong_type_are_left_out(package: dict[str, Any]) -> None:
    lines = package_statements(package, "https://ckan.example.org")
    assert "<https://ckan.example.org/dataset/a> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type>" in "\n".join(lines)


@pytest.mark.parametrize("package", ODD_PACKAGES[-2:], ids=["name-list", "id-object"])
def test_ckan_package_without_a_usable_name_is_rejected(package: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed, match="without name nor id"):
        package_statements(package, "https://ckan.example.org")


@pytest.mark.parametrize("name", ["dcat-blank-node-chain", "dcat-long-list"])
def test_dcat_thousands_of_nested_blank_nodes_are_named(name: str, tmp_path: Path) -> None:
    _, data, options = CASES[name]()
    [statements] = outcome("dcat", data, tmp_path, **options)
    assert isinstance(statements, Statements) and len(statements.statements) > 3000
    assert all("urn:uuid:" in s or "<http://x/ds>" in s for s in statements.statements)


@pytest.mark.parametrize("coordinates", [[], [[]]], ids=["no-ring", "empty-ring"])
def test_boundaries_empty_polygon_is_said_to_be_empty(coordinates: Any, tmp_path: Path) -> None:
    [bad] = rejected(outcome("boundaries", geojson({"type": "Polygon", "coordinates": coordinates}), tmp_path))
    assert bad.error.detail == "An empty Polygon: a district's boundary has coordinates."
