"""``/api/v1/territories/{t}/imports``: an administrator hands the server a source (an upload,
or a URL the server fetches within its allowlist) to import; the run goes on in the background
(202 with the run's URL), and its status shows progress, then the counts and the quarantined
items. The command line's `civicfed import` runs the same function (importers/runner.py).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Response, request
from marshmallow import RAISE, Schema, fields, validate

from importers import IMPORTERS
from importers.remote import Fetcher
from importers.runner import keep_upload, runner

from ...errors import BadRequest, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed
from ...ingest.runs import QUEUED, Run, Runs
from ...model.schemas import parse_json
from ...services import services
from ..http import json_response, link, principal, writer
from .common import SECURED, blp, errors

RUN_ID = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$"


class ImportRunSchema(Schema):
    id = fields.String(metadata={"description": "The run's id (sortable by creation time)."})
    territory = fields.String()
    format = fields.String()
    source = fields.String(metadata={"description": "The URL fetched, or the uploaded file's name."})
    agent = fields.String(metadata={"description": "Who asked for it: an API key and its role, or the command line."})
    status = fields.String(
        metadata={"description": "queued, running, done, unchanged (nothing changed since the previous run), failed."}
    )
    dry_run = fields.Boolean()
    read = fields.Integer(metadata={"description": "Items read from the source so far."})
    requested = fields.String(metadata={"description": "When it was asked for."})
    created = fields.Integer(metadata={"description": "Records created (once done; also updated, deleted, unchanged)."})
    started = fields.String(allow_none=True)
    ended = fields.String(allow_none=True)
    sha256 = fields.String(allow_none=True, metadata={"description": "SHA-256 of the source as read."})
    message = fields.String(metadata={"description": "Why it failed, or what its status means."})
    activity = fields.String(metadata={"description": "IRI of its PROV-O activity (when it changed something)."})
    errors = fields.List(
        fields.Dict(), metadata={"description": "The quarantined items: line, kind, id and field errors of each."}
    )


IMPORT_ARGS = Schema.from_dict(
    {
        "format": fields.String(
            validate=validate.OneOf(list(IMPORTERS)), metadata={"description": "The importer (for an upload)."}
        ),
        "dry_run": fields.Boolean(metadata={"description": "Validate only; write nothing."}),
        "name": fields.String(metadata={"description": "The uploaded file's name, for the report."}),
        "options": fields.String(
            metadata={"description": 'The format\'s options, a JSON object (`{"mapping": "…"}` for a table).'}
        ),
    },
    name="ImportArgs",
)


def _admin(territory: str) -> Any:
    who = writer(territory)
    if who.role != "admin":
        raise Forbidden("imports need an admin key of the territory")
    return who


def _run_json(run: Run) -> dict[str, Any]:
    out = run.to_dict()
    out["url"] = link(f"territories/{run.territory}/imports/{run.id}")
    return out


@blp.route("/territories/<territory>/imports", methods=["POST"], endpoint="import_create")
@errors(400, 401, 403, 404, 413, 415, 422)
@blp.arguments(IMPORT_ARGS, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
@blp.response(202, ImportRunSchema)
@blp.doc(
    tags=["imports"],
    summary="Import a source into the territory, in the background",
    description=(
        'Either a JSON body `{"format": …, "url": …, "options": {…}, "dry_run": false}` (the server '
        "fetches the URL, from the hosts its IMPORT_ALLOWED_HOSTS allows), or the source itself as the body "
        "with `?format=…`. Answers 202 with the run; follow its `url` until its status is done, unchanged "
        "or failed."
    ),
    requestBody={
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["format", "url"],
                    "properties": {
                        "format": {"enum": sorted(f for f, i in IMPORTERS.items() if i.remote)},
                        "url": {"type": "string", "pattern": "^https?://"},
                        "options": {
                            "type": "object",
                            "additionalProperties": {"type": ["string", "number", "boolean"]},
                        },
                        "dry_run": {"type": "boolean"},
                    },
                    "additionalProperties": False,
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    },
    **SECURED,
)
def import_create(args: dict[str, Any], territory: str) -> Response:
    who = _admin(territory)
    agent = f"API key {who.key_id} ({who.role})"
    if request.mimetype == "application/json" and "format" not in args:
        body = parse_json(request.get_data(cache=False))
        format_name, source, path, options = _from_url(body)
    else:
        format_name = args.get("format")
        if not format_name:
            raise BadRequest("say the format of the uploaded source: ?format=…", errors=[{"parameter": "format"}])
        importer = IMPORTERS[format_name]
        if not importer.reads_file:
            raise UnsupportedMediaType(f'{format_name} reads a URL, not an upload: send JSON {{"format": …, "url": …}}')
        if not request.content_length and not request.stream:
            raise BadRequest("the body is empty: send the source as the body")
        if importer.snapshot and not args.get("name"):
            # Its name is the source: a run deletes what an earlier run of that name loaded and
            # this one no longer gives, so two different uploads must not share a made-up one.
            raise BadRequest(
                f"name the uploaded {format_name} source (?name=the file's name): a new run of the same source "
                "deletes what it no longer gives, and the name is how a source is known",
                errors=[{"parameter": "name"}],
            )
        options = _options(importer, _json_object(args.get("options")), "options")
        limit = services().config.get("MAX_CONTENT_LENGTH")
        path = keep_upload(services(), iter(lambda: request.stream.read(1024 * 1024), b""), limit)
        if not os.path.getsize(path):  # sent without a length, and nothing came
            os.unlink(path)
            raise BadRequest("the body is empty: send the source as the body")
        source = str(args.get("name") or f"upload.{format_name}")
    options["dry_run"] = bool(args.get("dry_run") or options.get("dry_run"))
    run = Runs(services().state).queue(territory, format_name, source, path=path, options=options, agent=agent)
    runner(services()).wake()
    url = link(f"territories/{territory}/imports/{run.id}")
    return json_response(_run_json(run), 202, {"Location": url})


def _from_url(body: Any) -> tuple[str, str, None, dict[str, Any]]:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}])
    problems = []
    format_name, url, options = body.get("format"), body.get("url"), body.get("options", {})
    if not isinstance(format_name, str) or format_name not in IMPORTERS:
        problems.append({"pointer": "#/format", "detail": f"One of: {', '.join(IMPORTERS)}."})
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append({"pointer": "#/url", "detail": "An http(s) URL."})
    if not isinstance(options, dict) or not all(isinstance(v, (str, int, float, bool)) for v in options.values()):
        problems.append({"pointer": "#/options", "detail": "An object of option names to values."})
    if problems:
        raise ValidationFailed("the import request is invalid", errors=problems)
    importer = IMPORTERS[format_name]
    if importer.reads_file and not importer.remote:
        raise ValidationFailed(
            f"{format_name} reads an uploaded file, not a URL: send the file as the body with ?format={format_name}",
            errors=[{"pointer": "#/url", "detail": "Not for this format."}],
        )
    options = _options(importer, options, "#/options")
    # A host outside the allowlist is refused now, not when the run fetches it.
    Fetcher.from_config(services().config).check(url)
    if body.get("dry_run") is True:
        options["dry_run"] = True
    return format_name, url, None, options


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = parse_json(text.encode())
    if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
        raise BadRequest("options must be a JSON object of option names to values", errors=[{"parameter": "options"}])
    return value


def _options(importer: Any, options: dict[str, Any], where: str) -> dict[str, Any]:
    """The options a run of this format is given, as text; an unknown one is refused (422)."""
    unknown = sorted(set(options) - set(importer.options))
    if unknown:
        raise ValidationFailed(
            f"{importer.format} takes no option {unknown[0]!r}; its options: {', '.join(importer.options) or 'none'}",
            errors=[{"pointer": f"{where}/{k}", "detail": "Unknown option."} for k in unknown],
        )
    return {k: str(v) for k, v in options.items()}


@blp.route("/territories/<territory>/imports", methods=["GET"], endpoint="import_list")
@errors(401, 403, 404)
@blp.response(200, ImportRunSchema(many=True))
@blp.doc(tags=["imports"], summary="The territory's import runs, newest first (the last 100)", **SECURED)
def import_list(territory: str) -> Response:
    _reader(territory)
    return json_response([_run_json(r) for r in Runs(services().state).list(territory)])


@blp.route("/territories/<territory>/imports/<run_id>", methods=["GET"], endpoint="import_get")
@errors(401, 403, 404)
@blp.response(200, ImportRunSchema)
@blp.doc(
    tags=["imports"],
    summary="One import run: its progress, then its counts and quarantined items",
    parameters=[{"in": "path", "name": "run_id", "schema": {"type": "string", "pattern": RUN_ID}}],
    **SECURED,
)
def import_get(territory: str, run_id: str) -> Response:
    _reader(territory)
    run = Runs(services().state).get(run_id)
    if run is None or run.territory != territory:
        raise NotFound(f"no import run {run_id!r} in territory {territory!r}")
    headers = {"Retry-After": "1"} if run.status == QUEUED or not run.finished else {}
    return json_response(_run_json(run), 200, headers)


def _reader(territory: str) -> None:
    """Runs list what was quarantined, source values included: keys of the territory only (a
    territory replicated from a peer has none here)."""
    services().records.require_territory(territory)
    who = principal()
    if who is None:
        raise Forbidden("import runs are shown to the territory's keys (admin or editor)")
    if who.territory != territory or who.role not in ("admin", "editor"):
        raise Forbidden("import runs are shown to the territory's admin and editor keys")
