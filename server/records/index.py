"""The record index: one graph per (territory, kind) saying when each record last changed.

``<record> cf:recordModified "…"`` (or ``cf:recordDeleted``) is the record's version: existence,
tombstones, ETags, list order and sync cursors are one lookup. Records that publish maintained
counts (:class:`~server.model.kinds.Tally`) also keep there the figures their platform reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from vocabularies import CF, XSD

from ..model.kinds import Kind
from ..model.terms import format_datetime, typed
from ..store import Changeset, Store
from ..urls import Urls

RECORD_MODIFIED = CF.recordModified
RECORD_DELETED = CF.recordDeleted
RECORD_CREATED = CF.recordCreated


@dataclass
class IndexEntry:
    deleted: bool
    modified: dt.datetime
    #: Counts the record's platform last reported, by field (kept apart from the published ones).
    reported: dict[str, int] = field(default_factory=dict)
    #: When this server first recorded the live record (None: before it kept this, or deleted).
    created: dt.datetime | None = None


def graph_of(urls: Urls, kind: Kind, territory: str) -> str:
    """The graph holding a territory's records of ``kind``: private for votes, else public."""
    return urls.private_graph(territory) if kind.private else urls.territory_graph(territory)


def read_index(store: Store, urls: Urls, territory: str, kind: Kind, iris: Sequence[str]) -> dict[str, IndexEntry]:
    """Which of these records exist (live or tombstoned) and when they last changed."""
    out: dict[str, IndexEntry] = {}
    desc = store.describe(list(iris), urls.index_graph(territory, kind.name))
    reported_names = {t.reported: t.field for t in kind.tallies}
    for s, triples in desc.items():
        reported: dict[str, int] = {}
        entry, created = None, None
        for p, o in triples:
            if p in (RECORD_MODIFIED, RECORD_DELETED):
                entry = IndexEntry(p == RECORD_DELETED, dt.datetime.fromisoformat(o.value))  # type: ignore[attr-defined]
            elif p == RECORD_CREATED:
                created = dt.datetime.fromisoformat(o.value)  # type: ignore[attr-defined]
            elif p in reported_names:
                reported[reported_names[p]] = int(o.value)  # type: ignore[attr-defined]
        if entry is not None:
            entry.reported, entry.created = reported, created
            out[s] = entry
    return out


def emit_index(
    cs: Changeset,
    urls: Urls,
    territory: str,
    kind: Kind,
    iri: str,
    now: dt.datetime,
    *,
    deleted: bool,
    existed: bool,
    reported: dict[str, int] | None = None,
    created: dt.datetime | None = None,
) -> None:
    """Add a record's new index entry to a changeset (replacing the old one if it ``existed``),
    with when it was first recorded (``created``) for a live one."""
    graph = urls.index_graph(territory, kind.name)
    if existed:
        cs.drop(graph, iri)
    predicate = RECORD_DELETED if deleted else RECORD_MODIFIED
    cs.add(graph, [f"<{iri}> <{predicate}> {typed(format_datetime(now), XSD.dateTime)}"])
    if created is not None and not deleted:
        cs.add(graph, [f"<{iri}> <{RECORD_CREATED}> {typed(format_datetime(created), XSD.dateTime)}"])
    by_field = {t.field: t.reported for t in kind.tallies}
    cs.add(graph, [f"<{iri}> <{by_field[k]}> {typed(str(v), XSD.integer)}" for k, v in (reported or {}).items()])
