"""Quad store access: one interface (:class:`Store`), chosen by one setting.

``CIVICFED_STORE`` is either a directory (embedded Oxigraph, the default) or an ``http(s)://``
URL of a SPARQL 1.1 server (scale-out).
"""

from __future__ import annotations

from .base import Changeset, Description, QueryResult, Store, StoreBusyError, StoreError

__all__ = [
    "Changeset",
    "Description",
    "QueryResult",
    "Store",
    "StoreBusyError",
    "StoreError",
    "open_store",
]


def open_store(location: str | None) -> Store:
    """Open the store named by ``location`` (a directory, ``:memory:``, or a SPARQL server URL)."""
    if location and location.startswith(("http://", "https://")):
        raise StoreError(
            f"remote SPARQL stores ({location}) are not supported by this version; "
            "set CIVICFED_STORE to a directory for the embedded store"
        )
    from .oxigraph import EmbeddedStore

    return EmbeddedStore(None if location in (None, "", ":memory:") else location)
