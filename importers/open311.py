"""Open311 GeoReport v2: the service requests of a city's endpoint as geolocated proposals.

``civicfed import open311 https://host/open311/v2 --territory t [--option jurisdiction_id=…]``
reads ``services`` then ``requests`` (JSON tried first, XML — the format the spec makes
mandatory — when JSON fails), page after page when the server pages (``page``/``page_size``,
a common extension). ``civicfed import open311 saved/requests.xml --option services=services.xml``
reads responses saved to files the same way.

Each request becomes a ``proposal`` of one ``process`` synthesised for the endpoint (Open311 has
no process of its own); each ``agency_responsible`` an ``organization`` the proposal is
``handled_by``. Identity fields (``account_id``, ``email``, names, phone, device) only ever reach
the write-only ``author``/``author_email`` the loader pseudonymises. A record's ``line`` is its
position in the source (1 = the first request, counted across pages). Reading the responses and
making their values fields is :mod:`importers.open311_parse`'s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from server.errors import CivicfedError, MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Record, Rejected
from server.model.kinds import KINDS
from server.urls import LOCAL_ID_RE

from .open311_parse import (
    STATUSES,
    agency_names,
    as_moment,
    as_number,
    as_text,
    identity_fields,
    invalid,
    parse,
    slug,
)
from .remote import Fetcher, SourceRefused

#: Pages read at most by default: 50 pages of a server's usual 50-1000 requests.
MAX_PAGES = 50


@dataclass
class Open311Source:
    """An Open311 endpoint (``base`` URL) or saved responses (``path``)."""

    id: str
    name: str
    location: str
    #: The id of the process the requests are part of, and that process when synthesised.
    process_id: str
    process: dict[str, Any] | None = None
    base: str | None = None
    path: Path | None = None
    services_path: Path | None = None
    fetcher: Fetcher | None = None
    params: dict[str, str] = field(default_factory=dict)
    formats: tuple[str, ...] = ("json", "xml")
    page_size: int | None = None
    max_pages: int = MAX_PAGES
    id_prefix: str = ""
    language: str | None = None
    zone: ZoneInfo | None = None
    sha256: str | None = None
    #: False when reading stopped at ``max_pages`` on a full page: the server may have more.
    complete: bool = True
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def items(self) -> Iterator[Item]:
        services = {
            code: name
            for s in self._services()
            if isinstance(s, dict)
            and (code := as_text(s.get("service_code")))
            and (name := as_text(s.get("service_name")))
        }
        if self.process:
            yield Record(KINDS["process"], self.process)
        agencies: set[str] = set()
        seen: set[str] = set()
        for number, entry in enumerate(self._requests(), start=1):
            rid = as_text(entry.get("service_request_id")) if isinstance(entry, dict) else None
            local_id = self.id_prefix + rid if rid else None
            if local_id in seen:  # the same request again on a later page (a server paging while it changes)
                continue
            try:
                proposal, names = self._proposal(entry, services)
            except CivicfedError as err:
                yield Rejected(err, number, "proposal", local_id)
                continue
            seen.add(proposal["id"])
            for org in names:
                if slug(org) not in agencies:
                    agencies.add(slug(org))
                    yield Record(KINDS["organization"], {"id": slug(org), "name": org, "type": "public_body"}, number)
            yield Record(KINDS["proposal"], proposal, number)
        self.sha256 = self._digest.hexdigest()

    def _proposal(self, entry: Any, services: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(entry, dict):
            raise invalid("", f"A request is an object, not {type(entry).__name__}.")
        rid = as_text(entry.get("service_request_id"))
        if rid is None:
            raise invalid("service_request_id", "Missing: a request without an id cannot be kept in step.")
        if not LOCAL_ID_RE.fullmatch(self.id_prefix + rid):
            raise invalid("service_request_id", "Not usable as an id (letters, digits and . _ ~ - only).")
        code = as_text(entry.get("service_code"))
        title = as_text(entry.get("title")) or as_text(entry.get("service_name")) or services.get(code or "")
        if title is None:
            raise invalid("service_name", "No title, service name nor known service code.")
        body = as_text(entry.get("description")) or as_text(entry.get("detail"))
        lat, lon = as_number(entry.get("lat"), "lat"), as_number(entry.get("long"), "long")
        address, zipcode = as_text(entry.get("address")), as_text(entry.get("zipcode"))
        agencies = agency_names(entry.get("agency_responsible"))
        optional = {
            "body": body.replace("\r\n", "\n") if body else None,
            "status": STATUSES.get((as_text(entry.get("status")) or "").lower()),
            # (0, 0) is how many servers say "no location", never a real report.
            "location": {"lat": lat, "lon": lon} if lat is not None and lon is not None and (lat or lon) else None,
            "address": f"{address}, {zipcode}" if address and zipcode and zipcode not in address else address,
            # Several recipients (FixMyStreet): none of them is *the* one that takes it up.
            "handled_by": slug(agencies[0]) if len(agencies) == 1 else None,
            "created": as_moment(entry.get("requested_datetime"), "requested_datetime", self.zone),
            "modified": as_moment(entry.get("updated_datetime"), "updated_datetime", self.zone),
            "language": self.language,
            **identity_fields(entry),
        }
        data = {"id": self.id_prefix + rid, "process": self.process_id, "title": title}
        return data | {k: v for k, v in optional.items() if v is not None}, agencies

    # -- reading the documents --

    def _fetch(self, what: str, params: Mapping[str, str], label: str = "") -> list[Any]:
        """The entries of a document of the endpoint, in JSON if it answers JSON, else in XML;
        the first format that works is the one asked for from then on."""
        assert self.base and self.fetcher
        failures: list[CivicfedError] = []
        for fmt in self.formats:
            url = f"{self.base}/{what}.{fmt}"
            try:
                data = self.fetcher.get(url, params=params).content
                entries = parse(data, url + label, what[:-1])
            except SourceRefused:
                raise
            except CivicfedError as err:  # not found, not acceptable, not JSON…: the next format
                failures.append(err)
                continue
            self.formats = (fmt,)
            self._digest.update(data)
            return entries
        last = failures[-1]
        raise type(last)("; ".join(f.detail for f in failures), errors=last.errors)

    def _services(self) -> list[Any]:
        if self.path is None:
            jurisdiction = {k: v for k, v in self.params.items() if k == "jurisdiction_id"}
            return self._fetch("services", jurisdiction)
        if self.services_path is None:
            return []
        data = self.services_path.read_bytes()
        self._digest.update(data)
        return parse(data, self.services_path.name, "service")

    def _requests(self) -> Iterator[Any]:
        if self.path is not None:
            data = self.path.read_bytes()
            self._digest.update(data)
            yield from parse(data, self.path.name)
            return
        size, previous = self.page_size, None
        for page in range(1, self.max_pages + 1):
            params = dict(self.params)
            if self.max_pages > 1:  # a server that does not page ignores it (and repeats itself)
                params["page"] = str(page)
            if self.page_size:
                params["page_size"] = str(self.page_size)
            entries = self._fetch("requests", params, f" (page {page})")
            ids = [as_text(e.get("service_request_id")) if isinstance(e, dict) else None for e in entries]
            if not entries or ids == previous:
                return
            yield from entries
            size = size or len(entries)  # without page_size, the server's own: the first page's length
            if len(entries) < size:
                return
            previous = ids
        self.complete = False


def read(
    source: str,
    *,
    fetcher: Fetcher | None = None,
    jurisdiction_id: str | None = None,
    updated_after: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    page_size: int | str | None = None,
    max_pages: int | str = MAX_PAGES,
    format: str | None = None,
    services: str | None = None,
    process: str | None = None,
    process_title: str | None = None,
    id_prefix: str = "",
    language: str | None = None,
    timezone: str | None = None,
) -> Open311Source:
    """An Open311 source: ``source`` is the endpoint's base URL (``…/open311/v2``, or its
    ``requests.json``/``requests.xml`` URL) or a saved ``requests`` file (``services``: the saved
    ``services`` file, which names the requests that only give their service code)."""
    options = _check_options(page_size, max_pages, format, id_prefix, timezone, updated_after, start_date, end_date)
    filters = {"jurisdiction_id": jurisdiction_id, "updated_after": updated_after}
    filters |= {"start_date": start_date, "end_date": end_date}
    located: dict[str, Any]
    if source.startswith(("http://", "https://")):
        base = source.rstrip("/")
        found = re.search(r"/requests\.(json|xml)$", base)
        if found:
            base, options["formats"] = base[: found.start()], (found.group(1),)
        where = jurisdiction_id or urlsplit(base).hostname or base
        params = {k: v for k, v in filters.items() if v}
        located = {"base": base, "fetcher": fetcher or _configured_fetcher(), "params": params, "location": base}
    else:
        path = Path(source)
        if not path.is_file():
            raise MalformedBody(f"{source!r} is neither an http(s) URL nor a file")
        # bloomington_requests.json → bloomington; a bare requests.json → its folder's name
        where = jurisdiction_id or re.sub(r"[_.-]?requests$", "", path.stem) or path.resolve().parent.name
        located = {"path": path, "services_path": Path(services) if services else None, "location": str(path)}
    source_id = "open311-" + slug(where)
    if process:  # an existing process: the requests join it, it is not replaced
        if not LOCAL_ID_RE.fullmatch(process):
            raise ValidationFailed(f"process {process!r} is not an id")
        made = None
    else:
        made = {"id": source_id, "title": process_title or f"Open311 service requests, {where}", "type": "other"}
    name = f"Open311 {located['location']}"
    return Open311Source(
        source_id, name, process_id=process or source_id, process=made, language=language, **located, **options
    )


def _check_options(
    page_size: Any, max_pages: Any, fmt: Any, prefix: str, zone: Any, *moments: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id_prefix": prefix}
    try:
        out["page_size"] = int(page_size) if page_size not in (None, "") else None
        out["max_pages"] = int(max_pages)
    except ValueError:
        raise ValidationFailed("page_size and max_pages are numbers") from None
    if out["max_pages"] < 1 or (out["page_size"] is not None and out["page_size"] < 1):
        raise ValidationFailed("page_size and max_pages are at least 1")
    if fmt:
        if fmt not in ("json", "xml"):
            raise ValidationFailed(f"format is json or xml, not {fmt!r}")
        out["formats"] = (fmt,)
    if prefix and not LOCAL_ID_RE.fullmatch(prefix):
        raise ValidationFailed(f"id_prefix {prefix!r} is not the start of an id (letters, digits, . _ ~ -)")
    try:
        out["zone"] = ZoneInfo(zone) if zone else None
    except (ValueError, KeyError) as exc:
        raise ValidationFailed(f"unknown time zone {zone!r}") from exc
    for moment in filter(None, moments):
        try:
            dt.datetime.fromisoformat(moment)
        except ValueError:
            raise ValidationFailed(f"{moment!r} is not an ISO 8601 date-time") from None
    return out


def _configured_fetcher() -> Fetcher:
    """The server's fetcher settings (IMPORT_*) when called within the application; outside it,
    a fetcher allowing no host (a caller passes its own ``fetcher``)."""
    from flask import current_app, has_app_context

    return Fetcher.from_config(current_app.config) if has_app_context() else Fetcher()


IMPORTER = Importer(
    "open311",
    "Open311 GeoReport v2 service requests as located proposals (SOURCE: the endpoint's base URL, "
    "or a saved requests.json/requests.xml)",
    read,
    reads_file=False,
    options={
        "jurisdiction_id": "The jurisdiction, for an endpoint serving several (sent as jurisdiction_id).",
        "updated_after": "Only requests updated after this date-time (sent as updated_after; incremental runs).",
        "start_date": "Only requests made from this date-time (the spec's start_date; default: the last 90 days).",
        "end_date": "Only requests made until this date-time (end_date).",
        "page_size": "Requests per page asked for (page_size); default: the server's.",
        "max_pages": f"Pages read at most (default {MAX_PAGES}; 1: do not page).",
        "format": "json or xml: ask for this one only (default: JSON, else XML).",
        "services": "A saved services.json/services.xml, for a saved requests file.",
        "process": "An existing process to put the requests in (default: one made, open311-<jurisdiction or host>).",
        "process_title": "Title of the process made (default: Open311 service requests, <jurisdiction or host>).",
        "id_prefix": "Put before every request id (keeps ids apart from another source's).",
        "language": "Language of the requests' texts (de, fr…).",
        "timezone": "Time zone of date-times sent without a UTC offset (Europe/Berlin…).",
    },
    remote=True,
)
