"""How one write moves its territory's indicators (records/indicators.py keeps them): the
difference between what its records count for after it and before it (records/contributions.py),
and what moves with them without being written: the votes and comments of a proposal deleted or
moved to another process, district or date, the projects of a budget moved, and a proposal's
reported votes once its first individual vote arrives (or its last one goes).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from ..model.kinds import KINDS
from ..model.rdf import Target
from .batch import Batch
from .contributions import COUNTED, DEPENDS, TARGETS, Context, Place, Sums, contributions, view
from .counts import Counts, Tallies
from .decisions import current_decisions
from .index import graph_of
from .listing import ListQuery
from .read import Reader

#: Records read per query, and per page of a walk through a territory.
CHUNK, PAGE = 500, 1000
#: The kinds whose records name a person (an author, a voter).
PERSONAL = ("proposal", "comment", "vote")


class WriteContributions:
    """How one write moves its territory's indicator cells: the records it writes, and those whose
    contributions depend on them."""

    def __init__(
        self,
        reader: Reader,
        territory: str,
        batch: Batch,
        tallies: Tallies,
        counts: Counts,
        receivability: tuple[dict[str, str], dict[str, str]] = ({}, {}),
    ) -> None:
        self.reader, self.urls, self.territory = reader, reader.urls, territory
        self.batch, self.tallies, self.counts = batch, tallies, counts
        #: Stored records read for the contexts, by IRI (None: not live).
        self.stored: dict[str, dict[str, Any] | None] = {}
        self.voted: dict[str, tuple[bool, bool]] = {}  # proposal → (before, after the write)
        # Decisions by proposal IRI before the write and after it (records/decisions.py).
        before, after = receivability
        self.old = Context(self._old_target, lambda i: self._voted(i)[0], lambda i: before.get(self._proposal(i)))
        self.new = Context(self._new_target, lambda i: self._voted(i)[1], lambda i: after.get(self._proposal(i)))

    def delta(self, changed: Iterable[str], decided: dict[str, dict[str, Any]] | None = None) -> Sums:
        """The difference the write makes to the cells: ``changed`` are the records it rewrites,
        ``decided`` the proposals whose receivability it changes (with their data)."""
        batch = self.batch
        affected: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {
            iri: (batch.kinds[iri].name, _with_id(iri, batch.old_data.get(iri)), _with_id(iri, batch.final.get(iri)))
            for iri in changed
        }
        for iri, data in (decided or {}).items():
            if iri not in affected:  # not rewritten: its decision moves, and the counts the write gives it
                affected[iri] = ("proposal", _with_id(iri, data), {**_with_id(iri, data), **self.counts.get(iri, {})})
        self._prefetch(affected.values())
        # A proposal whose first individual vote arrives (or last one goes): its reported votes.
        vote_tally = next(t for t in KINDS["proposal"].tallies if t.member == "vote")
        touched = self.tallies.touched(KINDS["proposal"], vote_tally, KINDS["vote"])
        self.voted.update(self.tallies.presence(KINDS["proposal"], vote_tally, KINDS["vote"], touched))
        flipped = [p for p in touched if p not in affected and self.voted[p][0] != self.voted[p][1]]
        for p, data in self._load("proposal", flipped).items():
            if data is not None:
                affected[p] = ("proposal", data, {**data, **self.counts.get(p, {})})
        # Records that count against one whose process, date or life the write changes.
        moving = [i for i, (kind, old, new) in affected.items() if kind in TARGETS and self._moves(kind, old, new)]
        while moving:
            found = self._dependents(moving, affected.keys())
            moving = []
            for iri, (kind, data) in found.items():
                if iri not in affected:
                    affected[iri] = (kind, data, data)
                    if kind in TARGETS and self._moves(kind, data, data):
                        moving.append(iri)
        self._know_voted([iri for iri, (kind, *_) in affected.items() if kind == "proposal"])
        out, added, taken = Sums(), [], []
        for kind, old, new in affected.values():
            added += contributions(kind, new, self.new)
            taken += contributions(kind, old, self.old)
        out.add(added)
        out.add(taken, -1)
        return out

    def remaining(self, persons: set[str]) -> dict[str, set[Place]]:
        """Where each of these people still has a contribution after the write: from all their
        records (those the write leaves as they are, and those it writes)."""
        out: dict[str, set[Place]] = {p: set() for p in persons}
        accounts = {self.urls.account(self.territory, p) for p in persons}
        for kind_name in PERSONAL:
            kind = KINDS[kind_name]
            field = kind.participant
            if field is None:
                continue
            graph = graph_of(self.urls, kind, self.territory)
            iris: set[str] = set()
            ordered = sorted(accounts)
            for i in range(0, len(ordered), CHUNK):
                values = " ".join(f"<{a}>" for a in ordered[i : i + CHUNK])
                rows = self.reader.store.select(
                    f"SELECT DISTINCT ?x WHERE {{ GRAPH <{graph}> {{ VALUES ?a {{ {values} }} "
                    f"?x <{field.predicate}> ?a ; a <{kind.mapping.types[0]}> }} }}"
                )
                iris |= {r["x"].value for r in rows if r["x"].value not in self.batch.final}
            found = [(i, d) for i, d in self._load(kind_name, sorted(iris)).items() if d is not None]
            found += [
                (i, d)
                for i, d in self.batch.final.items()
                if d is not None and self.batch.kinds[i] is kind and d.get(field.name) in persons
            ]
            if kind_name == "proposal":
                self._know_voted([iri for iri, _ in found])
            for iri, data in found:
                for c in contributions(kind_name, _with_id(iri, data), self.new):
                    if c.person in persons:
                        out[c.person].update(c.places())
        return out

    def _proposal(self, local_id: str) -> str:
        return self.urls.resource(self.territory, "proposal", local_id)

    def _moves(self, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        return view(kind, old, self.old) != view(kind, new, self.new)

    # -- contexts ----------------------------------------------------------------------------
    def _old_target(self, kind: str, local_id: str) -> dict[str, Any] | None:
        iri = self.urls.resource(self.territory, kind, local_id)
        if iri in self.batch.kinds:
            return _with_id(iri, self.batch.old_data.get(iri))
        return self._stored(kind, iri)

    def _new_target(self, kind: str, local_id: str) -> dict[str, Any] | None:
        iri = self.urls.resource(self.territory, kind, local_id)
        if iri in self.batch.final:
            return _with_id(iri, self.batch.final[iri])
        if iri in self.batch.kinds:  # in the write, left as stored
            return _with_id(iri, self.batch.old_data.get(iri))
        return self._stored(kind, iri)

    def _stored(self, kind: str, iri: str) -> dict[str, Any] | None:
        if iri not in self.stored:
            self._load(kind, [iri])
        return self.stored[iri]

    def _know_voted(self, proposals: list[str]) -> None:
        """Whether these proposals have individual votes, in one query for all of them."""
        missing = {p for p in proposals if p not in self.voted}
        if missing:
            self.voted.update(self.tallies.presence(KINDS["proposal"], self._vote_tally(), KINDS["vote"], missing))

    @staticmethod
    def _vote_tally() -> Any:
        return next(t for t in KINDS["proposal"].tallies if t.member == "vote")

    def _voted(self, local_id: str) -> tuple[bool, bool]:
        iri = self.urls.resource(self.territory, "proposal", local_id)
        if iri not in self.voted:
            tally = next(t for t in KINDS["proposal"].tallies if t.member == "vote")
            self.voted.update(self.tallies.presence(KINDS["proposal"], tally, KINDS["vote"], {iri}))
        return self.voted[iri]

    # -- reading -----------------------------------------------------------------------------
    def _prefetch(self, affected: Iterable[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]) -> None:
        """The records the written ones count against, read in one go per kind."""
        wanted: dict[str, set[str]] = {}
        for kind, *states in affected:
            for data in states:
                for target_kind, local_id in _targets(kind, data):
                    iri = self.urls.resource(self.territory, target_kind, local_id)
                    if iri not in self.batch.kinds and iri not in self.stored:
                        wanted.setdefault(target_kind, set()).add(iri)
        for kind, iris in wanted.items():
            self._load(kind, sorted(iris))

    def _load(self, kind_name: str, iris: list[str]) -> dict[str, dict[str, Any] | None]:
        out = self.reader.load(self.territory, KINDS[kind_name], iris, CHUNK)
        self.stored.update(out)
        return out

    def _dependents(self, targets: list[str], affected: Collection[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Stored live records whose contributions depend on these, but for the ``affected`` (a
        record of the write left as stored, or refused, is one of them)."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for kind_name, field, target_kind in DEPENDS:
            wanted = [t for t in targets if target_kind is None or self.urls.parse(t).kind == target_kind]  # type: ignore[union-attr]
            if not wanted:
                continue
            iris = _linked(self.reader, self.territory, kind_name, field, wanted) - set(affected)
            for iri, data in self._load(kind_name, sorted(iris)).items():
                if data is not None:
                    found[iri] = (kind_name, data)
        return found


def _with_id(iri: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record's data with its id (an op's data may leave it to the op)."""
    if data is None or "id" in data:
        return data
    return {**data, "id": iri.rsplit("/", 1)[-1]}


def _targets(kind: str, data: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The (kind, id) records a record's contributions depend on."""
    if not data:
        return []
    out = []
    for dep_kind, field, target_kind in DEPENDS:
        value = data.get(field) if dep_kind == kind else None
        if not value:
            continue
        if isinstance(KINDS[kind].mapping.by_name[field], Target):
            if isinstance(value, dict) and value.get("kind") in TARGETS:
                out.append((value["kind"], value["id"]))
        else:
            out.append((target_kind, value))  # type: ignore[arg-type]
    return out


def recount(reader: Reader, territory: str) -> Sums:
    """Every live record's contributions, added up: the territory's indicators from scratch. Each
    record is read once (pages follow record_modified: a record written during the walk comes
    again at its end, and its last version is kept)."""
    live: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in sorted({*COUNTED, *TARGETS}):
        found: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = reader.list(ListQuery(KINDS[kind], [territory], cursor=cursor, limit=PAGE))
            found.update((r["id"], r) for r in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        live[kind] = found
    voted = {v["proposal"] for v in live["vote"].values() if v["proposal"] in live["proposal"]}
    iris = {reader.urls.resource(territory, "proposal", p): p for p in live["proposal"]}
    status = {iris[p]: c.status for p, c in current_decisions(reader, territory, sorted(iris)).items()}
    ctx = Context(lambda kind, i: live.get(kind, {}).get(i), voted.__contains__, status.get)
    out = Sums()
    out.add(c for kind in COUNTED for data in live[kind].values() for c in contributions(kind, data, ctx))
    return out


def recount_project(reader: Reader, territory: str, project: str) -> Sums:
    """What one project's own records count for, added up: the project (delivered, its cost
    spent), the proposals it was derived from (their votes as reported, decisions, days to a
    decision), their votes, and the comments on them or on the project. The cells have no project
    dimension: a project's values are computed here, for its targets, from its few records."""
    urls = reader.urls_for(territory)  # a replicated territory's records keep their origin's IRIs
    known: dict[tuple[str, str], dict[str, Any] | None] = {}

    def target(kind: str, local_id: str) -> dict[str, Any] | None:
        if (kind, local_id) not in known:
            iri = urls.resource(territory, kind, local_id)
            known[(kind, local_id)] = reader.load(territory, KINDS[kind], [iri])[iri]
        return known[(kind, local_id)]

    data = target("project", project)
    if data is None:
        return Sums()
    wanted = {urls.resource(territory, "proposal", p): p for p in sorted(set(data.get("proposals") or ()))}
    for iri, proposal in reader.load(territory, KINDS["proposal"], list(wanted), CHUNK).items():
        known[("proposal", wanted[iri])] = proposal
    live = [p for p in wanted.values() if known[("proposal", p)] is not None]
    proposals = [urls.resource(territory, "proposal", p) for p in live]
    votes = _live(reader, territory, "vote", _linked(reader, territory, "vote", "proposal", proposals))
    abouts = [*proposals, urls.resource(territory, "project", project)]
    comments = _live(reader, territory, "comment", _linked(reader, territory, "comment", "about", abouts))
    voted = {v["proposal"] for v in votes}
    ids = dict(zip(proposals, live, strict=True))
    status = {ids[i]: c.status for i, c in current_decisions(reader, territory, sorted(ids)).items()}
    ctx = Context(target, voted.__contains__, status.get)
    out = Sums()
    counted = [("project", data), *(("proposal", known[("proposal", p)]) for p in live)]
    for kind, record in [*counted, *(("vote", v) for v in votes), *(("comment", c) for c in comments)]:
        out.add(contributions(kind, record, ctx))
    return out


def _linked(reader: Reader, territory: str, kind_name: str, field: str, targets: list[str]) -> set[str]:
    """The stored records of ``kind_name`` whose ``field`` names one of these records (by IRI),
    a few queries for all of them."""
    kind = KINDS[kind_name]
    predicate = kind.mapping.by_name[field].predicate
    graph = graph_of(reader.urls, kind, territory)
    iris: set[str] = set()
    for i in range(0, len(targets), CHUNK):
        values = " ".join(f"<{t}>" for t in targets[i : i + CHUNK])
        rows = reader.store.select(
            f"SELECT DISTINCT ?x WHERE {{ GRAPH <{graph}> {{ VALUES ?t {{ {values} }} "
            f"?x <{predicate}> ?t ; a <{kind.mapping.types[0]}> }} }}"
        )
        iris |= {r["x"].value for r in rows}
    return iris


def _live(reader: Reader, territory: str, kind_name: str, iris: set[str]) -> list[dict[str, Any]]:
    """These records as the JSON API reads them, but those not live."""
    loaded = reader.load(territory, KINDS[kind_name], sorted(iris), CHUNK)
    return [data for data in loaded.values() if data is not None]
