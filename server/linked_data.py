"""Dereferenceable IRIs: ``GET {base}/id/…`` answers with the resource's description.

Content negotiation on ``Accept`` (q-values honoured) or a suffix (``.ttl``, ``.jsonld``, ``.rdf``,
``.nt``, ``.html``): Turtle, compact JSON-LD with civicfed's context, RDF/XML, N-Triples, and an
HTML page for browsers. ``Vary: Accept``, ``Link: rel="alternate"``, ``ETag``/``Last-Modified``
with conditional GET (304), HEAD; 406 with the offered types, 404 for unknown IRIs, 410 Gone with
the deletion time for deleted records. Individual votes are not published: their IRIs answer 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from email.utils import format_datetime as http_date
from email.utils import parsedate_to_datetime
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple, serialize

from vocabularies import PREFIXES

from . import labels, services
from .errors import Gone, NotFound
from .jsonld import compact
from .model.kinds import KINDS
from .negotiation import FORMATS, HTML, JSON_LD, N_TRIPLES, RDF_XML, TURTLE, Format, negotiate
from .urls import LOCAL_ID_RE

bp = Blueprint("linked_data", __name__)
OFFERED = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML)
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
INBOUND_LIMIT = 100


def _split_suffix(path: str) -> list[tuple[str, str | None]]:
    """Readings of a path: as it is, then without a format suffix (an id may contain dots)."""
    readings: list[tuple[str, str | None]] = [(path, None)]
    head, dot, suffix = path.rpartition(".")
    if dot and suffix in FORMATS:
        readings.append((head, suffix))
    return readings


class Resource:
    """What an IRI of this instance names, as found in the store."""

    def __init__(
        self,
        iri: str,
        graph: str,
        triples: dict[str, list[tuple[str, Any]]],
        modified: dt.datetime | None,
        deleted: bool = False,
    ) -> None:
        self.iri, self.graph, self.description, self.modified, self.deleted = iri, graph, triples, modified, deleted

    def triples(self) -> list[Triple]:
        # The resource first, then its # nodes, for readable Turtle.
        order = sorted(self.description, key=lambda s: (s != self.iri, s))
        return [Triple(NamedNode(s), NamedNode(p), o) for s in order for p, o in self.description[s]]


def _find(path: str) -> tuple[Resource, str | None]:
    svc = services()
    base = svc.urls.base
    for candidate, suffix in _split_suffix(path):
        iri = f"{base}/id/{candidate}"
        ref = svc.urls.parse(iri)
        if ref is None or ref.fragment is not None:
            continue
        if not svc.state.has_territory(ref.territory):
            continue
        graph = svc.urls.territory_graph(ref.territory)
        if ref.kind == "account":
            found = svc.store.describe([iri], graph)
            if found:
                return Resource(iri, graph, found, None), suffix
            continue
        kind = KINDS.get(ref.kind or "territory")
        local_id = ref.local_id or ref.territory
        if kind is None or kind.private or not LOCAL_ID_RE.fullmatch(local_id):
            continue
        entry = svc.records.index_entries(ref.territory, kind, [iri]).get(iri)
        if entry is None:
            continue
        description = svc.store.describe([iri], graph)
        return Resource(iri, graph, description, entry.modified, entry.deleted), suffix
    raise NotFound(f"nothing is published at {base}/id/{path}")


def _etag(resource: Resource, fmt: Format) -> str:
    if resource.modified is not None:
        version = str(int(resource.modified.timestamp() * 1_000_000))
    else:
        digest = hashlib.sha256(
            repr(sorted((s, p, str(o)) for s, v in resource.description.items() for p, o in v)).encode()
        )
        version = digest.hexdigest()[:16]
    return f'"{version}-{fmt.suffix}"'


def _not_modified(resource: Resource, tag: str) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        return tag in [t.strip() for t in match.split(",")] or match.strip() == "*"
    since = request.headers.get("If-Modified-Since")
    if since and resource.modified is not None:
        try:
            return resource.modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def serialize_rdf(resource: Resource, fmt: Format) -> bytes:
    triples = resource.triples()
    if fmt is JSON_LD:
        doc = compact(((t.subject, t.predicate, t.object) for t in triples), main=resource.iri)
        return json.dumps(doc, ensure_ascii=False).encode()
    prefixes = None
    if fmt is TURTLE:  # only the prefixes the description uses
        terms = {t.predicate.value for t in triples} | {
            t.object.value for t in triples if isinstance(t.object, NamedNode)
        }
        prefixes = {p: ns for p, ns in PREFIXES.items() if any(x.startswith(ns) for x in terms)}
    return serialize(triples, format=fmt.rdf_format, prefixes=prefixes)


def _headers(resp: Response, resource: Resource, fmt: Format, tag: str) -> Response:
    resp.headers["Vary"] = "Accept"
    resp.headers["ETag"] = tag
    if resource.modified is not None:
        resp.headers["Last-Modified"] = http_date(resource.modified.replace(microsecond=0), usegmt=True)
    links = [f'<{resource.iri}.{f.suffix}>; rel="alternate"; type="{f.media_type}"' for f in OFFERED if f is not fmt]
    resp.headers["Link"] = ", ".join(links)
    return resp


@bp.route("/id/<path:path>", methods=["GET"])
def dereference(path: str) -> Response:
    resource, suffix = _find(path)
    fmt = negotiate(OFFERED, suffix)
    if resource.deleted:
        when = resource.modified.isoformat().replace("+00:00", "Z") if resource.modified else "?"
        if fmt is HTML:
            raise Gone(f"{resource.iri} was deleted at {when}", deleted_at=when)
        # RDF clients get the tombstone itself (as:Tombstone, as:deleted) with the 410.
        resp = Response(serialize_rdf(resource, fmt), status=410, mimetype=fmt.media_type)
        return _headers(resp, resource, fmt, _etag(resource, fmt))
    tag = _etag(resource, fmt)
    if _not_modified(resource, tag):
        return _headers(Response(status=304), resource, fmt, tag)
    if fmt is HTML:
        body = _html(resource)
        resp = Response(body, mimetype="text/html")
    else:
        resp = Response(serialize_rdf(resource, fmt), mimetype=fmt.media_type)
    return _headers(resp, resource, fmt, tag)


# -- HTML -------------------------------------------------------------------------------------


def _lang() -> str:
    return request.accept_languages.best_match(["en", "fr"]) or "en"


def _display(term: Any, resource: Resource, lang: str) -> dict[str, Any]:
    svc = services()
    if isinstance(term, NamedNode):
        iri = term.value
        own = iri.startswith(f"{svc.urls.base}/id/")
        text = labels.label(iri, lang) or (iri.rsplit("/", 1)[-1] if own else labels.compact(iri))
        return {"iri": iri, "text": text, "local": own and "#" not in iri, "node": iri.startswith(resource.iri + "#")}
    if isinstance(term, Literal):
        datatype = term.datatype.value.rsplit("#", 1)[-1]
        return {
            "text": term.value,
            "lang": term.language,
            "datatype": None if datatype in ("string", "langString") else datatype,
        }
    return {"text": str(term)}


def _rows(resource: Resource, subject: str, lang: str) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for p, o in resource.description.get(subject, ()):
        if p == RDF_TYPE:
            continue
        row = rows.setdefault(p, {"iri": p, "label": labels.label(p, lang) or labels.compact(p), "values": []})
        value = _display(o, resource, lang)
        if value.get("node"):
            value["rows"] = _rows(resource, value["iri"], lang)
            value["types"] = [
                labels.label(t.value, lang) or labels.compact(t.value)
                for q, t in resource.description.get(value["iri"], ())
                if q == RDF_TYPE
            ]
        row["values"].append(value)
    return list(rows.values())


def _inbound(resource: Resource, lang: str) -> tuple[list[dict[str, Any]], bool]:
    svc = services()
    out = []
    more = False
    for q in svc.store.quads(obj=NamedNode(resource.iri)):
        graph = q.graph_name.value if isinstance(q.graph_name, NamedNode) else ""
        if not svc.urls.is_own_graph(graph) or svc.urls.is_internal_graph(graph):
            continue
        if q.subject.value.startswith(resource.iri + "#"):
            continue
        if len(out) >= INBOUND_LIMIT:
            more = True
            break
        out.append(
            {
                "subject": _display(q.subject, resource, lang),
                "label": labels.label(q.predicate.value, lang) or labels.compact(q.predicate.value),
            }
        )
    return out, more


def _html(resource: Resource) -> str:
    lang = _lang()
    main = resource.description.get(resource.iri, [])
    title = next(
        (
            o.value
            for p, o in main
            if p
            in (
                "http://purl.org/dc/terms/title",
                "https://schema.org/name",
                "http://www.w3.org/2004/02/skos/core#prefLabel",
            )
            and isinstance(o, Literal)
        ),
        resource.iri.rsplit("/", 1)[-1],
    )
    types = [labels.label(o.value, lang) or labels.compact(o.value) for p, o in main if p == RDF_TYPE]
    point = None
    geometry = resource.description.get(resource.iri + "#geometry", [])
    lat = next((o.value for p, o in geometry if p == "https://schema.org/latitude"), None)
    lon = next((o.value for p, o in geometry if p == "https://schema.org/longitude"), None)
    if lat is not None and lon is not None:
        point = {"lat": float(lat), "lon": float(lon)}
    inbound, more = _inbound(resource, lang)
    jsonld = json.dumps(
        compact(((t.subject, t.predicate, t.object) for t in resource.triples()), main=resource.iri), ensure_ascii=False
    ).replace("</", "<\\/")
    return render_template(
        "resource.html",
        resource=resource,
        title=title,
        types=types,
        rows=_rows(resource, resource.iri, lang),
        inbound=inbound,
        more_inbound=more,
        point=point,
        formats=[f for f in OFFERED if f is not HTML],
        jsonld=jsonld,
        lang=lang,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


__all__ = ["RdfFormat", "init_app"]
