"""A validating process (``python -m server.ingest.worker FD``), driven by server/ingest/validate.py:
lists of pending records in on the connection on file descriptor FD, their validation out, until
the connection closes (the server stopped, whatever way).
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from server.ingest.validate import check_here


def serve(conn: Connection) -> None:
    while True:
        try:
            pending = conn.recv()
        except EOFError:
            return
        conn.send(check_here(pending))


if __name__ == "__main__":
    from server.cpu import restore

    restore()  # started from a request thread, which `serve --pin-cpu` keeps on one CPU
    serve(Connection(int(sys.argv[1])))
