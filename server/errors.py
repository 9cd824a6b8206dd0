"""Typed errors that carry their HTTP status: views, services, importers and the command line
raise them; one app-level handler (server/web/errors.py) renders them per surface, and the
command line prints them as one paragraph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from vocabularies import PROBLEMS

PROBLEM_BASE = str(PROBLEMS)
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


class TooManyRequests(CivicfedError):
    status, slug, title = 429, "rate-limited", "Too many requests"


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
