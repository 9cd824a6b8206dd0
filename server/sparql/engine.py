"""Running public SPARQL queries safely: a time limit that really stops them, and a row cap.

pyoxigraph cannot cancel a running query (Oxigraph's cancellation token is not exposed to
Python), and an aggregate or ORDER BY evaluates its whole input before giving a first row. So,
with the embedded store, queries run in **worker processes** over read-only snapshots of the
store: a query past the time limit is stopped by ending its process, and the server's own
threads are never held. Snapshots are RocksDB checkpoints (``Store.backup``: hard links, a few
milliseconds), taken when the store has changed since the last one.

With a remote store the query goes to the SPARQL server with the same dataset restriction; the
client gives up at the time limit (set the server's own limit too: see docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

from ..errors import BadRequest, CivicfedError, ServiceUnavailable
from ..store import Store, StoreRefused, StoreTimeout
from .dataset import Dataset
from .results import GRAPH_FORMATS, Written, write_result


class QueryTimeout(CivicfedError):
    status, slug, title = 503, "query-timeout", "Query took too long"


class QuerySyntaxError(BadRequest):
    slug, title = "query-syntax", "Malformed query"


class Engine(Protocol):
    """Where public queries run."""

    def run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written: ...

    def close(self) -> None: ...


def open_engine(store: Store, workdir: Path, workers: int) -> Engine:
    """Query processes over snapshots where the store takes them (they can be stopped at the
    time limit), else the store's own server with the limit."""
    if store.snapshots:
        return SnapshotEngine(store, workdir, workers)
    return RemoteEngine(store)


class _Process:
    """A ``python -m server.sparql.worker`` process and our end of its connection."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.sparql.worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.conn.close()


class SnapshotEngine:
    """Worker processes over snapshots of an embedded store."""

    def __init__(self, store: Store, workdir: Path, workers: int = 2) -> None:
        self.store = store
        self.workdir = workdir
        self.size = workers
        self._idle: queue.Queue[_Process] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()
        self._snapshot: tuple[int, Path] | None = None
        self._users: dict[Path, int] = {}

    def _snapshot_path(self) -> Path:
        """A snapshot at least as recent as the store's last write."""
        with self._lock:
            generation = self.store.generation
            if self._snapshot is None or self._snapshot[0] < generation:
                self.workdir.mkdir(parents=True, exist_ok=True)
                path = self.workdir / f"snapshot-{generation}-{uuid.uuid4().hex[:8]}"
                self.store.snapshot(path)
                old = self._snapshot
                self._snapshot = (generation, path)
                if old is not None and self._users.get(old[1], 0) == 0:
                    shutil.rmtree(old[1], ignore_errors=True)
            path = self._snapshot[1]
            self._users[path] = self._users.get(path, 0) + 1
            return path

    def _release(self, path: Path) -> None:
        with self._lock:
            self._users[path] -= 1
            if self._users[path] == 0 and (self._snapshot is None or self._snapshot[1] != path):
                del self._users[path]
                shutil.rmtree(path, ignore_errors=True)

    def _take(self, wait: float) -> _Process:
        with self._lock:
            if self._idle.empty() and self._started < self.size:
                self._started += 1
                return _Process()
        try:
            return self._idle.get(timeout=wait)
        except queue.Empty:
            raise ServiceUnavailable(
                "every SPARQL worker is busy; try again shortly", headers={"Retry-After": "5"}
            ) from None

    def run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written:
        start = time.monotonic()
        worker = self._take(wait=timeout)
        path = self._snapshot_path()
        try:
            worker.conn.send((str(path), sparql, dataset.default_graphs, dataset.named_graphs, fmt, row_cap))
            remaining = max(0.05, timeout - (time.monotonic() - start))
            if not worker.conn.poll(remaining):
                worker.kill()  # the only way to stop a running pyoxigraph query
                with self._lock:
                    self._started -= 1
                raise QueryTimeout(
                    f"the query ran for more than {timeout:g} s and was stopped; "
                    "add LIMIT, narrow the patterns, or query the dumps instead"
                )
            status, body, media_type, truncated = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:  # the process died (out of memory…)
            worker.kill()
            with self._lock:
                self._started -= 1
            raise ServiceUnavailable("the query process failed; the query may be too large") from exc
        finally:
            self._release(path)
        self._idle.put(worker)
        if status == "syntax":
            raise QuerySyntaxError(f"malformed query: {body}")
        if status == "error":
            raise BadRequest(f"the query could not be evaluated: {body}")
        return Written(body, media_type, truncated)

    def close(self) -> None:
        while not self._idle.empty():
            worker = self._idle.get_nowait()
            with contextlib.suppress(BrokenPipeError, OSError):
                worker.conn.send(None)
            worker.kill()
        with self._lock:
            if self._snapshot is not None:
                shutil.rmtree(self._snapshot[1], ignore_errors=True)
                self._snapshot = None


class RemoteEngine:
    """Queries forwarded to the remote SPARQL server, restricted to the public dataset."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written:
        try:
            result = self.store.query(  # type: ignore[call-arg]
                sparql,
                default_graph=list(dataset.default_graphs),
                named_graphs=list(dataset.named_graphs),
                timeout=timeout,
                graph_result=fmt in GRAPH_FORMATS,  # the endpoint knows the form: no parse again
            )
        except SyntaxError as exc:
            raise QuerySyntaxError(f"malformed query: {exc}") from exc
        except StoreTimeout as exc:
            if "estimated execution time" in str(exc):
                raise QueryTimeout(
                    f"the query was stopped before it ran: the store estimates it would run for more than "
                    f"{timeout:g} s; add LIMIT, narrow the patterns, or query the dumps instead"
                ) from exc
            raise QueryTimeout(
                f"the query ran for more than {timeout:g} s and was stopped; "
                "add LIMIT, narrow the patterns, or query the dumps instead"
            ) from exc
        except StoreRefused as exc:
            raise QuerySyntaxError(f"the query was refused: {exc}") from exc
        return write_result(result, fmt, row_cap)

    def close(self) -> None:
        pass
