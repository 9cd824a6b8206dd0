"""Exporters: read the store through :class:`server.records.Records` and write a format out.

Plain functions with the output stream injected: ``civicfed export FORMAT`` finds them in
:data:`EXPORTERS` (one module plus one line here adds one), and ``/dumps`` streams the same
code (:mod:`exporters.dumps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.catalog import RECORD_FORMATS, TERRITORY_FORMATS

from . import dumps, ndjson


@dataclass(frozen=True)
class Exporter:
    format: str
    summary: str
    #: ``dump(records, territory, output, **options) -> how many units were written``.
    dump: Callable[..., int]
    #: What ``dump`` counts (for the command's summary).
    unit: str = "bytes"
    #: The options ``dump`` takes (``civicfed export`` refuses the others).
    options: tuple[str, ...] = ()


def _dump_format(fmt: str, summary: str, per_kind: bool) -> Exporter:
    def write(records: object, territory: str, output: object, **options: object) -> int:
        return dumps.dump(records, territory, output, fmt=fmt, **options)  # type: ignore[arg-type]

    return Exporter(fmt, summary, write, options=("kind",) if per_kind else ())


#: Every exporter, by format name.
EXPORTERS: dict[str, Exporter] = {
    e.format: e
    for e in (
        Exporter(
            "ndjson",
            "A territory's records, one JSON object per line (`civicfed import ndjson` reads it)",
            ndjson.dump,
            unit="records",
            options=("include_deleted", "include_private"),
        ),
        *(_dump_format(fmt, f"One kind of records as {fmt} (the /dumps file)", True) for fmt in RECORD_FORMATS),
        *(
            _dump_format(fmt, f"Everything the territory publishes as {fmt} (the /dumps file)", False)
            for fmt in TERRITORY_FORMATS
        ),
    )
}
