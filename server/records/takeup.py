"""An organization takes up a receivable proposal within its competences (docs/rules.md, "Taking
a proposal up"): the proposal becomes ``handled_by`` the organization and a co-construction project the
organization ``implemented_by``, linked to the proposal, is created, in one write. Who may, and
when, is decided here, before the write path (which would refuse an organization key changing a
proposal it does not handle yet): under the territory's write lock, so that two organizations
taking the same proposal up at once cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, Forbidden, ValidationFailed
from ..model.kinds import KINDS
from ..state import Principal
from .authz import require_writer
from .decisions import current_decisions
from .ops import Op, WriteReport
from .read import Reader
from .receivability import RECEIVABLE
from .write import Writer, prepare

PROPOSAL, PROJECT, ORGANIZATION, TERRITORY = (KINDS[k] for k in ("proposal", "project", "organization", "territory"))
#: The first milestone of a project taken up, in the territory's language.
TAKEN_UP = {"fr": "Proposition reprise par {name}", "en": "Proposal taken up by {name}"}


@dataclass
class TakenUp:
    organization: str
    project: str
    report: WriteReport


def take_up(
    writer: Writer,
    territory: str,
    proposal_id: str,
    principal: Principal | None,
    organization: str | None = None,
    project: dict[str, Any] | None = None,
) -> TakenUp:
    """Have ``organization`` (an ``organization:<id>`` key's own, or named by an admin or editor
    key, or by the operator with no key) take ``proposal_id`` up, creating ``project`` (fields of
    a project; its id defaults to the proposal's). Raises Forbidden (who may not), Conflict (the
    proposal is not receivable, or taken up already), NotFound, ValidationFailed."""
    org = _organization_of(principal, territory, organization)
    reader = writer.reader
    with writer.state.write_lock(territory):
        proposal = reader.get(territory, PROPOSAL, proposal_id)
        found = reader.load(territory, ORGANIZATION, [reader.urls.resource(territory, "organization", org)])
        org_data = next(iter(found.values()))
        if org_data is None:
            raise Forbidden(f"organization {org!r} has no record in {territory!r}: it has no competences")
        competences = sorted(org_data.get("competences") or [])
        themes = sorted(proposal.get("themes") or [])
        if not set(competences) & set(themes):
            raise Forbidden(
                f"organization {org!r} cannot take proposal {proposal_id!r} up: its competences "
                f"({', '.join(competences) or 'none'}) do not cover the proposal's themes "
                f"({', '.join(themes) or 'none'})",
                competences=competences,
                themes=themes,
            )
        if proposal.get("handled_by"):
            raise Conflict(
                f"proposal {proposal_id!r} is already taken up by organization {proposal['handled_by']!r}",
                handled_by=proposal["handled_by"],
            )
        iri = reader.urls.resource(territory, "proposal", proposal_id)
        decision = current_decisions(reader, territory, [iri]).get(iri)
        if decision is None or decision.status != RECEIVABLE:
            status = decision.status if decision else "undecided (no rule applies to its process)"
            raise Conflict(
                f"proposal {proposal_id!r} is not receivable: its receivability is {status}",
                receivability=decision.status if decision else None,
            )
        data = _project(reader, territory, proposal, org, org_data, project or {})
        project_id = data.pop("id")
        try:
            loaded = prepare(PROJECT, data, local_id=project_id)
        except ValidationFailed as err:  # the pointers are the request's: under /project
            for e in err.errors:
                e["pointer"] = "#/project" + e.get("pointer", "#")[1:]
            raise
        ops = [
            Op(PROPOSAL, proposal_id, "patch", {"handled_by": org}),
            Op(PROJECT, project_id, "upsert", loaded, create_only=True),
        ]
        report = writer.write(territory, ops, None)
    for outcome in report.outcomes:
        if outcome.error is not None:
            if outcome.op.kind is PROJECT:  # the request's pointers: under /project
                for e in outcome.error.errors:
                    if "pointer" in e:
                        e["pointer"] = "#/project" + e["pointer"][1:]
            raise outcome.error
    return TakenUp(org, project_id, report)


def _organization_of(principal: Principal | None, territory: str, named: str | None) -> str:
    """The organization taking the proposal up: an organization key's own (naming another is
    refused); admin and editor keys, and the operator, name it."""
    if principal is not None:
        require_writer(principal, territory)
        own = principal.organization
        if own is not None:
            if named is not None and named != own:
                raise Forbidden(f"this key is organization {own!r}'s: it cannot take proposals up for {named!r}")
            return own
    if named is None:
        raise ValidationFailed(
            "an admin or editor key names the organization taking the proposal up",
            errors=[{"pointer": "#/organization", "detail": "Missing."}],
        )
    return named


def _project(
    reader: Reader, territory: str, proposal: dict[str, Any], org: str, org_data: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    """The co-construction project: what the request gives, over what the proposal says."""
    language = reader.get(territory, TERRITORY, territory).get("language") or "en"
    name = org_data.get("name", org)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    out: dict[str, Any] = {
        "id": proposal["id"],
        "process": proposal["process"],
        "title": proposal["title"],
        "status": "co_construction",
        "proposals": [proposal["id"]],
        "implemented_by": org,
        "milestones": [{"date": today, "title": TAKEN_UP.get(language, TAKEN_UP["en"]).format(name=name)}],
    }
    for field, source in (("description", "body"), ("location", "location"), ("address", "address"),
                          ("district", "district"), ("themes", "themes")):  # fmt: skip
        if proposal.get(source):
            out[field] = proposal[source]
    for field in ("proposals", "implemented_by"):
        if field in given and given[field] != out[field]:
            raise ValidationFailed(
                f"a project taken up has the proposal and the organization taking it up: {field} is set",
                errors=[{"pointer": f"#/project/{field}", "detail": "Set by the take-up."}],
            )
    return {**out, **given}
