"""What one write sees and decides: the stored state of every record it touches, and the final
state it builds op by op."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model.kinds import KINDS, Kind
from ..model.rdf import Ctx
from ..store import Description
from .index import IndexEntry, graph_of
from .ops import Op
from .read import Reader


@dataclass
class Batch:
    """What one write sees and decides, keyed by record IRI."""

    index: dict[str, IndexEntry] = field(default_factory=dict)
    old_desc: Description = field(default_factory=dict)
    old_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Final state after the batch: data for live records, None for deleted ones.
    final: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    #: Stored members of counted records, read once per batch (see counts.py).
    links: dict[Any, dict[str, dict[str, str | None]]] = field(default_factory=dict)

    def revert(self, iri: str) -> None:
        """Forget a rejected op's effect on the final state."""
        if iri in self.old_data:
            self.final[iri] = self.old_data[iri]
        else:
            self.final.pop(iri, None)


def load_batch(reader: Reader, territory: str, ops: Sequence[Op]) -> Batch:
    """The index entries and stored triples of every record the ops touch."""
    batch = Batch()
    by_kind: dict[str, set[str]] = {}
    for op in ops:
        iri = reader.iri(territory, op.kind, op.local_id)
        batch.kinds[iri] = op.kind
        by_kind.setdefault(op.kind.name, set()).add(iri)
    ctx = Ctx(reader.urls, territory)
    for kind_name, iris in by_kind.items():
        kind = KINDS[kind_name]
        entries = reader.index_entries(territory, kind, sorted(iris))
        batch.index.update(entries)
        existing = sorted(entries)
        if existing:
            desc = reader.store.describe(existing, graph_of(reader.urls, kind, territory))
            batch.old_desc.update(desc)
            for iri in existing:
                if not entries[iri].deleted:
                    batch.old_data[iri] = kind.mapping.from_description(iri, desc, ctx)
    return batch


def subjects(iri: str, desc: Description) -> list[str]:
    """The record's own subjects in a description: its IRI and its ``#`` nodes."""
    prefix = iri + "#"
    return [s for s in desc if s == iri or s.startswith(prefix)]
