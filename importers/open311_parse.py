"""Open311 responses read (JSON or XML, through defusedxml) and their values made record fields.

The spec's JSON is derived from its XML, so both become the same thing: a list of entries, each a
dict of the element names (an empty element is None, a repeated one a list). Ids and codes stay
strings; a value that cannot be a field raises ValidationFailed pointing at the source's field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from marshmallow import ValidationError
from marshmallow.validate import Email

from server.errors import MalformedBody, ValidationFailed

#: Open311 ``status`` (and FixMyStreet's extended ones) → proposal status. The spec: "open: it has
#: been reported; closed: it has been resolved". Statuses not listed (duplicate, internal_referral,
#: no_further_action…) say nothing our codes can: the proposal gets no status.
STATUSES = {
    "open": "published",
    "closed": "implemented",
    "fixed": "implemented",
    "in_progress": "evaluating",
    "investigating": "evaluating",
    "action_scheduled": "evaluating",
    "not_councils_responsibility": "not_receivable",
}
_VALID_EMAIL = Email()
#: Elements nested deeper than this in an XML response are refused: a request is a few levels
#: deep, and reading each level is a call (a thousand would exhaust Python's stack).
MAX_DEPTH = 32
#: The root element of each XML document, by the name of its items.
ROOTS = {"request": ("service_requests", "requests"), "service": ("services",)}


# -- reading a response -----------------------------------------------------------------------


def parse(data: bytes, name: str, items: str = "request") -> list[Any]:
    """The entries of a ``requests`` (``items="request"``) or ``services`` (``"service"``)
    response, JSON or XML as the bytes say. Raises MalformedBody naming ``name`` for a body that
    is not one: broken JSON/XML, an HTML page, a JSON object, an XML entity declaration."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        head = text[:512].lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            raise MalformedBody(f"{name} is an HTML page, not an Open311 response")
        return _parse_xml(text, name, items)
    try:
        entries = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # (UnicodeDecodeError is one; RecursionError: absurd nesting)
        raise MalformedBody(f"{name} is neither JSON nor XML: {exc}") from exc
    if not isinstance(entries, list):
        raise MalformedBody(f"{name}: a JSON list of {items}s expected, got {type(entries).__name__}")
    _raise_errors(entries, name)
    return entries


def _parse_xml(data: bytes, name: str, items: str) -> list[Any]:
    try:
        root = fromstring(data)  # defusedxml: an entity declaration is refused, never expanded
    except DefusedXmlException as exc:
        raise MalformedBody(f"{name}: refused XML ({type(exc).__name__}: {exc})") from exc
    except ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        raise MalformedBody(f"{name}, line {line}, column {column}: invalid XML ({exc})") from exc
    if _tag(root) == "errors":
        _raise_errors([_element(e, name) for e in root], name)
    if _tag(root) not in ROOTS[items]:
        raise MalformedBody(f"{name}: <{_tag(root)}> where Open311 has <{ROOTS[items][0]}>")
    return [_element(child, name) for child in root if _tag(child) == items]


def _tag(element: Any) -> str:
    return str(element.tag).rsplit("}", 1)[-1]


def _element(element: Any, name: str, depth: int = 1) -> Any:
    """An XML element the way Open311's JSON writes it: text, or an object of its children (a
    repeated child a list)."""
    if len(element) == 0:
        return element.text
    if depth >= MAX_DEPTH:
        raise MalformedBody(f"{name}: <{_tag(element)}> is nested more than {MAX_DEPTH} elements deep")
    out: dict[str, Any] = {}
    for child in element:
        value, tag = _element(child, name, depth + 1), _tag(child)
        if tag in out:
            out[tag] = (out[tag] if isinstance(out[tag], list) else [out[tag]]) + [value]
        else:
            out[tag] = value
    return out


def _raise_errors(entries: list[Any], name: str) -> None:
    """An Open311 error document (``[{code, description}]``) served as if it were data."""
    if entries and all(isinstance(e, dict) and "code" in e and "description" in e for e in entries):
        detail = "; ".join(f"{e.get('code')}: {e.get('description')}" for e in entries)
        raise MalformedBody(f"{name} is an Open311 error, not data ({detail})")


# -- values -----------------------------------------------------------------------------------


def as_text(value: Any) -> str | None:
    """A string, number-as-string (ids and codes are strings, whatever a server sends), or None."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def invalid(pointer: str, detail: str) -> ValidationFailed:
    where = f"#/{pointer}" if pointer else "#"
    return ValidationFailed(f"{pointer or 'request'}: {detail}", errors=[{"pointer": where, "detail": detail}])


def as_number(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
        number = math.nan
    if not math.isfinite(number):
        raise invalid(name, "Not a number.")
    return number


def as_moment(value: Any, name: str, zone: ZoneInfo | None) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(name, f"Not an ISO 8601 date-time: {text[:40]!r}.") from None
    if moment.tzinfo is None:
        if zone is None:
            raise invalid(name, "No UTC offset: give the server's time zone (option timezone).")
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def slug(text: str, limit: int = 100) -> str:
    """An id from a name: ASCII letters and digits, hyphens between words; a hash for a name
    with none (Greek, Cyrillic…), so that the same name always gives the same id."""
    ascii_text = unicodedata.normalize("NFKD", text.replace("ß", "ss")).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].strip("-")
    return out or "x-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def identity_fields(entry: Mapping[str, Any]) -> dict[str, str]:
    """Who sent the request, for the write-only author fields only: the platform's account id,
    else the e-mail address, else the name, phone number or device id."""
    email = as_text(entry.get("email"))
    try:
        valid_email = _VALID_EMAIL(email) if email else None
    except ValidationError:
        valid_email = None
    name = " ".join(filter(None, (as_text(entry.get("first_name")), as_text(entry.get("last_name")))))
    fallback = name or as_text(entry.get("requestor_name")) or email or as_text(entry.get("phone"))
    author = as_text(entry.get("account_id")) or (None if valid_email else fallback or as_text(entry.get("device_id")))
    out = {"author_email": valid_email} if valid_email else {}
    return {**out, "author": author[:256]} if author else out


def agency_names(value: Any) -> list[str]:
    """``agency_responsible``: a name, or FixMyStreet's ``{"recipient": name or [names]}``."""
    if isinstance(value, Mapping):
        value = value.get("recipient")
    values = value if isinstance(value, list) else [value]
    return list(dict.fromkeys(t for t in map(as_text, values) if t))
