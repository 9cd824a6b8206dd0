"""Embedded store: Oxigraph (pyoxigraph) on disk.

One process owns the directory (RocksDB locks it). Within that process any number of threads
may read and write: pyoxigraph releases the GIL, and every write below is one Oxigraph
transaction (``load`` or ``update``), so readers never see half of a changeset.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from pyoxigraph import DefaultGraph, NamedNode, Quad, RdfFormat
from pyoxigraph import Store as OxStore

from .base import Changeset, Description, QueryResult, Store, StoreBusyError, StoreError

#: Quads written between two flushes of RocksDB's write buffers. Oxigraph gives each of its
#: column families write buffers of up to 128 MiB and no global cap: left to fill, a server that
#: only writes grew ~25 MiB a 1,000-record ingest, without bound (the soak benchmark), and a
#: stopped one left hundreds of MB of write-ahead log for the next start to replay.
FLUSH_EVERY = 100_000


def _give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc keeps them: the flushed buffers would
    stay in the process's RSS)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class EmbeddedStore(Store):
    backend = "embedded"
    snapshots = True
    tracks_writes = True

    def __init__(self, path: str | Path | None, *, flush_every: int | None = None) -> None:
        self.path = Path(path) if path else None
        try:
            if self.path is None:
                self._store = OxStore()  # in memory, for throw-away uses
            else:
                if not self.path.exists():  # the store holds private votes: this user's only
                    self.path.mkdir(mode=0o700, parents=True)
                    self.path.chmod(0o700)
                self._store = OxStore(str(self.path))
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise StoreBusyError(
                    f"the embedded store at {self.path} is open in another process "
                    "(a running `civicfed serve`?). Oxigraph allows one owner: stop that process, "
                    "or make the change through the HTTP API."
                ) from exc
            raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from exc
        # Graph replacement reads then writes; serialise those against each other.
        self._replace_lock = threading.Lock()
        self.flush_every = flush_every or FLUSH_EVERY
        self._unflushed = 0
        #: Grows with every write: readers holding a snapshot know when it is stale.
        self.generation = 0

    # -- reads -------------------------------------------------------------------------------
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
        # `timeout` cannot be honoured in process (pyoxigraph cannot cancel a query): public
        # queries run in killable processes instead (server/sparql/engine.py).
        kwargs: dict[str, object] = {}
        if default_graph is not None:
            kwargs["default_graph"] = [NamedNode(g) for g in default_graph] or [DefaultGraph()]
        elif union_default_graph:
            kwargs["use_default_graph_as_union"] = True
        if named_graphs is not None:
            kwargs["named_graphs"] = [NamedNode(g) for g in named_graphs]
        return self._store.query(sparql, **kwargs)

    def update(self, sparql: str) -> None:
        try:
            self._store.update(sparql)
        except OSError as exc:
            raise StoreError(f"update failed: {exc}") from exc
        finally:
            self.generation += 1

    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        obj: object | None = None,
        graph: str | None = None,
    ) -> Iterator[Quad]:
        return self._store.quads_for_pattern(
            NamedNode(subject) if subject is not None else None,
            NamedNode(predicate) if predicate is not None else None,
            obj,  # type: ignore[arg-type]
            NamedNode(graph) if graph is not None else None,
        )

    def describe(self, subjects: Sequence[str], graph: str) -> Description:
        g = NamedNode(graph)
        out: Description = {}
        pattern = self._store.quads_for_pattern
        for root in subjects:
            prefix = root + "#"
            pending = [root]
            while pending:
                s = pending.pop()
                if s in out:
                    continue
                triples = []
                for q in pattern(NamedNode(s), None, None, g):
                    o = q.object
                    triples.append((q.predicate.value, o))
                    if type(o) is NamedNode and o.value.startswith(prefix) and o.value not in out:
                        pending.append(o.value)
                if triples:
                    out[s] = triples
        return out

    def graphs(self) -> list[str]:
        return [g.value for g in self._store.named_graphs() if isinstance(g, NamedNode)]

    def count(self, graph: str | None = None) -> int:
        if graph is None:
            return len(self._store)
        return sum(1 for _ in self._store.quads_for_pattern(None, None, None, NamedNode(graph)))

    # -- writes ------------------------------------------------------------------------------
    def apply(self, changeset: Changeset) -> None:
        if changeset.is_empty():
            return
        try:
            if changeset.has_deletions:
                self._store.update(changeset.to_sparql_update())
            else:
                # Pure insertion: a transactional N-Quads load is ~1.5x faster than INSERT DATA.
                self._store.load(changeset.to_nquads(), format=RdfFormat.N_QUADS)
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"the write was refused and nothing was changed: {exc}") from exc
        finally:
            self.generation += 1
        self._written(changeset.insert_count())

    def _written(self, quads: int) -> None:
        self._unflushed += quads
        if self.path is not None and self._unflushed >= self.flush_every:
            self._unflushed = 0
            self._store.flush()
            _give_back_memory()

    def replace_graph(self, graph: str, data: bytes | str, media_format: RdfFormat) -> int:
        from pyoxigraph import parse, serialize

        g = NamedNode(graph)
        try:
            triples = [(q.subject, q.predicate, q.object) for q in parse(data, format=media_format, base_iri=graph)]
        except (SyntaxError, ValueError) as exc:
            raise StoreError(f"cannot parse the new content of {graph}: {exc}") from exc
        body = serialize([Quad(s, p, o, g) for s, p, o in triples], format=RdfFormat.N_QUADS).decode()
        # CLEAR + INSERT DATA in one update: one transaction, so readers see old or new graph.
        inner = body.replace(f" <{graph}> .\n", " .\n")
        with self._replace_lock:
            self.update(f"CLEAR SILENT GRAPH <{graph}> ;\nINSERT DATA {{ GRAPH <{graph}> {{\n{inner}}} }}")
        return len(triples)

    def load(self, data: bytes | str | IO[bytes], media_format: RdfFormat, graph: str | None = None) -> None:
        try:
            self._store.load(data, format=media_format, to_graph=NamedNode(graph) if graph else None)
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"load failed, nothing was changed: {exc}") from exc
        finally:
            self.generation += 1

    def snapshot(self, target: Path) -> None:
        """A consistent read-only copy of the store as of now (a RocksDB checkpoint: hard links)."""
        self._store.flush()
        self._unflushed = 0
        self._store.backup(str(target))

    def dump(self, output: IO[bytes], media_format: RdfFormat, graph: str | None = None) -> None:
        if graph is not None:
            self._store.dump(output, format=media_format, from_graph=NamedNode(graph))
        else:
            self._store.dump(output, format=media_format)

    def close(self) -> None:
        self._store.flush()
        del self._store
