"""Routes of territories (``/api/v1/territories``): list, get, replace and patch a territory's
record. Territories are created with ``civicfed territory create`` (they carry a secret)."""

from __future__ import annotations

from typing import Any

from flask import Response
from marshmallow import RAISE

from ...model.kinds import KINDS
from ...services import services
from ..http import territory_or_404
from .common import PATCH_DOC, SECURED, WRITE_ERRORS, blp, errors, get_record, links, patch_record, put_record
from .lists import list_args, list_records, page_schema

TERRITORY = KINDS["territory"]


@blp.route("/territories", methods=["GET"], endpoint="territory_list")
@blp.arguments(
    list_args(TERRITORY, with_territory=False), location="query", error_status_code=400, as_kwargs=False, unknown=RAISE
)
@blp.response(200, page_schema(TERRITORY))
@blp.doc(
    tags=["territories"],
    summary="List the territories this server hosts, and those it replicates from peers (with their `origin`)",
)
@links(TERRITORY, "first")
def list_territories(args: dict[str, Any]) -> Response:
    return list_records(TERRITORY, services().records.territory_ids(), args, "territories")


@blp.route("/territories/<territory>", methods=["GET"], endpoint="territory_get")
@errors(404)
@blp.alt_response(304, description="Not modified (If-None-Match)")
@blp.response(200, TERRITORY.schema)
@blp.doc(tags=["territories"], summary="Get a territory (official codes, population and its source)")
@links(TERRITORY, "replace", "change", "related")
def get_territory(territory: str) -> Response:
    territory_or_404(territory)
    return get_record(territory, TERRITORY, territory)


@blp.route("/territories/<territory>", methods=["PUT"], endpoint="territory_put")
@errors(*WRITE_ERRORS)
@blp.response(200, TERRITORY.schema)
@blp.doc(
    tags=["territories"],
    summary="Replace a territory's record (admin key). Territories are created with `civicfed territory create`.",
    requestBody={"content": {"application/json": {"schema": TERRITORY.schema}}, "required": True},
    **SECURED,
)
@links(TERRITORY, "get", "change", "related")
def put_territory(territory: str) -> Response:
    return put_record(territory, TERRITORY, territory)


@blp.route("/territories/<territory>", methods=["PATCH"], endpoint="territory_patch")
@errors(*WRITE_ERRORS)
@blp.response(200, TERRITORY.schema)
@blp.doc(
    tags=["territories"],
    summary="Change some fields of a territory's record (admin key)",
    requestBody=PATCH_DOC,
    **SECURED,
)
@links(TERRITORY, "get", "replace", "related")
def patch_territory(territory: str) -> Response:
    return patch_record(territory, TERRITORY, territory)
