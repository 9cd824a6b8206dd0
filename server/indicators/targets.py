"""Targets for pilot projects (``GET /api/v1/territories/{t}/targets``): the values a territory,
one of its participatory processes or one of its projects sets itself on indicators for a year or
a month (the ``targets`` of its record), each beside the indicator's value, with the progress and
whether it is met. The territory's and its processes' values are the published cube's; a
project's are counted from its own records (the cube has no project dimension), protected as the
cube's breakdown cells are: fewer than k people, a month that the year would give away, and their
votes, are withheld.

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
from ..records.contributions import AMOUNTS, COUNTS, Cell
from ..records.cube import counts_people, withheld
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
    project: str | None = None

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
            "scope": "project" if self.project else "process" if self.process else "territory",
            "process": self.process,
            "project": self.project,
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
    """The targets of the territory's record, of its processes and of its projects, with their values."""
    records.require_readable(territory)
    today = today or dt.datetime.now(dt.UTC).date()
    found = _targets(None, records.get(territory, KINDS["territory"], territory))
    for process in sorted(records.ids_with(territory, "process", CF.hasTarget)):  # the territory's, then by process
        found += _targets(process, records.get(territory, KINDS["process"], process))
    for project in sorted(records.ids_with(territory, "project", CF.hasTarget)):
        found += _targets(None, records.get(territory, KINDS["project"], project), project)
    _values(records, territory, [t for t in found if t.project is None])
    _project_values(records, territory, [t for t in found if t.project is not None])
    for target in found:
        span = period_span(target.period)
        target.period_over = span is not None and span[1] < today
    return found


def _targets(process: str | None, record: dict[str, Any], project: str | None = None) -> list[Target]:
    """A record's targets; one its store cannot read whole (a peer's, replicated as it publishes
    it: an indicator or a period unknown here) is left out."""
    out = []
    for data in record.get("targets", []):
        if data.get("indicator") not in indicators() or not data.get("period") or data.get("value") is None:
            continue
        value = Decimal(str(data["value"]))
        per, direction = data.get("per"), data.get("direction", "at_least")
        target = Target(process, data["indicator"], data["period"], value, per, direction, data.get("title"))
        target.project = project
        out.append(target)
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


def _project_values(records: Records, territory: str, found: list[Target]) -> None:
    """Each project target's value, from the project's records; per 1,000 inhabitants of the
    territory (the population the cube would take for that year, and its source)."""
    cube, k = records.indicator_cube(territory), records.writer.min_people
    for project in sorted({t.project for t in found if t.project}):
        own = records.recount_project_indicators(territory, project).published()
        values = {cell: v for cell, v in own.items() if cell[2] is None and cell[3] is None}
        # As the cube's breakdown cells: a month under k, and one the year would give away by
        # difference. A project is itself part of its territory: its year is no total the cube
        # always publishes, and is withheld under k too.
        hidden = withheld(values, k)
        small = {c for c, v in values.items() if c[0] in counts_people() and 0 < v < k}
        hidden |= small | {("votes", *c[1:]) for c in small}  # type: ignore[misc]
        mine = [t for t in found if t.project == project]
        cells: list[Cell] = [(t.indicator, t.period, None, None) for t in mine]
        populations = records.area_populations(cube, cells)
        # A count the project has nothing in while the territory has some: none (as a process's).
        empty = [c for c in cells if c not in values and c[0] in COUNTS]
        counted = _territory_has(records, cube, empty)
        for target, cell in zip(mine, cells, strict=True):
            if cell in hidden:
                target.status = "confidential"
                continue
            value = values.get(cell, 0 if cell in counted else None)
            if value is None:
                continue  # no_data
            if not target.per:
                target.actual, target.status = value, "published"
                continue
            population = cube.population(populations, cube.area(None), int(target.period[:4]))
            if population is None or population.inhabitants <= 0:
                target.status = "missing"
                continue
            per = (Decimal(value) * 1000 / population.inhabitants).quantize(Decimal("0.001"))
            target.actual, target.status = per, "published"
            target.population, target.population_source = population.inhabitants, population.source


def _territory_has(records: Records, cube: Any, cells: list[Cell]) -> set[Cell]:
    """Those of these cells whose indicator the territory's cube has a value or a status for."""
    found: set[Cell] = set()
    for code in sorted({c[0] for c in cells}):
        wanted = [(cube, c) for c in cells if c[0] == code]
        observed = records.indicator_observations(wanted, indicators()[code].iri, per=False)
        found |= {cell for _, cell in observed}
    return found
