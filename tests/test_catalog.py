"""The DCAT-AP catalog as harvesters read it: over a real socket with requests and rdflib, pages
walked to the end in both Hydra styles, DCAT-AP 3.0.1 conformance with pySHACL (the shapes in
tests/data/dcat-ap/, CC-BY 4.0 © European Union, copied unchanged from SEMICeu/DCAT-AP), content
negotiation, conditional requests and the pages for people."""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import rdflib
import requests
from pyshacl import validate
from rdflib import RDF, Graph, Namespace, URIRef
from rdflib.compare import isomorphic

from .conftest import LiveServer

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
SH = Namespace("http://www.w3.org/ns/shacl#")
SHAPES = Path(__file__).parent / "data" / "dcat-ap"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
#: What a record's JSON holds that a client does not send back.
READ_ONLY = ("kind", "iri", "record_modified", "deleted", "vote_count", "comment_count")
FORMATS = {
    "ttl": ("text/turtle", "turtle"),
    "jsonld": ("application/ld+json", "json-ld"),
    "rdf": ("application/rdf+xml", "xml"),
    "nt": ("application/n-triples", "nt"),
}


def graph_of(resp: requests.Response, fmt: str = "ttl") -> Graph:
    assert resp.status_code == 200, resp.text[:500]
    return Graph().parse(data=resp.content, format=FORMATS[fmt][1])


def walk(url: str, next_term: URIRef, view_class: URIRef) -> tuple[list[Graph], list[str]]:
    """Follow one Hydra style's next link to the end, as the harvester reading it does."""
    pages, urls = [], []
    while url:
        assert url.startswith("http://127.0.0.1"), url  # absolute
        resp = requests.get(url, timeout=30, allow_redirects=False)  # udata allows no redirect
        g = graph_of(resp)
        pages.append(g)
        urls.append(url)
        views = list(g.subjects(RDF.type, view_class))
        assert len(views) == 1, f"{url}: one {view_class} node"
        nxt = g.value(views[0], next_term)
        url = str(nxt) if nxt is not None else ""
        assert len(pages) < 50
    return pages, urls


def datasets_in(pages: list[Graph]) -> list[str]:
    return [str(d) for g in pages for d in g.objects(None, DCAT.dataset)]


def test_walking_the_catalog_in_both_hydra_styles_gives_every_dataset_once(live_server: LiveServer) -> None:
    start = f"{live_server.url}/catalog.ttl?page_size=7"
    new, _ = walk(start, HYDRA.next, HYDRA.PartialCollectionView)
    old, urls = walk(start, HYDRA.nextPage, HYDRA.PagedCollection)
    names = datasets_in(new)
    assert names == datasets_in(old)
    assert len(names) == len(set(names)) and len(names) >= 20  # three demo territories, 8 kinds each
    assert names == sorted(names)  # a stable order
    total = new[0].value(URIRef(f"{live_server.url}/catalog"), HYDRA.totalItems)
    assert int(total) == len(names)
    view = next(new[0].subjects(RDF.type, HYDRA.PartialCollectionView))
    assert int(new[0].value(view, HYDRA.itemsPerPage)) == 7
    assert str(new[0].value(view, HYDRA.last)) == urls[-1] == str(new[0].value(view, HYDRA.lastPage))
    # Each page describes the datasets it lists, and lists the services.
    for g in new:
        for d in g.objects(None, DCAT.dataset):
            assert (d, RDF.type, DCAT.Dataset) in g and g.value(d, DCT.identifier) is not None
        assert len(list(g.subjects(RDF.type, DCAT.DataService))) == 2
    # Every dataset resolves, and its distributions' download URLs answer.
    some = names[0]
    d = graph_of(requests.get(some, headers={"Accept": "text/turtle"}, timeout=30))
    urls_ = [str(u) for u in d.objects(None, DCAT.downloadURL)]
    assert urls_ and all(requests.head(u, timeout=30).status_code == 200 for u in urls_)


def test_modified_since_and_q_filter_the_catalog(live_server: LiveServer) -> None:
    base = f"{live_server.url}/catalog.ttl"
    everything = datasets_in(walk(base + "?page_size=1000", HYDRA.next, HYDRA.PartialCollectionView)[0])
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert datasets_in([graph_of(requests.get(base, params={"modified_since": future}, timeout=30))]) == []
    # A change to one territory's proposals brings that dataset (only it, among lyon's) back.
    before = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    api = f"{live_server.url}/api/v1/territories/lyon/proposals"
    proposal = requests.get(api, params={"limit": 1}, timeout=30).json()["items"][0]
    body = {k: v for k, v in proposal.items() if k not in READ_ONLY} | {"title": "Changed for the catalog"}
    put = requests.put(f"{api}/{proposal['id']}", json=body, headers=live_server.auth(), timeout=30)
    assert put.status_code in (200, 201), put.text
    recent = datasets_in([graph_of(requests.get(base, params={"modified_since": before}, timeout=30))])
    assert f"{live_server.url}/dataset/lyon-proposals" in recent
    assert not any(n.endswith("-comments") or "grenoble" in n for n in recent)
    # q: every word must match.
    found = datasets_in([graph_of(requests.get(base, params={"q": "grenoble", "page_size": 100}, timeout=30))])
    assert found == [n for n in everything if n.startswith(f"{live_server.url}/dataset/grenoble-")] and found
    both = datasets_in([graph_of(requests.get(base, params={"q": "grenoble Propositions"}, timeout=30))])
    assert f"{live_server.url}/dataset/grenoble-proposals" in both and set(both) < set(found)
    paged = requests.get(base, params={"q": "lyon", "page_size": 2}, timeout=30)
    nxt = graph_of(paged).value(next(graph_of(paged).subjects(RDF.type, HYDRA.PartialCollectionView)), HYDRA.next)
    assert "q=lyon" in str(nxt) and str(nxt).startswith(base)  # filters kept on every page
    assert set(found) <= set(everything)


def _validate(data: Graph, shapes: list[str], allow_warnings: bool) -> tuple[bool, Graph, str]:
    sg = Graph()
    for name in shapes:
        sg.parse(SHAPES / name, format="turtle")
    ont = Graph().parse(SHAPES / "background-subclass-axioms.ttl", format="turtle")
    conforms, report, text = validate(
        data, shacl_graph=sg, ont_graph=ont, inference="none", allow_warnings=allow_warnings
    )
    return bool(conforms), report, str(text)


def test_the_catalog_conforms_to_dcat_ap_3(live_server: LiveServer) -> None:
    """Mandatory, ranges, recommended and deprecated terms: no violation and no warning. The
    controlled vocabularies: no violation, and only the warnings DCAT-AP cannot avoid for a city
    (its publisher is not an EU institution of the corporate-body table; its territory is not in
    the EU place table, so its spatial coverage is the territory's own IRI with a bounding box)."""
    pages, _ = walk(f"{live_server.url}/catalog.ttl?page_size=10", HYDRA.next, HYDRA.PartialCollectionView)
    one = graph_of(requests.get(f"{live_server.url}/dataset/lyon-proposals.ttl", timeout=30))
    for data in [*pages, one]:
        conforms, _, text = _validate(
            data, ["shapes.ttl", "range.ttl", "shapes_recommended.ttl", "deprecateduris.ttl"], allow_warnings=False
        )
        assert conforms, text[:3000]
        conforms, report, text = _validate(data, ["mdr-vocabularies.shape.ttl"], allow_warnings=True)
        assert conforms, text[:3000]
        for result in report.objects(None, SH.result):  # the results, not their nested details
            path, focus = report.value(result, SH.resultPath), str(report.value(result, SH.focusNode))
            value = str(report.value(result, SH.value))
            assert report.value(result, SH.resultSeverity) == SH.Warning, text[:4000]
            if path == DCT.publisher or path == rdflib.SKOS.inScheme:
                assert "/catalog" in focus or "/catalog" in value  # our agents
            else:
                assert path == DCT.spatial and re.fullmatch(rf"{live_server.url}/id/[a-z0-9-]+", value), (path, value)


def test_formats_by_accept_and_by_suffix_agree(live_server: LiveServer) -> None:
    url = f"{live_server.url}/dataset/rennes-proposals"
    reference = graph_of(requests.get(url + ".ttl", timeout=30))
    for suffix, (media_type, _) in FORMATS.items():
        by_accept = requests.get(url, headers={"Accept": media_type}, timeout=30)
        assert by_accept.headers["Content-Type"].startswith(media_type)
        assert "Accept" in by_accept.headers["Vary"]
        assert isomorphic(graph_of(by_accept, suffix), reference), suffix
        assert isomorphic(graph_of(requests.get(f"{url}.{suffix}", timeout=30), suffix), reference)
    # A catalog page's Turtle (assembled from each dataset's kept Turtle) says what its N-Triples
    # says, the page links (which keep their format's suffix) aside.
    turtle = graph_of(requests.get(f"{live_server.url}/catalog.ttl?page_size=9&page=2", timeout=30))
    nt = requests.get(f"{live_server.url}/catalog.nt?page_size=9&page=2", timeout=30)
    assert isomorphic(turtle, Graph().parse(data=nt.text.replace("/catalog.nt?", "/catalog.ttl?"), format="nt"))
    page = requests.get(f"{live_server.url}/catalog", headers={"Accept": "text/html"}, timeout=30)
    assert page.headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{live_server.url}/catalog", timeout=30).headers["Content-Type"].startswith("text/turtle")


def test_conditional_requests_and_head(live_server: LiveServer) -> None:
    url = f"{live_server.url}/catalog.rdf?page_size=5"
    first = requests.get(url, timeout=30)
    tag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert requests.get(url, headers={"If-None-Match": tag}, timeout=30).status_code == 304
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=30).status_code == 304
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("application/rdf+xml")
    assert head.headers["ETag"] == tag and not head.content
    # Another page is another representation.
    assert requests.get(url + "&page=2", timeout=30).headers["ETag"] != tag


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("page=0", "page"), ("page=x", "page"), ("page_size=1001", "page_size"), ("page=1&page=2", "page"),
     ("modified_since=yesterday", "modified_since")],
)  # fmt: skip
def test_bad_paging_is_a_400_problem(live_server: LiveServer, query: str, parameter: str) -> None:
    resp = requests.get(f"{live_server.url}/catalog.ttl?{query}", timeout=30)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["parameter"] == parameter


def test_unknown_dataset_and_format(live_server: LiveServer) -> None:
    missing = requests.get(f"{live_server.url}/dataset/lyon-nothing", timeout=30)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert requests.get(f"{live_server.url}/catalog.xlsx", timeout=30).status_code == 404
    assert requests.get(f"{live_server.url}/catalog.ttl?page=999", timeout=30).status_code == 200  # empty page


class _JsonLdScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in = tag == "script" and ("type", "application/ld+json") in attrs
        if self._in:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.scripts[-1] += data


def test_the_dataset_page_lists_its_files_and_embeds_schema_org(live_server: LiveServer) -> None:
    page = requests.get(f"{live_server.url}/dataset/lyon-meetings.html", timeout=30)
    assert page.status_code == 200
    parser = _JsonLdScripts()
    parser.feed(page.text)
    (script,) = parser.scripts
    data: dict[str, Any] = json.loads(script)
    assert data["@type"] == "Dataset" and data["@context"] == "https://schema.org/"
    files = {d["contentUrl"] for d in data["distribution"]}
    assert f"{live_server.url}/dumps/lyon/meetings.csv" in files
    for url in files:
        assert url in page.text  # listed for people too
    assert data["license"].startswith("https://www.etalab.gouv.fr/")  # the default licence


def test_a_territory_chooses_its_licence_and_contact(live_server: LiveServer) -> None:
    url = f"{live_server.url}/api/v1/territories/lyon"
    territory = requests.get(url, timeout=30).json()
    changed = {k: v for k, v in territory.items() if k not in READ_ONLY}
    changed |= {"license": "cc-by-4.0", "contact_email": "opendata@lyon.example"}
    resp = requests.put(url, json=changed, headers=live_server.auth("admin"), timeout=30)
    assert resp.status_code == 200, resp.text
    try:
        g = graph_of(requests.get(f"{live_server.url}/dataset/lyon-comments.ttl", timeout=30))
        d = URIRef(f"{live_server.url}/dataset/lyon-comments")
        licence = URIRef("http://publications.europa.eu/resource/authority/licence/CC_BY_4_0")
        assert g.value(d, DCT.license) == licence and (licence, RDF.type, DCT.LicenseDocument) in g
        contact = g.value(d, DCAT.contactPoint)
        assert (
            str(g.value(contact, URIRef("http://www.w3.org/2006/vcard/ns#hasEmail"))) == "mailto:opendata@lyon.example"
        )
    finally:
        requests.put(url, json={**changed, "license": "etalab-2.0"}, headers=live_server.auth("admin"), timeout=30)


def test_a_dataset_whose_records_are_all_deleted_leaves_the_catalog(live_server: LiveServer) -> None:
    api = f"{live_server.url}/api/v1/territories/lyon/rules"
    rules = requests.get(api, params={"limit": 1000}, timeout=30).json()["items"]
    assert rules, "the demo has receivability rules"
    for rule in rules:
        deleted = requests.delete(f"{api}/{rule['id']}", headers=live_server.auth("admin"), timeout=30)
        assert deleted.status_code == 200, deleted.text
    assert requests.get(f"{live_server.url}/dataset/lyon-rules", timeout=30).status_code == 404
    names = datasets_in(
        walk(f"{live_server.url}/catalog.ttl?page_size=1000", HYDRA.next, HYDRA.PartialCollectionView)[0]
    )
    assert f"{live_server.url}/dataset/lyon-rules" not in names
    for rule in rules:  # as they were, for the other tests of the session
        body = {k: v for k, v in rule.items() if k not in READ_ONLY}
        assert requests.put(f"{api}/{rule['id']}", json=body, headers=live_server.auth("admin"), timeout=30).ok


def test_the_catalog_is_rebuilt_for_the_territories_written_to(tmp_path: Path, remote_store_url: str | None) -> None:
    """After a write, the catalog equals one built from scratch; on a store that tracks its
    writes, the other territories' datasets are kept as they were, not read again."""
    from dataclasses import asdict

    from importers.demo import load_demo
    from server.catalog import build_catalog
    from server.model.kinds import KINDS
    from server.records import Op
    from server.services import services

    from .conftest import make_app, unique_base

    app = make_app(tmp_path, remote_store_url, BASE_URI=unique_base("catalog-rebuild"))
    with app.app_context():
        svc = services()
        load_demo(svc.records, scale=0.2)
        before = svc.catalog()
        territory = KINDS["territory"]
        record = svc.records.get("lyon", territory, "lyon")
        changed = {k: v for k, v in record.items() if k not in READ_ONLY} | {"license": "odbl-1.0"}
        ops = [Op(territory, "lyon", "upsert", svc.records.prepare(territory, changed))]
        assert svc.records.write_internal("lyon", ops).written
        after = svc.catalog()
        assert after is not before
        scratch = build_catalog(svc.records, svc.state.territory_ids())
        assert [asdict(d) for d in after.datasets] == [asdict(d) for d in scratch.datasets]
        assert {d.territory.licence.code for d in after.datasets if d.territory.id == "lyon"} == {"odbl-1.0"}
        if svc.store.tracks_writes:
            kept = {d.name: d for d in before.datasets if d.territory.id != "lyon"}
            assert all(kept[d.name] is d for d in after.datasets if d.territory.id != "lyon")
            # What the surfaces prepare again is the written territory's datasets only.
            assert after.rebuilt == {"lyon"}
            assert {d.territory.id for d in after.fresh()} == {"lyon"}
        prepared = svc.prepare_catalog()
        assert prepared is after
        # Prepared: each live dataset's page is written (the Turtle of the pages a harvest reads).
        from server.web.catalog import _dataset_turtle, site

        with app.test_request_context():
            hits = _dataset_turtle.cache_info().hits
            for d in after.live():
                _dataset_turtle(svc.urls.base, site(), d)
            assert _dataset_turtle.cache_info().hits - hits == len(after.live())
    app.extensions["civicfed"].close()
