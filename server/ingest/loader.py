"""The loader: items of a source → validated operations → one atomic write → a report.

Every line is checked before anything is written, so that one round trip reports every problem;
without ``partial``, one rejected item means nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import CivicfedError, MalformedBody
from ..records import Op, Records
from ..state import Principal
from ..store import Changeset
from ..urls import LOCAL_ID_RE
from .report import Report, error_entry
from .source import Deletion, Importer, Item, Record, Rejected, Source, Statements
from .validate import Validator

_IN_THREAD = Validator(0)


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
) -> Report:
    """Validate every item, then write the valid ones atomically (with ``partial``), or all or
    none; ``dry_run`` writes nothing. ``principal`` is the API key's holder; None is the server's
    operator (command line). Statements go into the graph of ``source_id``, replacing it. The
    report lists the first ``max_errors`` rejected items and counts the others. ``validator``
    validates large sources in worker processes (the server's); None validates in this thread."""
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

    read = list(_read(items))
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
            ops.append(Op(item.kind, data["id"], "upsert", data, line=item.line))
        elif isinstance(item, Statements):
            statements.extend(item.statements)
    extra = None
    if statements:
        # The importer's own naming: a wrong one is a bug of the importer, not of the request.
        if source_id is None or not LOCAL_ID_RE.fullmatch(source_id):
            raise ValueError(f"statements need the source's id, a slug (got {source_id!r})")
        extra = Changeset()
        graph = records.urls.source_graph(territory, source_id)
        extra.clear_graph(graph)
        extra.add(graph, statements)
    if errors and not partial:
        dry_run = True  # still check the rest, so that one round trip reports every problem
    if principal is None:
        written = records.write_internal(territory, ops, partial=partial, dry_run=dry_run, extra=extra)
    else:
        written = records.write(territory, ops, principal, partial=partial, dry_run=dry_run, extra=extra)
    return Report.of(written, len(ops), errors, omitted, max_errors)  # type: ignore[arg-type]


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
