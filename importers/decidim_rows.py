"""Reading a row of Decidim's open data: the state shared while a source is read, translated
texts, the author, places, amounts, links, and the participatory space a record is in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import ValidationFailed
from server.ingest import Item, Record, Rejected
from server.model.kinds import KINDS

from .decidim_values import amount, listed, moment, number, space_of
from .tabular import Row, html_text, localized


@dataclass
class Context:
    """What the mappers share while one source is read."""

    languages: tuple[str, ...]
    currency: str = "EUR"
    #: Write a process for each participatory space records are in (else they are in the store).
    synthesise: bool = True
    #: Process ids written (or, without ``synthesise``, named) so far.
    processes: set[str] = field(default_factory=set)
    #: For each entity whose file this source has (``proposal``, ``result``…), the local ids of
    #: its records: comments about anything else of it are rejected, links to it kept.
    imported: dict[str, set[str]] = field(default_factory=dict)


#: Identity columns, best first: a user id is stable, a display name is what old exports have.
_AUTHOR = ("author/id", "user/id", "author/nickname", "user/nickname", "author/name", "user/name")


def invalid(row: Row, kind: str, local: str | None, pointer: str, detail: str) -> Rejected:
    return Rejected(ValidationFailed(detail, errors=[{"pointer": pointer, "detail": detail}]), row.line, kind, local)


def no_id(row: Row, kind: str) -> Rejected:
    return invalid(row, kind, None, "#/id", f"no usable id (column id: {row.get('id')!r})")


def text(row: Row, name: str, languages: Sequence[str]) -> tuple[str | None, str | None]:
    """A translatable column in the first language wanted, and that language."""
    value, language = localized(row, name, languages)
    if language and "/" in language:  # title/machine_translations/ca: still Catalan
        language = language.rsplit("/", 1)[-1]
    return value, language


def texts(row: Row, ctx: Context, title: str, *others: str) -> tuple[str | None, str | None, list[str | None]]:
    """The title, its language, and the other texts in that language first (HTML made text)."""
    value, language = text(row, title, ctx.languages)
    wanted = (language, *ctx.languages) if language else ctx.languages
    return value, language, [html_text(text(row, other, wanted)[0]) for other in others]


def author(row: Row) -> str | None:
    """The platform's identity of the author, for the write-only ``author`` (first of several)."""
    for column in _AUTHOR:
        value = row.get(column)
        if value:
            return (listed(value) or [value])[0] if column.endswith("/id") else value
    return None


def point(row: Row) -> dict[str, Any] | None:
    lat, lon = number(row.get("latitude")), number(row.get("longitude"))
    return {"lat": lat, "lon": lon} if lat is not None and lon is not None else None


def money(value: str | None, ctx: Context) -> dict[str, Any] | None:
    figure = amount(value)
    return None if figure is None else {"amount": figure, "currency": ctx.currency}


def links(ctx: Context, name: str, ids: list[str]) -> list[str]:
    """Links to records of this source only: a link to one the export does not have (or that a
    single file cannot show) would make the write path reject the record that has it."""
    known = ctx.imported.get(name, set())
    return [i for i in dict.fromkeys(ids) if i in known]


def space_in(row: Row, ctx: Context) -> tuple[list[Item], str | None]:
    """The process of the participatory space the row is in, written first if it is new."""
    for column in ("participatory_space/url", "url"):
        url = row.get(column)
        found = space_of(url)
        if found and url:
            break
    else:
        return [], None
    process, kind = found
    if process in ctx.processes or not ctx.synthesise:
        return [], process
    ctx.processes.add(process)
    # The open data names a space by its URL only: its slug stands for its title.
    page = url[: url.index(f"/{kind}/") + len(kind) + 2] + process.split(".", 1)[-1]
    data = {"id": process, "title": process.split(".", 1)[-1], "type": space_type(kind), "url": page}
    return [Record(KINDS["process"], data, row.line, if_absent=True)], process


def space_type(kind: str) -> str:
    return "citizen_initiative" if kind == "initiatives" else "other"


def dates(row: Row) -> dict[str, Any]:
    return {"created": moment(row.get("created_at", "published_at")), "modified": moment(row.get("updated_at"))}
