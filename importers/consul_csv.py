"""CONSUL Democracy tables: one CSV file of proposals, debates or comments, its layout found by
its header (``LAYOUTS``: a small table of column names per known layout).

Known layouts:

- CONSUL's own column names, as Decide Madrid's open data publish them (datos.madrid.es,
  dataset 300114-0-madrid-decide: Propuestas, Debates, Comentarios): ``id, title, summary,
  description, cached_votes_up, comments_count, created_at`` (``31/12/2017 09``, hour
  precision), ``retired_at``; debates add ``cached_votes_down``; comments have ``body`` and
  ``commentable_type``/``commentable_id`` or ``debate_id``/``proposal_id``.
- The Decide Madrid research extract (``id, url, code, title, userId, date, summary, text,
  numComments, numSupports`` and comments ``id, proposalId, userId, date, text``).
- Proposals scraped from CONSUL pages (``URL, Title, Proposed for Project, Description,
  Author, Comments, Supporters, City``): one file may hold several instances; the option
  ``city`` chooses one, and each "project" of the instance becomes a process of type ``other``.

Records are named and mapped as by the GraphQL importer (:mod:`importers.consul`), so that both
sources of one instance write the same records. Geozone, tag-table and vote-table files are
not read: geozones have no field here, and tags and votes need a join with another file.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

from server.errors import CivicfedError, MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Record, Rejected
from server.model.kinds import COMMENT, PROCESS, PROPOSAL

from .consul_map import Instance, body_of, count, instance_for, moment, reply_to, slug, themes_of
from .tabular import Row, decode, read_csv, sniff_delimiter


@dataclass(frozen=True)
class Layout:
    """A known header: the columns that identify it, and the column(s) of each field."""

    name: str
    section: str  # proposals, debates or comments
    signature: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    #: Rows of several instances: each is named by the host of its URL.
    instance_from_url: bool = False


def _layout(name: str, section: str, signature: str, spec: str, instance_from_url: bool = False) -> Layout:
    """A layout from ``field=column|other column; …`` (the first non-empty column of a row wins)."""
    pairs = (part.split("=", 1) for part in spec.split(";"))
    columns = {f.strip(): tuple(c.strip() for c in cs.split("|")) for f, cs in pairs}
    return Layout(name, section, tuple(signature.split(",")), columns, instance_from_url)


#: Checked in this order; column names are compared in lower case.
LAYOUTS = (
    _layout(
        "consul-scraped",
        "proposals",
        "url,title,supporters",
        "url=url; title=title; description=description; votes=supporters; comments=comments; author=author; "
        "project=proposed for project; city=city",
        instance_from_url=True,
    ),
    _layout(
        "madrid-research-proposals",
        "proposals",
        "id,title,numsupports",
        "id=id; url=url; title=title; summary=summary; description=text; votes=numsupports; comments=numcomments; "
        "created=date; author=userid",
    ),
    _layout(
        "madrid-research-comments",
        "comments",
        "id,proposalid,text",
        "id=id; body=text; created=date; author=userid; proposal=proposalid",
    ),
    _layout(
        "consul-debates",
        "debates",
        "id,title,cached_votes_down",
        "id=id; title=title; description=description; votes=cached_votes_up; comments=comments_count; "
        "created=created_at; author=author_name|author_id; tags=tag_list",
    ),
    _layout(
        "consul-proposals",
        "proposals",
        "id,title",
        "id=id; title=title; summary=summary; description=description; votes=cached_votes_up; "
        "comments=comments_count; created=created_at; retired=retired_at; author=author_name|author_id; tags=tag_list",
    ),
    _layout(
        "consul-comments",
        "comments",
        "id,body",
        "id=id; body=body; created=created_at; author=author_name|user_id; commentable_type=commentable_type; "
        "commentable_id=commentable_id; debate=debate_id; proposal=proposal_id; parent=ancestry|parent_id",
    ),
)

_CONTRIBUTION = re.compile(r"/(proposals|debates)/(\d+)")
_COMMENTABLE = {"proposal": "proposal", "debate": "debate"}


def layout_of(header: list[str]) -> Layout | None:
    names = {h.lower() for h in header}
    return next((lay for lay in LAYOUTS if set(lay.signature) <= names), None)


@dataclass
class ConsulCsvSource:
    """One CONSUL CSV file."""

    data: bytes
    instance: Instance
    city: str | None = None
    #: The prefix option, which wins over the host of a row's URL.
    prefix: str | None = None
    id: str = "consul-csv"
    name: str = "CONSUL CSV"
    sha256: str | None = None
    location: str | None = None
    layout: Layout | None = None
    _processes: set[str] = field(default_factory=set, repr=False)

    def items(self) -> Iterator[Item]:
        text = decode(self.data, self.name)
        first = text.split("\n", 1)[0].strip("\r\ufeff")
        header = [h.strip() for h in next(csv.reader([first], delimiter=sniff_delimiter(first)))]
        self.layout = layout_of(header)
        if self.layout is None:
            known = "; ".join(f"{lay.name} ({', '.join(lay.signature)})" for lay in LAYOUTS)
            raise MalformedBody(
                f"{self.name}: no known CONSUL layout for the columns {', '.join(header)} (known: {known})"
            )
        # Lower-case field name -> the file's own spelling of the column.
        spelled = {h.lower(): h for h in header}
        columns = {f: tuple(spelled[c] for c in cs if c in spelled) for f, cs in self.layout.columns.items()}
        rows = [_Cells(row, columns) for row in read_csv(text, self.name)]
        if self.layout.section == "comments":
            known = {r.get("id") for r in rows}
            yield from (self._comment(r, known) for r in rows)
        else:
            yield from self._contributions(rows)
        self.sha256, self.location = hashlib.sha256(self.data).hexdigest(), self.name

    def _contributions(self, rows: list[_Cells]) -> Iterator[Item]:
        section = self.layout.section  # type: ignore[union-attr]
        cities = sorted({r.get("city") or "" for r in rows} - {""})
        if self.city is None and len(cities) > 1:
            raise ValidationFailed(
                f"{self.name} holds the proposals of {len(cities)} CONSUL instances ({', '.join(cities)}): "
                "choose one with the option city=NAME",
                errors=[{"pointer": "#/city", "detail": "One of: " + ", ".join(cities) + "."}],
            )
        if self.city is not None and not any(_same_city(r, self.city) for r in rows):
            raise ValidationFailed(
                f"{self.name} holds no proposal of {self.city!r} (cities: {', '.join(cities) or 'none named'})",
                errors=[{"pointer": "#/city", "detail": "Not in the file."}],
            )
        for row in rows:
            if self.city is not None and not _same_city(row, self.city):
                continue  # another instance of the file, left out as the option asks
            local_id = None
            try:
                instance, section_of_row, platform_id = self._identity(row, section)
                local_id = instance.local_id(_kind(section_of_row), platform_id)
                process = self._process(instance, section_of_row, row.get("project"))
                if process:
                    yield Record(PROCESS, process, row.line)
                fields = {
                    "title": row.get("title"),
                    "body": body_of(row.get("summary"), row.get("description")),
                    "themes": themes_of([t.strip() for t in (row.get("tags") or "").split(",") if t.strip()]),
                    "status": "withdrawn" if row.get("retired") else None,
                    "vote_count": count(row.get("votes"), "#/vote_count"),
                    "comment_count": count(row.get("comments"), "#/comment_count"),
                    "created": moment(row.get("created"), instance.tz, "#/created"),
                    "author": row.get("author"),
                }
                project_id = _project_id(instance, row.get("project"))
                data = instance.contribution(section_of_row, platform_id, fields, project_id)
                if row.get("url"):
                    data["url"] = row.get("url")
                yield Record(PROPOSAL, data, row.line)
            except CivicfedError as err:
                yield Rejected(err, row.line, PROPOSAL.name, local_id)

    def _identity(self, row: _Cells, section: str) -> tuple[Instance, str, str]:
        """The instance of a row (its URL's host, when it has one), its section and CONSUL id."""
        url = row.get("url")
        parts = _url(url)
        if url and parts is None:
            raise ValidationFailed(
                f"the URL {url!r} cannot be read", errors=[{"pointer": "#/url", "detail": "Not a URL."}]
            )
        match = _CONTRIBUTION.search(parts.path) if parts else None
        instance = self.instance
        if parts and self.layout and self.layout.instance_from_url and instance.base is None:
            instance = replace(instance, prefix=self.prefix or parts.hostname, base=f"{parts.scheme}://{parts.netloc}")
        platform_id = row.get("id") or (match.group(2) if match else None)
        if not platform_id or not re.fullmatch(r"[0-9A-Za-z._~-]+", platform_id):
            raise ValidationFailed(
                f"no CONSUL id in the row ({url or 'no id column'})",
                errors=[{"pointer": "#/id", "detail": "No id column, and no /proposals/N or /debates/N in the URL."}],
            )
        return instance, (match.group(1) if match and not row.get("id") else section), platform_id

    def _process(self, instance: Instance, section: str, project: str | None) -> dict[str, Any] | None:
        """The process of a row, the first time it is needed."""
        if project:
            data: dict[str, Any] = {"id": _project_id(instance, project), "title": project, "type": "other"}
            if instance.language:
                data["language"] = instance.language
        else:
            data = instance.process(section)
        if data["id"] in self._processes:
            return None
        self._processes.add(data["id"])
        return data

    def _comment(self, row: _Cells, known: set[str | None]) -> Item:
        platform_id = row.get("id")
        local_id = self.instance.local_id("comment", platform_id) if platform_id else None
        try:
            if not platform_id:
                raise ValidationFailed("a comment without id", errors=[{"pointer": "#/id", "detail": "Missing."}])
            fields = {
                "body": body_of(row.get("body")),
                "created": moment(row.get("created"), self.instance.tz, "#/created"),
                "author": row.get("author"),
                "reply_to": reply_to(self.instance, row.get("parent"), {k for k in known if k}),
            }
            return Record(COMMENT, self.instance.comment(platform_id, self._about(row), fields), row.line)
        except CivicfedError as err:
            return Rejected(err, row.line, COMMENT.name, local_id)

    def _about(self, row: _Cells) -> str:
        """The proposal (or debate) a comment is on."""
        kind = (row.get("commentable_type") or "").lower()
        target = row.get("commentable_id")
        if not kind:
            kind, target = ("debate", row.get("debate")) if row.get("debate") else ("proposal", row.get("proposal"))
        if kind not in _COMMENTABLE or not target:
            what = row.get("commentable_type") or "nothing"
            raise ValidationFailed(
                f"a comment on {what}: only comments on proposals and debates are imported",
                errors=[{"pointer": "#/about", "detail": f"Not a proposal or a debate: {what}."}],
            )
        return self.instance.local_id(_COMMENTABLE[kind], target)


@dataclass(frozen=True)
class _Cells:
    """A row read through its layout: ``get(field)`` is the first non-empty column of the field."""

    row: Row
    columns: dict[str, tuple[str, ...]]

    @property
    def line(self) -> int:
        return self.row.line

    def get(self, name: str) -> str | None:
        return self.row.get(*self.columns.get(name, ()))


def _kind(section: str) -> str:
    return "debate" if section == "debates" else "proposal"


def _project_id(instance: Instance, project: str | None) -> str | None:
    return f"{instance.prefix}-project-{slug(project)}" if project else None


def _url(url: str | None) -> SplitResult | None:
    """A URL's parts; None when there is none, or it cannot be split (``http://[::1``)."""
    try:
        return urlsplit(url) if url else None
    except ValueError:
        return None


def _same_city(row: _Cells, city: str) -> bool:
    wanted = city.strip().lower()
    parts = _url(row.get("url"))
    host = (parts.hostname or "") if parts else ""
    return (row.get("city") or "").lower() == wanted or host == wanted


def read(
    data: bytes | IO[bytes],
    *,
    name: str = "CONSUL CSV",
    instance: str | None = None,
    prefix: str | None = None,
    city: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
) -> ConsulCsvSource:
    """A CONSUL CSV file; ``instance`` is the platform's base URL (its host names the records)."""
    body = data if isinstance(data, bytes) else data.read()
    file_slug = slug(PurePath(name).name, 100)
    return ConsulCsvSource(
        body,
        instance_for(instance, prefix, language, timezone),
        city or None,
        prefix or None,
        id=f"consul-csv-{file_slug}"[:128],
        name=name,
    )


IMPORTER = Importer(
    "consul-csv",
    "CONSUL Democracy CSV (Decide Madrid open data, research extracts, scraped pages): proposals, debates, comments",
    read,
    options={
        "instance": "Base URL of the CONSUL instance (names the records and their pages).",
        "prefix": "Prefix of the local ids (default: the instance's host name, else consul).",
        "city": "The instance to read when the file holds several (City column or host name).",
        "language": "Language tag of the texts.",
        "timezone": "IANA time zone of times given without offset (default UTC).",
    },
    snapshot=True,
)
