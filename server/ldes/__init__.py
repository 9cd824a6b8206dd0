"""A territory's Linked Data Event Stream (LDES 1.0, SEMIC, over TREE): every version of its
public records, in the order they were written, paged by time.

Members are versions, ``urls.version(t, time)``: the current version of a record is its
description in the territory graph, its time the one of the record index; a version a write has
replaced is in the territory's history graph (server/records/history.py). A deletion is a member
too: the record's tombstone (``rdf:type as:Tombstone``, the stream's ``ldes:versionDeleteObject``).

Pages hold ``page_size`` members from a time on: the root page from the beginning, each page
linking to the next by the time of its first member. Members only ever join at the end (record
times grow in commit order), so a page with a next one is full; its bounds are then recorded
(the state database's ``stream_pages``), and it never gains a member — the retention policy
only takes away those older than it promises to keep (server/ldes/retention.py). Votes and
everything else private are never members: only the index graphs of public kinds are read.
The embedded store's members are listed once per version of the store; a SPARQL server is asked
for each page's window (ordered and limited: servers cap the rows of an answer).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from pyoxigraph import NamedNode
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from vocabularies import DCT, PROV, XSD

from ..model.kinds import KINDS
from ..model.terms import format_datetime, typed
from ..records import Records
from ..records.clock import micros, moment
from ..records.index import RECORD_DELETED, RECORD_MODIFIED
from ..state import stream_pages

#: Territories whose member list is kept between requests (a sync walks one at a time).
KEPT = 8


@dataclass(frozen=True)
class Entry:
    """A member of the stream: a version of a record."""

    time_us: int
    resource: str
    deleted: bool
    #: Replaced by a later version: its content is in the history graph.
    historic: bool


@dataclass(frozen=True)
class Page:
    territory: str
    #: None for the root page (from the beginning).
    from_us: int | None
    entries: list[Entry]
    #: The time of the next page's first member (None: this is the newest page).
    next_from: int | None

    @property
    def full(self) -> bool:
        return self.next_from is not None


@dataclass(frozen=True)
class Retention:
    """What the stream keeps: every version for ``full_log``, the latest version of each record
    forever, a deletion for ``deletions``."""

    full_log: dt.timedelta
    deletions: dt.timedelta


class Stream:
    """The event streams of an instance's territories."""

    def __init__(self, records: Records, page_size: int, retention: Retention) -> None:
        self.records, self.page_size, self.retention = records, page_size, retention
        self._kept: OrderedDict[str, tuple[int, list[Entry], list[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self, territory: str) -> tuple[list[Entry], list[int]]:
        """Every member of the territory's stream in time order, and their times, kept until the
        store changes (for a store that tracks its writes: the others are read page by page)."""
        store = self.records.store
        with self._lock:
            kept = self._kept.get(territory)
            if kept is not None and kept[0] == store.generation:
                self._kept.move_to_end(territory)
                return kept[1], kept[2]
        generation = store.generation
        found = sorted(self._read(territory), key=lambda e: e.time_us)
        times = [e.time_us for e in found]
        with self._lock:
            self._kept[territory] = (generation, found, times)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return found, times

    def _read(self, territory: str) -> Iterator[Entry]:
        urls, store = self.records.urls, self.records.store
        graphs = " ".join(f"<{urls.index_graph(territory, k.name)}>" for k in KINDS.values() if not k.private)
        rows = store.select(
            f"SELECT ?r ?p ?t WHERE {{ VALUES ?g {{ {graphs} }} VALUES ?p {{ <{RECORD_MODIFIED}> <{RECORD_DELETED}> }} "
            f"GRAPH ?g {{ ?r ?p ?t }} }}"
        )
        for row in rows:
            yield Entry(_micros(row["t"].value), row["r"].value, row["p"] == NamedNode(RECORD_DELETED), False)
        rows = store.select(
            f"SELECT ?r ?t WHERE {{ GRAPH <{urls.history_graph(territory)}> "
            f"{{ ?v <{DCT.isVersionOf}> ?r ; <{PROV.generatedAtTime}> ?t }} }}"
        )
        for row in rows:
            yield Entry(_micros(row["t"].value), row["r"].value, False, True)

    def visible(self, entry: Entry, now: dt.datetime) -> bool:
        """Whether the retention policy still keeps this member (a version replaced more than
        ``full_log`` ago, a deletion older than ``deletions``, are not kept)."""
        if entry.historic:
            return entry.time_us >= micros(now - self.retention.full_log)
        if entry.deleted:
            return entry.time_us >= micros(now - self.retention.deletions)
        return True

    def page(self, territory: str, from_us: int | None, now: dt.datetime | None = None) -> Page:
        """The page of the members from ``from_us`` (None: the root page, from the beginning)."""
        now = now or dt.datetime.now(dt.UTC)
        start = from_us or 0
        with self.records.state.engine.connect() as conn:
            bound = conn.execute(
                select(stream_pages.c.next_us).where(
                    stream_pages.c.territory == territory, stream_pages.c.from_us == start
                )
            ).scalar()
        if bound is not None:  # a page found full before: the same bounds
            return Page(territory, from_us, self._window(territory, start, bound, None, now), bound)
        found = self._window(territory, start, None, self.page_size + 1, now)
        if len(found) <= self.page_size:
            return Page(territory, from_us, found, None)
        following = found[self.page_size].time_us
        with contextlib.suppress(IntegrityError), self.records.state.engine.begin() as conn:
            conn.execute(insert(stream_pages).values(territory=territory, from_us=start, next_us=following))
        return Page(territory, from_us, found[: self.page_size], following)

    def _window(
        self, territory: str, start: int, until: int | None, limit: int | None, now: dt.datetime
    ) -> list[Entry]:
        """The visible members from ``start`` (and before ``until``), ``limit`` at most, in order."""
        if self.records.store.tracks_writes:
            entries, times = self.entries(territory)
            members = (
                e for e in itertools.islice(entries, bisect.bisect_left(times, start), None) if self.visible(e, now)
            )
            if until is not None:
                members = itertools.takewhile(lambda e: e.time_us < until, members)
            return list(itertools.islice(members, limit))
        return self._query_window(territory, start, until, limit, now)

    def _query_window(
        self, territory: str, start: int, until: int | None, limit: int | None, now: dt.datetime
    ) -> list[Entry]:
        urls = self.records.urls
        graphs = " ".join(f"<{urls.index_graph(territory, k.name)}>" for k in KINDS.values() if not k.private)

        def at(time_us: int) -> str:
            return typed(format_datetime(moment(time_us)), XSD.dateTime)

        full_log = at(micros(now - self.retention.full_log))
        deletions = at(micros(now - self.retention.deletions))
        window = f"?t >= {at(start)}" + (f" && ?t < {at(until)}" if until is not None else "")
        last = f" ORDER BY ?t LIMIT {limit}" if limit else " ORDER BY ?t"
        # Two plain queries, merged here (Virtuoso answers a UNION of BINDs with invalid terms).
        rows = self.records.store.select(
            f"SELECT ?r ?p ?t WHERE {{ VALUES ?g {{ {graphs} }} "
            f"VALUES ?p {{ <{RECORD_MODIFIED}> <{RECORD_DELETED}> }} GRAPH ?g {{ ?r ?p ?t }} "
            f"FILTER({window} && (?p = <{RECORD_MODIFIED}> || ?t >= {deletions})) }}" + last
        )
        current = [Entry(_micros(r["t"].value), r["r"].value, r["p"] == NamedNode(RECORD_DELETED), False) for r in rows]
        rows = self.records.store.select(
            f"SELECT ?r ?t WHERE {{ GRAPH <{urls.history_graph(territory)}> {{ ?v <{DCT.isVersionOf}> ?r ; "
            f"<{PROV.generatedAtTime}> ?t }} FILTER({window} && ?t >= {full_log}) }}" + last
        )
        kept = [Entry(_micros(r["t"].value), r["r"].value, False, True) for r in rows]
        return sorted(current + kept, key=lambda e: e.time_us)[:limit]


def _micros(lexical: str) -> int:
    return micros(dt.datetime.fromisoformat(lexical))
