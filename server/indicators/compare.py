"""Territories compared on one indicator for one period (``GET /api/v1/compare``): read from their
cubes (server/records/cube.py), so that what is compared is what is published, withheld cells
included, and fast whatever the size of the territories (one query for all of them).

A territory replicated from a peer is compared from its cube kept internally, made from what its
origin publishes.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vocabularies import Indicator, indicators

from ..errors import BadRequest
from ..records import Records
from ..records.cube import CONFIDENTIAL, MISSING

PER_THOUSAND = "1000inhabitants"
COLUMNS = (
    "territory",
    "name",
    "indicator",
    "period",
    "per",
    "value",
    "unit",
    "status",
    "population",
    "population_source",
)
PERIOD_RE = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2]))?")
#: Units by their QUDT IRI, as a person reads them.
UNITS = {
    "http://qudt.org/vocab/unit/NUM": ("number", "nombre"),
    "http://qudt.org/vocab/currency/EUR": ("EUR", "EUR"),
    "http://qudt.org/vocab/unit/PERCENT": ("%", "%"),
    "http://qudt.org/vocab/unit/DAY": ("days", "jours"),
}


def indicator_label(indicator: Indicator, per: str | None, lang: str = "en") -> str:
    """The indicator's name in ``lang``, per 1,000 inhabitants with ``per``."""
    label = indicator.label.get(lang) or indicator.label["en"]
    if per:
        label += " per 1,000 inhabitants" if lang == "en" else " pour 1 000 habitants"
    return label


def indicator_json(indicator: Indicator) -> dict[str, Any]:
    return {
        "code": indicator.code,
        "iri": indicator.iri,
        "label": indicator.label,
        "definition": indicator.definition,
        "unit": indicator.unit,
    }


def unit_label(indicator: Indicator, lang: str = "en") -> str:
    return UNITS.get(indicator.unit, (indicator.unit, indicator.unit))[lang == "fr"]


@dataclass
class Row:
    territory: str
    name: str
    iri: str
    value: int | Decimal | None
    #: published, confidential (a small count withheld), missing (no population), no_data.
    status: str
    population: int | None = None
    population_source: str | None = None
    origin: str | None = None


@dataclass
class Comparison:
    indicator: Indicator
    period: str
    per: str | None
    base: str
    rows: list[Row] = field(default_factory=list)

    @property
    def measure(self) -> str:
        return self.indicator.iri + ("Per1000" if self.per else "")

    def label(self, lang: str = "en") -> str:
        return indicator_label(self.indicator, self.per, lang)

    def unit(self, lang: str = "en") -> str:
        return unit_label(self.indicator, lang)

    def source(self) -> str:
        """The line a chart or a table cites its data with."""
        line = f"Source: civicfed {self.base}, participation indicators (RDF Data Cube /indicators/{{territory}})"
        if self.per:
            line += "; populations: the territories' official figures (see each value's population_source)"
        return line

    def to_json(self) -> dict[str, Any]:
        return {
            "indicator": indicator_json(self.indicator),
            "measure": self.measure,
            "period": self.period,
            "per": self.per,
            "label": self.label(),
            "source": self.source(),
            "rows": [
                {
                    "territory": r.territory,
                    "name": r.name,
                    "iri": r.iri,
                    "value": _json_number(r.value),
                    "status": r.status,
                    "population": r.population,
                    "population_source": r.population_source,
                    **({"origin": r.origin} if r.origin else {}),
                }
                for r in self.rows
            ],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
        writer.writerow(COLUMNS)
        for r in self.rows:
            value = "" if r.value is None else str(r.value)
            code, unit = self.indicator.code, self.unit()
            row = [r.territory, _cell(r.name), code, self.period, self.per or "", value, unit, r.status]
            writer.writerow([*row, r.population or "", r.population_source or ""])
        return out.getvalue()


def compare(records: Records, code: str, territories: list[str], period: str, per: str | None) -> Comparison:
    """The indicator ``code`` of each territory (its own or replicated) in ``period``, per 1,000
    inhabitants with ``per``."""
    found = indicators().get(code)
    if found is None:
        raise BadRequest(
            f"unknown indicator {code!r}; known: {', '.join(indicators())}",
            errors=[{"pointer": "indicator", "detail": f"One of {', '.join(indicators())}."}],
        )
    if not PERIOD_RE.fullmatch(period):
        raise BadRequest(
            f"period is a year or a month (2024, 2024-03), not {period!r}",
            errors=[{"pointer": "period", "detail": "A year (2024) or a month (2024-03)."}],
        )
    if per is not None and per != PER_THOUSAND:
        raise BadRequest(
            f"per is {PER_THOUSAND!r} or absent, not {per!r}",
            errors=[{"pointer": "per", "detail": f"Only {PER_THOUSAND!r}."}],
        )
    if per and not found.per_inhabitants:
        raise BadRequest(
            f"{code} has no value per 1,000 inhabitants (it is a share, a duration or a median)",
            errors=[{"pointer": "per", "detail": f"Not for {code}."}],
        )
    if not territories:
        raise BadRequest("no territory to compare", errors=[{"pointer": "territories", "detail": "Empty."}])
    for t in territories:
        records.require_readable(t)
    comparison = Comparison(found, period, per, records.urls.base)
    cubes = [records.indicator_cube(t) for t in territories]
    cell = (code, period, None, None)
    observed = records.indicator_observations([(cube, cell) for cube in cubes], comparison.measure, per=bool(per))
    names = records.territory_names(cubes)
    for cube in cubes:
        t = cube.territory
        row = Row(t, names.get(t, t), cube.urls.territory(t), None, "no_data", origin=records.origin(t))
        props = observed.get((t, cell))
        if props is not None:
            row.value, row.status, row.population, row.population_source = reading(props)
        comparison.rows.append(row)
    return comparison


def reading(props: dict[str, Any]) -> tuple[int | Decimal | None, str, int | None, str | None]:
    """What an observation of a cube says (``Records.indicator_observations``): its value, its
    status (published, confidential, missing), the population and its source per inhabitants."""
    value, status = None, "published"
    if "value" in props:
        value = _number(props["value"].value)
    else:
        why = props["status"].value if "status" in props else MISSING
        status = "confidential" if why == CONFIDENTIAL else "missing"
    population = int(props["population"].value) if "population" in props else None
    return value, status, population, props["source"].value if "source" in props else None


def _cell(text: str) -> str:
    """Text a spreadsheet would not take for a formula (OWASP's CSV injection advice)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(lexical: str) -> int | Decimal:
    value = Decimal(lexical)
    return int(value) if value == value.to_integral_value() and "." not in lexical else value


def _json_number(value: int | Decimal | None) -> int | float | None:
    if value is None or isinstance(value, int):
        return value
    return float(value)
