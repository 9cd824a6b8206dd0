"""Copying a civicfed instance's graphs between stores, verified.

Used by ``civicfed store copy`` to move from the embedded store to a SPARQL server (or back,
or between servers). Each graph is replaced atomically in the destination; then each side's
graph is counted and hashed. The hash is over the sorted N-Triples of the graph with literals
compared by value, so that stores that canonicalise differently (Virtuoso writes ``true`` as
``"1"``, trims dateTime fractions) still verify; WKT coordinates are compared in single
precision and without their optional spaces, because that is what Virtuoso keeps of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pyoxigraph import Literal, RdfFormat, parse

from vocabularies import GEO, XSD

from .base import Store, StoreError

WKT = GEO.wktLiteral
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WKT_SPACE = re.compile(r"\s*[(),]\s*")


@dataclass
class CopyReport:
    graphs: int
    quads: int


def _single(value: float) -> float:
    """The value rounded to IEEE single precision."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _value(term: object) -> str:
    if not isinstance(term, Literal):
        return str(term)
    dtype, text = term.datatype.value, term.value
    try:
        if dtype == XSD.boolean:
            text = "true" if text in ("true", "1") else "false"
        elif dtype in (XSD.integer, XSD.decimal, XSD.double, XSD.float):
            text = format(Decimal(text).normalize(), "f")
        elif dtype == XSD.dateTime:
            text = dt.datetime.fromisoformat(text).astimezone(dt.UTC).isoformat()
        elif dtype == WKT:
            text = _NUMBER.sub(lambda m: repr(_single(float(m.group()))), text)
            # Virtuoso writes `POLYGON((1 2,3 4))` for `POLYGON ((1 2, 3 4))`: spacing is not value.
            text = _WKT_SPACE.sub(lambda m: m.group().strip(), text.upper())
    except (ValueError, InvalidOperation):
        pass
    return f"{text}|{dtype}|{term.language or ''}"


def graph_digest(store: Store, graph: str) -> tuple[int, str]:
    """Number of triples and value-based hash of one graph."""
    out = io.BytesIO()
    store.dump(out, RdfFormat.N_TRIPLES, graph=graph)
    lines = sorted(
        f"{t.subject}\t{t.predicate}\t{_value(t.object)}" for t in parse(out.getvalue(), format=RdfFormat.N_TRIPLES)
    )
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def copy_graphs(
    source: Store,
    target: Store,
    include: Callable[[str], bool],
    echo: Callable[[str], None] = print,
) -> CopyReport:
    """Copy every graph ``include`` accepts; raise StoreError if a copy does not verify."""
    graphs = sorted(g for g in source.graphs() if include(g))
    total = 0
    for graph in graphs:
        out = io.BytesIO()
        source.dump(out, RdfFormat.N_TRIPLES, graph=graph)
        n = target.replace_graph(graph, out.getvalue(), RdfFormat.N_TRIPLES)
        expected, theirs = graph_digest(source, graph), graph_digest(target, graph)
        if expected != theirs:
            raise StoreError(
                f"copy of {graph} does not verify: {expected[0]} triples ({expected[1][:12]}) in the source, "
                f"{theirs[0]} ({theirs[1][:12]}) in the destination"
            )
        echo(f"{graph}: {n} triples, verified")
        total += n
    return CopyReport(len(graphs), total)
