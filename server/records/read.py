"""Reading records: one record by id, and pages of lists (served from the record cache when the
version is known)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import IO, Any

from pyoxigraph import RdfFormat

from vocabularies import AS

from ..errors import Gone, NotFound
from ..model.kinds import Kind
from ..model.rdf import Ctx
from ..model.terms import canonical_datetime, format_datetime, literal
from ..store import Description, Store
from ..urls import LOCAL_ID_RE, Urls
from .cache import RecordCache
from .index import RECORD_DELETED, RECORD_MODIFIED, IndexEntry, graph_of, read_index
from .listing import ListQuery, encode_cursor
from .ops import Page


class Reader:
    """Record reads over one store and one set of IRIs."""

    def __init__(
        self, store: Store, urls: Urls, cache: RecordCache, origin_of: Callable[[str], str | None] = lambda t: None
    ) -> None:
        self.store = store
        self.urls = urls
        self.cache = cache
        #: A territory's IRI at its origin when it is replicated from a peer, else None.
        self.origin_of = origin_of
        self._origin_urls: dict[str, Urls] = {}

    def urls_for(self, territory: str) -> Urls:
        """The IRIs of a territory's resources: this instance's, or its origin's for a replica
        (the graphs are this instance's either way)."""
        origin = self.origin_of(territory)
        if origin is None:
            return self.urls
        base = origin.rsplit("/id/", 1)[0]
        found = self._origin_urls.get(base)
        if found is None:
            found = self._origin_urls[base] = self.urls.of_origin(base)
        return found

    def iri(self, territory: str, kind: Kind, local_id: str) -> str:
        if not LOCAL_ID_RE.fullmatch(local_id):
            # Such a record cannot exist (ids are validated on the way in).
            raise NotFound(
                f"no {kind.name} {local_id!r} in territory {territory!r}: not a valid identifier",
                errors=[{"parameter": "local_id", "detail": "Letters, digits and . _ ~ - only."}],
            )
        return self.urls_for(territory).resource(territory, kind.name, local_id)

    def index_entries(self, territory: str, kind: Kind, iris: Sequence[str]) -> dict[str, IndexEntry]:
        """Which of these records exist (live or tombstoned) and when they last changed."""
        return read_index(self.store, self.urls, territory, kind, iris)

    def get(self, territory: str, kind: Kind, local_id: str) -> dict[str, Any]:
        """One live record; NotFound if it never existed, Gone if it was deleted."""
        iri = self.iri(territory, kind, local_id)
        entry = self.index_entries(territory, kind, [iri]).get(iri)
        if entry is None:
            where = "" if kind.name == "territory" else f" in territory {territory!r}"
            raise NotFound(f"no {kind.name} {local_id!r}{where}")
        if entry.deleted:
            raise Gone(
                f"{kind.name} {local_id!r} was deleted at {format_datetime(entry.modified)}",
                record=self.tombstone(territory, kind, local_id, entry.modified),
            )
        modified = format_datetime(entry.modified)
        cached = self.cache.get(iri, modified)
        if cached is not None:
            return cached
        desc = self.store.describe([iri], graph_of(self.urls, kind, territory))
        return self.to_json(territory, kind, iri, desc, modified)

    def to_json(
        self, territory: str, kind: Kind, iri: str, desc: Description, modified: dt.datetime | str
    ) -> dict[str, Any]:
        """A record's JSON from its description (and into the cache, keyed by its version)."""
        urls = self.urls_for(territory)
        data = kind.mapping.from_description(iri, desc, Ctx(urls, territory))
        local_id = data.pop("id", None) or iri.rsplit("/", 1)[-1]
        if urls is not self.urls:  # a replica's: its id is its IRI's (not what a peer states)
            local_id = iri.rsplit("/", 1)[-1]
        out: dict[str, Any] = {"id": local_id, "iri": iri, "territory": territory}
        out.update(data)
        out["record_modified"] = modified if isinstance(modified, str) else format_datetime(modified)
        self._mark_origin(out, urls, territory, kind)
        self.cache.put(iri, out["record_modified"], out)
        return out

    def tombstone(self, territory: str, kind: Kind, local_id: str, deleted_at: dt.datetime | str) -> dict[str, Any]:
        when = deleted_at if isinstance(deleted_at, str) else format_datetime(deleted_at)
        out = {
            "id": local_id,
            "iri": self.iri(territory, kind, local_id),
            "territory": territory,
            "deleted": True,
            "deleted_at": when,
            "record_modified": when,
        }
        self._mark_origin(out, self.urls_for(territory), territory, kind)
        return out

    def _mark_origin(self, out: dict[str, Any], urls: Urls, territory: str, kind: Kind) -> None:
        """A replica's record says where it is written: its URL in its origin's JSON API."""
        if urls is not self.urls:
            path = f"territories/{territory}" + ("" if kind.name == "territory" else f"/{kind.plural}/{out['id']}")
            out["origin"] = urls.api(path, root=urls.iri_base)

    def published(self, territory: str, iri: str) -> Description:
        """What the territory's public graph says of one of its IRIs (and of its ``#`` nodes)."""
        return self.store.describe([iri], self.urls.territory_graph(territory))

    def links_to(self, iri: str, limit: int) -> list[tuple[str, str]]:
        """(subject, predicate) of the live resources of this instance's public graphs that link
        to ``iri`` — not its own ``#`` nodes, not tombstones — in a stable order, ``limit`` at most."""
        rows = self.store.select(
            f"""SELECT DISTINCT ?s ?p WHERE {{
  GRAPH ?g {{ ?s ?p <{iri}> FILTER NOT EXISTS {{ ?s a <{AS.Tombstone}> }} }}
  FILTER(isIRI(?s) && STRSTARTS(STR(?g), {literal(self.urls.public_prefix)}) && !STRSTARTS(STR(?s), "{iri}#"))
}} ORDER BY ?p ?s LIMIT {limit}"""
        )
        return [(r["s"].value, r["p"].value) for r in rows]

    def describe(self, territory: str, kind: Kind, iris: Sequence[str]) -> Description:
        """The stored triples of these records of ``kind`` (and of their ``#`` nodes)."""
        return self.store.describe(list(iris), graph_of(self.urls, kind, territory))

    def load(
        self, territory: str, kind: Kind, iris: Sequence[str], chunk: int = 500
    ) -> dict[str, dict[str, Any] | None]:
        """These records of ``kind`` as JSON (None for those not live), read ``chunk`` at a time:
        what derived data is computed from inside a write (no cache: the write may hold newer)."""
        out: dict[str, dict[str, Any] | None] = {}
        ctx = Ctx(self.urls, territory)
        iris = list(iris)
        for i in range(0, len(iris), chunk):
            part = iris[i : i + chunk]
            entries = self.index_entries(territory, kind, part)
            live = [iri for iri in part if iri in entries and not entries[iri].deleted]
            desc = self.describe(territory, kind, live) if live else {}
            out.update({iri: None for iri in part})
            out.update({iri: kind.mapping.from_description(iri, desc, ctx) for iri in live})
        return out

    def last_change(self, territory: str, kinds: Sequence[Kind]) -> tuple[int, dt.datetime | None]:
        """How many records of these kinds the territory has (tombstones included), and when the
        last of them changed."""
        graphs = " ".join(f"<{self.urls.index_graph(territory, k.name)}>" for k in kinds)
        # Index graphs also hold the counts platforms report (integers): only the change times count.
        stamps = f"<{RECORD_MODIFIED}> <{RECORD_DELETED}>"
        rows = self.store.select(
            f"SELECT (MAX(?m) AS ?last) (COUNT(?s) AS ?n) WHERE {{ VALUES ?g {{ {graphs} }} VALUES ?p {{ {stamps} }} "
            "GRAPH ?g { ?s ?p ?m } }"
        )
        last = rows[0]["last"] if rows else None
        count = int(rows[0]["n"].value) if rows else 0
        return count, dt.datetime.fromisoformat(canonical_datetime(last.value)) if last is not None else None

    def dump_graph(self, territory: str, output: IO[bytes]) -> None:
        """Everything the territory publishes (its public graph), as N-Triples."""
        self.store.dump(output, RdfFormat.N_TRIPLES, graph=self.urls.territory_graph(territory))

    def list(self, query: ListQuery, *, bare: bool = False) -> Page:
        """A page of records in (record_modified, iri) order, and the cursor of the next page.

        ``bare`` pages carry only each record's ``iri`` and ``record_modified`` (for dumps that
        read the RDF themselves).
        """
        territories, kind = query.territories, query.kind
        if not territories:
            return Page([], None)
        rows = self.store.select(query.sparql(self.urls_for(territories[0])))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        modified_of = {r["s"].value: canonical_datetime(r["m"].value) for r in rows}
        next_cursor = encode_cursor(modified_of[rows[-1]["s"].value], rows[-1]["s"].value) if more and rows else None
        if bare:
            return Page(
                [{"iri": r["s"].value, "record_modified": modified_of[r["s"].value]} for r in rows], next_cursor
            )

        # Describe the live records of the page, per territory, in one call each.
        if len(territories) == 1:
            territory_of = {r["s"].value: territories[0] for r in rows}
        else:  # by the graph the record was found in (a replica's IRIs are not this instance's)
            by_graph = {graph_of(self.urls, kind, t): t for t in territories}
            territory_of = {r["s"].value: by_graph[r["g"].value] for r in rows}
        deleted = {r["s"].value for r in rows if query.with_deleted and r["rp"].value == RECORD_DELETED}
        live_by_t: dict[str, list[str]] = {}
        cached: dict[str, dict[str, Any]] = {}
        for iri in modified_of:
            if iri in deleted:
                continue
            hit = self.cache.get(iri, modified_of[iri])
            if hit is not None:
                cached[iri] = hit
            else:
                live_by_t.setdefault(territory_of[iri], []).append(iri)
        desc: Description = {}
        for t, iris in live_by_t.items():
            desc.update(self.store.describe(iris, graph_of(self.urls, kind, t)))
        items = []
        for iri, m in modified_of.items():
            t = territory_of[iri]
            if iri in deleted:
                items.append(self.tombstone(t, kind, iri.rsplit("/", 1)[-1], m))
            else:
                items.append(cached.get(iri) or self.to_json(t, kind, iri, desc, m))
        return Page(items, next_cursor)
