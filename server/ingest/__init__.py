"""The one loading path. An importer (``importers/``) reads a source and yields items
(:mod:`server.ingest.source`); :func:`load` validates them, writes them through the records'
write path in one atomic step, and reports (:mod:`server.ingest.report`) what happened.
"""

from __future__ import annotations

from .loader import load, open_source
from .report import Report
from .source import Deletion, Importer, Item, Record, Rejected, Source, Statements

__all__ = [
    "Deletion",
    "Importer",
    "Item",
    "Record",
    "Rejected",
    "Report",
    "Source",
    "Statements",
    "load",
    "open_source",
]
