"""What importers hand to the loader: a :class:`Source` yielding :data:`Item` s, and the
:class:`Importer` entry each importer module registers (``importers/__init__.py``).

An importer only reads and maps its format; validation (schemas), pseudonymisation, reference
and uniqueness checks, counts and the atomic write are the loader's and the write path's, the
same for every source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import CivicfedError
from ..model.kinds import Kind


@dataclass(frozen=True)
class Record:
    """A record to create or replace, as the source gives it (the loader validates it)."""

    kind: Kind
    data: dict[str, Any]
    #: Where it is in the source (a line number), for the report.
    line: int | None = None
    #: Written only if the territory has no such record yet: a parent the source names but does
    #: not describe (a Decidim space), made up so that its children have something to link to,
    #: must not overwrite the real one.
    if_absent: bool = False


@dataclass(frozen=True)
class Deletion:
    """The source says this record is deleted (replaying it is not an error)."""

    kind: Kind
    local_id: str
    line: int | None = None


@dataclass(frozen=True)
class Rejected:
    """Something of the source that cannot be a record (malformed, unknown kind…)."""

    error: CivicfedError
    line: int | None = None
    kind: str | None = None
    local_id: str | None = None


@dataclass(frozen=True)
class Statements:
    """RDF the source publishes about itself or its data (catalog metadata): N-Triples statements
    without the final `` .``, written into the source's own graph (``Urls.source_graph``)."""

    statements: tuple[str, ...]


Item = Record | Deletion | Rejected | Statements


class Source(Protocol):
    """A source being read: what it is called (a file name, a URL) and its items. A source
    fetched from the network also says, once read, its ``sha256`` (of every byte fetched, in
    order) and ``location`` (its URL): an import run's provenance names them."""

    #: Identifies the source (its graph is ``Urls.source_graph(territory, id)``): a slug.
    id: str
    #: What to call it in reports and messages.
    name: str

    def items(self) -> Iterator[Item]: ...


#: How an importer reads: the input (bytes, lines or a binary stream) and its options.
Reader = Callable[..., Source]


@dataclass(frozen=True)
class Importer:
    """One entry of the importers table (``importers.IMPORTERS``)."""

    format: str
    summary: str
    read: Reader
    #: Media types the JSON API accepts as an upload of this format (empty: not uploadable).
    media_types: tuple[str, ...] = ()
    #: The source argument of ``civicfed import FORMAT SOURCE`` is a file to open (else a name).
    reads_file: bool = True
    options: dict[str, str] = field(default_factory=dict)
    #: Each run reads the whole source: what an earlier run loaded from it and it no longer
    #: gives is deleted (a feed of changes, like NDJSON, is not a snapshot).
    snapshot: bool = False
    #: Invalid items are quarantined and the valid ones loaded (the import of another
    #: platform's data); False: all or nothing unless asked (the bulk ingest of one's own).
    quarantine: bool = True
    #: It reads a URL (``read(url, fetcher=…)``, through importers/remote.py) when given one.
    remote: bool = False
