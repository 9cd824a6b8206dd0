"""The SPARQL 1.1 endpoint over a real socket, with real clients (SPARQLWrapper, rdflib's
SPARQLStore, requests), and the W3C SPARQL 1.1 Protocol query tests."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import re
import time
import urllib.parse
from typing import Any

import pytest
import rdflib
import requests
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, JSONLD, N3, RDFXML, TSV, TURTLE, XML, SPARQLWrapper

from .conftest import LiveServer

CF = "https://w3id.org/civicfed/ns#"
PROPOSALS = f"SELECT ?p ?title WHERE {{ ?p a <{CF}Proposal> ; <http://purl.org/dc/terms/title> ?title }} LIMIT 5"
CONSTRUCT = f"CONSTRUCT {{ ?p a <{CF}Proposal> }} WHERE {{ ?p a <{CF}Proposal> }} LIMIT 5"


def wrapper(server: LiveServer, query: str, fmt: str, method: str = "GET") -> Any:
    sparql = SPARQLWrapper(server.url + "/sparql")
    sparql.setQuery(query)
    sparql.setReturnFormat(fmt)
    sparql.setMethod(method)
    return sparql.query()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("fmt", [JSON, XML, CSV, TSV])
def test_select_in_every_format(live_server: LiveServer, fmt: str, method: str) -> None:
    result = wrapper(live_server, PROPOSALS, fmt, method)
    data = result.convert()
    if fmt == JSON:
        rows = data["results"]["bindings"]
        assert len(rows) == 5 and rows[0]["p"]["type"] == "uri"
    elif fmt == XML:
        assert len(data.getElementsByTagName("result")) == 5
    elif fmt == CSV:
        rows = list(csv.reader(io.StringIO(data.decode())))
        assert rows[0] == ["p", "title"] and len(rows) == 6
    else:
        lines = data.decode().strip().split("\n")
        assert lines[0] == "?p\t?title" and len(lines) == 6 and lines[1].startswith("<http")


@pytest.mark.parametrize("fmt", [JSON, XML])
def test_ask(live_server: LiveServer, fmt: str) -> None:
    data = wrapper(live_server, f"ASK {{ ?p a <{CF}Proposal> }}", fmt).convert()
    value = data["boolean"] if fmt == JSON else data.getElementsByTagName("boolean")[0].firstChild.data == "true"
    assert value is True


@pytest.mark.parametrize("fmt", [TURTLE, N3, RDFXML, JSONLD])
@pytest.mark.parametrize("form", ["construct", "describe"])
def test_graph_queries_in_every_format(live_server: LiveServer, fmt: str, form: str) -> None:
    query = (
        CONSTRUCT
        if form == "construct"
        else (f"DESCRIBE ?p WHERE {{ ?p a <{CF}Proposal> ; <http://purl.org/dc/terms/identifier> 'prop-00001' }}")
    )
    graph = wrapper(live_server, query, fmt).convert()
    if not isinstance(graph, rdflib.Graph):
        graph = rdflib.Graph().parse(data=graph, format={N3: "n3", JSONLD: "json-ld"}.get(fmt, fmt))
    assert len(graph) >= (5 if form == "construct" else 3)


def test_graph_results_keep_standard_datatypes(live_server: LiveServer) -> None:
    """WKT geometries come back as geo:wktLiteral whatever the store (Virtuoso keeps its own type)."""
    wkt = "http://www.opengis.net/ont/geosparql#asWKT"
    query = f"CONSTRUCT {{ ?geometry <{wkt}> ?w }} WHERE {{ ?geometry <{wkt}> ?w }} LIMIT 5"
    resp = requests.get(live_server.url + "/sparql", params={"query": query, "format": "ntriples"}, timeout=30)
    graph = rdflib.Graph().parse(data=resp.text, format="nt")
    datatypes = {o.datatype for o in graph.objects()}
    assert len(graph) == 5 and datatypes == {rdflib.URIRef("http://www.opengis.net/ont/geosparql#wktLiteral")}


def test_rdflib_sparqlstore(live_server: LiveServer) -> None:
    store = SPARQLStore(live_server.url + "/sparql")
    graph = rdflib.ConjunctiveGraph(store=store)
    rows = list(graph.query(PROPOSALS))
    assert len(rows) == 5 and all(isinstance(r[0], rdflib.URIRef) for r in rows)


def test_protocol_forms_and_errors(live_server: LiveServer) -> None:
    url = live_server.url + "/sparql"
    ask = "ASK { ?s ?p ?o }"
    assert (
        requests.post(
            url, data={"query": ask}, headers={"Accept": "application/sparql-results+json"}, timeout=30
        ).json()["boolean"]
        is True
    )
    assert (
        requests.post(
            url,
            data=ask.encode(),
            headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"},
            timeout=30,
        ).json()["boolean"]
        is True
    )
    bad = requests.get(url, params={"query": "SELECT * WHERE { ?s ?p"}, timeout=30)
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("text/plain")
    assert re.search(r"line \d+|\d+:\d+", bad.text), bad.text  # says where (Oxigraph 1:22, Virtuoso line 2)
    for update in ({"update": "DROP ALL"},):
        assert requests.post(url, data=update, timeout=30).status_code == 403
    assert (
        requests.post(
            url, data=b"DROP ALL", headers={"Content-Type": "application/sparql-update"}, timeout=30
        ).status_code
        == 403
    )
    assert requests.get(url, params={"query": "DELETE WHERE { ?s ?p ?o }"}, timeout=30).status_code == 403
    assert requests.post(url, data=b"ASK {}", headers={"Content-Type": "text/plain"}, timeout=30).status_code == 415
    assert requests.get(url, params={"query": ask}, headers={"Accept": "image/png"}, timeout=30).status_code == 406
    assert (
        requests.get(url, params={"query": ask, "format": "csv"}, timeout=30)
        .headers["Content-Type"]
        .startswith("text/csv")
    )


def test_a_query_the_store_refuses_is_the_clients_error(live_server: LiveServer) -> None:
    # SPARQL 1.1 allows a NUL character in a string; Oxigraph takes it, Virtuoso's compiler
    # refuses it (HTTP 500, SQL state 37000), which was answered 503 as if the store were down.
    resp = requests.post(
        live_server.url + "/sparql",
        data={"query": 'ASK { ?s ?p "a\x00b" }'},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    if resp.status_code == 200:
        assert resp.json()["boolean"] is False
    else:
        assert resp.status_code == 400, resp.text
        assert "refused" in resp.text and "SPARQL query:" not in resp.text


def test_internal_graphs_are_never_read(live_server: LiveServer) -> None:
    """Votes and indexes live in internal graphs: no dataset clause, protocol parameter or GRAPH
    pattern reaches them, alone or combined (Virtuoso merges a query's FROM with the protocol's)."""
    url = live_server.url + "/sparql"
    base = live_server.env["CIVICFED_BASE_URI"]
    private, lyon = f"{base}/_internal/private/lyon", f"{base}/graph/lyon"
    rows = "SELECT ?s ?p ?o"
    for params in (
        {"query": f"{rows} WHERE {{ GRAPH <{private}> {{ ?s ?p ?o }} }} LIMIT 3"},
        {"query": f"{rows} FROM <{private}> WHERE {{ ?s ?p ?o }} LIMIT 3"},
        {"query": f"PREFIX i: <{base}/_internal/> {rows} FROM i:private/lyon WHERE {{ ?s ?p ?o }} LIMIT 3"},
        {"query": f"{rows} WHERE {{ ?s ?p ?o }} LIMIT 3", "default-graph-uri": private},
        {"query": f"{rows} WHERE {{ ?s a <{CF}Vote> ; ?p ?o }} LIMIT 3"},
        {"query": f"{rows} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} LIMIT 3", "named-graph-uri": private},
        {
            "query": f"{rows} FROM NAMED <{private}> WHERE {{ GRAPH <{private}> {{ ?s ?p ?o }} }} LIMIT 3",
            "default-graph-uri": lyon,
            "named-graph-uri": lyon,
        },
        {"query": f"{rows} FROM NAMED <{private}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} LIMIT 3"},
    ):
        resp = requests.get(url, params={**params, "format": "json"}, timeout=30)
        assert resp.status_code == 200, (params, resp.text)
        assert resp.json()["results"]["bindings"] == [], params
    for query, reason in (
        (f"SELECT * WHERE {{ SERVICE <{url}> {{ GRAPH <{private}> {{ ?s ?p ?o }} }} }}", "SERVICE"),
        (f"DEFINE input:default-graph-uri <{private}> SELECT * WHERE {{ ?s ?p ?o }}", "DEFINE"),
    ):
        resp = requests.get(url, params={"query": query}, timeout=30)
        assert resp.status_code == 400 and reason in resp.text, resp.text


def test_query_dataset_clauses_are_honoured(live_server: LiveServer) -> None:
    """FROM / FROM NAMED in the query pick public graphs (prefixes resolved); the protocol's
    default-graph-uri overrides them, as the SPARQL 1.1 Protocol says."""
    url = live_server.url + "/sparql"
    base = live_server.env["CIVICFED_BASE_URI"]

    def count(query: str, **params: str) -> int:
        body = requests.get(url, params={"query": query, "format": "json", **params}, timeout=30).json()
        return int(body["results"]["bindings"][0]["n"]["value"])

    everything = count("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    lyon = count(f"PREFIX g: <{base}/graph/> SELECT (COUNT(*) AS ?n) FROM g:lyon WHERE {{ ?s ?p ?o }}")
    grenoble = count(f"SELECT (COUNT(*) AS ?n) FROM <{base}/graph/grenoble> WHERE {{ ?s ?p ?o }}")
    assert 0 < lyon < everything and 0 < grenoble < everything, (lyon, grenoble, everything)
    named = count(f"SELECT (COUNT(*) AS ?n) FROM NAMED <{base}/graph/lyon> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}")
    assert named == lyon, (named, lyon)
    assert count(f"SELECT (COUNT(*) AS ?n) FROM NAMED <{base}/graph/lyon> WHERE {{ ?s ?p ?o }}") == 0
    overridden = count(
        f"SELECT (COUNT(*) AS ?n) FROM <{base}/graph/lyon> WHERE {{ ?s ?p ?o }}",
        **{"default-graph-uri": f"{base}/graph/grenoble"},
    )
    assert overridden == grenoble


def test_service_description_and_editor(live_server: LiveServer) -> None:
    url = live_server.url + "/sparql"
    sd = requests.get(url, headers={"Accept": "text/turtle"}, timeout=30)
    graph = rdflib.Graph().parse(data=sd.text, format="turtle")
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (rdflib.URIRef(url), sd.endpoint, rdflib.URIRef(url)) in graph or (None, sd.endpoint, None) in graph
    assert (None, sd.supportedLanguage, sd.SPARQL11Query) in graph
    assert any(graph.objects(None, sd.namedGraph))
    page = requests.get(url, headers={"Accept": "text/html,application/xhtml+xml"}, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Top 10 proposals" in page.text
    # The editor (YASGUI) is committed under server/static/vendor/yasgui/: no install step, no network.
    assert "new Yasgui(" in page.text
    assets = re.findall(r'(?:href|src)="(/static/vendor/yasgui/[^"]+)"', page.text)
    assert sorted(assets) == ["/static/vendor/yasgui/yasgui.min.css", "/static/vendor/yasgui/yasgui.min.js"], assets
    script = requests.get(live_server.url + "/static/vendor/yasgui/yasgui.min.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert len(script.content) > 100_000 and b"Yasgui" in script.content
    style = requests.get(live_server.url + "/static/vendor/yasgui/yasgui.min.css", timeout=30)
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/css")
    assert len(style.content) > 10_000
    licence = requests.get(live_server.url + "/static/vendor/yasgui/LICENSE.txt", timeout=30)
    assert licence.status_code == 200 and "MIT License" in licence.text


def test_cors(live_server: LiveServer) -> None:
    url = live_server.url + "/sparql"
    pre = requests.options(
        url, headers={"Origin": "https://yasgui.example", "Access-Control-Request-Method": "POST"}, timeout=30
    )
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    got = requests.get(url, params={"query": "ASK {}"}, headers={"Origin": "https://x.example"}, timeout=30)
    assert got.headers["Access-Control-Allow-Origin"] == "*"


def test_row_cap(sparql_server: LiveServer) -> None:
    resp = requests.get(
        sparql_server.url + "/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }", "format": "json"}, timeout=60
    )
    assert resp.status_code == 200
    assert len(resp.json()["results"]["bindings"]) == 50
    assert resp.headers["X-SPARQL-MaxRows"] == "50"


def test_explosive_query_is_stopped_and_the_server_stays_responsive(sparql_server: LiveServer) -> None:
    explosive = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    url = sparql_server.url
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        slow = pool.submit(requests.get, url + "/sparql", params={"query": explosive}, timeout=60)
        time.sleep(0.5)
        quick_start = time.monotonic()
        quick = requests.get(url + "/api/v1/territories/lyon/proposals?limit=5", timeout=30)
        quick_time = time.monotonic() - quick_start
        answer = slow.result()
    assert quick.status_code == 200 and quick_time < 2.0
    assert answer.status_code == 503 and "stopped" in answer.text
    assert time.monotonic() - started < 10
    after = requests.get(url + "/sparql", params={"query": "ASK { ?s ?p ?o }", "format": "json"}, timeout=30)
    assert after.json()["boolean"] is True


# -- W3C SPARQL 1.1 Protocol, query tests (sparql11/protocol/manifest.ttl) ----------------------
# Every query test of the manifest, positive and negative. Its data graphs (kasei.us data0-3) are
# loaded as public source graphs of the server under test and their names mapped into its graph
# space, since the endpoint serves only the graphs this instance publishes. The manifest's update
# tests do not apply: the endpoint is read-only (every update gets 403, tested above).

W3C_POSITIVE = [
    # (name, method, path, content type, body, expected format, expected boolean)
    (
        "query_post_form",
        "POST",
        "/sparql?default-graph-uri={d0q}",
        "application/x-www-form-urlencoded",
        "query=ASK%20%7B%7D",
        "boolean",
        True,
    ),
    (
        "query_dataset_default_graphs_get",
        "GET",
        "/sparql?query={ask12q}&default-graph-uri={d1q}&default-graph-uri={d2q}",
        None,
        None,
        "boolean",
        True,
    ),
    (
        "query_dataset_default_graphs_post",
        "POST",
        "/sparql?default-graph-uri={d1q}&default-graph-uri={d2q}",
        "application/sparql-query",
        "ASK {{ <{d1}> a ?type . <{d2}> a ?type . }}",
        "boolean",
        True,
    ),
    (
        "query_dataset_named_graphs_post",
        "POST",
        "/sparql?named-graph-uri={d1q}&named-graph-uri={d2q}",
        "application/sparql-query",
        "ASK {{ GRAPH ?g1 {{ <{d1}> a ?type }} GRAPH ?g2 {{ <{d2}> a ?type }} }}",
        "boolean",
        True,
    ),
    (
        "query_dataset_named_graphs_get",
        "GET",
        "/sparql?query={askg12q}&named-graph-uri={d1q}&named-graph-uri={d2q}",
        None,
        None,
        "boolean",
        True,
    ),
    (
        "query_dataset_full",
        "POST",
        "/sparql?default-graph-uri={d3q}&named-graph-uri={d1q}&named-graph-uri={d2q}",
        "application/sparql-query",
        "ASK {{ <{d3}> a ?type GRAPH ?g1 {{ <{d1}> a ?type }} GRAPH ?g2 {{ <{d2}> a ?type }} }}",
        "boolean",
        True,
    ),
    (
        "query_multiple_dataset",
        "POST",
        "/sparql?named-graph-uri={d1q}&named-graph-uri={d2q}",
        "application/sparql-query",
        "ASK FROM <{d3}> {{ GRAPH ?g1 {{ <{d1}> a ?type }} GRAPH ?g2 {{ <{d2}> a ?type }} }}",
        "boolean",
        True,
    ),
    ("query_get", "GET", "/sparql?query=ASK%20%7B%7D&default-graph-uri={d0q}", None, None, "boolean", True),
    (
        "query_content_type_select",
        "POST",
        "/sparql?default-graph-uri={d0q}",
        "application/sparql-query",
        "SELECT (1 AS ?value) {{}}",
        "tabular",
        None,
    ),
    (
        "query_content_type_ask",
        "POST",
        "/sparql?default-graph-uri={d0q}",
        "application/sparql-query",
        "ASK {{}}",
        "boolean",
        None,
    ),
    (
        "query_content_type_describe",
        "POST",
        "/sparql?default-graph-uri={d0q}",
        "application/sparql-query",
        "DESCRIBE <http://example.org/>",
        "RDF",
        None,
    ),
    (
        "query_content_type_construct",
        "POST",
        "/sparql?default-graph-uri={d0q}",
        "application/sparql-query",
        "CONSTRUCT {{ <http://example.org/s> <http://example.org/p> 1 }} WHERE {{}}",
        "RDF",
        None,
    ),
    ("query_post_direct", "POST", "/sparql", "application/sparql-query", "ASK {{}}", "boolean", None),
]

W3C_NEGATIVE = [
    # (name, method, path, content type, body)
    ("bad_query_method", "PUT", "/sparql?query=ASK%20%7B%7D", "application/x-www-form-urlencoded", None),
    ("bad_multiple_queries", "GET", "/sparql?query=ASK%20%7B%7D&query=SELECT%20%2A%20%7B%7D", None, None),
    ("bad_query_wrong_media_type", "POST", "/sparql", "text/plain", b"ASK {}"),
    ("bad_query_missing_form_type", "POST", "/sparql", None, b"query=ASK%20%7B%7D"),
    ("bad_query_missing_direct_type", "POST", "/sparql", None, b"ASK {}"),
    ("bad_query_non_utf8", "POST", "/sparql", "application/sparql-query; charset=UTF-16", "ASK {}".encode("utf-16")),
    ("bad_query_syntax", "GET", "/sparql?query=ASK%20%7B", None, None),
]


def w3c_names(base: str) -> dict[str, str]:
    """Placeholders of the cases above: the manifest's graphs, mapped, raw and URL-encoded."""
    quote = lambda v: urllib.parse.quote(v, safe="")  # noqa: E731
    names: dict[str, str] = {}
    for i in range(4):
        names[f"d{i}"] = f"{base}/graph/source/w3c-data{i}"
        names[f"d{i}q"] = quote(names[f"d{i}"])
    names["ask12q"] = quote(f"ASK {{ <{names['d1']}> a ?type . <{names['d2']}> a ?type . }}")
    names["askg12q"] = quote(
        f"ASK {{ GRAPH ?g1 {{ <{names['d1']}> a ?type }} GRAPH ?g2 {{ <{names['d2']}> a ?type }} }}"
    )
    return names


@pytest.mark.parametrize("case", W3C_POSITIVE, ids=[c[0] for c in W3C_POSITIVE])
def test_w3c_protocol_positive(w3c_server: LiveServer, case: tuple[Any, ...]) -> None:
    name, method, path, content_type, body, expected_format, expected_boolean = case
    names = w3c_names(w3c_server.env["CIVICFED_BASE_URI"])
    headers = {"Content-Type": content_type} if content_type else {}
    data = body.format(**names).encode() if body else None
    resp = requests.request(method, w3c_server.url + path.format(**names), data=data, headers=headers, timeout=30)
    assert 200 <= resp.status_code < 400, (name, resp.status_code, resp.text)
    media = resp.headers["Content-Type"].split(";")[0]
    if expected_format == "boolean":
        assert media in ("application/sparql-results+json", "application/sparql-results+xml")
        if expected_boolean is not None:
            assert resp.json()["boolean"] is expected_boolean, name
    elif expected_format == "tabular":
        assert media in (
            "application/sparql-results+json",
            "application/sparql-results+xml",
            "text/csv",
            "text/tab-separated-values",
        )
    else:
        assert media in ("application/rdf+xml", "text/turtle", "application/n-triples", "application/ld+json")


@pytest.mark.parametrize("case", W3C_NEGATIVE, ids=[c[0] for c in W3C_NEGATIVE])
def test_w3c_protocol_negative(live_server: LiveServer, case: tuple[Any, ...]) -> None:
    name, method, path, content_type, body = case
    request = requests.Request(method, live_server.url + path, data=body).prepare()
    request.headers.pop("Content-Type", None)
    if content_type:
        request.headers["Content-Type"] = content_type
    resp = requests.Session().send(request, timeout=30)
    assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.text)
