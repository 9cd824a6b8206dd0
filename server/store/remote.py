"""Remote store: any SPARQL 1.1 server, through the W3C protocols only.

SPARQL 1.1 Query, SPARQL 1.1 Update and the Graph Store HTTP Protocol (GSP): Oxigraph server,
Virtuoso, Apache Jena Fuseki, GraphDB, Amazon Neptune… Several stateless civicfed processes can
share one such store.

Where servers differ, the difference is handled here and only here:

================  =====================  ======================  ==============================
server            query endpoint         update endpoint         graph store endpoint
================  =====================  ======================  ==============================
Oxigraph server   ``/query``             ``/update``             ``/store``
Virtuoso 7        ``/sparql``            ``/sparql`` (same)      ``/sparql-graph-crud``
Fuseki            ``/{dataset}/query``   ``/{dataset}/update``   ``/{dataset}/data``
================  =====================  ======================  ==============================

The update and graph-store URLs are derived from the query URL by these conventions and can be
set explicitly. Other differences met so far:

- Virtuoso 7 compiles each SPARQL request to SQL and refuses requests of more than ~2,000 triples
  ("generated SQL text has exceeded 10000 lines", "memory exhausted"): behind a ``/sparql``
  endpoint, updates are kept under 500 statements and VALUES lists under 100 terms; bigger
  writes are staged (below).
- Virtuoso echoes each ``default-graph-uri`` as an ``X-SPARQL-default-graph`` response header;
  Python's ``http.client`` refuses answers of more than 100 headers, so the limit is raised.
- Virtuoso stores ``geo:wktLiteral`` values as its own ``virtrdf:Geometry`` type, in single
  precision: results are given back the ``geo:wktLiteral`` datatype here (the precision is lost;
  civicfed's JSON reads coordinates from ``schema:latitude``/``schema:longitude``, exact decimals).
- Virtuoso writes booleans as ``"1"``, canonicalises dateTime fractions to milliseconds and
  answers JSON results with the legacy ``typed-literal`` type (pyoxigraph's parser accepts it);
  civicfed re-formats the values it reads, so they do not reach clients.
- Virtuoso answers a query its SPARQL compiler refuses (SQL state 37000, e.g. a NUL character in
  a string, which SPARQL 1.1 allows) with HTTP 500 where other servers answer 400: both are
  raised as ``StoreRefused``, so the public endpoint answers 400 with the store's message.

Atomicity. A changeset small enough goes in one update request, which a SPARQL 1.1 store applies
atomically. A larger one is *staged*: its triples are posted (GSP) into internal staging graphs,
then one small update swaps them in. The swap deletes the replaced subjects only if the staging
marker still exists, so re-running it after a lost response is harmless: every request this
module sends is idempotent, and is retried with backoff on network errors and on 502/503/504.
"""

from __future__ import annotations

import http.client
import io
import logging
import random
import re
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from pyoxigraph import (
    Literal,
    NamedNode,
    Quad,
    QueryResultsFormat,
    QuerySolutions,
    RdfFormat,
    parse,
    parse_query_results,
    serialize,
)

from vocabularies import GEO, VIRTRDF

from .base import Changeset, Description, QueryResult, Store, StoreError, StoreRefused, StoreTimeout

log = logging.getLogger(__name__)

# Virtuoso answers one header per default graph of the query (see the module doc).
http.client._MAXHEADERS = max(getattr(http.client, "_MAXHEADERS", 100), 10_000)  # type: ignore[attr-defined]

RESULTS_JSON = "application/sparql-results+json"
N_TRIPLES = "application/n-triples"
RETRY_STATUSES = {502, 503, 504}
VIRTUOSO_SYNTAX_ERROR = re.compile(r"^Virtuoso 37000 ")  # its SPARQL compiler's errors (module doc)
#: SQLSTATE 40001, a serialisation failure ("Error SR172: Transaction deadlocked"): Virtuoso rolled
#: the request's transaction back, meeting another writer's, and it is to be run again, as SQL
#: clients do. Several civicfed processes writing to one Virtuoso meet it.
VIRTUOSO_DEADLOCK = re.compile(r"^Virtuoso 40001 ")
VIRTUOSO_GEOMETRY = VIRTRDF.Geometry
WKT_LITERAL = NamedNode(GEO.wktLiteral)
STAGE_CHUNK = 2 * 1024 * 1024  # bytes of N-Triples per GSP request when staging
#: Staging graphs: transient, unique per write, never served.
STAGING_PREFIX = "urn:civicfed:staging:"
DROP_FROM = "urn:civicfed:dropFrom"
MARKER = "urn:civicfed:marker"
#: In a scope's registry graph, ``<registry> PENDING <staging graph>`` until the swap.
PENDING = "urn:civicfed:pending"


def derive_endpoints(query_url: str) -> tuple[str, str, str]:
    """Update and graph-store URLs by the conventions of the common servers (see module doc)."""
    parts = urlsplit(query_url)
    path = parts.path.rstrip("/")

    def at(new_path: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, new_path, "", ""))

    if path.endswith("/sparql"):  # Virtuoso (and GraphDB-style single endpoints)
        return query_url, query_url, at(path.removesuffix("/sparql") + "/sparql-graph-crud")
    if path.endswith("/query"):
        base = path.removesuffix("/query")
        if base == "":  # Oxigraph server at the root
            return query_url, at("/update"), at("/store")
        return query_url, at(base + "/update"), at(base + "/data")  # Fuseki dataset
    if path in ("", "/"):  # a bare Oxigraph server URL
        return at("/query"), at("/update"), at("/store")
    return query_url, query_url, query_url


def _term(value: Any) -> str:
    """A pyoxigraph term (or IRI string) in SPARQL syntax."""
    if isinstance(value, str):
        return f"<{value}>"
    return str(value)


class RemoteStore(Store):
    backend = "remote"
    shared = True

    def __init__(
        self,
        query_url: str,
        *,
        update_url: str | None = None,
        graph_store_url: str | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        max_update_bytes: int = 4 * 1024 * 1024,
        max_update_statements: int | None = None,
        staging_scope: str = "",
    ) -> None:
        q, u, g = derive_endpoints(query_url)
        # The writers of one instance share a scope: its staging graphs are named under it, and
        # listed in its registry graph until swapped in, so that what a killed writer left can be
        # found and dropped by the next (discard_leftovers) without touching other instances'.
        self.staging_scope = staging_scope
        self.staging_registry = f"{STAGING_PREFIX}{staging_scope}:registry"
        self.query_url = q
        self.update_url = update_url or u
        self.graph_store_url = graph_store_url or g
        self.timeout = timeout
        self.retries = retries
        self.max_update_bytes = max_update_bytes
        # Virtuoso-style single endpoints compile requests to SQL, with tight size limits.
        compiled = urlsplit(q).path.rstrip("/").endswith("/sparql")
        self.compiled = compiled
        self.max_update_statements = max_update_statements or (500 if compiled else 50_000)
        self.values_chunk = 100 if compiled else 500
        self.http = requests.Session()
        if user:
            self.http.auth = (user, password or "")
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        self.http.headers["User-Agent"] = "civicfed (remote store)"

    # -- HTTP --------------------------------------------------------------------------------
    def _send(self, method: str, url: str, what: str, retries: int | None = None, **kwargs: Any) -> requests.Response:
        """One idempotent request, retried with exponential backoff on transient failures."""
        kwargs.setdefault("timeout", (5, self.timeout))
        retries = self.retries if retries is None else retries
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                resp = self.http.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == retries:
                    raise StoreError(f"{what}: the SPARQL store at {url} did not answer ({exc})") from exc
            else:
                again = resp.status_code in RETRY_STATUSES or (
                    resp.status_code == 500 and VIRTUOSO_DEADLOCK.match(resp.text) is not None
                )
                if not again or attempt == retries:
                    if resp.status_code >= 400:
                        body = resp.text.strip().replace("\n", " ")[:500]
                        message = f"{what}: the SPARQL store refused it (HTTP {resp.status_code}): {body}"
                        if resp.status_code == 400 or VIRTUOSO_SYNTAX_ERROR.match(body):
                            # Virtuoso echoes the query it compiled, with its own pragmas: not ours to show.
                            raise StoreRefused(message.split(" SPARQL query: ")[0])
                        raise StoreError(message)
                    return resp
            log.warning("%s: retrying (%d/%d)", what, attempt + 1, retries)
            # Jittered: two writers that deadlocked each other do not meet again at the same instant.
            time.sleep(delay * random.uniform(1, 1.5))
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _select_raw(self, sparql: str, params: list[tuple[str, str]] | None = None) -> bytes:
        data = [("query", sparql), *(params or [])]
        return self._send("POST", self.query_url, "query", data=data, headers={"Accept": RESULTS_JSON}).content

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
        params: list[tuple[str, str]] = []
        if default_graph is None and union_default_graph:
            default_graph = self.graphs()
        for g in default_graph or ():
            params.append(("default-graph-uri", g))
        for g in named_graphs or ():
            params.append(("named-graph-uri", g))
        # Ask for what the form answers: Virtuoso would send a CONSTRUCT as JSON solutions.
        accept = f"{N_TRIPLES}, text/turtle;q=0.9" if graph_result else RESULTS_JSON
        headers = {"Accept": accept}
        extra: dict[str, Any] = {}
        if timeout is not None:  # a public query: give up at its limit, and do not retry it
            extra = {"timeout": (5, timeout + 1), "retries": 0}
            if self.compiled:  # Virtuoso stops the query itself at `timeout` ms (see below)
                params.append(("timeout", str(int(timeout * 1000))))
        try:
            resp = self._send(
                "POST", self.query_url, "query", data=[("query", sparql), *params], headers=headers, **extra
            )
        except StoreError as exc:
            if timeout is not None and ("did not answer" in str(exc) or "estimated execution time" in str(exc)):
                raise StoreTimeout(f"query: stopped at its limit of {timeout:g} s ({exc})") from exc
            raise
        if resp.headers.get("X-SQL-State") == "S1TAT":
            # Virtuoso's "anytime" answer: the rows found before the limit, as if complete.
            raise StoreTimeout(f"query: stopped at its limit of {timeout:g} s (partial answer discarded)")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if media_type in (N_TRIPLES, "text/plain", "text/turtle", "application/rdf+xml"):
                fmt = RdfFormat.from_media_type(media_type) or RdfFormat.N_TRIPLES
                triples = [(t.subject, t.predicate, _standard(t.object)) for t in parse(resp.content, format=fmt)]
                return _Triples(triples)  # type: ignore[return-value]
            results = parse_query_results(resp.content, QueryResultsFormat.JSON)
            if isinstance(results, QuerySolutions) and VIRTUOSO_GEOMETRY.encode() in resp.content:
                return _Solutions(results)  # type: ignore[return-value]
            return results
        except (SyntaxError, ValueError) as exc:
            raise StoreError(f"query: cannot read the store's answer ({media_type}): {exc}") from exc

    def select(self, sparql: str, **kwargs: object) -> list[Any]:
        result = self.query(sparql, **kwargs)  # type: ignore[arg-type]
        if not isinstance(result, QuerySolutions | _Solutions):
            raise StoreError("expected a SELECT query")
        return list(result)

    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        obj: object | None = None,
        graph: str | None = None,
    ) -> Iterator[Quad]:
        s = _term(subject) if subject is not None else "?s"
        p = _term(predicate) if predicate is not None else "?p"
        o = _term(obj) if obj is not None else "?o"
        g = _term(graph) if graph is not None else "?g"
        rows = self.select(f"SELECT * WHERE {{ GRAPH {g} {{ {s} {p} {o} }} }}")
        for r in rows:
            yield Quad(
                NamedNode(subject) if subject is not None else r["s"],
                NamedNode(predicate) if predicate is not None else r["p"],
                obj if obj is not None else r["o"],  # type: ignore[arg-type]
                NamedNode(graph) if graph is not None else r["g"],
            )

    def describe(self, subjects: Sequence[str], graph: str) -> Description:
        out: Description = {}
        pending = [(s, s + "#") for s in subjects]
        while pending:
            batch, pending = pending[: self.values_chunk], pending[self.values_chunk :]
            prefixes = {s: prefix for s, prefix in batch}
            values = " ".join(f"<{s}>" for s, _ in batch)
            rows = self.select(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ VALUES ?s {{ {values} }} ?s ?p ?o }} }}")
            for r in rows:
                s, o = r["s"].value, r["o"]
                out.setdefault(s, []).append((r["p"].value, o))
                node = o.value if isinstance(o, NamedNode) else ""
                if node.startswith(prefixes[s]) and node not in out and all(node != x for x, _ in pending):
                    pending.append((node, prefixes[s]))
        return out

    def graphs(self) -> list[str]:
        # GROUP BY, not DISTINCT: Virtuoso 7 answers the GROUP BY form from its graph index in
        # milliseconds and times out on the DISTINCT form at ~10^5 quads.
        rows = self.select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        return [r["g"].value for r in rows if isinstance(r["g"], NamedNode)]

    def count(self, graph: str | None = None) -> int:
        pattern = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "GRAPH ?g { ?s ?p ?o }"
        rows = self.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ {pattern} }}")
        return int(rows[0]["n"].value)

    def dump(self, output: IO[bytes], media_format: RdfFormat, graph: str | None = None) -> None:
        """Each graph is downloaded to a temporary file, then parsed and written as it is read:
        memory stays flat whatever the size of the graphs."""
        from pyoxigraph import Triple

        graphs = [graph] if graph is not None else self.graphs()
        with tempfile.TemporaryDirectory(prefix="civicfed-dump-") as tmp:

            def quads() -> Iterator[Quad]:
                for i, g in enumerate(graphs):
                    path, fmt = self._download_graph(g, Path(tmp) / f"{i}")
                    name = NamedNode(g)
                    for t in parse(path=str(path), format=fmt):
                        yield Quad(t.subject, t.predicate, _standard(t.object), name)
                    path.unlink()

            if media_format in (RdfFormat.N_QUADS, RdfFormat.TRIG):
                serialize(quads(), output, media_format)
            else:
                serialize((Triple(q.subject, q.predicate, q.object) for q in quads()), output, media_format)

    def _download_graph(self, graph: str, path: Path) -> tuple[Path, RdfFormat]:
        resp = self._send(
            "GET",
            self.graph_store_url,
            f"read graph {graph}",
            params={"graph": graph},
            headers={"Accept": N_TRIPLES},
            stream=True,
        )
        media_type = resp.headers.get("Content-Type", N_TRIPLES).split(";")[0].strip()
        try:
            with path.open("wb") as f:
                for chunk in resp.iter_content(1 << 20):
                    f.write(chunk)
        except requests.RequestException as exc:
            raise StoreError(f"read graph {graph}: the download broke off ({exc})") from exc
        finally:
            resp.close()
        return path, RdfFormat.from_media_type(media_type) or RdfFormat.N_TRIPLES

    # -- writes ------------------------------------------------------------------------------
    def update(self, sparql: str) -> None:
        self._send(
            "POST",
            self.update_url,
            "update",
            data=sparql.encode("utf-8"),
            headers={"Content-Type": "application/sparql-update; charset=utf-8"},
        )

    def apply(self, changeset: Changeset) -> None:
        if changeset.is_empty():
            return
        if changeset.insert_count() <= self.max_update_statements:
            request = changeset.to_sparql_update(self.values_chunk)
            if len(request) <= self.max_update_bytes:
                self.update(request)  # idempotent: the same deletions then the same insertions
                return
        lines = {g: [s + " .\n" for s in statements] for g, statements in changeset.insert.items()}
        self._staged(changeset.replace, lines, clear=sorted(changeset.clear))

    def replace_graph(self, graph: str, data: bytes | str, media_format: RdfFormat) -> int:
        try:
            triples = list(parse(data, format=media_format, base_iri=graph))
        except (SyntaxError, ValueError) as exc:
            raise StoreError(f"cannot parse the new content of {graph}: {exc}") from exc
        from pyoxigraph import Triple

        text = serialize([Triple(t.subject, t.predicate, t.object) for t in triples], format=RdfFormat.N_TRIPLES)
        self._staged({}, {graph: text.decode().splitlines(keepends=True)}, clear=[graph])
        return len(triples)

    def load(self, data: bytes | str | IO[bytes], media_format: RdfFormat, graph: str | None = None) -> None:
        if hasattr(data, "read"):
            data = data.read()  # type: ignore[union-attr]
        try:
            parsed = list(parse(data, format=media_format))  # type: ignore[arg-type]
        except (SyntaxError, ValueError) as exc:
            raise StoreError(f"load failed, nothing was changed: {exc}") from exc
        by_graph: dict[str, list[str]] = {}
        for q in parsed:
            g = graph or (q.graph_name.value if isinstance(getattr(q, "graph_name", None), NamedNode) else None)
            if g is None:
                raise StoreError("load: civicfed stores triples in named graphs only; give a graph")
            buf = io.BytesIO()
            from pyoxigraph import Triple

            serialize([Triple(q.subject, q.predicate, q.object)], buf, RdfFormat.N_TRIPLES)
            by_graph.setdefault(g, []).append(buf.getvalue().decode())
        self._staged({}, by_graph)

    def _staged(self, replace: dict[str, set[str]], lines: dict[str, list[str]], clear: Sequence[str] = ()) -> None:
        """Post triples into staging graphs, then swap them in with one short, idempotent update.

        The subjects to replace are staged too, as ``<s> cf:dropFrom <graph>`` triples in a
        drop list, so that the swap is a fixed handful of operations whatever the size of the
        write. The drop list doubles as the marker: once it is gone, re-running the swap does
        nothing.
        """
        token = uuid.uuid4().hex  # staging graph names no other writer can use
        staging = {g: f"{STAGING_PREFIX}{self.staging_scope}:{token}:{i}" for i, g in enumerate(lines)}
        drops = f"{STAGING_PREFIX}{self.staging_scope}:{token}:drop"
        registry = self.staging_registry
        pending = " ".join(f"<{registry}> <{PENDING}> <{g}> ." for g in (*staging.values(), drops))
        # Registered before anything is posted: a writer killed from here on leaves names to find.
        self.update(f"INSERT DATA {{ GRAPH <{registry}> {{ {pending} }} }}")
        try:
            for g, text in lines.items():
                self._post_chunks(staging[g], text)
            drop_lines = [f"<{drops}> <{MARKER}> <{drops}> .\n"]
            drop_lines += [f"<{s}> <{DROP_FROM}> <{g}> .\n" for g, subjects in replace.items() for s in subjects]
            self._post_chunks(drops, drop_lines)
            ops = [
                f"DELETE {{ GRAPH ?g {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{drops}> {{ ?s <{DROP_FROM}> ?g }} "
                f"GRAPH ?g {{ ?s ?p ?o }} }}"
            ]
            guard = f"FILTER EXISTS {{ GRAPH <{drops}> {{ ?m <{MARKER}> ?k }} }}"
            ops += [
                f"DELETE {{ GRAPH <{g}> {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} {guard} }}" for g in clear
            ]
            ops += [f"ADD SILENT <{s}> TO <{g}>" for g, s in staging.items()]
            ops += [f"DROP SILENT GRAPH <{s}>" for s in (*staging.values(), drops)]
            ops.append(f"DELETE DATA {{ GRAPH <{registry}> {{ {pending} }} }}")
            self.update(" ;\n".join(ops))
        except StoreError:
            self._drop_quietly([*staging.values(), drops], pending)
            raise

    def discard_leftovers(self) -> list[str]:
        """Drop the staging graphs of this scope that no swap took in (a writer killed while it
        staged), and return their names. Only safe where no writer of the scope is staging: the
        caller holds the instance's commit lock, under which every staged write runs."""
        rows = self.select(f"SELECT ?g WHERE {{ GRAPH <{self.staging_registry}> {{ ?r <{PENDING}> ?g }} }}")
        graphs = sorted(r["g"].value for r in rows if isinstance(r["g"], NamedNode))
        if graphs:
            log.warning("dropping %d staging graph(s) a stopped writer left: %s", len(graphs), graphs)
            self.update(
                " ;\n".join(
                    [*(f"DROP SILENT GRAPH <{g}>" for g in graphs), f"DROP SILENT GRAPH <{self.staging_registry}>"]
                )
            )
        return graphs

    def _post_chunks(self, graph: str, lines: list[str]) -> None:
        chunk: list[str] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line)
            if size >= STAGE_CHUNK:
                self._post(graph, "".join(chunk))
                chunk, size = [], 0
        if chunk:
            self._post(graph, "".join(chunk))

    def _post(self, graph: str, ntriples: str) -> None:
        # Posting the same triples twice leaves the same graph: safe to retry.
        self._send(
            "POST",
            self.graph_store_url,
            f"stage into {graph}",
            params={"graph": graph},
            data=ntriples.encode("utf-8"),
            headers={"Content-Type": N_TRIPLES},
        )

    def _drop_quietly(self, graphs: Sequence[str], pending: str) -> None:
        try:
            drops = [f"DROP SILENT GRAPH <{g}>" for g in graphs]
            self.update(" ;\n".join([*drops, f"DELETE DATA {{ GRAPH <{self.staging_registry}> {{ {pending} }} }}"]))
        except StoreError:
            log.warning("could not drop staging graphs %s", graphs)

    def close(self) -> None:
        self.http.close()


def _standard(term: Any) -> Any:
    """A term as a standard store would give it (see the Virtuoso notes above)."""
    if isinstance(term, Literal) and term.datatype.value == VIRTUOSO_GEOMETRY:
        return Literal(term.value, datatype=WKT_LITERAL)
    return term


class _Row(dict):  # type: ignore[type-arg]
    def __getitem__(self, key: Any) -> Any:
        return self.get(key.value if hasattr(key, "value") else key)


class _Solutions(list):  # type: ignore[type-arg]
    """SELECT results with Virtuoso's non-standard datatypes mapped back."""

    def __init__(self, solutions: QuerySolutions) -> None:
        variables = [v.value for v in solutions.variables]
        super().__init__(_Row({v: _standard(row[v]) for v in variables}) for row in solutions)
        self.variables = solutions.variables


class _Triples(list):  # type: ignore[type-arg]
    """CONSTRUCT/DESCRIBE results read from a remote store, iterable like pyoxigraph's."""

    def __iter__(self) -> Iterator[Any]:
        from pyoxigraph import Triple

        for s, p, o in super().__iter__():
            yield Triple(s, p, o)
