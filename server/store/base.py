"""The store interface every surface, importer and exporter speaks.

Terms crossing the interface are pyoxigraph terms (``NamedNode``, ``Literal``, ``Quad``…);
IRIs of subjects and graphs are passed as plain strings. Writes are expressed as a
:class:`Changeset` and applied in one atomic step, whatever the backend.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pyoxigraph import (
    Quad,
    QueryBoolean,
    QuerySolution,
    QuerySolutions,
    QueryTriples,
    RdfFormat,
)

QueryResult = QuerySolutions | QueryBoolean | QueryTriples
#: The triples of one subject: (predicate IRI, object term) pairs.
Description = dict[str, list[tuple[str, object]]]


class StoreError(RuntimeError):
    """The store could not do what was asked (I/O failure, lock held, backend refused)."""


class StoreTimeout(StoreError):
    """A query with a time limit was stopped by it (or refused as estimated to exceed it)."""


class StoreRefused(StoreError):
    """The store's parser or compiler refused the request: the request is at fault, not the store."""


class StoreBusyError(StoreError):
    """The store is locked by another process (embedded Oxigraph allows one owner)."""


@dataclass
class Changeset:
    """One atomic write: empty some graphs, drop every triple of some subjects, then add triples,
    per graph.

    ``insert`` holds N-Triples statements *without* the final `` .`` so that the same text can go
    into N-Quads (bulk path) or into a SPARQL ``INSERT DATA`` block (update path).
    """

    replace: dict[str, set[str]] = field(default_factory=dict)
    insert: dict[str, list[str]] = field(default_factory=dict)
    #: Graphs emptied before the insertions (a source graph an import rewrites whole).
    clear: set[str] = field(default_factory=set)

    def drop(self, graph: str, subject: str) -> None:
        self.replace.setdefault(graph, set()).add(subject)

    def add(self, graph: str, statements: Iterable[str]) -> None:
        self.insert.setdefault(graph, []).extend(statements)

    def clear_graph(self, graph: str) -> None:
        self.clear.add(graph)

    def merge(self, other: Changeset) -> None:
        """Add another changeset's operations to this one (still one atomic write)."""
        for graph, subjects in other.replace.items():
            self.replace.setdefault(graph, set()).update(subjects)
        for graph, statements in other.insert.items():
            self.add(graph, statements)
        self.clear |= other.clear

    def deletions(self) -> Changeset:
        """What this changeset removes, without what it adds."""
        return Changeset(replace=self.replace, clear=self.clear)

    def is_empty(self) -> bool:
        return not any(self.replace.values()) and not any(self.insert.values()) and not self.clear

    @property
    def has_deletions(self) -> bool:
        return any(self.replace.values()) or bool(self.clear)

    def insert_count(self) -> int:
        return sum(len(v) for v in self.insert.values())

    def to_nquads(self) -> str:
        parts: list[str] = []
        for graph, statements in self.insert.items():
            suffix = f" <{graph}> .\n"
            parts.extend(s + suffix for s in statements)
        return "".join(parts)

    def to_sparql_update(self, values_chunk: int = 500) -> str:
        """The changeset as one SPARQL 1.1 Update request (a request is applied atomically)."""
        ops: list[str] = [f"CLEAR SILENT GRAPH <{graph}>" for graph in sorted(self.clear)]
        for graph, subjects in self.replace.items():
            ordered = sorted(subjects)
            for i in range(0, len(ordered), values_chunk):
                values = " ".join(f"<{s}>" for s in ordered[i : i + values_chunk])
                ops.append(
                    f"DELETE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }} "
                    f"WHERE {{ GRAPH <{graph}> {{ VALUES ?s {{ {values} }} ?s ?p ?o }} }}"
                )
        inserts = [
            f"GRAPH <{graph}> {{\n" + " .\n".join(statements) + " .\n}"
            for graph, statements in self.insert.items()
            if statements
        ]
        if inserts:
            ops.append("INSERT DATA {\n" + "\n".join(inserts) + "\n}")
        return " ;\n".join(ops)


@dataclass
class Stage:
    """A staged write under way (:meth:`Store.staged`): kept, it replaces the store at its end."""

    kept: bool = False

    def keep(self) -> None:
        self.kept = True


class Store(abc.ABC):
    """A quad store: SPARQL 1.1 query and update, pattern access, atomic writes.

    What differs between backends and matters above this package is declared as capabilities
    (``shared``, ``snapshots``, ``generation``); code outside ``server/store`` branches on those,
    never on ``backend``.
    """

    #: ``embedded`` or ``remote``: for messages and logs only.
    backend: str = "abstract"
    #: Other processes may write to this store too (a SPARQL server several civicfed processes
    #: share): writers then meet in the state database for locks and the record clock.
    shared: bool = False
    #: :meth:`snapshot` is available: a consistent read-only copy a query process can open.
    snapshots: bool = False
    #: Grows with every write where the backend can tell (``tracks_writes``; else stays 0).
    generation: int = 0
    #: Every write to the store goes through this object (one owning process), so ``generation``
    #: tells when it changed: what is derived from the store can be kept until then.
    tracks_writes: bool = False
    #: :meth:`staged` is available: a large write goes to a copy swapped in whole at its end.
    stages: bool = False
    #: A changeset that only adds statements is written for less than one that also removes
    #: some (Oxigraph loads it in one transaction instead of running a SPARQL update): what can
    #: remove its statements a moment later is then better written in two changesets.
    cheaper_insertions: bool = False

    @abc.abstractmethod
    def query(
        self,
        sparql: str,
        *,
        default_graph: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        union_default_graph: bool = False,
        timeout: float | None = None,
        graph_result: bool = False,
    ) -> QueryResult:
        """Run a SPARQL 1.1 query; results are pyoxigraph objects whatever the backend.

        ``default_graph``/``named_graphs`` replace the query's own dataset (FROM, FROM NAMED), as
        the SPARQL protocol's ``default-graph-uri``/``named-graph-uri`` do. ``timeout`` (seconds) is
        honoured where the backend can stop a query. ``graph_result``: the query is a CONSTRUCT or
        DESCRIBE (a SPARQL server is then asked for RDF, not solutions).
        """

    def select(self, sparql: str, **kwargs: object) -> list[QuerySolution]:
        """Run a SELECT query and return all its solutions."""
        result = self.query(sparql, **kwargs)  # type: ignore[arg-type]
        if not isinstance(result, QuerySolutions):
            raise StoreError("expected a SELECT query")
        return list(result)

    @abc.abstractmethod
    def update(self, sparql: str) -> None:
        """Run a SPARQL 1.1 Update request atomically."""

    @abc.abstractmethod
    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        obj: object | None = None,
        graph: str | None = None,
    ) -> Iterator[Quad]:
        """Quads matching a pattern (None is a wildcard; ``graph=None`` means every graph)."""

    @abc.abstractmethod
    def describe(self, subjects: Sequence[str], graph: str) -> Description:
        """The triples of each subject in ``graph``, and of the ``{subject}#…`` nodes it links to.

        civicfed skolemises a resource's structured values as hash IRIs of the resource
        (``…/proposal/p1#geometry``), so this is the resource's concise bounded description.
        """

    @abc.abstractmethod
    def apply(self, changeset: Changeset) -> None:
        """Apply a changeset atomically: readers see all of it or none of it."""

    def discard_leftovers(self) -> list[str]:
        """Remove what writers stopped mid-write left in the store (none on a transactional
        store); the caller holds the instance's commit lock. Returns what was removed."""
        return []

    @abc.abstractmethod
    def replace_graph(self, graph: str, data: bytes | str, media_format: RdfFormat) -> int:
        """Atomically replace a named graph's content with parsed ``data``; return its size."""

    @abc.abstractmethod
    def graphs(self) -> list[str]:
        """IRIs of all named graphs that hold at least one quad."""

    @abc.abstractmethod
    def count(self, graph: str | None = None) -> int:
        """Number of quads in one graph, or in the whole store."""

    @abc.abstractmethod
    def load(self, data: bytes | str | IO[bytes], media_format: RdfFormat, graph: str | None = None) -> None:
        """Add parsed RDF atomically (into ``graph`` for triple formats)."""

    @abc.abstractmethod
    def dump(self, output: IO[bytes], media_format: RdfFormat, graph: str | None = None) -> None:
        """Serialise one graph (triple formats) or the whole dataset (quad formats)."""

    def staged(self) -> AbstractContextManager[Stage]:
        """Writes of this thread go to a copy of the store, which replaces it at the end if the
        stage is kept (where :attr:`stages` is true)."""
        raise NotImplementedError(f"the {self.backend} store does not stage writes")

    def snapshot(self, target: Path) -> None:
        """Write a consistent read-only copy of the store as of now into ``target`` (where
        :attr:`snapshots` is true), for query processes that may be stopped at any time."""
        raise NotImplementedError(f"the {self.backend} store takes no snapshots")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the backend (file locks, connections)."""
