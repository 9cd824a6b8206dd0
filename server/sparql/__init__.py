"""Public SPARQL queries: which graphs a query may see (``dataset``), what a query text is
(``text``), where it runs (``engine``: killable query processes over snapshots, or the store's
own server; ``worker``: the query process), how results are written (``results``).

The HTTP endpoint is a surface (server/web/sparql.py); this package knows nothing of HTTP, and
imports nothing heavy, so that a query process starts quickly.
"""
