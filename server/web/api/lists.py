"""Lists of the JSON API: their query parameters (one schema per kind, which also documents
them in OpenAPI) and the page answer with its ``next`` link."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import Schema, fields, validate

from vocabularies import concept_codes

from ...errors import BadRequest
from ...model.kinds import Kind
from ...model.rdf import Concept, Ref, Target
from ...model.schemas import Identifier, Moment, Text, Whole
from ...services import services
from ...urls import LOCAL_ID_PATTERN
from ..http import json_response, link
from .openapi import AnyOf, PageSize, TombstoneSchema


def list_args(kind: Kind, with_territory: bool) -> type[Schema]:
    """Query parameters of a kind's list, as a schema (validation + OpenAPI parameters)."""
    attrs: dict[str, Any] = {
        "limit": PageSize(
            metadata={"description": "Page size; default: the PAGE_SIZE setting (50 unless configured)."}
        ),
        "cursor": fields.String(metadata={"description": "Opaque cursor: the `next` link carries it."}),
        "modified_since": Moment(
            metadata={"description": "Records this server wrote at or after this time; includes tombstones."}
        ),
        "include_deleted": fields.Boolean(metadata={"description": "Include tombstones of deleted records."}),
        "sort": fields.String(
            validate=validate.OneOf(["record_modified", "-record_modified"]),
            metadata={"description": "Order by the time this server wrote the record (stable)."},
        ),
    }
    if kind.text_predicates:
        # Text, as record fields are: a control character cannot match and some stores choke on it.
        attrs["q"] = Text(validate=validate.Length(1, 200), metadata={"description": "Case-insensitive text search."})
    if with_territory:
        attrs["territory"] = fields.String(
            metadata={"description": "Territory id, or several separated by commas. Default: all."}
        )
    if kind.geolocated:
        attrs["bbox"] = fields.String(
            metadata={"description": "min_lon,min_lat,max_lon,max_lat (WGS84)", "example": "4.80,45.73,4.88,45.79"}
        )
    # A record belongs to one territory: across territories, filtering on one needs `territory=`.
    single = " Needs a single `territory=` (400 otherwise)." if with_territory else ""
    for param, f in kind.filters.items():
        if isinstance(f, Concept):
            codes = list(f.iris) if f.iris else None
            attrs[param] = fields.String(
                validate=validate.OneOf(codes) if codes else _code_validator(f.scheme),
                metadata={"description": f"Filter on `{f.name}`."},
            )
        elif isinstance(f, Ref):
            attrs[param] = Identifier(metadata={"description": f"Filter on `{f.name}` (a {f.kind} id).{single}"})
        elif isinstance(f, Target):
            # Only the kinds the field may name: `about=vote/x` can match nothing, and says so.
            kinds = "|".join(f.kinds)
            attrs[param] = fields.String(
                validate=Whole(
                    rf"^(?:{kinds})/{LOCAL_ID_PATTERN}$",
                    error=f"Must be kind/id with a kind among {', '.join(f.kinds)}.",
                ),
                metadata={
                    "description": f"`kind/id` of the record ({', '.join(f.kinds)}), e.g. `proposal/p12`.{single}"
                },
            )
    name = f"{kind.name.title()}{'All' if with_territory else ''}ListArgs"
    return Schema.from_dict(attrs, name=name)


def _code_validator(scheme: str) -> validate.Validator:
    return validate.OneOf(concept_codes(scheme))


def _parse_bbox(value: str) -> tuple[float, float, float, float]:
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or not (-180 <= parts[0] <= parts[2] <= 180 and -90 <= parts[1] <= parts[3] <= 90):
        raise BadRequest(
            "bbox must be min_lon,min_lat,max_lon,max_lat in WGS84 degrees",
            errors=[{"parameter": "bbox", "detail": "Four numbers, minimums first."}],
        )
    return parts  # type: ignore[return-value]


def list_records(kind: Kind, territories: list[str], args: dict[str, Any], path: str) -> Response:
    svc = services()
    config = svc.config
    limit = args.get("limit") or min(config["PAGE_SIZE"], config["MAX_PAGE_SIZE"])
    if limit > config["MAX_PAGE_SIZE"]:
        raise BadRequest(
            f"limit may be at most {config['MAX_PAGE_SIZE']}",
            errors=[{"parameter": "limit", "detail": f"At most {config['MAX_PAGE_SIZE']}."}],
        )
    filters = {k: v for k, v in args.items() if k in kind.filters}
    if len(territories) != 1:
        for param in filters:
            if not isinstance(kind.filters[param], Concept):
                raise BadRequest(
                    f"the {param} filter names a record of one territory: add territory=…",
                    errors=[{"parameter": param, "detail": "Needs a single territory."}],
                )
    page = svc.records.list(
        kind,
        territories=territories,
        filters=filters,
        q=args.get("q"),
        bbox=_parse_bbox(args["bbox"]) if args.get("bbox") else None,
        modified_since=args.get("modified_since"),
        include_deleted=bool(args.get("include_deleted")),
        cursor=args.get("cursor"),
        limit=limit,
        descending=args.get("sort") == "-record_modified",
    )
    next_url = None
    if page.next_cursor:
        params = {k: v for k, v in request.args.items() if k != "cursor"}
        params["cursor"] = page.next_cursor
        next_url = link(path, **params)
    body = {"items": page.items, "next": next_url}
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return json_response(body, 200, headers)


def page_schema(kind: Kind) -> type[Schema]:
    """The documented shape of a page of ``kind``."""
    return Schema.from_dict(
        {
            # Tombstones too, when the list includes deletions.
            "items": fields.List(AnyOf(kind.schema, TombstoneSchema), required=True),
            "next": fields.String(allow_none=True, metadata={"description": "URL of the next page, null at the end."}),
        },
        name=f"{kind.name.title()}Page",
    )
