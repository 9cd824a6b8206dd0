"""Reading and writing participation records: the logic every surface and the CLI share.

Writes go through one path: validate → pseudonymise → check references and uniqueness →
maintain counts → one atomic :class:`Changeset`. Each record is also registered in its
(territory, kind) index graph with the time this server last wrote it, which is the stable
sort key and sync cursor of every list.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from marshmallow import ValidationError

from vocabularies import AS, CF, DCT, GEO, RDF, SDO, XSD

from .errors import (
    BadRequest,
    CivicfedError,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    ValidationFailed,
    from_validation_error,
)
from .model.kinds import KINDS, RECORD_KINDS, Kind
from .model.rdf import Ctx, Ref, Target, canonical_datetime, format_datetime, literal, typed
from .privacy import pseudonymise
from .state import Principal, State
from .store import Changeset, Description, Store
from .urls import LOCAL_ID_RE, Urls

RECORD_MODIFIED = CF.recordModified
RECORD_DELETED = CF.recordDeleted
#: Index-graph bookkeeping of proposals: the counts their platform reports.
REPORTED = {"vote_count": CF.reportedVoteCount, "comment_count": CF.reportedCommentCount}
CLOCK_ALL = "*"  # the clock is one for the whole instance: commit order is time order
PROPOSAL, VOTE, COMMENT = KINDS["proposal"], KINDS["vote"], KINDS["comment"]

Action = Literal["upsert", "patch", "delete"]


@dataclass
class Op:
    """One change asked for: create/replace, merge-patch, or delete one record."""

    kind: Kind
    local_id: str
    action: Action
    data: dict[str, Any] | None = None
    if_match: str | None = None
    create_only: bool = False
    #: Deleting a record that does not exist (or no longer) is not an error (sync replays).
    missing_ok: bool = False
    line: int | None = None


@dataclass
class Outcome:
    op: Op
    status: Literal["created", "updated", "deleted", "rejected", "unchanged", "superseded"] = "rejected"
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
class IndexEntry:
    deleted: bool
    modified: dt.datetime
    #: Proposals: the counts the platform last reported (kept apart from the published ones).
    reported: dict[str, int] = field(default_factory=dict)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass
class _Batch:
    """What one write sees and decides, keyed by record IRI."""

    index: dict[str, IndexEntry] = field(default_factory=dict)
    old_desc: Description = field(default_factory=dict)
    old_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Final state after the batch: data for live records, None for deleted ones.
    final: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    links: dict[Any, dict[str, dict[str, str | None]]] = field(default_factory=dict)


class Clock:
    """Strictly increasing UTC timestamps (µs): the record-modified times double as sort keys."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> dt.datetime:
        with self._lock:
            now = time.time_ns() // 1000
            self._last = max(now, self._last + 1)
            return dt.datetime.fromtimestamp(self._last / 1_000_000, dt.UTC)

    @property
    def last_us(self) -> int:
        return self._last

    def advance_past(self, us: int) -> None:
        """Never give a time at or before ``us`` (another process's last write)."""
        with self._lock:
            self._last = max(self._last, us)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def etag(modified: dt.datetime) -> str:
    return f'"{micros(modified)}"'


def encode_cursor(modified: str, iri: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([modified, iri]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        modified, iri = json.loads(raw)
        if canonical_datetime(modified) != modified:  # cursors are issued in canonical form
            raise ValueError
        if not isinstance(iri, str) or any(c in iri for c in '<>"{}|\\^` \n'):
            raise ValueError
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError) as exc:
        raise BadRequest(
            "invalid cursor: use the `next` link of the previous page",
            errors=[{"parameter": "cursor", "detail": "Not a cursor issued by this server."}],
        ) from exc
    return modified, iri


class RecordCache:
    """JSON of records keyed by (IRI, record_modified): a version key, so never stale.

    Reading a record costs ~5 µs per triple (Oxigraph decodes every term); pages that are read
    again (the first pages of a list, popular records) are served from here.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, iri: str, modified: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._data.get((iri, modified))
            if found is not None:
                self._data.move_to_end((iri, modified))
            return found

    def put(self, iri: str, modified: str, record: dict[str, Any]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[(iri, modified)] = record
            if len(self._data) > self.size:
                self._data.popitem(last=False)


class Records:
    """Record operations over one store, one state database and one set of IRIs."""

    def __init__(self, store: Store, state: State, urls: Urls, cache_size: int = 20_000) -> None:
        self.store = store
        self.state = state
        self.urls = urls
        self.clock = Clock()
        self.cache = RecordCache(cache_size)
        # With a shared (remote) store several processes write: their clocks meet in the state
        # database, so that record_modified keeps growing in commit order across processes. The
        # embedded store has one writing process, whose clock starts past the newest stored time.
        self.shared_clock = store.backend == "remote"
        self._clock_seeded = False

    # ================================================================ territories ===========
    def require_territory(self, territory: str) -> None:
        if not self.state.has_territory(territory):
            raise NotFound(f"unknown territory {territory!r}", territory=territory)

    def create_territory(self, data: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Register a territory (secret in the state DB) and write its record to the store."""
        try:
            loaded = KINDS["territory"].loader.load(data)
        except ValidationError as exc:
            raise from_validation_error(exc, "territory") from exc
        territory = loaded["id"]
        created = self.state.create_territory(territory)
        self._write_validated(territory, [Op(KINDS["territory"], territory, "upsert", loaded)], None)
        return created, self.get(territory, KINDS["territory"], territory)

    # ================================================================ reads =================
    def ctx(self, territory: str) -> Ctx:
        return Ctx(self.urls, territory)

    def graph_of(self, kind: Kind, territory: str) -> str:
        return self.urls.private_graph(territory) if kind.private else self.urls.territory_graph(territory)

    def iri(self, territory: str, kind: Kind, local_id: str) -> str:
        if not LOCAL_ID_RE.fullmatch(local_id):
            # Such a record cannot exist (ids are validated on the way in).
            raise NotFound(
                f"no {kind.name} {local_id!r} in territory {territory!r}: not a valid identifier",
                errors=[{"parameter": "local_id", "detail": "Letters, digits and . _ ~ - only."}],
            )
        return self.urls.resource(territory, kind.name, local_id)

    def index_entries(self, territory: str, kind: Kind, iris: Sequence[str]) -> dict[str, IndexEntry]:
        """Which of these records exist (live or tombstoned) and when they last changed."""
        out: dict[str, IndexEntry] = {}
        desc = self.store.describe(list(iris), self.urls.index_graph(territory, kind.name))
        reported_names = {v: k for k, v in REPORTED.items()}
        for s, triples in desc.items():
            reported: dict[str, int] = {}
            entry = None
            for p, o in triples:
                if p in (RECORD_MODIFIED, RECORD_DELETED):
                    entry = IndexEntry(p == RECORD_DELETED, dt.datetime.fromisoformat(o.value))
                elif p in reported_names:
                    reported[reported_names[p]] = int(o.value)
            if entry is not None:
                entry.reported = reported
                out[s] = entry
        return out

    def get(self, territory: str, kind: Kind, local_id: str) -> dict[str, Any]:
        """One live record; NotFound if it never existed, Gone if it was deleted."""
        iri = self.iri(territory, kind, local_id)
        entry = self.index_entries(territory, kind, [iri]).get(iri)
        if entry is None:
            where = "" if kind.name == "territory" else f" in territory {territory!r}"
            raise NotFound(f"no {kind.name} {local_id!r}{where}")
        if entry.deleted:
            raise Gone(
                f"{kind.name} {local_id!r} was deleted at {format_datetime(entry.modified)}",
                record=self.tombstone(territory, kind, local_id, entry.modified),
            )
        modified = format_datetime(entry.modified)
        cached = self.cache.get(iri, modified)
        if cached is not None:
            return cached
        desc = self.store.describe([iri], self.graph_of(kind, territory))
        return self.to_json(territory, kind, iri, desc, modified)

    def to_json(
        self, territory: str, kind: Kind, iri: str, desc: Description, modified: dt.datetime | str
    ) -> dict[str, Any]:
        data = kind.mapping.from_description(iri, desc, self.ctx(territory))
        out: dict[str, Any] = {"id": data.pop("id", None) or iri.rsplit("/", 1)[-1], "iri": iri, "territory": territory}
        out.update(data)
        out["record_modified"] = modified if isinstance(modified, str) else format_datetime(modified)
        self.cache.put(iri, out["record_modified"], out)
        return out

    def tombstone(self, territory: str, kind: Kind, local_id: str, deleted_at: dt.datetime | str) -> dict[str, Any]:
        when = deleted_at if isinstance(deleted_at, str) else format_datetime(deleted_at)
        return {
            "id": local_id,
            "iri": self.iri(territory, kind, local_id),
            "territory": territory,
            "deleted": True,
            "deleted_at": when,
            "record_modified": when,
        }

    def list(
        self,
        kind: Kind,
        *,
        territories: Sequence[str],
        filters: dict[str, str] | None = None,
        q: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        modified_since: dt.datetime | None = None,
        include_deleted: bool = False,
        cursor: str | None = None,
        limit: int = 50,
        descending: bool = False,
        bare: bool = False,
    ) -> Page:
        """A page of records in (record_modified, iri) order, and the cursor of the next page.

        ``bare`` pages carry only each record's ``iri`` and ``record_modified`` (for dumps that
        read the RDF themselves).
        """
        if not territories:
            return Page([], None)
        filters = filters or {}
        g_of = {t: self.graph_of(kind, t) for t in territories}
        single = len(territories) == 1
        if single:
            (t0,) = territories
            index_g, data_g = f"<{self.urls.index_graph(t0, kind.name)}>", f"<{g_of[t0]}>"
            head = ""
        else:
            index_g, data_g = "?ig", "?g"
            rows = " ".join(f"(<{self.urls.index_graph(t, kind.name)}> <{g_of[t]}>)" for t in territories)
            head = f"VALUES (?ig ?g) {{ {rows} }}\n"
        with_deleted = include_deleted or modified_since is not None
        if with_deleted:
            triple = f"GRAPH {index_g} {{ ?s ?rp ?m VALUES ?rp {{ <{RECORD_MODIFIED}> <{RECORD_DELETED}> }} }}"
        else:
            triple = f"GRAPH {index_g} {{ ?s <{RECORD_MODIFIED}> ?m }}"
        clauses = [head + triple]
        if modified_since is not None:
            clauses.append(f"FILTER(?m >= {typed(format_datetime(modified_since), XSD.dateTime)})")
        if cursor:
            c_m, c_s = decode_cursor(cursor)
            op = "<" if descending else ">"
            m = typed(c_m, XSD.dateTime)
            clauses.append(f"FILTER(?m {op} {m} || (?m = {m} && STR(?s) {op} {literal(c_s)}))")
        patterns = []
        for param, value in filters.items():
            f = kind.filters[param]
            # Filters are evaluated against the first territory's IRIs; multi-territory lists only
            # take filters whose values are territory-independent (codes), checked by the caller.
            term = f.filter_term(value, self.ctx(territories[0]))
            patterns.append(f"?s <{f.predicate}> {term} .")
        if bbox is not None:
            min_lon, min_lat, max_lon, max_lat = bbox
            patterns.append(
                f"?s <{GEO.hasGeometry}> ?geo . ?geo <{SDO.latitude}> ?lat ; <{SDO.longitude}> ?lon . "
                f"FILTER(?lat >= {min_lat} && ?lat <= {max_lat} && ?lon >= {min_lon} && ?lon <= {max_lon})"
            )
        if q:
            preds = " ".join(f"<{p}>" for p in kind.text_predicates)
            needle = literal(q.lower())
            patterns.append(
                f"FILTER EXISTS {{ GRAPH {data_g} {{ ?s ?tp ?text VALUES ?tp {{ {preds} }} "
                f"FILTER(CONTAINS(LCASE(STR(?text)), {needle})) }} }}"
            )
        if patterns:
            inner = "\n".join(p for p in patterns if not p.startswith("FILTER EXISTS"))
            if inner:
                clauses.append(f"GRAPH {data_g} {{ {inner} }}")
            clauses.extend(p for p in patterns if p.startswith("FILTER EXISTS"))
        order = "ORDER BY DESC(?m) DESC(?s)" if descending else "ORDER BY ?m ?s"
        select_vars = "?s ?m" + (" ?rp" if with_deleted else "") + ("" if single else " ?g")
        sparql = f"SELECT {select_vars} WHERE {{\n" + "\n".join(clauses) + f"\n}} {order} LIMIT {limit + 1}"
        rows = self.store.select(sparql)
        more = len(rows) > limit
        rows = rows[:limit]

        # Describe the live records of the page, per territory, in one call each.
        territory_of: dict[str, str] = {}
        for r in rows:
            iri = r["s"].value
            ref = self.urls.parse(iri)
            territory_of[iri] = ref.territory if ref else territories[0]
        live_by_t: dict[str, list[str]] = {}
        cached: dict[str, dict[str, Any]] = {}
        modified_of = {r["s"].value: canonical_datetime(r["m"].value) for r in rows}
        next_cursor = encode_cursor(modified_of[rows[-1]["s"].value], rows[-1]["s"].value) if more and rows else None
        if bare:
            return Page(
                [{"iri": r["s"].value, "record_modified": modified_of[r["s"].value]} for r in rows], next_cursor
            )
        for r in rows:
            if not (with_deleted and r["rp"].value == RECORD_DELETED):
                iri = r["s"].value
                hit = self.cache.get(iri, modified_of[iri])
                if hit is not None:
                    cached[iri] = hit
                else:
                    live_by_t.setdefault(territory_of[iri], []).append(iri)
        desc: Description = {}
        for t, iris in live_by_t.items():
            desc.update(self.store.describe(iris, g_of[t]))
        items = []
        for r in rows:
            iri, m = r["s"].value, modified_of[r["s"].value]
            t = territory_of[iri]
            if with_deleted and r["rp"].value == RECORD_DELETED:
                items.append(self.tombstone(t, kind, iri.rsplit("/", 1)[-1], m))
            else:
                items.append(cached.get(iri) or self.to_json(t, kind, iri, desc, m))
        return Page(items, next_cursor)

    # ================================================================ writes ================
    def prepare(self, kind: Kind, data: Any, *, local_id: str | None = None, partial: bool = False) -> dict[str, Any]:
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

    def write(
        self,
        territory: str,
        ops: list[Op],
        principal: Principal | None,
        *,
        partial: bool = False,
        dry_run: bool = False,
    ) -> WriteReport:
        """Apply operations atomically; with ``partial`` only the valid ones, else all or none."""
        self.require_territory(territory)
        if principal is None:
            raise Unauthorized("writing needs an API key: send `Authorization: Bearer <key>`")
        if principal.territory != territory:
            raise Forbidden(f"this API key is for territory {principal.territory!r}, not {territory!r}")
        return self._write_validated(territory, ops, principal, partial=partial, dry_run=dry_run)

    def write_internal(
        self, territory: str, ops: list[Op], *, partial: bool = False, dry_run: bool = False
    ) -> WriteReport:
        """A write by the server's operator (command line, demo loader): no API key involved."""
        self.require_territory(territory)
        return self._write_validated(territory, ops, None, partial=partial, dry_run=dry_run)

    def _write_validated(
        self,
        territory: str,
        ops: list[Op],
        principal: Principal | None,
        *,
        partial: bool = False,
        dry_run: bool = False,
    ) -> WriteReport:
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
            batch = self._load_batch(territory, [o.op for o in live_ops])
            accepted: list[Outcome] = []
            for outcome in live_ops:
                try:
                    self._decide(territory, outcome, batch, principal, secret)
                    accepted.append(outcome)
                except CivicfedError as err:
                    outcome.status, outcome.error = "rejected", err
            self._check_references(territory, accepted, batch)
            self._check_votes(territory, accepted, batch)
            accepted = [o for o in accepted if o.status != "rejected"]
            if dry_run or (len(accepted) < len(live_ops) and not partial):
                return WriteReport(territory, outcomes, written=False)
            # Record times are taken and committed under one instance-wide lock, so that they
            # grow in commit order across territories (and processes): a consumer paging by
            # record_modified, or syncing with modified_since, never misses a later commit.
            with self.state.commit_lock():
                self._sync_clock()
                changeset = self._changeset(territory, accepted, batch)
                if self.shared_clock:  # before the write: a write that times out may still land
                    self.state.set_clock_floor(CLOCK_ALL, self.clock.last_us)
                self.store.apply(changeset)
        return WriteReport(territory, outcomes, written=True, quads=changeset.insert_count())

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

    # -- batch preparation -------------------------------------------------------------------
    def _load_batch(self, territory: str, ops: Sequence[Op]) -> _Batch:
        batch = _Batch()
        by_kind: dict[str, set[str]] = {}
        for op in ops:
            iri = self.iri(territory, op.kind, op.local_id)
            batch.kinds[iri] = op.kind
            by_kind.setdefault(op.kind.name, set()).add(iri)
        for kind_name, iris in by_kind.items():
            kind = KINDS[kind_name]
            entries = self.index_entries(territory, kind, sorted(iris))
            batch.index.update(entries)
            existing = sorted(entries)
            if existing:
                desc = self.store.describe(existing, self.graph_of(kind, territory))
                batch.old_desc.update(desc)
                for iri in existing:
                    if not entries[iri].deleted:
                        batch.old_data[iri] = kind.mapping.from_description(iri, desc, self.ctx(territory))
        return batch

    def _decide(
        self, territory: str, outcome: Outcome, batch: _Batch, principal: Principal | None, secret: bytes
    ) -> None:
        """Validate one op against the state the batch has built so far; record its final state."""
        op = outcome.op
        iri = self.iri(territory, op.kind, op.local_id)
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
        if op.create_only and exists:
            raise Conflict(f"{op.kind.name} {op.local_id!r} already exists")

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
            _authorize(principal, op, current, None)
            batch.final[iri] = None
            outcome.status = "deleted"
            return

        if op.action == "patch":
            if deleted:
                raise Gone(f"{op.kind.name} {op.local_id!r} was deleted; PUT it to create it again")
            if not exists:
                raise NotFound(f"no {op.kind.name} {op.local_id!r} in territory {territory!r}")
            merged = merge_patch(_editable(current), op.data or {})
            new = self.prepare(op.kind, merged, local_id=op.local_id)
        else:
            new = dict(op.data or {})
        pseudonymise(op.kind, new, secret)
        _authorize(principal, op, current, new)
        if current is not None and iri not in batch.final and _editable(current) == _editable(new):
            # Writing what is already stored changes nothing: no new record_modified, so a
            # platform re-sending its whole dataset does not flood incremental syncs.
            outcome.status = "unchanged"
            return
        batch.final[iri] = new
        outcome.status = "updated" if existed_before else "created"

    def _check_references(self, territory: str, accepted: list[Outcome], batch: _Batch) -> None:
        """Every new link to another record must name a record that is live after the batch.

        A link the record already had is kept even if its target was deleted since: deleting a
        process must not make its proposals uneditable. Rejecting a record can orphan another
        that links to it in the same batch, so passes repeat until nothing more is rejected.
        """
        kept: dict[str, set[str]] = {}
        wanted: dict[str, set[str]] = {}
        for o in accepted:
            iri = self.iri(territory, o.op.kind, o.op.local_id)
            old = batch.old_data.get(iri)
            kept[iri] = set(self._targets(territory, o.op.kind, old)) if old else set()
            data = batch.final.get(iri)
            for target in self._targets(territory, o.op.kind, data) if data else ():
                ref = self.urls.parse(target)
                if target not in batch.final and target not in kept[iri] and ref and ref.kind in KINDS:
                    wanted.setdefault(ref.kind, set()).add(target)
        live: set[str] = set()
        for kind_name, iris in wanted.items():
            entries = self.index_entries(territory, KINDS[kind_name], sorted(iris))
            live.update(i for i, e in entries.items() if not e.deleted)
        rejected_some = True
        while rejected_some:
            rejected_some = False
            for o in accepted:
                iri = self.iri(territory, o.op.kind, o.op.local_id)
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
                        _revert(batch, iri)
                        rejected_some = True
                        break

    def _targets(self, territory: str, kind: Kind, data: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
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

    def _existing_links(
        self, territory: str, kind: Kind, predicate: str, proposals: Iterable[str]
    ) -> dict[str, dict[str, str | None]]:
        """For each proposal, the stored records of ``kind`` linked to it, with their author/voter."""
        targets = sorted(proposals)
        out: dict[str, dict[str, str | None]] = {p: {} for p in targets}
        if not targets:
            return out
        graph = self.graph_of(kind, territory)
        who = SDO.agent if kind is VOTE else "http://rdfs.org/sioc/ns#has_creator"
        types = f"?x <{RDF.type}> <{kind.mapping.types[0]}> ."
        for i in range(0, len(targets), 500):
            values = " ".join(f"<{p}>" for p in targets[i : i + 500])
            rows = self.store.select(
                f"SELECT ?p ?x ?a WHERE {{ GRAPH <{graph}> {{ VALUES ?p {{ {values} }} ?x <{predicate}> ?p . {types} "
                f"OPTIONAL {{ ?x <{who}> ?a }} }} }}"
            )
            for r in rows:
                a = r["a"]
                out[r["p"].value][r["x"].value] = a.value if a is not None else None
        return out

    def _check_votes(self, territory: str, accepted: list[Outcome], batch: _Batch) -> None:
        """One vote per voter per proposal, across the store and the batch."""
        if not self._touched_proposals(territory, batch, VOTE, "proposal"):
            return
        existing = self._links(territory, batch, VOTE, self._scope(territory, batch, VOTE))
        voters: dict[str, dict[str, str]] = {}  # proposal → voter account → vote iri
        for p, votes in existing.items():
            for v, account in votes.items():
                if v not in batch.final and account:
                    voters.setdefault(p, {})[account] = v
        for o in accepted:
            if o.op.kind is not VOTE or o.status == "rejected":
                continue
            iri = self.iri(territory, VOTE, o.op.local_id)
            data = batch.final.get(iri)
            if data is None:
                continue
            p = self.urls.resource(territory, "proposal", data["proposal"])
            account = self.urls.account(territory, data["voter_id"])
            other = voters.setdefault(p, {}).get(account)
            if other is not None and other != iri:
                o.status = "rejected"
                o.error = Conflict(
                    f"this voter already voted for proposal {data['proposal']!r} (vote {other.rsplit('/', 1)[-1]!r})",
                    errors=[{"pointer": "#/voter", "detail": "One vote per voter per proposal."}],
                )
                _revert(batch, iri)
                continue
            voters[p][account] = iri

    def _known(self, batch: _Batch, territory: str, proposals: Iterable[str]) -> set[str]:
        """Proposals that exist or existed in the store (only those can have stored votes)."""
        proposals = sorted(proposals)
        missing = [p for p in proposals if p not in batch.index]
        if missing:
            batch.index.update(self.index_entries(territory, PROPOSAL, missing))
        return {p for p in proposals if p in batch.index}

    def _touched_proposals(self, territory: str, batch: _Batch, kind: Kind, field_name: str) -> set[str]:
        touched: set[str] = set()
        for iri, k in batch.kinds.items():
            if k is not kind or iri not in batch.final:  # unchanged records move no count
                continue
            for data in (batch.old_data.get(iri), batch.final.get(iri)):
                target = _proposal_of(data, field_name)
                if target:
                    touched.add(self.urls.resource(territory, "proposal", target))
        return touched

    # -- changeset ---------------------------------------------------------------------------
    def _changeset(self, territory: str, accepted: list[Outcome], batch: _Batch) -> Changeset:
        cs = Changeset()
        counts = self._counts(territory, batch)
        # batch.final holds each changed record's final state; write them in batch order.
        written: set[str] = set()
        for o in accepted:
            iri = self.iri(territory, o.op.kind, o.op.local_id)
            if iri in batch.final and iri not in written:
                written.add(iri)
                if not self._emit_record(cs, territory, o.op.kind, iri, batch.final[iri], batch, counts):
                    o.status = "unchanged"
        # Proposals whose counts changed but that the batch did not rewrite.
        graph, ctx = self.urls.territory_graph(territory), self.ctx(territory)
        others = [p for p in counts if p not in written and p in batch.index and not batch.index[p].deleted]
        stored = self._stored_counts(graph, others)
        for p in others:
            changed = False
            for name, value in zip(("vote_count", "comment_count"), counts[p], strict=True):
                counter = PROPOSAL.mapping.by_name[name]
                if value is None or stored.get(f"{p}#{counter.suffix}") == value:  # type: ignore[attr-defined]
                    continue
                cs.drop(graph, f"{p}#{counter.suffix}")  # type: ignore[attr-defined]
                statements: list[str] = []
                counter.emit(p, value, ctx, statements)
                cs.add(graph, statements)
                changed = True
            if changed:  # the published record changed: sync consumers must see it
                self._emit_index(
                    cs,
                    territory,
                    PROPOSAL,
                    p,
                    self.clock.next(),
                    deleted=False,
                    existed=True,
                    reported=batch.index[p].reported,
                )
        return cs

    def _stored_counts(self, graph: str, proposals: list[str]) -> dict[str, int]:
        """Current published counter values, by counter node IRI."""
        nodes = [f"{p}#{suffix}" for p in proposals for suffix in ("votes", "comments")]
        out: dict[str, int] = {}
        for node, triples in self.store.describe(nodes, graph).items():
            for p, o in triples:
                if p == SDO.userInteractionCount:
                    out[node] = int(o.value)
        return out

    def _emit_record(
        self,
        cs: Changeset,
        territory: str,
        kind: Kind,
        iri: str,
        data: dict[str, Any] | None,
        batch: _Batch,
        counts: dict[str, tuple[int | None, int | None]],
    ) -> bool:
        """Add a record's final state to the changeset; False if that state is what is stored."""
        reported: dict[str, int] | None = None
        if data is not None and kind is PROPOSAL:
            # What the platform says, kept apart: the published counts may be maintained ones.
            reported = {k: data[k] for k in REPORTED if data.get(k) is not None}
            votes, comments = counts.get(iri, (None, None))
            for name, value in (("vote_count", votes), ("comment_count", comments)):
                if value is not None:  # None: no recorded member and no report, so no count
                    data[name] = value
            old, entry = batch.old_data.get(iri), batch.index.get(iri)
            if old is not None and entry is not None and _editable(old) == _editable(data):
                if entry.reported != reported:  # nothing published changes; remember the new report
                    self._emit_index(
                        cs, territory, kind, iri, entry.modified, deleted=False, existed=True, reported=reported
                    )
                return False
        graph = self.graph_of(kind, territory)
        for s in _subjects(iri, batch.old_desc):
            cs.drop(graph, s)
        existed = iri in batch.index
        now = self.clock.next()
        if data is None:
            # Private kinds (votes) keep their tombstone in the private graph: filtered syncs of
            # votes see deletions too, and nothing of them is published.
            cs.add(graph, self._tombstone_triples(territory, kind, iri, batch, now))
            self._emit_index(cs, territory, kind, iri, now, deleted=True, existed=existed)
            return True
        ctx = Ctx(self.urls, territory, data.get("language"))
        cs.add(graph, kind.mapping.to_ntriples(iri, data, ctx))
        self._emit_index(cs, territory, kind, iri, now, deleted=False, existed=existed, reported=reported)
        return True

    def _tombstone_triples(self, territory: str, kind: Kind, iri: str, batch: _Batch, now: dt.datetime) -> list[str]:
        when = typed(format_datetime(now), XSD.dateTime)
        out = [
            f"<{iri}> <{RDF.type}> <{AS.Tombstone}>",
            f"<{iri}> <{AS.formerType}> <{kind.mapping.types[0]}>",
            f"<{iri}> <{AS.deleted}> {when}",
            f"<{iri}> <{DCT.identifier}> {literal(iri.rsplit('/', 1)[-1])}",
            f"<{iri}> <{CF.territory}> <{self.urls.territory(territory)}>",
        ]
        # The links lists filter on stay, so that a filtered incremental sync sees the deletion.
        old = batch.old_data.get(iri) or {}
        ctx = self.ctx(territory)
        for f in kind.filters.values():
            if old.get(f.name):
                f.emit(iri, old[f.name], ctx, out)
        return out

    def _emit_index(
        self,
        cs: Changeset,
        territory: str,
        kind: Kind,
        iri: str,
        now: dt.datetime,
        *,
        deleted: bool,
        existed: bool,
        reported: dict[str, int] | None = None,
    ) -> None:
        graph = self.urls.index_graph(territory, kind.name)
        if existed:
            cs.drop(graph, iri)
        predicate = RECORD_DELETED if deleted else RECORD_MODIFIED
        cs.add(graph, [f"<{iri}> <{predicate}> {typed(format_datetime(now), XSD.dateTime)}"])
        cs.add(graph, [f"<{iri}> <{REPORTED[k]}> {typed(str(v), XSD.integer)}" for k, v in (reported or {}).items()])

    def _counts(self, territory: str, batch: _Batch) -> dict[str, tuple[int | None, int | None]]:
        """Published vote and comment counts of every proposal the batch touches, after the batch.

        A function of the stored state only: the number of recorded votes (comments) when there
        is at least one, otherwise the count the platform last reported (None: no count).
        """
        proposals_in_batch = {i for i, k in batch.kinds.items() if k is PROPOSAL and batch.final.get(i) is not None}
        result: dict[str, list[int | None]] = {}
        for kind, field_name, slot, count_name in (
            (VOTE, "proposal", 0, "vote_count"),
            (COMMENT, "about", 1, "comment_count"),
        ):
            touched = self._scope(territory, batch, kind)
            if not touched:
                continue
            existing = self._links(territory, batch, kind, touched)
            in_batch: dict[str, set[str]] = {}
            for iri, k in batch.kinds.items():
                target = _proposal_of(batch.final.get(iri), field_name) if k is kind else None
                if target:
                    in_batch.setdefault(self.urls.resource(territory, "proposal", target), set()).add(iri)
            for p in touched:
                members = {x for x in existing.get(p, {}) if x not in batch.final} | in_batch.get(p, set())
                if p in proposals_in_batch:
                    reported = batch.final[p].get(count_name)  # type: ignore[union-attr]
                else:
                    entry = batch.index.get(p)
                    reported = entry.reported.get(count_name) if entry else None
                result.setdefault(p, [None, None])[slot] = len(members) if members else reported
        return {p: (v[0], v[1]) for p, v in result.items()}

    def _scope(self, territory: str, batch: _Batch, kind: Kind) -> set[str]:
        """Proposals whose recorded votes (comments) the batch must count: those its votes
        (comments) move, and the stored proposals it rewrites."""
        field_name = "proposal" if kind is VOTE else "about"
        touched = self._touched_proposals(territory, batch, kind, field_name)
        rewritten = {i for i, k in batch.kinds.items() if k is PROPOSAL and batch.final.get(i) is not None}
        return touched | {p for p in rewritten if p in batch.index}

    def _links(
        self, territory: str, batch: _Batch, kind: Kind, proposals: set[str]
    ) -> dict[str, dict[str, str | None]]:
        """Stored votes (comments) of these proposals, read once per batch."""
        key = (kind.name, frozenset(proposals))
        if key not in batch.links:
            predicate = SDO.object if kind is VOTE else SDO.about
            batch.links[key] = self._existing_links(
                territory, kind, predicate, self._known(batch, territory, proposals)
            )
        return batch.links[key]


# -- helpers ----------------------------------------------------------------------------------


def _revert(batch: _Batch, iri: str) -> None:
    """Forget a rejected op's effect on the batch's final state."""
    if iri in batch.old_data:
        batch.final[iri] = batch.old_data[iri]
    else:
        batch.final.pop(iri, None)


def _proposal_of(data: dict[str, Any] | None, field_name: str) -> str | None:
    if not data:
        return None
    value = data.get(field_name)
    if field_name == "about":
        return value["id"] if isinstance(value, dict) and value.get("kind") == "proposal" else None
    return value


def _subjects(iri: str, desc: Description) -> list[str]:
    prefix = iri + "#"
    return [s for s in desc if s == iri or s.startswith(prefix)]


def _editable(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the JSON a client may send back (dates as ISO strings, code lists sorted)."""
    plain = json.loads(json.dumps(record, default=_json_default))
    return {k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v for k, v in plain.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _authorize(principal: Principal | None, op: Op, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    """Roles: admin may do anything in its territory; editor anything but the territory record;
    organization:<id> may write projects it implements, its own organization record, and the
    status of proposals it handles."""
    if principal is None:  # internal writes (CLI, demo loader)
        return
    role, kind = principal.role, op.kind.name
    if role == "admin":
        return
    if role == "editor":
        if kind == "territory":
            raise Forbidden("only an admin key can change the territory record")
        return
    org = principal.organization
    if org is None:
        raise Forbidden(f"role {role!r} cannot write")
    if kind == "project":
        for state in (old, new):
            if state is not None and state.get("implemented_by") != org:
                raise Forbidden(f"organization {org!r} may only write projects it implements (implemented_by)")
        return
    if kind == "organization" and op.local_id == org and op.action != "delete":
        return
    if kind == "proposal" and op.action == "patch" and old is not None and new is not None:
        if old.get("handled_by") != org:
            raise Forbidden(f"proposal {op.local_id!r} is not handled by organization {org!r}")
        changed = {k for k in set(old) | set(new) if _editable(old).get(k) != _editable(new).get(k)}
        if changed - {"status"}:
            raise Forbidden(f"organization {org!r} may only change the status of the proposals it handles")
        return
    raise Forbidden(f"organization {org!r} cannot {op.action} {kind} {op.local_id!r}")


__all__ = ["RECORD_KINDS", "Op", "Outcome", "Page", "Records", "WriteReport", "etag", "merge_patch"]
