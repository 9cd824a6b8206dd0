"""Participation records: the logic every surface, importer and the command line share.

:class:`Records` is a small facade over the rooms of this package, which do not import it:

- ``read``: one record, pages of lists (``listing``: the list query and its cursors; ``cache``);
- ``write``: the one write path (``batch``: what a write sees; ``counts``: maintained counts;
  ``authz``: roles; ``edit``: the JSON clients edit, merge patches);
- ``index``: the per-(territory, kind) record index; ``clock``: record times and ETags;
  ``ops``: operations, outcomes, reports.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

from pyoxigraph import Triple

from ..errors import NotFound
from ..model.kinds import KINDS, Kind
from ..state import Principal, State
from ..store import Changeset, Description, Store
from ..urls import TERRITORY_ID_RE, Urls
from .authz import require_writer
from .cache import RecordCache
from .clock import Clock, etag
from .contributions import Cell, Sums
from .cube import Cube, Population
from .decisions import decision_history, document_triples, due, statuses
from .index import IndexEntry
from .listing import ListQuery
from .ops import Op, Outcome, Page, WriteReport
from .read import Reader
from .tables import District, Observed, districts, observations
from .takeup import TakenUp, take_up
from .write import Writer, prepare
from .write_indicators import recount, recount_project

#: What a write adds in its atomic step: a changeset, or a function making it from the report.
Extra = Changeset | Callable[[WriteReport], Changeset] | None

#: Seconds the list of replicated territories is kept by a process.
ORIGINS_FOR = 10.0

__all__ = ["Op", "Outcome", "Page", "Records", "WriteReport", "etag"]


class Records:
    """Record operations over one store, one state database and one set of IRIs."""

    def __init__(
        self,
        store: Store,
        state: State,
        urls: Urls,
        cache_size: int = 20_000,
        *,
        min_people: int = 5,
        population_years: int = 3,
    ) -> None:
        self.store = store
        self.state = state
        self.urls = urls
        self.clock = Clock()
        self.cache = RecordCache(cache_size)
        self.reader = Reader(store, urls, self.cache, self.origin)
        self._origins: dict[str, str] = {}
        self._origins_read = 0.0
        self.writer = Writer(self.reader, state, self.clock, shared_clock=store.shared)
        self.writer.min_people = min_people
        self.writer.cells.population_years = population_years

    @property
    def changes(self) -> Mapping[str, int]:
        """How many writes this process committed per territory (see ``Writer.changes``)."""
        return self.writer.changes

    # -- territories -------------------------------------------------------------------------
    def require_territory(self, territory: str) -> None:
        """A territory of this server's own (written here)."""
        if not self.state.has_territory(territory):
            raise NotFound(f"unknown territory {territory!r}", territory=territory)

    def require_readable(self, territory: str) -> None:
        """A territory of this server's own, or one replicated from a peer (read-only here)."""
        if self.origin(territory) is None:
            self.require_territory(territory)

    def origin(self, territory: str) -> str | None:
        """The territory's IRI at its origin when it is replicated from a peer, else None. A
        territory of this server's own is never one (its writes build its IRIs here). The
        replicas are read again after ``ORIGINS_FOR`` seconds, or at once for an id not among
        them: a peer removed, a territory replicated anew from another, are seen by every process."""
        if not TERRITORY_ID_RE.fullmatch(territory) or self.state.has_territory(territory):
            return None
        if territory not in self._origins or time.monotonic() - self._origins_read > ORIGINS_FOR:
            self._origins = self.state.replica_origins()
            self._origins_read = time.monotonic()
        return self._origins.get(territory)

    def territory_ids(self, *, replicas: bool = True) -> list[str]:
        """This server's territories, and (unless told not to) those replicated from peers."""
        own = self.state.territory_ids()
        if not replicas:
            return own
        self._origins, self._origins_read = self.state.replica_origins(), time.monotonic()
        return sorted({*own, *self._origins})

    def create_territory(self, data: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Register a territory (secret in the state DB) and write its record to the store."""
        kind = KINDS["territory"]
        loaded = prepare(kind, data)
        territory = loaded["id"]
        created = self.state.create_territory(territory)
        # Values left by a replica of the same id (its peer removed) are not this territory's.
        cells = self.writer.cells
        leftovers = (
            created
            and self.writer.maintain_indicators
            and bool(cells.read(territory) or cells.participants.any(territory))
        )
        self.writer.write(territory, [Op(kind, territory, "upsert", loaded)], None)
        if leftovers:
            with self.state.write_lock(territory):
                self.writer.repair_indicators(territory)
        return created, self.get(territory, kind, territory)

    # -- reads -------------------------------------------------------------------------------
    def index_entries(self, territory: str, kind: Kind, iris: Sequence[str]) -> dict[str, IndexEntry]:
        return self.reader.index_entries(territory, kind, iris)

    def get(self, territory: str, kind: Kind, local_id: str) -> dict[str, Any]:
        """One live record; NotFound if it never existed, Gone (with the tombstone) if deleted."""
        return self.reader.get(territory, kind, local_id)

    def published(self, territory: str, iri: str) -> Description:
        """What the territory's public graph says of one of its IRIs (and of its ``#`` nodes)."""
        return self.reader.published(territory, iri)

    def links_to(self, iri: str, limit: int) -> list[tuple[str, str]]:
        """(subject, predicate) of live public resources linking to ``iri``, ``limit`` at most."""
        return self.reader.links_to(iri, limit)

    def describe(self, territory: str, kind: Kind, iris: Sequence[str]) -> Description:
        """The stored triples of these records (and of their ``#`` nodes)."""
        return self.reader.describe(territory, kind, iris)

    def last_change(self, territory: str, kinds: Sequence[Kind]) -> tuple[int, dt.datetime | None]:
        """How many records of these kinds (tombstones included), and when the last changed."""
        return self.reader.last_change(territory, kinds)

    def select(self, sparql: str) -> list[Any]:
        """An internal SELECT over every graph (the catalog's aggregates): the caller names the
        graphs it reads, so private ones stay out of what it publishes."""
        return self.reader.store.select(sparql)

    def indicator_values(self, territory: str) -> dict[Cell, int | Decimal]:
        """The territory's indicator values as the writes keep them (records/indicators.py)."""
        return self.writer.cells.values(territory)

    def recount_indicators(self, territory: str) -> Sums:
        """A territory's indicators from scratch, from every live record (its own or replicated)."""
        return recount(self.reader, territory)

    def recount_project_indicators(self, territory: str, project: str) -> Sums:
        """What one project's records count for (its targets' values: records/write_indicators.py)."""
        return recount_project(self.reader, territory, project)

    def indicator_cube(self, territory: str) -> Cube:
        """The cube of a territory's indicators (public for this server's own territories)."""
        names = self.reader.urls_for(territory) if self.origin(territory) else None
        return self.writer.cells.cube(territory, names)

    def indicator_cube_triples(self, territory: str) -> list[Triple]:
        """Everything a territory's published indicator cube says."""
        graph = self.urls.indicators_cube_graph(territory)
        return [Triple(q.subject, q.predicate, q.object) for q in self.store.quads(graph=graph)]

    def indicator_observations(
        self, wanted: list[tuple[Cube, Cell]], measure: str, *, per: bool = False
    ) -> dict[tuple[str, Cell], dict[str, Any]]:
        """What the territories' cubes say of these cells (records/indicators.py: ``observed``)."""
        return self.writer.cells.observed(wanted, measure, per=per)

    def territory_names(self, cubes: list[Cube]) -> dict[str, str]:
        """The names of these cubes' territories."""
        return self.writer.cells.names(cubes)

    def area_observations(self, wanted: list[tuple[str, str, str, str | None]]) -> list[Observed]:
        """What the territories' tables say of these (territory, area IRI, measure, data set or
        None) (records/tables.py)."""
        return observations(self.store, self.urls, wanted)

    def ids_with(self, territory: str, kind: str, predicate: str) -> list[str]:
        """The ids of the territory's records of ``kind`` that say something with ``predicate``."""
        names = self.reader.urls_for(territory)
        rows = self.store.select(
            f"SELECT DISTINCT ?s WHERE {{ GRAPH <{self.urls.territory_graph(territory)}> {{ "
            f"?s a <{KINDS[kind].mapping.types[0]}> ; <{predicate}> ?o }} }}"
        )
        refs = [names.parse(r["s"].value) for r in rows]
        return [r.local_id for r in refs if r is not None and r.kind == kind and r.local_id and not r.fragment]

    def districts(self, territory: str) -> list[District]:
        """A territory's districts, with their level and parent."""
        return districts(self.store, self.urls, territory, self.reader.urls_for(territory))

    def area_populations(self, cube: Cube, cells: list[Cell]) -> dict[tuple[str, str], Population]:
        """The populations of these cells' areas by (area IRI, year), as the cube takes them."""
        return self.writer.cells.populations(cube, cells)

    def indicator_cube_differences(self, territory: str, values: dict[Cell, int | Decimal]) -> int:
        """How many statements of the territory's stored cube differ from one made from these values."""
        return self.writer.cells.cube_differences(self.indicator_cube(territory), values, self.writer.min_people)

    def replace_indicators(self, territory: str, sums: Sums) -> None:
        """Set the territory's stored indicator cells to these sums (computed from scratch: a
        repair, a territory replicated from a peer after a sync). The caller holds the
        territory's write lock, so that no write lands between the computation and this."""
        names = self.reader.urls_for(territory) if self.origin(territory) else None
        changeset = self.writer.cells.replace(territory, sums, self.writer.min_people, names=names)
        with self.state.commit_lock():
            self.store.apply(changeset)
        self.writer.cells.settled(territory)

    def dump_graph(self, territory: str, output: IO[bytes]) -> None:
        """Everything the territory publishes, as N-Triples."""
        self.reader.dump_graph(territory, output)

    def list(self, kind: Kind, *, territories: Sequence[str], bare: bool = False, **params: Any) -> Page:
        """A page of records in (record_modified, iri) order (parameters: :class:`ListQuery`)."""
        return self.reader.list(ListQuery(kind, territories, **params), bare=bare)

    # -- receivability (docs/rules.md) -------------------------------------------------------
    def receivability(self, territory: str, proposal: str) -> list[dict[str, Any]]:
        """Every decision on a live proposal, newest first (NotFound, Gone as :meth:`get`; a
        replicated territory's are its origin's to publish)."""
        self._decided_here(territory)
        self.get(territory, KINDS["proposal"], proposal)
        return decision_history(self.reader, territory, self.urls.resource(territory, "proposal", proposal))

    def receivability_triples(self, territory: str, proposal: str) -> list[Triple]:
        """A proposal's decisions document: its decisions, replaced ones included."""
        return document_triples(self.reader, territory, self.urls.resource(territory, "proposal", proposal))

    def receivability_statuses(self, territory: str, process: str) -> list[tuple[str, str, str]]:
        """(proposal id, status, decided at) of a process's decided proposals."""
        self._decided_here(territory)
        self.get(territory, KINDS["process"], process)
        return statuses(self.reader, territory, process)

    def _decided_here(self, territory: str) -> None:
        origin = self.origin(territory)
        if origin is not None:
            said = f"territory {territory!r} is replicated from {origin}: its origin decides its receivability"
            raise NotFound(said, territory=territory, origin=origin)

    def due_processes(self, territory: str, since: dt.datetime, until: dt.datetime) -> set[str]:
        """Processes whose rules have a deadline in (``since``, ``until``] (``decisions.due``)."""
        return due(self.reader, territory, since, until)

    def decide(self, territory: str, processes: set[str] | None = None, now: dt.datetime | None = None) -> int:
        """Decide the receivability of a territory's proposals anew (``Writer.decide``)."""
        self.require_readable(territory)
        if self.origin(territory) is not None:  # its origin decides
            return 0
        return self.writer.decide(territory, processes, now)

    def take_up(
        self,
        territory: str,
        proposal: str,
        principal: Principal | None,
        organization: str | None = None,
        project: dict[str, Any] | None = None,
    ) -> TakenUp:
        """An organization takes a receivable proposal up (``takeup.take_up``)."""
        self.require_territory(territory)
        return take_up(self.writer, territory, proposal, principal, organization, project)

    # -- writes ------------------------------------------------------------------------------
    @staticmethod
    def prepare(kind: Kind, data: Any, *, local_id: str | None = None, partial: bool = False) -> dict[str, Any]:
        """Validate one record's JSON with its kind's schema (raises ValidationFailed)."""
        return prepare(kind, data, local_id=local_id, partial=partial)

    def write(
        self,
        territory: str,
        ops: list[Op],
        principal: Principal | None,
        *,
        partial: bool = False,
        dry_run: bool = False,
        extra: Extra = None,
        provenance: Sequence[tuple[str, str]] = (),
    ) -> WriteReport:
        """Apply operations with an API key's rights, atomically; with ``partial`` only the valid
        ones, else all or none. ``extra`` is written in the same atomic step; ``provenance``
        goes with each record written (``Writer.write``)."""
        self.require_territory(territory)
        require_writer(principal, territory)
        return self.writer.write(
            territory, ops, principal, partial=partial, dry_run=dry_run, extra=extra, provenance=provenance
        )

    def commit(self, build: Callable[[Callable[[], dt.datetime]], Changeset]) -> None:
        """Apply a changeset made outside :meth:`write` (a page of a peer's stream), its record
        times from this instance's clock, in commit order (``Writer.commit``)."""
        self.writer.commit(build)

    def write_internal(
        self,
        territory: str,
        ops: list[Op],
        *,
        partial: bool = False,
        dry_run: bool = False,
        extra: Extra = None,
        provenance: Sequence[tuple[str, str]] = (),
    ) -> WriteReport:
        """A write by the server's operator (command line, demo loader): no API key involved."""
        self.require_territory(territory)
        return self.writer.write(
            territory, ops, None, partial=partial, dry_run=dry_run, extra=extra, provenance=provenance
        )
