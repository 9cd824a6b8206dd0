"""What one record counts for in its territory's indicators (vocabularies/indicators.ttl): the one
definition both the from-scratch computation (server/indicators) and the values every write
maintains (records/indicators.py) rest on, so that the two cannot disagree on what a record is
worth, only on bookkeeping, which ``civicfed indicators verify`` checks.

A record's contributions depend on the records it is about (a vote counts in its proposal's
process, and not at all once the proposal is deleted) and, for a proposal, on whether it has
individual votes (else the votes its platform reported count): a :class:`Context` answers those.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

#: Where a value is counted: (period, process id, district id); None is "all of them". A value is
#: broken down by process or by district, not both: one of the two is None.
Place = tuple[str, str | None, str | None]
#: (indicator code, period, process id, district id).
Cell = tuple[str, str, str | None, str | None]

#: Indicators that count: 0 where the territory has any counted record but none of these.
COUNTS = ("participants", "proposals", "votes", "comments", "meetings", "projects_delivered")
#: Indicators summing amounts (xsd:decimal); the others are integers.
AMOUNTS = ("budget_spent", "budget_allocated")
#: The kinds whose records count, and those others count against (what a vote or comment is about).
COUNTED = ("proposal", "vote", "comment", "meeting", "project", "budget")
TARGETS = ("process", "proposal", "meeting", "project", "budget")
#: Links along which a record's contributions depend on another's: (kind, field, target kind or
#: None for a ``{"kind", "id"}`` target). A change of the target's :func:`view` moves them.
DEPENDS = (("vote", "proposal", "proposal"), ("comment", "about", None), ("project", "budget", "budget"))
#: Shares, in percent: (numerator, denominator), two counts every write keeps in cells of their
#: own that are never published (their codes start with "_").
SHARES = {"receivable_share": ("_receivable", "_decided"), "taken_up_share": ("_taken_up", "_receivable")}
AUXILIARY = tuple(sorted({code for pair in SHARES.values() for code in pair}))
#: Medians, in days (one decimal): each kept as its distribution, one unpublished cell per whole
#: number of days (``_days-12``: how many proposals were answered 12 days after their submission),
#: which every write adds to and takes from like any count.
MEDIANS = {"days_to_decision": "_days-"}
#: Indicators published as decimals.
DECIMALS = frozenset((*AMOUNTS, *SHARES, *MEDIANS))


class Contribution(NamedTuple):
    """One thing a record adds: ``value`` to the indicator ``code`` of the periods its ``moment``
    (a date, a date-time or a year) falls in, for the whole territory, its ``process`` and its
    ``district``; and ``person``, a pseudonym, among the participants there. (A named tuple: an
    import makes one per record and more, and a frozen dataclass took three times as long to make.)"""

    code: str
    moment: str
    process: str | None
    value: int | Decimal = 1
    person: str | None = None
    district: str | None = None

    def places(self) -> tuple[Place, ...]:
        return _places(self.moment, self.process, self.district)

    def cells(self) -> Iterator[Cell]:
        for place in self.places():
            yield (self.code, *place)


@dataclass
class Context:
    """What a record's contributions depend on besides itself: ``target(kind, id)`` the live
    record (None once deleted or never written), ``voted(id)`` whether a proposal has individual
    votes."""

    target: Callable[[str, str], dict[str, Any] | None]
    voted: Callable[[str], bool]
    #: A proposal's receivability decision in force (records/decisions.py), or None.
    receivability: Callable[[str], str | None] = lambda _: None

    def process_of(self, kind: str, data: dict[str, Any]) -> str | None:
        """The process a record belongs to: a process is its own; a project without one is in its
        budget's."""
        if kind == "process":
            return data["id"]
        if kind == "project" and not data.get("process") and data.get("budget"):
            budget = self.target("budget", data["budget"])
            return budget.get("process") if budget else None
        return data.get("process")

    def district_of(self, kind: str, data: dict[str, Any]) -> str | None:
        """The district a record lies in: a vote's, or a comment's, is what it is about's."""
        if kind == "vote":
            proposal = self.target("proposal", data["proposal"])
            return proposal.get("district") if proposal else None
        return data.get("district")


@functools.lru_cache(maxsize=65536)
def _places(moment: str, process: str | None, district: str | None) -> tuple[Place, ...]:
    """Where a contribution counts (cached: an import's thousands of records share a few hundred
    days, processes and districts)."""
    out: list[Place] = []
    for period in periods_of(moment):
        out.append((period, None, None))
        if process:
            out.append((period, process, None))
        if district:
            out.append((period, None, district))
    return tuple(out)


def periods_of(moment: str) -> tuple[str, ...]:
    """The year and the month of a date or UTC date-time as the JSON API writes it; a year alone."""
    return (moment[:4], moment[:7]) if len(moment) >= 7 else (moment[:4],)


def _moment(value: Any) -> str:
    """The day of a date as the JSON API writes it: a date-time's in UTC (a written record's may
    have any offset: 23:30 at -02:00 on 31 March is in April), a date or a year as it is."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset():  # (most are in UTC: no conversion)
            value = value.astimezone(dt.UTC)
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _instant(value: Any) -> dt.datetime | None:
    """A date-time in UTC (a naive one is taken as UTC), from what the JSON API reads or writes."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def days_between(start: Any, end: Any) -> int | None:
    """Whole days from one date-time to a later one (None if either is missing, or the end is
    before the start: a record's dates in the wrong order say nothing of a delay)."""
    first, last = _instant(start), _instant(end)
    if first is None or last is None or last < first:
        return None
    return (last - first).days


def view(kind: str, data: dict[str, Any] | None, ctx: Context) -> tuple[str | None, ...] | None:
    """What records depending on this one see of it: None once deleted, else its process, its
    creation (an undated vote counts at its proposal's) and its district."""
    if data is None:
        return None
    created = data.get("created")
    return ctx.process_of(kind, data), _moment(created) if created else None, ctx.district_of(kind, data)


def contributions(kind: str, data: dict[str, Any] | None, ctx: Context) -> list[Contribution]:
    """Everything a record (as the JSON API reads it; None: deleted) counts for."""
    if data is None or kind not in COUNTED:
        return []
    out: list[Contribution] = []

    def add(code: str, moment: Any, process: str | None, value: int | Decimal = 1, person: Any = None) -> None:
        if moment:
            out.append(Contribution(code, _moment(moment), process, value, person, district))

    district = ctx.district_of(kind, data)
    if kind == "vote":
        proposal = ctx.target("proposal", data["proposal"])
        if proposal is not None:  # a vote for a deleted proposal counts nowhere
            when = data.get("created") or proposal.get("created")
            add("votes", when, proposal.get("process"), 1, data.get("voter_id"))
    elif kind == "proposal":
        created, process = data.get("created"), data.get("process")
        add("proposals", created, process, 1, data.get("author_id"))
        if data.get("vote_count") and not ctx.voted(data["id"]):  # the votes its platform counted
            add("votes", created, process, data["vote_count"])
        days = days_between(created, data.get("answered_at"))
        if days is not None:  # answered: the delay joins its period's distribution
            add(f"{MEDIANS['days_to_decision']}{days}", created, process)
        status = ctx.receivability(data["id"])
        if status in ("receivable", "not_receivable"):  # decided (a pending one is not yet)
            add("_decided", created, process)
            if status == "receivable":
                add("_receivable", created, process)
                if data.get("handled_by"):
                    add("_taken_up", created, process)
    elif kind == "comment":
        about = data.get("about") or {}
        target = ctx.target(about["kind"], about["id"]) if about.get("kind") in TARGETS else None
        if target is not None:  # about a record deleted (or of a kind not counted against)
            district = ctx.district_of(about["kind"], target)
            add("comments", data.get("created"), ctx.process_of(about["kind"], target), 1, data.get("author_id"))
    elif kind == "meeting":
        add("meetings", data.get("start"), data.get("process"))
        if data.get("attendees_count") is not None:
            add("attendance", data.get("start"), data.get("process"), data["attendees_count"])
    elif kind == "project":
        if data.get("status") == "completed" and data.get("end_date"):
            process = ctx.process_of("project", data)
            add("projects_delivered", data["end_date"], process)
            cost = data.get("cost")
            if cost and cost.get("currency", "EUR") == "EUR":
                add("budget_spent", data["end_date"], process, Decimal(str(cost["amount"])))
    elif kind == "budget":
        amount = data.get("amount") or {}
        if data.get("fiscal_year") is not None and amount.get("currency", "EUR") == "EUR":
            add("budget_allocated", str(data["fiscal_year"]), data.get("process"), Decimal(str(amount["amount"])))
    return out


@dataclass
class Sums:
    """Contributions added up (or taken away: ``sign`` -1) per cell: each cell's value and how
    many contributions make it, and per place how many contributions each person has there. A
    computation from scratch is the sum over every record; a write adds the difference between
    its records' new and old contributions."""

    values: dict[Cell, int | Decimal]
    counts: dict[Cell, int]
    people: dict[Place, dict[str, int]]
    #: Of a difference: the people with a contribution at a place after it (added), and those
    #: with one taken away (who may have others there).
    added: set[tuple[Place, str]]
    removed: set[tuple[Place, str]]

    def __init__(self) -> None:
        self.values, self.counts, self.people = {}, {}, {}
        self.added, self.removed = set(), set()

    def add(self, found: Iterable[Contribution], sign: int = 1) -> None:
        # Added up by month, process and district first, then to each place they count in: an
        # import's tens of thousands of contributions fall in a few hundred of them.
        sums: dict[tuple[str, str, str | None, str | None], list[Any]] = {}
        who: dict[tuple[str, str | None, str | None], dict[str, int]] = {}
        for c in found:
            month = c.moment[:7]  # (the periods it counts in: its year and month, or a year)
            key = (c.code, month, c.process, c.district)
            acc = sums.get(key)
            if acc is None:
                sums[key] = [c.value, 1]
            else:
                acc[0] += c.value
                acc[1] += 1
            if c.person is not None:
                persons = who.setdefault((month, c.process, c.district), {})
                persons[c.person] = persons.get(c.person, 0) + 1
        values, counts, people = self.values, self.counts, self.people
        for (code, month, process, district), (value, n) in sums.items():
            for place in _places(month, process, district):
                cell = (code, *place)
                values[cell] = values.get(cell, 0) + sign * value
                counts[cell] = counts.get(cell, 0) + sign * n
        moved = self.added if sign > 0 else self.removed
        for (month, process, district), persons in who.items():
            for place in _places(month, process, district):
                at = people.setdefault(place, {})
                for person, n in persons.items():
                    at[person] = at.get(person, 0) + sign * n
                    moved.add((place, person))

    def cells(self) -> dict[Cell, tuple[int | Decimal, int]]:
        """(value, contributions) per cell, participants included (their value is the number of
        people with a contribution there)."""
        out = {cell: (self.values[cell], n) for cell, n in self.counts.items()}
        for place, persons in self.people.items():
            present = sum(1 for refs in persons.values() if refs > 0)
            out[("participants", *place)] = (present, present)
        return out

    def published(self) -> dict[Cell, int | Decimal]:
        """The indicator values these sums give (:func:`published`)."""
        return published(self.cells())


def published(cells: dict[Cell, tuple[int | Decimal, int]]) -> dict[Cell, int | Decimal]:
    """The indicator values cells give: those some contribution makes, and 0 for the counts in
    every place where the territory has any counted record (a comparison tells "none" from "not
    known")."""
    out = {cell: value for cell, (value, n) in cells.items() if n > 0 and not cell[0].startswith("_")}
    for _, *place in list(out):
        for code in COUNTS:
            out.setdefault((code, *place), 0)  # type: ignore[arg-type]
    for code, prefix in MEDIANS.items():
        spread: dict[Place, list[tuple[int, int]]] = {}
        for (c, *place), (_, n) in cells.items():
            if c.startswith(prefix) and n > 0:
                spread.setdefault(tuple(place), []).append((int(c[len(prefix) :]), n))  # type: ignore[arg-type]
        for place, counts in spread.items():
            out[(code, *place)] = median(counts)  # type: ignore[index]
    for code, (part, whole) in SHARES.items():
        for (c, *place), (value, n) in cells.items():
            if c == whole and n > 0 and value > 0:
                share = Decimal(100) * Decimal(cells.get((part, *place), (0, 0))[0]) / Decimal(value)  # type: ignore[arg-type]
                out[(code, *place)] = share.quantize(Decimal("0.01"))  # type: ignore[index]
    return out


def median(counts: list[tuple[int, int]]) -> Decimal:
    """The median of a distribution given as (value, how many times), to one decimal."""
    ordered = sorted(counts)
    total = sum(n for _, n in ordered)
    wanted = {(total - 1) // 2, total // 2}  # the middle one, or the middle two
    found: list[int] = []
    seen = 0
    for value, n in ordered:
        found += [value] * sum(1 for i in wanted if seen <= i < seen + n)
        seen += n
    return (Decimal(sum(found)) / len(found)).quantize(Decimal("0.1"))
