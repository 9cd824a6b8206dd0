"""``/ldes/{territory}``: the territory's Linked Data Event Stream (server/ldes), page by page.

The root page (``/ldes/{t}``) describes the stream, its view and retention policy, and holds the
first members; each page links to the next (``/ldes/{t}/{time in µs}``). Turtle, JSON-LD and
N-Triples by content negotiation, ``?format=`` or a suffix (``/ldes/lyon.ttl``). A full page never
changes: ``Cache-Control: public, max-age=…, immutable``; the newest one is cached
``LDES_MAX_AGE`` seconds. Every page has an ETag (304 on a match).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from flask import Blueprint, Flask, Response

from vocabularies import CATALOG_PREFIXES, LDES, PREFIXES, TREE

from ..errors import NotFound
from ..ldes.document import page_lines
from ..model.kinds import KINDS
from ..rdf.negotiation import FORMATS, JSON_LD, N_TRIPLES, TURTLE, alternates, negotiate
from ..rdf.render import render_lines
from ..records.clock import micros
from ..services import services
from .http import conditional

bp = Blueprint("ldes", __name__)
OFFERED = (TURTLE, JSON_LD, N_TRIPLES)
_PAGE = re.compile(r"0|[1-9][0-9]{0,17}", re.ASCII)
LAST_US = micros(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
_PREFIXES = {**PREFIXES, **CATALOG_PREFIXES, "tree": str(TREE), "ldes": str(LDES)}


def _split(name: str) -> tuple[str, str | None]:
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix in FORMATS and FORMATS[suffix] in OFFERED:
        return stem, suffix
    return name, None


@bp.route("/ldes/<territory>", methods=["GET"])
def root(territory: str) -> Response:
    territory, suffix = _split(territory)
    return _page(territory, None, suffix)


@bp.route("/ldes/<territory>/<page>", methods=["GET"])
def page(territory: str, page: str) -> Response:
    stem, suffix = _split(page)
    # One URL per page: the decimal digits of a time this server can write (year 9999 at most).
    if not _PAGE.fullmatch(stem) or int(stem) > LAST_US:
        raise NotFound(f"no page {page!r} of the stream of {territory!r}: follow the relations from /ldes/{territory}")
    return _page(territory, int(stem), suffix)


def _page(territory: str, from_us: int | None, suffix: str | None) -> Response:
    svc = services()
    fmt = negotiate(OFFERED, suffix)
    svc.records.require_territory(territory)
    name = str(svc.records.get(territory, KINDS["territory"], territory).get("name") or territory)
    stream = svc.stream
    found = stream.page(territory, from_us)
    here = svc.urls.stream_page(territory, from_us)
    body = render_lines(page_lines(stream, found, name), fmt, here, _PREFIXES)
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if found.full:  # only retention, after its delay, ever takes a member away
        cache = f"public, max-age={int(stream.retention.full_log.total_seconds())}, immutable"
    else:
        cache = f"public, max-age={int(svc.config['LDES_MAX_AGE'])}"

    def send() -> Response:
        return Response(body, mimetype=fmt.media_type)

    resp = conditional(tag, None, send, {"Cache-Control": cache, "Access-Control-Allow-Origin": "*"})
    return alternates(resp, here, OFFERED)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
