"""The vocabulary: every term the mapping writes is declared, the data conforms to the SHACL
shapes, and /ns serves it all with content negotiation."""

from __future__ import annotations

import io
import json
from typing import Any

import pyshacl
import pytest
import rdflib
from flask.testing import FlaskClient
from pyoxigraph import RdfFormat

from server.model.examples import RECORDS, record
from server.model.kinds import KINDS
from vocabularies import CF_IRI, CONTEXT_FILE, INDICATORS_FILE, ONTOLOGY_FILE, SCHEMES_FILE, SHAPES_FILE, concept_codes

from .conftest import Territory, put


def _graph(svc: Any, graph: str) -> rdflib.Graph:
    out = io.BytesIO()
    svc.store.dump(out, RdfFormat.N_TRIPLES, graph=graph)
    return rdflib.Graph().parse(data=out.getvalue().decode(), format="nt")


@pytest.fixture
def everything(client: FlaskClient, lyon: Territory, svc: Any) -> Any:
    for kind in ("district", "organization", "process", "budget", "rule"):
        assert put(client, lyon, kind, RECORDS[kind]).status_code == 201
    for kind in ("proposal", "vote", "comment", "meeting", "project"):
        assert put(client, lyon, kind, RECORDS[kind]).status_code == 201
    # A district within another, and located records naming their district.
    inner = record("district", id="69383-q1", level="quartier", code_list="local", parent="69383", population=None)
    assert put(client, lyon, "district", inner).status_code == 201
    assert put(client, lyon, "proposal", record("proposal", id="p3", district="69383-q1")).status_code == 201
    assert put(client, lyon, "project", record("project", id="prj3", district="69383")).status_code == 201
    put(client, lyon, "proposal", record("proposal", id="p2", author_id=None, author="someone"))
    client.delete("/api/v1/territories/lyon/proposals/p2", headers=lyon.auth())  # a tombstone too
    return svc


def test_every_written_cf_term_is_declared(everything: Any) -> None:
    # Terms of the ontology, and the concepts of its schemes (the code lists).
    declared = {
        str(s) for f in (ONTOLOGY_FILE, SCHEMES_FILE, INDICATORS_FILE) for s in rdflib.Graph().parse(f).subjects()
    }
    used: set[str] = set()
    for graph in (everything.urls.territory_graph("lyon"), everything.urls.private_graph("lyon")):
        for _s, p, o in _graph(everything, graph):
            used |= {str(t) for t in (p, o) if str(t).startswith(CF_IRI)}
    concepts = {f"{CF_IRI}theme-{c}" for c in concept_codes("themes")}
    missing = {u for u in used if u not in declared and u not in concepts and "-status-" not in u and "-type-" not in u}
    assert not missing


@pytest.mark.parametrize("which", ["public", "private"])
def test_published_data_conforms_to_the_shapes(everything: Any, which: str) -> None:
    urls = everything.urls
    graph = urls.territory_graph("lyon") if which == "public" else urls.private_graph("lyon")
    data = _graph(everything, graph)
    assert len(data) > (50 if which == "public" else 5)
    conforms, _, report = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES_FILE))
    assert conforms, report


def test_shapes_catch_broken_data(everything: Any) -> None:
    data = _graph(everything, everything.urls.territory_graph("lyon"))
    p1 = rdflib.URIRef(everything.urls.resource("lyon", "proposal", "p1"))
    title = rdflib.URIRef("http://purl.org/dc/terms/title")
    data.remove((p1, title, None))
    conforms, _, _ = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES_FILE))
    assert not conforms
    data.add((p1, title, rdflib.Literal("one")))
    data.add((p1, title, rdflib.Literal("two")))
    conforms, _, _ = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES_FILE))
    assert not conforms


def test_context_compacts_records(everything: Any) -> None:
    data = _graph(everything, everything.urls.territory_graph("lyon"))
    context = json.loads(CONTEXT_FILE.read_text())["@context"]
    compact = json.loads(data.serialize(format="json-ld", context=context, auto_compact=True))
    nodes = compact["@graph"]
    p1 = next(n for n in nodes if n["@id"].endswith("/proposal/p1"))
    assert "title" in p1 and "isPartOf" in p1
    assert not [k for n in nodes for k in n if k.startswith("http")]  # every predicate has a term


# -- /ns ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("text/turtle", "text/turtle"),
        ("application/ld+json", "application/ld+json"),
        ("application/rdf+xml", "application/rdf+xml"),
        ("application/n-triples", "application/n-triples"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
        ("text/turtle;q=0.5, application/ld+json;q=0.9", "application/ld+json"),
        ("*/*", "text/turtle"),
    ],
)
def test_ns_content_negotiation(client: FlaskClient, accept: str, media_type: str) -> None:
    resp = client.get("/ns", headers={"Accept": accept})
    assert resp.status_code == 200
    assert resp.mimetype == media_type
    assert "Accept" in resp.headers["Vary"]
    assert 'rel="alternate"' in resp.headers["Link"]
    if media_type != "text/html":
        g = rdflib.Graph().parse(data=resp.data, format={"application/ld+json": "json-ld"}.get(media_type, media_type))
        assert (rdflib.URIRef(CF_IRI + "Proposal"), None, None) in g
    else:
        assert b"cf:Proposal" in resp.data and b"green_spaces" in resp.data


def test_ns_suffixes_and_406(client: FlaskClient) -> None:
    assert client.get("/ns.ttl").mimetype == "text/turtle"
    assert client.get("/ns.jsonld").mimetype == "application/ld+json"
    assert client.get("/ns?format=rdfxml").mimetype == "application/rdf+xml"
    resp = client.get("/ns", headers={"Accept": "image/png"})
    assert resp.status_code == 406
    assert "text/turtle" in resp.get_json()["offered"]
    assert client.get("/ns.pdf").status_code == 406
    assert client.get("/ns/shapes.ttl").mimetype == "text/turtle"
    assert "@context" in client.get("/ns/context.jsonld").get_json()


def test_ns_html_in_french(client: FlaskClient) -> None:
    resp = client.get("/ns", headers={"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"})
    assert "Espaces verts et nature en ville" in resp.get_data(as_text=True)


def test_themes_are_mapped_to_eu_data_themes() -> None:
    g = rdflib.Graph().parse(data=__import__("vocabularies").vocabulary_turtle(), format="turtle")
    skos = rdflib.Namespace("http://www.w3.org/2004/02/skos/core#")
    eu = "http://publications.europa.eu/resource/authority/data-theme/"
    for code in concept_codes("themes"):
        concept = rdflib.URIRef(f"{CF_IRI}theme-{code}")
        matches = [str(o) for p in (skos.exactMatch, skos.closeMatch) for o in g.objects(concept, p)]
        assert any(m.startswith(eu) for m in matches), code
        assert {o.language for o in g.objects(concept, skos.prefLabel)} >= {"en", "fr"}
    assert len(KINDS) == 11


def test_prefixes_used_are_exactly_the_namespaces_that_start_the_iris() -> None:
    from vocabularies import PREFIXES, prefixes_used

    iris = [ns + "x" for ns in PREFIXES.values()] + [
        "http://schema.org",  # no trailing slash: not in the namespace
        "https://schema.org/a/b#c",
        "http://example.org/id/lyon/proposal/p1",
        "http://www.w3.org/2001/XMLSchema#string",
    ]
    for iri in iris:
        assert prefixes_used([iri]) == {p: ns for p, ns in PREFIXES.items() if iri.startswith(ns)}, iri
    assert prefixes_used(iris) == {p: ns for p, ns in PREFIXES.items() if any(x.startswith(ns) for x in iris)}
    assert prefixes_used([]) == {}


def test_json_ld_context_declares_exactly_our_prefixes() -> None:
    """Compact IRIs in JSON-LD and in Turtle come from one function (vocabularies.compact_iri):
    the context must declare the very prefixes it uses."""
    import json

    from vocabularies import CONTEXT_FILE, PREFIXES

    context = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
    declared = {k: v for k, v in context.items() if isinstance(v, str) and not k.startswith("@")}
    assert declared == PREFIXES


def _string_constants(source: str) -> list[str]:
    """Every string in Python source that is not a docstring, f-string parts included."""
    import ast

    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_namespace_iri_is_typed_outside_vocabularies() -> None:
    """Every namespace IRI comes from vocabularies/namespaces.py: none in the code's strings
    (f-strings included) or in the templates, wherever it stands in them."""
    from pathlib import Path

    from vocabularies import namespaces

    known = {str(v) for v in vars(namespaces).values() if isinstance(v, namespaces.Namespace)}
    root = Path(__file__).resolve().parent.parent
    found = []
    for folder in ("server", "importers", "exporters", "tools"):
        for path in (root / folder).rglob("*.py"):
            for text in _string_constants(path.read_text(encoding="utf-8")):
                found += [f"{path.relative_to(root)}: {ns}" for ns in known if ns in text]
    for path in (root / "server" / "templates").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(root)}: {ns}" for ns in known if ns in text]
    assert not found, found


def test_every_indicator_is_defined_once_with_what_a_reader_needs() -> None:
    """indicators.ttl (issue 12): each indicator has its label, definition and computation in
    English and French, a QUDT unit, an XSD datatype, and a code unique among them; what it says
    of itself are terms it declares; docs/indicators.md shows each one's code and definition."""
    from pathlib import Path

    from vocabularies import INDICATORS_FILE, indicators

    found = indicators()
    assert len(found) == 12 and len({i.iri for i in found.values()}) == 12
    for code, ind in found.items():
        assert code.replace("_", "").isalpha() and code.islower(), code
        for texts in (ind.label, ind.definition, ind.computation):
            assert set(texts) == {"en", "fr"} and all(t.strip() for t in texts.values()), (code, texts)
        assert ind.unit.startswith(("http://qudt.org/vocab/unit/", "http://qudt.org/vocab/currency/")), code
        assert ind.datatype in ("http://www.w3.org/2001/XMLSchema#integer", "http://www.w3.org/2001/XMLSchema#decimal")
        assert not (ind.per_inhabitants and ind.unit.endswith(("PERCENT", "DAY"))), code  # a share is no count
    graph = rdflib.Graph().parse(INDICATORS_FILE, format="turtle")
    declared = {s for s in graph.subjects(rdflib.RDFS.isDefinedBy, None)}
    used = {t for triple in graph for t in triple if isinstance(t, rdflib.URIRef) and str(t).startswith(CF_IRI)}
    assert used <= declared, sorted(used - declared)
    docs = (Path(__file__).parent.parent / "docs" / "indicators.md").read_text(encoding="utf-8")
    for code, ind in found.items():
        assert f"`{code}`" in docs and ind.definition["en"] in docs, code
