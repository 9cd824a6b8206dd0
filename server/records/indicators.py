"""Indicator values kept current by every write: an aggregate over a territory's records takes
seconds, far too long for a request, so each write adds to the cells it moves the difference
between its records' new and old contributions (records/contributions.py; what moves is worked
out in records/write_indicators.py), and comparisons read the published cube these cells make
(records/cube.py).

The cells, each with its value and how many contributions make it, live in the state database
(records/cell_rows.py), as do the people among each place's participants, so that distinct
participants stay exact when a contribution goes (records/participants.py): they are an index over
the records, and a row costs far less than a quad. They are written after the records' own write,
which carries a marker in the territory's internal indicator graph (``Urls.indicators_graph``)
that the cube's write after them removes (:class:`Pending`), all under the territory's lock;
``civicfed indicators verify`` compares them with a computation from scratch.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pyoxigraph import Literal, NamedNode

from vocabularies import CF, SDMXA, SDMXD, SKOS, XSD, indicators

from ..model.terms import format_decimal, typed
from ..store import Changeset, Stage, Store
from ..urls import Urls
from .cell_rows import CellRows, Row
from .contributions import AMOUNTS, AUXILIARY, MEDIANS, Cell, Place, Sums, published
from .cube import CONFIDENTIAL, MISSING, Cube, Population, counts_people, per_inhabitants
from .participants import Participants
from .tables import source_graphs

#: Subjects read per query.
CHUNK = 500
#: What the stored cells hold: 2 added the shares' counts, 3 moved the participants to the state
#: database, 4 left out a contribution count equal to the value, 5 moved the cells to the state
#: database too. Cells of another version (or none, on a territory with cells) are counted again
#: from the records by the next write.
CELLS_VERSION = 5

Cells = dict[Cell, tuple[int | Decimal, int]]


class IndicatorCells:
    """The stored cells of one instance's territories."""

    def __init__(self, store: Store, urls: Urls, participants: Participants, rows: CellRows) -> None:
        self.store, self.urls, self.participants, self.rows = store, urls, participants, rows
        #: How many years after its own a population is used for (records/cube.py).
        self.population_years = 3
        #: Territories this process is loading into a staged copy of the store (their
        #: participants are unsettled until the copy is kept: records/participants.py).
        self.staging: set[str] = set()

    def pending_marker(self, territory: str) -> str:
        """The statement a write's records carry when its indicator values follow in a write of
        their own (which removes it)."""
        graph = self.urls.indicators_graph(territory)
        return f"<{graph}> <{CF.indicatorsPending}> {typed('true', XSD.boolean)}"

    def pending(self, territory: str) -> bool:
        """Whether a write's records landed without its indicator values (its process died)."""
        graph = self.urls.indicators_graph(territory)
        return bool(self.store.describe([graph], graph))

    def stale(self, territory: str) -> bool:
        """Whether the territory's cells are to be counted again from its records before a write
        adds to them: a write's process died between its records and its values, or an older
        civicfed kept them (without cells this one keeps, such as the shares' counts)."""
        if territory not in self.staging and self.participants.unsettled(territory):
            return True  # a staged load thrown away, a repair that did not reach the store
        graph, node = self.urls.indicators_graph(territory), self._version_node(territory)
        found = self.store.describe([graph, node], graph)
        if graph in found:
            return True
        version, rows = _value(found.get(node), CF.cellsVersion), self.rows.version(territory)
        if version is not None or rows is not None:
            # Both say the same version, or one part of a backup was restored without the other
            # (the state database's cells would not be the store's records').
            return version is None or int(version) != CELLS_VERSION or rows != CELLS_VERSION
        # No version: a territory with no cells yet is current; one with cells in the store was
        # kept by an older civicfed.
        return bool(self.store.select(f"SELECT ?s WHERE {{ GRAPH <{graph}> {{ ?s <{CF.cellValue}> ?v }} }} LIMIT 1"))

    @contextlib.contextmanager
    def staged(self, territory: str, stage: AbstractContextManager[Stage]) -> Iterator[Stage]:
        """A load into a staged copy of the store (``stage``): the participants its batches set
        are settled only if the copy is kept; thrown away, or the process dying meanwhile, they
        stay unsettled, and the territory's next write counts them again from its records."""
        self.participants.unsettle(territory)
        self.staging.add(territory)
        kept = False
        try:
            with stage as staged:
                yield staged
            kept = staged.kept
        finally:
            self.staging.discard(territory)
            if kept:
                self.participants.settle(territory)

    def settled(self, territory: str) -> None:
        """The store holds the cells of a :meth:`replace` (within a staged load: once it is kept)."""
        if territory not in self.staging:
            self.participants.settle(territory)

    def _version_node(self, territory: str) -> str:
        return f"{self.urls.indicators_graph(territory)}#cells"

    def _version(self, territory: str) -> str:
        node = self._version_node(territory)
        return f"<{node}> <{CF.cellsVersion}> {typed(str(CELLS_VERSION), XSD.integer)}"

    def read(self, territory: str, cells: Iterable[Cell] | None = None) -> Cells:
        """The stored cells of the territory, all of them or those of ``cells`` that are stored:
        (value, contributions)."""
        return _cells(self.rows.read(territory, cells))

    def values(self, territory: str) -> dict[Cell, int | Decimal]:
        """The territory's indicator values (what a computation from scratch gives)."""
        return published(self.read(territory))

    def replace(self, territory: str, sums: Sums, k: int, *, names: Urls | None = None) -> Changeset:
        """A changeset replacing every stored cell of the territory, and its cube, by these sums
        (a repair; a territory replicated from a peer after a sync: ``names`` are then its
        origin's, and its cube is kept internal, as its origin publishes its own)."""
        cs, graph = Changeset(), self.urls.indicators_graph(territory)
        cs.clear_graph(graph)  # (the cells an older civicfed kept there with it)
        cs.add(graph, [self._version(territory)])
        cells = sums.cells()
        # Unsettled until the caller has written the changeset (:meth:`settled`): a failure of
        # the store's write leaves participants and cells that the territory's next write sets again.
        people = [(place, person) for place, persons in sums.people.items() for person, refs in persons.items() if refs]
        self.participants.replace(territory, people)
        self.rows.replace(territory, {cell: _row(cell, *v) for cell, v in cells.items()}, CELLS_VERSION)
        cs.merge(self._whole_cube(self.cube(territory, names), cells, k))
        return cs

    def rebuild_cube(self, territory: str, k: int) -> list[Changeset]:
        """The territory's whole cube from its stored cells (after its population changed), and
        the marker removed: the changesets to write, in order."""
        return self._unmarking(territory, self._whole_cube(self.cube(territory), self.read(territory), k))

    def cube_differences(self, cube: Cube, values: dict[Cell, int | Decimal], k: int) -> int:
        """How many statements differ between a cube as stored and as these values make it."""
        made = cube.whole(values, self.populations(cube, values), k)
        expected = {_line_key(line) for line in made}
        stored = {comparable((q.subject, q.predicate, q.object)) for q in self.store.quads(graph=cube.graph)}
        return len(expected ^ stored)

    def cube(self, territory: str, names: Urls | None = None) -> Cube:
        """The cube of a territory of this server's own, or (``names``: its origin's) replicated."""
        return Cube(self.urls, territory, names, public=names is None, population_years=self.population_years)

    def observed(
        self, wanted: list[tuple[Cube, Cell]], measure: str, *, per: bool
    ) -> dict[tuple[str, Cell], dict[str, Any]]:
        """What the cubes say of these cells, in one query: for each (territory, cell) found, its
        observation's ``value`` of ``measure`` (absent when withheld: it has a ``status``), and
        the ``population`` and its ``source`` of a value per inhabitants (``per``). A month's
        value per inhabitants is no observation: it is worked out from the month's count and
        its year's population, as the year's observation per inhabitants names it."""
        count = measure.removesuffix("Per1000")
        reads: dict[tuple[str, str], list[tuple[tuple[str, Cell], str]]] = {}
        for cube, cell in wanted:
            key = (cube.territory, cell)
            if per and len(cell[1]) == 7:
                year = (cell[0], cell[1][:4], cell[2], cell[3])
                reads.setdefault((cube.graph, cube.subjects(cell)[0]), []).append((key, "month"))
                reads.setdefault((cube.graph, cube.subjects(year)[1]), []).append((key, "year"))
            else:
                reads.setdefault((cube.graph, cube.subjects(cell)[per]), []).append((key, "cell"))
        names = {measure: "value", count: "value", SDMXA.obsStatus: "status", CF.population: "population"}
        names[CF.populationSource] = "source"
        predicates = ", ".join(f"<{p}>" for p in names)
        rows = [f"(<{graph}> <{subject}>)" for graph, subject in reads]
        by_subject = {subject: roles for (_, subject), roles in reads.items()}
        found: dict[tuple[tuple[str, Cell], str], dict[str, Any]] = {}
        for i in range(0, len(rows), CHUNK):
            # (A FILTER, not a VALUES ?p: Oxigraph joined the two VALUES first and scanned every
            # graph for the pairs, 120 ms at 100 territories instead of 2.)
            answer = self.store.select(
                f"SELECT ?obs ?p ?o WHERE {{ VALUES (?g ?obs) {{ {' '.join(rows[i : i + CHUNK])} }} "
                f"GRAPH ?g {{ ?obs ?p ?o }} FILTER(?p IN ({predicates})) }}"
            )
            for r in answer:
                for role in by_subject[r["obs"].value]:
                    found.setdefault(role, {})[names[r["p"].value]] = r["o"]
        out: dict[tuple[str, Cell], dict[str, Any]] = {}
        for (key, role), props in found.items():
            if role == "cell":
                out[key] = props
            elif role == "month":
                out[key] = _per_month(props, found.get((key, "year"), {}))
        return out

    def names(self, cubes: list[Cube]) -> dict[str, str]:
        """The territories' names (``skos:prefLabel`` of their records), in one query."""
        rows = " ".join(
            f'(<{self.urls.territory_graph(c.territory)}> <{c.urls.territory(c.territory)}> "{c.territory}")'
            for c in cubes
        )
        found = self.store.select(
            f"SELECT ?id ?name WHERE {{ VALUES (?g ?t ?id) {{ {rows} }} GRAPH ?g {{ ?t <{SKOS.prefLabel}> ?name }} }}"
        )
        return {r["id"].value: r["name"].value for r in found}

    def populations(self, cube: Cube, cells: Iterable[Cell]) -> dict[tuple[str, str], Population]:
        """The populations of the areas of these cells (the territory, its districts) by (area IRI,
        year): from the territory's imported tables (their observations of cf:inhabitants), else
        from the record of the place. Looked up by area: the store may hold many other areas'."""
        territory = cube.territory
        own = self.urls.territory_graph(territory)
        graphs = [own, *source_graphs(self.store, self.urls, territory).get(territory, ())]
        areas = {cube.area(None)} | {cube.area(cell[3]) for cell in cells if cell[3]}
        # The graphs named, not a variable filtered: Oxigraph then starts from every observation
        # of the area in every graph, the cube's thousands among them (8 ms an area at 2M quads).
        values = " ".join(f"(<{g}> <{a}>)" for g in graphs for a in sorted(areas))
        rows = self.store.select(
            f"SELECT ?g ?obs ?area ?year ?n WHERE {{ VALUES (?g ?area) {{ {values} }} "
            f"GRAPH ?g {{ ?obs <{SDMXD.refArea}> ?area ; <{CF.inhabitants}> ?n ; <{SDMXD.refPeriod}> ?year }} }}"
        )
        found: dict[tuple[str, str], tuple[bool, str, int]] = {}
        for r in rows:
            try:
                n = int(r["n"].value)
            except ValueError:
                continue
            key = (r["area"].value, r["year"].value[:4])
            rank = (r["g"].value == own, r["obs"].value, n)  # an imported table's first
            if key not in found or rank < found[key]:
                found[key] = rank
        return {key: Population(n, obs) for key, (_, obs, n) in found.items()}

    def prepare(
        self,
        territory: str,
        delta: Sums,
        k: int,
        remaining: Callable[[set[str]], dict[str, set[Place]]],
        *,
        publish: bool,
    ) -> Pending | None:
        """How a write's difference reaches the stored cells (and the cube's observations, when it
        is published): a marker with the records' write, the values after it (see :class:`Pending`)."""
        if not delta.counts and not delta.added and not delta.removed:
            return None
        return Pending(self, territory, delta, k, remaining, publish, self.marked(territory))

    def marked(self, territory: str) -> Changeset:
        """The marker alone (a write whose cube is rebuilt, with no value to move)."""
        cs = Changeset()
        cs.add(self.urls.indicators_graph(territory), [self.pending_marker(territory)])
        return cs

    def finish(self, pending: Pending, *, rebuild: bool = False) -> list[Changeset]:
        """The cells (and cube) after a write, its records in the store, and the marker removed:
        the changesets to write, in order. Its participants are added and taken away (in the
        state database) on the way. ``rebuild``: the whole cube made again from the cells after it
        (the write moves a population), with them."""
        territory, delta = pending.territory, pending.delta
        cs, graph = Changeset(), self.urls.indicators_graph(territory)
        # The cells as this civicfed keeps them. The write found them current (``stale``), or the
        # territory without cells: there is no other version to remove.
        cs.add(graph, [self._version(territory)])
        self.participants.add(territory, delta.added)
        # A person some contribution was taken from stays while another one brings them there.
        maybe_gone = delta.removed - delta.added
        if maybe_gone:
            still = pending.remaining({person for _, person in maybe_gone})
            self.participants.remove(
                territory, [(p, person) for p, person in maybe_gone if p not in still.get(person, ())]
            )
        places = {place for place, _ in delta.added | maybe_gone}
        present = self.participants.count(territory, places)
        cells = {cell for cell, n in delta.counts.items() if n or delta.values[cell]}
        cells |= {("participants", *place) for place in places}  # type: ignore[misc]
        # A rebuild reads every cell (the cube is made from all of them), else those it moves.
        every = self.read(territory) if rebuild else None
        stored = every if every is not None else self.read(territory, cells)
        before: Cells = {}
        new: Cells = {}
        for cell in cells:
            value, n = stored.get(cell, (_number(cell[0], None), 0))
            before[cell] = (value, n)
            if cell[0] == "participants":
                people = present.get(cell[1:], 0)  # type: ignore[call-overload]
                after = (people, people)
            else:
                after = (value + delta.values.get(cell, 0), n + delta.counts.get(cell, 0))
            if after != (value, n):
                new[cell] = after
        self.rows.write(territory, {cell: _row(cell, *v) for cell, v in new.items()}, CELLS_VERSION)
        if every is not None:
            cs.merge(self._whole_cube(self.cube(territory), {**every, **new}, pending.k))
        elif pending.publish and new:
            cs.merge(self._cube_changes(territory, before, new, pending.k))
        return self._unmarking(territory, cs)

    def _unmarking(self, territory: str, cs: Changeset) -> list[Changeset]:
        """A write's values, then its marker removed: in the same changeset when that removes
        statements anyway; else, where the store writes pure insertions for less (Oxigraph: a
        load instead of an update, ~1.5x faster on a first import's cube, a third of the size of
        its records), by a changeset of its own after it. The marker outliving the values a
        moment is harmless: a process dying in between leaves it, and the territory's next write
        counts its values again, as it would have without them."""
        graph = self.urls.indicators_graph(territory)
        unmark = Changeset()
        unmark.drop(graph, graph)
        if cs.has_deletions or cs.is_empty() or not self.store.cheaper_insertions:
            cs.merge(unmark)
            return [cs]
        return [cs, unmark]

    def _whole_cube(self, cube: Cube, cells: Cells, k: int) -> Changeset:
        """The changes that make the stored cube the whole cube of these cells: the subjects
        whose statements differ, dropped and written again; those already right left alone (a
        population changed moves only the values per inhabitants of its area; a first import
        finds only the data set). Emptying the graph and filling it again in one transaction
        would cost Oxigraph twice the filling."""
        values = published(cells)
        wanted: dict[str, list[str]] = {}
        for line in cube.whole(values, self.populations(cube, values), k):
            wanted.setdefault(line[1 : line.index("> ")], []).append(line)
        stored: dict[str, set[tuple[str, str, str]]] = {}
        for q in self.store.quads(graph=cube.graph):
            stored.setdefault(q.subject.value, set()).add(comparable((q.subject, q.predicate, q.object)))
        cs = Changeset()
        for subject in stored.keys() - wanted.keys():
            cs.drop(cube.graph, subject)
        for subject, statements in wanted.items():
            # Strings compared, not parsed terms: a first import's cube is tens of thousands of
            # statements, and parsing them cost more than writing them.
            if subject not in stored or stored[subject] != {_line_key(line) for line in statements}:
                if subject in stored:
                    cs.drop(cube.graph, subject)
                cs.add(cube.graph, statements)
        return cs

    def _cube_changes(self, territory: str, before: Cells, new: Cells, k: int) -> Changeset:
        """The observations of the cells a write moves, and of those whose publication depends
        on them: the zeros of the places they are at, and the people counts of their years (what
        is withheld depends on the other cells of a breakdown)."""
        places = {cell[1:] for cell in new}
        codes = (*indicators(), *AUXILIARY)  # a share is published from its two counts
        around = [(code, *place) for place in places for code in codes if (code, *place) not in before]
        before.update(self.read(territory, around))  # type: ignore[arg-type]
        people = self._people_cells(territory, {place[0][:4] for place in places})
        # A median is made of every cell of its distribution at its place, not only those moved.
        spread = {cell[1:] for cell in new if any(cell[0].startswith(p) for p in MEDIANS.values())}
        old = {**people, **self._spread_cells(territory, spread), **before}
        after = {**old, **new}
        cube = self.cube(territory)
        return cube.changes(published(old), published(after), self.populations(cube, after), k)

    def _spread_cells(self, territory: str, places: set[Place]) -> Cells:
        """The stored cells of the medians' distributions at these places."""
        if not places:
            return {}
        found = self._cells_starting(territory, list(MEDIANS.values()))
        return {cell: v for cell, v in found.items() if cell[1:] in places}

    def _people_cells(self, territory: str, years: set[str]) -> Cells:
        """The stored cells of the indicators counting people, in these years."""
        return self._cells_starting(territory, [f"{code}/{year}" for code in counts_people() for year in sorted(years)])

    def _cells_starting(self, territory: str, prefixes: list[str]) -> Cells:
        """The stored cells whose key (code/period/…) starts with one of these."""
        return _cells(self.rows.starting(territory, prefixes))


def comparable(triple: tuple[Any, Any, Any]) -> tuple[str, str, str]:
    """A statement as every store gives it back: N-Triples, numbers and booleans by value (stores
    write them their own way: Virtuoso says 1 and 0)."""
    s, p, o = triple
    return _key(str(s), str(p), str(o))


#: A number or a boolean in N-Triples, which stores may write back in another form.
_TYPED = re.compile(r'"([^"\\]*)"\^\^<(http://www\.w3\.org/2001/XMLSchema#(?:decimal|integer|boolean))>')


def _key(subject: str, predicate: str, obj: str) -> tuple[str, str, str]:
    """A statement in N-Triples, numbers and booleans by value."""
    typed_value = _TYPED.fullmatch(obj)
    if typed_value:
        lexical, datatype = typed_value.groups()
        value = str(lexical in ("true", "1")) if datatype == XSD.boolean else str(Decimal(lexical).normalize())
        obj = f"{value}^^{datatype}"
    return (subject, predicate, obj)


def _line_key(line: str) -> tuple[str, str, str]:
    """:func:`_key` of a statement written as ``<s> <p> o`` (the cube's are)."""
    s_end = line.index("> ") + 1
    p_end = line.index("> ", s_end + 1) + 1
    return _key(line[:s_end], line[s_end + 1 : p_end], line[p_end + 1 :])


def _per_month(month: dict[str, Any], year: dict[str, Any]) -> dict[str, Any]:
    """A month's value per 1,000 inhabitants from its count's observation (``month``) and its
    year's per inhabitants (``year``): withheld with the count, missing without a population."""
    if "value" not in month:
        return {"status": month.get("status", NamedNode(CONFIDENTIAL))}
    if "population" not in year:
        return {"status": NamedNode(MISSING)}
    per = per_inhabitants(Decimal(month["value"].value), int(year["population"].value))
    value = Literal(format_decimal(per), datatype=NamedNode(XSD.decimal))
    return {"value": value, "population": year["population"], "source": year["source"]}


def _value(triples: Any, predicate: str) -> str | None:
    for p, o in triples or ():
        if p == predicate:
            return o.value  # type: ignore[no-any-return]
    return None


def _cells(rows: dict[Cell, Row]) -> Cells:
    """Cells as the state database gives them back: their values as numbers."""
    return {cell: (_number(cell[0], value), n) for cell, (value, n) in rows.items()}


def _row(cell: Cell, value: int | Decimal, n: int) -> Row:
    """A cell as the state database keeps it: its value as written (an amount's as a decimal)."""
    return (format_decimal(value) if cell[0] in AMOUNTS else str(int(value)), n)


def _number(code: str, lexical: str | None) -> int | Decimal:
    if lexical is None:
        return Decimal(0) if code in AMOUNTS else 0
    return Decimal(lexical) if code in AMOUNTS else int(lexical)


@dataclass
class Pending:
    """The indicator values of a write under way. A ``marker`` is written with its records; its
    participants and values after them, removing the marker. A marker found later says the
    process died in between: the territory's values and participants are set again from its
    records (``Writer.repair_indicators``). A territory's writes hold its lock throughout."""

    cells: IndicatorCells
    territory: str
    delta: Sums
    k: int
    remaining: Callable[[set[str]], dict[str, set[Place]]]
    publish: bool
    marker: Changeset

    def finish(self, *, rebuild: bool = False) -> list[Changeset]:
        return self.cells.finish(self, rebuild=rebuild)
