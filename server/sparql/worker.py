"""A SPARQL worker process (``python -m server.sparql.worker FD``), driven by server/sparql/engine.py.

It reads jobs from the connection on file descriptor FD:

- ``("parse", text)``: reads a public query (server/sparql/query.py) and answers ``("ok", Query)``
  or the name of the refusal and its message;
- ``("query", snapshot, text, default, named, format, row_cap)``: opens the store snapshot (read-only,
  kept open while it is current), runs the query with that dataset and answers the written result
  and the seconds that took.

The parent ends the process to stop a job past its time limit.
"""

from __future__ import annotations

import os
import sys
import time
from multiprocessing.connection import Connection
from typing import Any


def _parse(text: str) -> tuple[str, Any]:
    from server.sparql import query

    try:
        return "ok", query.parse_query(text)
    except query.Refused as exc:
        return type(exc).__name__, str(exc)


def serve(conn: Connection) -> None:
    from pyoxigraph import NamedNode
    from pyoxigraph import Store as OxStore

    from server.sparql.results import write_result

    current: tuple[str, Any] | None = None
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        if job[0] == "parse":
            conn.send(_parse(job[1]))
            continue
        _, path, sparql, default, named, fmt, row_cap = job
        start = time.perf_counter()
        try:
            if current is None or current[0] != path:
                current = None
                current = (path, OxStore.read_only(path))
            result = current[1].query(
                sparql,
                default_graph=[NamedNode(g) for g in default] or None,
                named_graphs=[NamedNode(g) for g in named],
            )
            written = write_result(result, fmt, row_cap)
            answer = ("ok", written.body, written.media_type, written.truncated)
        except SyntaxError as exc:
            answer = ("syntax", str(exc), "", False)
        except Exception as exc:  # every failure goes back to the parent as text
            answer = ("error", f"{type(exc).__name__}: {exc}", "", False)
        conn.send((*answer, time.perf_counter() - start))


def cap_memory(limit: int) -> None:
    """Refuse allocations past ``limit`` bytes (RLIMIT_DATA: heap and private mappings): a query
    that would take more ends this process, which the parent answers with a 503."""
    if limit > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


if __name__ == "__main__":
    from server.cpu import restore

    restore()  # started from a request thread, which `serve --pin-cpu` keeps on one CPU
    cap_memory(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    # Below the server's own threads: a heavy public query takes the CPU the others leave.
    os.nice(10)
    serve(Connection(int(sys.argv[1])))
