"""The maintained indicator values checked against a computation from scratch, and set right
(``civicfed indicators verify [--repair]``): the proof that what every write keeps is what the
records give, and the way to fill the cells of a store written before they were kept."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..records import Records
from ..records.contributions import Cell
from ..records.participants import place_key
from .compute import sums


@dataclass(frozen=True)
class Difference:
    cell: Cell
    maintained: int | Decimal | None
    computed: int | Decimal | None


@dataclass
class Verdict:
    """What ``verify`` found: the values that differ, how many statements of the cube differ
    from one made from the computed values (a crash, or ``INDICATORS_MIN_PEOPLE`` or
    ``INDICATORS_POPULATION_YEARS`` changed since it was written), and how many of the people
    among the places' participants (state database) differ (one part of a backup restored alone:
    the next writes would count them wrong)."""

    differences: list[Difference]
    cube: int = 0
    pending: bool = False
    participants: int = 0

    def __bool__(self) -> bool:
        return bool(self.differences or self.cube or self.pending or self.participants)


def verify(records: Records, territory: str, *, repair: bool = False) -> Verdict:
    """Where the maintained values and cube differ from a computation from scratch; with
    ``repair`` they are then rewritten from it. Writes of the territory wait meanwhile (its write
    lock): none lands between the computation and the comparison."""
    with records.state.write_lock(territory):
        computed = sums(records, territory)
        found = records.indicator_values(territory)
        expected = computed.published()
        differences = [
            Difference(cell, found.get(cell), expected.get(cell))
            for cell in sorted({*found, *expected}, key=lambda c: tuple(part or "" for part in c))
            if found.get(cell) != expected.get(cell)
        ]
        verdict = Verdict(differences, records.indicator_cube_differences(territory, expected))
        verdict.pending = records.writer.cells.pending(territory)
        people = {(place_key(place), p) for place, persons in computed.people.items() for p, n in persons.items() if n}
        verdict.participants = len(people ^ records.writer.cells.participants.pairs(territory))
        if repair and verdict:
            records.replace_indicators(territory, computed)
    return verdict
