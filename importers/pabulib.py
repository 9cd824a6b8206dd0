"""Pabulib ``.pb`` files (http://pabulib.org): one participatory-budget vote per file, in three
``;``-separated sections in this order, each opened by its name and a header line: ``META``
(``key;value``), ``PROJECTS`` (``project_id;cost;…``) and ``VOTES`` (``voter_id;vote;…``, one
ballot a line, ``vote`` listing the chosen project ids separated by commas).

META becomes a ``process`` (a participatory budget) and its ``budget``; each project a
``project`` and a ``proposal`` of the same id. The proposal is there for the count: the model's
``project`` has no vote count, a proposal's ``vote_count`` is the published support figure, and
the project names it in ``proposals`` (it is the idea put to the vote; the project what is
funded). Ballots are only counted, as they are read: voter ids and voter attributes (age, sex,
district…) are never kept, so a file of millions of ballots needs one counter per project.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import IO, Any

from server.errors import CivicfedError, MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Record, Rejected
from server.model.kinds import KINDS
from server.urls import LOCAL_ID_RE

from .tabular import csv_rows, html_text

MEDIA_TYPES = ("application/x-pabulib",)
#: Longest line read (bytes): a ballot lists a few dozen project ids.
MAX_LINE = 1024 * 1024
SECTIONS = ("META", "PROJECTS", "VOTES")
#: Digits an amount may have (as Decimal.adjusted() counts them, either side of the point): more
#: is no money, and adding ``1e999999999`` to a total raises decimal.Overflow.
MAX_DIGITS = 30

#: Pabulib's English category names whose theme is unambiguous; other categories are left out.
CATEGORY_THEMES = {
    "culture": "culture",
    "education": "education",
    "environmental protection": "environment",
    "health": "health",
    "public space": "urban_planning",
    "public transit and roads": "mobility",
    "sport": "sport",
    "urban greenery": "green_spaces",
    "welfare": "social",
}
#: When META has no ``currency``, the legal tender of the country of the file's unit.
COUNTRY_CURRENCIES = {"poland": "PLN", "switzerland": "CHF", "united states": "USD", "usa": "USD"}
COUNTRY_CURRENCIES |= {c: "EUR" for c in ("france", "netherlands", "germany", "italy", "spain", "portugal", "finland")}
#: ``selected``: 1 funded, 2 funded by Poznań's 80 % rule, 0 not funded (3 is undocumented: left out).
SELECTED = {"0": False, "1": True, "2": True}

PROCESS, BUDGET, PROJECT, PROPOSAL = (KINDS[k] for k in ("process", "budget", "project", "proposal"))


def invalid(pointer: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"pointer": pointer, "detail": detail}])


def amount(text: str, pointer: str) -> Decimal:
    """A non-negative number as Pabulib files and spreadsheets write it (``8000,0`` too)."""
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise invalid(pointer, f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise invalid(pointer, f"{text!r} is not an amount")
    if abs(value.adjusted()) > MAX_DIGITS:
        raise invalid(pointer, f"{text!r} is not an amount (too large or too precise)")
    return value


_FOLD = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae", "œ": "oe", "\u2019": "-"}
)


def slug(text: str) -> str:
    """Lower-case ASCII letters, digits and hyphens: ``Pawłów`` → ``pawlow``."""
    ascii_text = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _date(text: str, pointer: str) -> str:
    day = text.split()[0] if text.split() else text  # "3.10.2019" or "3.10.2019 08:00"
    for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(day, fmt).date().isoformat()
        except ValueError:
            continue
    raise invalid(pointer, f"{text!r} is not a date (d.m.yyyy or yyyy-mm-dd)")


def _same(text: str, count: int) -> bool:
    try:
        return Decimal(text) == count
    except InvalidOperation:
        return False


def _cell(value: str | None) -> str | None:
    """A cell stripped, or None when empty (Pabulib writes ``None`` for an empty optional cell)."""
    value = (value or "").strip()
    return None if value.lower() in ("", "none") else value


@dataclass
class _Project:
    line: int
    local_id: str
    record: dict[str, Any] | None  # None: the line was rejected (its votes are still counted)
    votes_column: str | None


@dataclass
class PabulibSource:
    """The items of one ``.pb`` file, read once, line by line."""

    stream: IO[bytes]
    name: str = "pabulib"
    id: str = "pabulib"
    process_id: str | None = None
    currency: str | None = None
    sha256: str | None = None
    location: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    projects: dict[str, _Project] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def items(self) -> Iterator[Item]:
        digest = hashlib.sha256()
        rows = _rows(_lines(self.stream, self.name, digest), self.name)
        seen: dict[str, int] = {}  # section → line of its name
        header: list[str] = []
        vote = 0  # index of the VOTES column that lists a ballot's projects
        for line, cells in rows:
            marker = "" if any(c.strip() for c in cells[1:]) else cells[0].strip().upper()
            if marker in SECTIONS:
                expected = SECTIONS[len(seen)] if len(seen) < len(SECTIONS) else "the end"
                if marker != expected:
                    raise MalformedBody(
                        f"{self.name}, line {line}: {marker} where {expected} was expected "
                        "(a Pabulib file has the sections META, PROJECTS, VOTES, in this order)"
                    )
                seen[marker] = line
                header = self._header(marker, next(rows, (line, None)))
                vote = header.index("vote") if marker == "VOTES" else vote
            elif not seen:
                raise MalformedBody(f"{self.name}, line {line}: data before the META section")
            elif len(cells) != len(header):
                section = list(seen)[-1]
                detail = f"{len(cells)} fields for the {len(header)} columns of {section}"
                yield Rejected(
                    invalid("#", detail), line, {"META": "process", "PROJECTS": "project"}.get(section, "vote")
                )
            elif "VOTES" in seen:
                # Only the ballot's project ids are read: never its voter id nor the voter's attributes.
                yield from self._ballot(line, cells[vote])
            elif "PROJECTS" in seen:
                yield from self._project(line, dict(zip(header, cells, strict=True)))
            else:
                yield from self._meta(line, cells[0].strip(), cells[1].strip())
        missing = [s for s in SECTIONS if s not in seen]
        if missing:
            raise MalformedBody(f"{self.name}: no {' nor '.join(missing)} section (META, PROJECTS, VOTES expected)")
        self.sha256, self.location = digest.hexdigest(), self.name
        yield from self._records(seen["META"])

    def _header(self, section: str, row: tuple[int, list[str] | None]) -> list[str]:
        line, cells = row
        header = [c.strip().lower() for c in cells or ()]
        need = {"META": ["key", "value"], "PROJECTS": ["project_id", "cost"], "VOTES": ["vote"]}[section]
        if cells is None or (section == "META" and header != need) or not set(need) <= set(header):
            raise MalformedBody(f"{self.name}, line {line}: the {section} header needs the columns {';'.join(need)}")
        twice = sorted({h for h in header if h and header.count(h) > 1})
        if twice:
            raise MalformedBody(f"{self.name}, line {line}: the {section} column(s) {', '.join(twice)} appear twice")
        return header

    def _meta(self, line: int, key: str, value: str) -> Iterator[Item]:
        if key in self.meta:
            yield Rejected(invalid("#", f"META gives {key!r} twice"), line, "process")
        self.meta.setdefault(key, value)

    def _project(self, line: int, row: dict[str, str]) -> Iterator[Item]:
        pid = row["project_id"].strip()
        if pid in self.projects:
            yield Rejected(invalid("#/id", f"project {pid!r} is listed twice"), line, "project")
            return
        local_id = f"{self._process_id()}-{pid}"
        self.projects[pid] = entry = _Project(line, local_id, None, _cell(row.get("votes")))
        self.counts[pid] = 0
        try:
            entry.record = self._project_record(local_id, row)
        except CivicfedError as err:
            yield Rejected(err, line, "project", local_id)

    def _ballot(self, line: int, vote: str) -> Iterator[Item]:
        chosen = [p.strip() for p in vote.split(",") if p.strip()]
        unknown = sorted({p for p in chosen if p not in self.counts})
        if unknown or len(set(chosen)) != len(chosen):
            detail = f"names {', '.join(map(repr, unknown))}, not in PROJECTS" if unknown else "names a project twice"
            yield Rejected(invalid("#/vote", f"the ballot {detail}; it is not counted"), line, "vote")
            return
        for pid in chosen:
            self.counts[pid] += 1

    def _process_id(self) -> str:
        if self.process_id:
            return self.process_id
        m = self.meta
        parts = [m.get("country"), m.get("unit"), m.get("instance"), m.get("subunit") or m.get("district")]
        self.process_id = "_".join(slug(p) for p in parts if p and slug(p)) or slug(PurePath(self.name).stem)
        if not LOCAL_ID_RE.fullmatch(self.process_id + "-x"):
            raise MalformedBody(f"{self.name}: cannot name the process from META; give it (option process=ID)")
        return self.process_id

    def _currency(self) -> str:
        code = (
            self.meta.get("currency") or self.currency or COUNTRY_CURRENCIES.get(self.meta.get("country", "").lower())
        )
        if not code or not re.fullmatch(r"[A-Za-z]{3}", code):
            raise invalid(
                "#/currency", "META has no currency and its country's is not known: give it (option currency)"
            )
        return code.upper()

    def _project_record(self, local_id: str, row: dict[str, str]) -> dict[str, Any]:
        if not LOCAL_ID_RE.fullmatch(local_id):
            raise invalid("#/id", f"{local_id!r} is not an id (letters, digits, . _ ~ -; at most 128)")
        cost = {"amount": amount(row["cost"], "#/cost/amount"), "currency": self._currency()}
        data: dict[str, Any] = {"id": local_id, "title": _cell(row.get("name")) or row["project_id"].strip()}
        description = html_text(_cell(row.get("description")))
        if description:
            data["description"] = description
        data["cost"] = cost
        selected = _cell(row.get("selected"))
        if selected is not None and selected not in (*SELECTED, "3"):
            raise invalid("#/selected", f"selected is {selected!r}: 0, 1, 2 or 3 expected")
        if selected in SELECTED:
            data["selected"] = SELECTED[selected]
        categories = (c.strip().lower() for c in (_cell(row.get("category")) or "").split(","))
        themes = sorted({CATEGORY_THEMES[c] for c in categories if c in CATEGORY_THEMES})
        if themes:
            data["themes"] = themes
        lat, lon = _cell(row.get("latitude")), _cell(row.get("longitude"))
        if lat is not None and lon is not None:
            try:
                data["location"] = {"lat": float(lat), "lon": float(lon)}
            except ValueError:
                raise invalid("#/location", f"latitude {lat!r} / longitude {lon!r} are not numbers") from None
        return data

    def _records(self, meta_line: int) -> Iterator[Item]:
        pid = self._process_id()
        try:
            yield Record(PROCESS, self._process_record(pid), meta_line)
        except CivicfedError as err:
            yield Rejected(err, meta_line, "process", pid)
        try:
            total = {"amount": amount(self.meta.get("budget", ""), "#/amount/amount"), "currency": self._currency()}
            budget: dict[str, Any] = {"id": pid, "process": pid, "title": self._title(), "amount": total}
            if re.fullmatch(r"\d{4}", self.meta.get("instance", "")):
                budget["fiscal_year"] = int(self.meta["instance"])
            yield Record(BUDGET, budget, meta_line)
        except CivicfedError as err:
            yield Rejected(err, meta_line, "budget", pid)
        for project_id, p in self.projects.items():
            if p.record is not None:
                yield from self._counted(project_id, p, {**p.record, "process": pid, "budget": pid})

    def _counted(self, project_id: str, p: _Project, project: dict[str, Any]) -> Iterator[Item]:
        count = self.counts[project_id]
        if p.votes_column is not None and not _same(p.votes_column, count):
            detail = f"PROJECTS says {p.votes_column} votes, the VOTES section has {count} ballots for it"
            yield Rejected(invalid("#/vote_count", detail), p.line, "proposal", p.local_id)
        else:
            proposal = {k: project[k] for k in ("id", "process", "title", "themes", "location") if k in project}
            proposal |= {"estimated_cost": project["cost"], "vote_count": count}
            if "description" in project:
                proposal["body"] = project["description"]
            if project.get("selected"):
                proposal["status"] = "selected"
            yield Record(PROPOSAL, proposal, p.line)
            project["proposals"] = [p.local_id]
        yield Record(PROJECT, project, p.line)

    def _title(self) -> str:
        m = self.meta
        place = ", ".join(x for x in (m.get("unit"), m.get("subunit") or m.get("district")) if x)
        return m.get("description") or " ".join(x for x in (place, m.get("instance")) if x) or self.name

    def _process_record(self, pid: str) -> dict[str, Any]:
        data: dict[str, Any] = {"id": pid, "title": self._title(), "type": "participatory_budget"}
        if self.meta.get("comment"):
            data["description"] = self.meta["comment"]
        for key, name in (("date_begin", "start_date"), ("date_end", "end_date")):
            if self.meta.get(key):
                data[name] = _date(self.meta[key], f"#/{name}")
        return data


def _lines(stream: IO[bytes], name: str, digest: Any) -> Iterator[str]:
    """The file's lines decoded, each hashed as read; UTF-8 only (the format's encoding)."""
    number = 0
    while raw := stream.readline(MAX_LINE + 1):
        number += 1
        digest.update(raw)
        if len(raw) > MAX_LINE:
            raise MalformedBody(f"{name}, line {number}: longer than {MAX_LINE} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBody(f"{name}, line {number}: not UTF-8 text ({exc.reason})") from exc
        yield text.removeprefix("\ufeff") if number == 1 else text


def _rows(lines: Iterator[str], name: str) -> Iterator[tuple[int, list[str]]]:
    """Non-empty rows with the line they start on; broken quoting is a MalformedBody."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))
    yield from csv_rows(csv.reader(lines, delimiter=";", strict=True), name)


def read(
    data: bytes | IO[bytes], *, name: str = "pabulib", process: str | None = None, currency: str | None = None
) -> PabulibSource:
    """A Pabulib source over a body or an open binary file; ``process`` names the process (default:
    ``country_unit_instance_subunit`` from META, Pabulib's own file naming)."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    if process is not None and not LOCAL_ID_RE.fullmatch(process + "-x"):
        raise MalformedBody(f"option process: {process!r} is not an id")
    stem = slug(PurePath(name).stem)[:100]
    source_id = f"pabulib-{stem}" if stem and stem != "pabulib" else "pabulib"
    return PabulibSource(stream, name=name, id=source_id, process_id=process, currency=currency)


IMPORTER = Importer(
    "pabulib",
    "Pabulib .pb file (pabulib.org): a participatory-budget vote, its projects and counted ballots",
    read,
    media_types=MEDIA_TYPES,
    options={
        "process": "Id of the process to create (default: country_unit_instance_subunit from META).",
        "currency": "ISO 4217 code of the amounts when META has no currency (default: the country's).",
    },
    snapshot=True,
)
