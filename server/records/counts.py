"""Maintained counts (a proposal's votes and comments): what the model declares as
:class:`~server.model.kinds.Tally`, kept exact by every write.

A published count is a function of the stored state only: the number of live members (votes,
comments) linking to the record when there is at least one, otherwise the figure the record's
platform last reported (None: no count). Each write recounts the records whose members it moves,
and those it rewrites.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from vocabularies import SDO

from ..errors import Conflict
from ..model.kinds import KINDS, Kind, Tally
from ..model.rdf import Target
from .batch import Batch
from .index import graph_of
from .ops import Outcome
from .read import Reader

#: Records whose counts are maintained, and how: (counted kind, tally, member kind).
TALLIES: tuple[tuple[Kind, Tally, Kind], ...] = tuple(
    (kind, tally, KINDS[tally.member]) for kind in KINDS.values() for tally in kind.tallies
)
Counts = dict[str, dict[str, int | None]]


def link_of(member: Kind, tally: Tally, counted: Kind, data: dict[str, Any] | None) -> str | None:
    """The id of the counted record a member's data names (a comment may be about something else)."""
    if not data:
        return None
    value = data.get(tally.link)
    if isinstance(member.mapping.by_name[tally.link], Target):
        return value["id"] if isinstance(value, dict) and value.get("kind") == counted.name else None
    return value


class Tallies:
    """The counting of one write: its reader, its territory and its batch."""

    def __init__(self, reader: Reader, territory: str, batch: Batch) -> None:
        self.reader, self.territory, self.batch = reader, territory, batch
        self.urls = reader.urls
        self._members: dict[tuple[str, str, str], dict[str, set[str]]] = {}

    def counts(self) -> Counts:
        """Published counts of every counted record the batch touches, after the batch."""
        batch = self.batch
        result: Counts = {}
        for counted, tally, member in TALLIES:
            rewritten = self._rewritten(counted)
            touched = self._scope(counted, tally, member)
            if not touched:
                continue
            existing = self._links(counted, tally, member, touched)
            in_batch = self._in_batch(counted, tally, member)
            for p in touched:
                members = {x for x in existing.get(p, {}) if x not in batch.final} | in_batch.get(p, set())
                if p in rewritten:
                    reported = batch.final[p].get(tally.field)  # type: ignore[union-attr]
                else:
                    entry = batch.index.get(p)
                    reported = entry.reported.get(tally.field) if entry else None
                result.setdefault(p, {})[tally.field] = len(members) if members else reported
        return result

    def presence(self, counted: Kind, tally: Tally, member: Kind, records: set[str]) -> dict[str, tuple[bool, bool]]:
        """Whether each of these records has members before the write and after it (a proposal's
        individual votes: while it has none, the votes its platform reported count)."""
        stored: dict[str, dict[str, str | None]] = {}
        for (name, scope), links in self.batch.links.items():  # what the counting already read
            if name == member.name:
                stored.update({p: links.get(p, {}) for p in scope})
        missing = records - stored.keys()
        if missing:
            found = self._links(counted, tally, member, missing)
            stored.update({p: found.get(p, {}) for p in missing})
        in_batch = self._in_batch(counted, tally, member)
        return {
            p: (bool(stored[p]), bool({x for x in stored[p] if x not in self.batch.final} | in_batch.get(p, set())))
            for p in records
        }

    def touched(self, counted: Kind, tally: Tally, member: Kind) -> set[str]:
        """Counted records whose members the batch moves (old and new targets of its members)."""
        return self._touched(counted, tally, member)

    def _in_batch(self, counted: Kind, tally: Tally, member: Kind) -> dict[str, set[str]]:
        """The batch's live members of each counted record, after the batch (its final states
        are settled once the counting starts)."""
        key = (counted.name, tally.field, member.name)
        if key in self._members:
            return self._members[key]
        in_batch: dict[str, set[str]] = {}
        self._members[key] = in_batch
        for iri, k in self.batch.kinds.items():
            target = link_of(member, tally, counted, self.batch.final.get(iri)) if k is member else None
            if target:
                in_batch.setdefault(self.urls.resource(self.territory, counted.name, target), set()).add(iri)
        return in_batch

    def check_unique(self, accepted: list[Outcome]) -> None:
        """One member per participant where the tally says so (one vote per voter per proposal),
        across the store and the batch; a second one is rejected (409)."""
        for counted, tally, member in TALLIES:
            if tally.one_per_participant and self._touched(counted, tally, member):
                self._check_unique(accepted, counted, tally, member)

    def _check_unique(self, accepted: list[Outcome], counted: Kind, tally: Tally, member: Kind) -> None:
        batch, participant = self.batch, member.participant
        assert participant is not None, f"{member.name} names no participant"
        identity = next(k for k, v in member.identities.items() if v == participant.name)
        existing = self._links(counted, tally, member, self._scope(counted, tally, member))
        by_participant: dict[str, dict[str, str]] = {}  # counted record → participant account → member
        for p, found in existing.items():
            for x, account in found.items():
                if x not in batch.final and account:
                    by_participant.setdefault(p, {})[account] = x
        for o in accepted:
            if o.op.kind is not member or o.status == "rejected":
                continue
            iri = self.reader.iri(self.territory, member, o.op.local_id)
            data = batch.final.get(iri)
            target = link_of(member, tally, counted, data)
            if data is None or target is None:
                continue
            p = self.urls.resource(self.territory, counted.name, target)
            account = self.urls.account(self.territory, data[participant.name])
            other = by_participant.setdefault(p, {}).get(account)
            if other is not None and other != iri:
                o.status = "rejected"
                o.error = Conflict(
                    f"this {identity} already {tally.one_per_participant} {counted.name} {target!r} "
                    f"({member.name} {other.rsplit('/', 1)[-1]!r})",
                    errors=[
                        {
                            "pointer": f"#/{identity}",
                            "detail": f"One {member.name} per {identity} per {counted.name}.",
                        }
                    ],
                )
                batch.revert(iri)
                continue
            by_participant[p][account] = iri

    def stored(self, counted: Kind, records: list[str]) -> dict[str, int]:
        """Current published counter values of these records, by counter node IRI."""
        counters = [counted.mapping.by_name[t.field] for t in counted.tallies]
        nodes = [c.node(p) for p in records for c in counters]  # type: ignore[attr-defined]
        out: dict[str, int] = {}
        for node, triples in self.reader.store.describe(nodes, self.urls.territory_graph(self.territory)).items():
            for p, o in triples:
                if p == SDO.userInteractionCount:
                    out[node] = int(o.value)  # type: ignore[attr-defined]
        return out

    # -- scope -------------------------------------------------------------------------------
    def _rewritten(self, counted: Kind) -> set[str]:
        return {i for i, k in self.batch.kinds.items() if k is counted and self.batch.final.get(i) is not None}

    def _touched(self, counted: Kind, tally: Tally, member: Kind) -> set[str]:
        """Counted records whose members the batch moves (old and new targets of its members)."""
        touched: set[str] = set()
        for iri, k in self.batch.kinds.items():
            if k is not member or iri not in self.batch.final:  # unchanged records move no count
                continue
            for data in (self.batch.old_data.get(iri), self.batch.final.get(iri)):
                target = link_of(member, tally, counted, data)
                if target:
                    touched.add(self.urls.resource(self.territory, counted.name, target))
        return touched

    def _scope(self, counted: Kind, tally: Tally, member: Kind) -> set[str]:
        """Records whose members must be counted: those the batch's members move, and the stored
        records it rewrites."""
        touched = self._touched(counted, tally, member)
        return touched | {p for p in self._rewritten(counted) if p in self.batch.index}

    def _known(self, counted: Kind, records: Iterable[str]) -> set[str]:
        """Records that exist or existed in the store (only those can have stored members)."""
        records = sorted(records)
        missing = [p for p in records if p not in self.batch.index]
        if missing:
            self.batch.index.update(self.reader.index_entries(self.territory, counted, missing))
        return {p for p in records if p in self.batch.index}

    def _links(self, counted: Kind, tally: Tally, member: Kind, records: set[str]) -> dict[str, dict[str, str | None]]:
        """Stored members of these records with their participant, read once per batch."""
        key = (member.name, frozenset(records))
        if key not in self.batch.links:
            self.batch.links[key] = dict(self._stored_members(member, tally, self._known(counted, records)))
        return self.batch.links[key]

    def _stored_members(
        self, member: Kind, tally: Tally, records: Iterable[str]
    ) -> Iterator[tuple[str, dict[str, str | None]]]:
        """For each record, its stored members of ``member`` kind with their participant account."""
        targets = sorted(records)
        found: dict[str, dict[str, str | None]] = {p: {} for p in targets}
        graph = graph_of(self.urls, member, self.territory)
        predicate = member.mapping.by_name[tally.link].predicate
        participant = member.participant
        who = f"OPTIONAL {{ ?x <{participant.predicate}> ?a }}" if participant else ""
        types = f"?x a <{member.mapping.types[0]}> ."
        for i in range(0, len(targets), 500):
            values = " ".join(f"<{p}>" for p in targets[i : i + 500])
            rows = self.reader.store.select(
                f"SELECT ?p ?x ?a WHERE {{ GRAPH <{graph}> {{ VALUES ?p {{ {values} }} ?x <{predicate}> ?p . {types} "
                f"{who} }} }}"
            )
            for r in rows:
                a = r["a"]
                found[r["p"].value][r["x"].value] = a.value if a is not None else None
        yield from found.items()
