"""NDJSON export: every record of a territory, one JSON object per line with its ``kind``.

The counterpart of :mod:`importers.ndjson`: what this writes, ``civicfed import ndjson`` reads.
"""

from __future__ import annotations

import json
from typing import TextIO

from server.model.kinds import RECORD_KINDS
from server.records import Records

# Written so that a re-ingest finds every record a line refers to already loaded.
ORDER = ("organization", "process", "budget", "rule", "proposal", "vote", "comment", "meeting", "project")
READ_ONLY = ("iri", "territory", "record_modified", "deleted_at")


def dump_ndjson(
    records: Records,
    territory: str,
    output: TextIO,
    *,
    include_deleted: bool = False,
    include_private: bool = False,
    page_size: int = 1000,
) -> int:
    """Write the territory's records; returns how many lines were written."""
    records.require_territory(territory)
    kinds = sorted(RECORD_KINDS, key=lambda k: ORDER.index(k.name))
    written = 0
    for kind in kinds:
        if kind.private and not include_private:
            continue
        cursor = None
        while True:
            page = records.list(
                kind, territories=[territory], include_deleted=include_deleted, cursor=cursor, limit=page_size
            )
            for item in page.items:
                line = {"kind": kind.name, **{k: v for k, v in item.items() if k not in READ_ONLY}}
                output.write(json.dumps(line, ensure_ascii=False) + "\n")
                written += 1
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    return written
