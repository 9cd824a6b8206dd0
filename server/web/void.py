"""``/.well-known/void``: what this server publishes, described with VoID for machines.

The dataset, one subset per territory, the SPARQL endpoint, the dumps, the vocabularies used,
example resources, and statistics (triples, classes and properties with their partitions). The
statistics are aggregates over every public graph, so they are computed once per store version
and at most every ``VOID_REFRESH`` seconds, not per request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response

from vocabularies import CF_IRI, namespace_of, prefix_declarations

from ..catalog import dump_urls
from ..ingest.peers import Peers
from ..rdf.negotiation import JSON_LD, N_TRIPLES, RDF_XML, TURTLE, alternates, negotiate
from ..services import services

bp = Blueprint("void", __name__)
OFFERED = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES)


def vocabularies(stats: dict[str, Any]) -> list[str]:
    """The vocabularies the published data uses: those of its classes and properties."""
    return sorted({namespace_of(t) for t in (*stats["classes"], *stats["properties"])})


def void_turtle() -> str:
    svc = services()
    base = svc.urls.base
    stats = svc.statistics()
    dataset = f"<{base}/.well-known/void#dataset>"
    lines = [
        prefix_declarations(("void", "dct", "foaf", "xsd", "cf", "prov")).rstrip("\n"),
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
    replicas = Peers(svc.state).replicas()
    for territory in [*svc.state.territory_ids(), *(r.territory for r in replicas)]:
        lines.append(f"  void:subset <{base}/.well-known/void#{territory}> ;")
    for cls, n in sorted(stats["classes"].items()):
        lines.append(f"  void:classPartition [ void:class <{cls}> ; void:entities {n} ] ;")
    for prop, n in sorted(stats["properties"].items()):
        lines.append(f"  void:propertyPartition [ void:property <{prop}> ; void:triples {n} ] ;")
    lines[-1] = lines[-1].rstrip(" ;") + " ."
    for territory in svc.state.territory_ids():
        graph = svc.urls.territory_graph(territory)
        dumps = dump_urls(svc.urls, territory)
        lines += [
            f"<{base}/.well-known/void#{territory}> a void:Dataset ;",
            f'  dct:title "{territory}" ;',
            f"  dct:spatial <{svc.urls.territory(territory)}> ;",
            f"  void:sparqlEndpoint <{base}/sparql> ;",
            f"  void:triples {stats['graphs'].get(graph, 0)} ;",
            f"  cf:eventStream <{svc.urls.stream(territory)}> ;",
            "  void:dataDump " + ", ".join(f"<{u}>" for u in dumps.values()) + " .",
        ]
    for replica in replicas:  # a territory replicated from a peer: its origin said
        stream = replica.origin.replace("/id/", "/ldes/", 1) + "#stream"
        lines += [
            f"<{base}/.well-known/void#{replica.territory}> a void:Dataset ;",
            f'  dct:title "{replica.territory}" ;',
            f"  dct:spatial <{replica.origin}> ;",
            f"  dct:source <{stream}> ;",
            f"  prov:wasDerivedFrom <{stream}> ;",
            f"  void:sparqlEndpoint <{base}/sparql> ;",
            f"  void:triples {stats['graphs'].get(svc.urls.territory_graph(replica.territory), 0)} .",
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
