"""Dumps: a territory's published data as files — one kind in CSV, JSON, GeoJSON, Turtle,
JSON-LD or N-Triples, or everything the territory publishes as N-Quads or TriG.

Every dump is a stream: records are read a page at a time and written out as they come, so
memory does not grow with the size of the territory. ``/dumps/…`` serves them (the distributions
a DCAT catalog and a CKAN portal point to) and ``civicfed export FORMAT`` writes them to a file.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from marshmallow import fields
from pyoxigraph import NamedNode, RdfFormat, Triple, serialize

from server.catalog import DUMPED_KINDS, TERRITORY_FORMATS
from server.model.kinds import BY_PLURAL, Kind
from server.model.schemas import Geometry
from server.rdf.jsonld import compact, context
from server.records import Records
from vocabularies import PREFIXES

PAGE = 500
SKIP_COLUMNS = ("author", "author_email", "voter", "iri", "territory", "record_modified", "deleted", "deleted_at")
SKIP_COLUMNS += ("origin",)  # a replica's records: where they are written (not a column of the data)


# -- CSV columns ----------------------------------------------------------------------------------


def csv_columns(kind: Kind) -> list[tuple[str, tuple[str, ...]]]:
    """Flat columns of a kind (listed per kind in docs/data-model.md): nested objects become
    ``field_sub`` columns; lists of codes and identifiers are joined with ``|``; a list of
    objects is one JSON array (its text may hold ``|``)."""
    columns: list[tuple[str, tuple[str, ...]]] = [("id", ("id",)), ("iri", ("iri",)), ("territory", ("territory",))]
    schema_fields = kind.schema().fields
    common = ("url", "created", "modified")  # last, as in the JSON records
    for name in [n for n in schema_fields if n not in common] + list(common):
        f = schema_fields[name]
        if name in SKIP_COLUMNS or name == "id" or f.load_only:
            continue
        if isinstance(f, fields.Nested):
            columns += [(f"{name}_{sub}", (name, sub)) for sub in f.schema.fields]
        elif isinstance(f, Geometry):  # GeoJSON: its type, and its coordinates as one JSON array
            columns += [(f"{name}_type", (name, "type")), (f"{name}_coordinates", (name, "coordinates"))]
        else:
            columns.append((name, (name,)))
    return [*columns, ("record_modified", ("record_modified",))]


#: A spreadsheet reads a cell starting with these as a formula (CSV injection, OWASP): text cells
#: that do are written with a leading apostrophe, which spreadsheets show as text. Numbers are
#: written as they are (a negative longitude is not a formula).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(record: dict[str, Any], path: tuple[str, ...]) -> str:
    value: Any = record
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if isinstance(value, list):
        if any(isinstance(v, dict | list) for v in value):
            return json.dumps(value, ensure_ascii=False)
        return "|".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else str(value)


# -- streams --------------------------------------------------------------------------------------


def _pages(records: Records, kind: Kind, territory: str, bare: bool = False) -> Iterator[list[dict[str, Any]]]:
    cursor = None
    while True:
        page = records.list(kind, territories=[territory], cursor=cursor, limit=PAGE, bare=bare)
        if page.items:
            yield page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _records(records: Records, kind: Kind, territory: str) -> Iterator[dict[str, Any]]:
    for items in _pages(records, kind, territory):
        yield from items


def _triple_pages(records: Records, kind: Kind, territory: str) -> Iterator[list[Triple]]:
    for items in _pages(records, kind, territory, bare=True):
        order = [item["iri"] for item in items]
        description = records.describe(territory, kind, order)
        rank = {iri: i for i, iri in enumerate(order)}
        subjects = sorted(description, key=lambda s: (rank.get(s.split("#", 1)[0], 0), s))
        yield [Triple(NamedNode(s), NamedNode(p), o) for s in subjects for p, o in description[s]]


def stream_records(records: Records, kind: Kind, territory: str, fmt: str) -> Iterator[bytes]:
    """One kind of a territory's records in one of :data:`RECORD_FORMATS`."""
    if fmt == "csv":
        columns = csv_columns(kind)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([name for name, _ in columns])
        for i, record in enumerate(_records(records, kind, territory)):
            writer.writerow([_cell(record, path) for _, path in columns])
            if i % 200 == 199:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode()
    elif fmt == "json":
        yield b"["
        for i, record in enumerate(_records(records, kind, territory)):
            yield (b",\n" if i else b"\n") + json.dumps(record, ensure_ascii=False).encode()
        yield b"\n]\n"
    elif fmt == "geojson":
        yield b'{"type": "FeatureCollection", "features": ['
        first = True
        for record in _records(records, kind, territory):
            point, shape = record.get("location"), record.get("geometry")
            if not point and not shape:
                continue
            feature = {
                "type": "Feature",
                "id": record["iri"],
                # A district's boundary as it is (GeoJSON already); a record's point.
                "geometry": shape or {"type": "Point", "coordinates": [point["lon"], point["lat"]]},
                "properties": {k: v for k, v in record.items() if k not in ("location", "geometry")},
            }
            yield (b"\n" if first else b",\n") + json.dumps(feature, ensure_ascii=False).encode()
            first = False
        yield b"\n]}\n"
    elif fmt == "jsonld":
        yield b'{"@context": ' + json.dumps(context(), ensure_ascii=False).encode() + b', "@graph": ['
        first = True
        for triples in _triple_pages(records, kind, territory):
            for node in compact((t.subject, t.predicate, t.object) for t in triples)["@graph"]:
                yield (b"\n" if first else b",\n") + json.dumps(node, ensure_ascii=False).encode()
                first = False
        yield b"\n]}\n"
    else:
        rdf_format = RdfFormat.TURTLE if fmt == "ttl" else RdfFormat.N_TRIPLES
        prefixes = PREFIXES if fmt == "ttl" else None
        for triples in _triple_pages(records, kind, territory):
            # Turtle allows prefix declarations again later: each page is a complete document.
            yield serialize(triples, format=rdf_format, prefixes=prefixes)


def stream_territory(records: Records, territory: str, fmt: str) -> Iterator[bytes]:
    """Everything the territory publishes (its public graph), as N-Quads or TriG.

    The graph is written to a temporary file first (memory stays flat), then sent line by line.
    """
    graph = records.urls.territory_graph(territory)
    with tempfile.TemporaryFile() as spool:
        records.dump_graph(territory, spool)
        spool.seek(0)
        if fmt == "trig":
            yield f"<{graph}> {{\n".encode()
            for line in spool:
                yield line
            yield b"}\n"
            return
        tail = f" <{graph}> .\n".encode()
        for line in spool:
            yield line[:-3] + tail if line.endswith(b" .\n") else line


def dump(records: Records, territory: str, output: IO[bytes], *, fmt: str, kind: str | None = None) -> int:
    """Write one dump to ``output`` (``kind``: a plural, for the formats of one kind); returns the
    bytes written."""
    records.require_readable(territory)
    if fmt in TERRITORY_FORMATS:
        chunks = stream_territory(records, territory, fmt)
    else:
        found = BY_PLURAL.get(kind or "")
        if found is None or found not in DUMPED_KINDS:
            raise ValueError(f"give the kind to dump: one of {', '.join(k.plural for k in DUMPED_KINDS)}")
        if fmt == "geojson" and not found.mappable:
            raise ValueError(f"{found.plural} have no location: no GeoJSON dump")
        chunks = stream_records(records, found, territory, fmt)
    written = 0
    for chunk in chunks:
        written += output.write(chunk)
    return written
