"""The participants of each place of a territory's indicators (records/indicators.py), in the
state database (``indicator_participants``): a write adds the people it brings to a place and
takes away those with no contribution left there, and a place's participants cell is how many
remain. A write's records are committed before its participants change, with a marker its
values remove: a process dying in between leaves the marker, and the next write sets the
participants again with the cells, from the records (``IndicatorCells.replace``).

Where the store may not come to hold what the participants say (an import written to a staged
copy of the store that may be thrown away, a repair before its cells are written), the territory
is *unsettled* first: a row of its own says so until the store holds it, and the territory's
next write counts its participants again from its records while it is there.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from ..state import State, indicator_participants
from .contributions import Place

#: Rows per statement.
CHUNK = 500
#: The marker of "every process" or "every district" in a place.
ALL = "_"
#: The place of the row that says a territory's participants may not match its store (no place
#: key starts with it).
UNSETTLED = "!unsettled"

table = indicator_participants


def marks(conn: Connection, n: int) -> str:
    """The driver's placeholders for a row of ``n`` values, for its own executemany: a large
    import adds a million rows, and SQLAlchemy building statements of 500 dictionaries at a time
    took most of the time they cost."""
    return ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * n)


def place_key(place: Place | tuple[str | None, ...] | list[str | None]) -> str:
    """A place as it is stored, and in a cell's IRI: period/process/district, ``_`` for "all"."""
    return "/".join(part or ALL for part in place)


class Participants:
    """The participants of the places of an instance's territories."""

    def __init__(self, state: State) -> None:
        self.engine = state.engine

    def add(self, territory: str, pairs: Iterable[tuple[Place, str]]) -> None:
        """These people among the participants of these places (those there already stay)."""
        with self.engine.begin() as conn:
            self._insert(conn, territory, pairs)

    def _insert(
        self, conn: Connection, territory: str, pairs: Iterable[tuple[Place, str]], *, unsettled: bool = False
    ) -> None:
        pairs = set(pairs)
        keys = {place: place_key(place) for place in {place for place, _ in pairs}}  # (a few places, many people)
        rows = [(territory, keys[place], person) for place, person in pairs]
        if unsettled:
            rows.append((territory, UNSETTLED, ""))
        if not rows:
            return
        names = ", ".join(c.name for c in (table.c.territory, table.c.place, table.c.person))
        statement = f"INSERT INTO {table.name} ({names}) VALUES ({marks(conn, 3)}) ON CONFLICT DO NOTHING"
        conn.exec_driver_sql(statement, rows)

    def remove(self, territory: str, pairs: Iterable[tuple[Place, str]]) -> None:
        by_place: dict[str, list[str]] = {}
        for place, person in pairs:
            by_place.setdefault(place_key(place), []).append(person)
        if not by_place:
            return
        with self.engine.begin() as conn:
            for place, persons in by_place.items():
                for i in range(0, len(persons), CHUNK):
                    conn.execute(
                        delete(table).where(
                            table.c.territory == territory,
                            table.c.place == place,
                            table.c.person.in_(persons[i : i + CHUNK]),
                        )
                    )

    def count(self, territory: str, places: Iterable[Place]) -> dict[Place, int]:
        """How many people are among the participants of each of these places."""
        keys = {place_key(p): p for p in places}
        ordered = sorted(keys)
        out: dict[Place, int] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ordered), CHUNK):
                rows = conn.execute(
                    select(table.c.place, func.count())
                    .where(table.c.territory == territory, table.c.place.in_(ordered[i : i + CHUNK]))
                    .group_by(table.c.place)
                )
                out.update((keys[place], n) for place, n in rows)
        return out

    def replace(self, territory: str, pairs: Iterable[tuple[Place, str]]) -> None:
        """The territory's participants, all of them (a repair, a replica's sync), unsettled
        until :meth:`settle`: the store is to hold the cells they count."""
        with self.engine.begin() as conn:  # in one transaction
            conn.execute(delete(table).where(table.c.territory == territory))
            self._insert(conn, territory, pairs, unsettled=True)

    def unsettle(self, territory: str) -> None:
        """The territory's participants may no longer match its store, until :meth:`settle`."""
        with self.engine.begin() as conn:
            self._insert(conn, territory, [], unsettled=True)

    def settle(self, territory: str) -> None:
        """The store holds what the territory's participants count."""
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.territory == territory, table.c.place == UNSETTLED))

    def unsettled(self, territory: str) -> bool:
        with self.engine.connect() as conn:
            found = select(table.c.person).where(table.c.territory == territory, table.c.place == UNSETTLED)
            return conn.execute(found.limit(1)).first() is not None

    def pairs(self, territory: str) -> set[tuple[str, str]]:
        """Every (place as stored, person) of the territory."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.place, table.c.person).where(table.c.territory == territory, table.c.place != UNSETTLED)
            )
            return {(place, person) for place, person in rows}

    def any(self, territory: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(table.c.person).where(table.c.territory == territory).limit(1)).first() is not None
            )
