"""The report of a load: what each item became, and one entry per rejected item naming where
it is in the source (line, kind, id) and what is wrong (status, title, detail, field errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CivicfedError
from ..records import WriteReport


def error_entry(line: int | None, kind: str | None, local_id: str | None, err: CivicfedError) -> dict[str, Any]:
    """One rejected item, as the report lists it."""
    entry: dict[str, Any] = {"line": line}
    if kind:
        entry["kind"] = kind
    if local_id:
        entry["id"] = local_id
    entry.update({"status": err.status, "title": err.title, "detail": err.detail})
    if err.errors:
        entry["errors"] = err.errors
    return entry


@dataclass
class Report:
    """What a load did. When nothing was written, the counts say what it would have done."""

    territory: str
    written: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    quads: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: Rejected items past the first ``max_errors``: counted, not listed.
    errors_omitted: int = 0
    #: Items the source gave (records, deletions, rejected ones): an import run reports it.
    read: int = 0
    #: Statements the source gave about itself or its datasets, their digest, and whether they
    #: replaced the source's graph (they differ from the previous run's): an import run reports it.
    statements: int = 0
    statements_sha256: str | None = None
    statements_changed: bool = False

    @classmethod
    def of(cls, write: WriteReport, items: int, errors: list[dict[str, Any]], omitted: int, max_errors: int) -> Report:
        """The report of a write of ``items`` valid items, with the items rejected before it
        (``errors``, the first ones, and how many more); ``max_errors`` entries listed at most."""
        for o in write.rejected:
            assert o.error is not None
            errors.append(error_entry(o.op.line, o.op.kind.name, o.op.local_id, o.error))
        errors.sort(key=lambda e: e["line"] or 0)
        omitted += max(0, len(errors) - max_errors)
        del errors[max_errors:]
        counts = write.counts()
        return cls(write.territory, write.written, counts, items - len(write.rejected), write.quads, errors, omitted)

    @property
    def rejected(self) -> int:
        return len(self.errors) + self.errors_omitted

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON API answers it and ``civicfed import`` prints it."""
        return {
            "territory": self.territory,
            "written": self.written,
            "created": self.counts.get("created", 0),
            "updated": self.counts.get("updated", 0),
            "deleted": self.counts.get("deleted", 0),
            "unchanged": self.counts.get("unchanged", 0),
            "superseded": self.counts.get("superseded", 0),
            "rejected": self.rejected,
            "accepted": self.accepted,
            "quads": self.quads,
            "errors": self.errors,
            "errors_omitted": self.errors_omitted,
        }
