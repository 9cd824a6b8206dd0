"""Targets for pilot projects (``GET /api/v1/territories/{t}/targets``): the values a territory, or
one of its participatory processes, sets itself on indicators for a year or a month (the
``targets`` of its record), each beside the indicator's value in the published cube, with the
progress and whether it is met.

A target ``at_least`` (the default) on a count or an amount, which only grows as records come, is
met once the value reaches it, and missed when its period has ended below it; one ``at_most`` is
missed once the value exceeds it, and met when its period has ended at or under it. A share or a
median can still go either way: its target is decided when its period has ended. Until then, and
whenever the value is not known (withheld, no population), ``met`` is null.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vocabularies import CF, indicators

from ..model.kinds import KINDS
from ..model.terms import period_span
from ..records import Records
from ..records.contributions import AMOUNTS, COUNTS
from .compare import _json_number, _number, indicator_label, reading, unit_label

#: Indicators that only grow as records come within a period: a target on one is decided as soon
#: as it is crossed. (Shares and medians wait for the period's end.)
CUMULATIVE = frozenset((*COUNTS, *AMOUNTS, "attendance"))


@dataclass
class Target:
    process: str | None
    indicator: str
    period: str
    value: Decimal
    per: str | None
    direction: str
    title: str | None
    #: The indicator's value: published, confidential, missing (no population) or no_data.
    actual: int | Decimal | None = None
    status: str = "no_data"
    population: int | None = None
    population_source: str | None = None
    period_over: bool = False

    @property
    def progress(self) -> float | None:
        """The value as a share of the target (1.0: reached)."""
        if self.actual is None or not self.value:
            return None
        return round(float(Decimal(self.actual) / self.value), 4)

    @property
    def met(self) -> bool | None:
        actual = self.actual
        if actual is None:
            if self.status != "no_data" or self.indicator not in CUMULATIVE:
                return None  # withheld or no population: not known; a share of nothing is none
            actual = 0  # nothing counted that period
        if self.indicator not in CUMULATIVE and not self.period_over:
            return None
        if self.direction == "at_most":
            if actual > self.value:
                return False
            return True if self.period_over else None
        if actual >= self.value:
            return True
        return False if self.period_over else None

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        indicator = indicators()[self.indicator]
        return {
            "scope": "process" if self.process else "territory",
            "process": self.process,
            "title": self.title,
            "indicator": self.indicator,
            "label": indicator_label(indicator, self.per, lang),
            "unit": unit_label(indicator, lang),
            "period": self.period,
            "per": self.per,
            "direction": self.direction,
            "target": _json_number(_number(str(self.value))),
            "actual": _json_number(self.actual),
            "status": self.status,
            "population": self.population,
            "population_source": self.population_source,
            "progress": self.progress,
            "met": self.met,
            "period_over": self.period_over,
        }


def targets(records: Records, territory: str, today: dt.date | None = None) -> list[Target]:
    """The targets of the territory's record and of its processes, with their values."""
    records.require_readable(territory)
    today = today or dt.datetime.now(dt.UTC).date()
    found = _targets(None, records.get(territory, KINDS["territory"], territory))
    for process in sorted(records.ids_with(territory, "process", CF.hasTarget)):  # the territory's, then by process
        found += _targets(process, records.get(territory, KINDS["process"], process))
    _values(records, territory, found)
    for target in found:
        span = period_span(target.period)
        target.period_over = span is not None and span[1] < today
    return found


def _targets(process: str | None, record: dict[str, Any]) -> list[Target]:
    """A record's targets; one its store cannot read whole (a peer's, replicated as it publishes
    it: an indicator or a period unknown here) is left out."""
    out = []
    for data in record.get("targets", []):
        if data.get("indicator") not in indicators() or not data.get("period") or data.get("value") is None:
            continue
        value = Decimal(str(data["value"]))
        per, direction = data.get("per"), data.get("direction", "at_least")
        out.append(Target(process, data["indicator"], data["period"], value, per, direction, data.get("title")))
    return out


def _values(records: Records, territory: str, found: list[Target]) -> None:
    """Each target's value from the cube: one query per indicator and kind of value (as it is, per
    inhabitants)."""
    cube = records.indicator_cube(territory)
    for per in (False, True):
        chosen = [t for t in found if bool(t.per) == per]
        if not chosen:
            continue
        cells = {(t.indicator, t.period, t.process, None) for t in chosen}
        totals = {(t.indicator, t.period, None, None) for t in chosen}
        observed: dict[Any, dict[str, Any]] = {}
        for code in {c[0] for c in cells}:
            measure = indicators()[code].iri + ("Per1000" if per else "")
            wanted = [(cube, c) for c in sorted(cells | totals, key=str) if c[0] == code]
            observed |= records.indicator_observations(wanted, measure, per=per)
        for target in chosen:
            props = observed.get((territory, (target.indicator, target.period, target.process, None)))
            if props is not None:
                target.actual, target.status, target.population, target.population_source = reading(props)
            elif target.indicator in COUNTS and (territory, (target.indicator, target.period, None, None)) in observed:
                # Nothing counted in the process while the territory has some: none there.
                target.actual, target.status = 0, "published"
