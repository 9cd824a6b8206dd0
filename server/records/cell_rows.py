"""The indicator cells of each territory in the state database (``indicator_cells``): per cell its
value, as written, and how many contributions make it (records/indicators.py says what a cell is
and adds to them). A row costs far less than a quad: in the store, the cells were an eighth of
what keeping the indicators writes, beside the records of every territory.

They are written, with the participants (records/participants.py), after a write's records and
before its cube, which removes the marker the records carry: a process dying in between leaves
the marker, and the territory's next write counts them again from its records. A row of its own
says which version of the cells the territory's rows are (``VERSION``), as the store's internal
indicator graph says which its records were counted into: where the two differ (one part of a
backup restored without the other), the cells are counted again too.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from ..state import State, indicator_cells
from .contributions import Cell
from .participants import ALL, CHUNK, marks, place_key

table = indicator_cells
#: The row of a territory's cells version (no cell's key starts with it).
VERSION = "!version"

#: A stored cell: its value as written (an integer, or a decimal amount) and its contributions.
Row = tuple[str, int]


def cell_key(cell: Cell) -> str:
    """A cell as it is stored: ``code/period/process/district``, ``_`` (``ALL``) for "all"."""
    return f"{cell[0]}/{place_key(cell[1:])}"


def parse_key(key: str) -> Cell:
    code, period, process, district = key.split("/")
    return (code, period, None if process == ALL else process, None if district == ALL else district)


class CellRows:
    """The stored cells of the territories of an instance."""

    def __init__(self, state: State) -> None:
        self.engine = state.engine

    def read(self, territory: str, cells: Iterable[Cell] | None = None) -> dict[Cell, Row]:
        """The territory's stored cells (all of them, or those of ``cells`` that are stored)."""
        query = select(table.c.cell, table.c.value, table.c.contributions).where(table.c.territory == territory)
        with self.engine.connect() as conn:
            if cells is None:
                rows = list(conn.execute(query.where(table.c.cell != VERSION)))
            else:
                keys = sorted({cell_key(c) for c in cells})
                rows = []
                for i in range(0, len(keys), CHUNK):
                    rows += conn.execute(query.where(table.c.cell.in_(keys[i : i + CHUNK])))
        return {parse_key(key): (value, n) for key, value, n in rows}

    def starting(self, territory: str, prefixes: Iterable[str]) -> dict[Cell, Row]:
        """The stored cells whose key (``code/period/…``) starts with one of these."""
        found: dict[Cell, Row] = {}
        with self.engine.connect() as conn:
            for prefix in prefixes:
                query = select(table.c.cell, table.c.value, table.c.contributions).where(
                    table.c.territory == territory, table.c.cell.startswith(prefix, autoescape=True)
                )
                found.update((parse_key(key), (value, n)) for key, value, n in conn.execute(query))
        return found

    def version(self, territory: str) -> int | None:
        with self.engine.connect() as conn:
            query = select(table.c.value).where(table.c.territory == territory, table.c.cell == VERSION)
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    def write(self, territory: str, cells: dict[Cell, Row], version: int) -> None:
        """These cells as they now are (one with no contribution is removed), in one transaction."""
        with self.engine.begin() as conn:
            gone = sorted(cell_key(cell) for cell, (_, n) in cells.items() if not n)
            for i in range(0, len(gone), CHUNK):
                conn.execute(delete(table).where(table.c.territory == territory, table.c.cell.in_(gone[i : i + CHUNK])))
            self._upsert(conn, territory, cells, version)

    def replace(self, territory: str, cells: dict[Cell, Row], version: int) -> None:
        """All the territory's cells (a repair, a replica's sync), in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.territory == territory))
            self._upsert(conn, territory, cells, version)

    def clear(self, territory: str) -> None:
        """None of the territory's cells (its version row with them)."""
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.territory == territory))

    @staticmethod
    def _upsert(conn: Connection, territory: str, cells: dict[Cell, Row], version: int) -> None:
        """These cells but those with no contribution, and the version row."""
        rows = [(territory, cell_key(cell), value, n) for cell, (value, n) in cells.items() if n]
        rows.append((territory, VERSION, str(version), 0))
        statement = (
            f"INSERT INTO {table.name} (territory, cell, value, contributions) VALUES ({marks(conn, 4)}) "
            "ON CONFLICT (territory, cell) DO UPDATE SET value = excluded.value, contributions = excluded.contributions"
        )
        conn.exec_driver_sql(statement, rows)
