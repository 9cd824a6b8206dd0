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

from . import staging
from .base import Changeset, Description, QueryResult, Stage, Store, StoreBusyError, StoreError

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
    cheaper_insertions = True

    def __init__(self, path: str | Path | None, *, flush_every: int | None = None) -> None:
        self.path = Path(path) if path else None
        #: A staged write (a large import) reads and writes a copy of the store, in its thread only.
        self._staged = threading.local()
        self.stages = self.path is not None
        try:
            if self.path is None:
                self._live = OxStore()  # in memory, for throw-away uses
            else:
                if not self.path.exists():  # the store holds private votes: this user's only
                    self.path.mkdir(mode=0o700, parents=True)
                    self.path.chmod(0o700)
                live = self._live_dir()
                self._live = OxStore(str(live))
                if self._live_dir() != live:  # a staged write of another process ended meanwhile
                    raise StoreBusyError(f"the embedded store at {self.path} changed while it was opened")
                # Only once the live store is ours (RocksDB's lock): what a killed staged write
                # left beside it is then no other process's work in progress.
                staging.sweep(self.path, keep=live)
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
        self._generation_lock = threading.Lock()  # writes of several threads may end together
        self._live_writes = staging.LiveWrites()

    def _live_dir(self) -> Path:
        assert self.path is not None
        try:
            live = staging.live_dir(self.path)
        except ValueError as exc:
            raise StoreError(f"cannot open the embedded store: {exc}") from exc
        if not live.is_dir() and live != self.path:
            raise StoreError(
                f"the embedded store at {self.path} names {live.name} as its live copy ({staging.pointer(self.path)}), "
                "which is missing: restore the whole directory from a backup"
            )
        return live

    @property
    def _store(self) -> OxStore:
        """The store this thread reads and writes: the live one, or its staged copy."""
        staged = getattr(self._staged, "store", None)
        return self._live if staged is None else staged  # (not `or`: an empty store is falsy)

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
            with self._writing():
                self._store.update(sparql)
        except OSError as exc:
            raise StoreError(f"update failed: {exc}") from exc
        finally:
            self._next_generation()

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
            with self._writing():
                self._apply(changeset)
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"the write was refused and nothing was changed: {exc}") from exc
        finally:
            self._next_generation()
        self._written(changeset.insert_count())

    def _apply(self, changeset: Changeset) -> None:
        if getattr(self._staged, "store", None) is not None:
            # A staged copy is all or nothing by its swap: its writes need no transaction,
            # and bulk_load holds none in memory.
            if changeset.has_deletions:
                self._store.update(changeset.deletions().to_sparql_update())
            self._store.bulk_load(changeset.to_nquads(), format=RdfFormat.N_QUADS)
        elif changeset.has_deletions:
            self._store.update(changeset.to_sparql_update())
        else:
            # Pure insertion: a transactional N-Quads load is ~1.5x faster than INSERT DATA.
            self._store.load(changeset.to_nquads(), format=RdfFormat.N_QUADS)

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        """This thread's write: to its staged copy, or to the live store beside other threads'
        (:class:`staging.LiveWrites`)."""
        if getattr(self._staged, "store", None) is not None:
            return contextlib.nullcontext()
        return self._live_writes.write()

    def _next_generation(self) -> None:
        with self._generation_lock:
            self.generation += 1

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
            with self._writing():
                self._store.load(data, format=media_format, to_graph=NamedNode(graph) if graph else None)
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"load failed, nothing was changed: {exc}") from exc
        finally:
            self._next_generation()

    @contextlib.contextmanager
    def staged(self) -> Iterator[Stage]:
        """Writes of this thread go to a copy of the store, which becomes the store at the end if
        the stage is kept (``stage.keep()``), else is discarded; other threads keep reading the
        live store (server/store/staging.py). The caller holds the instance's commit lock
        throughout, and writes of other threads outside it wait (:class:`staging.LiveWrites`): a
        write landing in the live store meanwhile would be lost."""
        if self.path is None or getattr(self._staged, "store", None) is not None:
            raise StoreError("this store cannot stage a write here (in memory, or already staged)")
        # Writes of other threads to the live store wait from before the copy until it has
        # replaced the store (or is thrown away): they would be lost with it.
        with self._live_writes.stage():
            yield from self._stage()

    def _stage(self) -> Iterator[Stage]:
        assert self.path is not None
        staging.sweep(self.path)  # stores replaced by earlier staged writes, copies of killed ones
        copy = staging.next_dir(self.path)
        self._live.flush()
        self._live.backup(str(copy))
        copy.chmod(0o700)
        stage = Stage()
        staged = self._staged.store = OxStore(str(copy))
        try:
            yield stage
            if stage.kept:
                staged.flush()
        finally:
            self._staged.store = None
            self._unflushed = 0
            # What this thread derived from the copy (caches kept per generation) is stale now,
            # whether or not the copy becomes the store.
            self._next_generation()
            if not stage.kept:
                del staged  # closed (its last reference) before its directory goes
                staging.discard(copy)
        if not stage.kept:
            return
        staging.make_live(self.path, copy)
        # The replaced store closes with its last reader; the next sweep removes its directory.
        self._live = staged
        self._next_generation()  # (again: readers of other threads derive from the new store now)

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
        self._live.flush()
        del self._live
