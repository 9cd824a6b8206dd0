"""NDJSON: one JSON record per line, mixed kinds, each with its ``kind``; a line
``{"kind": …, "id": …, "deleted": true}`` deletes.

The format of ``POST /api/v1/territories/{t}/ingest`` and of ``civicfed import ndjson``;
``civicfed export ndjson`` writes it, so a territory's records round-trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from server.errors import CivicfedError, PayloadTooLarge, ValidationFailed
from server.ingest import Deletion, Importer, Item, Record, Rejected
from server.model.kinds import RECORD_KINDS, kind_named
from server.model.schemas import parse_json
from server.urls import LOCAL_ID_RE

KIND_NAMES = ", ".join(k.name for k in RECORD_KINDS)
MEDIA_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


#: Longest line read (bytes): a record is a few kilobytes; a longer line is refused, not parsed.
MAX_LINE = 1024 * 1024


@dataclass
class NdjsonSource:
    """The lines of an NDJSON body or file."""

    lines: Iterable[bytes]
    id: str = "ndjson"
    name: str = "NDJSON"
    max_line: int = MAX_LINE

    def items(self) -> Iterator[Item]:
        for number, line in enumerate(self.lines, start=1):
            if len(line) > self.max_line:
                yield Rejected(PayloadTooLarge(f"the line is longer than {self.max_line} bytes"), number)
                continue
            if not line.strip():
                continue
            obj: Any = None
            try:
                obj = parse_json(line)
                yield item(number, obj)
            except CivicfedError as err:
                kind, local_id = (obj.get("kind"), obj.get("id")) if isinstance(obj, dict) else (None, None)
                yield Rejected(err, number, _str(kind), _str(local_id))


def item(number: int, obj: Any) -> Item:
    """One NDJSON object as a record or a deletion (raises a CivicfedError naming what is wrong)."""
    if not isinstance(obj, dict):
        raise ValidationFailed("a line must be a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}])
    obj = dict(obj)
    kind_name = obj.pop("kind", None)
    kind = kind_named(kind_name) if isinstance(kind_name, str) else None
    if kind is None or kind.name == "territory":
        hint = " (a territory is created with `civicfed territory create`)" if kind else ""
        raise ValidationFailed(
            f"unknown kind {kind_name!r}: use one of {KIND_NAMES}{hint}",
            errors=[{"pointer": "#/kind", "detail": f"One of: {KIND_NAMES}."}],
        )
    if obj.get("deleted") is True:
        local_id = obj.get("id")
        if not isinstance(local_id, str) or not LOCAL_ID_RE.fullmatch(local_id):
            raise ValidationFailed(
                "a deletion needs the record's id", errors=[{"pointer": "#/id", "detail": "Missing or not an id."}]
            )
        return Deletion(kind, local_id, number)
    return Record(kind, obj, number)


def read(
    data: bytes | Iterable[bytes] | IO[bytes], *, name: str = "NDJSON", max_line: int | str = MAX_LINE
) -> NdjsonSource:
    """An NDJSON source over a body (bytes) or any iterable of lines (an open file); lines longer
    than ``max_line`` bytes are refused."""
    lines = data.split(b"\n") if isinstance(data, bytes) else data
    return NdjsonSource(lines, name=name, max_line=int(max_line))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


IMPORTER = Importer(
    "ndjson",
    "NDJSON records of mixed kinds, one per line (the bulk ingest format)",
    read,
    media_types=MEDIA_TYPES,
    options={"max_line": "Longest line read, in bytes (INGEST_MAX_LINE)."},
    quarantine=False,
)
