"""The one write path: validate → decide op by op → pseudonymise → authorise → check references
and uniqueness → maintain counts → one atomic :class:`~server.store.Changeset`.

Every write goes through :meth:`Writer.write`: a PUT, a PATCH, a DELETE, a whole ingest batch,
an import. docs/architecture.md ("Write path") walks through it step by step.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from vocabularies import AS, CF, DCT, RDF, XSD

from ..errors import (
    CivicfedError,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    from_validation_error,
)
from ..model.kinds import KINDS, Kind
from ..model.rdf import Ctx, Ref, Target
from ..model.terms import canonical_datetime, format_datetime, literal, typed
from ..privacy import pseudonymise
from ..state import Principal, State
from ..store import Changeset, StoreError
from .authz import authorize
from .batch import Batch, load_batch, subjects
from .cell_rows import CellRows
from .clock import Clock, etag, micros
from .contributions import Context, Sums, contributions
from .counts import Counts, Tallies
from .decisions import Decider
from .edit import editable, merge_patch
from .history import emit_history, erase_history
from .index import IndexEntry, emit_index, graph_of
from .indicators import IndicatorCells, Pending
from .ops import Op, Outcome, WriteReport
from .participants import Participants
from .read import Reader
from .write_indicators import WriteContributions, recount

log = logging.getLogger(__name__)

CLOCK_ALL = "*"  # the clock is one for the whole instance: commit order is time order


def prepare(kind: Kind, data: Any, *, local_id: str | None = None, partial: bool = False) -> dict[str, Any]:
    """Validate one record's JSON with its kind's schema (raises ValidationFailed)."""
    if not isinstance(data, dict):
        raise ValidationFailed(
            f"a {kind.name} must be a JSON object", errors=[{"pointer": "#", "detail": "Not a JSON object."}]
        )
    if local_id is not None:
        body_id = data.get("id")
        if body_id is not None and body_id != local_id:
            raise ValidationFailed(
                f"the body's id {body_id!r} differs from the id in the URL {local_id!r}",
                errors=[{"pointer": "#/id", "detail": "Must equal the id in the URL."}],
            )
        data = {**data, "id": local_id}
    try:
        loaded = kind.loader.load(data, partial=partial)
    except ValidationError as exc:
        raise from_validation_error(exc, kind.name) from exc
    if not loaded.get("id"):
        raise ValidationFailed(f"a {kind.name} needs an id", errors=[{"pointer": "#/id", "detail": "Missing."}])
    return loaded


@dataclass
class Stamp:
    """What a record's new time goes into, given at commit: its index entry, and the time of its
    tombstone for a deletion."""

    kind: Kind
    iri: str
    existed: bool
    deleted: bool = False
    reported: dict[str, int] | None = None
    tombstone_graph: str | None = None
    #: When the record was first recorded: None for a record new (or back) in this write, whose
    #: time it is.
    created: dt.datetime | None = None

    def emit(self, cs: Changeset, writer: Writer, territory: str, now: dt.datetime) -> None:
        if self.tombstone_graph is not None:
            cs.add(self.tombstone_graph, [f"<{self.iri}> <{AS.deleted}> {typed(format_datetime(now), XSD.dateTime)}"])
        created = now if self.created is None else self.created
        emit_index(
            cs, writer.urls, territory, self.kind, self.iri, now,
            deleted=self.deleted, existed=self.existed, reported=self.reported, created=created,  # type: ignore[arg-type]
        )  # fmt: skip


class Writer:
    """Writes of one instance: its reader (for what is stored), state database and record clock."""

    def __init__(self, reader: Reader, state: State, clock: Clock, *, shared_clock: bool) -> None:
        self.reader = reader
        self.store = reader.store
        self.urls = reader.urls
        self.state = state
        self.clock = clock
        # With a store several processes write to, their clocks meet in the state database, so
        # that record_modified keeps growing in commit order across processes. A store with one
        # writing process seeds its clock past the newest stored time instead.
        self.shared_clock = shared_clock
        self._clock_seeded = False
        self.cells = IndicatorCells(self.store, self.urls, Participants(state), CellRows(state))
        #: Whether writes keep the indicator cells current (off only to measure what it costs).
        self.maintain_indicators = True
        #: The fewest people a published breakdown cell may count (records/cube.py).
        self.min_people = 5
        self._swept = False
        #: Writes committed by this process, per territory: what derives from a territory's records
        #: (the catalog's datasets) is rebuilt for the territories whose count moved.
        self.changes: Counter[str] = Counter()

    def write(
        self,
        territory: str,
        ops: list[Op],
        principal: Principal | None,
        *,
        partial: bool = False,
        dry_run: bool = False,
        extra: Changeset | Callable[[WriteReport], Changeset] | None = None,
        provenance: Sequence[tuple[str, str]] = (),
    ) -> WriteReport:
        """Apply operations atomically; with ``partial`` only the valid ones, else all or none.

        ``principal`` None is the server's operator (command line, demo loader): no role check.
        ``extra`` is written in the same atomic step (an import's source graph); a function
        makes it from the report of what the write does (an import run's PROV-O, with its
        counts). Each record written (created or changed) also gets the ``provenance``
        statements, (predicate, object) pairs: a record left as stored keeps those it had.
        """
        outcomes = [Outcome(op) for op in ops]
        # One op per record: the last line on a record wins, earlier ones are superseded (a
        # rejection then always names the line at fault).
        last = {(o.op.kind.name, o.op.local_id): i for i, o in enumerate(outcomes)}
        for i, o in enumerate(outcomes):
            if last[(o.op.kind.name, o.op.local_id)] != i:
                o.status = "superseded"
        live_ops = [o for o in outcomes if o.status != "superseded"]
        secret = self.state.secret(territory) or b""
        with self.state.write_lock(territory):
            if self.maintain_indicators and self.cells.stale(territory):
                self.repair_indicators(territory)
            batch = load_batch(self.reader, territory, [o.op for o in live_ops])
            tallies = Tallies(self.reader, territory, batch)
            accepted: list[Outcome] = []
            for outcome in live_ops:
                try:
                    self._decide(territory, outcome, batch, principal, secret)
                    accepted.append(outcome)
                except CivicfedError as err:
                    outcome.status, outcome.error = "rejected", err
            self._check_references(territory, accepted, batch)
            tallies.check_unique(accepted)
            accepted = [o for o in accepted if o.status != "rejected"]
            if dry_run or (len(accepted) < len(live_ops) and not partial):
                return WriteReport(territory, outcomes, written=False)
            # The changeset is built here, under this territory's lock only: a large ingest does
            # not hold up the writes of other territories while it maps thousands of records.
            changeset, stamps, pending = self._changeset(territory, accepted, batch, tallies, provenance)
            if callable(extra):
                extra = extra(WriteReport(territory, outcomes, written=True))
            if extra is not None:
                changeset.merge(extra)

            # Values per inhabitant rest on the populations this write stores: then its cube is
            # made again from them, after its values.
            rebuild = self.maintain_indicators and _moves_populations(batch, extra)
            marker = self.cells.pending_marker(territory)
            if pending is not None or rebuild:
                # The marker goes with the records; the participants and values after them, from
                # what is then stored (records/indicators.py).
                changeset.merge(pending.marker if pending is not None else self.cells.marked(territory))

            def stamped(now: Callable[[], dt.datetime]) -> Changeset:
                for stamp in stamps:
                    stamp.emit(changeset, self, territory, now())
                return changeset

            self.commit(stamped)
            self.changes[territory] += 1
            try:
                # Derived data: computed under the territory's lock only, then committed.
                if pending is not None:  # with the whole cube when it is made again
                    self._commit_all(pending.finish(rebuild=rebuild))
                elif rebuild:
                    self._commit_all(self.cells.rebuild_cube(territory, self.min_people))
            except (CivicfedError, StoreError, SQLAlchemyError):
                # The records are written: the write stands. The marker stays, and the
                # territory's next write sets its values again from its records (the state
                # database, where the participants are, may fail as the store may).
                log.exception("the indicators of a write to %s were not written (%s stays)", territory, marker)
        return WriteReport(territory, outcomes, written=True, quads=changeset.insert_count())

    def repair_indicators(self, territory: str) -> None:
        """Set a territory's indicator values and cube from its records (the caller holds its
        write lock): after a process died between a write's records and its values."""
        sums = recount(self.reader, territory)
        names = self.reader.urls_for(territory) if self.reader.origin_of(territory) else None
        changeset = self.cells.replace(territory, sums, self.min_people, names=names)
        self.commit(lambda _: changeset)
        self.cells.settled(territory)

    def decide(self, territory: str, processes: set[str] | None = None, now: dt.datetime | None = None) -> int:
        """Decide anew the receivability of the proposals of these processes (every process with
        rules by default) as of ``now`` (default: now): what a deadline passing changes without a
        write (the server's sweep, ``civicfed rules evaluate``). Returns how many decisions changed."""
        with self.state.write_lock(territory):
            decider = Decider(self.reader, territory, None, {}, now or dt.datetime.now(dt.UTC))
            wanted = decider.ruled_processes() if processes is None else processes
            stamp = decider.prepare(decider.proposals_of(wanted))
            if stamp is None:
                return 0
            pending = None
            if self.maintain_indicators and decider.moved:  # the shares move with the statuses
                if self.cells.stale(territory):
                    self.repair_indicators(territory)
                iri = lambda local: self.urls.resource(territory, "proposal", local)  # noqa: E731
                old = Context(lambda *_: None, lambda _: False, lambda i: decider.before.get(iri(i)))
                new = Context(lambda *_: None, lambda _: False, lambda i: decider.after.get(iri(i)))
                delta = Sums()
                for data in decider.moved.values():
                    delta.add(contributions("proposal", data, new))
                    delta.add(contributions("proposal", data, old), -1)
                pending = self.cells.prepare(territory, delta, self.min_people, _nobody, publish=True)

            def build(now: Callable[[], dt.datetime]) -> Changeset:
                cs = Changeset()
                stamp.into(cs, now())
                if pending is not None:  # with its marker: the values follow
                    cs.merge(pending.marker)
                return cs

            self.commit(build)
            self.changes[territory] += 1  # what derives from its data (the catalog) is rebuilt
            if pending is not None:
                try:
                    self._commit_all(pending.finish())
                except (CivicfedError, StoreError, SQLAlchemyError):  # as a write's: the marker stays
                    log.exception("the indicators of %s's decisions were not written", territory)
            return len(stamp)

    def commit(self, build: Callable[[Callable[[], dt.datetime]], Changeset]) -> None:
        """Apply the changeset ``build`` makes, its record times taken from this instance's clock
        (``build``'s argument) and committed under one instance-wide lock, so that they grow in
        commit order across territories and processes: a consumer paging by record_modified, or
        syncing with modified_since, never misses a later commit. :meth:`write` commits through
        it, and so does a page of a peer's stream."""
        with self.state.commit_lock():
            if not self._swept:  # once per process, before its first write
                self.store.discard_leftovers()
                self._swept = True
            self._sync_clock()
            changeset = build(self.clock.next)
            if self.shared_clock:  # before the write: a write that times out may still land
                self.state.set_clock_floor(CLOCK_ALL, self.clock.last_us)
            self.store.apply(changeset)

    def _commit_all(self, changesets: list[Changeset]) -> None:
        """Derived data in order (records/indicators.py: the values, then their marker removed),
        outside the instance's commit lock: it carries no record time, so it needs no place in
        the commit order, and writing it there held up every other territory's records (a first
        import's cube is a third of its records: ingests were a quarter slower for it). The
        territory's lock, which the caller holds, orders it with the territory's own writes; a
        staged import holds it off by the store's own means (server/store/staging.py)."""
        for changeset in changesets:
            self.commit_derived(changeset)

    def commit_derived(self, changeset: Changeset) -> None:
        """One changeset of derived data (:meth:`_commit_all`)."""
        self.store.apply(changeset)

    def _sync_clock(self) -> None:
        """Never give a record time at or before one already given (restarts, other processes)."""
        if self.shared_clock:
            self.clock.advance_past(self.state.clock_floor(CLOCK_ALL))
        elif not self._clock_seeded:
            index_graphs = [g for g in self.store.graphs() if g.startswith(self.urls.internal_prefix + "index/")]
            if index_graphs:
                values = " ".join(f"<{g}>" for g in index_graphs)
                rows = self.store.select(
                    f"SELECT (MAX(?m) AS ?last) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?m }} "
                    f"FILTER(DATATYPE(?m) = <{XSD.dateTime}>) }}"
                )
                last = rows[0]["last"] if rows else None
                if last is not None:
                    moment = dt.datetime.fromisoformat(canonical_datetime(last.value))
                    self.clock.advance_past(micros(moment))
            self._clock_seeded = True

    # -- deciding ----------------------------------------------------------------------------
    def _decide(
        self, territory: str, outcome: Outcome, batch: Batch, principal: Principal | None, secret: bytes
    ) -> None:
        """Validate one op against the state the batch has built so far; record its final state."""
        op = outcome.op
        iri = self.reader.iri(territory, op.kind, op.local_id)
        entry = batch.index.get(iri)
        existed_before = iri in batch.final or (entry is not None and not entry.deleted)
        current = batch.final[iri] if iri in batch.final else batch.old_data.get(iri)
        exists = current is not None
        if op.if_match is not None:
            actual = etag(entry.modified) if entry and not entry.deleted and iri not in batch.final else None
            if (op.if_match != "*" and op.if_match != actual) or (op.if_match == "*" and not exists):
                raise PreconditionFailed(
                    f"{op.kind.name} {op.local_id!r} has changed (ETag {actual or 'none'}); GET it again",
                )
        if op.keep_existing and exists and op.action == "upsert":
            outcome.status = "unchanged"
            return
        if op.create_only and exists:
            raise Conflict(f"{op.kind.name} {op.local_id!r} already exists")
        if op.if_none_match and exists:
            raise PreconditionFailed(f"{op.kind.name} {op.local_id!r} exists (If-None-Match: *)")

        deleted = not exists and entry is not None and entry.deleted and iri not in batch.final
        if op.action == "delete":
            if not exists:
                if op.missing_ok:
                    outcome.status = "unchanged"
                    return
                if deleted:
                    raise Gone(f"{op.kind.name} {op.local_id!r} is already deleted")
                raise NotFound(f"no {op.kind.name} {op.local_id!r} in territory {territory!r}")
            if op.kind.name == "territory":
                raise Forbidden("a territory cannot be deleted through the API")
            authorize(principal, op, current, None)
            batch.final[iri] = None
            outcome.status = "deleted"
            return

        if op.action == "patch":
            if deleted:
                raise Gone(f"{op.kind.name} {op.local_id!r} was deleted; PUT it to create it again")
            if not exists:
                raise NotFound(f"no {op.kind.name} {op.local_id!r} in territory {territory!r}")
            merged = merge_patch(editable(current), op.data or {})  # type: ignore[arg-type]
            new = prepare(op.kind, merged, local_id=op.local_id)
        else:
            new = dict(op.data or {})
        pseudonymise(op.kind, new, secret)
        authorize(principal, op, current, new)
        if current is not None and iri not in batch.final and editable(current) == editable(new):
            # Writing what is already stored changes nothing: no new record_modified, so a
            # platform re-sending its whole dataset does not flood incremental syncs.
            outcome.status = "unchanged"
            return
        batch.final[iri] = new
        outcome.status = "updated" if existed_before else "created"

    def _check_references(self, territory: str, accepted: list[Outcome], batch: Batch) -> None:
        """Every new link to another record must name a record that is live after the batch.

        A link the record already had is kept even if its target was deleted since: deleting a
        process must not make its proposals uneditable. Rejecting a record can orphan another
        that links to it in the same batch, so passes repeat until nothing more is rejected.
        """
        kept: dict[str, set[str]] = {}
        wanted: dict[str, set[str]] = {}
        for o in accepted:
            iri = self.reader.iri(territory, o.op.kind, o.op.local_id)
            old = batch.old_data.get(iri)
            kept[iri] = set(self._targets(territory, o.op.kind, old)) if old else set()
            data = batch.final.get(iri)
            for target in self._targets(territory, o.op.kind, data) if data else ():
                ref = self.urls.parse(target)
                if target not in batch.final and target not in kept[iri] and ref and ref.kind in KINDS:
                    wanted.setdefault(ref.kind, set()).add(target)
        live: set[str] = set()
        for kind_name, iris in wanted.items():
            entries = self.reader.index_entries(territory, KINDS[kind_name], sorted(iris))
            live.update(i for i, e in entries.items() if not e.deleted)
        rejected_some = True
        while rejected_some:
            rejected_some = False
            for o in accepted:
                iri = self.reader.iri(territory, o.op.kind, o.op.local_id)
                data = batch.final.get(iri)
                if o.status == "rejected" or data is None:
                    continue
                for target, (field_name, kind_name, local_id) in self._targets(territory, o.op.kind, data).items():
                    if target in batch.final:
                        ok = batch.final[target] is not None
                    else:
                        ok = target in live or target in kept[iri]
                    if not ok:
                        o.status = "rejected"
                        o.error = ValidationFailed(
                            f"{field_name}: no {kind_name} {local_id!r} in territory {territory!r}",
                            errors=[{"pointer": f"#/{field_name}", "detail": f"Unknown {kind_name} {local_id!r}."}],
                        )
                        batch.revert(iri)
                        rejected_some = True
                        break

    def _targets(self, territory: str, kind: Kind, data: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
        """The records a record's data links to: IRI → (field, kind, id)."""
        out: dict[str, tuple[str, str, str]] = {}
        for f in kind.mapping.fields:
            value = data.get(f.name)
            if not value:
                continue
            if isinstance(f, Ref):
                for local_id in f.targets(value):
                    out[self.urls.resource(territory, f.kind, local_id)] = (f.name, f.kind, local_id)
            elif isinstance(f, Target):
                out[self.urls.resource(territory, value["kind"], value["id"])] = (f.name, value["kind"], value["id"])
        return out

    # -- changeset ---------------------------------------------------------------------------
    def _changeset(
        self,
        territory: str,
        accepted: list[Outcome],
        batch: Batch,
        tallies: Tallies,
        provenance: Sequence[tuple[str, str]] = (),
    ) -> tuple[Changeset, list[Stamp], Pending | None]:
        """The batch's changeset, without what depends on the record times (the stamps, in the
        order the times are to be given: the commit adds them); and its indicator values, written
        around it."""
        cs = Changeset()
        stamps: list[Stamp] = []
        pending: Pending | None = None
        counts = tallies.counts()
        # batch.final holds each changed record's final state; write them in batch order.
        written: set[str] = set()
        rewritten: list[str] = []
        for o in accepted:
            iri = self.reader.iri(territory, o.op.kind, o.op.local_id)
            if iri in batch.final and iri not in written:
                written.add(iri)
                data = batch.final[iri]
                if not self._emit_record(cs, stamps, territory, o.op.kind, iri, data, batch, counts):
                    o.status = "unchanged"
                    continue
                rewritten.append(iri)
                if data is not None and provenance:
                    graph = graph_of(self.urls, o.op.kind, territory)
                    if o.op.from_source:
                        cs.add(graph, [f"<{iri}> <{p}> {v}" for p, v in provenance])
                    else:  # rewritten by the loader for its own reasons: what made it stays so
                        kept = {p for p, _ in provenance}
                        old = batch.old_desc.get(iri, [])
                        cs.add(graph, [f"<{iri}> <{p}> {v}" for p, v in old if p in kept])
        # A deleted record's content goes from the event stream too (its tombstone says it is
        # gone): what a citizen or a moderator removes is not kept published a week longer.
        deleted = [i for i in written if batch.final[i] is None and not batch.kinds[i].private]
        erase_history(cs, self.store, self.urls, territory, deleted)
        # Counted records whose counts changed but that the batch did not rewrite.
        graph, ctx = self.urls.territory_graph(territory), Ctx(self.urls, territory)
        others = [p for p in counts if p not in written and p in batch.index and not batch.index[p].deleted]
        by_kind: dict[str, list[str]] = {}
        for p in others:
            by_kind.setdefault(self.urls.parse(p).kind or "territory", []).append(p)  # type: ignore[union-attr]
        for kind_name, records in by_kind.items():
            kind = KINDS[kind_name]
            stored = tallies.stored(kind, records)
            moved: list[str] = []
            for p in records:
                changed = False
                for tally in kind.tallies:
                    value = counts[p].get(tally.field)
                    counter = kind.mapping.by_name[tally.field]
                    node = counter.node(p)  # type: ignore[attr-defined]
                    if tally.field not in counts[p] or stored.get(node) == value:
                        continue
                    cs.drop(graph, node)
                    if value is not None:  # None: its last member went and no figure was reported
                        statements: list[str] = []
                        counter.emit(p, value, ctx, statements)
                        cs.add(graph, statements)
                    changed = True
                if changed:  # the published record changed: sync consumers must see it
                    entry = batch.index[p]
                    stamps.append(Stamp(kind, p, existed=True, reported=entry.reported, created=_first(entry)))
                    moved.append(p)
            if moved:  # the versions the new counts replace stay in the event stream
                old = self.store.describe(moved, graph)
                for p in moved:
                    emit_history(cs, self.urls, territory, p, batch.index[p].modified, old)
        decider = Decider(self.reader, territory, batch, counts, dt.datetime.now(dt.UTC))
        decisions = decider.prepare(decider.scope())
        if decisions is not None:  # a proposal and its decision change in one commit
            stamps.append(decisions)  # type: ignore[arg-type]
        if self.maintain_indicators:
            statuses = (decider.before, decider.after)
            moves = WriteContributions(self.reader, territory, batch, tallies, counts, statuses)
            delta = moves.delta(rewritten, decider.moved)
            pending = self.cells.prepare(territory, delta, self.min_people, moves.remaining, publish=True)
        return cs, stamps, pending

    def _emit_record(
        self,
        cs: Changeset,
        stamps: list[Stamp],
        territory: str,
        kind: Kind,
        iri: str,
        data: dict[str, Any] | None,
        batch: Batch,
        counts: Counts,
    ) -> bool:
        """Add a record's final state to the changeset; False if that state is what is stored."""
        reported: dict[str, int] | None = None
        if data is not None and kind.tallies:
            # What the platform says, kept apart: the published counts may be maintained ones.
            reported = {t.field: data[t.field] for t in kind.tallies if data.get(t.field) is not None}
            for tally in kind.tallies:
                value = counts.get(iri, {}).get(tally.field)
                if value is not None:  # None: no recorded member and no report, so no count
                    data[tally.field] = value
            old, entry = batch.old_data.get(iri), batch.index.get(iri)
            if old is not None and entry is not None and editable(old) == editable(data):
                if entry.reported != reported:  # nothing published changes; remember the new report
                    emit_index(
                        cs, self.urls, territory, kind, iri, entry.modified,
                        deleted=False, existed=True, reported=reported, created=_first(entry),
                    )  # fmt: skip
                return False
        graph = graph_of(self.urls, kind, territory)
        for s in subjects(iri, batch.old_desc):
            cs.drop(graph, s)
        existed = iri in batch.index
        if existed and not kind.private and data is not None:  # the version it replaces stays in the stream
            emit_history(cs, self.urls, territory, iri, batch.index[iri].modified, batch.old_desc)
        if data is None:
            # Private kinds (votes) keep their tombstone in the private graph: filtered syncs of
            # votes see deletions too, and nothing of them is published.
            cs.add(graph, self._tombstone_triples(territory, kind, iri, batch))
            stamps.append(Stamp(kind, iri, existed=existed, deleted=True, tombstone_graph=graph))
            return True
        ctx = Ctx(self.urls, territory, data.get("language"))
        cs.add(graph, kind.mapping.to_ntriples(iri, data, ctx))
        entry = batch.index.get(iri)
        first = None if entry is None or entry.deleted else _first(entry)
        stamps.append(Stamp(kind, iri, existed=existed, reported=reported, created=first))
        return True

    def _tombstone_triples(self, territory: str, kind: Kind, iri: str, batch: Batch) -> list[str]:
        """A deleted record's tombstone, but its time (``as:deleted``: the stamp adds it)."""
        out = [
            f"<{iri}> <{RDF.type}> <{AS.Tombstone}>",
            f"<{iri}> <{AS.formerType}> <{kind.mapping.types[0]}>",
            f"<{iri}> <{DCT.identifier}> {literal(iri.rsplit('/', 1)[-1])}",
            f"<{iri}> <{CF.territory}> <{self.urls.territory(territory)}>",
        ]
        # The links lists filter on stay, so that a filtered incremental sync sees the deletion.
        old = batch.old_data.get(iri) or {}
        ctx = Ctx(self.urls, territory)
        for f in kind.filters.values():
            if old.get(f.name):
                f.emit(iri, old[f.name], ctx, out)
        return out


def _first(entry: IndexEntry) -> dt.datetime:
    """When a stored record was first recorded: its kept time, or, for a record stored before
    civicfed kept it, its last change then (a bound that then stays, whatever rewrites it)."""
    return entry.created or entry.modified


def _nobody(persons: set[str]) -> dict[str, set[Any]]:
    """Where these people still count after a change of decisions only: no person moves."""
    return {p: set() for p in persons}


def _moves_populations(batch: Batch, extra: Changeset | None) -> bool:
    """Whether a write may change a population the indicators are divided by: a territory or a
    district written, or an import's statements (a population table) written or emptied."""
    if any(batch.kinds[i].name in ("territory", "district") for i in batch.final):
        return True
    if extra is None:
        return False
    return bool(extra.clear) or any(f"<{CF.inhabitants}>" in line for lines in extra.insert.values() for line in lines)
