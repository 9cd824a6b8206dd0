"""The one app-level error handler: typed errors (and werkzeug's, and store failures) rendered
per surface — RFC 9457 problem details for the JSON API, plain text for the SPARQL protocol, a
short HTML page for browsers elsewhere. Surfaces register their renderer by path prefix.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ..errors import (
    PROBLEM_JSON,
    BadRequest,
    CivicfedError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    UnsupportedMediaType,
    flatten_messages,
)
from ..store import StoreError

log = logging.getLogger(__name__)

_HTTP_EXCEPTIONS: dict[int, type[CivicfedError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: TooManyRequests,
}


def _webargs_error(exc: HTTPException) -> CivicfedError | None:
    """webargs (flask-smorest) reports invalid query parameters in ``exc.data["messages"]``."""
    data = getattr(exc, "data", None)
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, dict):
        return None
    errors: list[dict[str, Any]] = []
    for location, by_field in messages.items():
        for entry in flatten_messages(by_field):
            name = entry["pointer"].removeprefix("#/") or location
            key = "parameter" if location in ("query", "headers", "view_args") else "pointer"
            errors.append({key: name if key == "parameter" else entry["pointer"], "detail": entry["detail"]})
    first = errors[0] if errors else {"detail": "invalid request"}
    where = first.get("parameter") or first.get("pointer")
    return BadRequest(f"invalid parameter {where}: {first['detail']}", errors=errors)


def _as_civicfed(exc: HTTPException) -> CivicfedError:
    parsed = _webargs_error(exc)
    if parsed is not None:
        return parsed
    cls = _HTTP_EXCEPTIONS.get(exc.code or 500)
    if cls is None:
        err = CivicfedError(exc.description or exc.name)
        err.status, err.slug, err.title = exc.code or 500, "http-error", exc.name
        return err
    detail = exc.description or cls.title
    if exc.code == 413:
        detail = "the request body is larger than this server accepts (setting MAX_CONTENT_LENGTH)"
    headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
    return cls(detail, headers=headers)


def render_problem(err: CivicfedError) -> Response:
    body = json.dumps(err.problem(request.path), ensure_ascii=False)
    resp = Response(body, status=err.status, mimetype=PROBLEM_JSON)
    resp.headers.update(err.headers)
    return resp


def render_html(err: CivicfedError) -> Response:
    body = (
        f"<!doctype html><meta charset=utf-8><title>{err.status} {html.escape(err.title)}</title>"
        f"<h1>{err.status} {html.escape(err.title)}</h1><p>{html.escape(err.detail)}</p>"
    )
    resp = Response(body, status=err.status, mimetype="text/html")
    resp.headers.update(err.headers)
    return resp


#: Path prefix → renderer. Surfaces register theirs; the longest matching prefix wins.
RENDERERS: dict[str, Callable[[CivicfedError], Response]] = {"/api/v1": render_problem, "/ns": render_problem}


def _render(err: CivicfedError) -> Response:
    path = request.path
    for prefix in sorted(RENDERERS, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "."):
            return RENDERERS[prefix](err)
    best = request.accept_mimetypes.best_match(["text/html", "application/json", PROBLEM_JSON])
    return render_problem(err) if best in ("application/json", PROBLEM_JSON) else render_html(err)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CivicfedError)
    def _civicfed(err: CivicfedError) -> Response:
        return _render(err)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return _render(_as_civicfed(exc))

    @app.errorhandler(StoreError)
    def _store(exc: StoreError) -> Response:
        # The store is down, locked or refused the operation: nothing was changed, try later.
        log.error("store error on %s %s: %s", request.method, request.path, exc)
        return _render(
            ServiceUnavailable(f"the data store could not complete the request; nothing was changed ({exc})")
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        err = CivicfedError("an unexpected error happened on the server; it has been logged")
        err.status, err.slug, err.title = 500, "internal", "Internal server error"
        return _render(err)
