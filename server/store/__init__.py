"""Quad store access: one interface (:class:`Store`), chosen by one setting.

``CIVICFED_STORE`` is either a directory (embedded Oxigraph, the default) or an ``http(s)://``
URL of a SPARQL 1.1 server (scale-out).
"""

from __future__ import annotations

from typing import Any

from .base import (
    Changeset,
    Description,
    QueryResult,
    Stage,
    Store,
    StoreBusyError,
    StoreError,
    StoreRefused,
    StoreTimeout,
)

__all__ = [
    "Changeset",
    "Description",
    "QueryResult",
    "Stage",
    "Store",
    "StoreBusyError",
    "StoreError",
    "StoreRefused",
    "StoreTimeout",
    "many_processes",
    "open_store",
]


def _is_remote(location: str | None) -> bool:
    return bool(location) and location.startswith(("http://", "https://"))  # type: ignore[union-attr]


def many_processes(location: str | None) -> bool:
    """Whether several processes may open the store at ``location`` at once (the ``shared``
    capability, known before opening it: a SPARQL server yes, an embedded store no)."""
    return _is_remote(location)


def open_store(location: str | None, **options: Any) -> Store:
    """Open the store named by ``location``: a directory (embedded Oxigraph), ``:memory:``, or the
    query endpoint URL of a SPARQL 1.1 server. ``options`` go to :class:`RemoteStore`."""
    if _is_remote(location):
        from .remote import RemoteStore

        return RemoteStore(location, **{k: v for k, v in options.items() if v is not None})
    from .oxigraph import EmbeddedStore

    return EmbeddedStore(None if location in (None, "", ":memory:") else location)
