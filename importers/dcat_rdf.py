"""RDF for the catalog importers (:mod:`importers.dcat_catalog`, :mod:`importers.ckan_portal`): a
document's syntax, parsing it safely, and the N-Triples terms of the statements they yield.

Parsing is safe: RDF/XML is checked with defusedxml before rdflib reads it (a document declaring
entities — an entity bomb, an external entity — is refused), and a JSON-LD document's remote
``@context`` is fetched through the :class:`~importers.remote.Fetcher` and put in its place, so
that rdflib never fetches anything itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import rdflib
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeXml

from server.errors import CivicfedError, MalformedBody
from server.model.terms import literal, typed

from .remote import Fetcher

#: Remote JSON-LD contexts fetched at most for one document (each counts, imports included).
MAX_CONTEXTS = 10
#: What the catalog is asked for, best first (every syntax rdflib reads).
ACCEPT = (
    "text/turtle, application/ld+json;q=0.9, application/rdf+xml;q=0.9, application/n-triples;q=0.8, "
    "application/trig;q=0.7, application/n-quads;q=0.7, text/n3;q=0.6, application/xml;q=0.5, */*;q=0.1"
)
SYNTAX_BY_MEDIA_TYPE = {
    "text/turtle": "turtle",
    "application/x-turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/ld+json": "json-ld",
    "application/json": "json-ld",
    "application/n-triples": "nt",
    "text/n3": "n3",
    "application/trig": "trig",
    "application/n-quads": "nquads",
}
SYNTAX_BY_SUFFIX = {
    ".ttl": "turtle",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".jsonld": "json-ld",
    ".json": "json-ld",
    ".nt": "nt",
    ".n3": "n3",
    ".trig": "trig",
    ".nq": "nquads",
}
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_QUAD_SYNTAXES = ("json-ld", "trig", "nquads")

# -- N-Triples terms -----------------------------------------------------------------------------

#: Characters an N-Triples IRI may not hold (portals give URLs with spaces): percent-encoded.
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


def iri(value: Any) -> str | None:
    """An absolute IRI as an N-Triples term, or None when it is not one."""
    if not isinstance(value, str) or not _SCHEME.match(value.strip()):
        return None
    return "<" + _IRI_FORBIDDEN.sub(lambda m: quote(m.group(), safe=""), value.strip()) + ">"


def text(value: str, language: str | None = None) -> str:
    """A string literal (a lone surrogate, which no store can write, replaced); a language tag
    that is not one is left out rather than failing the whole write."""
    clean = value.encode("utf-8", "replace").decode("utf-8")
    return literal(clean, language if language and _LANGUAGE.fullmatch(language) else None)


def typed_text(value: str, datatype: str) -> str:
    """A typed literal whose lexical form is escaped (``typed`` writes it as it is)."""
    return typed(text(value)[1:-1], datatype)


def genid(*parts: str) -> str:
    """The IRI a blank node gets: the same for the same node of the same source on every run.
    A URN rather than an IRI under the source graph: an importer does not know the territory,
    hence the graph, it is read for."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, chr(0).join(parts))}"


def source_slug(*parts: str, limit: int = 100) -> str:
    """A source id's tail: a file's name, or a URL's host, port, path and query with what else
    picks the datasets (a filter), so that two sources of one portal keep graphs of their own."""
    first, *rest = parts
    if first.startswith(("http://", "https://")):
        url = urlsplit(first)
        first = f"{url.netloc.rsplit('@', 1)[-1]}{url.path} {url.query}"  # no user name nor password
    whole = " ".join(p for p in (first, *rest) if p)
    out = re.sub(r"[^a-z0-9]+", "-", whole.lower()).strip("-")[:limit].strip("-")
    return out or "x-" + hashlib.sha256(whole.encode()).hexdigest()[:12]


# -- reading a document ----------------------------------------------------------------------------


def guess_syntax(media_type: str, where: str, data: bytes) -> str:
    """The rdflib parser for a document: by its media type, else by its name's suffix, else by
    its first bytes. HTML is refused (a portal's page instead of its catalog)."""
    head = data[:512].lstrip().lower()
    if media_type in _HTML_TYPES or head.startswith((b"<!doctype html", b"<html")):
        raise MalformedBody(f"{where} is an HTML page, not RDF: give the catalog's RDF URL (often …/catalog.ttl)")
    if media_type in SYNTAX_BY_MEDIA_TYPE:
        return SYNTAX_BY_MEDIA_TYPE[media_type]
    suffix = Path(urlsplit(where).path).suffix.lower()
    if suffix in SYNTAX_BY_SUFFIX:
        return SYNTAX_BY_SUFFIX[suffix]
    if head.startswith(b"<"):
        return "xml"
    return "json-ld" if head.startswith((b"{", b"[")) else "turtle"


def parse(data: bytes, syntax: str, base: str, label: str, fetcher: Fetcher | None = None) -> rdflib.Graph:
    """The triples of one document (every graph of a TriG, N-Quads or JSON-LD one), or
    MalformedBody naming it and, where the parser says, the line."""
    source: Any = data
    if syntax == "xml":
        _refuse_entities(data, label)
    elif syntax == "json-ld":
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise MalformedBody(f"{label} is not JSON: {exc}") from exc
        try:
            source = json.dumps(inline_contexts(doc, base, fetcher or configured_fetcher(), [MAX_CONTEXTS]))
        except RecursionError as exc:
            raise MalformedBody(f"{label} is nested too deeply") from exc
    # Syntaxes with named graphs go into a Dataset, whose graphs are then merged.
    target = rdflib.Dataset() if syntax in _QUAD_SYNTAXES else rdflib.Graph()
    try:
        target.parse(data=source, format=syntax, publicID=base)
    except CivicfedError:
        raise
    except Exception as exc:  # rdflib's parsers raise anything (SyntaxError, SAXParseException, KeyError…)
        raise MalformedBody(f"{label} could not be read as {syntax}: {_short(exc)}") from exc
    if isinstance(target, rdflib.Dataset):
        graph = rdflib.Graph()
        for s, p, o, _g in target.quads((None, None, None, None)):
            graph.add((s, p, o))
        return graph
    return target


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _refuse_entities(data: bytes, label: str) -> None:
    """rdflib's XML parser expands internal entities: a document declaring any (an entity
    bomb, an external entity) is refused before it reaches it."""
    try:
        SafeXml.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedBody(f"{label}: refused, the XML declares entities ({exc})") from exc
    except SafeXml.ParseError as exc:
        raise MalformedBody(f"{label} is not well-formed XML: {exc}") from exc


def inline_contexts(node: Any, base: str, fetcher: Fetcher, budget: list[int]) -> Any:
    """The JSON-LD document with every remote ``@context`` (and ``@import``) fetched through the
    fetcher and put in its place: rdflib would fetch them itself, past the host allowlist."""
    if isinstance(node, list):
        return [inline_contexts(item, base, fetcher, budget) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        k: _context(v, base, fetcher, budget, ()) if k == "@context" else inline_contexts(v, base, fetcher, budget)
        for k, v in node.items()
    }


def _context(value: Any, base: str, fetcher: Fetcher, budget: list[int], chain: tuple[str, ...]) -> Any:
    if isinstance(value, list):
        return [_context(v, base, fetcher, budget, chain) for v in value]
    if isinstance(value, str):
        url = urljoin(base, value)
        if url in chain:
            raise MalformedBody(f"the JSON-LD context {url} includes itself")
        if budget[0] <= 0:
            raise MalformedBody(f"more than {MAX_CONTEXTS} remote JSON-LD contexts")
        budget[0] -= 1
        fetched = fetcher.get(url, headers={"Accept": "application/ld+json, application/json;q=0.9"})
        try:
            remote = json.loads(fetched.content)
        except (ValueError, RecursionError) as exc:
            raise MalformedBody(f"the JSON-LD context {url} is not JSON: {exc}") from exc
        if not isinstance(remote, dict) or "@context" not in remote:
            raise MalformedBody(f"{url} is not a JSON-LD context document")
        return _context(remote["@context"], fetched.url, fetcher, budget, (*chain, url))
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    if isinstance(value.get("@import"), str):
        imported = _context(value["@import"], base, fetcher, budget, chain)
        out.update(imported if isinstance(imported, dict) else {})
    for k, v in value.items():
        if k == "@import":
            continue
        if isinstance(v, dict) and "@context" in v:  # a scoped context of a term
            v = {**v, "@context": _context(v["@context"], base, fetcher, budget, chain)}
        out[k] = v
    return out


def configured_fetcher() -> Fetcher:
    """The server's fetcher settings (IMPORT_*) within the application; outside it, a fetcher
    allowing no host (a caller passes its own ``fetcher``)."""
    from flask import current_app, has_app_context

    return Fetcher.from_config(current_app.config) if has_app_context() else Fetcher()
