"""Statistics of the public dataset (for VoID): triples per public graph, entities per class,
triples per property, a few example resources.

They are aggregates over every public graph — seconds on a large embedded store — so they are
computed once per store version (where the store can tell) and at most every ``refresh`` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from vocabularies import CF

from ..store import Store
from ..urls import Urls
from .dataset import public_graphs


def compute(store: Store, urls: Urls) -> dict[str, Any]:
    """The statistics, computed now."""
    values = " ".join(f"<{g}>" for g in public_graphs(store, urls)) or f"<{urls.empty_graph}>"

    def counts(select: str, var: str) -> dict[str, int]:
        return {r[var].value: int(r["n"].value) for r in store.select(select)}

    per_graph = counts(
        f"SELECT ?g (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g", "g"
    )
    classes = counts(
        f"SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s a ?c }} }} GROUP BY ?c",
        "c",
    )
    properties = counts(
        f"SELECT ?p (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?p", "p"
    )
    examples = [
        r["s"].value
        for r in store.select(
            f"SELECT ?s WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s a <{CF.Proposal}> }} }} LIMIT 3"
        )
    ]
    return {"graphs": per_graph, "classes": classes, "properties": properties, "examples": examples}


class Statistics:
    """The statistics of one store, recomputed when it changed (or, for a store that cannot tell,
    when older than ``refresh`` seconds)."""

    def __init__(self, store: Store, urls: Urls) -> None:
        self.store, self.urls = store, urls
        self._lock = threading.Lock()
        self._cached: tuple[int, float, dict[str, Any]] | None = None

    def get(self, refresh: float) -> dict[str, Any]:
        generation = self.store.generation
        # A store that cannot tell when it changed (a remote store, written by other processes
        # too): its statistics are reused for ``refresh`` seconds only.
        tracked = self.store.tracks_writes
        with self._lock:
            if self._cached is not None:
                key, at, stats = self._cached
                if time.monotonic() - at < refresh or (tracked and key == generation):
                    return stats
            stats = compute(self.store, self.urls)
            self._cached = (generation, time.monotonic(), stats)
            return stats
