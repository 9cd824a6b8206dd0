"""Validating the records of a large source in worker processes.

Validation (marshmallow, pure Python) is the largest share of an ingest's CPU time that holds the
GIL: in the server's one process, it is what keeps two territories' ingests from running side by
side on two cores. A source of ``threshold`` records or more is validated by the idle ones of
``workers`` processes, its records split between them, while the request thread waits with the
GIL released; smaller writes (a PUT, a short batch) stay in the thread, where a round trip to a
process would cost more than it saves.

The processes (``python -m server.ingest.worker FD``, like the SPARQL query processes) start on
the first large source, on every CPU the server was started with, and end when their connection
to the server closes: with the server, whatever way it stops.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

from ..errors import CivicfedError
from ..model.kinds import KINDS
from ..records import Records

#: A record waiting to be validated: its kind's name and its JSON.
Pending = tuple[str, Any]
#: What validation gives back for it: the loaded record, or why it was rejected.
Checked = dict[str, Any] | CivicfedError


def check_here(pending: Sequence[Pending]) -> list[Checked]:
    """Validate in this thread."""
    out: list[Checked] = []
    for kind_name, data in pending:
        try:
            out.append(Records.prepare(KINDS[kind_name], data))
        except CivicfedError as err:
            out.append(err)
    return out


class _Process:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.ingest.worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        try:
            self.proc.wait(timeout=10)  # the closed connection ends it
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Validator:
    """Validates records, in worker processes for large sources (``workers`` 0: always here)."""

    def __init__(self, workers: int, *, threshold: int = 2_000) -> None:
        self.workers, self.threshold = workers, threshold
        self._idle: queue.SimpleQueue[_Process] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        #: Every process started and not yet stopped (a closing server stops them all).
        self.processes: set[_Process] = set()

    def check(self, pending: Sequence[Pending]) -> list[Checked]:
        """Each record loaded by its kind's schema, or the error rejecting it, in order."""
        if self.workers < 1 or len(pending) < self.threshold:
            return check_here(pending)
        with self._processes() as processes:
            if not processes:  # every process busy with another ingest: this one goes on here
                return check_here(pending)
            size = -(-len(pending) // len(processes))
            parts = [pending[i : i + size] for i in range(0, len(pending), size)]
            answered: list[_Process] = []
            try:
                for process, part in zip(processes, parts, strict=False):
                    process.conn.send(list(part))
                    answered.append(process)
                out: list[Checked] = []
                for process in answered:
                    out.extend(process.conn.recv())
                return out
            except (EOFError, OSError):
                # A process died (killed, out of memory): it is replaced next time; validate here.
                for process in processes:
                    self._forget(process)
                processes.clear()
                return check_here(pending)

    @contextlib.contextmanager
    def _processes(self) -> Iterator[list[_Process]]:
        """The idle processes (started up to ``workers``), given back after use."""
        taken: list[_Process] = []
        with self._lock:
            while not self._closed:
                try:
                    taken.append(self._idle.get_nowait())
                except queue.Empty:
                    break
            while not self._closed and len(self.processes) < self.workers:
                process = _Process()
                self.processes.add(process)
                taken.append(process)
        try:
            yield taken
        finally:
            for process in taken:
                if not self._closed:  # else the closing server stopped it
                    self._idle.put(process)

    def _forget(self, process: _Process) -> None:
        process.stop()
        with self._lock:
            self.processes.discard(process)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            while True:
                try:
                    self._idle.get_nowait()
                except queue.Empty:
                    break
            # Busy ones too: their ingest then validates in its thread (their connection closed).
            for process in self.processes:
                process.stop()
            self.processes.clear()
