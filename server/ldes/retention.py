"""The event stream's retention policy, applied: a version that a later one replaced is kept
``full_log`` (the policy's ``ldes:fullLogDuration``), then removed from the history graph. The
latest version of every record stays (``ldes:versionAmount 1``: it is the record itself); a
deletion older than ``deletions`` is no longer listed (``ldes:versionDeleteDuration``), its
tombstone staying where the JSON API's incremental syncs read it. ``civicfed serve`` prunes every
territory once an hour (``server/serve.py``)."""

from __future__ import annotations

import datetime as dt

from vocabularies import PROV, XSD

from ..model.terms import format_datetime, typed
from ..records import Records
from ..store import Changeset
from . import Retention

#: Versions removed per write (each a handful of quads).
CHUNK = 5_000


def prune(records: Records, territory: str, retention: Retention, now: dt.datetime | None = None) -> int:
    """Remove the territory's replaced versions older than the full-log window; how many."""
    now = now or dt.datetime.now(dt.UTC)
    graph = records.urls.history_graph(territory)
    cutoff = typed(format_datetime(now - retention.full_log), XSD.dateTime)
    rows = records.store.select(
        f"SELECT ?v WHERE {{ GRAPH <{graph}> {{ ?v <{PROV.generatedAtTime}> ?t }} FILTER(?t < {cutoff}) }}"
    )
    versions = [row["v"].value for row in rows]
    for start in range(0, len(versions), CHUNK):
        chunk = versions[start : start + CHUNK]
        cs = Changeset()
        for subject in records.store.describe(chunk, graph):
            cs.drop(graph, subject)
        # Under the commit lock, as every write: a staged import must not miss it in its copy.
        with records.state.commit_lock():
            records.store.apply(cs)
    return len(versions)
