"""What every surface needs from a request: who is asking, JSON bodies, JSON answers, and
conditional GET with the resource's validators."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, request

from ..errors import Conflict, Unauthorized, UnsupportedMediaType
from ..ingest.peers import Peers
from ..model.schemas import parse_json
from ..rdf.conditional import last_modified, not_modified
from ..records.authz import require_writer
from ..services import services
from ..state import Principal
from ..urls import TERRITORY_ID_RE

JSON_TYPES = ("application/json",)


def principal() -> Principal | None:
    """The API key's principal, None without a key; a bad key is an error, not anonymity."""
    # Cached on the request (not on `g`, which an outer app context may share across requests).
    if "civicfed.principal" in request.environ:
        return request.environ["civicfed.principal"]
    header = request.headers.get("Authorization")
    found = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use `Authorization: Bearer <API key>`")
        found = services().state.principal(token.strip())
        if found is None:
            raise Unauthorized("invalid or revoked API key")
    request.environ["civicfed.principal"] = found
    return found


def link(path: str, **params: str | int | None) -> str:
    """A URL of the JSON API for the client to follow (``next``, ``Location``), where the client
    is talking: under the base IRI when the client reached its host (a proxy terminating TLS then
    keeps links on https without any setting), else on the address it reached (another port or
    name; behind a proxy with ``PROXY_FIX``, the forwarded one)."""
    urls = services().urls
    here = request.root_url
    root = urls.base if urlsplit(here).netloc == urlsplit(urls.base).netloc else here
    return urls.api(path, root=root, **params)


def territory_or_404(territory: str) -> str:
    services().records.require_readable(territory)
    return territory


def writer(territory: str) -> Principal:
    """The principal allowed to write in ``territory`` (401/403 before the body is even read;
    409 for a territory replicated from a peer: it is written at its origin)."""
    # An id that cannot be a territory is unknown before any database is asked (PostgreSQL
    # refuses some strings, NUL bytes, with an error instead of "no row").
    replica = Peers(services().state).replica(territory) if TERRITORY_ID_RE.fullmatch(territory) else None
    if replica is not None:
        raise Conflict(
            f"territory {territory!r} is a replica of {replica.origin} (peer {replica.peer}): write to it there",
            origin=replica.origin,
        )
    territory_or_404(territory)
    return require_writer(principal(), territory)


def json_body(allowed: tuple[str, ...] = JSON_TYPES) -> Any:
    """The request's JSON body, refused (415) in any other media type and (400) when malformed."""
    if request.mimetype not in allowed:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(allowed)} (got {request.mimetype or 'no Content-Type'})"
        )
    return parse_json(request.get_data(cache=False))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    if headers:
        resp.headers.update(headers)
    return resp


def validators(tag: str, modified: dt.datetime | None) -> dict[str, str]:
    """``ETag``, and ``Last-Modified`` once it can be honoured (a settled second)."""
    out = {"ETag": tag}
    if (stamp := last_modified(modified)) is not None:
        out["Last-Modified"] = stamp
    return out


def conditional(
    tag: str, modified: dt.datetime | None, send: Callable[[], Response], headers: dict[str, str] | None = None
) -> Response:
    """304 when the client's copy is current (``If-None-Match``, else ``If-Modified-Since``),
    else ``send()``; either way with the validators and ``headers``."""
    resp = Response(status=304) if not_modified(tag, modified) else send()
    resp.headers.update({**(headers or {}), **validators(tag, modified)})
    return resp
