"""The JSON API (``/api/v1``): thin views over :mod:`server.records`, described by OpenAPI 3.

flask-smorest generates the OpenAPI document from the marshmallow schemas. Request bodies are
parsed here (not by webargs) so that malformed JSON, wrong media types and oversized bodies get
precise RFC 9457 problems.
"""

from __future__ import annotations

import datetime as dt
import http
import json
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, render_template, request, url_for
from flask_smorest import Api, Blueprint
from marshmallow import RAISE, Schema, fields, validate

from importers.ndjson import ingest_ndjson

from .. import services
from ..errors import (
    PROBLEM_JSON,
    BadRequest,
    CivicfedError,
    Forbidden,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from ..model.kinds import KINDS, RECORD_KINDS, Kind
from ..model.rdf import Concept, Ref, Target
from ..model.schemas import Identifier, Moment, PointSchema, TerritoryId, Text, Whole, parse_json
from ..records import Op, Outcome, WriteReport, etag
from ..state import Principal

JSON_TYPES = ("application/json",)
PATCH_TYPES = ("application/merge-patch+json", "application/json")

blp = Blueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="Participation records of the territories this server hosts.",
)


# -- request helpers --------------------------------------------------------------------------


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


@blp.before_request
def _check_key() -> None:
    # A client sending a revoked or mistyped key learns it at once, even on public reads.
    principal()


def json_body(allowed: tuple[str, ...] = JSON_TYPES) -> Any:
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


def territory_or_404(territory: str) -> str:
    services().records.require_territory(territory)
    return territory


def writer(territory: str) -> Principal:
    """The principal allowed to write in ``territory`` (401/403 before the body is even read)."""
    territory_or_404(territory)
    who = principal()
    if who is None:
        raise Unauthorized("writing needs an API key: send `Authorization: Bearer <key>`")
    if who.territory != territory:
        raise Forbidden(f"this API key is for territory {who.territory!r}, not {territory!r}")
    return who


def if_match() -> str | None:
    value = request.headers.get("If-Match")
    return value.strip() if value else None


def single_outcome(report: WriteReport) -> Outcome:
    outcome = report.outcomes[0]
    if outcome.error is not None:
        raise outcome.error
    return outcome


def record_response(territory: str, kind: Kind, local_id: str, status: int) -> Response:
    record = services().records.get(territory, kind, local_id)
    headers = {"ETag": etag_of(record)}
    if status == 201:
        headers["Location"] = services().urls.api_record(territory, kind.plural, local_id)
    return json_response(record, status, headers)


def etag_of(record: dict[str, Any]) -> str:
    return etag(dt.datetime.fromisoformat(record["record_modified"]))


def conditional(record: dict[str, Any]) -> Response:
    """200 with the record and its ETag, or 304 when the client's copy is current."""
    tag = etag_of(record)
    if request.headers.get("If-None-Match") in (tag, "*"):
        return Response(status=304, headers={"ETag": tag})
    return json_response(record, 200, {"ETag": tag})


def can_read_private(kind: Kind, territories: list[str]) -> None:
    """Individual votes are never published: only a territory's admin/editor keys read them."""
    if not kind.private:
        return
    who = principal()
    if who is None:
        raise Unauthorized(f"{kind.plural} are not published; reading them needs an admin or editor API key")
    if who.role not in ("admin", "editor") or any(t != who.territory for t in territories):
        raise Forbidden(f"this key cannot read {kind.plural} of {', '.join(territories)}")


# -- list arguments ---------------------------------------------------------------------------


def _list_args(kind: Kind, with_territory: bool) -> type[Schema]:
    """Query parameters of a kind's list, as a schema (validation + OpenAPI parameters)."""
    attrs: dict[str, Any] = {
        "limit": fields.Integer(
            validate=validate.Range(min=1), metadata={"description": "Page size (default 50, at most MAX_PAGE_SIZE)."}
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
    for param, f in kind.filters.items():
        if isinstance(f, Concept):
            codes = list(f.iris) if f.iris else None
            attrs[param] = fields.String(
                validate=validate.OneOf(codes) if codes else _code_validator(f.scheme),
                metadata={"description": f"Filter on `{f.name}`."},
            )
        elif isinstance(f, Ref):
            attrs[param] = Identifier(metadata={"description": f"Filter on `{f.name}` (a {f.kind} id)."})
        elif isinstance(f, Target):
            attrs[param] = fields.String(
                validate=Whole(r"^[a-z]+/[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"),
                metadata={"description": "`kind/id` of the record, e.g. `proposal/p12`."},
            )
    name = f"{kind.name.title()}{'All' if with_territory else ''}ListArgs"
    return Schema.from_dict(attrs, name=name)


def _code_validator(scheme: str) -> validate.Validator:
    from vocabularies import concept_codes

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
        next_url = svc.urls.api(path, **params)
    body = {"items": page.items, "next": next_url}
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return json_response(body, 200, headers)


# -- page schemas (documentation of responses) ------------------------------------------------


def _page_schema(kind: Kind) -> type[Schema]:
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(kind.schema), required=True),
            "next": fields.String(allow_none=True, metadata={"description": "URL of the next page, null at the end."}),
        },
        name=f"{kind.name.title()}Page",
    )


class ErrorItemSchema(Schema):
    pointer = fields.String(metadata={"description": "JSON Pointer (as a URI fragment) to the body field."})
    parameter = fields.String(metadata={"description": "The query or path parameter."})
    detail = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error."""

    type = fields.String(metadata={"description": "URI of the kind of problem."})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String(metadata={"description": "What went wrong, for people."})
    instance = fields.String(metadata={"description": "The request path."})
    errors = fields.List(fields.Nested(ErrorItemSchema), metadata={"description": "Each field or parameter at fault."})


class CivicfedApi(Api):
    """flask-smorest's Api, documenting errors as RFC 9457 problem details."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status >= 400:
                self.spec.components.response(
                    status.name,
                    {"description": status.phrase, "content": {PROBLEM_JSON: {"schema": ProblemSchema}}},
                    lazy=True,
                )
        self.spec.components.response(
            "DEFAULT_ERROR",
            {"description": "Error", "content": {PROBLEM_JSON: {"schema": ProblemSchema}}},
            lazy=True,
        )


def errors(*codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the error statuses an operation can answer."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for code in codes:
            func = blp.alt_response(code, response=http.HTTPStatus(code).name)(func)
        return func

    return decorate


WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422)
SECURED = {"security": [{"bearer": []}]}


class IngestReportSchema(Schema):
    territory = fields.String()
    written = fields.Boolean(metadata={"description": "False when nothing was written."})
    created = fields.Integer()
    updated = fields.Integer()
    deleted = fields.Integer()
    rejected = fields.Integer()
    unchanged = fields.Integer(metadata={"description": "Records already stored exactly so (not rewritten)."})
    superseded = fields.Integer(metadata={"description": "Lines followed by a later line on the same record."})
    accepted = fields.Integer(metadata={"description": "Lines that passed every check."})
    quads = fields.Integer(metadata={"description": "Triples written."})
    errors = fields.List(fields.Dict(), metadata={"description": "One entry per rejected line."})


# -- routes -----------------------------------------------------------------------------------


def _register_kind(kind: Kind) -> None:
    plural = kind.plural
    tag = plural
    args_all = _list_args(kind, with_territory=True)
    args_one = _list_args(kind, with_territory=False)
    page = _page_schema(kind)
    body_doc = {"content": {"application/json": {"schema": kind.schema}}, "required": True}
    patch_doc = {
        "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
        "description": "RFC 7396 JSON Merge Patch (null removes a field).",
        "required": True,
    }
    private_note = " Votes are not published: an admin or editor key is required." if kind.private else ""

    def route(rule: str, method: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return blp.route(rule, methods=[method], endpoint=f"{kind.name}_{name}")

    @route(f"/{plural}", "GET", "list_all")
    @errors(400, 401, 403, 404)
    @blp.arguments(args_all, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
    @blp.response(200, page)
    @blp.doc(tags=[tag], summary=f"List {plural} across territories", description=private_note.strip() or None)
    def list_all(args: dict[str, Any]) -> Response:
        svc = services()
        if args.get("territory"):
            territories = list(dict.fromkeys(t.strip() for t in args["territory"].split(",") if t.strip()))
            for t in territories:
                territory_or_404(t)
        elif kind.private and principal() is not None:
            territories = [principal().territory]  # type: ignore[union-attr]
        else:
            territories = svc.state.territory_ids()
        can_read_private(kind, territories)
        return list_records(kind, territories, args, plural)

    @route(f"/territories/<territory>/{plural}", "GET", "list")
    @errors(400, 401, 403, 404)
    @blp.arguments(args_one, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
    @blp.response(200, page)
    @blp.doc(tags=[tag], summary=f"List the {plural} of a territory", description=private_note.strip() or None)
    def list_one(args: dict[str, Any], territory: str) -> Response:
        territory_or_404(territory)
        can_read_private(kind, [territory])
        return list_records(kind, [territory], args, f"territories/{territory}/{plural}")

    @route(f"/territories/<territory>/{plural}", "POST", "create")
    @errors(*WRITE_ERRORS)
    @blp.response(201, kind.schema)
    @blp.doc(tags=[tag], summary=f"Create a {kind.name} with an id made by the server", requestBody=body_doc, **SECURED)
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
    )
    def get(territory: str, local_id: str) -> Response:
        territory_or_404(territory)
        can_read_private(kind, [territory])
        return conditional(services().records.get(territory, kind, local_id))

    @route(f"/territories/<territory>/{plural}/<local_id>", "PUT", "put")
    @errors(*WRITE_ERRORS)
    @blp.alt_response(201, schema=kind.schema, description="Created", success=True)
    @blp.response(200, kind.schema)
    @blp.doc(
        tags=[tag],
        summary=f"Create or replace a {kind.name} with your own id",
        description="201 when created, 200 when replaced. `If-Match` makes it conditional.",
        requestBody=body_doc,
        **SECURED,
    )
    def put(territory: str, local_id: str) -> Response:
        who = writer(territory)
        svc = services()
        loaded = svc.records.prepare(kind, json_body(), local_id=local_id)
        outcome = single_outcome(
            svc.records.write(territory, [Op(kind, local_id, "upsert", loaded, if_match=if_match())], who)
        )
        return record_response(territory, kind, local_id, 201 if outcome.status == "created" else 200)

    @route(f"/territories/<territory>/{plural}/<local_id>", "PATCH", "patch")
    @errors(*WRITE_ERRORS, 410)
    @blp.response(200, kind.schema)
    @blp.doc(tags=[tag], summary=f"Change some fields of a {kind.name}", requestBody=patch_doc, **SECURED)
    def patch(territory: str, local_id: str) -> Response:
        who = writer(territory)
        doc = json_body(PATCH_TYPES)
        if not isinstance(doc, dict):
            raise ValidationFailed(
                "a merge patch is a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}]
            )
        svc = services()
        single_outcome(svc.records.write(territory, [Op(kind, local_id, "patch", doc, if_match=if_match())], who))
        return record_response(territory, kind, local_id, 200)

    @route(f"/territories/<territory>/{plural}/<local_id>", "DELETE", "delete")
    @errors(401, 403, 404, 410, 412)
    @blp.response(200, kind.schema)
    @blp.doc(tags=[tag], summary=f"Delete a {kind.name} (a tombstone is kept for syncing consumers)", **SECURED)
    def delete(territory: str, local_id: str) -> Response:
        who = writer(territory)
        svc = services()
        single_outcome(svc.records.write(territory, [Op(kind, local_id, "delete", if_match=if_match())], who))
        try:
            svc.records.get(territory, kind, local_id)
        except CivicfedError as gone:
            return json_response(gone.extra.get("record"), 200)
        raise AssertionError("a deleted record must be gone")  # pragma: no cover


def _register_territories() -> None:
    kind = KINDS["territory"]
    args = _list_args(kind, with_territory=False)
    page = _page_schema(kind)

    @blp.route("/territories", methods=["GET"], endpoint="territory_list")
    @blp.arguments(args, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
    @blp.response(200, page)
    @blp.doc(tags=["territories"], summary="List the territories this server hosts")
    def list_territories(args: dict[str, Any]) -> Response:
        territories = services().state.territory_ids()
        return list_records(kind, territories, args, "territories")

    @blp.route("/territories/<territory>", methods=["GET"], endpoint="territory_get")
    @errors(404)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.response(200, kind.schema)
    @blp.doc(tags=["territories"], summary="Get a territory (official codes, population and its source)")
    def get_territory(territory: str) -> Response:
        territory_or_404(territory)
        return conditional(services().records.get(territory, kind, territory))

    @blp.route("/territories/<territory>", methods=["PUT"], endpoint="territory_put")
    @errors(*WRITE_ERRORS)
    @blp.response(200, kind.schema)
    @blp.doc(
        tags=["territories"],
        summary="Replace a territory's record (admin key). Territories are created with `civicfed territory create`.",
        requestBody={"content": {"application/json": {"schema": kind.schema}}, "required": True},
        **SECURED,
    )
    def put_territory(territory: str) -> Response:
        who = writer(territory)
        svc = services()
        loaded = svc.records.prepare(kind, json_body(), local_id=territory)
        single_outcome(svc.records.write(territory, [Op(kind, territory, "upsert", loaded, if_match=if_match())], who))
        return record_response(territory, kind, territory, 200)

    @blp.route("/territories/<territory>", methods=["PATCH"], endpoint="territory_patch")
    @errors(*WRITE_ERRORS)
    @blp.response(200, kind.schema)
    @blp.doc(tags=["territories"], summary="Change some fields of a territory's record (admin key)", **SECURED)
    def patch_territory(territory: str) -> Response:
        who = writer(territory)
        doc = json_body(PATCH_TYPES)
        if not isinstance(doc, dict):
            raise ValidationFailed(
                "a merge patch is a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}]
            )
        single_outcome(
            services().records.write(territory, [Op(kind, territory, "patch", doc, if_match=if_match())], who)
        )
        return record_response(territory, kind, territory, 200)

    ingest_args = Schema.from_dict(
        {
            "partial": fields.Boolean(metadata={"description": "Write the valid records even if some are rejected."}),
            "dry_run": fields.Boolean(metadata={"description": "Validate only; write nothing."}),
        },
        name="IngestArgs",
    )

    @blp.route("/territories/<territory>/ingest", methods=["POST"], endpoint="ingest")
    @errors(400, 401, 403, 404, 413, 415)
    @blp.alt_response(
        422,
        schema=IngestReportSchema,
        content_type=PROBLEM_JSON,
        description="Some lines were rejected and nothing was written: problem details with the report's fields.",
    )
    @blp.arguments(ingest_args, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
    @blp.response(200, IngestReportSchema)
    @blp.doc(
        tags=["ingest"],
        summary="Bulk ingest: NDJSON of mixed kinds, validated line by line, written in one atomic step",
        description=(
            "Each line is a record with its `kind` (`proposal`, `vote`…). A line "
            '`{"kind": …, "id": …, "deleted": true}` deletes. Without `partial=true`, a batch with any '
            "rejected line writes nothing (422 with the report)."
        ),
        requestBody={
            "content": {"application/x-ndjson": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        },
        **SECURED,
    )
    def ingest(args: dict[str, Any], territory: str) -> Response:
        who = writer(territory)
        if who.role not in ("admin", "editor"):
            raise Forbidden("bulk ingest needs an admin or editor key")
        if request.mimetype not in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
            raise UnsupportedMediaType("send the body as application/x-ndjson (one JSON record per line)")
        report = ingest_ndjson(
            services().records,
            territory,
            request.get_data(cache=False),
            who,
            partial=bool(args.get("partial")),
            dry_run=bool(args.get("dry_run")),
        )
        if report["rejected"] and not report["written"]:
            problem = ValidationFailed(
                f"{report['rejected']} line(s) rejected; nothing was written (see errors, or send ?partial=true)",
                **{k: v for k, v in report.items() if k != "errors"},
            )
            problem.errors = report["errors"]
            raise problem
        return json_response(report, 200)


for _kind in RECORD_KINDS:
    _register_kind(_kind)
_register_territories()


def init_app(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "civicfed JSON API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = CivicfedApi(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Read and write the citizen-participation records of the territories this server hosts. "
                    "Reads are public; writes need `Authorization: Bearer <API key>`. Errors are RFC 9457 "
                    "problem details."
                )
            },
            "servers": [{"url": app.config["BASE_URI"]}],
        },
    )
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "An API key made with `civicfed key create`."}
    )
    api.spec.options["security"] = []
    api.register_blueprint(blp)

    @app.get("/api/v1/docs")
    def api_docs() -> str:
        return render_template("api_docs.html", spec=api.spec.to_dict(), spec_url=url_for("api-docs.openapi_json"))


__all__ = ["PointSchema", "TerritoryId", "init_app"]
