"""The loader: items of a source → validated operations → one atomic write → a report.

Every line is checked before anything is written, so that one round trip reports every problem;
without ``partial``, one rejected item means nothing is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vocabularies import DCT

from ..errors import CivicfedError, MalformedBody
from ..model.kinds import KINDS
from ..records import Op, Records, WriteReport
from ..state import Principal
from ..store import Changeset
from ..urls import LOCAL_ID_RE
from .districts import place_in_districts
from .provenance import Activity, activity_statements, record_statements, source_iri
from .report import Report, error_entry
from .source import Deletion, Importer, Item, Record, Rejected, Source, Statements
from .validate import Checked, Validator

_IN_THREAD = Validator(0)


@dataclass(frozen=True)
class RunInfo:
    """An import run, for its provenance: each record written links to it and to its source,
    and the run is described in PROV-O in the same atomic write (server/ingest/provenance.py)."""

    run_id: str
    format: str
    source_id: str
    source_name: str
    source_url: str | None
    agent: str
    started: dt.datetime
    #: The source is read whole each time: a record it gave before and no longer gives is deleted.
    snapshot: bool = False
    #: Told every ``progress_every`` items read, with how many (a run's progress).
    progress: Callable[[int], None] | None = None
    progress_every: int = 1000
    #: The SHA-256 of the source as read, known once it is read (``Source.sha256``).
    sha256: Callable[[], str | None] | None = None
    #: The digest of the statements the previous run of this source wrote (None: none).
    previous_statements: str | None = None


def load(
    records: Records,
    territory: str,
    items: Iterable[Item],
    principal: Principal | None,
    *,
    source_id: str | None = None,
    partial: bool = False,
    dry_run: bool = False,
    max_errors: int = 1_000,
    validator: Validator | None = None,
    run: RunInfo | None = None,
    batch: int | None = None,
) -> Report:
    """Validate every item, then write the valid ones atomically (with ``partial``), or all or
    none; ``dry_run`` writes nothing. ``principal`` is the API key's holder; None is the server's
    operator (command line). Statements go into the graph of ``source_id``, replacing it. The
    report lists the first ``max_errors`` rejected items and counts the others. ``validator``
    validates large sources in worker processes (the server's); None validates in this thread.
    With ``run``, the write carries the run's provenance, and a snapshot source's vanished
    records are deleted. With ``batch``, a source of more items than that is written ``batch``
    items at a time to a staged copy of the store, swapped in at the end (where the store
    stages writes): still all or nothing, in bounded memory."""
    job = _Job(records, territory, principal, source_id, partial, max_errors, validator or _IN_THREAD, run)
    stream = _read(items if run is None else _counted(items, run))
    if batch is None or batch < 1 or dry_run or not records.store.stages:
        return job.whole(list(stream), dry_run)
    first = list(itertools.islice(stream, batch))
    following = next(stream, None)
    if following is None:
        return job.whole(first, dry_run)
    return job.staged(itertools.chain(first, [following], stream), batch)


class _Job:
    """One load: its settings, and the rejected items it reports (the first ``max_errors``)."""

    def __init__(
        self,
        records: Records,
        territory: str,
        principal: Principal | None,
        source_id: str | None,
        partial: bool,
        max_errors: int,
        validator: Validator,
        run: RunInfo | None,
    ) -> None:
        self.records, self.territory, self.principal, self.source_id = records, territory, principal, source_id
        self.partial, self.max_errors, self.validator, self.run = partial, max_errors, validator, run
        self.errors: list[dict[str, object]] = []
        self.omitted = 0
        self.statements: list[str] = []

    def reject(self, line: int | None, kind: str | None, local_id: str | None, err: CivicfedError) -> None:
        # Items arrive in source order: the first ones are kept, the rest only counted, so
        # that a body of nothing but bad lines does not grow the answer (and the worker) with it.
        if len(self.errors) < self.max_errors:
            self.errors.append(error_entry(line, kind, local_id, err))
        else:
            self.omitted += 1

    def validate(self, read: list[Item]) -> list[Checked]:
        """The items' records, validated (in worker processes for a large source)."""
        return self.validator.check([(i.kind.name, i.data) for i in read if isinstance(i, Record)])

    def ops(self, read: list[Item], validated: list[Checked] | None = None) -> list[Op]:
        """The items' operations (their statements kept aside); the invalid ones rejected."""
        ops: list[Op] = []
        # Every record validated at once, then taken in source order with the rest: errors are
        # reported in the order of the lines.
        checked = iter(self.validate(read) if validated is None else validated)
        for item in read:
            if isinstance(item, Rejected):
                self.reject(item.line, item.kind, item.local_id, item.error)
            elif isinstance(item, Deletion):
                # Replaying a feed deletes what may never have reached this server: not an error.
                ops.append(Op(item.kind, item.local_id, "delete", missing_ok=True, line=item.line))
            elif isinstance(item, Record):
                data = next(checked)
                if isinstance(data, CivicfedError):
                    local_id = item.data.get("id")
                    self.reject(item.line, item.kind.name, local_id if isinstance(local_id, str) else None, data)
                    continue
                ops.append(Op(item.kind, data["id"], "upsert", data, line=item.line, keep_existing=item.if_absent))
            elif isinstance(item, Statements):
                self.statements.extend(item.statements)
        return ops

    def placed(self, ops: list[Op]) -> list[Op]:
        """The ops, and those that put records in their districts: located records get the
        district their point is in; new boundaries move the others (one call for all the ops
        of a write: boundaries changed and deleted together decide where records go)."""
        return ops + place_in_districts(self.records, self.territory, ops)

    def statements_change(self) -> tuple[Changeset | None, str | None]:
        """The rewrite of the source's graph, if its statements changed; their digest."""
        statements = self.statements
        digest = hashlib.sha256("\n".join(sorted(set(statements))).encode()).hexdigest() if statements else None
        # A run's statements replace the source's graph when they differ from the previous run's
        # (or when a run of a source that gave some gives none).
        rewrite = bool(statements) if self.run is None else digest != self.run.previous_statements
        if not rewrite:
            return None, digest
        # The importer's own naming: a wrong one is a bug of the importer, not of the request.
        if self.source_id is None or not LOCAL_ID_RE.fullmatch(self.source_id):
            raise ValueError(f"statements need the source's id, a slug (got {self.source_id!r})")
        extra = Changeset()
        graph = self.records.urls.source_graph(self.territory, self.source_id)
        extra.clear_graph(graph)
        extra.add(graph, statements)
        return extra, digest

    def write(self, ops: list[Op], **settings: Any) -> WriteReport:
        if self.principal is None:
            return self.records.write_internal(self.territory, ops, **settings)
        return self.records.write(self.territory, ops, self.principal, **settings)

    def whole(self, read: list[Item], dry_run: bool) -> Report:
        """The source in one write."""
        ops = self.ops(read)
        extra, digest = self.statements_change()
        if self.errors and not self.partial:
            dry_run = True  # still check the rest, so that one round trip reports every problem
        settings: dict[str, Any] = {"partial": self.partial, "dry_run": dry_run, "extra": extra}
        if self.run is not None:
            ops += _vanished(self.records, self.territory, self.run, _seen(read))
            settings.update(self.run_settings(len(read), extra))
        ops = self.placed(ops)
        written = self.write(ops, **settings)
        report = Report.of(written, len(ops), self.errors, self.omitted, self.max_errors)  # type: ignore[arg-type]
        report.read = len(read)
        report.statements, report.statements_sha256 = len(self.statements), digest
        report.statements_changed = extra is not None and written.written
        return report

    def staged(self, items: Iterator[Item], batch: int) -> Report:
        """The source ``batch`` items at a time, written to a staged copy of the store that
        replaces it at the end if the load is to be written (server/store/staging.py)."""
        records, territory = self.records, self.territory
        totals: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        #: Ops a batch rejected, by record: tried again after the last batch, unless a later
        #: line gives the record again (the last line on a record wins, as in one write).
        retry: dict[tuple[str, str], Op] = {}
        read = quads = 0
        provenance = () if self.run is None else self.run_settings(0, None)["provenance"]
        # Both locks for the whole load, in the order every writer takes them: another write
        # landing in the live store meanwhile would be lost when the copy replaces it. The
        # participants its batches count (in the state database) are settled only if it is kept.
        with (
            records.state.write_lock(territory),
            records.state.commit_lock(),
            records.writer.cells.staged(territory, records.store.staged()) as stage,
        ):
            for chunk, validated in self.read_ahead(items, batch):
                read += len(chunk)
                seen |= _seen(chunk)
                ops = self.ops(chunk, validated)
                for op in ops:
                    if retry.pop((op.kind.name, op.local_id), None) is not None:
                        totals["superseded"] += 1
                # Each batch writes what is valid: the whole source's verdict comes at the end.
                written = self.write(self.placed(ops), partial=True, provenance=provenance)
                quads += written.quads
                for o in written.outcomes:
                    if o.status == "rejected":
                        retry[(o.op.kind.name, o.op.local_id)] = o.op  # it may name a record of a later batch
                    else:
                        totals[o.status] += 1
            extra, digest = self.statements_change()
            final = list(retry.values())
            settings: dict[str, Any] = {"partial": True, "extra": extra}
            if self.run is not None:
                final += _vanished(records, territory, self.run, seen)
                settings.update(self.run_settings(read, extra, totals))
            written = self.write(self.placed(final), **settings)
            quads += written.quads
            for o in written.outcomes:
                if o.status == "rejected":
                    assert o.error is not None
                    self.reject(o.op.line, o.op.kind.name, o.op.local_id, o.error)
                else:
                    totals[o.status] += 1
            ok = self.partial or not (self.errors or self.omitted)
            if ok and quads:
                stage.keep()
        if stage.kept:
            # What derives from the territory (its catalog datasets) and was built from the live
            # store while the batches were written is stale now that the copy is the store.
            records.writer.changes[territory] += 1
        self.errors.sort(key=lambda e: e["line"] or 0)  # type: ignore[arg-type, return-value]
        counts = {k: totals[k] for k in ("created", "updated", "deleted", "unchanged", "superseded")}
        counts["rejected"] = len(self.errors) + self.omitted
        report = Report(territory, ok, counts, read - counts["rejected"], quads if ok else 0, self.errors, self.omitted)  # type: ignore[arg-type]
        report.read = read
        report.statements, report.statements_sha256 = len(self.statements), digest
        report.statements_changed = extra is not None and ok
        return report

    def read_ahead(self, items: Iterator[Item], batch: int) -> Iterator[tuple[list[Item], list[Checked]]]:
        """The source in batches, each read and validated in a thread of its own while the one
        before is written (the store's loads and the validating processes leave the GIL): two
        batches ahead at most, so memory stays bounded by the batch size."""
        ready: queue.Queue[tuple[list[Item], list[Checked]] | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def put(got: tuple[list[Item], list[Checked]] | BaseException | None) -> None:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    ready.put(got, timeout=0.2)
                    return

        def produce() -> None:
            try:
                for chunk in _batches(items, batch):
                    put((chunk, self.validate(chunk)))
                    if stop.is_set():
                        return
                put(None)
            except BaseException as exc:  # handed to the writing thread, which raises it
                put(exc)

        reader = threading.Thread(target=produce, name="import-read-ahead", daemon=True)
        reader.start()
        try:
            while (got := ready.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            stop.set()
            reader.join()

    def run_settings(self, read: int, extra: Changeset | None, before: Counter[str] | None = None) -> dict[str, Any]:
        """The write's provenance: each written record's links, and the run's description made
        from what the write does (with ``before``, the counts of the batches written before it),
        unless it changes nothing (re-running an unchanged source adds none)."""
        run, urls, territory = self.run, self.records.urls, self.territory
        assert run is not None

        def describe(report: WriteReport) -> Changeset:
            cs = extra or Changeset()
            counts = Counter(report.counts())
            if before is not None:
                counts.update(before)
            if not (counts["created"] or counts["updated"] or counts["deleted"] or extra is not None):
                return cs
            rejected = self.errors + [
                error_entry(o.op.line, o.op.kind.name, o.op.local_id, o.error)  # type: ignore[arg-type]
                for o in report.rejected
            ]
            counts = {**counts, "read": read, "rejected": len(rejected) + self.omitted}
            sha256 = run.sha256() if run.sha256 is not None else None
            activity = Activity(
                run.run_id, territory, run.format, run.source_id, run.source_name, run.source_url, sha256,
                run.agent, run.started, dt.datetime.now(dt.UTC), counts,
            )  # fmt: skip
            # Added, never dropped first: the source's description only grows (a new URL, a new
            # title), and a write with no deletion takes the store's faster insertion path.
            cs.add(urls.territory_graph(territory), activity_statements(urls, activity, rejected))
            return cs

        provenance = record_statements(urls, territory, run.run_id, run.source_id)
        return {"extra": describe, "provenance": provenance}


def _batches(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _seen(read: list[Item]) -> set[tuple[str, str]]:
    """The records the items name (given, deleted or rejected): a snapshot source's others vanished."""
    seen: set[tuple[str, str]] = set()
    for item in read:
        if isinstance(item, Record) and isinstance(item.data.get("id"), str):
            seen.add((item.kind.name, item.data["id"]))
        elif isinstance(item, Deletion):
            seen.add((item.kind.name, item.local_id))
        elif isinstance(item, Rejected) and item.kind and item.local_id:
            seen.add((item.kind, item.local_id))
    return seen


def _counted(items: Iterable[Item], run: RunInfo) -> Iterator[Item]:
    n = 0
    for n, item in enumerate(items, start=1):
        if run.progress is not None and n % run.progress_every == 0:
            run.progress(n)
        yield item
    if run.progress is not None:
        run.progress(n)


def _vanished(records: Records, territory: str, run: RunInfo, seen: set[tuple[str, str]]) -> list[Op]:
    """Deletions of the records an earlier run of this snapshot source wrote that it no longer
    gives (a record it gives but that is quarantined this time is kept as it was): those whose
    ``dct:source`` is this source."""
    if not run.snapshot:
        return []
    urls = records.urls
    source = source_iri(urls, territory, run.source_id)
    graphs = " ".join(f"<{g}>" for g in (urls.territory_graph(territory), urls.private_graph(territory)))
    rows = records.store.select(
        f"SELECT DISTINCT ?r WHERE {{ VALUES ?g {{ {graphs} }} GRAPH ?g {{ ?r <{DCT.source}> <{source}> }} }}"
    )
    ops = []
    for row in rows:
        ref = urls.parse(row["r"].value)
        if ref is None or ref.kind not in KINDS or ref.local_id is None or ref.territory != territory:
            continue
        if (ref.kind, ref.local_id) not in seen:
            ops.append(Op(KINDS[ref.kind], ref.local_id, "delete", missing_ok=True))
    return ops


def open_source(importer: Importer, data: Any, **options: Any) -> Source:
    """``importer.read(data)``; a source that cannot be read at all is the client's error (400)."""
    try:
        return importer.read(data, **options)
    except CivicfedError:
        raise
    except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedBody(f"the source could not be read as {importer.format}: {exc}") from exc


def _read(items: Iterable[Item]) -> Iterator[Item]:
    """The items, or a 400 when the source cannot be read at all (wrong encoding, truncated
    archive…): an importer reports what it cannot map as Rejected items, not exceptions."""
    try:
        yield from items
    except CivicfedError:
        raise
    except (ValueError, OSError) as exc:
        raise MalformedBody(f"the source could not be read: {exc}") from exc
