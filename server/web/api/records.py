"""Routes of the record kinds (``/api/v1/{kind}``, ``/api/v1/territories/{t}/{kind}/…``): list,
get, create, replace, patch, delete — one set per kind of the model."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Response
from marshmallow import RAISE

from ...errors import Gone, ValidationFailed
from ...model.kinds import RECORD_KINDS, Kind
from ...records import Op
from ...services import services
from ..http import json_body, json_response, principal, territory_or_404, writer
from .common import (
    LOCAL_ID_PARAMETER,
    PATCH_DOC,
    SECURED,
    WRITE_ERRORS,
    blp,
    can_read_private,
    errors,
    get_record,
    if_match,
    links,
    patch_record,
    put_record,
    record_response,
    single_outcome,
)
from .lists import list_args, list_records, page_schema
from .openapi import TombstoneSchema


def _register_kind(kind: Kind) -> None:
    plural = kind.plural
    tag = plural
    args_all = list_args(kind, with_territory=True)
    args_one = list_args(kind, with_territory=False)
    page = page_schema(kind)
    body_doc = {"content": {"application/json": {"schema": kind.schema}}, "required": True}
    # POST makes the id: its body has none.
    new_doc = {"content": {"application/json": {"schema": kind.schema(exclude=("id",))}}, "required": True}
    private_note = " Votes are not published: an admin or editor key is required." if kind.private else ""
    read_security = SECURED if kind.private else {}
    # OpenAPI wants a description to be a string when present: none rather than null.
    list_doc = {"description": private_note.strip(), **read_security} if private_note else {}

    def route(rule: str, method: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        parameters = [LOCAL_ID_PARAMETER] if "<local_id>" in rule else None
        return blp.route(rule, methods=[method], endpoint=f"{kind.name}_{name}", parameters=parameters)

    @route(f"/{plural}", "GET", "list_all")
    @errors(400, 401, 403, 404)
    @blp.arguments(args_all, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
    @blp.response(200, page)
    @blp.doc(tags=[tag], summary=f"List {plural} across territories", **list_doc)
    @links(kind, "first")
    def list_all(args: dict[str, Any]) -> Response:
        svc = services()
        who = principal()
        if args.get("territory"):
            territories = list(dict.fromkeys(t.strip() for t in args["territory"].split(",") if t.strip()))
            for t in territories:
                territory_or_404(t)
        elif kind.private and who is not None:
            territories = [who.territory]
        else:
            territories = svc.records.territory_ids(replicas=not kind.private)
        can_read_private(kind, territories)
        return list_records(kind, territories, args, plural)

    @route(f"/territories/<territory>/{plural}", "GET", "list")
    @errors(400, 401, 403, 404)
    @blp.arguments(args_one, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
    @blp.response(200, page)
    @blp.doc(tags=[tag], summary=f"List the {plural} of a territory", **list_doc)
    @links(kind, "first")
    def list_one(args: dict[str, Any], territory: str) -> Response:
        territory_or_404(territory)
        can_read_private(kind, [territory])
        return list_records(kind, [territory], args, f"territories/{territory}/{plural}")

    @route(f"/territories/<territory>/{plural}", "POST", "create")
    @errors(*WRITE_ERRORS)
    @blp.response(201, kind.schema)
    @blp.doc(tags=[tag], summary=f"Create a {kind.name} with an id made by the server", requestBody=new_doc, **SECURED)
    @links(kind, "get", "replace", "change", "delete", "related", on=(201,))
    def create(territory: str) -> Response:
        who = writer(territory)
        data = json_body()
        if isinstance(data, dict) and "id" in data:
            raise ValidationFailed(
                f"POST makes the id; to create a {kind.name} with your own id, PUT it at …/{plural}/{{id}}",
                errors=[{"pointer": "#/id", "detail": "Not allowed in POST."}],
            )
        local_id = secrets.token_hex(8)
        svc = services()
        loaded = svc.records.prepare(kind, data, local_id=local_id)
        single_outcome(svc.records.write(territory, [Op(kind, local_id, "upsert", loaded, create_only=True)], who))
        return record_response(territory, kind, local_id, 201)

    @route(f"/territories/<territory>/{plural}/<local_id>", "GET", "get")
    @errors(401, 403, 404, 410)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.response(200, kind.schema)
    @blp.doc(
        tags=[tag],
        summary=f"Get a {kind.name}",
        description="404 if it never existed, 410 Gone (with the tombstone) if it was deleted." + private_note,
        **read_security,
    )
    @links(kind, "replace", "change", "delete", "related")
    def get(territory: str, local_id: str) -> Response:
        territory_or_404(territory)
        can_read_private(kind, [territory])
        return get_record(territory, kind, local_id)

    @route(f"/territories/<territory>/{plural}/<local_id>", "PUT", "put")
    @errors(*WRITE_ERRORS)
    @blp.alt_response(201, schema=kind.schema, description="Created", success=True)
    @blp.response(200, kind.schema)
    @blp.doc(
        tags=[tag],
        summary=f"Create or replace a {kind.name} with your own id",
        description=(
            "201 when created, 200 when replaced. `If-Match` makes it conditional. The body's `id`, if "
            "given, is the one of the path (422 otherwise)."
        ),
        requestBody=body_doc,
        **SECURED,
    )
    @links(kind, "get", "change", "delete", "related", on=(200, 201))
    def put(territory: str, local_id: str) -> Response:
        return put_record(territory, kind, local_id)

    @route(f"/territories/<territory>/{plural}/<local_id>", "PATCH", "patch")
    @errors(*WRITE_ERRORS, 410)
    @blp.response(200, kind.schema)
    @blp.doc(tags=[tag], summary=f"Change some fields of a {kind.name}", requestBody=PATCH_DOC, **SECURED)
    @links(kind, "get", "replace", "delete", "related")
    def patch(territory: str, local_id: str) -> Response:
        return patch_record(territory, kind, local_id)

    @route(f"/territories/<territory>/{plural}/<local_id>", "DELETE", "delete")
    @errors(401, 403, 404, 410, 412)
    @blp.response(200, TombstoneSchema, description="Deleted: the tombstone")
    @blp.doc(tags=[tag], summary=f"Delete a {kind.name} (a tombstone is kept for syncing consumers)", **SECURED)
    @links(kind, "get")
    def delete(territory: str, local_id: str) -> Response:
        who = writer(territory)
        svc = services()
        single_outcome(svc.records.write(territory, [Op(kind, local_id, "delete", if_match=if_match())], who))
        try:
            svc.records.get(territory, kind, local_id)
        except Gone as gone:  # the answer is the tombstone
            return json_response(gone.extra.get("record"), 200)
        raise AssertionError("a deleted record must be gone")  # pragma: no cover


for _kind in RECORD_KINDS:
    _register_kind(_kind)
