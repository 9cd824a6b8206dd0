"""NDJSON export: every record of a territory, one JSON object per line with its ``kind``.

The counterpart of :mod:`importers.ndjson`: what this writes, ``civicfed import ndjson`` reads.
"""

from __future__ import annotations

import json
from typing import IO

from server.model.kinds import load_order
from server.records import Records

READ_ONLY = ("iri", "territory", "record_modified", "deleted_at")


def dump(
    records: Records,
    territory: str,
    output: IO[bytes],
    *,
    include_deleted: bool = False,
    include_private: bool = False,
    page_size: int = 1000,
) -> int:
    """Write the territory's records, kinds in an order where links point backwards (a re-ingest
    in pieces finds every record a line refers to already loaded); returns the lines written."""
    records.require_territory(territory)
    written = 0
    for kind in load_order():
        if kind.private and not include_private:
            continue
        cursor = None
        while True:
            page = records.list(
                kind, territories=[territory], include_deleted=include_deleted, cursor=cursor, limit=page_size
            )
            for item in page.items:
                line = {"kind": kind.name, **{k: v for k, v in item.items() if k not in READ_ONLY}}
                output.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
                written += 1
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    return written
