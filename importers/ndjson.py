"""NDJSON bulk ingest: one JSON record per line, mixed kinds, one atomic write.

This is the format of ``POST /api/v1/territories/{t}/ingest`` and of ``civicfed import ndjson``;
``civicfed export ndjson`` writes the same format, so a territory's records round-trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.errors import CivicfedError, ValidationFailed
from server.model.kinds import RECORD_KINDS, kind_named
from server.model.schemas import parse_json
from server.records import Op, Records
from server.state import Principal
from server.urls import LOCAL_ID_RE

KIND_NAMES = ", ".join(k.name for k in RECORD_KINDS)


def parse_line(line: bytes) -> Any:
    return parse_json(line)


def to_op(records: Records, number: int, obj: Any) -> Op:
    """One NDJSON object as an operation (raises a CivicfedError naming what is wrong)."""
    if not isinstance(obj, dict):
        raise ValidationFailed("a line must be a JSON object", errors=[{"pointer": "#", "detail": "Not an object."}])
    obj = dict(obj)
    kind_name = obj.pop("kind", None)
    kind = kind_named(kind_name) if isinstance(kind_name, str) else None
    if kind is None or kind.name == "territory":
        hint = " (a territory is created with `civicfed territory create`)" if kind else ""
        raise ValidationFailed(
            f"unknown kind {kind_name!r}: use one of {KIND_NAMES}{hint}",
            errors=[{"pointer": "#/kind", "detail": f"One of: {KIND_NAMES}."}],
        )
    if obj.get("deleted") is True:
        local_id = obj.get("id")
        if not isinstance(local_id, str) or not LOCAL_ID_RE.fullmatch(local_id):
            raise ValidationFailed(
                "a deletion needs the record's id", errors=[{"pointer": "#/id", "detail": "Missing or not an id."}]
            )
        # Replaying a feed deletes what may never have reached this server: not an error.
        return Op(kind, local_id, "delete", missing_ok=True, line=number)
    data = records.prepare(kind, obj)
    return Op(kind, data["id"], "upsert", data, line=number)


def ingest_ndjson(
    records: Records,
    territory: str,
    body: bytes | Iterable[bytes],
    principal: Principal | None,
    *,
    partial: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Validate every line, then write the valid ones atomically; a report says what happened.

    ``principal`` is the API key's holder; None means the server's operator (command line).
    """
    lines = body.split(b"\n") if isinstance(body, bytes) else body
    ops: list[Op] = []
    errors: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        obj: Any = None
        try:
            obj = parse_line(line)
            ops.append(to_op(records, number, obj))
        except CivicfedError as err:
            kind, local_id = (obj.get("kind"), obj.get("id")) if isinstance(obj, dict) else (None, None)
            errors.append(_error(number, _str(kind), _str(local_id), err))
    if errors and not partial:
        dry_run = True  # still check the rest, so that one round trip reports every problem
    if principal is None:  # the operator, from the command line
        report = records.write_internal(territory, ops, partial=partial, dry_run=dry_run)
    else:
        report = records.write(territory, ops, principal, partial=partial, dry_run=dry_run)
    for o in report.rejected:
        errors.append(_error(o.op.line, o.op.kind.name, o.op.local_id, o.error))
    errors.sort(key=lambda e: e["line"] or 0)
    counts = report.counts()
    return {
        "territory": territory,
        "written": report.written,
        # When nothing was written these say what the batch would have done.
        "created": counts["created"],
        "updated": counts["updated"],
        "deleted": counts["deleted"],
        "unchanged": counts["unchanged"],
        "superseded": counts["superseded"],
        "rejected": len(errors),
        "accepted": len(ops) - len(report.rejected),
        "quads": report.quads,
        "errors": errors,
    }


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _error(line: int | None, kind: str | None, local_id: str | None, err: CivicfedError | None) -> dict[str, Any]:
    assert err is not None
    entry: dict[str, Any] = {"line": line}
    if kind:
        entry["kind"] = kind
    if local_id:
        entry["id"] = local_id
    entry.update({"status": err.status, "title": err.title, "detail": err.detail})
    if err.errors:
        entry["errors"] = err.errors
    return entry
