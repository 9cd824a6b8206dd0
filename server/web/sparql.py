"""``/sparql``: the read-only SPARQL 1.1 endpoint (W3C SPARQL 1.1 Protocol).

Query by GET (``?query=``), by POST of a form (``application/x-www-form-urlencoded``) or by POST of
the query itself (``application/sparql-query``); ``default-graph-uri`` and ``named-graph-uri``
choose the dataset among the public graphs. Results in JSON, XML, CSV or TSV (SELECT, ASK) and in
Turtle, N-Triples, JSON-LD or RDF/XML (CONSTRUCT, DESCRIBE), by ``Accept`` or ``format=``.

Safe by default: read-only, the internal graphs (votes, indexes) are never part of the dataset
whatever the query says (it is parsed and sent without its FROM clauses: server/sparql/query.py,
server/sparql/dataset.py), a time limit that stops the query (server/sparql/engine.py), a row cap,
no ``SERVICE``. A bare GET shows a query editor to browsers and the SPARQL Service Description to
programs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, current_app, render_template, request

from vocabularies import CF_IRI, ENTAILMENT, PREFIXES, SDMXD, SERVICE_PREFIXES, prefix_declarations

from ..errors import BadRequest, CivicfedError, Forbidden, NotAcceptable, UnsupportedMediaType
from ..rdf.negotiation import HTML, JSON_LD, N_TRIPLES, RDF_XML, TURTLE, negotiate
from ..services import services
from ..sparql.dataset import Dataset, public_dataset
from ..sparql.results import GRAPH_FORMATS, RESULT_FORMATS
from .errors import RENDERERS

if TYPE_CHECKING:
    from ..sparql.query import Query

bp = Blueprint("sparql", __name__)

FORMAT_ALIASES = {
    **{k: k for k in (*RESULT_FORMATS, *GRAPH_FORMATS)},
    **{v: k for k, v in RESULT_FORMATS.items()},
    **{v: k for k, v in GRAPH_FORMATS.items()},
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "ttl": "turtle",
    "nt": "ntriples",
    "rdf": "rdfxml",
    "text/plain": "ntriples",
    # Turtle is N3's RDF subset: clients asking for N3 (SPARQLWrapper's N3 format) get Turtle.
    "n3": "turtle",
    "text/n3": "turtle",
    "text/rdf+n3": "turtle",
    "application/n3": "turtle",
}
# Names clients send (`format=`, SPARQLWrapper's format/output params) that mean another format
# for graph results than for solutions.
GRAPH_ALIASES = {
    "xml": "rdfxml",
    "rdf+xml": "rdfxml",
    "application/xml": "rdfxml",
    "text/xml": "rdfxml",
    "json": "jsonld",
    "json-ld": "jsonld",
    "application/json": "jsonld",
}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept",
    "Access-Control-Max-Age": "86400",
    "Timing-Allow-Origin": "*",
}


def _params() -> tuple[str | None, list[str], list[str]]:
    """The query and the dataset parameters, from whichever request form the client used."""
    if request.method == "GET":
        args = request.args
        if "update" in args:
            raise Forbidden("this endpoint is read-only: SPARQL Update is not accepted")
        queries = args.getlist("query")
        if len(queries) > 1:
            raise BadRequest("the query parameter was given more than once")
        return (queries[0] if queries else None), args.getlist("default-graph-uri"), args.getlist("named-graph-uri")
    mimetype = request.mimetype
    if mimetype == "application/x-www-form-urlencoded":
        form = request.form
        if "update" in form:
            raise Forbidden("this endpoint is read-only: SPARQL Update is not accepted")
        queries = form.getlist("query")
        if len(queries) != 1:
            raise BadRequest("POST a form with exactly one query parameter")
        return queries[0], form.getlist("default-graph-uri"), form.getlist("named-graph-uri")
    if mimetype == "application/sparql-query":
        try:
            body = request.get_data(cache=False).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("the query is not UTF-8") from exc
        return body, request.args.getlist("default-graph-uri"), request.args.getlist("named-graph-uri")
    if mimetype == "application/sparql-update":
        raise Forbidden("this endpoint is read-only: SPARQL Update is not accepted")
    raise UnsupportedMediaType(
        "POST a query as application/sparql-query, or as a form (application/x-www-form-urlencoded)"
    )


def _dataset(query: Query, default: list[str], named: list[str]) -> Dataset:
    svc = services()
    clauses = (list(query.default_graphs), list(query.named_graphs))
    return public_dataset(svc.public_graphs(), svc.urls, protocol=(default, named), clauses=clauses)


def _format(form: str | None) -> str:
    wanted = request.args.get("format")
    if not wanted and request.mimetype == "application/x-www-form-urlencoded":
        wanted = request.form.get("format")
    graph = form in ("CONSTRUCT", "DESCRIBE")
    family = GRAPH_FORMATS if graph else RESULT_FORMATS
    if wanted:
        name = (graph and GRAPH_ALIASES.get(wanted)) or FORMAT_ALIASES.get(wanted)
        if name not in family:
            raise NotAcceptable(
                f"format {wanted!r} is not offered for {form or 'this'} queries; offered: {', '.join(family)}",
                offered=list(family.values()),
            )
        return name
    if not request.accept_mimetypes:
        return next(iter(family))
    offered = list(family.values()) + (
        ["application/json", "text/plain"] if not graph else ["text/plain", "text/n3", "text/rdf+n3", "application/n3"]
    )
    best = request.accept_mimetypes.best_match(offered)
    if best is None:
        raise NotAcceptable(
            f"none of the accepted media types can represent {form or 'these'} results; offered: "
            + ", ".join(family.values()),
            offered=list(family.values()),
        )
    return FORMAT_ALIASES[best]


@bp.route("/sparql", methods=["GET", "POST"], provide_automatic_options=False)
def endpoint() -> Response:
    sparql, default, named = _params()
    if sparql is None:
        return _describe_service()
    svc = services()
    timeout = float(current_app.config["SPARQL_TIMEOUT"])
    started = time.monotonic()
    query: Query = svc.sparql.parse(sparql, timeout)  # reading it counts in its time limit
    read = time.monotonic() - started
    fmt = _format(query.form)
    written = svc.sparql.run(
        query.text,
        _dataset(query, default, named),
        fmt,
        row_cap=int(current_app.config["SPARQL_MAX_ROWS"]),
        timeout=max(0.1, timeout - (time.monotonic() - started)),
    )
    media = written.media_type
    if media.startswith("text/") or media.endswith("+xml"):
        media += "; charset=utf-8"
    resp = Response(written.body, content_type=media)
    resp.headers["Vary"] = "Accept"
    if written.truncated:
        resp.headers["X-SPARQL-MaxRows"] = str(current_app.config["SPARQL_MAX_ROWS"])
    resp.headers["Server-Timing"] = server_timing({"read": read, **written.timings})
    return resp


def server_timing(timings: dict[str, float]) -> str:
    """W3C Server Timing: where a query's time went on the server, in milliseconds (read: reading
    the text; wait: for a free query process; run: query and result writing; handoff: sending the
    job and bringing the result back). Browsers' developer tools and ``make bench`` show them."""
    return ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in timings.items())


@bp.route("/sparql", methods=["OPTIONS"])
def preflight() -> Response:
    return Response(status=204)


@bp.after_request
def _cors(resp: Response) -> Response:
    resp.headers.update(CORS_HEADERS)
    return resp


def _describe_service() -> Response:
    fmt = negotiate((TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML))
    if fmt is HTML:
        return Response(render_template("sparql.html", examples=examples(), yasgui=_yasgui()), mimetype="text/html")
    from pyoxigraph import RdfFormat, parse, serialize

    triples = list(parse(service_description(), format=RdfFormat.TURTLE))
    body = serialize(triples, format=fmt.rdf_format, prefixes=SD_PREFIXES if fmt is TURTLE else None)
    resp = Response(body, mimetype=fmt.media_type)
    resp.headers["Vary"] = "Accept"
    return resp


SD_PREFIXES = {**SERVICE_PREFIXES, "dct": PREFIXES["dct"]}


def service_description() -> str:
    """The SPARQL 1.1 Service Description of this endpoint (Turtle)."""
    svc = services()
    endpoint_iri = f"{svc.urls.base}/sparql"
    named = "".join(f"    sd:namedGraph [ a sd:NamedGraph ; sd:name <{g}> ] ;\n" for g in svc.public_graphs())
    return (
        prefix_declarations(SD_PREFIXES)
        + f"""<{endpoint_iri}> a sd:Service ;
  sd:endpoint <{endpoint_iri}> ;
  sd:supportedLanguage sd:SPARQL11Query ;
  sd:feature sd:UnionDefaultGraph ;
  sd:resultFormat formats:SPARQL_Results_JSON, formats:SPARQL_Results_XML, formats:SPARQL_Results_CSV,
    formats:SPARQL_Results_TSV, formats:Turtle, formats:N-Triples, formats:JSON-LD, formats:RDF_XML ;
  sd:defaultEntailmentRegime <{ENTAILMENT.Simple}> ;
  dct:description "Read-only. Queries stop after {current_app.config["SPARQL_TIMEOUT"]} s; results are \
capped at {current_app.config["SPARQL_MAX_ROWS"]} rows (X-SPARQL-MaxRows tells when). The default graph \
is the union of the public graphs." ;
  sd:defaultDataset [
    a sd:Dataset ;
    sd:defaultGraph [ a sd:Graph ; void:vocabulary <{CF_IRI}> ] ;
{named}  ] .
"""
    )


def examples() -> list[dict[str, str]]:
    """Example queries for this data, shown in the query editor."""
    prefixes = prefix_declarations(("cf", "dct", "schema", "skos"), sparql=True)
    return [
        {
            "name": "Territories and their population",
            "query": prefixes + "SELECT ?territory ?name ?inhabitants ?year WHERE {\n"
            "  ?territory a cf:Territory ; skos:prefLabel ?name ;\n    cf:population ?obs .\n"
            "  ?obs cf:inhabitants ?inhabitants ;\n"
            f"    <{SDMXD.refPeriod}> ?year .\n}}",
        },
        {
            "name": "Top 10 proposals by supports",
            "query": prefixes
            + "SELECT ?proposal ?title ?votes WHERE {\n  ?proposal a cf:Proposal ; dct:title ?title ;\n"
            "    schema:interactionStatistic [ schema:interactionType schema:VoteAction ;\n"
            "                                  schema:userInteractionCount ?votes ] .\n"
            "} ORDER BY DESC(?votes) LIMIT 10",
        },
        {
            "name": "Proposals per theme and territory",
            "query": prefixes + "SELECT ?territory ?theme (COUNT(?proposal) AS ?proposals) WHERE {\n"
            "  ?proposal a cf:Proposal ; cf:territory ?territory ; dct:subject ?theme .\n"
            "} GROUP BY ?territory ?theme ORDER BY ?territory DESC(?proposals)",
        },
        {
            "name": "Meetings with their attendance",
            "query": prefixes
            + "SELECT ?meeting ?name ?start ?attendees WHERE {\n  ?meeting a cf:Meeting ; schema:name ?name ;"
            " schema:startDate ?start .\n  OPTIONAL { ?meeting schema:interactionStatistic [\n"
            "    schema:interactionType schema:JoinAction ; schema:userInteractionCount ?attendees ] }\n"
            "} ORDER BY DESC(?start) LIMIT 20",
        },
    ]


def _yasgui() -> bool:
    from pathlib import Path

    return (Path(current_app.static_folder or "") / "vendor" / "yasgui" / "yasgui.min.js").exists()


def render_text(err: CivicfedError) -> Response:
    """SPARQL protocol errors: plain text, the status saying what kind."""
    resp = Response(f"{err.status} {err.title}: {err.detail}\n", status=err.status, mimetype="text/plain")
    resp.headers.update(err.headers)
    resp.headers.update(CORS_HEADERS)
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    RENDERERS["/sparql"] = render_text
