"""The maintained indicator values checked against a computation from scratch, and set right
(``civicfed indicators verify [--repair]``): the proof that what every write keeps is what the
records give, and the way to fill the cells of a store written before they were kept."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..records import Records
from ..records.contributions import Cell
from .compute import sums


@dataclass(frozen=True)
class Difference:
    cell: Cell
    maintained: int | Decimal | None
    computed: int | Decimal | None


@dataclass
class Verdict:
    """What ``verify`` found: the values that differ, and how many statements of the cube differ
    from one made from the computed values (a crash, or ``INDICATORS_MIN_PEOPLE`` or
    ``INDICATORS_POPULATION_YEARS`` changed since it was written)."""

    differences: list[Difference]
    cube: int = 0
    pending: bool = False

    def __bool__(self) -> bool:
        return bool(self.differences or self.cube or self.pending)


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
        if repair and verdict:
            records.replace_indicators(territory, computed)
    return verdict
