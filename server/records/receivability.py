"""Whether a proposal is receivable under its process's rules (docs/rules.md): each condition of
each rule met, unmet or still pending, with the value that decided it. Pure: what the proposal,
its supports and the districts are comes from the caller (records/decisions.py for writes and
the sweep), so that the same function decides everywhere.

A condition is *pending* while time or the city can still settle it: supports short of the
minimum before the votes' deadline (or with no deadline), a cost not estimated yet. What its
author gave or failed to give (themes, a place, a submission date) is settled at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import shapely

from ..model.terms import plain_decimal

#: A condition's outcome, and a decision's status, in the order that decides: one unmet condition
#: makes the proposal not receivable; else one pending condition leaves it pending.
MET, UNMET, PENDING = "met", "unmet", "pending"
RECEIVABLE, NOT_RECEIVABLE, UNDECIDED = "receivable", "not_receivable", "pending"
#: The conditions a rule may set, by the name of their constraint node (``{rule}#constraint-…``,
#: server/model/kinds.py) and the rule's field.
CONDITIONS = {"min-votes": "min_votes", "themes": "allowed_themes", "max-budget": "max_budget",
              "deadline": "deadline", "within": "within"}  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """One condition of one rule, as evaluated: ``value`` is what the proposal has (the evidence),
    ``expected`` what the rule asks, ``explanation`` both in a sentence."""

    rule: str
    name: str
    outcome: str
    expected: str
    value: str
    explanation: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a later decision must differ in to be a new one (not the value: one more support
        to a receivable proposal decides nothing new)."""
        return (self.rule, self.name, self.outcome, self.expected)


@dataclass(frozen=True)
class Decision:
    status: str
    conditions: tuple[Condition, ...]

    @property
    def key(self) -> tuple[str, frozenset[tuple[str, str, str, str]]]:
        return (self.status, frozenset(c.key for c in self.conditions))


@dataclass(frozen=True)
class Facts:
    """What the rules are evaluated against besides the proposal.

    ``supports``: its supports now; ``supports_by(deadline)``: those given by then (individual
    votes dated by their ``created``, else by when they were recorded; a count reported by the
    platform has no dates and counts whole). ``submitted``: the platform's ``created`` or, lacking
    it, when this server first recorded the proposal. ``district_area(id)`` a district's GeoJSON
    boundary, ``within(a, b)`` whether district ``a`` is ``b`` or lies in it."""

    now: dt.datetime
    supports: int
    supports_by: Callable[[dt.datetime], int]
    submitted: dt.datetime | None
    district_area: Callable[[str], Mapping[str, Any] | None]
    within: Callable[[str, str], bool]


def decide(proposal: Mapping[str, Any], rules: list[Mapping[str, Any]], facts: Facts) -> Decision | None:
    """The decision on a proposal under these rules (None without a rule: nothing to decide)."""
    if not rules:
        return None
    conditions = [c for rule in sorted(rules, key=lambda r: r["id"]) for c in _conditions(proposal, rule, facts)]
    outcomes = {c.outcome for c in conditions}
    status = NOT_RECEIVABLE if UNMET in outcomes else UNDECIDED if PENDING in outcomes else RECEIVABLE
    return Decision(status, tuple(conditions))


def next_change(rules: list[Mapping[str, Any]], after: dt.datetime) -> dt.datetime | None:
    """The first deadline of these rules after ``after``: when a pending decision may turn
    without any write (records/decisions.py sweeps then)."""
    times = [m for r in rules for f in ("votes_deadline", "deadline") if (m := moment(r.get(f))) and m > after]
    return min(times, default=None)


def moment(value: Any) -> dt.datetime | None:
    """A record's date-time field, whether loaded (datetime) or read back as text."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _conditions(proposal: Mapping[str, Any], rule: Mapping[str, Any], facts: Facts) -> list[Condition]:
    rid = rule["id"]
    out: list[Condition] = []
    if rule.get("min_votes") is not None:
        out.append(_supports(rid, rule, facts))
    if rule.get("allowed_themes"):
        allowed = sorted(rule["allowed_themes"])
        themes = sorted(proposal.get("themes") or [])
        fitting = [t for t in themes if t in allowed]
        outcome = MET if fitting else UNMET
        said = (
            f"theme {fitting[0]} is allowed"
            if fitting
            else ("no theme given" if not themes else f"{', '.join(themes)} not among the allowed themes")
        )
        out.append(Condition(rid, "themes", outcome, "one of: " + ", ".join(allowed), ", ".join(themes), said))
    if rule.get("max_budget"):
        out.append(_cost(rid, rule["max_budget"], proposal.get("estimated_cost")))
    if rule.get("deadline") is not None:
        deadline = moment(rule["deadline"])
        expected = f"<= {_iso(deadline)}"
        submitted = facts.submitted
        if submitted is None:
            out.append(Condition(rid, "deadline", UNMET, expected, "", "submission date unknown"))
        else:
            ok = submitted <= deadline  # type: ignore[operator]
            said = f"submitted {_iso(submitted)}, {'by' if ok else 'after'} the deadline {_iso(deadline)}"
            out.append(Condition(rid, "deadline", MET if ok else UNMET, expected, _iso(submitted), said))
    if rule.get("within"):
        out.append(_place(rid, rule["within"], proposal, facts))
    return out


def _supports(rid: str, rule: Mapping[str, Any], facts: Facts) -> Condition:
    needed = int(rule["min_votes"])
    closes = moment(rule.get("votes_deadline"))
    expected = f">= {needed}" + (f" by {_iso(closes)}" if closes else "")
    if closes is not None and facts.now > closes:
        count = facts.supports_by(closes)
        ok = count >= needed
        said = f"{count} supports by {_iso(closes)}, {needed} needed"
        return Condition(rid, "min-votes", MET if ok else UNMET, expected, str(count), said)
    count = facts.supports
    if count >= needed:
        return Condition(rid, "min-votes", MET, expected, str(count), f"{count} supports, {needed} needed")
    until = f" until {_iso(closes)}" if closes else ""
    said = f"{count} supports, {needed} needed: open{until}"
    return Condition(rid, "min-votes", PENDING, expected, str(count), said)


def _cost(rid: str, cap: Mapping[str, Any], cost: Mapping[str, Any] | None) -> Condition:
    currency, limit = cap.get("currency", "EUR"), plain_decimal(cap["amount"])
    expected = f"<= {limit} {currency}"
    if not cost:
        return Condition(rid, "max-budget", PENDING, expected, "", "cost not estimated yet")
    value = f"{plain_decimal(cost['amount'])} {cost.get('currency', 'EUR')}"
    if cost.get("currency", "EUR") != currency:
        return Condition(
            rid, "max-budget", UNMET, expected, value, f"estimated in {cost.get('currency')}, the cap is in {currency}"
        )
    ok = Decimal(str(cost["amount"])) <= Decimal(str(cap["amount"]))
    said = f"estimated {value}, {'within' if ok else 'over'} {limit} {currency}"
    return Condition(rid, "max-budget", MET if ok else UNMET, expected, value, said)


def _place(rid: str, district: str, proposal: Mapping[str, Any], facts: Facts) -> Condition:
    expected = f"in district {district}"
    own = proposal.get("district")
    if own and facts.within(own, district):
        return Condition(rid, "within", MET, expected, own, f"in district {own}, within {district}")
    point = proposal.get("location")
    area = facts.district_area(district)
    if point and area:
        inside = shapely.intersects(shapely.from_geojson(json.dumps(area)), shapely.Point(point["lon"], point["lat"]))
        value = f"POINT({point['lon']} {point['lat']})"
        said = f"located {'inside' if inside else 'outside'} district {district}"
        return Condition(rid, "within", MET if inside else UNMET, expected, value, said)
    if own:
        return Condition(rid, "within", UNMET, expected, own, f"in district {own}, not within {district}")
    said = "no location given" if not point else f"located, but district {district} has no boundary"
    return Condition(rid, "within", UNMET, expected, "", said)


def _iso(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else ""
