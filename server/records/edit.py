"""Records as the JSON a client edits: the normal form writes compare, and RFC 7396 merge patches."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from ..model.terms import format_datetime


def editable(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the JSON a client may send back (dates as ISO strings, code lists sorted)."""
    plain = json.loads(json.dumps(record, default=_json_default))
    return {k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v for k, v in plain.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
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
