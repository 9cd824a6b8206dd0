"""``/catalog`` and ``/dataset/{name}``: the DCAT-AP 3 catalog portals harvest, and its pages
for people.

Turtle, JSON-LD, RDF/XML and N-Triples by content negotiation or suffix (``/catalog.ttl``), HTML
for browsers. The catalog is paged (``page``, ``page_size`` up to CATALOG_MAX_PAGE_SIZE) in name
order, filtered by ``modified_since`` and ``q``; every page link is absolute and keeps the
format's suffix and the filters, so a harvester walks the same representation to the end with no
redirect. Answers carry ETag and Last-Modified (304 on a match) and answer HEAD.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, render_template, request

from vocabularies import CATALOG_PREFIXES, PREFIXES, RDF, SDO, SERVICE_PREFIXES
from vocabularies.licences import DEFAULT_LICENCE, LICENCES

from ..catalog import Catalog, Dataset
from ..catalog.dcat import PageLinks, Site, catalog_document, dataset_document, dataset_lines
from ..errors import BadRequest, CivicfedError, NotFound
from ..rdf.negotiation import FORMATS, HTML, JSON_LD, N_TRIPLES, RDF_XML, TURTLE, Format, alternates, negotiate
from ..rdf.render import render_lines
from ..services import services
from ..urls import Urls
from .errors import RENDERERS, render_html, render_problem
from .http import conditional

bp = Blueprint("catalog", __name__)
OFFERED = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML)
#: What a browser gets when it asks for HTML first; machines asking for nothing get Turtle.
MACHINE_FIRST = (TURTLE, HTML, JSON_LD, RDF_XML, N_TRIPLES)
_TURTLE_PREFIXES = {**PREFIXES, **SERVICE_PREFIXES, **CATALOG_PREFIXES}
RDF_TYPE = RDF.type


def site() -> Site:
    config = services().config
    licence = LICENCES.get(config["CATALOG_LICENSE"] or DEFAULT_LICENCE, LICENCES[DEFAULT_LICENCE])
    return Site(
        title_en="Citizen participation open data",
        title_fr="Données ouvertes de la participation citoyenne",
        publisher_name=config["CATALOG_PUBLISHER"],
        contact_email=config["CATALOG_CONTACT_EMAIL"],
        licence=licence,
    )


def _suffix(name: str) -> tuple[str, str | None]:
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix in FORMATS:
        return stem, suffix
    return name, None


def _format(suffix: str | None) -> Format:
    return negotiate(OFFERED if suffix or request.accept_mimetypes else MACHINE_FIRST, suffix)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    values = request.args.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise BadRequest(f"{name} given {len(values)} times", errors=[{"parameter": name, "detail": "Give it once."}])
    try:
        value = int(values[0])
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadRequest(
            f"{name} must be an integer from {low} to {high}", errors=[{"parameter": name, "detail": f"{low}..{high}"}]
        )
    return value


def _since() -> dt.datetime | None:
    raw = request.args.get("modified_since")
    if not raw:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None:
        raise BadRequest(
            "modified_since must be an ISO 8601 date or date-time",
            errors=[{"parameter": "modified_since", "detail": "e.g. 2026-01-31 or 2026-01-31T10:00:00Z"}],
        )
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def select(catalog: Catalog, since: dt.datetime | None, q: str | None) -> list[Dataset]:
    """The live datasets matching the filters, in the catalog's (name) order."""
    words = (q or "").lower().split()
    return [
        d
        for d in catalog.live()
        if (since is None or (d.modified is not None and d.modified >= since))
        and all(w in d.search_text for w in words)
    ]


def _render(lines: list[str], fmt: Format, main: str | None = None) -> bytes:
    return render_lines(lines, fmt, main, _TURTLE_PREFIXES)


#: The prefixes of a catalog page in Turtle: fixed, so that each dataset's Turtle can be written
#: once and pages assembled from it.
CATALOG_TURTLE = {
    p: ns
    for p, ns in _TURTLE_PREFIXES.items()
    if p in ("rdf", "xsd", "dcat", "dct", "foaf", "skos", "geo", "vcard", "hydra", "dcatap", "filetype",
             "frequency", "language", "datatheme")
}  # fmt: skip


_LOCAL = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_BY_NAMESPACE = sorted(((ns, p) for p, ns in CATALOG_TURTLE.items()), key=lambda x: -len(x[0]))


#: Where the vocabulary IRIs a page repeats begin (the data's own IRIs are left whole).
_VOCABULARY = tuple(sorted({"<" + ns[: ns.index("/", 8) + 1] for ns in CATALOG_TURTLE.values()}))


@functools.lru_cache(maxsize=4096)
def _term(term: str) -> str:
    """A vocabulary IRI as a prefixed name when its local part allows it (the same few hundred
    recur on every page: kept)."""
    iri = term[1:-1]
    for ns, prefix in _BY_NAMESPACE:
        if iri.startswith(ns) and _LOCAL.fullmatch(iri[len(ns) :]):
            return f"{prefix}:{iri[len(ns) :]}"
    return term


def _turtle_body(lines: list[str]) -> bytes:
    """N-Triples lines as Turtle grouped by subject and predicate, with the prefixes of
    CATALOG_TURTLE (declared once by the page). Every N-Triples term is a Turtle term: only
    subjects are grouped and IRIs shortened, which needs no parser (a page is written from
    each dataset's kept Turtle, and first writes of datasets are on the harvester's clock)."""
    out: list[str] = []
    subject = predicate = None
    for line in sorted(set(lines)):
        s, p, rest = line.split(" ", 2)
        o = rest[: -len(" .")] if rest.endswith(" .") else rest
        if "^^<" in o:
            value, _, datatype = o.rpartition("^^")
            o = f"{value}^^{_term(datatype)}"
        elif o.startswith(_VOCABULARY):
            o = _term(o)
        p = "a" if p == f"<{RDF_TYPE}>" else _term(p)
        if s != subject:
            if subject is not None:
                out.append(" .\n")
            out.append(f"{s} {p} {o}")
            subject, predicate = s, p
        elif p != predicate:
            out.append(f" ;\n    {p} {o}")
            predicate = p
        else:
            out.append(f" , {o}")
    if subject is not None:
        out.append(" .\n")
    return "".join(out).encode()


@functools.lru_cache(maxsize=50_000)
def _dataset_turtle(base: str, site_: Site, d: Dataset) -> tuple[bytes, frozenset[str]]:
    """A dataset's own description in Turtle, kept while the dataset is unchanged (a harvest walks
    the same pages again), and the lines of what it refers to."""
    own, shared = dataset_lines(Urls(base), site_, d)
    return _turtle_body(own), frozenset(shared)


def _turtle_page(urls: Urls, site_: Site, page: list[Dataset], links: PageLinks, everything: list[Dataset]) -> bytes:
    head = catalog_document(urls, site_, page, links, everything, with_datasets=False)
    chunks, shared = [], set(head)
    for d in page:
        chunk, refs = _dataset_turtle(urls.base, site_, d)
        chunks.append(chunk)
        shared |= refs
    prefixes = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in CATALOG_TURTLE.items()).encode()
    return prefixes + _turtle_body(list(shared)) + b"".join(chunks)


def _answer(body_of: Any, fmt: Format, tag_key: str, modified: dt.datetime | None, base_url: str) -> Response:
    tag = '"' + hashlib.sha256(f"{tag_key}|{fmt.suffix}".encode()).hexdigest()[:24] + '"'

    def send() -> Response:
        resp = Response(body_of(), mimetype=fmt.media_type)
        if fmt is HTML:
            resp.headers["Content-Type"] = "text/html; charset=utf-8"
        return resp

    resp = conditional(tag, modified, send, {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"})
    return alternates(resp, base_url, [f for f in OFFERED if f is not HTML] + [HTML])


@bp.route("/catalog", methods=["GET"])
@bp.route("/catalog.<suffix>", methods=["GET"])
def catalog_page(suffix: str | None = None) -> Response:
    if suffix is not None and suffix not in FORMATS:
        raise NotFound(f"no catalog format {suffix!r}: use one of {', '.join(f.suffix for f in OFFERED)}")
    fmt = _format(suffix)
    svc = services()
    config = svc.config
    page = _int_arg("page", 1, 1, 10**9)
    size = _int_arg("page_size", int(config["CATALOG_PAGE_SIZE"]), 1, int(config["CATALOG_MAX_PAGE_SIZE"]))
    since, q = _since(), request.args.get("q") or None
    catalog = svc.catalog()
    matching = select(catalog, since, q)
    last = max(1, math.ceil(len(matching) / size))
    shown = matching[(page - 1) * size : page * size]
    base = f"{svc.urls.base}/catalog"

    def url(n: int) -> str:
        params = {"page": n, "page_size": size, "modified_since": request.args.get("modified_since"), "q": q}
        return f"{base}.{fmt.suffix}?" + urlencode([(k, v) for k, v in params.items() if v is not None])

    links = PageLinks(
        current=url(page),
        first=url(1),
        last=url(last),
        next=url(page + 1) if page < last else None,
        previous=url(page - 1) if 1 < page <= last + 1 else None,
        total=len(matching),
        per_page=size,
    )

    def body() -> bytes:
        if fmt is HTML:
            return render_template(
                "catalog.html", datasets=shown, links=links, page=page, last=last, q=q or "", base=svc.urls.base
            ).encode()
        if fmt is TURTLE:
            return _turtle_page(svc.urls, site(), shown, links, catalog.live())
        return _render(catalog_document(svc.urls, site(), shown, links, catalog.live()), fmt, base)

    key = f"{catalog.version}|{request.query_string.decode()}|{svc.urls.base}"
    return _answer(body, fmt, key, catalog.modified, base)


@bp.route("/dataset/<name>", methods=["GET"])
def dataset_page(name: str) -> Response:
    stem, suffix = _suffix(name)
    fmt = _format(suffix)
    svc = services()
    catalog = svc.catalog()
    d = catalog.by_name.get(stem)
    if d is None or d.deleted:
        raise NotFound(f"no dataset {stem!r} in this catalog: see {svc.urls.base}/catalog")

    def body() -> bytes:
        if fmt is HTML:
            return render_template(
                "dataset.html", d=d, base=svc.urls.base, schema_org=json.dumps(schema_org(d), ensure_ascii=False)
            ).encode()
        return _render(dataset_document(svc.urls, site(), d), fmt, d.iri)

    key = f"{d.name}|{d.count}|{d.modified}|{svc.urls.base}"
    return _answer(body, fmt, key, d.modified, d.iri)


def schema_org(d: Dataset) -> dict[str, Any]:
    """The dataset as schema.org ``Dataset`` JSON-LD, for general dataset search engines."""
    out: dict[str, Any] = {
        "@context": str(SDO),
        "@type": "Dataset",
        "@id": d.iri,
        "name": d.title_en,
        "alternateName": d.title_fr,
        "description": d.description_en,
        "identifier": d.iri,
        "url": d.iri + ".html",
        "keywords": list(d.keywords),
        "license": d.territory.licence.iri,
        "isAccessibleForFree": True,
        "creator": {"@type": "GovernmentOrganization", "name": d.territory.name},
        "spatialCoverage": {"@type": "Place", "name": d.territory.name},
        "distribution": [
            {"@type": "DataDownload", "encodingFormat": r.media_type, "contentUrl": r.url, "name": r.title_en}
            for r in d.distributions
        ],
    }
    if d.start and d.end:
        out["temporalCoverage"] = f"{d.start.isoformat()}/{d.end.isoformat()}"
    if d.modified:
        out["dateModified"] = d.modified.isoformat()
    if d.bbox:
        w, s, e, n = d.bbox
        out["spatialCoverage"]["geo"] = {"@type": "GeoShape", "box": f"{s} {w} {n} {e}"}
    return out


def _error(err: CivicfedError) -> Response:
    """Problem details for harvesters (which may ask for Turtle and still read a JSON error), a
    page for a browser that prefers HTML."""
    asks_html = any(value == "text/html" and q > 0 for value, q in request.accept_mimetypes)
    return render_html(err) if asks_html else render_problem(err)


def _prepare(base: str, site_: Site) -> Callable[[Catalog], None]:
    """Write each new or changed dataset's Turtle when the catalog changes, so that a harvest
    finds its pages ready (after a write, that is the datasets of the territory written to; at
    start, every dataset)."""

    def prepare(catalog: Catalog) -> None:
        for d in catalog.fresh():
            if not d.deleted:
                _dataset_turtle(base, site_, d)
                time.sleep(0)  # let request threads have the GIL between datasets

    return prepare


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    with app.app_context():
        app.extensions["civicfed"].catalog_listeners.append(_prepare(services().urls.base, site()))
    RENDERERS["/catalog"] = RENDERERS["/dataset"] = _error
