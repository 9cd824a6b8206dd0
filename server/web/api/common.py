"""What the JSON API's views share: the blueprint, the write helpers (PUT, PATCH and the answer
with the stored record), private-kind reads, and the documentation of errors."""

from __future__ import annotations

import datetime as dt
import http
from collections.abc import Callable
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint

from ...errors import BadRequest, Forbidden, Unauthorized, ValidationFailed
from ...model.kinds import Kind
from ...records import Op, Outcome, WriteReport, etag
from ...services import services
from ...urls import LOCAL_ID_PATTERN
from ..http import conditional, json_body, json_response, link, principal, writer
from .openapi import link_names

PATCH_TYPES = ("application/merge-patch+json", "application/json")
WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422)
SECURED = {"security": [{"bearer": []}]}
#: The record id in a path: what a PUT refuses otherwise (422), documented.
LOCAL_ID_PARAMETER = {
    "in": "path",
    "name": "local_id",
    "description": "The territory's own identifier of the record.",
    "schema": {"type": "string", "pattern": f"^{LOCAL_ID_PATTERN}$"},
}
PATCH_DOC = {
    "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
    "description": "RFC 7396 JSON Merge Patch (null removes a field).",
    "required": True,
}

blp = Blueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="Participation records of the territories this server hosts.",
)


@blp.before_request
def _check_request() -> None:
    # A client sending a revoked or mistyped key learns it at once, even on public reads.
    principal()
    # No parameter of this API takes several values: which one would win is not the client's guess.
    repeated = sorted(k for k, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise BadRequest(
            f"parameter {repeated[0]} is given more than once",
            errors=[{"parameter": k, "detail": "Given more than once."} for k in repeated],
        )


def errors(*codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the error statuses an operation can answer."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for code in codes:
            func = blp.alt_response(code, response=http.HTTPStatus(code).name)(func)
        return func

    return decorate


def links(kind: Kind, *names: str, on: tuple[int, ...] = (200,)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the links a client can follow from the answers with statuses ``on``: the named
    links of ``kind`` (see ``openapi.LINKS``; ``"related"``: its references and the lists naming it)."""
    return blp.doc(responses={status: {"links": link_names(kind, *names)} for status in on})


def if_match() -> str | None:
    value = request.headers.get("If-Match")
    return value.strip() if value else None


def _if_none_match_any() -> bool:
    """``If-None-Match: *`` on a write: create only (RFC 9110 §13.1.2); a tag list means nothing there."""
    value = request.headers.get("If-None-Match")
    if value is None:
        return False
    if value.strip() != "*":
        raise BadRequest("on a write, If-None-Match takes * only (create if absent)")
    return True


def single_outcome(report: WriteReport) -> Outcome:
    outcome = report.outcomes[0]
    if outcome.error is not None:
        raise outcome.error
    return outcome


def record_path(territory: str, kind: Kind, local_id: str) -> str:
    """A record's path under /api/v1 (a territory's record is the territory itself)."""
    if kind.name == "territory":
        return f"territories/{territory}"
    return f"territories/{territory}/{kind.plural}/{local_id}"


def record_response(territory: str, kind: Kind, local_id: str, status: int) -> Response:
    """The record as stored after a write, with its ETag (and its Location when created)."""
    record = services().records.get(territory, kind, local_id)
    headers = {"ETag": etag(_modified(record))}
    if status == 201:
        headers["Location"] = link(record_path(territory, kind, local_id))
    return json_response(record, status, headers)


def get_record(territory: str, kind: Kind, local_id: str) -> Response:
    """GET of one record: 200 with it and its validators, or 304 when the client's copy is current."""
    record = services().records.get(territory, kind, local_id)
    modified = _modified(record)
    return conditional(etag(modified), modified, lambda: json_response(record))


def _modified(record: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(record["record_modified"])


def put_record(territory: str, kind: Kind, local_id: str) -> Response:
    """PUT: create (201) or replace (200) a record with the client's id; ``If-Match`` makes it
    conditional."""
    who = writer(territory)
    svc = services()
    loaded = svc.records.prepare(kind, json_body(), local_id=local_id)
    op = Op(kind, local_id, "upsert", loaded, if_match=if_match(), if_none_match=_if_none_match_any())
    outcome = single_outcome(svc.records.write(territory, [op], who))
    return record_response(territory, kind, local_id, 201 if outcome.status == "created" else 200)


def patch_record(territory: str, kind: Kind, local_id: str) -> Response:
    """PATCH: an RFC 7396 merge patch of a record."""
    who = writer(territory)
    doc = json_body(PATCH_TYPES)
    if not isinstance(doc, dict):
        raise ValidationFailed("a merge patch is a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}])
    single_outcome(services().records.write(territory, [Op(kind, local_id, "patch", doc, if_match=if_match())], who))
    return record_response(territory, kind, local_id, 200)


def can_read_private(kind: Kind, territories: list[str]) -> None:
    """Individual votes are never published: only a territory's admin/editor keys read them."""
    if not kind.private:
        return
    who = principal()
    if who is None:
        raise Unauthorized(f"{kind.plural} are not published; reading them needs an admin or editor API key")
    if who.role not in ("admin", "editor") or any(t != who.territory for t in territories):
        raise Forbidden(f"this key cannot read {kind.plural} of {', '.join(territories)}")
