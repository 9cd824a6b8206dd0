"""What a write asks for and what it did: operations, their outcomes, the report of a write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import CivicfedError
from ..model.kinds import Kind

Action = Literal["upsert", "patch", "delete"]
Status = Literal["created", "updated", "deleted", "rejected", "unchanged", "superseded"]


@dataclass
class Op:
    """One change asked for: create/replace, merge-patch, or delete one record."""

    kind: Kind
    local_id: str
    action: Action
    data: dict[str, Any] | None = None
    if_match: str | None = None
    create_only: bool = False
    #: ``If-None-Match: *``: only if the record does not exist (else 412).
    if_none_match: bool = False
    #: Deleting a record that does not exist (or no longer) is not an error (sync replays).
    missing_ok: bool = False
    #: Create the record only if it does not exist; an existing one is left as it is, unchanged
    #: (the parent an importer makes up for records whose source names it but does not describe).
    keep_existing: bool = False
    #: Made by the loader, not given by the source (a district reassignment): the record keeps
    #: the provenance it had instead of getting the run's.
    from_source: bool = True
    #: Where the op came from in its source (an NDJSON line), for reports.
    line: int | None = None


@dataclass
class Outcome:
    op: Op
    status: Status = "rejected"
    error: CivicfedError | None = None


@dataclass
class WriteReport:
    territory: str
    outcomes: list[Outcome]
    written: bool
    quads: int = 0

    @property
    def rejected(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "rejected"]

    def counts(self) -> dict[str, int]:
        out = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0, "superseded": 0, "rejected": 0}
        for o in self.outcomes:
            out[o.status] += 1
        return out


@dataclass
class Page:
    """A page of a list and the cursor of the next one (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None
