"""The receivability rules of a process and what they decide (docs/rules.md): ``GET
/api/v1/territories/{t}/processes/{p}/rules``, ``…/processes/{p}/receivability`` (its proposals by
status: the receivable ones by default) and ``…/proposals/{p}/receivability`` (a proposal's
current decision and its history). The decisions are made by the writes
(server/records/decisions.py); these views only read them. And ``POST
…/proposals/{p}/take-up``: an organization takes a receivable proposal up
(server/records/takeup.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from vocabularies import concept_codes

from ...errors import ValidationFailed, from_validation_error
from ...model.kinds import KINDS
from ...services import services
from ...urls import LOCAL_ID_PATTERN
from ..http import json_body, json_response, link, territory_or_404, writer
from .common import SECURED, blp, errors, record_path

#: Rules per process the listing returns (a process has a handful).
MAX_RULES = 200


@blp.route("/territories/<territory>/processes/<local_id>/rules", methods=["GET"], endpoint="process_rules")
@errors(404, 410)
@blp.doc(
    tags=["rules"],
    summary="The receivability rules of a process",
    description="Every live rule whose `process` is this one, as `GET …/rules/{id}` gives it.",
)
def process_rules(territory: str, local_id: str) -> Response:
    territory_or_404(territory)
    records = services().records
    records.get(territory, KINDS["process"], local_id)
    page = records.list(KINDS["rule"], territories=[territory], filters={"process": local_id}, limit=MAX_RULES)
    return json_response({"territory": territory, "process": local_id, "rules": page.items})


class StatusArgs(Schema):
    status = fields.String(
        validate=validate.OneOf(concept_codes("receivability-statuses")),
        metadata={"description": "Which decisions to list (default receivable)."},
    )


@blp.route(
    "/territories/<territory>/processes/<local_id>/receivability", methods=["GET"], endpoint="process_receivability"
)
@blp.arguments(StatusArgs, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
@errors(400, 404, 410)
@blp.doc(
    tags=["rules"],
    summary="The proposals of a process by receivability",
    description=(
        "The proposals of the process whose current decision has this `status` (`receivable` by default), "
        "with the time of the decision, and how many proposals have each status."
    ),
)
def process_receivability(args: dict[str, Any], territory: str, local_id: str) -> Response:
    territory_or_404(territory)
    records = services().records
    found = records.receivability_statuses(territory, local_id)
    wanted = args.get("status", "receivable")
    counts = {code: 0 for code in concept_codes("receivability-statuses")}
    for _, status, _ in found:
        counts[status] += 1
    proposals = [
        {"id": pid, "iri": records.urls.resource(territory, "proposal", pid), "decided_at": when}
        for pid, status, when in found
        if status == wanted
    ]
    body = {"territory": territory, "process": local_id, "status": wanted, "counts": counts, "proposals": proposals}
    return json_response(body)


@blp.route(
    "/territories/<territory>/proposals/<local_id>/receivability", methods=["GET"], endpoint="proposal_receivability"
)
@errors(404, 410)
@blp.doc(
    tags=["rules"],
    summary="The receivability decision of a proposal, and its history",
    description=(
        "`status` is the current decision's (`null` when no rule applies to the proposal's process); "
        "`conditions` gives, for each condition of each rule, its `outcome` (met, unmet, pending), what the rule "
        "`expected` and the `value` that decided it, at `decided_at`. `history` lists every decision, newest first: "
        "a new one is made when the status or a condition's outcome or expectation changes. `document` is the "
        "decisions as linked data (Turtle, JSON-LD…)."
    ),
)
def proposal_receivability(territory: str, local_id: str) -> Response:
    territory_or_404(territory)
    records = services().records
    decisions = records.receivability(territory, local_id)
    current = decisions[0] if decisions and decisions[0]["current"] else None
    iri = records.urls.resource(territory, "proposal", local_id)
    body = {
        "territory": territory,
        "proposal": local_id,
        "iri": iri,
        "status": current["status"] if current else None,
        "decided_at": current["decided_at"] if current else None,
        "decision": current["iri"] if current else None,
        "conditions": current["conditions"] if current else [],
        "history": decisions,
        "document": records.urls.receivability_document(territory, local_id),
    }
    return json_response(body)


class TakeUpBody(Schema):
    organization = fields.String(
        validate=validate.Regexp(f"^{LOCAL_ID_PATTERN}$"),
        metadata={"description": "The organization taking the proposal up: an admin or editor key names it; an "
                  "organization key's own by default."},
    )  # fmt: skip
    project = fields.Dict(
        metadata={"description": "Fields of the project (as `PUT …/projects/{id}`) over those taken from the "
                  "proposal; `id` defaults to the proposal's."},
    )  # fmt: skip


TAKE_UP_SCHEMA = {
    "type": "object",
    "properties": {"organization": {"type": "string"}, "project": {"type": "object"}},
    "additionalProperties": False,
}


@blp.route("/territories/<territory>/proposals/<local_id>/take-up", methods=["POST"], endpoint="proposal_take_up")
@errors(400, 401, 403, 404, 409, 410, 415, 422)
@blp.doc(
    tags=["rules"],
    summary="An organization takes a receivable proposal up",
    description=(
        "The proposal becomes `handled_by` the organization and a co-construction project (`status` "
        "`co_construction`, `implemented_by` the organization, `proposals` [the proposal], a first milestone) is "
        "created, in one write. Only within the organization's `competences` (one of the proposal's themes), "
        "else 403 saying why; only for a proposal whose receivability decision is `receivable` and that no "
        "organization took up yet, else 409. An `organization:<id>` key takes up for its organization; an admin "
        "or editor key names the organization in the body. The body (JSON, optional for an organization key) "
        "may give the project's fields."
    ),
    requestBody={"required": False, "content": {"application/json": {"schema": TAKE_UP_SCHEMA}}},
    **SECURED,
)
def proposal_take_up(territory: str, local_id: str) -> Response:
    who = writer(territory)
    body: Any = json_body() if request.get_data(cache=True) else {}
    if not isinstance(body, dict):
        raise ValidationFailed("the body is a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}])
    try:
        args = TakeUpBody().load(body, unknown=RAISE)
    except ValidationError as err:
        raise from_validation_error(err, "take-up") from None
    records = services().records
    done = records.take_up(territory, local_id, who, args.get("organization"), args.get("project"))
    project = records.get(territory, KINDS["project"], done.project)
    body = {
        "organization": done.organization,
        "proposal": records.get(territory, KINDS["proposal"], local_id),
        "project": project,
    }
    headers = {"Location": link(record_path(territory, KINDS["project"], done.project))}
    return json_response(body, 201, headers)
