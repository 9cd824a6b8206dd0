"""Rows of Decidim's open-data files as civicfed records, one mapper per entity.

Ids: a record keeps its Decidim id, except where two Decidim tables share one civicfed kind:
accountability results and budgets projects are both projects (``result.<id>``,
``project.<id>``); participatory spaces and debates are both processes (a participatory process
is its slug, other spaces ``assembly.<slug>``…, see :data:`SPACE_PREFIXES`, a debate
``debate.<id>``). Slugs have no dot, so no two of these can meet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from server.ingest import Item, Record
from server.model.kinds import KINDS

from . import decidim_rows as r
from .decidim_rows import Context
from .decidim_values import (
    boolean,
    compact,
    day,
    integer,
    last_record,
    linked_ids,
    local_id,
    moment,
    number,
    space_of,
)
from .tabular import Row


class Target(NamedTuple):
    """A kind of Decidim record that comments may be about."""

    name: str  # as messages and Context.imported call it
    kind: str  # its civicfed kind
    prefix: str  # of its local ids
    segment: str  # in its URLs


#: Decidim's commentable classes. Blog posts (and anything else) have no civicfed kind.
COMMENTABLES = {
    "Decidim::Proposals::Proposal": Target("proposal", "proposal", "", "proposals"),
    "Decidim::Meetings::Meeting": Target("meeting", "meeting", "", "meetings"),
    "Decidim::Accountability::Result": Target("result", "project", "result.", "results"),
    "Decidim::Budgets::Project": Target("project", "project", "project.", "projects"),
    "Decidim::Debates::Debate": Target("debate", "process", "debate.", "debates"),
}
_BY_SEGMENT = {t.segment: t for t in COMMENTABLES.values()}
_REPLY = "Decidim::Comments::Comment"

#: Decidim proposal states (the default ones; custom states of 0.28+ map to nothing).
_STATES = {
    "": "published",
    "not_answered": "published",
    "published": "published",
    "evaluating": "evaluating",
    "accepted": "accepted",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
}
#: The answers that decide on a proposal (Decidim also answers "evaluating", which does not).
_DECISIONS = frozenset(("accepted", "rejected"))


def space(kind: str) -> Any:
    """The mapper of a participatory-space file (``participatory_processes``, ``assemblies``…)."""

    def mapper(row: Row, ctx: Context) -> Iterator[Item]:
        found = space_of(row.get("url")) or space_of(f"/{kind}/{row.get('slug') or ''}")
        if not found:
            yield r.invalid(row, "process", None, "#/id", "no url nor slug naming the space")
            return
        process = found[0]
        ctx.processes.add(process)
        title, language, (description, short) = r.texts(row, ctx, "title", "description", "short_description")
        data = {
            "id": process,
            "title": title,
            "description": description or short,
            "type": r.space_type(kind),
            "start_date": day(row.get("start_date")),
            "end_date": day(row.get("end_date", "closing_date")),
            "language": language,
            "url": row.get("url"),
            **r.dates(row),
        }
        yield Record(KINDS["process"], compact(data), row.line)

    return mapper


def proposal(row: Row, ctx: Context) -> Iterator[Item]:
    local = local_id(row.get("id"))
    if local is None:
        yield r.no_id(row, "proposal")
        return
    spaces, process = r.space_in(row, ctx)
    yield from spaces
    if process is None:
        yield r.invalid(row, "proposal", local, "#/process", "no participatory_space/url nor url naming its space")
        return
    title, language, (body,) = r.texts(row, ctx, "title", "body")
    state = (row.get("state") or "").lower()
    withdrawn = boolean(row.get("withdrawn")) is True or bool(row.get("withdrawn_at"))
    data = {
        "id": local,
        "process": process,
        "title": title,
        "body": body,
        "status": "withdrawn" if withdrawn else _STATES.get(state),
        "address": row.get("address"),
        "location": r.point(row),
        "estimated_cost": r.money(row.get("cost"), ctx),
        # Blank when the component hides votes: no figure, not zero.
        "vote_count": integer(row.get("votes", "supports")),
        "comment_count": integer(row.get("comments", "comments_count")),
        # A decision's date: "evaluating" is an answer that decides nothing yet (the days to a
        # decision are counted to it, docs/indicators.md).
        "answered_at": moment(row.get("answered_at")) if state in _DECISIONS else None,
        "language": language,
        "url": row.get("url"),
        "author": r.author(row),
        **r.dates(row),
    }
    ctx.imported["proposal"].add(local)
    yield Record(KINDS["proposal"], compact(data), row.line)


def meeting(row: Row, ctx: Context) -> Iterator[Item]:
    local = local_id(row.get("id"))
    if local is None:
        yield r.no_id(row, "meeting")
        return
    spaces, process = r.space_in(row, ctx)
    yield from spaces
    title, language, (description,) = r.texts(row, ctx, "title", "description")
    place = r.text(row, "location", (language, *ctx.languages) if language else ctx.languages)[0]
    online_url = row.get("online_meeting_url")
    mode = row.get("type_of_meeting")
    if mode is None:  # before 0.24 every meeting took place somewhere
        mode = "in_person" if row.get("address") or place else "online" if online_url else None
    if mode is None:
        detail = "no type_of_meeting, address, location nor online_meeting_url: its attendance mode is unknown"
        yield r.invalid(row, "meeting", local, "#/mode", detail)
        return
    physical = mode != "online"  # an online meeting may keep the address it had
    slots = integer(row.get("available_slots"))
    data = {
        "id": local,
        "process": process,
        "title": title,
        "description": description,
        "start": moment(row.get("start_time")),
        "end": moment(row.get("end_time")),
        "mode": mode,
        "place_name": place if physical else None,
        "address": row.get("address") if physical else None,
        "location": r.point(row) if physical else None,
        "online_url": online_url,
        "attendees_count": integer(row.get("attendees", "attendees_count")),
        "capacity": slots if slots != 0 else None,  # 0: no limit
        "proposals": r.links(ctx, "proposal", linked_ids(row.get("related_proposals"), "proposals")),
        "language": language,
        "url": row.get("url"),
        **r.dates(row),
    }
    ctx.imported["meeting"].add(local)
    yield Record(KINDS["meeting"], compact(data), row.line)


def result(row: Row, ctx: Context) -> Iterator[Item]:
    """An accountability result: a project carried out (its status is the component's own words)."""
    yield from _project(row, ctx, "result", {
        "start_date": day(row.get("start_date")),
        "end_date": day(row.get("end_date")),
        "progress": number(row.get("progress")),
        "proposals": linked_ids(row.get("proposal_urls", "related_proposals"), "proposals"),
    })  # fmt: skip


def project(row: Row, ctx: Context) -> Iterator[Item]:
    """A budgets project: what participants voted on, with its cost."""
    selected = row.cells.get("selected_at")
    yield from _project(row, ctx, "project", {
        "budget": local_id(row.get("budget/id")),
        "cost": r.money(row.get("budget_amount"), ctx),
        "selected": None if selected is None else bool(selected.strip()),
        "proposals": linked_ids(row.get("related_proposals"), "proposals"),
    })  # fmt: skip


def _project(row: Row, ctx: Context, name: str, specific: dict[str, Any]) -> Iterator[Item]:
    local = local_id(row.get("id"), f"{name}.")
    if local is None:
        yield r.no_id(row, "project")
        return
    spaces, process = r.space_in(row, ctx)
    yield from spaces
    title, _, (description,) = r.texts(row, ctx, "title", "description")
    budget = specific.pop("budget", None)
    data = {
        "id": local,
        "process": process,
        "budget": budget if budget in ctx.imported.get("budget", ()) else None,
        "title": title,
        "description": description,
        **specific,
        "proposals": r.links(ctx, "proposal", specific["proposals"]),
        "address": row.get("address"),
        "location": r.point(row),
        "url": row.get("url"),
        **r.dates(row),
    }
    ctx.imported[name].add(local)
    yield Record(KINDS["project"], compact(data), row.line)


def budget(row: Row, ctx: Context) -> Iterator[Item]:
    """A budget, if a source has them: stock Decidim exports only its id, on each project."""
    local = local_id(row.get("id"))
    if local is None:
        yield r.no_id(row, "budget")
        return
    spaces, process = r.space_in(row, ctx)
    yield from spaces
    title, _, (description,) = r.texts(row, ctx, "title", "description")
    data = {
        "id": local,
        "process": process,
        "title": title,
        "description": description,
        "amount": r.money(row.get("total_budget"), ctx),
        "url": row.get("url"),
        **r.dates(row),
    }
    ctx.imported["budget"].add(local)
    yield Record(KINDS["budget"], compact(data), row.line)


def debate(row: Row, ctx: Context) -> Iterator[Item]:
    """A debate: a process of type ``debate`` (a discussion with its own comments and dates)."""
    local = local_id(row.get("id"), "debate.")
    if local is None:
        yield r.no_id(row, "process")
        return
    title, language, (description,) = r.texts(row, ctx, "title", "description")
    data = {
        "id": local,
        "title": title,
        "description": description,
        "type": "debate",
        "status": "closed" if row.get("closed_at") else None,
        "start_date": day(row.get("start_time")),
        "end_date": day(row.get("end_time")),
        "language": language,
        "url": row.get("url"),
        **r.dates(row),
    }
    ctx.imported["debate"].add(local)
    yield Record(KINDS["process"], compact(data), row.line)


def comment(row: Row, ctx: Context) -> Iterator[Item]:
    local = local_id(row.get("id"))
    if local is None:
        yield r.no_id(row, "comment")
        return
    commentable, commented = row.get("commentable_type") or "", row.get("commentable_id")
    reply_to = None
    target = COMMENTABLES.get(commentable)
    if commentable == _REPLY:  # a reply: what the thread is about is in its root's URL
        reply_to = local_id(commented)
        root = last_record(row.get("root_commentable_url"))
        target, commented = (_BY_SEGMENT.get(root[0]), root[1]) if root else (None, None)
    if target is None or not commented:
        what = commentable if commentable != _REPLY else f"the thread at {row.get('root_commentable_url')!r}"
        detail = f"a comment on {what or 'nothing named'}: civicfed has no kind of record for it"
        yield r.invalid(row, "comment", local, "#/about", detail)
        return
    about = f"{target.prefix}{commented}"
    if target.name in ctx.imported and about not in ctx.imported[target.name]:
        detail = f"the {target.name} {commented} it is about is not in this export (or could not be read)"
        yield r.invalid(row, "comment", local, "#/about", detail)
        return
    data = {
        "id": local,
        "about": {"kind": target.kind, "id": about},
        "reply_to": reply_to,
        # Typed as plain text: "<script>" in a comment is what its author wrote, not markup.
        "body": row.get("body") or r.text(row, "body", ctx.languages)[0],
        "alignment": integer(row.get("alignment")),
        "language": row.get("locale"),
        "author": r.author(row),
        "created": moment(row.get("created_at")),
        "modified": moment(row.get("updated_at")),
    }
    yield Record(KINDS["comment"], compact(data), row.line)
