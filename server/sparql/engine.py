"""Running public SPARQL queries safely: reading them, a time limit that really stops them, a row cap.

Two things a public query can make expensive run in **worker processes** (server/sparql/worker.py),
never in a request thread, so that one query cannot hold the server (a request thread doing Python
work holds the GIL for every other thread):

- **reading the query**: rdflib's SPARQL grammar is pure Python, and some texts take seconds to
  parse. A text not seen recently is parsed by a worker within the time limit; the answer (a
  :class:`~server.sparql.query.Query`, or why it is refused) is kept for recent texts. A short text
  that holds none of the keywords of a dataset clause, SERVICE or an update needs only its form,
  read in the request thread from the prologue (``query.quick_read``).
- **running it on the embedded store**: pyoxigraph cannot cancel a running query, and an aggregate or
  ORDER BY evaluates its whole input before giving a first row. Queries run over read-only snapshots
  of the store (RocksDB checkpoints: hard links, a few milliseconds, taken when the store has
  changed since the last one); a query past the time limit is stopped by ending its process.

With a store that takes no snapshots (a SPARQL server) the query goes to that server with the same
dataset restriction; the client gives up at the time limit (set the server's own limit too: see
docs/deploy.md).
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from ..errors import BadRequest, CivicfedError, Forbidden, PayloadTooLarge, ServiceUnavailable
from ..store import Store, StoreRefused, StoreTimeout
from .dataset import Dataset
from .results import GRAPH_FORMATS, Written, write_result

#: Texts whose reading (a Query, or the error refusing it) is kept: clients repeat queries.
PARSE_CACHE_SIZE = 256
PARSE_CACHE_MAX_LENGTH = 8_192


class QueryTimeout(CivicfedError):
    status, slug, title = 503, "query-timeout", "Query took too long"


class QuerySyntaxError(BadRequest):
    slug, title = "query-syntax", "Malformed query"


#: How a worker's refusal of a text is answered (server/sparql/query.py: Refused and subclasses).
REFUSALS: dict[str, type[CivicfedError]] = {
    "Malformed": QuerySyntaxError,
    "ReadOnly": Forbidden,
    "TooLong": PayloadTooLarge,
    "Refused": BadRequest,
}


class Engine(Protocol):
    """Where public queries are read and run."""

    def parse(self, sparql: str, timeout: float) -> Any: ...

    def run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written: ...

    def close(self) -> None: ...


def open_engine(store: Store, workdir: Path, *, workers: int = 2, queue: int = 2, memory_limit: int = 0) -> Engine:
    """Query processes over snapshots where the store takes them (they can be stopped at the
    time limit), else the store's own server with the limit; ``workers`` processes at most,
    ``queue`` jobs waiting for one at most, ``memory_limit`` bytes per process (0: no cap)."""
    pool = _Pool(workers, queue, memory_limit)
    if store.snapshots:
        return SnapshotEngine(store, workdir, pool)
    return RemoteEngine(store, pool)


class _Process:
    """A ``python -m server.sparql.worker`` process and our end of its connection."""

    def __init__(self, memory_limit: int) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.sparql.worker", str(theirs.fileno()), str(memory_limit)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.conn.close()


class _Gate:
    """``size`` jobs at a time; ``waiting`` more may wait for a place until their time limit, the
    next ones are refused at once (503 with Retry-After)."""

    def __init__(self, size: int, waiting: int) -> None:
        self._free = threading.BoundedSemaphore(size)
        self.waiting = waiting
        self._waiters = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def admit(self, wait: float) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            with self._lock:
                if self._waiters >= self.waiting:
                    raise ServiceUnavailable(
                        "every SPARQL worker is busy and the queue is full; try again shortly",
                        headers={"Retry-After": "5"},
                    )
                self._waiters += 1
            try:
                if not self._free.acquire(timeout=wait):
                    raise ServiceUnavailable(
                        "every SPARQL worker is busy; try again shortly", headers={"Retry-After": "5"}
                    )
            finally:
                with self._lock:
                    self._waiters -= 1
        try:
            yield
        finally:
            self._free.release()


class _Pool:
    """At most ``size`` worker processes, started on demand. A job waits for a busy one until its
    time limit, but only ``waiting`` jobs at a time: the others are refused at once (503), so that
    public queries never hold more request threads than ``size + waiting``. A job past its limit
    ends its process (the only way to stop pyoxigraph or rdflib)."""

    def __init__(self, size: int, waiting: int = 2, memory_limit: int = 0) -> None:
        self.size, self.memory_limit = size, memory_limit
        self.gate = _Gate(size, waiting)
        self._idle: queue.Queue[_Process] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()

    def _take(self) -> _Process:
        """A worker: the gate admitted the job, so one is idle or may be started."""
        with self._lock:
            if self._idle.empty() and self._started < self.size:
                self._started += 1
                return _Process(self.memory_limit)
        return self._idle.get()

    def _discard(self, worker: _Process) -> None:
        worker.kill()
        with self._lock:
            self._started -= 1

    def call(
        self, job: tuple[Any, ...], timeout: float, overdue: str, timings: dict[str, float] | None = None
    ) -> tuple[Any, ...]:
        """Send ``job`` to a worker and return its answer, or stop it after ``timeout`` seconds
        (QueryTimeout saying ``overdue``). ``timings`` receives ``wait`` (for a place and a
        process) and ``worker`` (from sending the job to having the answer), in seconds."""
        start = time.monotonic()
        with self.gate.admit(timeout):
            worker = self._take()
            sent = time.monotonic()
            try:
                worker.conn.send(job)
                if not worker.conn.poll(max(0.05, timeout - (time.monotonic() - start))):
                    self._discard(worker)
                    raise QueryTimeout(overdue)
                answer = worker.conn.recv()
            except (EOFError, OSError) as exc:  # the process died (out of memory…)
                self._discard(worker)
                raise ServiceUnavailable("the query process failed; the query may be too large") from exc
            self._idle.put(worker)
            if timings is not None:
                timings["wait"], timings["worker"] = sent - start, time.monotonic() - sent
            return answer

    def close(self) -> None:
        while not self._idle.empty():
            worker = self._idle.get_nowait()
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            worker.kill()


class _Reader:
    """Reading queries in worker processes, with the readings of recent texts kept."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self._cache: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def parse(self, sparql: str, timeout: float) -> Any:
        """The query's reading (server/sparql/query.py: Query), or the error refusing it."""
        from . import query  # rdflib's grammar: loaded by the first query, not at start

        quick = query.quick_read(sparql)  # a short text without a dataset clause: its form only
        if quick is not None:
            return quick
        with self._lock:
            found = self._cache.get(sparql)
            if found is not None:
                self._cache.move_to_end(sparql)
        if found is None:
            found = self.pool.call(
                ("parse", sparql),
                timeout,
                f"the query could not be read within {timeout:g} s (a very long or deeply nested text?)",
            )
            if len(sparql) <= PARSE_CACHE_MAX_LENGTH:
                with self._lock:
                    self._cache[sparql] = found
                    if len(self._cache) > PARSE_CACHE_SIZE:
                        self._cache.popitem(last=False)
        status, value = found
        if status != "ok":
            raise REFUSALS[status](value)
        return value


class SnapshotEngine:
    """Worker processes over snapshots of an embedded store.

    Snapshots are copies of the store, private votes and deleted data included: none outlives
    the engine. The ones a stopped process left behind (a crash, a kill) are removed when the next
    engine starts (the process owning the embedded store owns its snapshots), the engine's own when
    it closes, at the latest when its process exits.
    """

    def __init__(self, store: Store, workdir: Path, pool: _Pool) -> None:
        self.store = store
        self.workdir = workdir
        self.pool = pool
        self.parse = _Reader(self.pool).parse
        self._lock = threading.Lock()
        self._snapshot: tuple[int, Path] | None = None
        self._users: dict[Path, int] = {}
        shutil.rmtree(workdir, ignore_errors=True)
        atexit.register(self.close)

    def _snapshot_path(self) -> Path:
        """A snapshot at least as recent as the store's last write."""
        with self._lock:
            generation = self.store.generation
            if self._snapshot is None or self._snapshot[0] < generation:
                path = self.workdir / f"snapshot-{generation}-{uuid.uuid4().hex[:8]}"
                try:
                    # Inside the try: on a full disk the first query since the start cannot even
                    # create the snapshot directory (ENOSPC), and that is a 503 too, not a 500.
                    self.workdir.mkdir(parents=True, exist_ok=True)
                    self.store.snapshot(path)
                except OSError as exc:  # a full disk: the query cannot run now, nothing is wrong with it
                    shutil.rmtree(path, ignore_errors=True)
                    raise ServiceUnavailable(
                        f"the query cannot run now: no snapshot of the store could be taken ({exc.strerror or exc})",
                        headers={"Retry-After": "60"},
                    ) from exc
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

    def run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written:
        path = self._snapshot_path()
        try:
            job = ("query", str(path), sparql, dataset.default_graphs, dataset.named_graphs, fmt, row_cap)
            overdue = (
                f"the query ran for more than {timeout:g} s and was stopped; "
                "add LIMIT, narrow the patterns, or query the dumps instead"
            )
            timings: dict[str, float] = {}
            status, body, media_type, truncated, ran = self.pool.call(job, timeout, overdue, timings)
        finally:
            self._release(path)
        if status == "syntax":
            raise QuerySyntaxError(f"malformed query: {body}")
        if status == "error":
            raise BadRequest(f"the query could not be evaluated: {body}")
        # `ran`: the query and the writing of its result, in the process; the rest of the round
        # trip is the hand-off (sending the job, waking the process, bringing the body back).
        timings = {"wait": timings["wait"], "run": ran, "handoff": max(0.0, timings["worker"] - ran)}
        return Written(body, media_type, truncated, timings)

    def close(self) -> None:
        self.pool.close()
        with self._lock:
            self._snapshot = None
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.close)


class RemoteEngine:
    """Queries forwarded to the remote SPARQL server, restricted to the public dataset; read by
    worker processes first, like every public query."""

    def __init__(self, store: Store, pool: _Pool) -> None:
        self.store = store
        self.pool = pool
        self.parse = _Reader(self.pool).parse

    def run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written:
        start = time.monotonic()
        with self.pool.gate.admit(timeout):  # the same bound as query processes: threads stay free
            admitted = time.monotonic()
            written = self._run(sparql, dataset, fmt, row_cap, timeout)
        written.timings = {"wait": admitted - start, "run": time.monotonic() - admitted}
        return written

    def _run(self, sparql: str, dataset: Dataset, fmt: str, row_cap: int, timeout: float) -> Written:
        try:
            result = self.store.query(
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
        self.pool.close()
