"""The indicators of one territory computed from scratch, as their definitions say
(vocabularies/indicators.ttl): every record of the counted kinds read once, through the same
read path as the JSON API (a replicated territory is computed like a local one).

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


def periods_of(moment: str) -> tuple[str, str]:
    """The year and the month of a date or UTC date-time as the JSON API writes it."""
    return moment[:4], moment[:7]


def recompute(records: Records, territory: str) -> dict[Cell, int | Decimal]:
    """Every cell of the territory's indicators that has a value."""
    counts: dict[Cell, int | Decimal] = defaultdict(int)
    people: dict[Cell, set[str]] = defaultdict(set)

    def add(code: str, moment: str | None, process: str | None, value: int | Decimal = 1) -> None:
        if moment is None:
            return
        for period in periods_of(moment):
            for where in {process, None}:
                counts[(code, period, where)] += value

    def met(who: str | None, moment: str | None, process: str | None) -> None:
        if who is None or moment is None:
            return
        for period in periods_of(moment):
            for where in {process, None}:
                people[("participants", period, where)].add(who)

    proposals = {p["id"]: p for p in _all(records, territory, "proposal")}
    process_of: dict[tuple[str, str], str | None] = {("proposal", i): p.get("process") for i, p in proposals.items()}
    voted: set[str] = set()
    for vote in _all(records, territory, "vote"):
        process = process_of.get(("proposal", vote["proposal"]))
        voted.add(vote["proposal"])
        add("votes", vote.get("created"), process)
        met(vote.get("voter_id"), vote.get("created"), process)
    for proposal in proposals.values():
        add("proposals", proposal.get("created"), proposal.get("process"))
        met(proposal.get("author_id"), proposal.get("created"), proposal.get("process"))
        if proposal["id"] not in voted and proposal.get("vote_count"):  # counts its platform reported
            add("votes", proposal.get("created"), proposal.get("process"), proposal["vote_count"])
    meetings = list(_all(records, territory, "meeting"))
    projects = list(_all(records, territory, "project"))
    budgets = list(_all(records, territory, "budget"))
    for kind, found in (("meeting", meetings), ("project", projects), ("budget", budgets)):
        process_of.update({(kind, r["id"]): r.get("process") for r in found})
    for comment in _all(records, territory, "comment"):
        about = comment.get("about") or {}
        process = (
            about["id"] if about.get("kind") == "process" else process_of.get((about.get("kind"), about.get("id")))
        )
        add("comments", comment.get("created"), process)
        met(comment.get("author_id"), comment.get("created"), process)
    for meeting in meetings:
        add("meetings", meeting.get("start"), meeting.get("process"))
        if meeting.get("attendees_count") is not None:
            add("attendance", meeting.get("start"), meeting.get("process"), meeting["attendees_count"])
    for project in projects:
        if project.get("status") == "completed" and project.get("end_date"):
            add("projects_delivered", project["end_date"], project.get("process"))
            cost = project.get("cost")
            if cost and cost.get("currency", "EUR") == "EUR":
                add("budget_spent", project["end_date"], project.get("process"), Decimal(str(cost["amount"])))
    for budget in budgets:
        amount = budget.get("amount") or {}
        if budget.get("fiscal_year") is not None and amount.get("currency", "EUR") == "EUR":
            year, process = str(budget["fiscal_year"]), budget.get("process")
            for where in {process, None}:
                counts[("budget_allocated", year, where)] += Decimal(str(amount["amount"]))
    out = dict(counts)
    out.update({cell: len(who) for cell, who in people.items()})
    return out


def _all(records: Records, territory: str, kind: str) -> Iterator[dict[str, Any]]:
    """Every live record of a kind of the territory, page by page."""
    cursor = None
    while True:
        page = records.list(KINDS[kind], territories=[territory], cursor=cursor, limit=PAGE)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return
