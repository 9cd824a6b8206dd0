"""A territory's Linked Data Event Stream (LDES 1.0, SEMIC, over TREE): every version of its
public records, in the order they were written, paged by time.

Members are versions, ``urls.version(t, time)``: the current version of a record is its
description in the territory graph, its time the one of the record index; a version a write has
replaced is in the territory's history graph (server/records/history.py). A deletion is a member
too: the record's tombstone (``rdf:type as:Tombstone``, the stream's ``ldes:versionDeleteObject``).

Pages hold ``page_size`` members from a time on: the root page from the beginning, each page
linking to the next by the time of its first member. Members only ever join at the end (record
times grow in commit order), so a page with a next one is full and never changes — until the
retention policy drops members older than it promises to keep (server/ldes/retention.py). Votes
and everything else private are never members: only the index graphs of public kinds are read.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from pyoxigraph import NamedNode

from vocabularies import DCT, PROV

from ..model.kinds import KINDS
from ..records import Records
from ..records.clock import micros
from ..records.index import RECORD_DELETED, RECORD_MODIFIED

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
    #: Where the members before this page begin: the page of the ``page_size`` members before it
    #: (None: the root page holds them all; absent on the root page itself).
    previous_from: int | None = None
    has_previous: bool = False

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
        """Every member of the territory's stream in time order, and their times. Kept until
        the store changes, where the store tells (else read again on each request)."""
        store = self.records.store
        with self._lock:
            kept = self._kept.get(territory)
            if kept is not None and store.tracks_writes and kept[0] == store.generation:
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
        entries, times = self.entries(territory)
        start = bisect.bisect_left(times, from_us or 0)
        members = (e for e in itertools.islice(entries, start, None) if self.visible(e, now))
        taken = list(itertools.islice(members, self.page_size))
        following = next(members, None)
        # The members before this page never change (they only join at the end): the page of the
        # page_size ones before it is a stable place to find earlier members.
        before = (e for e in reversed(entries[:start]) if self.visible(e, now))
        earlier = list(itertools.islice(before, self.page_size + 1))
        previous = earlier[self.page_size - 1].time_us if len(earlier) > self.page_size else None
        return Page(
            territory,
            from_us,
            taken,
            following.time_us if following else None,
            previous_from=previous,
            has_previous=from_us is not None and bool(earlier),
        )


def _micros(lexical: str) -> int:
    return micros(dt.datetime.fromisoformat(lexical))
