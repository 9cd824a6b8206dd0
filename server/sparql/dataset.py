"""The one rule of which graphs are public, and the dataset a public query runs on.

Public graphs are this instance's graphs under ``{base}/graph/``; everything under
``{base}/_internal/`` (votes, record indexes, staging) and every other instance's graphs are not.
The SPARQL endpoint, the VoID description and the catalog all ask here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..store import Store
from ..urls import Urls


@dataclass(frozen=True)
class Dataset:
    """The RDF dataset a query runs on: always explicit, so that internal graphs stay out."""

    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]


def public_graphs(store: Store, urls: Urls) -> list[str]:
    """The graphs a public query may see: this instance's published graphs, sorted."""
    return sorted(g for g in store.graphs() if urls.is_own_graph(g) and not urls.is_internal_graph(g))


def public_dataset(
    public: Sequence[str],
    urls: Urls,
    *,
    protocol: tuple[Sequence[str], Sequence[str]] = ((), ()),
    clauses: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> Dataset:
    """The dataset a query runs on: the protocol's ``default-graph-uri``/``named-graph-uri``, else
    the query's FROM / FROM NAMED clauses, else every public graph; a graph that is not public is
    answered as an empty graph, never read."""
    default, named = protocol
    if not default and not named:
        default, named = clauses if clauses[0] or clauses[1] else (public, public)
    allowed = set(public)
    empty = urls.empty_graph
    return Dataset(
        tuple(g for g in default if g in allowed) or (empty,), tuple(g for g in named if g in allowed) or (empty,)
    )
