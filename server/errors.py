"""Typed errors that carry their HTTP status, and the one handler that renders them per surface.

Views and services raise these; the app-level handler picks the rendering from the request path:
RFC 9457 problem details for the JSON API, a short HTML page for browsers elsewhere.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://w3id.org/civicfed/problems#"
PROBLEM_JSON = "application/problem+json"


class CivicfedError(Exception):
    """An error a client can act on. Subclasses set ``status``, ``slug`` and ``title``."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = dict(headers or {})
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(CivicfedError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedBody(CivicfedError):
    status, slug, title = 400, "malformed-body", "Malformed request body"


class Unauthorized(CivicfedError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="civicfed"'}, **kwargs)


class Forbidden(CivicfedError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(CivicfedError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(CivicfedError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(CivicfedError):
    status, slug, title = 406, "not-acceptable", "No acceptable representation"


class Conflict(CivicfedError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(CivicfedError):
    status, slug, title = 410, "gone", "Deleted"


class PreconditionFailed(CivicfedError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(CivicfedError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(CivicfedError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(CivicfedError):
    status, slug, title = 422, "validation", "Invalid data"


class ServiceUnavailable(CivicfedError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def pointer(path: list[str | int]) -> str:
    """A JSON Pointer (RFC 6901) as a URI fragment, the form RFC 9457's examples use."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path else "#"


def flatten_messages(messages: Any, path: list[str | int] | None = None) -> list[dict[str, Any]]:
    """Marshmallow's nested error messages as a flat list of ``{pointer, detail}``."""
    path = path or []
    out: list[dict[str, Any]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            sub = path if key == "_schema" else [*path, key]
            out.extend(flatten_messages(value, sub))
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            out.extend({"pointer": pointer(path), "detail": m} for m in messages)
        else:
            for m in messages:
                out.extend(flatten_messages(m, path))
    else:
        out.append({"pointer": pointer(path), "detail": str(messages)})
    return out


def from_validation_error(exc: ValidationError, what: str = "record") -> ValidationFailed:
    errors = flatten_messages(exc.messages)
    first = errors[0] if errors else {"pointer": "#", "detail": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"invalid {what}: {first['pointer']}: {first['detail']}{more}", errors=errors)


_HTTP_EXCEPTIONS: dict[int, type[CivicfedError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
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

    from .store import StoreError

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
