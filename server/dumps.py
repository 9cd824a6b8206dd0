"""``/dumps``: a territory's published data as files, at stable URLs.

``/dumps/{territory}/{kind}.{csv,json,geojson,ttl,jsonld,nt}`` (one kind, e.g. ``proposals.csv``)
and ``/dumps/{territory}.{nq,trig}`` (everything the territory publishes). These are the
distributions a DCAT catalog and a CKAN portal point to.

Every dump is streamed: records are read a page at a time and written out as they come, so the
server's memory does not grow with the size of the territory. ``ETag`` and ``Last-Modified`` come
from the last time a record of the dump changed (conditional GET answers 304); clients that accept
it get gzip.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
import zlib
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, request
from marshmallow import fields
from pyoxigraph import NamedNode, RdfFormat, Triple, serialize

from vocabularies import PREFIXES

from . import services
from .errors import NotFound
from .jsonld import compact, context
from .model.kinds import BY_PLURAL, RECORD_KINDS, Kind
from .model.rdf import canonical_datetime
from .negotiation import last_modified, not_modified
from .records import RECORD_DELETED, RECORD_MODIFIED, Records

bp = Blueprint("dumps", __name__, url_prefix="/dumps")
PAGE = 500
RECORD_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "geojson": "application/geo+json",
    "ttl": "text/turtle; charset=utf-8",
    "jsonld": "application/ld+json",
    "nt": "application/n-triples",
}
TERRITORY_FORMATS = {"nq": "application/n-quads", "trig": "application/trig"}
#: Kinds dumped one file per format: every published kind, the territory itself included (one record).
DUMPED_KINDS: tuple[Kind, ...] = tuple(k for k in (BY_PLURAL["territories"], *RECORD_KINDS) if not k.private)
SKIP_COLUMNS = ("author", "author_email", "voter", "iri", "territory", "record_modified", "deleted", "deleted_at")


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
        else:
            columns.append((name, (name,)))
    return [*columns, ("record_modified", ("record_modified",))]


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
    graph = records.urls.territory_graph(territory)
    for items in _pages(records, kind, territory, bare=True):
        order = [item["iri"] for item in items]
        description = records.store.describe(order, graph)
        rank = {iri: i for i, iri in enumerate(order)}
        subjects = sorted(description, key=lambda s: (rank.get(s.split("#", 1)[0], 0), s))
        yield [Triple(NamedNode(s), NamedNode(p), o) for s in subjects for p, o in description[s]]


def stream_records(records: Records, kind: Kind, territory: str, fmt: str) -> Iterator[bytes]:
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
            point = record.get("location")
            if not point:
                continue
            feature = {
                "type": "Feature",
                "id": record["iri"],
                "geometry": {"type": "Point", "coordinates": [point["lon"], point["lat"]]},
                "properties": {k: v for k, v in record.items() if k != "location"},
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
        records.store.dump(spool, RdfFormat.N_TRIPLES, graph=graph)
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


def _gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip container
    for chunk in chunks:
        data = compressor.compress(chunk)
        if data:
            yield data
    yield compressor.flush()


# -- versions -------------------------------------------------------------------------------------


def _version(records: Records, territory: str, kinds: list[Kind]) -> tuple[str, dt.datetime | None]:
    """The last change to any record of these kinds (tombstones included) and their count."""
    graphs = " ".join(f"<{records.urls.index_graph(territory, k.name)}>" for k in kinds)
    # Index graphs also hold the counts platforms report (integers): only the change times count.
    stamps = f"<{RECORD_MODIFIED}> <{RECORD_DELETED}>"
    rows = records.store.select(
        f"SELECT (MAX(?m) AS ?last) (COUNT(?s) AS ?n) WHERE {{ VALUES ?g {{ {graphs} }} VALUES ?p {{ {stamps} }} "
        "GRAPH ?g { ?s ?p ?m } }"
    )
    last = rows[0]["last"] if rows else None
    n = rows[0]["n"].value if rows else "0"
    when = dt.datetime.fromisoformat(canonical_datetime(last.value)) if last is not None else None
    key = f"{territory}|{'/'.join(k.name for k in kinds)}|{n}|{when.isoformat() if when else ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:20], when


def _send(
    chunks: Iterator[bytes], media_type: str, version: tuple[str, dt.datetime | None], filename: str, fmt: str
) -> Response:
    tag, when = version
    # gzip only for clients that accept it (q > 0); the gzip representation is another
    # representation, so it has a validator of its own (RFC 9110 §8.8.3).
    zipped = request.accept_encodings["gzip"] > 0
    opaque = f"{tag}-{fmt}" + ("-gzip" if zipped else "")
    etag = f'"{opaque}"'
    headers = {
        "ETag": etag,
        "Content-Disposition": f'inline; filename="{filename}"',
        "Vary": "Accept-Encoding",
        "Cache-Control": "public, max-age=60",
        "Access-Control-Allow-Origin": "*",
    }
    if (stamp := last_modified(when)) is not None:
        headers["Last-Modified"] = stamp
    if not_modified(etag, when):
        return Response(status=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
        chunks = _gzip(chunks)
    return Response(chunks, content_type=media_type, headers=headers, direct_passthrough=True)


@bp.get("/<territory>/<name>")
def kind_dump(territory: str, name: str) -> Response:
    plural, _, fmt = name.rpartition(".")
    kind = BY_PLURAL.get(plural)
    records = services().records
    if kind is None or kind.private or fmt not in RECORD_FORMATS:
        raise NotFound(
            f"no dump {name!r}: use {{kind}}.{{{','.join(RECORD_FORMATS)}}} with a kind among "
            + ", ".join(k.plural for k in DUMPED_KINDS)
        )
    if fmt == "geojson" and not kind.geolocated:
        raise NotFound(f"{kind.plural} have no location: no GeoJSON dump")
    records.require_territory(territory)
    version = _version(records, territory, [kind])
    chunks = stream_records(records, kind, territory, fmt)
    return _send(chunks, RECORD_FORMATS[fmt], version, f"{territory}-{name}", fmt)


@bp.get("/<name>")
def territory_dump(name: str) -> Response:
    territory, _, fmt = name.rpartition(".")
    if fmt not in TERRITORY_FORMATS:
        raise NotFound(f"no dump {name!r}: use {{territory}}.nq or {{territory}}.trig")
    records = services().records
    records.require_territory(territory)
    version = _version(records, territory, list(DUMPED_KINDS))
    return _send(stream_territory(records, territory, fmt), TERRITORY_FORMATS[fmt], version, name, fmt)


def dump_urls(territory: str) -> dict[str, str]:
    """Every dump of a territory, by file name (for the catalog, VoID and the home page)."""
    base = services().urls.base
    out = {f"{territory}.{fmt}": f"{base}/dumps/{territory}.{fmt}" for fmt in TERRITORY_FORMATS}
    for kind in DUMPED_KINDS:
        for fmt in RECORD_FORMATS:
            if fmt == "geojson" and not kind.geolocated:
                continue
            out[f"{kind.plural}.{fmt}"] = f"{base}/dumps/{territory}/{kind.plural}.{fmt}"
    return out


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


__all__ = ["csv_columns", "dump_urls", "init_app"]
