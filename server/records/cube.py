"""A territory's indicators published as an RDF Data Cube (structure: ``cf:indicatorStructure`` in
vocabularies/indicators.ttl), made from its maintained cells (records/indicators.py) in the same
changeset as the write that moves them.

An observation gives one measure for one area (the territory, or one of its districts), one
period and one process (or all of them). Two kinds of cells are not published as observations,
which must have a value, but as ``cf:WithheldObservation`` resources with the dimensions and an
``sdmxa:obsStatus`` saying why:

- **confidential**: a breakdown cell (a process, a district, a month) of an indicator that counts
  people with fewer than ``k`` of them; and, so that it cannot be derived by differencing a total
  with its published cells, the smallest other cell of a breakdown where only one is withheld,
  or the breakdown's total when no other cell can be. The territory's yearly total is always
  published, as small as it may be: it is no breakdown, and a breakdown cell that holds all of it
  (a single process) tells nothing more;
- **missing**: a value per 1,000 inhabitants where no population of the area for that year is
  known (it is never computed from a guess).

A value per 1,000 inhabitants names the population it used and the observation that gives it
(``cf:populationSource``): an imported population table's, or the territory's own ``population``;
of the period's year, or of the nearest year before it within ``population_years``
(``INDICATORS_POPULATION_YEARS``: a legal population is in force for the years after its
reference year, three for INSEE's), never a later one. Values per 1,000 inhabitants are
observations of years only: a month's is its count over its year's population, which the year's
observation names (withheld or not), and comparisons work it out so
(``IndicatorCells.observed``). Kept as observations, they were two fifths of a cube's
statements, for figures any reader of the cube derives exactly (docs/indicators.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from pyoxigraph import RdfFormat, parse

from vocabularies import CF, DCT, INDICATORS_FILE, QB, RDF, SDMXA, SDMXD, XSD, indicators

from ..model.terms import MONTH_IRI, YEAR_IRI, format_decimal, literal, period_iri, typed
from ..store import Changeset
from ..urls import Urls
from .contributions import DECIMALS, Cell

#: sdmxa:obsStatus codes (SDMX code list, as the SDMX-RDF vocabulary publishes it).
CONFIDENTIAL = "http://purl.org/linked-data/sdmx/2009/code#obsStatus-C"
MISSING = "http://purl.org/linked-data/sdmx/2009/code#obsStatus-M"
PER = "-per1000"


@dataclass(frozen=True)
class Population:
    """The inhabitants of an area in a year, and the observation that says so."""

    inhabitants: int
    source: str


#: Periods as the UK's reference intervals name them, as RDF Data Cube publishers do (a typed
#: date literal would not do: Virtuoso keeps one form per date value, and "2024"^^xsd:gYear could
#: come back as "2024-01"^^xsd:gYearMonth, making a year and its January one observation).
YEAR, MONTH = YEAR_IRI, MONTH_IRI


@functools.cache
def structure() -> tuple[str, ...]:
    """The indicators' definitions and the data structure, as N-Triples statements: a territory's
    indicator graph holds them, so that it is a complete cube on its own."""
    return tuple(str(t) for t in parse(path=str(INDICATORS_FILE), format=RdfFormat.TURTLE))


@functools.cache
def _measures() -> dict[str, tuple[str, str | None]]:
    """Per indicator code: its measure, its measure per 1,000 inhabitants (if any)."""
    return {code: (i.iri, f"{i.iri}Per1000" if i.per_inhabitants else None) for code, i in indicators().items()}


@functools.cache
def counts_people() -> frozenset[str]:
    """The indicators that count people: their breakdown cells are protected."""
    return frozenset(code for code, i in indicators().items() if i.counts_people)


class Cube:
    """The cube of one territory: its IRIs and statements. ``urls`` are this server's (where the
    cube is); ``names`` those of the territory's records (its origin's, for a territory
    replicated from a peer: its cube is then kept in an internal graph, for comparisons, and not
    published, as its origin publishes its own)."""

    def __init__(
        self, urls: Urls, territory: str, names: Urls | None = None, *, public: bool = True, population_years: int = 3
    ) -> None:
        self.territory, self.public, self.population_years = territory, public, population_years
        self.urls = names or urls
        self.graph = urls.indicators_cube_graph(territory, public=public)
        self.document = urls.indicators_document(territory)
        self.dataset = f"{self.document}#dataset"

    def dataset_statements(self) -> list[str]:
        ds = f"<{self.dataset}>"
        return [
            *structure(),
            f"{ds} <{RDF.type}> <{QB.DataSet}>",
            f"{ds} <{QB.structure}> <{CF.indicatorStructure}>",
            f"{ds} <{DCT.title}> {literal('Participation indicators', 'en')}",
            f"{ds} <{DCT.title}> {literal('Indicateurs de participation', 'fr')}",
            f"{ds} <{DCT.spatial}> <{self.urls.territory(self.territory)}>",
        ]

    def subjects(self, cell: Cell) -> list[str]:
        """The observation IRIs a cell may have published (its value, its value per inhabitants)."""
        code, *place = cell
        path = "/".join(part or "_" for part in place)  # type: ignore[misc]
        return [f"{self.document}#{code}/{path}", f"{self.document}#{code}{PER}/{path}"]

    def statements(
        self,
        values: dict[Cell, int | Decimal],
        withheld: set[Cell],
        populations: dict[tuple[str, str], Population],
    ) -> dict[Cell, list[str]]:
        """The observations of each cell (``populations`` by (area IRI, year))."""
        out: dict[Cell, list[str]] = {}
        for cell, value in values.items():
            code, period, process, district = cell
            measure, per_measure = _measures()[code]
            area = self.area(district)
            where = self.urls.resource(self.territory, "process", process) if process else CF.allProcesses
            dims = [
                f"<{SDMXD.refArea}> <{area}>",
                f"<{SDMXD.refPeriod}> <{period_iri(period)}>",
                f"<{CF.refProcess}> <{where}>",
            ]
            obs, per_obs = self.subjects(cell)
            hidden = cell in withheld
            lines = _observation(obs, self.dataset, dims, measure, None if hidden else _term(code, value))
            if per_measure is not None and len(period) == 4:  # a month's: :func:`per_inhabitants`
                population = self.population(populations, area, int(period))
                if population is not None and population.inhabitants <= 0:
                    population = None
                if hidden or population is None:
                    status = CONFIDENTIAL if hidden else MISSING
                    lines += _observation(per_obs, self.dataset, dims, per_measure, None, status)
                else:
                    term = typed(format_decimal(per_inhabitants(value, population.inhabitants)), XSD.decimal)
                    lines += _observation(per_obs, self.dataset, dims, per_measure, term)
                if population is not None:  # withheld too: it is public, and a month's value rests on it
                    lines += [
                        f"<{per_obs}> <{CF.population}> {typed(str(population.inhabitants), XSD.integer)}",
                        f"<{per_obs}> <{CF.populationSource}> <{population.source}>",
                    ]
            out[cell] = lines
        return out

    def population(self, populations: dict[tuple[str, str], Population], area: str, year: int) -> Population | None:
        """The area's population of the year, or of the nearest year before within
        ``population_years`` (a legal population comes into force after its reference year:
        INSEE's three years after), never one of a later year."""
        for y in range(year, year - self.population_years - 1, -1):
            found = populations.get((area, str(y)))
            if found is not None:
                return found
        return None

    def area(self, district: str | None) -> str:
        return (
            self.urls.resource(self.territory, "district", district)
            if district
            else self.urls.territory(self.territory)
        )

    def whole(
        self, values: dict[Cell, int | Decimal], populations: dict[tuple[str, str], Population], k: int
    ) -> list[str]:
        """Every statement of the cube these values make: the data set and its structure, the
        observations."""
        lines = self.dataset_statements()
        for observations in self.statements(values, withheld(values, k), populations).values():
            lines += observations
        return lines

    def changes(
        self,
        before: dict[Cell, int | Decimal],
        after: dict[Cell, int | Decimal],
        populations: dict[tuple[str, str], Population],
        k: int,
    ) -> Changeset:
        """What moves in the cube from the values ``before`` to those ``after``: the observations
        of the cells whose statements change. Both hold the people counts of every year they
        touch (what is withheld depends on the other cells of a breakdown)."""
        cs = Changeset()
        old = self.statements(before, withheld(before, k), populations)
        new = self.statements(after, withheld(after, k), populations)
        for cell in old.keys() | new.keys():
            if old.get(cell) != new.get(cell):
                for subject in self.subjects(cell):
                    cs.drop(self.graph, subject)
                cs.add(self.graph, new.get(cell, []))
        return cs


def per_inhabitants(value: int | Decimal, inhabitants: int) -> Decimal:
    """A value per 1,000 inhabitants, to three decimals."""
    return (Decimal(value) * 1000 / inhabitants).quantize(Decimal("0.001"))


def _observation(
    obs: str, dataset: str, dims: list[str], measure: str, value: str | None, status: str = CONFIDENTIAL
) -> list[str]:
    # No unit: it is the measure's (``sdmxa:unitMeasure`` attached to the measure property), one
    # statement an observation fewer, an eighth of the cube.
    head = [*(f"<{obs}> {d}" for d in dims), f"<{obs}> <{QB.measureType}> <{measure}>"]
    if value is None:
        return [
            *head,
            f"<{obs}> <{RDF.type}> <{CF.WithheldObservation}>",
            f"<{obs}> <{CF.withheldFrom}> <{dataset}>",
            f"<{obs}> <{SDMXA.obsStatus}> <{status}>",
        ]
    return [
        *head,
        f"<{obs}> <{RDF.type}> <{QB.Observation}>",
        f"<{obs}> <{QB.dataSet}> <{dataset}>",
        f"<{obs}> <{measure}> {value}",
    ]


def _term(code: str, value: int | Decimal) -> str:
    if isinstance(value, Decimal) and code in DECIMALS:
        return typed(format_decimal(value), XSD.decimal)
    return typed(str(int(value)), XSD.integer)


def withheld(values: dict[Cell, int | Decimal], k: int) -> set[Cell]:
    """The cells not to publish so that no breakdown cell counts fewer than ``k`` people, directly
    or by differencing (``values`` hold every cell of the years involved)."""
    people = {cell: int(v) for cell, v in values.items() if cell[0] in counts_people()}
    hidden = {cell for cell, v in people.items() if 0 < v < k and not _is_total(cell)}
    # In one order whatever order the cells came in: which cell a breakdown gives up depends on
    # the order breakdowns are looked at, and a cube kept write by write must be the one made
    # from scratch.
    groups = sorted(_breakdowns(people).items(), key=lambda g: (_sortable(g[0][0]), g[0][1]))
    changed = True
    while changed:  # a cell withheld for one breakdown may leave another with a single one
        changed = False
        for (total, _), members in groups:
            out = [m for m in members if m in hidden]
            if len(out) != 1:
                continue
            others = sorted((people[m], _sortable(m), m) for m in members if m not in hidden and people[m] > 0)
            if others:
                hidden.add(others[0][2])
            elif total in people and not _is_total(total) and total not in hidden:  # it would give it away
                hidden.add(total)
            else:
                continue
            changed = True
    # Individual votes are private: where the people are withheld, so are their votes (a cell of
    # 1 vote and no proposal or comment would say its one participant).
    return hidden | {("votes", *cell[1:]) for cell in hidden if ("votes", *cell[1:]) in values}  # type: ignore[misc]


def _sortable(cell: Cell) -> tuple[str, ...]:
    return tuple(part or "" for part in cell)


def _is_total(cell: Cell) -> bool:
    """The territory's yearly value: the total every breakdown adds up to, always published."""
    _, period, process, district = cell
    return len(period) == 4 and process is None and district is None


def _breakdowns(cells: Iterable[Cell]) -> dict[tuple[Cell, str], list[Cell]]:
    """Each total with the cells that break it down: by process, by district, by month."""
    out: dict[tuple[Cell, str], list[Cell]] = {}
    for cell in cells:
        code, period, process, district = cell
        if process is not None:
            out.setdefault(((code, period, None, None), "process"), []).append(cell)
        if district is not None:
            out.setdefault(((code, period, None, None), "district"), []).append(cell)
        if len(period) == 7:
            out.setdefault(((code, period[:4], process, district), "month"), []).append(cell)
    return out
