"""``/.well-known/void``: what this server publishes, described with VoID for machines.

The dataset, one subset per territory, the SPARQL endpoint, the dumps, the vocabularies used,
example resources, and statistics (triples, classes and properties with their partitions). The
statistics are aggregates over every public graph, so they are computed once per store version
and at most every ``VOID_REFRESH`` seconds, not per request.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from vocabularies import CF, CF_IRI, PREFIXES

from . import services
from .dumps import dump_urls
from .negotiation import JSON_LD, N_TRIPLES, RDF_XML, TURTLE, alternates, negotiate
from .sparql import public_graphs

bp = Blueprint("void", __name__)
OFFERED = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES)
#: Known namespaces, longest first (so that a namespace nested in another is matched first).
NAMESPACES = sorted(PREFIXES.values(), key=len, reverse=True)

_cache: dict[str, Any] = {}
_lock = threading.Lock()


def statistics() -> dict[str, Any]:
    """Triples per public graph, entities per class, triples per property (cached)."""
    svc = services()
    key = (svc.urls.base, svc.store.generation)
    refresh = float(current_app.config["VOID_REFRESH"])
    # A store whose generation stays 0 cannot tell when it changed (a remote store, written by
    # other processes too): its statistics are reused for VOID_REFRESH seconds only.
    tracked = svc.store.generation > 0
    with _lock:
        cached = _cache.get(svc.urls.base)
        fresh = cached is not None and time.monotonic() - cached["at"] < refresh
        if cached and (fresh or (tracked and cached["key"] == key)):
            return cached["stats"]
        graphs = public_graphs()
        values = " ".join(f"<{g}>" for g in graphs) or "<urn:civicfed:none>"
        per_graph = {
            r["g"].value: int(r["n"].value)
            for r in svc.store.select(
                f"SELECT ?g (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g"
            )
        }
        classes = {
            r["c"].value: int(r["n"].value)
            for r in svc.store.select(
                f"SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s a ?c }} }} "
                "GROUP BY ?c"
            )
        }
        properties = {
            r["p"].value: int(r["n"].value)
            for r in svc.store.select(
                f"SELECT ?p (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?p"
            )
        }
        examples = [
            r["s"].value
            for r in svc.store.select(
                f"SELECT ?s WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s a <{CF.Proposal}> }} }} LIMIT 3"
            )
        ]
        stats = {"graphs": per_graph, "classes": classes, "properties": properties, "examples": examples}
        _cache[svc.urls.base] = {"key": key, "at": time.monotonic(), "stats": stats}
        return stats


def namespace(term: str) -> str:
    """The vocabulary a class or property belongs to: a known namespace, else the IRI up to its
    last ``#`` or ``/``."""
    for ns in NAMESPACES:
        if term.startswith(ns):
            return ns
    cut = max(term.rfind("#"), term.rfind("/"))
    return term[: cut + 1] if cut > 0 else term


def vocabularies(stats: dict[str, Any]) -> list[str]:
    """The vocabularies the published data uses: those of its classes and properties."""
    return sorted({namespace(t) for t in (*stats["classes"], *stats["properties"])})


def void_turtle() -> str:
    svc = services()
    base = svc.urls.base
    stats = statistics()
    dataset = f"<{base}/.well-known/void#dataset>"
    lines = [
        "@prefix void: <http://rdfs.org/ns/void#> .",
        "@prefix dct: <http://purl.org/dc/terms/> .",
        "@prefix foaf: <http://xmlns.com/foaf/0.1/> .",
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
        f"{dataset} a void:Dataset ;",
        '  dct:title "Citizen-participation open data"@en, "Données ouvertes de la participation citoyenne"@fr ;',
        '  dct:description "Processes, proposals, vote counts, comments, meetings, budgets, projects, '
        'organizations and receivability rules of the territories this civicfed server hosts."@en ;',
        f"  foaf:homepage <{base}/> ;",
        f"  void:sparqlEndpoint <{base}/sparql> ;",
        f'  void:uriSpace "{base}/id/" ;',
        "  void:vocabulary " + ", ".join(f"<{v}>" for v in vocabularies(stats) or [CF_IRI]) + " ;",
        f"  void:triples {sum(stats['graphs'].values())} ;",
        f"  void:classes {len(stats['classes'])} ;",
        f"  void:properties {len(stats['properties'])} ;",
    ]
    lines += [f"  void:exampleResource <{e}> ;" for e in stats["examples"]]
    for territory in svc.state.territory_ids():
        lines.append(f"  void:subset <{base}/.well-known/void#{territory}> ;")
    for cls, n in sorted(stats["classes"].items()):
        lines.append(f"  void:classPartition [ void:class <{cls}> ; void:entities {n} ] ;")
    for prop, n in sorted(stats["properties"].items()):
        lines.append(f"  void:propertyPartition [ void:property <{prop}> ; void:triples {n} ] ;")
    lines[-1] = lines[-1].rstrip(" ;") + " ."
    for territory in svc.state.territory_ids():
        graph = svc.urls.territory_graph(territory)
        dumps = dump_urls(territory)
        lines += [
            f"<{base}/.well-known/void#{territory}> a void:Dataset ;",
            f'  dct:title "{territory}" ;',
            f"  dct:spatial <{svc.urls.territory(territory)}> ;",
            f"  void:sparqlEndpoint <{base}/sparql> ;",
            f"  void:triples {stats['graphs'].get(graph, 0)} ;",
            "  void:dataDump " + ", ".join(f"<{u}>" for u in dumps.values()) + " .",
        ]
    return "\n".join(line for line in lines if line) + "\n"


@bp.get("/.well-known/void")
def void() -> Response:
    from pyoxigraph import RdfFormat, parse, serialize

    fmt = negotiate(OFFERED)
    text = void_turtle()
    if fmt is TURTLE:
        body = text.encode()
    else:
        triples = list(parse(text, format=RdfFormat.TURTLE))
        body = serialize(triples, format=fmt.rdf_format)
    resp = Response(body, mimetype=fmt.media_type)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return alternates(resp, services().urls.base + "/.well-known/void", ())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


__all__ = ["init_app", "statistics"]
