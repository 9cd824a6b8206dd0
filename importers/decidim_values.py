"""Cell values of Decidim's open-data CSV as JSON values: Ruby timestamps, counts, amounts,
booleans, lists, and the participatory spaces and records that URLs name.

A cell that is present but cannot be read is passed on as it is, so that the record's schema
rejects it with the field's pointer, rather than the field being silently left out.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from server.urls import LOCAL_ID_RE

# Ruby's Time#to_s ("2017-02-07 07:58:01 UTC", "2024-03-01 11:00:00 +0100"), ISO 8601, and Rails'
# :db format with no zone ("2017-10-16 18:00:00", the meetings' start_time), which is UTC.
_MOMENT = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(UTC|Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T].*)?")
_INTEGER = re.compile(r"[+-]?\d+(?:\.0+)?")

#: The kinds of participatory space a URL path names, and the prefix of their process ids: a
#: slug is unique within its own kind of space only, and slugs have no dot, so "assembly.x"
#: cannot be a participatory process's slug.
SPACE_PREFIXES = {
    "processes": "",
    "assemblies": "assembly.",
    "conferences": "conference.",
    "initiatives": "initiative.",
}
_SPACE_URL = re.compile(r"/(processes|assemblies|conferences|initiatives)/([A-Za-z0-9][\w-]*)")


def moment(value: str | None) -> str | None:
    """A timestamp in RFC 3339 (``2017-02-07T07:58:01Z``)."""
    if not value:
        return None
    m = _MOMENT.fullmatch(value.strip())
    if not m:
        return value
    date, time, zone = m.groups()
    zone = "Z" if zone is None or zone.upper() in ("UTC", "Z") else f"{zone[:3]}:{zone[-2:]}"
    return f"{date}T{time}{zone}"


def day(value: str | None) -> str | None:
    """A date (``2024-01-31``); a timestamp gives its date as written."""
    if not value:
        return None
    m = _DATE.fullmatch(value.strip())
    return m.group(1) if m else value


def integer(value: str | None) -> int | str | None:
    """A count; a numeral of more than MAX_DIGITS digits is passed on as it is, for the schema to
    refuse (``int()`` of more than 4,300 digits raises a ValueError that would end the read)."""
    if not value:
        return None
    whole = value.split(".")[0]
    return int(whole) if _INTEGER.fullmatch(value) and len(whole.lstrip("+-")) <= MAX_DIGITS else value


def number(value: str | None) -> float | str | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value


#: Digits an amount may have: more is not money, and making an int of `1e999999999` never ends.
MAX_DIGITS = 30


def amount(value: str | None) -> int | Decimal | str | None:
    """A money amount, exact (the schema refuses floats with more than 4 decimals)."""
    if not value:
        return None
    try:
        out = Decimal(value)
    except InvalidOperation:
        return value
    if not out.is_finite() or abs(out.adjusted()) > MAX_DIGITS:  # `1e999999999` would take forever to int()
        return value  # the schema refuses it as a string, with the field named
    return int(out) if out == out.to_integral_value() else out


def boolean(value: str | None) -> bool | str | None:
    if not value:
        return None
    lowered = value.lower()
    return True if lowered == "true" else False if lowered == "false" else value


def listed(value: str | None) -> list[str]:
    """A list cell: Decidim writes arrays joined with ", "."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def space_of(url: str | None) -> tuple[str, str] | None:
    """The process id of the participatory space a URL is in (the space's own page or a record's),
    and the space's kind (``processes``, ``assemblies``…)."""
    m = _SPACE_URL.search(url or "")
    if not m:
        return None
    kind, slug = m.groups()
    return f"{SPACE_PREFIXES[kind]}{slug}", kind


def linked_ids(value: str | None, segment: str) -> list[str]:
    """The ids of the records of one kind (``proposals``) a list cell names, by id (the projects'
    ``related_proposals``) or by URL (the meetings' and results')."""
    out = []
    for item in listed(value):
        m = re.fullmatch(r"\d+", item) or re.search(rf"/{segment}/(\d+)(?=[/?#]|$)", item)
        if m:
            out.append(m.group(m.lastindex or 0))
    return out


def last_record(url: str | None) -> tuple[str, str] | None:
    """The last ``/<segment>/<id>`` of a URL: the record a page is about (``results``, ``6469``)."""
    found = re.findall(r"/([a-z_]+)/(\d+)(?=[/?#]|$)", url or "")
    return found[-1] if found else None


def local_id(value: str | None, prefix: str = "") -> str | None:
    """A record's local id from a Decidim id (None when it cannot be one)."""
    if not value:
        return None
    out = f"{prefix}{value.strip()}"
    return out if LOCAL_ID_RE.fullmatch(out) else None


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value (empty cells are absent, not empty)."""
    return {k: v for k, v in data.items() if v is not None and v != [] and v != ""}
