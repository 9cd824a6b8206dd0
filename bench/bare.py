"""The bare baseline of the dereferencing benchmark: Flask + pyoxigraph doing the same look-up as
``GET /id/…`` (the resource's triples and its ``#`` nodes in its territory graph, as Turtle) and
nothing else — no negotiation, no index, no caching headers — under the same gunicorn settings.

``python -m bench.bare STORE_DIR BASE_IRI PORT WORKERS THREADS [pin]``
"""

from __future__ import annotations

import sys

from flask import Flask, Response, abort
from pyoxigraph import NamedNode, RdfFormat, Store, Triple, serialize


def make_app(store_dir: str, base: str) -> Flask:
    store = Store.read_only(store_dir)  # each worker process opens it; read-only openers may share
    app = Flask(__name__)

    @app.get("/id/<path:path>")
    def deref(path: str) -> Response:
        iri = f"{base}/id/{path}"
        graph = NamedNode(f"{base}/graph/{path.split('/', 1)[0]}")
        triples, pending, seen = [], [iri], set()
        while pending:
            s = pending.pop()
            if s in seen:
                continue
            seen.add(s)
            for q in store.quads_for_pattern(NamedNode(s), None, None, graph):
                triples.append(Triple(q.subject, q.predicate, q.object))
                if isinstance(q.object, NamedNode) and q.object.value.startswith(iri + "#"):
                    pending.append(q.object.value)
        if not triples:
            abort(404)
        return Response(serialize(triples, format=RdfFormat.TURTLE), mimetype="text/turtle")

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    return app


if __name__ == "__main__":
    from server.serve import run_wsgi

    store_dir, base, port, workers, threads = sys.argv[1:6]
    run_wsgi(
        lambda: make_app(store_dir, base),
        host="127.0.0.1",
        port=int(port),
        workers=int(workers),
        threads=int(threads),
        pin_cpu=sys.argv[6:7] == ["pin"],
    )
