"""Documents derived from a territory's records, Turtle, JSON-LD, RDF/XML or N-Triples by content
negotiation: ``/indicators/{territory}``, its participation indicators as the RDF Data Cube it
publishes (server/records/cube.py), whose ``#`` nodes are its data set and observations; and
``/receivability/{territory}/{proposal}``, a proposal's receivability decisions
(server/records/decisions.py), whose ``#`` nodes are the decisions, replaced ones included."""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Flask, Response
from pyoxigraph import NamedNode, Triple, serialize

from vocabularies import prefixes_used

from ..errors import NotFound
from ..rdf.jsonld import compact
from ..rdf.negotiation import JSON_LD, RDF_FORMATS, TURTLE, alternate_links, negotiate
from ..services import services
from .http import conditional

bp = Blueprint("indicators", __name__)


@bp.route("/indicators/<territory>", methods=["GET"])
@bp.route("/indicators/<territory>.<suffix>", methods=["GET"])
def cube_document(territory: str, suffix: str | None = None) -> Response:
    records = services().records
    origin = records.origin(territory)
    if origin is not None:
        said = f"territory {territory!r} is replicated from {origin}: its origin publishes its indicators"
        raise NotFound(said, territory=territory)
    records.require_territory(territory)
    triples = records.indicator_cube_triples(territory)
    document = records.urls.indicators_document(territory)
    return _document(triples, document, f"{document}#dataset", suffix)


@bp.route("/receivability/<territory>/<name>", methods=["GET"])
def receivability_document(territory: str, name: str) -> Response:
    records = services().records
    records.require_territory(territory)
    # Ids may hold dots: "p.1" is proposal p.1 if there is one, else proposal p as format "1".
    proposal, suffix = name, None
    try:
        records.receivability(territory, proposal)
    except NotFound:
        if "." not in name:
            raise
        proposal, suffix = name.rsplit(".", 1)
        records.receivability(territory, proposal)  # 404 or 410 as the proposal
    triples = records.receivability_triples(territory, proposal)
    iri = records.urls.resource(territory, "proposal", proposal)
    return _document(triples, records.urls.receivability_document(territory, proposal), iri, suffix)


def _document(triples: list[Triple], document: str, main: str, suffix: str | None) -> Response:
    fmt = negotiate(RDF_FORMATS, suffix)
    tag = hashlib.sha256("\n".join(sorted(str(t) for t in triples)).encode()).hexdigest()[:20]

    def body() -> Response:
        if fmt is JSON_LD:
            doc = compact(((t.subject, t.predicate, t.object) for t in triples), main=main)
            data = json.dumps(doc, ensure_ascii=False).encode()
        else:
            prefixes = None
            if fmt is TURTLE:
                terms = [t.predicate.value for t in triples]
                terms += [t.object.value for t in triples if type(t.object) is NamedNode]
                prefixes = prefixes_used(terms)
            data = serialize(triples, format=fmt.rdf_format, prefixes=prefixes)
        return Response(data, mimetype=fmt.media_type)

    headers = {"Vary": "Accept", "Link": alternate_links(document, RDF_FORMATS, fmt)}
    return conditional(f'"{tag}-{fmt.suffix}"', None, body, headers)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
