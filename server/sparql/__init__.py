"""Public SPARQL queries: which graphs a query may see (``dataset``), what a query text is
(``query``: a real parse), where it is read and runs (``engine``: killable worker processes, over
snapshots for the embedded store, or the store's own server; ``worker``: the process), how results
are written (``results``), what the public dataset holds (``stats``).

The HTTP endpoint is a surface (server/web/sparql.py); this package knows nothing of HTTP, and
imports nothing heavy, so that a query process starts quickly.
"""
