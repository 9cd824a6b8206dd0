"""The SPARQL 1.1 endpoint over a real socket, with real clients (SPARQLWrapper, rdflib's
SPARQLStore, requests), and the W3C SPARQL 1.1 Protocol query tests."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import re
import string
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rdflib
import requests
from flask.testing import FlaskClient
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, JSONLD, N3, RDFXML, TSV, TURTLE, XML, SPARQLWrapper

from server.privacy import pseudonym
from server.sparql import query as sparql_parse

from .conftest import REMOTE, LiveServer, Territory, drop_state_schema, make_app, put, running_server

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
        {"query": f"PREFIX i: <{base}/_internal/> {rows} FROM i:private\\/lyon WHERE {{ ?s ?p ?o }} LIMIT 3"},
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


# -- the dataset of a query, read from a parse of it ---------------------------------------------
# Each query below has lyon's private graph (individual votes) as its dataset, written in a way a
# text scanner misreads: a quote in an IRI or in a comment taken for a string, a comment ended by a
# carriage return, escapes, prefixed names, BASE, case, tabs. The private graph is read as an empty
# graph whatever the store: no row, no vote (Virtuoso merges a query's FROM with the protocol's).
PRIVATE_DATASET = [
    ("quote-in-iri", "PREFIX a: <http://x/'> SELECT ?s ?p ?o FROM <$private> WHERE { ?s ?p ?o } #'"),
    (
        "quote-in-iri-votes",
        "PREFIX a: <http://x/'> PREFIX schema: <https://schema.org/> SELECT ?v ?agent ?obj FROM <$private> "
        "WHERE { ?v a schema:VoteAction ; schema:agent ?agent ; schema:object ?obj } #'",
    ),
    ("long-quote-in-comment", "SELECT ?s ?p ?o # '''\nFROM <$private>\n# '''\nWHERE { ?s ?p ?o }"),
    ("long-double-quote-in-comment", 'SELECT ?s ?p ?o # """\nFROM <$private>\n# """\nWHERE { ?s ?p ?o }'),
    ("quotes-in-comments", "SELECT ?s ?p ?o # it's \"\nFROM <$private> # ' \"\nWHERE { ?s ?p ?o }"),
    ("comment-ended-by-cr", "SELECT ?s ?p ?o # a comment\rFROM <$private>\nWHERE { ?s ?p ?o }"),
    (
        "escaped-quote-in-long-string",
        'SELECT ?s ?p ?o (STRLEN("""a\\"""") AS ?n) FROM <$private> WHERE { ?s ?p ?o FILTER(?o != "x") }',
    ),
    (
        "escaped-quote-in-long-single-quoted-string",
        "SELECT ?s ?p ?o (STRLEN('''a\\'''') AS ?n) FROM <$private> WHERE { ?s ?p ?o FILTER(?o != 'x') }",
    ),
    ("escaped-from", "SELECT ?s ?p ?o \\u0046ROM <$private> WHERE { ?s ?p ?o }"),
    ("escaped-iri", "SELECT ?s ?p ?o FROM <$base/_internal/priv\\u0061te/lyon> WHERE { ?s ?p ?o }"),
    ("from-named", "PREFIX a: <http://x/'> SELECT ?s ?p ?o FROM NAMED <$private> WHERE { GRAPH ?g { ?s ?p ?o } } #'"),
    (
        "prefixed-name",
        "PREFIX a: <http://x/'> PREFIX p: <$base/_internal/private/> SELECT ?s ?p ?o FROM p:lyon WHERE { ?s ?p ?o } #'",
    ),
    (
        "prefixed-name-with-escape",
        "PREFIX p: <$base/_internal/> SELECT ?s ?p ?o FROM p:private\\/lyon WHERE { ?s ?p ?o }",
    ),
    (
        "base-relative",
        "BASE <$base/_internal/private/> PREFIX a: <http://x/'> SELECT ?s ?p ?o FROM <lyon> WHERE { ?s ?p ?o } #'",
    ),
    (
        "second-base",
        "BASE <$base/graph/> BASE <$base/_internal/private/> SELECT ?s ?p ?o FROM <lyon> WHERE { ?s ?p ?o }",
    ),
    ("lower-case", 'select ?s ?p ?o # """\nfrom <$private>\n# """\nwhere { ?s ?p ?o }'),
    ("tabs", "SELECT\t?s ?p ?o\tFROM\t<$private>\tWHERE\t{ ?s ?p ?o }"),
    ("ask", "PREFIX a: <http://x/'> ASK FROM <$private> WHERE { ?s ?p ?o } #'"),
    ("construct", "PREFIX a: <http://x/'> CONSTRUCT { ?s ?p ?o } FROM <$private> WHERE { ?s ?p ?o } #'"),
    ("describe", "PREFIX a: <http://x/'> DESCRIBE ?s FROM <$private> WHERE { ?s ?p ?o } #'"),
]
# FROM / FROM NAMED of lyon's public graph, written in such ways: lyon's triples are counted, only them.
LYON_DATASET = [
    ("quote-in-iri", "PREFIX a: <http://x/'> SELECT (COUNT(*) AS ?n) FROM <$lyon> WHERE { ?s ?p ?o } #'"),
    ("comment-ended-by-cr", "SELECT (COUNT(*) AS ?n) # a comment\rFROM <$lyon>\nWHERE { ?s ?p ?o }"),
    ("escaped-iri", "SELECT (COUNT(*) AS ?n) FROM <$base/graph/ly\\u006Fn> WHERE { ?s ?p ?o }"),
    ("prefixed-name", "PREFIX g: <$base/graph/> SELECT (COUNT(*) AS ?n) FROM g:lyon WHERE { ?s ?p ?o }"),
    (
        "second-base",
        "BASE <http://elsewhere.example/> BASE <$base/graph/> SELECT (COUNT(*) AS ?n) FROM <lyon> WHERE { ?s ?p ?o }",
    ),
    (
        "from-named",
        "PREFIX a: <http://x/'> SELECT (COUNT(*) AS ?n) FROM NAMED <$lyon> WHERE { GRAPH ?g { ?s ?p ?o } } #'",
    ),
    ("lower-case-tabs", "select\t(count(*) as ?n)\tfrom\t<$lyon>\twhere { ?s ?p ?o }"),
    ("with-the-private-graph", "SELECT (COUNT(*) AS ?n) FROM <$lyon> FROM <$private> WHERE { ?s ?p ?o }"),
]
# Not dataset clauses: the query runs on every public graph.
NO_DATASET = [
    ("from-in-string", 'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o BIND("FROM <$private>" AS ?x) }'),
    ("from-in-long-string", 'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o BIND("""\nFROM <$private>\n""" AS ?x) }'),
    (
        "from-in-long-single-quoted-string",
        "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o BIND('''\nFROM <$private>\n''' AS ?x) }",
    ),
    ("escaped-quotes-in-string", 'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o BIND("\\" FROM <$private> \\"" AS ?x) }'),
    ("from-in-comment", "SELECT (COUNT(*) AS ?n) # FROM <$private>\nWHERE { ?s ?p ?o }"),
    ("from-as-variable", "SELECT (COUNT(?from) AS ?n) WHERE { ?from ?p ?o }"),
]
# Not SPARQL 1.1, or not run here: refused (400) before any store sees them.
REFUSED = [
    ("double-quote-in-iri", 'PREFIX a: <http://x/"> SELECT ?s ?p ?o FROM <$private> WHERE { ?s ?p ?o } #"'),
    ("escape-spelling-an-escape", "SELECT ?s ?p ?o # \\u005Cu000A FROM <$private>\nWHERE { ?s ?p ?o }"),
    ("slash-in-prefixed-name", "PREFIX p: <$base/_internal/> SELECT ?s ?p ?o FROM p:private/lyon WHERE { ?s ?p ?o }"),
    ("define", "DEFINE input:default-graph-uri <$private> SELECT ?s ?p ?o WHERE { ?s ?p ?o }"),
    ("service", "PREFIX a: <http://x/'> SELECT ?s ?p ?o WHERE { service <$base/sparql> { ?s ?p ?o } } #'"),
]
EITHER = "application/sparql-results+json, application/n-triples;q=0.9"


def sparql_text(template: str, base: str) -> str:
    graphs = {"private": f"{base}/_internal/private/lyon", "lyon": f"{base}/graph/lyon"}
    return string.Template(template).substitute(base=base, **graphs)


#: Valid SPARQL 1.1 that a SPARQL server may refuse: Virtuoso takes one BASE, first.
STORE_MAY_REFUSE = {"second-base"}


def store_refused(status: int, body: str, case: str) -> bool:
    """One of the queries a remote store may refuse, refused by it: 400, nothing read."""
    return REMOTE and case in STORE_MAY_REFUSE and status == 400 and "the query was refused" in body


def assert_read_nothing(status: int, content_type: str, body: str, case: str) -> None:
    """An answer over an empty dataset: no solution, false, or no triple."""
    if store_refused(status, body, case):
        return
    assert status == 200, (case, body)
    if content_type.startswith("application/sparql-results+json"):
        data = json.loads(body)
        assert data.get("boolean", False) is False and not data.get("results", {}).get("bindings"), (case, body)
    else:
        assert content_type.startswith("application/n-triples") and not body.strip(), (case, body)
    assert "/vote/" not in body, (case, body)


@pytest.mark.parametrize("case", PRIVATE_DATASET, ids=[c[0] for c in PRIVATE_DATASET])
def test_private_graph_is_never_read_whatever_the_syntax(live_server: LiveServer, case: tuple[str, str]) -> None:
    name, template = case
    query = sparql_text(template, live_server.env["CIVICFED_BASE_URI"])
    url = live_server.url + "/sparql"
    answers = [
        requests.get(url, params={"query": query}, headers={"Accept": EITHER}, timeout=30),
        requests.post(
            url,
            data=query.encode(),
            headers={"Content-Type": "application/sparql-query", "Accept": EITHER},
            timeout=30,
        ),
        # Given a public dataset by the protocol: it replaces the query's (Virtuoso merged them).
        requests.get(
            url,
            params={"query": query, "default-graph-uri": live_server.env["CIVICFED_BASE_URI"] + "/_internal/empty"},
            headers={"Accept": EITHER},
            timeout=30,
        ),
    ]
    for resp in answers:
        assert_read_nothing(resp.status_code, resp.headers["Content-Type"], resp.text, name)


def test_private_votes_query_with_sparqlwrapper(live_server: LiveServer) -> None:
    """The query that read individual votes on Virtuoso (a quote in an IRI hid its FROM)."""
    query = sparql_text(PRIVATE_DATASET[1][1], live_server.env["CIVICFED_BASE_URI"])
    rows = wrapper(live_server, query, JSON).convert()["results"]["bindings"]
    assert rows == []
    public = wrapper(live_server, query.replace("_internal/private", "graph"), JSON).convert()["results"]["bindings"]
    assert public == []  # votes are never in a public graph either
    # The same trick around any pattern: nothing (it read every public graph on the embedded store).
    query = sparql_text(PRIVATE_DATASET[0][1], live_server.env["CIVICFED_BASE_URI"])
    assert wrapper(live_server, query, JSON, "POST").convert()["results"]["bindings"] == []


DATASET_COUNTS = [("lyon", *c) for c in LYON_DATASET] + [("everything", *c) for c in NO_DATASET]


@pytest.mark.parametrize("case", DATASET_COUNTS, ids=[f"{c[0]}-{c[1]}" for c in DATASET_COUNTS])
def test_dataset_clauses_count_what_they_name(live_server: LiveServer, case: tuple[str, str, str]) -> None:
    """A FROM of one public graph counts that graph only (a missed FROM counted every graph)."""
    expected, name, template = case
    base = live_server.env["CIVICFED_BASE_URI"]

    def count(query: str) -> int | None:
        resp = requests.get(live_server.url + "/sparql", params={"query": query, "format": "json"}, timeout=30)
        if store_refused(resp.status_code, resp.text, name):
            return None
        assert resp.status_code == 200, (name, resp.text)
        return int(resp.json()["results"]["bindings"][0]["n"]["value"])

    lyon = count(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{base}/graph/lyon> {{ ?s ?p ?o }} }}")
    everything = count("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert lyon and everything and 0 < lyon < everything
    assert count(sparql_text(template, base)) in ({"lyon": lyon, "everything": everything}[expected], None), name


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_queries_that_are_not_run(live_server: LiveServer, case: tuple[str, str]) -> None:
    name, template = case
    query = sparql_text(template, live_server.env["CIVICFED_BASE_URI"])
    resp = requests.get(live_server.url + "/sparql", params={"query": query}, timeout=30)
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/plain"), (name, resp.text)
    assert "/vote/" not in resp.text


def test_dataset_syntax_through_the_flask_client(
    client: FlaskClient, seeded: Territory, grenoble: Territory, svc: Any
) -> None:
    """The same queries through the application itself, with a vote whose voter wrote nothing
    public: neither the vote nor the voter's pseudonym ever comes back."""
    assert put(client, seeded, "vote", {"id": "v9", "proposal": "p1", "voter": "zoe-votes-only"}).status_code == 201
    vote = svc.urls.resource("lyon", "vote", "v9")
    voter = svc.urls.account("lyon", pseudonym(svc.state.secret("lyon"), "zoe-votes-only"))
    private = svc.urls.private_graph("lyon")
    assert {str(q.object.value) for q in svc.store.quads(subject=vote, graph=private)} >= {voter}

    def ask(query: str) -> Any:
        return client.get("/sparql", query_string={"query": query}, headers={"Accept": EITHER})

    def count(query: str, case: str = "") -> int | None:
        resp = ask(query)
        if store_refused(resp.status_code, resp.text, case):
            return None
        assert resp.status_code == 200, (query, resp.text)
        return int(resp.get_json()["results"]["bindings"][0]["n"]["value"])

    base = svc.urls.base
    for name, template in PRIVATE_DATASET:
        resp = ask(sparql_text(template, base))
        assert_read_nothing(resp.status_code, resp.content_type, resp.text, name)
        assert vote not in resp.text and voter not in resp.text, name
    lyon = count(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{svc.urls.territory_graph('lyon')}> {{ ?s ?p ?o }} }}")
    everything = count("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert lyon and everything and 0 < lyon < everything
    for name, template in LYON_DATASET:
        assert count(sparql_text(template, base), name) in (lyon, None), name
    for name, template in NO_DATASET:
        assert count(sparql_text(template, base), name) in (everything, None), name
    for name, template in REFUSED:
        resp = ask(sparql_text(template, base))
        assert resp.status_code == 400, (name, resp.text)


# -- server/sparql/query.py on its own ------------------------------------------------------------


def test_parse_gives_the_dataset_and_a_text_without_it() -> None:
    for name, template in PRIVATE_DATASET:
        query = sparql_parse.parse_query(sparql_text(template, "http://b.test"))
        assert set(query.default_graphs + query.named_graphs) == {"http://b.test/_internal/private/lyon"}, name
        assert sparql_parse.parse_query(query.text).default_graphs == (), name
        assert "FROM" not in query.text.upper(), (name, query.text)
    query = sparql_parse.parse_query(sparql_text(LYON_DATASET[1][1], "http://b.test"))
    blank = " " * len("FROM <http://b.test/graph/lyon>")
    assert query.text == f"SELECT (COUNT(*) AS ?n) # a comment\r{blank}\nWHERE {{ ?s ?p ?o }}"
    # SPARQL 1.1 escapes, read per the grammar (rdflib's own expansion reads \u with 8 digits).
    assert '"écafe"' in sparql_parse.parse_query('SELECT ("\\u00e9cafe" AS ?x) {}').text


def test_an_unverified_text_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """If blanking the clauses out did not give the same query without them, the query is refused."""
    text = "SELECT * FROM <http://b.test/graph/lyon> WHERE { ?s ?p ?o } # unverified"
    monkeypatch.setattr(sparql_parse, "_without", lambda text, clauses: text.replace("WHERE", "     "))
    with pytest.raises(sparql_parse.Refused, match="default-graph-uri"):
        sparql_parse.parse_query(text)
    monkeypatch.setattr(sparql_parse, "_without", lambda text, clauses: text)
    with pytest.raises(sparql_parse.Refused, match="default-graph-uri"):
        sparql_parse.parse_query(text + " ")


def test_parse_refusals() -> None:
    for text, error in (
        ("", sparql_parse.Malformed),
        ("PREFIX a: <http://x/>", sparql_parse.Malformed),
        ("# a comment\nDROP ALL", sparql_parse.ReadOnly),
        ("PREFIX a: <http://x/'> INSERT DATA { <http://x/> a <http://y/> } #'", sparql_parse.ReadOnly),
        ("SELECT * FROM nope:g WHERE {}", sparql_parse.Malformed),
        ("SELECT * WHERE { FILTER(" + "(" * 60 + "1" + ")" * 60 + ") }", sparql_parse.Malformed),
        ("ASK {}" + " " * sparql_parse.MAX_LENGTH, sparql_parse.TooLong),
        # urllib cannot resolve against an unclosed IPv6 literal: a refusal, not a 500.
        ("BASE <http://[::1> SELECT * FROM <g> WHERE { ?s ?p ?o }", sparql_parse.Malformed),
    ):
        with pytest.raises(error):
            sparql_parse.parse_query(text)


def test_parses_are_cached_and_thread_safe() -> None:
    text = "SELECT * FROM <http://b.test/graph/cached> WHERE { ?s ?p ?o }"
    assert sparql_parse.parse_query(text) is sparql_parse.parse_query(text)
    long = text + " " * sparql_parse.CACHE_MAX_LENGTH
    assert sparql_parse.parse_query(long) is not sparql_parse.parse_query(long)

    def graphs(i: int) -> tuple[str, ...]:
        q = sparql_parse.parse_query(f"SELECT * FROM <http://b.test/g{i}> FROM NAMED <http://b.test/n{i}> {{}} # {i}")
        return q.default_graphs + q.named_graphs

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for i, found in enumerate(pool.map(graphs, range(300))):
            assert found == (f"http://b.test/g{i}", f"http://b.test/n{i}")


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
    version = requests.get(live_server.url + "/static/vendor/yasgui/VERSION", timeout=30)
    assert version.status_code == 200 and re.fullmatch(r"\d+\.\d+\.\d+\n?", version.text)


def test_cors(live_server: LiveServer) -> None:
    url = live_server.url + "/sparql"
    pre = requests.options(
        url, headers={"Origin": "https://yasgui.example", "Access-Control-Request-Method": "POST"}, timeout=30
    )
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    got = requests.get(url, params={"query": "ASK {}"}, headers={"Origin": "https://x.example"}, timeout=30)
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    assert got.headers["Timing-Allow-Origin"] == "*"  # a query editor elsewhere sees Server-Timing


def test_server_timing_says_where_a_querys_time_went(live_server: LiveServer) -> None:
    """Reading the text, waiting for a query process, running, and (with query processes) the
    hand-off: each in milliseconds, together no more than the whole answer took."""
    started = time.perf_counter()
    got = requests.get(live_server.url + "/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 3"}, timeout=60)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert got.status_code == 200
    metrics = {}
    for item in got.headers["Server-Timing"].split(","):
        name, _, duration = item.strip().partition(";dur=")
        metrics[name] = float(duration)
    expected = {"read", "wait", "run"} | ({"handoff"} if not REMOTE else set())
    assert set(metrics) == expected
    assert all(value >= 0 for value in metrics.values())
    assert sum(metrics.values()) <= elapsed_ms


def test_row_cap(sparql_server: LiveServer) -> None:
    resp = requests.get(
        sparql_server.url + "/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }", "format": "json"}, timeout=60
    )
    assert resp.status_code == 200
    assert len(resp.json()["results"]["bindings"]) == 50
    assert resp.headers["X-SPARQL-MaxRows"] == "50"


def heavy_query_beside_a_read(server: LiveServer, query: str) -> tuple[requests.Response, float, float]:
    """Send ``query`` to /sparql and, while it works, a small JSON API read: the query's answer,
    how long the read took, and how long the whole took."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        heavy = pool.submit(requests.post, server.url + "/sparql", data={"query": query}, timeout=60)
        time.sleep(0.5)
        quick_start = time.monotonic()
        quick = requests.get(server.url + "/api/v1/territories/lyon/proposals?limit=5", timeout=30)
        assert quick.status_code == 200
        quick_time = time.monotonic() - quick_start
        return heavy.result(), quick_time, time.monotonic() - started


def test_explosive_query_is_stopped_and_the_server_stays_responsive(sparql_server: LiveServer) -> None:
    explosive = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    answer, quick_time, total = heavy_query_beside_a_read(sparql_server, explosive)
    assert quick_time < 2.0 and total < 10
    assert answer.status_code == 503 and "stopped" in answer.text
    after = requests.get(
        sparql_server.url + "/sparql", params={"query": "ASK { ?s ?p ?o }", "format": "json"}, timeout=30
    )
    assert after.json()["boolean"] is True


def test_a_text_slow_to_read_is_stopped_and_holds_nothing(sparql_server: LiveServer) -> None:
    """rdflib's grammar is pure Python: some texts take seconds to parse. Reading happens in a
    worker process within the time limit (3 s here), so the request threads, which share the GIL,
    keep answering, and the text is refused when its time is up."""
    slow = "SELECT * WHERE { ?s ?p ?o FILTER(" + " || ".join(f"?o = {i}" for i in range(5_000)) + ") "
    answer, quick_time, total = heavy_query_beside_a_read(sparql_server, slow)
    assert quick_time < 2.0 and total < 10
    assert answer.status_code == 503 and "could not be read within 3 s" in answer.text


def test_a_base_that_cannot_be_resolved_is_the_clients_error(client: FlaskClient) -> None:
    query = "BASE <http://[::1> SELECT * FROM <g> WHERE { ?s ?p ?o }"
    resp = client.get("/sparql", query_string={"query": query})
    assert resp.status_code == 400 and "BASE" in resp.get_data(as_text=True)


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


def test_quick_reading_agrees_with_the_full_parse() -> None:
    """A short text read quickly (no keyword of a dataset clause, SERVICE, update or pragma in
    it) has exactly the reading the full parse gives; every other text gets the full parse."""
    import random

    base = "http://b.test"
    corpus = [sparql_text(t, base) for _, t in (*PRIVATE_DATASET, *LYON_DATASET, *NO_DATASET, *REFUSED)]
    corpus += [
        "SELECT ?p ?o WHERE { <http://b.test/id/lyon/proposal/p1> ?p ?o }",
        "prefix s: <https://schema.org/> ask { ?x s:name 'x' }",
        "# a comment\r\nCONSTRUCT WHERE { ?s ?p ?o } LIMIT 3",
        "DESCRIBE <http://b.test/id/lyon>",
        "SELECT * WHERE { ?s ?p 'FROM <http://b.test/_internal/private/lyon>' }",
        "SELECT * WHERE { ?s ?p ?o } # from <http://b.test/_internal/private/lyon>",
        "SELECT * W\\u0048ERE { ?s ?p ?o }",
        "SELECT * \\u0046ROM <http://b.test/_internal/private/lyon> WHERE { ?s ?p ?o }",
        "SELECT * WHERE { ?s ?p ?o } ; INSERT DATA { <http://x/> <http://x/> <http://x/> }",
        "SELECT (COUNT(*) AS ?n) WHERE { SERVICE <http://elsewhere/> { ?s ?p ?o } }",
        # Prologues: prefix names as SPARQL spells them, BASE without a space, comments ended by CR.
        "PREFIX é.x-1: <http://x/> PREFIX : <http://y/>\nSELECT * WHERE { ?s :p é.x-1:o }",
        "BASE<http://x/> # c\rPREFIX a_b: <y> #\n\tdescribe <z>",
        "PREFIX a.: <http://x/> SELECT * WHERE { ?s ?p ?o }",
        "PREFIX 1a: <http://x/> SELECT * WHERE { ?s ?p ?o }",
        "PREFIX a: <http://x/ y> SELECT * WHERE { ?s ?p ?o }",
        "PREFIXa: <http://x/> SELECT * WHERE { ?s ?p ?o }",
        "BASE <http://x/> SELECTED",
    ]
    rng = random.Random(7)
    pieces = [" FROM <http://b.test/g>", " '", ' "', " #", "\n", " <http://x/'>", " }", " {", " \\u0046"]
    corpus += [
        text[:i] + rng.choice(pieces) + text[i:]
        for text in corpus[:40]
        for i in (rng.randrange(len(text) + 1) for _ in range(5))
    ]
    quick = 0
    for text in corpus:
        reading = sparql_parse.quick_read(text)
        if reading is None:
            continue
        quick += 1
        assert reading.default_graphs == reading.named_graphs == (), text
        try:
            full = sparql_parse.parse_query(text)
        except sparql_parse.Refused:
            continue  # malformed in a way the store's own parser reports
        assert full == reading, text
    assert quick >= 5  # the quick path is taken at all


def test_snapshots_never_outlive_the_engine(tmp_path: Path) -> None:
    """Snapshots hold copies of private votes and deleted data: what a stopped server left is
    removed at start, and an engine's own when it closes (the embedded store, whatever backend
    the suite runs on: only it takes snapshots)."""
    app = make_app(tmp_path, None)
    snapshots = Path(app.config["DATA_DIR"]) / "snapshots"
    leftover = snapshots / "snapshot-7-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "000001.sst").write_bytes(b"old copy")
    app.extensions["civicfed"].open()  # what a starting server does
    assert not leftover.exists()
    ask = app.test_client().get("/sparql", query_string={"query": "ASK { ?s ?p ?o }", "format": "json"})
    assert ask.status_code == 200
    assert [p.name for p in snapshots.iterdir()]  # the query ran on a snapshot
    app.extensions["civicfed"].close()
    drop_state_schema(app.config["STATE_DB"])
    assert not snapshots.exists()


def test_a_full_disk_is_a_503_not_a_500(tmp_path: Path) -> None:
    app = make_app(tmp_path, None)
    store = app.extensions["civicfed"].store

    def full(target: Path) -> None:
        target.mkdir(parents=True)
        raise OSError(28, "No space left on device")

    store.snapshot = full
    resp = app.test_client().get("/sparql", query_string={"query": "ASK { ?s ?p ?o }"})
    assert resp.status_code == 503 and "No space left on device" in resp.get_data(as_text=True)
    assert resp.headers["Retry-After"] == "60"
    app.extensions["civicfed"].close()
    drop_state_schema(app.config["STATE_DB"])


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[LiveServer]:
    """The embedded store with one query process of 250 MB at most, one query allowed to wait
    for it, and a 10 s time limit (memory runs out well before)."""
    extra = {
        "CIVICFED_SPARQL_WORKERS": "1",
        "CIVICFED_SPARQL_QUEUE": "1",
        "CIVICFED_SPARQL_MEMORY_LIMIT": str(250 * 1024**2),
        "CIVICFED_SPARQL_TIMEOUT": "10",
    }
    with running_server(tmp_path_factory.mktemp("capped"), None, extra_env=extra) as server:
        yield server


def test_a_query_past_its_memory_cap_is_stopped(capped_server: LiveServer) -> None:
    """A cartesian product with ORDER BY reached 1 GB in 10 s: the query process has a memory cap
    (SPARQL_MEMORY_LIMIT), the query ends with a 503, and the next query runs in a new process."""
    explosive = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } ORDER BY ?c ?f ?i"
    started = time.monotonic()
    resp = requests.post(capped_server.url + "/sparql", data={"query": explosive}, timeout=90)
    # Memory, not the 10 s time limit, stopped it (that would say "ran for more than 10 s").
    assert resp.status_code == 503 and "process failed" in resp.text
    assert time.monotonic() - started < 9
    after = requests.get(
        capped_server.url + "/sparql", params={"query": "ASK { ?s ?p ?o }", "format": "json"}, timeout=30
    )
    assert after.json()["boolean"] is True


def test_queries_past_the_queue_are_refused_at_once(capped_server: LiveServer) -> None:
    """One process busy, one query waiting: the others get 503 with Retry-After at once, so public
    queries never take every request thread, and the JSON API keeps answering."""
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    url = capped_server.url
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        running = [pool.submit(requests.post, url + "/sparql", data={"query": slow}, timeout=90) for _ in range(2)]
        time.sleep(1.0)  # one runs, one waits
        started = time.monotonic()
        refused = [requests.post(url + "/sparql", data={"query": slow}, timeout=30) for _ in range(3)]
        refused_in = time.monotonic() - started
        quick_start = time.monotonic()
        api = requests.get(url + "/api/v1/territories/lyon/proposals?limit=5", timeout=30)
        api_time = time.monotonic() - quick_start
        for future in running:
            future.cancel()
    assert all(r.status_code == 503 and r.headers["Retry-After"] == "5" for r in refused)
    assert "queue is full" in refused[0].text and refused_in < 3.0
    assert api.status_code == 200 and api_time < 2.0


def test_the_gate_admits_some_queues_a_few_and_refuses_the_rest() -> None:
    """The bound every public query goes through, query processes or a remote store alike."""
    import threading

    from server.errors import ServiceUnavailable
    from server.sparql.engine import _Gate

    gate = _Gate(size=1, waiting=1)
    hold, held = threading.Event(), threading.Event()

    def occupy() -> None:
        with gate.admit(5):
            held.set()
            hold.wait(10)

    first = threading.Thread(target=occupy)
    first.start()
    assert held.wait(5)
    outcomes: list[str] = []

    def wait_then_run() -> None:
        with gate.admit(5):
            outcomes.append("ran after waiting")

    second = threading.Thread(target=wait_then_run)
    second.start()
    time.sleep(0.2)  # the second waits for the place
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="queue is full"), gate.admit(5):
        pass
    assert time.monotonic() - started < 0.5  # refused at once
    hold.set()
    first.join(5)
    second.join(5)
    assert outcomes == ["ran after waiting"]
    with pytest.raises(ServiceUnavailable, match="busy"), gate.admit(5), gate.admit(0.1):
        pass


def test_a_new_territorys_graph_is_queryable_at_once(client: FlaskClient, lyon: Territory) -> None:
    """The public graphs are kept between queries while the store has not changed: a write that
    adds a graph (a new territory) is seen by the very next query."""
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://w3id.org/civicfed/ns#Territory> }"

    def territories() -> int:
        resp = client.get("/sparql", query_string={"query": count}, headers={"Accept": "application/json"})
        return int(resp.get_json()["results"]["bindings"][0]["n"]["value"])

    assert territories() == 1
    assert territories() == 1  # answered from the kept list
    from server.services import services

    with client.application.app_context():
        services().records.create_territory({"id": "grenoble", "name": "Grenoble"})
    assert territories() == 2
