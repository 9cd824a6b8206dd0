"""Dereferenceable IRIs: ``GET {base}/id/…`` answers with the resource's description.

Content negotiation on ``Accept`` (q-values honoured) or a suffix (``.ttl``, ``.jsonld``, ``.rdf``,
``.nt``, ``.html``): Turtle, compact JSON-LD with civicfed's context, RDF/XML, N-Triples, and an
HTML page for browsers (in their language: ``Vary: Accept-Language`` too, and the page's validators
cover what links to the resource). ``Vary: Accept``, ``Link: rel="alternate"``, ``ETag``/``Last-Modified``
with conditional GET (304), HEAD; 406 with the offered types, 404 for unknown IRIs, 410 Gone with
the deletion time for deleted records. Individual votes are not published: their IRIs answer 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from pyoxigraph import Literal, NamedNode, Triple, serialize

from vocabularies import CF, DCT, RDF, SDO, SKOS, concept_iri, prefixes_used

from ..errors import Gone, NotFound
from ..indicators.targets import targets
from ..ingest.provenance import PROVENANCE_KINDS
from ..model.kinds import KINDS
from ..rdf import labels
from ..rdf.jsonld import compact
from ..rdf.negotiation import FORMATS, HTML, JSON_LD, N_TRIPLES, RDF_XML, TURTLE, Format, alternate_links, negotiate
from ..records.clock import micros
from ..services import services
from ..urls import LOCAL_ID_RE
from .http import conditional, validators

bp = Blueprint("linked_data", __name__)
OFFERED = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML)
RDF_TYPE = RDF.type
#: Predicates that give a page its title, in order of preference.
TITLES = (DCT.title, SDO.name, SKOS.prefLabel)
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
        if ref.kind == "account" or ref.kind in PROVENANCE_KINDS:  # pseudonyms; import runs, sources
            found = svc.records.published(ref.territory, iri)
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
        description = svc.records.published(ref.territory, iri)
        if kind.name == "territory" and not entry.deleted:  # where its records' history is told
            own = [*description.get(iri, []), (CF.eventStream, NamedNode(svc.urls.stream(ref.territory)))]
            description = {**description, iri: own}
        return Resource(iri, graph, description, entry.modified, entry.deleted), suffix
    raise NotFound(f"nothing is published at {base}/id/{path}")


def _etag(resource: Resource, fmt: Format, *variant: object) -> str:
    """The entity tag of one representation: the resource's version, the format, and for pages
    what else they show (their language, what links to the resource)."""
    if resource.modified is not None:
        version = str(micros(resource.modified))
    else:
        digest = hashlib.sha256(
            repr(sorted((s, p, str(o)) for s, v in resource.description.items() for p, o in v)).encode()
        )
        version = digest.hexdigest()[:16]
    if variant:
        version += "-" + hashlib.sha256(repr(variant).encode()).hexdigest()[:12]
    return f'"{version}-{fmt.suffix}"'


def serialize_rdf(resource: Resource, fmt: Format) -> bytes:
    triples = resource.triples()
    if fmt is JSON_LD:
        doc = compact(((t.subject, t.predicate, t.object) for t in triples), main=resource.iri)
        return json.dumps(doc, ensure_ascii=False).encode()
    prefixes = None
    if fmt is TURTLE:  # only the prefixes the description uses
        terms = [t.predicate.value for t in triples] + [t.object.value for t in triples if type(t.object) is NamedNode]
        prefixes = prefixes_used(terms)
    return serialize(triples, format=fmt.rdf_format, prefixes=prefixes)


def _headers(resource: Resource, fmt: Format, vary: str = "Accept") -> dict[str, str]:
    return {"Vary": vary, "Link": alternate_links(resource.iri, OFFERED, fmt)}


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
        resp.headers.update({**_headers(resource, fmt), **validators(_etag(resource, fmt), resource.modified)})
        return resp
    if fmt is not HTML:
        return conditional(
            _etag(resource, fmt),
            resource.modified,
            lambda: Response(serialize_rdf(resource, fmt), mimetype=fmt.media_type),
            _headers(resource, fmt),
        )
    # A page is in the reader's language and lists what links to the resource: both are part of
    # its validators (a new reply to a comment changes the comment's page, not the comment).
    lang = _lang()
    inbound = _inbound(resource)
    modified = resource.modified
    if modified is not None and inbound.modified is not None:
        modified = max(modified, inbound.modified)
    # A territory's page shows its targets beside the indicators' values, which other records
    # move: they are part of its entity tag, and its date says nothing of them.
    goals = _targets(resource, lang)
    # So does a proposal's receivability decision, which a change of its rules moves: its page
    # changed when its last decision was made or ended, if that is later.
    decision, decided = _decision(resource, lang)
    if goals:
        modified = None
    elif modified is not None and decided is not None:
        modified = max(modified, decided)
    return conditional(
        _etag(resource, fmt, lang, inbound.links, inbound.more, goals, decision),
        modified,
        lambda: Response(_html(resource, lang, inbound, goals, decision), mimetype="text/html"),
        _headers(resource, fmt, "Accept, Accept-Language"),
    )


# -- HTML -------------------------------------------------------------------------------------


def _lang() -> str:
    return request.accept_languages.best_match(["en", "fr"]) or "en"


def _display(term: Any, resource: Resource, lang: str) -> dict[str, Any]:
    svc = services()
    if isinstance(term, NamedNode):
        iri = term.value
        own = iri.startswith(f"{svc.urls.base}/id/")
        text = labels.label(iri, lang) or (iri.rsplit("/", 1)[-1] if own else labels.display(iri, lang))
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
        row = rows.setdefault(p, {"iri": p, "label": labels.display(p, lang), "values": []})
        value = _display(o, resource, lang)
        if value.get("node"):
            value["rows"] = _rows(resource, value["iri"], lang)
            value["types"] = [
                labels.display(t.value, lang) for q, t in resource.description.get(value["iri"], ()) if q == RDF_TYPE
            ]
        row["values"].append(value)
    return list(rows.values())


class Inbound:
    """What links to a resource in this instance's public graphs: (subject, predicate) pairs of
    live resources (a deleted one's tombstone keeps some links, but is no resource to link to),
    in a stable order; whether there are more; when the latest of them last changed."""

    def __init__(self, links: list[tuple[str, str]], more: bool, modified: dt.datetime | None) -> None:
        self.links, self.more, self.modified = links, more, modified


def _inbound(resource: Resource) -> Inbound:
    svc = services()
    iri = resource.iri
    links = svc.records.links_to(iri, INBOUND_LIMIT + 1)
    more = len(links) > INBOUND_LIMIT
    links = links[:INBOUND_LIMIT]
    # When they last changed, from the record index (a # node stands for its resource).
    groups: dict[tuple[str, str], set[str]] = {}
    for subject, _ in links:
        ref = svc.urls.parse(subject.split("#", 1)[0])
        kind = KINDS.get(ref.kind or "territory") if ref is not None else None
        if ref is not None and kind is not None and not kind.private:
            groups.setdefault((ref.territory, kind.name), set()).add(subject.split("#", 1)[0])
    times = [
        entry.modified
        for (territory, kind_name), iris in groups.items()
        for entry in svc.records.index_entries(territory, KINDS[kind_name], sorted(iris)).values()
    ]
    return Inbound(links, more, max(times, default=None))


def _targets(resource: Resource, lang: str) -> list[dict[str, Any]]:
    """The targets a territory's page shows (server/indicators/targets.py), or none."""
    svc = services()
    ref = svc.urls.parse(resource.iri)
    if ref is None or ref.kind is not None or ref.fragment:
        return []
    return [t.to_json(lang) for t in targets(svc.records, ref.territory)]


def _decision(resource: Resource, lang: str) -> tuple[dict[str, Any] | None, dt.datetime | None]:
    """The current receivability decision a proposal's page shows (docs/rules.md), or None; and
    when its decisions last changed (one made or ended), or None if it never had one."""
    svc = services()
    ref = svc.urls.parse(resource.iri)
    if ref is None or ref.kind != "proposal" or ref.fragment or not ref.local_id:
        return None, None
    found = svc.records.receivability(ref.territory, ref.local_id)
    times = [t for d in found for t in (d["decided_at"], d["ended_at"]) if t]
    changed = max((dt.datetime.fromisoformat(t) for t in times), default=None)
    if not found or not found[0]["current"]:
        return None, changed
    current = found[0]
    return {
        "status": current["status"],
        "label": labels.display(concept_iri("receivability-statuses", current["status"]), lang),
        "decided_at": current["decided_at"],
        "document": svc.urls.receivability_document(ref.territory, ref.local_id),
        "conditions": [
            {**c, "label": labels.display(concept_iri("condition-outcomes", c["outcome"]), lang)}
            for c in current["conditions"]
        ],
    }, changed


def _html(
    resource: Resource,
    lang: str,
    inbound: Inbound,
    goals: list[dict[str, Any]] | None = None,
    decision: dict[str, Any] | None = None,
) -> str:
    main = resource.description.get(resource.iri, [])
    title = next(
        (o.value for p, o in main if p in TITLES and isinstance(o, Literal)),
        resource.iri.rsplit("/", 1)[-1],
    )
    types = [labels.display(o.value, lang) for p, o in main if p == RDF_TYPE]
    point = None
    geometry = resource.description.get(resource.iri + "#geometry", [])
    lat = next((o.value for p, o in geometry if p == SDO.latitude), None)
    lon = next((o.value for p, o in geometry if p == SDO.longitude), None)
    if lat is not None and lon is not None:
        point = {"lat": float(lat), "lon": float(lon)}
    # In a <script> element, "<" could end it ("</script>") or switch the HTML parser to a state
    # where its real end tag no longer ends it ("<!--<script>"): JSON escapes keep them data.
    jsonld = (
        json.dumps(
            compact(((t.subject, t.predicate, t.object) for t in resource.triples()), main=resource.iri),
            ensure_ascii=False,
        )
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    return render_template(
        "resource.html",
        resource=resource,
        title=title,
        types=types,
        rows=_rows(resource, resource.iri, lang),
        inbound=[
            {
                "subject": _display(NamedNode(subject), resource, lang),
                "label": labels.display(predicate, lang),
            }
            for subject, predicate in inbound.links
        ],
        more_inbound=inbound.more,
        point=point,
        formats=[f for f in OFFERED if f is not HTML],
        jsonld=jsonld,
        lang=lang,
        targets=goals or [],
        decision=decision,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
