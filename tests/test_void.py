"""Self-description over a real socket: the VoID description at /.well-known/void (formats,
statistics equal to what SPARQL counts, endpoint, dumps that resolve, vocabularies, example
resources that dereference, one subset per territory) and the home page linking every surface."""

from __future__ import annotations

import html.parser
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import rdflib
import requests
from rdflib.compare import isomorphic

from server.model.examples import record

from .conftest import LiveServer, running_server
from .test_dumps import DOCUMENTED

VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
FOAF = rdflib.Namespace("http://xmlns.com/foaf/0.1/")
CF = rdflib.Namespace("https://w3id.org/civicfed/ns#")
RDF_TYPE = rdflib.RDF.type
#: Namespaces every RDF dataset uses; listing them as vocabularies is optional.
BUILTIN = ("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "http://www.w3.org/2000/01/rdf-schema#")
OFFERED = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}


@pytest.fixture(scope="module")
def void_server(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[LiveServer]:
    """A server whose VoID statistics are never reused once the data changed (VOID_REFRESH=0)."""
    extra = {"CIVICFED_VOID_REFRESH": "0"}
    with running_server(tmp_path_factory.mktemp("void"), remote_store_url, extra_env=extra) as server:
        yield server


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=60, **kwargs)


def void_graph(server: LiveServer, accept: str | None = None) -> rdflib.Graph:
    resp = get(server.url + "/.well-known/void", headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200, resp.text
    media_type = resp.headers["Content-Type"].split(";")[0]
    assert media_type == (accept or "text/turtle")
    return rdflib.Graph().parse(data=resp.content, format=OFFERED[media_type])


def dataset_node(graph: rdflib.Graph) -> rdflib.URIRef:
    """The description of the whole dataset: the void:Dataset with subsets."""
    (node,) = {s for s in graph.subjects(VOID.subset, None)}
    assert (node, RDF_TYPE, VOID.Dataset) in graph
    return node  # type: ignore[return-value]


def one(graph: rdflib.Graph, subject: rdflib.term.Node, predicate: rdflib.URIRef) -> Any:
    values = list(graph.objects(subject, predicate))
    assert len(values) == 1, (subject, predicate, values)
    return values[0]


def partitions(graph: rdflib.Graph, node: rdflib.term.Node, kind: str) -> dict[str, int]:
    """void:classPartition (class → entities) or void:propertyPartition (property → triples)."""
    link, key, count = {
        "class": (VOID.classPartition, VOID["class"], VOID.entities),
        "property": (VOID.propertyPartition, VOID.property, VOID.triples),
    }[kind]
    out: dict[str, int] = {}
    for part in graph.objects(node, link):
        name = str(one(graph, part, key))
        assert name not in out, f"two partitions for {name}"
        out[name] = int(one(graph, part, count))
    return out


def sparql_rows(server: LiveServer, query: str) -> list[dict[str, Any]]:
    resp = get(server.url + "/sparql", params={"query": query, "format": "json"})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]["bindings"]  # type: ignore[no-any-return]


def sparql_counts(server: LiveServer, query: str) -> dict[str, int]:
    return {r["k"]["value"]: int(r["n"]["value"]) for r in sparql_rows(server, query)}


def sparql_count(server: LiveServer, pattern: str) -> int:
    return int(sparql_rows(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ {pattern} }}")[0]["n"]["value"])


def territories(server: LiveServer) -> list[str]:
    return [t["id"] for t in get(server.url + "/api/v1/territories").json()["items"]]


# -- formats --------------------------------------------------------------------------------------


def test_void_is_turtle_by_default_and_other_formats_by_accept(live_server: LiveServer) -> None:
    url = live_server.url + "/.well-known/void"
    default = void_graph(live_server)
    assert len(default) > 100
    anything = get(url, headers={"Accept": "*/*"})
    assert anything.headers["Content-Type"].startswith("text/turtle")
    browser = get(url, headers={"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert browser.status_code == 200 and browser.headers["Content-Type"].startswith("text/turtle")
    for media_type in OFFERED:
        assert isomorphic(void_graph(live_server, media_type), default), media_type
    resp = get(url, headers={"Accept": "application/ld+json"})
    assert "Accept" in resp.headers["Vary"] and resp.headers["Access-Control-Allow-Origin"] == "*"
    assert get(url, headers={"Accept": "image/png"}).status_code == 406
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/turtle")


# -- the dataset ----------------------------------------------------------------------------------


def test_void_describes_the_dataset(live_server: LiveServer) -> None:
    base = live_server.env["CIVICFED_BASE_URI"]
    graph = void_graph(live_server)
    ds = dataset_node(graph)
    assert one(graph, ds, FOAF.homepage) == rdflib.URIRef(base + "/")
    assert {str(t) for t in graph.objects(ds, DCT.title)}
    endpoint = str(one(graph, ds, VOID.sparqlEndpoint))
    assert endpoint == f"{base}/sparql"
    ask = get(endpoint, params={"query": f"ASK {{ ?s a <{CF.Proposal}> }}", "format": "json"})
    assert ask.status_code == 200 and ask.json()["boolean"] is True

    classes, properties = partitions(graph, ds, "class"), partitions(graph, ds, "property")
    assert int(one(graph, ds, VOID.classes)) == len(classes)
    assert int(one(graph, ds, VOID.properties)) == len(properties)
    assert classes[str(CF.Proposal)] > 0 and classes[str(CF.Territory)] == len(territories(live_server))
    assert all(n > 0 for n in [*classes.values(), *properties.values()])
    assert properties[str(RDF_TYPE)] >= sum(classes.values())
    assert int(one(graph, ds, VOID.triples)) >= sum(properties.values()) > 0

    # Every class and property used comes from a vocabulary the description lists.
    vocabularies = {str(v) for v in graph.objects(ds, VOID.vocabulary)}
    assert str(CF) in vocabularies
    unlisted = [
        term
        for term in [*classes, *properties]
        if not term.startswith(BUILTIN) and not any(term.startswith(v) for v in vocabularies)
    ]
    assert not unlisted, f"terms of vocabularies void:vocabulary does not list: {unlisted}"
    assert all(v.endswith(("#", "/")) for v in vocabularies), vocabularies

    space = str(one(graph, ds, VOID.uriSpace))
    assert space == f"{base}/id/"
    examples = [str(e) for e in graph.objects(ds, VOID.exampleResource)]
    assert examples and all(e.startswith(space) for e in examples)


def test_void_subsets_one_per_territory_with_dumps_that_resolve(live_server: LiveServer) -> None:
    base = live_server.env["CIVICFED_BASE_URI"]
    graph = void_graph(live_server)
    ds = dataset_node(graph)
    subsets = {str(s): s for s in graph.objects(ds, VOID.subset)}
    assert set(subsets) == {f"{base}/.well-known/void#{t}" for t in territories(live_server)}
    total = 0
    for territory in territories(live_server):
        subset = subsets[f"{base}/.well-known/void#{territory}"]
        assert (subset, RDF_TYPE, VOID.Dataset) in graph
        assert one(graph, subset, DCT.spatial) == rdflib.URIRef(f"{base}/id/{territory}")
        assert one(graph, subset, VOID.sparqlEndpoint) == rdflib.URIRef(f"{base}/sparql")
        triples = int(one(graph, subset, VOID.triples))
        assert triples > 1000
        total += triples
        dumps = {str(d) for d in graph.objects(subset, VOID.dataDump)}
        documented = {f"{base}/dumps/{territory}.{fmt}" for fmt in ("nq", "trig")}
        documented |= {
            f"{base}/dumps/{territory}/{plural}.{fmt}" for plural, (formats, _) in DOCUMENTED.items() for fmt in formats
        }
        assert dumps == documented
        for url in sorted(dumps):
            resp = get(url, headers={"Accept-Encoding": "gzip"})
            assert resp.status_code == 200 and resp.content, url
    assert int(one(graph, ds, VOID.triples)) >= total


def test_void_example_resources_dereference(live_server: LiveServer) -> None:
    graph = void_graph(live_server)
    ds = dataset_node(graph)
    classes = set(partitions(graph, ds, "class"))
    examples = list(graph.objects(ds, VOID.exampleResource))
    assert examples
    for example in examples:
        resp = get(str(example), headers={"Accept": "text/turtle"})
        assert resp.status_code == 200, (example, resp.status_code)
        assert resp.headers["Content-Type"].startswith("text/turtle")
        described = rdflib.Graph().parse(data=resp.content, format="turtle")
        types = {str(t) for t in described.objects(example, RDF_TYPE)}
        assert types and types <= classes, (example, types)


def test_void_statistics_are_what_sparql_counts(void_server: LiveServer) -> None:
    """void:triples, the class and property partitions and each subset's triples equal the same
    aggregates asked of /sparql, over the public graphs, and follow a write."""
    base = void_server.env["CIVICFED_BASE_URI"]

    def check() -> int:
        graph = void_graph(void_server)
        ds = dataset_node(graph)
        total = sparql_count(void_server, "GRAPH ?g { ?s ?p ?o }")
        assert int(one(graph, ds, VOID.triples)) == total
        classes = sparql_counts(
            void_server, "SELECT ?k (COUNT(DISTINCT ?s) AS ?n) WHERE { GRAPH ?g { ?s a ?k } } GROUP BY ?k"
        )
        assert partitions(graph, ds, "class") == classes
        properties = sparql_counts(
            void_server, "SELECT ?k (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?k ?o } } GROUP BY ?k"
        )
        assert partitions(graph, ds, "property") == properties
        for territory in territories(void_server):
            subset = rdflib.URIRef(f"{base}/.well-known/void#{territory}")
            own = sparql_count(void_server, f"GRAPH <{base}/graph/{territory}> {{ ?s ?p ?o }}")
            assert int(one(graph, subset, VOID.triples)) == own, territory
        return total

    before = check()
    local_id = f"void-{uuid.uuid4().hex[:8]}"
    data = record("proposal", id=local_id, author_id=None, author="void-tester", handled_by=None, process="bp-2024")
    resp = requests.put(
        f"{void_server.url}/api/v1/territories/lyon/proposals/{local_id}",
        json=data,
        headers=void_server.auth(),
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    assert check() > before


# -- home page ------------------------------------------------------------------------------------


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def test_home_page_links_every_surface(live_server: LiveServer) -> None:
    home = get(live_server.url + "/", headers={"Accept": "text/html"})
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    parser = Links()
    parser.feed(home.text)
    links = {urllib.parse.urlsplit(urllib.parse.urljoin(home.url, h)).path for h in parser.hrefs}
    required = {"/sparql", "/api/v1/docs", "/api/v1/openapi.json", "/.well-known/void", "/ns"}
    for territory in territories(live_server):
        required |= {f"/id/{territory}", f"/dumps/{territory}.nq", f"/dumps/{territory}.trig", f"/ldes/{territory}"}
        assert any(link.startswith(f"/dumps/{territory}/") for link in links), territory
    assert required <= links, f"not linked from /: {sorted(required - links)}"
    for href in sorted(set(parser.hrefs)):
        url = urllib.parse.urljoin(home.url, href)
        resp = get(url, headers={"Accept": "text/html,*/*;q=0.1"})
        assert resp.status_code == 200, (url, resp.status_code)
