"""One content-negotiation helper for every surface that offers several representations.

A suffix (``.ttl``) or ``?format=`` wins; otherwise ``Accept`` with q-values (werkzeug's
``best_match``); otherwise the first offered format. Nothing acceptable → 406 with the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import Response, request
from pyoxigraph import RdfFormat
from werkzeug.datastructures import MIMEAccept

from ..errors import NotAcceptable


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    media_type: str
    rdf_format: RdfFormat | None = None


TURTLE = Format("turtle", "ttl", "text/turtle", RdfFormat.TURTLE)
JSON_LD = Format("jsonld", "jsonld", "application/ld+json", RdfFormat.JSON_LD)
RDF_XML = Format("rdfxml", "rdf", "application/rdf+xml", RdfFormat.RDF_XML)
N_TRIPLES = Format("ntriples", "nt", "application/n-triples", RdfFormat.N_TRIPLES)
HTML = Format("html", "html", "text/html")

#: The registry: every representation civicfed can produce, by suffix.
FORMATS: dict[str, Format] = {f.suffix: f for f in (TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML)}
RDF_FORMATS: tuple[Format, ...] = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES)


def negotiate(offered: Sequence[Format], suffix: str | None = None) -> Format:
    """Pick the representation to send among ``offered`` (first one is the default)."""
    wanted = suffix or request.args.get("format")
    if wanted:
        for f in offered:
            if wanted in (f.suffix, f.name, f.media_type):
                return f
        raise NotAcceptable(
            f"format {wanted!r} is not offered here; offered: {', '.join(f.suffix for f in offered)}",
            offered=[f.media_type for f in offered],
        )
    if not request.accept_mimetypes:
        return offered[0]
    # Media type parameters other than q need not match: ``application/ld+json;profile="…#compacted"``
    # (JSON-LD 1.1 §9) or ``text/turtle;charset=utf-8`` ask for what is offered here (werkzeug
    # would match parameters exactly and answer 406).
    accept = MIMEAccept([(value.split(";", 1)[0].strip(), q) for value, q in request.accept_mimetypes])
    best = accept.best_match([f.media_type for f in offered])
    if best is None:
        raise NotAcceptable(
            f"none of the accepted media types can be produced; offered: {', '.join(f.media_type for f in offered)}",
            offered=[f.media_type for f in offered],
        )
    return next(f for f in offered if f.media_type == best)


def alternate_links(base_url: str, offered: Sequence[Format], current: Format | None = None) -> str:
    """A ``Link`` value with one ``rel="alternate"`` per representation (``{base_url}.{suffix}``)
    other than ``current``."""
    return ", ".join(
        f'<{base_url}.{f.suffix}>; rel="alternate"; type="{f.media_type}"' for f in offered if f is not current
    )


def alternates(resp: Response, base_url: str, offered: Sequence[Format]) -> Response:
    """Add ``Vary: Accept`` and one ``Link: rel="alternate"`` per representation."""
    resp.headers.add("Vary", "Accept")
    resp.headers["Link"] = alternate_links(base_url, offered)
    return resp
