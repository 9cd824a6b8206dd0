"""The list query: one SPARQL ``SELECT`` over the index graph(s), keyset-paged by cursor.

A list is ordered by ``(record_modified, IRI)``: the index graph of each (territory, kind) is one
sorted triple pattern, filters, ``bbox`` and ``q`` are extra patterns on the data graph, and the
cursor is the last row's pair — so paging is stable while records change.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from vocabularies import GEO, SDO, XSD

from ..errors import BadRequest
from ..model.kinds import Kind
from ..model.rdf import Ctx
from ..model.terms import canonical_datetime, format_datetime, literal, typed
from ..urls import Urls
from .index import RECORD_DELETED, RECORD_MODIFIED, graph_of


def encode_cursor(modified: str, iri: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([modified, iri]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        modified, iri = json.loads(raw)
        if canonical_datetime(modified) != modified:  # cursors are issued in canonical form
            raise ValueError
        if not isinstance(iri, str) or any(c in iri for c in '<>"{}|\\^` \n'):
            raise ValueError
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError) as exc:
        raise BadRequest(
            "invalid cursor: use the `next` link of the previous page",
            errors=[{"parameter": "cursor", "detail": "Not a cursor issued by this server."}],
        ) from exc
    return modified, iri


@dataclass
class ListQuery:
    """What a list asks for (the JSON API's list parameters, validated)."""

    kind: Kind
    territories: Sequence[str]
    filters: dict[str, str] | None = None
    q: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    modified_since: dt.datetime | None = None
    include_deleted: bool = False
    cursor: str | None = None
    limit: int = 50
    descending: bool = False

    @property
    def with_deleted(self) -> bool:
        """Tombstones are listed too (a sync with ``modified_since`` must see deletions)."""
        return self.include_deleted or self.modified_since is not None

    def sparql(self, urls: Urls) -> str:
        """The ``SELECT ?s ?m [?rp] [?g]`` of one page plus one row (to know whether more follow)."""
        kind, territories = self.kind, self.territories
        g_of = {t: graph_of(urls, kind, t) for t in territories}
        if len(territories) == 1:
            (t0,) = territories
            index_g, data_g = f"<{urls.index_graph(t0, kind.name)}>", f"<{g_of[t0]}>"
            head = ""
        else:
            index_g, data_g = "?ig", "?g"
            rows = " ".join(f"(<{urls.index_graph(t, kind.name)}> <{g_of[t]}>)" for t in territories)
            head = f"VALUES (?ig ?g) {{ {rows} }}\n"
        if self.with_deleted:
            triple = f"GRAPH {index_g} {{ ?s ?rp ?m VALUES ?rp {{ <{RECORD_MODIFIED}> <{RECORD_DELETED}> }} }}"
        else:
            triple = f"GRAPH {index_g} {{ ?s <{RECORD_MODIFIED}> ?m }}"
        clauses = [head + triple]
        if self.modified_since is not None:
            clauses.append(f"FILTER(?m >= {typed(format_datetime(self.modified_since), XSD.dateTime)})")
        if self.cursor:
            c_m, c_s = decode_cursor(self.cursor)
            op = "<" if self.descending else ">"
            m = typed(c_m, XSD.dateTime)
            clauses.append(f"FILTER(?m {op} {m} || (?m = {m} && STR(?s) {op} {literal(c_s)}))")
        patterns = self._data_patterns(urls)
        if patterns:
            clauses.append(f"GRAPH {data_g} {{ {' '.join(patterns)} }}")
        if self.q:
            preds = " ".join(f"<{p}>" for p in kind.text_predicates)
            clauses.append(
                f"FILTER EXISTS {{ GRAPH {data_g} {{ ?s ?tp ?text VALUES ?tp {{ {preds} }} "
                f"FILTER(CONTAINS(LCASE(STR(?text)), {literal(self.q.lower())})) }} }}"
            )
        order = "ORDER BY DESC(?m) DESC(?s)" if self.descending else "ORDER BY ?m ?s"
        select_vars = "?s ?m" + (" ?rp" if self.with_deleted else "") + ("" if len(territories) == 1 else " ?g")
        return f"SELECT {select_vars} WHERE {{\n" + "\n".join(clauses) + f"\n}} {order} LIMIT {self.limit + 1}"

    def _data_patterns(self, urls: Urls) -> list[str]:
        patterns = []
        for param, value in (self.filters or {}).items():
            f = self.kind.filters[param]
            # Filters are evaluated against the first territory's IRIs; multi-territory lists only
            # take filters whose values are territory-independent (codes), checked by the caller.
            term = f.filter_term(value, Ctx(urls, self.territories[0]))
            patterns.append(f"?s <{f.predicate}> {term} .")
        if self.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = self.bbox
            patterns.append(
                f"?s <{GEO.hasGeometry}> ?geo . ?geo <{SDO.latitude}> ?lat ; <{SDO.longitude}> ?lon . "
                f"FILTER(?lat >= {min_lat} && ?lat <= {max_lat} && ?lon >= {min_lon} && ?lon <= {max_lon})"
            )
        return patterns
