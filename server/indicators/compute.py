"""The indicators of one territory computed from scratch, as their definitions say
(vocabularies/indicators.ttl): every record of the counted kinds read once, through the same
read path as the JSON API. A territory replicated from a peer is computed from what it
publishes: individual votes are never published, so there its votes count at their proposal's
creation (the published vote counts) and voters are not among its participants.

A cell is (indicator code, period, process): a period is a year (``2024``) or a month
(``2024-03``), the process a process id or None for the whole territory. A record counts in
the periods its own date falls in. Indicators that rest on receivability decisions (the shares
and the days to a decision) have no cell until decisions exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ..model.kinds import KINDS
from ..records import Records

#: (indicator code, period, process id or None: every process).
Cell = tuple[str, str, str | None]

#: Records read per page.
PAGE = 1000
#: The kinds whose records others count against (what a vote or a comment is about).
LIVE_KINDS = ("process", "proposal", "meeting", "project", "budget")
#: Indicators that count: 0 where the territory has records but none of these.
COUNTS = ("participants", "proposals", "votes", "comments", "meetings", "projects_delivered")


def periods_of(moment: str) -> tuple[str, str]:
    """The year and the month of a date or UTC date-time as the JSON API writes it."""
    return moment[:4], moment[:7]


def recompute(records: Records, territory: str) -> dict[Cell, int | Decimal]:
    """Every cell of the territory's indicators that has a value. The counts (people, proposals,
    votes, comments, meetings, projects delivered) are 0, not absent, in every year, month and
    process where the territory has any counted record: a comparison tells "none" from "not
    known". A vote or a comment counts only while what it is about is live."""
    counts: dict[Cell, int | Decimal] = defaultdict(int)
    people: dict[Cell, set[str]] = defaultdict(set)
    seen: set[tuple[str, str | None]] = set()

    def add(code: str, moment: str | None, process: str | None, value: int | Decimal = 1) -> None:
        if moment is None:
            return
        for period in periods_of(moment):
            for where in {process, None}:
                counts[(code, period, where)] += value
                seen.add((period, where))

    def met(who: str | None, moment: str | None, process: str | None) -> None:
        if who is None or moment is None:
            return
        for period in periods_of(moment):
            for where in {process, None}:
                people[("participants", period, where)].add(who)

    live = {kind: {r["id"]: r for r in _all(records, territory, kind)} for kind in LIVE_KINDS}
    proposals, budgets = live["proposal"], live["budget"]
    process_of: dict[tuple[str, str], str | None] = {("process", i): i for i in live["process"]}
    for kind in ("proposal", "meeting", "budget"):
        process_of.update({(kind, i): r.get("process") for i, r in live[kind].items()})
    for i, project in live["project"].items():  # a project without a process: its budget's
        budget = budgets.get(project.get("budget") or "", {})
        process_of[("project", i)] = project.get("process") or budget.get("process")
    voted: set[str] = set()
    for vote in _all(records, territory, "vote"):
        proposal = proposals.get(vote["proposal"])
        if proposal is None:  # a vote for a deleted proposal
            continue
        voted.add(proposal["id"])
        when, process = vote.get("created") or proposal.get("created"), proposal.get("process")
        add("votes", when, process)
        met(vote.get("voter_id"), when, process)
    for proposal in proposals.values():
        add("proposals", proposal.get("created"), proposal.get("process"))
        met(proposal.get("author_id"), proposal.get("created"), proposal.get("process"))
        if proposal["id"] not in voted and proposal.get("vote_count"):  # counts its platform reported
            add("votes", proposal.get("created"), proposal.get("process"), proposal["vote_count"])
    for comment in _all(records, territory, "comment"):
        about = comment.get("about") or {}
        target = (about.get("kind"), about.get("id"))
        if target not in process_of:  # about a record deleted (or never written)
            continue
        add("comments", comment.get("created"), process_of[target])
        met(comment.get("author_id"), comment.get("created"), process_of[target])
    for meeting in live["meeting"].values():
        add("meetings", meeting.get("start"), meeting.get("process"))
        if meeting.get("attendees_count") is not None:
            add("attendance", meeting.get("start"), meeting.get("process"), meeting["attendees_count"])
    for i, project in live["project"].items():
        if project.get("status") == "completed" and project.get("end_date"):
            process = process_of[("project", i)]
            add("projects_delivered", project["end_date"], process)
            cost = project.get("cost")
            if cost and cost.get("currency", "EUR") == "EUR":
                add("budget_spent", project["end_date"], process, Decimal(str(cost["amount"])))
    for budget in budgets.values():
        amount = budget.get("amount") or {}
        if budget.get("fiscal_year") is not None and amount.get("currency", "EUR") == "EUR":
            year, process = str(budget["fiscal_year"]), budget.get("process")
            for where in {process, None}:
                counts[("budget_allocated", year, where)] += Decimal(str(amount["amount"]))
    out = dict(counts)
    out.update({cell: len(who) for cell, who in people.items()})
    for period, where in seen:
        for code in COUNTS:
            out.setdefault((code, period, where), 0)
    return out


def _all(records: Records, territory: str, kind: str) -> Iterator[dict[str, Any]]:
    """Every live record of a kind of the territory, once each: pages follow record_modified,
    so a record written during the walk comes again at its end (its last version is kept)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        page = records.list(KINDS[kind], territories=[territory], cursor=cursor, limit=PAGE)
        found.update((r["id"], r) for r in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return iter(found.values())
