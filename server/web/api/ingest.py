"""``POST /api/v1/territories/{t}/ingest``: a whole batch of records, in any format of the
importers table that can be uploaded (chosen by the body's media type), validated item by item
and written in one atomic step."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from marshmallow import RAISE, Schema, fields

from importers import by_media_type, upload_types

from ...errors import PROBLEM_JSON, Forbidden, UnsupportedMediaType, ValidationFailed
from ...ingest import load, open_source
from ...services import services
from ..http import json_response, writer
from .common import SECURED, blp, errors
from .openapi import IngestReportSchema

INGEST_ARGS = Schema.from_dict(
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
@blp.arguments(INGEST_ARGS, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
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
        "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in upload_types()},
        "required": True,
    },
    **SECURED,
)
def ingest(args: dict[str, Any], territory: str) -> Response:
    who = writer(territory)
    if who.role not in ("admin", "editor"):
        raise Forbidden("bulk ingest needs an admin or editor key")
    importer = by_media_type(request.mimetype)
    if importer is None:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(upload_types())} (application/x-ndjson: one JSON record per line)"
        )
    limits = {"max_line": current_app.config["INGEST_MAX_LINE"]} if "max_line" in importer.options else {}
    source = open_source(importer, request.get_data(cache=False), **limits)
    report = load(
        services().records,
        territory,
        source.items(),
        who,
        source_id=source.id,
        partial=bool(args.get("partial")),
        dry_run=bool(args.get("dry_run")),
        max_errors=int(current_app.config["INGEST_MAX_ERRORS"]),
        validator=services().validator,
    ).to_dict()
    if report["rejected"] and not report["written"]:
        problem = ValidationFailed(
            f"{report['rejected']} line(s) rejected; nothing was written (see errors"
            + (f", the first {len(report['errors'])} of them" if report["errors_omitted"] else "")
            + ", or send ?partial=true)",
            **{k: v for k, v in report.items() if k != "errors"},
        )
        problem.errors = report["errors"]
        raise problem
    return json_response(report, 200)
