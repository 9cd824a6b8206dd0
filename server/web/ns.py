"""``/ns``: the civicfed vocabulary (ontology, concept schemes, shapes, JSON-LD context).

Served by every instance with content negotiation; the namespace itself is fixed
(``https://w3id.org/civicfed/ns#``), so federated servers share the same terms.
"""

from __future__ import annotations

import functools
import json

from flask import Blueprint, Flask, Response, render_template, request

from vocabularies import CF_IRI, CONTEXT_FILE, PREFIXES, SHAPES_FILE, vocabulary_turtle

from ..rdf.negotiation import HTML, JSON_LD, RDF_FORMATS, TURTLE, alternates, negotiate

bp = Blueprint("ns", __name__)
OFFERED = (TURTLE, JSON_LD, *[f for f in RDF_FORMATS if f not in (TURTLE, JSON_LD)], HTML)


@functools.cache
def _serialised(fmt_name: str) -> bytes:
    from pyoxigraph import RdfFormat, parse, serialize

    triples = list(parse(vocabulary_turtle(), format=RdfFormat.TURTLE))
    if fmt_name == "jsonld":
        import rdflib

        graph = rdflib.Graph().parse(data=vocabulary_turtle(), format="turtle")
        context = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
        return graph.serialize(format="json-ld", context=context, auto_compact=True).encode()
    fmt = next(f for f in OFFERED if f.name == fmt_name)
    return serialize(triples, format=fmt.rdf_format, prefixes=PREFIXES if fmt is TURTLE else None)


@functools.cache
def _terms() -> dict[str, list[dict[str, object]]]:
    """Classes, properties, concept schemes and concepts, with English and French labels."""
    import rdflib
    from rdflib.namespace import OWL, RDF, RDFS, SKOS

    g = rdflib.Graph().parse(data=vocabulary_turtle(), format="turtle")

    def labels(s: rdflib.term.Node, *preds: rdflib.URIRef) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in preds:
            for o in g.objects(s, p):
                out.setdefault(getattr(o, "language", None) or "", str(o))
        return out

    def describe(s: rdflib.term.Node) -> dict[str, object]:
        return {
            "iri": str(s),
            "name": str(s).split("#", 1)[-1],
            "label": labels(s, RDFS.label, SKOS.prefLabel),
            "comment": labels(s, RDFS.comment, SKOS.definition),
            "parents": sorted(str(o) for p in (RDFS.subClassOf, RDFS.subPropertyOf) for o in g.objects(s, p)),
        }

    groups: dict[str, list[dict[str, object]]] = {"classes": [], "properties": [], "schemes": []}
    for s in sorted(set(g.subjects(RDF.type, OWL.Class))):
        groups["classes"].append(describe(s))
    props = set(g.subjects(RDF.type, OWL.ObjectProperty)) | set(g.subjects(RDF.type, OWL.DatatypeProperty))
    for s in sorted(props):
        groups["properties"].append(describe(s))
    for scheme in sorted(set(g.subjects(RDF.type, SKOS.ConceptScheme))):
        entry = describe(scheme)
        entry["concepts"] = [
            {
                **describe(c),
                "notation": str(g.value(c, SKOS.notation)),
                "matches": sorted(str(o) for p in (SKOS.exactMatch, SKOS.closeMatch) for o in g.objects(c, p)),
            }
            for c in sorted(g.subjects(SKOS.inScheme, scheme))
        ]
        groups["schemes"].append(entry)
    return groups


def _serve(suffix: str | None) -> Response:
    fmt = negotiate(OFFERED, suffix)
    if fmt is HTML:
        body = render_template("ns.html", terms=_terms(), lang=_lang(), namespace=CF_IRI)
        resp = Response(body, mimetype="text/html")
    else:
        resp = Response(_serialised(fmt.name), mimetype=fmt.media_type)
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return alternates(resp, request.url_root.rstrip("/") + "/ns", OFFERED)


def _lang() -> str:
    return request.accept_languages.best_match(["en", "fr"]) or "en"


@bp.get("/ns")
def vocabulary() -> Response:
    return _serve(None)


@bp.get("/ns.<suffix>")
def vocabulary_as(suffix: str) -> Response:
    return _serve(suffix)


@bp.get("/ns/context.jsonld")
def context() -> Response:
    return Response(CONTEXT_FILE.read_bytes(), mimetype="application/ld+json")


@bp.get("/ns/shapes.ttl")
def shapes() -> Response:
    return Response(SHAPES_FILE.read_bytes(), mimetype="text/turtle")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
