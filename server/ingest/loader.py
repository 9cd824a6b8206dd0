"""The loader: items of a source → validated operations → one atomic write → a report.

Every line is checked before anything is written, so that one round trip reports every problem;
without ``partial``, one rejected item means nothing is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from .validate import Validator

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
) -> Report:
    """Validate every item, then write the valid ones atomically (with ``partial``), or all or
    none; ``dry_run`` writes nothing. ``principal`` is the API key's holder; None is the server's
    operator (command line). Statements go into the graph of ``source_id``, replacing it. The
    report lists the first ``max_errors`` rejected items and counts the others. ``validator``
    validates large sources in worker processes (the server's); None validates in this thread.
    With ``run``, the write carries the run's provenance, and a snapshot source's vanished
    records are deleted."""
    ops: list[Op] = []
    errors: list[dict[str, object]] = []
    omitted = 0
    statements: list[str] = []

    def reject(line: int | None, kind: str | None, local_id: str | None, err: CivicfedError) -> None:
        # Items arrive in source order: the first ones are kept, the rest only counted, so
        # that a body of nothing but bad lines does not grow the answer (and the worker) with it.
        nonlocal omitted
        if len(errors) < max_errors:
            errors.append(error_entry(line, kind, local_id, err))
        else:
            omitted += 1

    read = list(_read(items if run is None else _counted(items, run)))
    # Every record validated at once (in worker processes for a large source), then taken in
    # source order with the rest: errors are reported in the order of the lines.
    checked = iter((validator or _IN_THREAD).check([(i.kind.name, i.data) for i in read if isinstance(i, Record)]))
    for item in read:
        if isinstance(item, Rejected):
            reject(item.line, item.kind, item.local_id, item.error)
        elif isinstance(item, Deletion):
            # Replaying a feed deletes what may never have reached this server: not an error.
            ops.append(Op(item.kind, item.local_id, "delete", missing_ok=True, line=item.line))
        elif isinstance(item, Record):
            data = next(checked)
            if isinstance(data, CivicfedError):
                local_id = item.data.get("id")
                reject(item.line, item.kind.name, local_id if isinstance(local_id, str) else None, data)
                continue
            ops.append(Op(item.kind, data["id"], "upsert", data, line=item.line, keep_existing=item.if_absent))
        elif isinstance(item, Statements):
            statements.extend(item.statements)
    extra = None
    digest = hashlib.sha256("\n".join(sorted(set(statements))).encode()).hexdigest() if statements else None
    # A run's statements replace the source's graph when they differ from the previous run's
    # (or when a run of a source that gave some gives none).
    rewrite = bool(statements) if run is None else digest != run.previous_statements
    if rewrite:
        # The importer's own naming: a wrong one is a bug of the importer, not of the request.
        if source_id is None or not LOCAL_ID_RE.fullmatch(source_id):
            raise ValueError(f"statements need the source's id, a slug (got {source_id!r})")
        extra = Changeset()
        graph = records.urls.source_graph(territory, source_id)
        extra.clear_graph(graph)
        extra.add(graph, statements)
    if errors and not partial:
        dry_run = True  # still check the rest, so that one round trip reports every problem
    settings: dict[str, Any] = {"partial": partial, "dry_run": dry_run, "extra": extra}
    if run is not None:
        ops += _vanished(records, territory, run, read)
        settings.update(_run_settings(records, territory, run, len(read), extra, errors, omitted))
    # Located records get the district their point is in; new boundaries move the others.
    ops += place_in_districts(records, territory, ops)
    if principal is None:
        written = records.write_internal(territory, ops, **settings)
    else:
        written = records.write(territory, ops, principal, **settings)
    report = Report.of(written, len(ops), errors, omitted, max_errors)  # type: ignore[arg-type]
    report.read = len(read)
    report.statements, report.statements_sha256 = len(statements), digest
    report.statements_changed = rewrite and written.written
    return report


def _counted(items: Iterable[Item], run: RunInfo) -> Iterator[Item]:
    n = 0
    for n, item in enumerate(items, start=1):
        if run.progress is not None and n % run.progress_every == 0:
            run.progress(n)
        yield item
    if run.progress is not None:
        run.progress(n)


def _vanished(records: Records, territory: str, run: RunInfo, read: list[Item]) -> list[Op]:
    """Deletions of the records an earlier run of this snapshot source wrote that it no longer
    gives (a record it gives but that is quarantined this time is kept as it was): those whose
    ``dct:source`` is this source."""
    if not run.snapshot:
        return []
    seen: set[tuple[str, str]] = set()
    for item in read:
        if isinstance(item, Record) and isinstance(item.data.get("id"), str):
            seen.add((item.kind.name, item.data["id"]))
        elif isinstance(item, Deletion):
            seen.add((item.kind.name, item.local_id))
        elif isinstance(item, Rejected) and item.kind and item.local_id:
            seen.add((item.kind, item.local_id))
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


def _run_settings(
    records: Records,
    territory: str,
    run: RunInfo,
    read: int,
    extra: Changeset | None,
    errors: list[dict[str, Any]],
    omitted: int,
) -> dict[str, Any]:
    """The write's provenance: each written record's links, and the run's description made from
    what the write does, unless it changes nothing (re-running an unchanged source adds none)."""
    urls = records.urls

    def describe(report: WriteReport) -> Changeset:
        cs = extra or Changeset()
        counts = report.counts()
        if not (counts["created"] or counts["updated"] or counts["deleted"] or extra is not None):
            return cs
        rejected = errors + [
            error_entry(o.op.line, o.op.kind.name, o.op.local_id, o.error)  # type: ignore[arg-type]
            for o in report.rejected
        ]
        counts = {**counts, "read": read, "rejected": len(rejected) + omitted}
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
