"""Decidim open data: the ZIP an instance publishes at ``/open-data/download`` (one
``<host>-open-data-<entity>.csv`` per entity, with README.md and LICENSE.md), or one CSV of it.

Read header-driven, so that older (category/scope, ``supports``) and newer (taxonomies,
``votes``, ``likes``) layouts and each instance's union of columns all map; the entities are
read in dependency order (spaces, proposals, meetings, results, projects, debates, then
comments) whatever their order in the archive, each entry as a stream. What maps to what is in
:mod:`importers.decidim_map`; participants' ids and names go to the write-only ``author`` only.

A comment about a record whose file the source has but that is not in it is rejected here; one
about a record of a file the source does not have (a single comments CSV) is left to the write
path, which accepts it if the record is in the territory already.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from server.errors import MalformedBody
from server.ingest import Importer, Item

from . import decidim_map as m
from .decidim_rows import Context
from .tabular import Row, read_csv, read_lines, text_lines

#: An export has a dozen entries; a few hundred is not one (and each costs a read).
MAX_ENTRIES = 200
#: Largest entry read, uncompressed (bytes): a zip bomb is refused before it is inflated.
MAX_ENTRY_SIZE = 2 * 1024**3
#: Uploads that cannot seek (standard input) are kept in memory up to this size, then on disk.
SPOOL = 32 * 1024 * 1024

Mapper = Callable[[Row, Context], Iterator[Item]]


@dataclass(frozen=True)
class Entity:
    """One kind of file of the export: when it is read, how its rows map, what it must have."""

    rank: int
    mapper: Mapper
    #: The name under which its records' ids are kept (Context.imported), if anything refers to them.
    imports: str | None = None
    required: tuple[str, ...] = ("id",)


ENTITIES: dict[str, Entity] = {
    "participatory_processes": Entity(0, m.space("processes")),
    "assemblies": Entity(0, m.space("assemblies")),
    "conferences": Entity(0, m.space("conferences")),
    "initiatives": Entity(0, m.space("initiatives"), required=("url",)),
    "budgets": Entity(1, m.budget, "budget"),
    "proposals": Entity(2, m.proposal, "proposal"),
    "meetings": Entity(3, m.meeting, "meeting"),
    "results": Entity(4, m.result, "result"),
    "projects": Entity(5, m.project, "project"),
    "debates": Entity(6, m.debate, "debate"),
}
#: Every ``<entity>_comments`` file: proposal_comments, meeting_comments, result_comments…
COMMENTS = Entity(9, m.comment, required=("id", "body", "commentable_id", "commentable_type"))
_ENTITY_NAME = re.compile(r"(?:^|-)open-data-([a-z_]+)")
_HOST_ENTITY = re.compile(r"^([A-Za-z0-9.-]+?)-open-data-([a-z_]+)")


ENTITY_NAMES = ", ".join([*ENTITIES, "<entity>_comments"])


def entity_of(key: str) -> Entity | None:
    return ENTITIES.get(key) or (COMMENTS if key.endswith("_comments") else None)


def entity_named(file_name: str) -> Entity | None:
    """The entity of a file of the export, from its name (``…-open-data-proposals.csv``)."""
    base = PurePosixPath(file_name.replace("\\", "/")).name
    found = _ENTITY_NAME.search(base)
    return entity_of(found.group(1) if found else base.split(".", 1)[0])


@dataclass
class DecidimSource:
    """A Decidim export being read: a ZIP of entity files, or one of them."""

    file: IO[bytes]
    name: str
    context: Context
    #: The entity of a single CSV (None: from its name; a ZIP names each entry).
    entity: str | None = None
    archive: zipfile.ZipFile | None = None
    id: str = "decidim"
    location: str = ""
    sha256: str | None = None

    def items(self) -> Iterator[Item]:
        if self.archive is not None:
            yield from self._archive_items(self.archive)
        else:
            yield from self._csv_items()
        self.sha256 = _digest(self.file)

    def _csv_items(self) -> Iterator[Item]:
        entity = entity_of(self.entity) if self.entity else entity_named(self.name)
        if entity is None:
            raise MalformedBody(f"{self.name}: which Decidim entity is it? Pass entity= (one of {ENTITY_NAMES})")
        self.file.seek(0)
        yield from self._rows(entity, read_lines(self.file), self.name)

    def _archive_items(self, archive: zipfile.ZipFile) -> Iterator[Item]:
        entries = [
            (e, info) for info in archive.infolist() if _export_file(info) and (e := entity_named(info.filename))
        ]
        entries.sort(key=lambda pair: pair[0].rank)  # stable: the archive's order within a rank
        for entity, info in entries:
            label = f"{self.name}: {info.filename}"
            yield from self._rows(entity, _entry_lines(archive, info, label), label)
        archive.close()

    def _rows(self, entity: Entity, lines: Iterable[bytes], label: str) -> Iterator[Item]:
        if entity.imports:
            self.context.imported.setdefault(entity.imports, set())
        for row in read_csv(text_lines(lines, label), label, required=entity.required):
            yield from entity.mapper(row, self.context)


def _entry_lines(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Iterator[bytes]:
    """The lines of an entry, inflated as they are read; a corrupt one names itself."""
    try:
        with archive.open(info) as raw:
            yield from read_lines(io.BufferedReader(raw, 1 << 16))  # type: ignore[arg-type]
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise MalformedBody(f"{label}: the entry cannot be read ({exc}): truncated or corrupt archive?") from exc


def _export_file(info: zipfile.ZipInfo) -> bool:
    """An entry that may be a file of the export: a CSV, not a folder nor the ``__MACOSX/._…``
    metadata an archiver on macOS adds next to each file (binary, under the same name)."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    return (
        not info.is_dir()
        and path.suffix.lower() == ".csv"
        and "__MACOSX" not in path.parts
        and not path.name.startswith("._")
    )


def _check_archive(archive: zipfile.ZipFile, name: str, max_entry_size: int) -> None:
    """Refuse an archive that no Decidim instance writes: too many entries, paths that leave it,
    entries too large once inflated."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise MalformedBody(f"{name}: {len(infos)} entries, more than the {MAX_ENTRIES} of any Decidim export")
    for info in infos:
        entry = info.filename
        parts = entry.replace("\\", "/").split("/")
        if entry.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", entry):
            raise MalformedBody(f"{name}: entry {entry!r} names a path outside the archive")
        if info.file_size > max_entry_size:
            raise MalformedBody(
                f"{name}: entry {entry!r} is {info.file_size} bytes uncompressed, more than the "
                f"{max_entry_size} allowed (option max_entry_size)"
            )


def _seekable(data: bytes | IO[bytes]) -> IO[bytes]:
    if isinstance(data, bytes | bytearray):
        return io.BytesIO(data)
    if data.seekable():
        return data
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 - lives as long as the source
    shutil.copyfileobj(data, spool, 1 << 20)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _digest(file: IO[bytes]) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _source_id(name: str, archive: zipfile.ZipFile | None) -> str:
    """The instance's host as the export names its files (``decidim-www.decidim.barcelona``, and
    the entity for a single file), so that a run of the same export is a run of the same source
    whatever the file is called; else the file's name."""
    names = [i.filename for i in archive.infolist()] if archive else [name]
    found = next((m for n in names if (m := _HOST_ENTITY.search(PurePosixPath(n).name))), None)
    stem = (found.group(1) if archive else "-".join(found.groups())) if found else PurePosixPath(name).name
    slug = re.sub(r"[^A-Za-z0-9._~-]+", "-", re.sub(r"\.(zip|csv)$", "", stem, flags=re.IGNORECASE)).strip("-._~")
    return f"decidim-{slug}"[:128] if slug else "decidim"


def read(
    data: bytes | IO[bytes],
    *,
    name: str = "Decidim open data",
    entity: str | None = None,
    languages: str = "fr,en",
    max_entry_size: int | str = MAX_ENTRY_SIZE,
    currency: str = "EUR",
    spaces: str = "synthesise",
) -> DecidimSource:
    """A Decidim open-data ZIP, or one CSV of it (its entity from its name or ``entity``)."""
    if spaces not in ("synthesise", "existing"):
        raise MalformedBody(f"spaces={spaces!r}: use synthesise or existing")
    if entity and entity_of(entity) is None:
        raise MalformedBody(f"entity={entity!r}: not a Decidim entity this reads (one of {ENTITY_NAMES})")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedBody(f"currency={currency!r}: use an ISO 4217 code such as EUR")
    if not str(max_entry_size).isdecimal():
        raise MalformedBody(f"max_entry_size={max_entry_size!r}: use a number of bytes")
    file = _seekable(data)
    head = file.read(4)
    file.seek(0)
    context = Context(
        languages=tuple(lang.strip() for lang in languages.split(",") if lang.strip()),
        currency=currency,
        synthesise=spaces == "synthesise",
    )
    source = DecidimSource(file, name, context, entity=entity or None, location=name)
    # A ZIP by its signature (an upload has no name), or by its name (a truncated one may have none).
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")) or name.lower().endswith(".zip"):
        try:
            source.archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise MalformedBody(f"{name} is not a readable ZIP archive ({exc}): truncated or corrupt?") from exc
        _check_archive(source.archive, name, int(max_entry_size))
    source.id = _source_id(name, source.archive)
    return source


IMPORTER = Importer(
    "decidim",
    "Decidim open data: the ZIP of /open-data/download, or one <host>-open-data-<entity>.csv of it",
    read,
    # An export is the instance's whole open data, read whole each time (a single CSV, all of one entity).
    snapshot=True,
    options={
        "entity": "For a single CSV not named <host>-open-data-<entity>.csv: proposals, meetings, results, "
        "projects, debates, participatory_processes, assemblies, proposal_comments…",
        "languages": "Languages to take translated texts in, best first (default fr,en; else the first present).",
        "max_entry_size": f"Largest ZIP entry read, uncompressed, in bytes (default {MAX_ENTRY_SIZE}).",
        "currency": "ISO 4217 code of the instance's amounts (default EUR).",
        "spaces": "synthesise (default): write a process for each participatory space records are in, from its "
        "URL; existing: the spaces are in the territory already (imported from their own file).",
    },
)
