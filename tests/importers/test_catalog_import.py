"""Catalog importers (dcat, ckan), without a store: the statements they yield, read back with
pyoxigraph (which is as strict as the stores).

DCAT: the real Madrid RDF/XML records read from files and served on loopback; paged catalogs in
both Hydra styles, a page loop and ``max_pages``; a JSON-LD context fetched through the fetcher;
one case per malformed class; civicfed's own paged ``/catalog`` on a live server, walked in both
styles. CKAN: the real CKAN 2.12 of the project's tests (tests/test_ckan_push.py finds or starts
it; the tests skip without it, and fail in CI), with datasets this module makes there.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import ckanapi
import pytest
import rdflib
import requests
from pyoxigraph import RdfFormat, Store

from importers import ckan_portal, dcat_catalog
from importers.ckan_dcat import package_statements
from importers.remote import Fetcher, SourceRefused
from server.errors import MalformedBody, ValidationFailed
from server.ingest import Rejected, Statements
from vocabularies import (
    DCAT,
    DCT,
    EU_FILE_TYPE,
    EU_LICENCE,
    EU_THEME,
    FOAF,
    HYDRA,
    IANA_MEDIA,
    LOCN,
    PROV,
    RDF,
    SKOS,
    XSD,
)

from ..conftest import LiveServer
from ..test_ckan_push import CKAN_URL, portal  # noqa: F401 - the real CKAN's fixture

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "dcat"
MADRID_PB = SAMPLES / "datos.madrid.es_300312-0-presupuestos-participativos.dcat.rdf"
MADRID_DECIDE = SAMPLES / "datos.madrid.es_300114-0-madrid-decide.dcat.rdf"
LOOPBACK = Fetcher(allowed_hosts=frozenset({"127.0.0.1"}), allow_private=True)
PREFIXES = f"@prefix dcat: <{DCAT}> . @prefix dct: <{DCT}> . @prefix hydra: <{HYDRA}> . @prefix xsd: <{XSD}> .\n"


def statements(source: Any) -> list[str]:
    """Every statement of a source (failing on anything but Statements)."""
    out: list[str] = []
    for item in source.items():
        assert isinstance(item, Statements), item
        out += item.statements
    return out


def store_of(lines: list[str]) -> Store:
    store = Store()
    store.load("".join(line + " .\n" for line in lines).encode(), format=RdfFormat.N_TRIPLES)
    return store


def values(store: Store, sparql: str) -> list[str]:
    return sorted(str(row[0].value) for row in store.query(sparql))


def datasets(store: Store) -> list[str]:
    return values(store, f"SELECT ?d WHERE {{ ?d a <{DCAT.Dataset}> }}")


# -- a loopback server ---------------------------------------------------------------------------


class Origin:
    """Documents served on 127.0.0.1, by path (with its query, when one is given so); the
    requests it answered, with their Accept header."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.requests.append((self.path, self.headers.get("Accept", "")))
                found = origin.routes.get(self.path) or origin.routes.get(self.path.split("?")[0])
                status, (media_type, body) = (200, found) if found else (404, ("text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, media_type: str, body: bytes | str) -> str:
        self.routes[path] = (media_type, body.encode() if isinstance(body, str) else body)
        return self.url + path


@pytest.fixture
def origin() -> Iterator[Origin]:
    served = Origin()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


def paged(origin: Origin, prefix: str, pages: int, style: str, loop_to: int | None = None) -> str:
    """A catalog of two datasets a page, each with a blank-node distribution and period, served in
    ``pages`` pages linked in one Hydra style; the last links to page ``loop_to`` if given."""
    for n in range(1, pages + 1):
        here = f"{origin.url}{prefix}?page={n}"
        following = n + 1 if n < pages else loop_to
        body = PREFIXES + f"<{origin.url}{prefix}> a dcat:Catalog, hydra:Collection ; hydra:totalItems {2 * pages} ;"
        body += " ".join(f" dcat:dataset <{origin.url}/ds/{n}-{i}> ;" for i in (1, 2)) + f" hydra:view <{here}> .\n"
        for i in (1, 2):
            body += (
                f'<{origin.url}/ds/{n}-{i}> a dcat:Dataset ; dct:title "Dataset {n}-{i}"@en ;'
                f" dcat:distribution [ a dcat:Distribution ; dcat:accessURL <{origin.url}/files/{n}-{i}.csv> ] ;"
                ' dct:temporal [ a dct:PeriodOfTime ; dcat:startDate "2024-01-01"^^xsd:date ] .\n'
            )
        if style == "new":
            body += f"<{here}> a hydra:PartialCollectionView"
            link = f"{prefix.rsplit('/', 1)[1]}?page={following}"  # a relative link
            body += f" ; hydra:next <{link}> .\n" if following else " .\n"
        else:
            body += f"<{here}> a hydra:PagedCollection ; hydra:totalItems {2 * pages}"
            body += f' ; hydra:nextPage "{origin.url}{prefix}?page={following}" .\n' if following else " .\n"
        origin.serve(f"{prefix}?page={n}", "text/turtle; charset=utf-8", body)
    return f"{origin.url}{prefix}?page=1"


# -- DCAT: the real samples ------------------------------------------------------------------------


def test_madrid_participatory_budget_record() -> None:
    source = dcat_catalog.read(str(MADRID_PB))
    assert source.id == "dcat-datos-madrid-es-300312-0-presupuestos-participativos-dcat"
    lines = statements(source)
    store = store_of(lines)
    ds = "https://datos.madrid.es/egob/catalogo/300312-0-presupuestos-participativos"
    assert datasets(store) == [ds]
    assert values(store, f"SELECT ?t WHERE {{ <{ds}> <{DCT.title}> ?t FILTER(LANG(?t) = 'es') }}") == [
        "Participación ciudadana. Presupuestos participativos"
    ]
    assert values(store, f"SELECT ?v WHERE {{ <{ds}> <{DCT.issued}> ?v }}") == ["2019-02-14T12:42:29"]
    assert values(store, f"SELECT ?v WHERE {{ <{ds}> <{DCT.publisher}> ?v }}") == [
        "http://datos.gob.es/recurso/sector-publico/org/Organismo/L01280796"
    ]
    assert values(store, f"SELECT ?v WHERE {{ <{ds}> <{DCAT.theme}> ?v }}") == [
        "http://datos.gob.es/kos/sector-publico/sector/sociedad-bienestar"
    ]
    urls = f"SELECT ?u WHERE {{ <{ds}> <{DCAT.distribution}> ?x . ?x <{DCAT.accessURL}> ?u }}"
    assert values(store, urls) == [
        "https://datos.madrid.es/egob/catalogo/300312-0-presupuestos-participativos.csv",
        "https://datos.madrid.es/egob/catalogo/300312-1-presupuestos-participativos.xlsx",
    ]
    sizes = f"SELECT ?s WHERE {{ ?x <{DCAT.byteSize}> ?s }}"
    assert values(store, sizes) == ["100352", "156672"]
    # Where it was read: the catalog the file is a record of.
    assert values(store, f"SELECT ?v WHERE {{ <{ds}> <{DCT.source}> ?v }}") == ["https://datos.madrid.es/egob/catalogo"]
    # The distributions were blank nodes: stable IRIs now, the same on every run.
    assert not any("_:" in line for line in lines)
    assert sorted(lines) == sorted(statements(dcat_catalog.read(str(MADRID_PB))))
    assert source.sha256 == hashlib.sha256(MADRID_PB.read_bytes()).hexdigest()


def test_madrid_decide_record_served_on_loopback(origin: Origin) -> None:
    url = origin.serve("/egob/catalogo/300114-0-madrid-decide", "application/rdf+xml", MADRID_DECIDE.read_bytes())
    source = dcat_catalog.read(url, fetcher=LOOPBACK)
    store = store_of(statements(source))
    ds = "https://datos.madrid.es/egob/catalogo/300114-0-madrid-decide"
    assert datasets(store) == [ds]
    titles = f"SELECT ?t WHERE {{ <{ds}> <{DCAT.distribution}> ?x . ?x <{DCT.title}> ?t }}"
    assert values(store, titles) == sorted(
        [
            "Propuestas", "Debates", "Comentarios a debates y propuestas", "Apoyos a debates, propuestas y comentarios",
            "Notificaciones de propuestas", "Etiquetas asociadas a debates y propuestas",
            "Tabla de asociación de etiquetas", "Tabla auxiliar: distritos",
        ]
    )  # fmt: skip
    assert values(store, f"SELECT ?v WHERE {{ <{ds}> <{DCT.source}> ?v }}") == [url]
    # Content negotiation: RDF asked for, Turtle first.
    assert origin.requests[0][1].startswith("text/turtle, application/ld+json")
    assert source.location == url and source.pages == [url] and source.complete
    assert source.sha256 == hashlib.sha256(MADRID_DECIDE.read_bytes()).hexdigest()


def test_a_saved_turtle_file(tmp_path: Path) -> None:
    """One document: its paging link is not followed; a dataset that is a blank node gets an IRI;
    a value that is not of its datatype is kept as a string."""
    saved = tmp_path / "catalog.ttl"
    saved.write_text(
        PREFIXES
        + '[] a dcat:Dataset ; dct:title "Anonymous" ; dct:issued "2020-13-45"^^xsd:date ;'
        + ' dct:modified "2021-02-03"^^xsd:date .\n'
        + "<http://example.org/catalog?page=1> a hydra:PartialCollectionView ; hydra:next <http://example.org/p2> .\n"
    )
    source = dcat_catalog.read(str(saved))
    assert source.id == "dcat-catalog" and source.location == "catalog.ttl"
    store = store_of(statements(source))
    [dataset] = datasets(store)
    assert dataset.startswith("urn:uuid:")
    assert values(store, f"SELECT (DATATYPE(?v) AS ?t) WHERE {{ ?d <{DCT.issued}> ?v }}") == [XSD.string]
    assert values(store, f"SELECT (DATATYPE(?v) AS ?t) WHERE {{ ?d <{DCT.modified}> ?v }}") == [XSD.date]
    assert source.pages == [] and source.complete


def test_persons_named_by_a_catalog_are_left_out(tmp_path: Path) -> None:
    """A contact point that is a person (vcard:Individual) or a publisher that is a foaf:Person:
    neither the link nor the name, e-mail or phone is kept; an organisation's contact point is."""
    saved = tmp_path / "catalog.ttl"
    saved.write_text(
        PREFIXES
        + "@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .\n@prefix foaf: <http://xmlns.com/foaf/0.1/> .\n"
        + '<http://example.org/d1> a dcat:Dataset ; dct:title "Budget" ;\n'
        + '  dcat:contactPoint [ a vcard:Individual ; vcard:fn "Jeanne Martin" ;'
        + " vcard:hasEmail <mailto:jeanne.martin@example.org> ; vcard:hasTelephone <tel:+33600000000> ] ,\n"
        + '    [ a vcard:Organization ; vcard:fn "Service open data" ;'
        + " vcard:hasEmail <mailto:opendata@example.org> ] ;\n"
        + '  dct:publisher [ a foaf:Person ; foaf:name "Jeanne Martin" ; foaf:mbox <mailto:jm@example.org> ] .\n'
    )
    lines = "\n".join(statements(dcat_catalog.read(str(saved))))
    assert "Jeanne" not in lines and "jeanne" not in lines and "jm@" not in lines and "+3360" not in lines
    assert "Service open data" in lines and "mailto:opendata@example.org" in lines
    assert str(DCT.publisher) not in lines


# -- DCAT: paging ------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["new", "old"])
def test_hydra_paging_in_either_style(origin: Origin, style: str) -> None:
    source = dcat_catalog.read(paged(origin, "/catalog.ttl", 3, style), fetcher=LOOPBACK)
    lines = statements(source)
    store = store_of(lines)
    assert datasets(store) == sorted(f"{origin.url}/ds/{n}-{i}" for n in (1, 2, 3) for i in (1, 2))
    assert len(source.pages) == 3 and source.complete
    # The paging is gone, the catalog's content kept: a distinct distribution and period each.
    assert not any(str(HYDRA) in line for line in lines)
    assert len(values(store, f"SELECT ?x WHERE {{ ?d <{DCAT.distribution}> ?x }}")) == 6
    periods = values(store, f"SELECT DISTINCT ?p WHERE {{ ?d <{DCT.temporal}> ?p }}")
    assert len(periods) == 6 and all(p.startswith("urn:uuid:") for p in periods)  # same content, six owners


def test_a_page_loop_and_max_pages_stop_the_walk(origin: Origin) -> None:
    looping = dcat_catalog.read(paged(origin, "/loop.ttl", 3, "new", loop_to=1), fetcher=LOOPBACK)
    assert len(datasets(store_of(statements(looping)))) == 6
    assert len(looping.pages) == 3 and not looping.complete and "a page read before" in (looping.stopped or "")
    bounded = dcat_catalog.read(paged(origin, "/long.ttl", 3, "old"), fetcher=LOOPBACK, max_pages="2")
    assert len(datasets(store_of(statements(bounded)))) == 4
    assert not bounded.complete and "max_pages=2" in (bounded.stopped or "")
    with pytest.raises(ValidationFailed):
        dcat_catalog.read(origin.url + "/long.ttl", fetcher=LOOPBACK, max_pages="0")


def test_a_remote_jsonld_context_is_fetched_through_the_fetcher(origin: Origin) -> None:
    context = {"@context": {"dcat": str(DCAT), "dct": str(DCT), "title": {"@id": "dct:title", "@language": "fr"}}}
    origin.serve("/context.jsonld", "application/ld+json", json.dumps(context))
    doc = {"@context": "/context.jsonld", "@id": "http://example.org/ds/1", "@type": "dcat:Dataset", "title": "Budget"}
    url = origin.serve("/catalog.jsonld", "application/ld+json", json.dumps(doc))
    store = store_of(statements(dcat_catalog.read(url, fetcher=LOOPBACK)))
    assert values(
        store, f"SELECT ?t WHERE {{ <http://example.org/ds/1> <{DCT.title}> ?t FILTER(LANG(?t) = 'fr') }}"
    ) == ["Budget"]
    assert [path for path, _ in origin.requests] == ["/catalog.jsonld", "/context.jsonld"]
    # A context on a host the fetcher may not reach is refused, not fetched by rdflib.
    doc["@context"] = "http://localhost:9/context.jsonld"
    url = origin.serve("/elsewhere.jsonld", "application/ld+json", json.dumps(doc))
    with pytest.raises(SourceRefused, match="localhost"):
        statements(dcat_catalog.read(url, fetcher=LOOPBACK))


# -- DCAT: malformed sources, one case per class ------------------------------------------------------

BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n <!ENTITY a "aaaaaaaaaa">\n'
    + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(8))
    + f']>\n<rdf:RDF xmlns:rdf="{RDF}" xmlns:dct="{DCT}" xmlns:dcat="{DCAT}">'
    + '<dcat:Dataset rdf:about="http://example.org/ds"><dct:title>&i;</dct:title></dcat:Dataset></rdf:RDF>'
)


@pytest.mark.parametrize(
    ("media_type", "body", "message"),
    [
        (
            "text/turtle",
            PREFIXES + "<http://example.org/ds> a dcat:Dataset ;\n dct:title .",
            "could not be read as turtle",
        ),
        ("text/html", "<!DOCTYPE html><html><body>Our open data portal</body></html>", "an HTML page, not RDF"),
        ("application/rdf+xml", BOMB, "refused, the XML declares entities"),
        ("application/rdf+xml", f'<rdf:RDF xmlns:rdf="{RDF}"><rdf:Description', "not well-formed XML"),
        ("application/ld+json", '{"@id": "http://example.org/ds", ', "is not JSON"),
    ],
    ids=["invalid-turtle", "html", "entity-bomb", "broken-xml", "broken-json"],
)
def test_a_malformed_catalog_is_refused_naming_it(origin: Origin, media_type: str, body: str, message: str) -> None:
    url = origin.serve("/catalog", media_type, body)
    with pytest.raises(MalformedBody, match=message) as raised:
        statements(dcat_catalog.read(url, fetcher=LOOPBACK))
    assert url in raised.value.detail


def test_a_host_outside_the_allowlist_is_refused_before_anything_is_read(origin: Origin) -> None:
    with pytest.raises(SourceRefused):
        dcat_catalog.read(origin.url + "/catalog", fetcher=Fetcher(allowed_hosts=frozenset({"127.0.0.1"})))
    with pytest.raises(SourceRefused):
        ckan_portal.read(origin.url, fetcher=Fetcher())
    assert origin.requests == []


# -- DCAT: civicfed's own paged catalog ------------------------------------------------------------


def test_civicfed_catalog_walked_in_both_hydra_styles(live_server: LiveServer, origin: Origin) -> None:
    first = requests.get(f"{live_server.url}/catalog.ttl?page_size=5", timeout=30)
    page = rdflib.Graph().parse(data=first.text, format="turtle")
    total = int(next(page.objects(None, rdflib.URIRef(HYDRA.totalItems))))
    pages = -(-total // 5)
    assert total >= 20 and pages >= 4
    new = dcat_catalog.read(f"{live_server.url}/catalog?page_size=5", fetcher=LOOPBACK)
    walked = datasets(store_of(statements(new)))
    assert len(walked) == total and len(new.pages) == pages and new.complete
    assert new.pages[1] == f"{live_server.url}/catalog.ttl?page=2&page_size=5"  # the server's own links
    # The older style alone: the same pages without the terms of the new one, served here.
    hydra_new = {HYDRA.PartialCollectionView, HYDRA.next, HYDRA.previous, HYDRA.first, HYDRA.last, HYDRA.view}
    for n in range(1, pages + 1):
        text = requests.get(f"{live_server.url}/catalog.ttl?page={n}&page_size=5", timeout=30).text
        graph = rdflib.Graph().parse(data=text, format="turtle")
        for s, p, o in list(graph):
            if str(p) in hydra_new or str(o) in hydra_new:
                graph.remove((s, p, o))
        body = graph.serialize(format="nt").replace(f"{live_server.url}/catalog.ttl?", f"{origin.url}/old.ttl?")
        assert str(HYDRA.nextPage) in body or n == pages
        assert str(HYDRA.next) + ">" not in body and str(HYDRA.PartialCollectionView) not in body
        origin.serve(f"/old.ttl?page={n}&page_size=5", "application/n-triples", body)
    old = dcat_catalog.read(f"{origin.url}/old.ttl?page=1&page_size=5", fetcher=LOOPBACK)
    assert datasets(store_of(statements(old))) == walked and len(old.pages) == pages and old.complete


# -- CKAN ----------------------------------------------------------------------------------------------

ORG = "civicfed-catalog-import"
GROUP = "civicfed-catalog-import-theme"
#: People's names and addresses a CKAN dataset carries: never published by the import.
PEOPLE = ("Marguerite Okafor", "marguerite.okafor@example.net", "Tobias Vandermeer", "tobias@example.net")
PACKAGES: list[dict[str, Any]] = [
    {
        "name": "cci-proposals",
        "title": "Citizen proposals",
        "notes": "Every proposal, in *Markdown*.",
        "license_id": "cc-by",
        "url": "https://participation.example.org/proposals",
        "author": PEOPLE[0],
        "author_email": PEOPLE[1],
        "maintainer": PEOPLE[2],
        "maintainer_email": PEOPLE[3],
        "tags": [{"name": "participation"}, {"name": "proposals"}],
        "groups": [{"name": GROUP}],
        "extras": [
            {"key": "theme", "value": json.dumps([EU_THEME.GOVE, EU_THEME.SOCI])},
            {"key": "temporal_start", "value": "2024-01-01"},
            {"key": "temporal_end", "value": "2024-12-31"},
            {"key": "spatial_text", "value": "Lyon"},
            {"key": "spatial", "value": '{"type": "Point", "coordinates": [4.83, 45.76]}'},
        ],
        "resources": [
            {
                "name": "Proposals CSV",
                "url": "https://participation.example.org/proposals.csv",
                "format": "CSV",
                "mimetype": "text/csv",
                "size": 1234,
            },
            {"name": "Proposals JSON", "url": "https://participation.example.org/all proposals.json", "format": "JSON"},
        ],
    },
    {
        "name": "cci-budget",
        "title": "Participatory budget",
        "license_id": "odc-odbl",
        "extras": [
            {"key": "uri", "value": "https://data.example.org/id/dataset/budget"},
            {"key": "issued", "value": "2023-05-01T10:00:00"},
        ],
        "resources": [{"name": "Projects", "url": "https://data.example.org/budget.xlsx", "format": "XLSX"}],
    },
    {"name": "cci-meetings", "title": "Meetings", "license_id": "other-open"},
]


@pytest.fixture(scope="module")
def ckan_datasets(portal: tuple[ckanapi.RemoteCKAN, str]) -> dict[str, dict[str, Any]]:  # noqa: F811
    """The datasets of PACKAGES in the real CKAN, as this module wants them, by name. Updated in
    place rather than purged and made again: the portal's Solr stand-in keeps purged datasets in
    its index, and a dataset updated under the same id is indexed once."""
    ckan, _ = portal
    try:
        org = ckan.action.organization_show(id=ORG)
    except ckanapi.NotFound:
        org = ckan.action.organization_create(name=ORG, title="Catalog import test")
    try:
        ckan.action.group_show(id=GROUP)
    except ckanapi.NotFound:
        ckan.action.group_create(name=GROUP, title="Participation")
    out = {}
    for package in PACKAGES:
        data = {"resources": [], "groups": [], "extras": [], **package, "owner_org": org["id"], "state": "active"}
        try:
            current = ckan.action.package_show(id=package["name"])
            out[package["name"]] = ckan.action.package_update(id=current["id"], **data)
        except ckanapi.NotFound:
            out[package["name"]] = ckan.action.package_create(**data)
    return out


@pytest.mark.live  # the real CKAN
def test_ckan_datasets_in_dcat(ckan_datasets: dict[str, dict[str, Any]]) -> None:
    source = ckan_portal.read(CKAN_URL, fetcher=LOOPBACK, fq=f"organization:{ORG}", rows="2")
    # One source per portal and filter: another organization's import keeps a graph of its own.
    assert source.id == f"ckan-127-0-0-1-{CKAN_URL.rsplit(':', 1)[1]}-organization-civicfed-catalog-import"
    lines = statements(source)
    assert source.complete and source.sha256 and len(source.sha256) == 64
    store = store_of(lines)
    proposals, budget = f"{CKAN_URL}/dataset/cci-proposals", "https://data.example.org/id/dataset/budget"
    assert datasets(store) == sorted([proposals, budget, f"{CKAN_URL}/dataset/cci-meetings"])

    def one(s: str, p: str) -> list[str]:
        return values(store, f"SELECT ?o WHERE {{ <{s}> <{p}> ?o }}")

    assert one(proposals, DCT.title) == ["Citizen proposals"]
    assert one(proposals, DCT.description) == ["Every proposal, in *Markdown*."]
    assert one(proposals, DCT.identifier) == [ckan_datasets["cci-proposals"]["id"]]
    assert one(proposals, DCAT.keyword) == ["participation", "proposals"]
    assert one(proposals, DCAT.theme) == sorted([EU_THEME.GOVE, EU_THEME.SOCI, f"{CKAN_URL}/group/{GROUP}"])
    assert one(proposals, DCT.publisher) == [f"{CKAN_URL}/organization/{ORG}"]
    assert one(f"{CKAN_URL}/organization/{ORG}", FOAF.name) == ["Catalog import test"]
    assert one(proposals, DCT.license) == [EU_LICENCE.CC_BY_4_0]
    assert one(proposals, DCAT.landingPage) == ["https://participation.example.org/proposals"]
    assert one(proposals, DCT.source) == [CKAN_URL]
    modified = one(proposals, DCT.modified)  # CKAN's naive UTC, said so
    assert len(modified) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", modified[0])
    assert modified[0] >= ckan_datasets["cci-proposals"]["metadata_modified"]
    period = one(proposals, DCT.temporal)[0]
    assert (one(period, DCAT.startDate), one(period, DCAT.endDate)) == (["2024-01-01"], ["2024-12-31"])
    place = one(proposals, DCT.spatial)[0]
    assert one(place, SKOS.prefLabel) == ["Lyon"]
    assert json.loads(one(place, LOCN.geometry)[0]) == {
        "type": "Point",
        "coordinates": [4.83, 45.76],
    }
    resources = {r["name"]: r for r in ckan_datasets["cci-proposals"]["resources"]}
    csv = f"{proposals}/resource/{resources['Proposals CSV']['id']}"
    assert one(csv, DCAT.accessURL) == ["https://participation.example.org/proposals.csv"]
    assert one(csv, DCT["format"]) == [EU_FILE_TYPE.CSV]
    assert one(csv, DCAT.mediaType) == [IANA_MEDIA["text/csv"]]
    assert one(csv, DCAT.byteSize) == ["1234"]
    spaced = f"{proposals}/resource/{resources['Proposals JSON']['id']}"
    assert one(spaced, DCAT.accessURL) == ["https://participation.example.org/all%20proposals.json"]
    # A dataset the portal knows by another IRI keeps it; its own dates win over CKAN's.
    assert one(budget, DCT.issued) == ["2023-05-01T10:00:00"]
    assert one(budget, DCT.license) == [EU_LICENCE.ODC_BL]
    assert one(f"{CKAN_URL}/dataset/cci-meetings", DCT.license) == []  # other-open: no licence document
    # No person's name nor address is published.
    text = "\n".join(lines)
    assert [p for p in PEOPLE if p in text] == []


@pytest.mark.live  # the real CKAN
def test_ckan_max_datasets_and_a_wrong_portal(ckan_datasets: dict[str, Any], origin: Origin) -> None:
    bounded = ckan_portal.read(CKAN_URL + "/api/3/action", fetcher=LOOPBACK, fq=f"organization:{ORG}", max_datasets=2)
    assert bounded.base == CKAN_URL and len(statements(bounded)) > 0 and not bounded.complete
    origin.serve("/api/action/package_search", "text/html", "<html><body>Not CKAN</body></html>")
    with pytest.raises(MalformedBody, match="did not answer as a CKAN Action API"):
        statements(ckan_portal.read(origin.url, fetcher=LOOPBACK))
    with pytest.raises(ValidationFailed):
        ckan_portal.read(CKAN_URL, fetcher=LOOPBACK, rows="5000")


def test_a_package_that_cannot_be_mapped_is_rejected_and_the_others_kept(origin: Origin) -> None:
    page = {"count": 3, "results": ["not a package", {"title": "No name"}, {"name": "x", "extras": [{"key": "theme"}]}]}
    origin.serve("/api/action/package_search", "application/json", json.dumps({"success": True, "result": page}))
    items = list(ckan_portal.read(origin.url, fetcher=LOOPBACK).items())
    assert [(type(i).__name__, getattr(i, "line", None)) for i in items] == [
        ("Rejected", 1), ("Rejected", 2), ("Statements", None)
    ]  # fmt: skip
    assert isinstance(items[0], Rejected) and isinstance(items[0].error, ValidationFailed)
    assert items[2].statements == (  # type: ignore[union-attr]
        f"<{origin.url}/dataset/x> <{RDF.type}> <{DCAT.Dataset}>",
        f'<{origin.url}/dataset/x> <{DCT.identifier}> "x"',
        f'<{origin.url}/dataset/x> <{DCT.title}> "x"',
        f"<{origin.url}/dataset/x> <{DCT.source}> <{origin.url}>",
        f"<{origin.url}/dataset/x> <{PROV.wasDerivedFrom}> <{origin.url}>",
    )
    with pytest.raises(ValidationFailed):
        package_statements([], "https://ckan.example")
