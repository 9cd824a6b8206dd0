"""``/dumps``: a territory's published data as files, at stable URLs.

``/dumps/{territory}/{kind}.{csv,json,geojson,ttl,jsonld,nt}`` (one kind, e.g. ``proposals.csv``)
and ``/dumps/{territory}.{nq,trig}`` (everything the territory publishes), streamed by
:mod:`exporters.dumps`. ``ETag`` and ``Last-Modified`` come from the last time a record of the
dump changed (conditional GET answers 304); clients that accept it get gzip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, request

from exporters.dumps import stream_records, stream_territory

from ..catalog import DUMPED_KINDS, RECORD_FORMATS, TERRITORY_FORMATS
from ..errors import NotFound
from ..model.kinds import BY_PLURAL, Kind
from ..records import Records
from ..services import services
from .http import conditional

bp = Blueprint("dumps", __name__, url_prefix="/dumps")


def _gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip container
    for chunk in chunks:
        data = compressor.compress(chunk)
        if data:
            yield data
    yield compressor.flush()


def _version(records: Records, territory: str, kinds: list[Kind]) -> tuple[str, dt.datetime | None]:
    """An opaque version of the dump (what and how many records, and their last change) and the
    time of that change."""
    count, when = records.last_change(territory, kinds)
    key = f"{territory}|{'/'.join(k.name for k in kinds)}|{count}|{when.isoformat() if when else ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:20], when


def _send(
    chunks: Iterator[bytes], media_type: str, version: tuple[str, dt.datetime | None], filename: str, fmt: str
) -> Response:
    tag, when = version
    # gzip only for clients that accept it (q > 0); the gzip representation is another
    # representation, so it has a validator of its own (RFC 9110 §8.8.3).
    zipped = request.accept_encodings["gzip"] > 0
    headers = {
        "Content-Disposition": f'inline; filename="{filename}"',
        "Vary": "Accept-Encoding",
        "Cache-Control": "public, max-age=60",
        "Access-Control-Allow-Origin": "*",
    }

    def send() -> Response:
        body = _gzip(chunks) if zipped else chunks
        resp = Response(body, content_type=media_type, direct_passthrough=True)
        if zipped:
            resp.headers["Content-Encoding"] = "gzip"
        return resp

    opaque = f"{tag}-{fmt}" + ("-gzip" if zipped else "")
    return conditional(f'"{opaque}"', when, send, headers)


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
    if fmt == "geojson" and not kind.mappable:
        raise NotFound(f"{kind.plural} have no location: no GeoJSON dump")
    records.require_readable(territory)
    version = _version(records, territory, [kind])
    chunks = stream_records(records, kind, territory, fmt)
    return _send(chunks, RECORD_FORMATS[fmt], version, f"{territory}-{name}", fmt)


@bp.get("/<name>")
def territory_dump(name: str) -> Response:
    territory, _, fmt = name.rpartition(".")
    if fmt not in TERRITORY_FORMATS:
        raise NotFound(f"no dump {name!r}: use {{territory}}.nq or {{territory}}.trig")
    records = services().records
    records.require_readable(territory)
    version = _version(records, territory, list(DUMPED_KINDS))
    return _send(stream_territory(records, territory, fmt), TERRITORY_FORMATS[fmt], version, name, fmt)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
