"""An indicator crossed with a measure of the territories' tables (``GET /api/v1/join``): on the
territory (a pair per territory) or on the district (a pair per district of one territory), with
Pearson's and Spearman's correlations, the number of pairs and confidence intervals.

The indicator side is read from the published cubes (server/records/cube.py), withheld cells
included: a district join at a coarser level than the districts records lie in (arrondissements
over quartiers) adds up the published cells of its parts, and is withheld when one of them is.
Only what adds up is aggregated so: distinct participants in two quartiers are not the sum of
each's, and a share or a median is no sum.

The measure side is read from RDF Data Cube observations about the same areas (records/tables.py):
an imported table's (``importers/table.py``, ``population.py``) before a record's own population.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import re
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pyoxigraph import NamedNode

from vocabularies import CF, SDMXM, SDO, Indicator, indicators

from ..errors import BadRequest, NotFound
from ..records import Records
from ..records.contributions import AMOUNTS, COUNTS
from ..records.cube import Cube
from ..records.tables import District, Observed
from .compare import (
    PER_THOUSAND,
    PERIOD_RE,
    UNITS,
    _cell,
    _json_number,
    _number,
    indicator_json,
    indicator_label,
    reading,
    unit_label,
)

ON = ("territory", "district")
#: Indicators a district's value of is the sum of its parts' (no distinct people, no share).
ADDITIVE = frozenset((*COUNTS, *AMOUNTS, "attendance")) - {"participants"}
#: Indicators no district breaks down (a budget has no district).
NOT_BY_DISTRICT = frozenset(("budget_allocated",))
#: Measures named by a prefix.
PREFIXES = {"cf": str(CF), "sdmx-measure": str(SDMXM), "schema": str(SDO)}
CONFIDENCE = 0.95
COLUMNS = (
    "territory",
    "area",
    "name",
    "indicator",
    "period",
    "per",
    "value",
    "status",
    "population",
    "population_source",
    "measure",
    "measure_value",
    "measure_period",
    "dataset",
)
_IRI = re.compile(r"https?://[^\s<>\"{}|\\^`]+")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")


@dataclass
class Unit:
    """One side of a pair: a territory, or a district with the districts it is made of."""

    territory: str
    area: str  # the district id, or the territory id
    name: str
    iri: str
    parts: list[str | None]  # district ids (None: the territory itself)


@dataclass
class JoinRow:
    unit: Unit
    value: int | Decimal | None = None
    status: str = "no_data"
    population: int | None = None
    population_source: str | None = None
    measure: Decimal | None = None
    measure_period: str | None = None
    dataset: str | None = None

    @property
    def paired(self) -> bool:
        return self.value is not None and self.measure is not None


@dataclass
class Correlation:
    method: str
    coefficient: float | None
    p_value: float | None
    interval: tuple[float, float] | None
    #: Why there is no coefficient (too few pairs, a side constant).
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "coefficient": _round(self.coefficient),
            "p_value": _round(self.p_value),
            "confidence_interval": [_round(x) for x in self.interval] if self.interval else None,
            "confidence_level": CONFIDENCE,
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Join:
    indicator: Indicator
    period: str
    per: str | None
    on: str
    level: str | None
    measure: str
    measure_period: str | None
    base: str
    rows: list[JoinRow] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    measure_unit: str | None = None

    @property
    def pairs(self) -> list[JoinRow]:
        return [r for r in self.rows if r.paired]

    def label(self, lang: str = "en") -> str:
        return indicator_label(self.indicator, self.per, lang)

    def unit(self, lang: str = "en") -> str:
        return unit_label(self.indicator, lang)

    def measure_label(self) -> str:
        """The measure's name as its IRI ends (a table's ``#measure-stations``: ``stations``)."""
        tail = re.split(r"[#/]", self.measure)[-1]
        return tail.removeprefix("measure-") or self.measure

    def measure_unit_label(self) -> str | None:
        if self.measure_unit is None:
            return None
        return UNITS.get(self.measure_unit, (re.split(r"[#/]", self.measure_unit)[-1],))[0]

    def source(self) -> str:
        return (
            f"Source: civicfed {self.base}, participation indicators (RDF Data Cube /indicators/{{territory}}) "
            f"and {self.measure_label()} from the territories' tables ({self.measure})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "indicator": indicator_json(self.indicator),
            "period": self.period,
            "per": self.per,
            "on": self.on,
            "level": self.level,
            "label": self.label(),
            "measure": {
                "iri": self.measure,
                "label": self.measure_label(),
                "unit": self.measure_unit,
                "period": self.measure_period,
            },
            "source": self.source(),
            "n": len(self.pairs),
            "correlation": {c.method: c.to_json() for c in self.correlations},
            "rows": [
                {
                    "territory": r.unit.territory,
                    "area": r.unit.area,
                    "name": r.unit.name,
                    "iri": r.unit.iri,
                    "value": _json_number(r.value),
                    "status": r.status,
                    "population": r.population,
                    "population_source": r.population_source,
                    "measure": _json_number(_number(str(r.measure))) if r.measure is not None else None,
                    "measure_period": r.measure_period,
                    "dataset": r.dataset,
                    **({"parts": [p for p in r.unit.parts if p]} if len(r.unit.parts) > 1 else {}),
                }
                for r in self.rows
            ],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for r in self.rows:
            u = r.unit
            writer.writerow(
                [
                    u.territory,
                    u.area,
                    _cell(u.name),
                    self.indicator.code,
                    self.period,
                    self.per or "",
                    "" if r.value is None else str(r.value),
                    r.status,
                    r.population or "",
                    r.population_source or "",
                    self.measure,
                    "" if r.measure is None else str(r.measure),
                    r.measure_period or "",
                    r.dataset or "",
                ]
            )
        return out.getvalue()


def join(
    records: Records,
    code: str,
    period: str,
    measure: str,
    *,
    on: str = "territory",
    territories: list[str],
    dataset: str | None = None,
    measure_period: str | None = None,
    per: str | None = None,
    level: str | None = None,
) -> Join:
    """The indicator ``code`` in ``period`` beside ``measure`` for each territory or district."""
    found = _check(code, period, per, on, measure_period, territories, level)
    for t in territories:
        records.require_readable(t)
    result = Join(found, period, per, on, level, "", measure_period, records.urls.base)
    cubes = {t: records.indicator_cube(t) for t in territories}
    if on == "territory":
        names = records.territory_names(list(cubes.values()))
        units = [Unit(t, t, names.get(t, t), c.urls.territory(t), [None]) for t, c in cubes.items()]
    else:
        units, result.level = _district_units(records, territories[0], found, level)
    measures = {t: _measure_iri(records, t, measure, dataset) for t in territories}
    result.measure = measures[territories[0]]
    result.rows = [JoinRow(u) for u in units]
    _indicator_values(records, result, cubes)
    years = cubes[territories[0]].population_years
    _measure_values(records, result, measures, {t: _dataset_iri(records, t, dataset) for t in territories}, years)
    result.correlations = correlations(
        [float(r.measure) for r in result.pairs],  # type: ignore[arg-type]
        [float(r.value) for r in result.pairs],  # type: ignore[arg-type]
    )
    return result


def _check(
    code: str,
    period: str,
    per: str | None,
    on: str,
    measure_period: str | None,
    territories: list[str],
    level: str | None,
) -> Indicator:
    def bad(pointer: str, message: str, detail: str) -> BadRequest:
        return BadRequest(message, errors=[{"pointer": pointer, "detail": detail}])

    found = indicators().get(code)
    if found is None:
        raise bad("indicator", f"unknown indicator {code!r}", f"One of {', '.join(indicators())}.")
    if not PERIOD_RE.fullmatch(period):
        raise bad("period", f"period is a year or a month, not {period!r}", "A year (2024) or a month (2024-03).")
    if measure_period is not None and not re.fullmatch(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", measure_period):
        raise bad("measure_period", f"not a period: {measure_period!r}", "A year, a month or a day.")
    if on not in ON:
        raise bad("on", f"on is territory or district, not {on!r}", "territory or district.")
    if per is not None and per != PER_THOUSAND:
        raise bad("per", f"per is {PER_THOUSAND!r} or absent, not {per!r}", f"Only {PER_THOUSAND!r}.")
    if per and not found.per_inhabitants:
        raise bad("per", f"{code} has no value per 1,000 inhabitants", f"Not for {code}.")
    if not territories:
        raise bad("territories", "no territory to join", "Empty.")
    if on == "district" and len(territories) != 1:
        raise bad(
            "territories",
            "a join on districts is within one territory (district codes are the territory's)",
            "Exactly one territory.",
        )
    if on == "district" and code in NOT_BY_DISTRICT:
        raise bad("indicator", f"{code} is not broken down by district (a budget has no district)", "Not by district.")
    if on == "territory" and level is not None:
        raise bad("level", "level is for a join on districts", "Only with on=district.")
    return found


def _is_iri(text: str, pointer: str) -> bool:
    """Whether ``text`` is given as an absolute IRI; a 400 naming ``pointer`` when it looks like
    one but is not (a stray ``%``, a control character, a bad host: the store would refuse it)."""
    if not _IRI.fullmatch(text):
        return False
    try:
        NamedNode(text)
    except ValueError as exc:
        raise BadRequest(
            f"{pointer} {text!r} is not a valid IRI: {exc}",
            errors=[{"pointer": pointer, "detail": "An absolute IRI (RFC 3987)."}],
        ) from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BadRequest(
            f"{pointer} {text!r} holds a control character",
            errors=[{"pointer": pointer, "detail": "An absolute IRI (RFC 3987)."}],
        )
    return True


def _measure_iri(records: Records, territory: str, measure: str, dataset: str | None) -> str:
    """The measure's IRI: given, a prefixed name (``cf:inhabitants``), or a table's column name
    (``stations``, with ``dataset``)."""
    if _is_iri(measure, "measure"):
        return measure
    prefix, sep, local = measure.partition(":")
    if sep:
        if prefix not in PREFIXES or not _NAME.fullmatch(local):
            raise BadRequest(
                f"measure {measure!r}: unknown prefix {prefix!r}",
                errors=[{"pointer": "measure", "detail": f"An IRI, or one of the prefixes {', '.join(PREFIXES)}."}],
            )
        return PREFIXES[prefix] + local
    if not dataset or not _NAME.fullmatch(measure):
        raise BadRequest(
            f"measure {measure!r} is neither an IRI nor a prefixed name; a table's column name needs dataset",
            errors=[{"pointer": "measure", "detail": "An IRI, cf:inhabitants, or a column name with dataset=."}],
        )
    if _is_iri(dataset, "dataset"):
        return dataset.split("#")[0] + f"#measure-{measure}"
    return f"{records.urls.source(territory, dataset)}#measure-{measure}"


def _dataset_iri(records: Records, territory: str, dataset: str | None) -> str | None:
    """The qb:DataSet: given as an IRI, or an import source's id in the territory."""
    if dataset is None or _is_iri(dataset, "dataset"):
        return dataset
    if not _NAME.fullmatch(dataset):
        raise BadRequest(
            f"dataset {dataset!r} is neither an IRI nor a source id",
            errors=[{"pointer": "dataset", "detail": "An import source's id (civicfed import runs) or an IRI."}],
        )
    return f"{records.urls.source(territory, dataset)}#dataset"


def _district_units(
    records: Records, territory: str, indicator: Indicator, level: str | None
) -> tuple[list[Unit], str]:
    """A unit per district of the level (the only one there is when not given), each with the
    districts it is made of: itself and every district within it."""
    districts = records.districts(territory)
    if not districts:
        raise NotFound(f"territory {territory!r} has no districts (import its boundaries: civicfed import boundaries)")
    levels = sorted({d.level or "" for d in districts})
    if level is None:
        if len(levels) > 1:
            raise BadRequest(
                f"{territory}'s districts are of several levels ({', '.join(levels)}): say which with level=",
                errors=[{"pointer": "level", "detail": f"One of {', '.join(levels)}."}],
            )
        level = levels[0]
    elif level not in levels:
        raise BadRequest(
            f"{territory} has no district of level {level!r}",
            errors=[{"pointer": "level", "detail": f"One of {', '.join(levels)}."}],
        )
    children: dict[str, list[str]] = {}
    for d in districts:
        if d.parent:
            children.setdefault(d.parent, []).append(d.id)
    units = []
    for d in (d for d in districts if (d.level or "") == level):
        parts = _within(d, children)
        if len(parts) > 1 and indicator.code not in ADDITIVE:
            raise BadRequest(
                f"{indicator.code} of a {level} is not the sum of its parts' (counted in the districts within "
                f"it): join it on their level",
                errors=[{"pointer": "level", "detail": f"{indicator.code} does not add up across districts."}],
            )
        units.append(Unit(territory, d.id, d.name, d.iri, list(parts)))
    return units, level


def _within(district: District, children: dict[str, list[str]]) -> list[str]:
    out, todo = [], [district.id]
    while todo:
        d = todo.pop()
        if d in out:  # a cycle of parents: each once
            continue
        out.append(d)
        todo.extend(children.get(d, ()))
    return out


def _indicator_values(records: Records, result: Join, cubes: dict[str, Cube]) -> None:
    """Each row's value: its cube's observation, or the sum of its parts' (withheld if one is)."""
    code, period, per = result.indicator.code, result.period, bool(result.per)
    measure = result.indicator.iri
    totals = [(c, (code, period, None, None)) for c in cubes.values()]
    single = [r for r in result.rows if len(r.unit.parts) == 1]
    summed = [r for r in result.rows if len(r.unit.parts) > 1]
    cells = [(cubes[r.unit.territory], (code, period, None, r.unit.parts[0])) for r in single]
    parts = [(cubes[r.unit.territory], (code, period, None, p)) for r in summed for p in r.unit.parts]
    # Each cell once: a territory's own row is its total (read twice, twice the lookups).
    raw = records.indicator_observations(list(dict.fromkeys(totals + parts + ([] if per else cells))), measure)
    observed = records.indicator_observations(cells, measure + "Per1000", per=True) if per else raw
    # A count, or an amount, with no observation in a district of a territory that has the
    # period's total is 0 there: the cube publishes no cell where no record counts.
    zero = code in ADDITIVE
    rates: list[JoinRow] = []  # values to put per 1,000 inhabitants here
    for row in single:
        t, part = row.unit.territory, row.unit.parts[0]
        props = observed.get((t, (code, period, None, part)))
        if props is not None:
            row.value, row.status, row.population, row.population_source = reading(props)
        elif zero and part is not None and (t, (code, period, None, None)) in raw:
            row.value, row.status = 0, "published"
            rates += [row] if per else []
    for row in summed:
        t = row.unit.territory
        found = [raw.get((t, (code, period, None, p))) for p in row.unit.parts]
        if any(props is not None and "value" not in props for props in found):
            row.status = "confidential"
            continue
        if (t, (code, period, None, None)) not in raw:
            continue  # no_data: nothing counted in the territory that period
        total = sum((_number(props["value"].value) for props in found if props is not None), 0)
        row.value, row.status = total, "published"
        rates += [row] if per else []
    for t in {r.unit.territory for r in rates}:
        _per_inhabitants(records, [r for r in rates if r.unit.territory == t], cubes[t], period)


def _per_inhabitants(records: Records, rows: list[JoinRow], cube: Cube, period: str) -> None:
    """Values summed here per 1,000 inhabitants of their areas, by the rule the cube's follow."""
    populations = records.area_populations(cube, [("participants", period, None, r.unit.area) for r in rows])
    for row in rows:
        population = cube.population(populations, row.unit.iri, int(period[:4]))
        if population is None or population.inhabitants <= 0:
            row.value, row.status = None, "missing"
            continue
        row.value = (Decimal(row.value or 0) * 1000 / population.inhabitants).quantize(Decimal("0.001"))
        row.population, row.population_source = population.inhabitants, population.source


def _measure_values(
    records: Records, result: Join, measures: dict[str, str], datasets: dict[str, str | None], years: int
) -> None:
    """Each row's measure: of the period asked; else each area's latest figure not after the
    indicator's period and at most ``years`` older, as the cube takes its populations (censuses
    are of different years from one territory to another)."""
    wanted = [(r.unit.territory, r.unit.iri, measures[t], datasets[t]) for r in result.rows for t in [r.unit.territory]]
    found = records.area_observations(wanted)
    asked, period = result.measure_period, result.period
    candidates: dict[str, list[Observed]] = {}
    for o in found:
        if asked is not None:
            if o.period != asked:
                continue
        # A year's figure is "not after" a month of it; a later month or year is.
        elif o.period[: len(period)] > period or int(o.period[:4]) < int(period[:4]) - years:
            continue
        candidates.setdefault(o.area, []).append(o)
    best: dict[str, Observed] = {}
    for area, found_there in candidates.items():
        # The latest; then an imported table's before a record's; then the first data set by IRI.
        found_there.sort(key=lambda o: o.dataset or "")
        found_there.sort(key=lambda o: (o.period, o.imported), reverse=True)
        best[area] = found_there[0]
    for row in result.rows:
        o = best.get(row.unit.iri)
        if o is not None:
            row.measure, row.measure_period, row.dataset = o.value, o.period, o.dataset
            result.measure_unit = result.measure_unit or o.unit
    chosen = {r.measure_period for r in result.rows if r.measure_period}
    if asked is None:
        result.measure_period = chosen.pop() if len(chosen) == 1 else None


def correlations(x: list[float], y: list[float]) -> list[Correlation]:
    """Pearson's and Spearman's coefficients of the pairs, their two-sided p-values and 95%
    confidence intervals (Fisher's z; for Spearman's, with Fieller, Hartley and Pearson's variance
    1.06/(n-3)). None, with a note, below 3 pairs (4 for an interval) or when a side is constant.

    Pearson's p-value is Student's t (exact for normal data); Spearman's is exact (every
    permutation of the ranks) up to ``EXACT_UP_TO`` pairs, where the t approximation is poor,
    and Student's t above.
    """
    from scipy import stats  # loaded when a join is asked for

    n = len(x)
    out = []
    for method in ("pearson", "spearman"):
        if n < 3:
            out.append(Correlation(method, None, None, None, f"{n} pairs: a correlation needs 3 or more"))
            continue
        if len(set(x)) == 1 or len(set(y)) == 1:
            out.append(Correlation(method, None, None, None, "one side is constant: no correlation"))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
        r, p = float(res.statistic), float(res.pvalue)
        if method == "spearman" and n <= EXACT_UP_TO:
            p = _exact_spearman_p(x, y, r)
        interval, note = None, None
        if n <= 3:
            note = "3 pairs: no confidence interval (it needs 4 or more)"
        elif abs(r) >= 1:
            note = "a perfect correlation: no confidence interval (Fisher's z is infinite)"
        else:
            se = math.sqrt((1.0 if method == "pearson" else 1.06) / (n - 3))
            z, q = math.atanh(r), float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
            interval = (math.tanh(z - q * se), math.tanh(z + q * se))
        out.append(Correlation(method, r, p, interval, note))
    return out


#: Pairs up to which Spearman's p-value is counted over every permutation (8! = 40,320).
EXACT_UP_TO = 8


@functools.cache
def _permutations(n: int) -> Any:
    """Every order of n indices, as an array (kept: 2.6 MB for 8)."""
    import numpy as np

    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


def _exact_spearman_p(x: list[float], y: list[float], rho: float) -> float:
    """The share of the permutations of x's ranks whose coefficient is at least as far from 0."""
    import numpy as np
    from scipy import stats

    rx, ry = stats.rankdata(x), stats.rankdata(y)
    ry = ry - ry.mean()
    perms = rx[_permutations(len(x))]
    perms -= perms.mean(axis=1, keepdims=True)
    coefficients = perms @ ry / (np.linalg.norm(perms, axis=1) * np.linalg.norm(ry))
    return float(np.mean(np.abs(coefficients) >= abs(rho) - 1e-12))


def _round(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 6)
