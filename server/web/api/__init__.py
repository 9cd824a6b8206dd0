"""The JSON API (``/api/v1``): thin views over :mod:`server.records` and :mod:`server.ingest`,
described by OpenAPI 3.1.

``records`` (the record kinds), ``territories`` and ``ingest`` register their routes on the
blueprint of ``common``; ``lists`` holds list parameters and pages; ``openapi`` the document.
Request bodies are parsed by ``server/web/http.py`` (not webargs) so that malformed JSON, wrong
media types and oversized bodies get precise RFC 9457 problems.
"""

from __future__ import annotations

from flask import Flask

from . import compare, imports, ingest, join, records, rules, territories  # noqa: F401 - importing registers their routes
from .common import blp
from .openapi import register


def init_app(app: Flask) -> None:
    register(app, blp)
