"""Keeping a worker process's request threads on one CPU (``civicfed serve --pin-cpu``).

Only one thread runs Python at a time, and pyoxigraph hands the GIL back on every call. When the
request threads of one process are spread over several cores, each hand-over wakes a thread on
another core, and a core spends more time waiting for the GIL than running: on 2 cores, pinning
the request threads of one worker to one CPU took small reads from ~850 to ~2,300 requests/s
(docs/deploy.md). Threads started before the pin (RocksDB's compaction and flush threads) and the
processes the server starts (SPARQL query processes) keep every CPU.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: The CPUs the server was started with, for the processes it starts to go back to.
ENV = "CIVICFED_CPUS"


def pin_this_thread(index: int) -> int | None:
    """Pin the calling thread, and the threads it starts from now on, to one allowed CPU.

    ``index`` spreads worker processes over the CPUs (worker n gets the n-th). Returns the CPU, or
    None where there is nothing to choose from (one CPU) or no affinity call (not Linux).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    os.environ.setdefault(ENV, ",".join(map(str, allowed)))
    if len(allowed) < 2:
        return None
    cpu = allowed[index % len(allowed)]
    os.sched_setaffinity(0, {cpu})  # on Linux, pid 0 is the calling thread, not the whole process
    return cpu


def restore() -> None:
    """In a process the server started: run on every CPU the server was started with."""
    cpus = os.environ.get(ENV)
    if cpus and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
        except (OSError, ValueError) as exc:  # CPUs taken away since: keep what we have
            log.warning("could not restore the CPU affinity %s: %s", cpus, exc)
