"""What every table-shaped source needs: CSV read header-driven with its delimiter and encoding
found, rows numbered as a spreadsheet shows them, HTML bodies made text, multi-locale columns
(``title/ca``, ``title/es``…) picked by language.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from server.errors import MalformedBody

#: Longest field read (characters): a proposal body is a few kilobytes.
MAX_FIELD = 4 * 1024 * 1024
#: Longest line read from a stream (bytes), a few fields of MAX_FIELD: a longer one is refused
#: before it is held whole (a line of gigabytes with no newline would take the memory).
MAX_LINE = 4 * MAX_FIELD
DELIMITERS = ";,\t|"


@dataclass(frozen=True)
class Row:
    """One data row: its line in the file (the header is line 1) and its cells by column name."""

    line: int
    cells: dict[str, str]

    def get(self, *names: str) -> str | None:
        """The first non-empty cell among these columns (stripped), or None."""
        for name in names:
            value = self.cells.get(name)
            if value is not None and value.strip():
                return value.strip()
        return None


def decode(data: bytes, name: str = "the file") -> str:
    """UTF-8 (with or without BOM), else UTF-16 with a BOM, else Windows-1252 only when the bytes
    are not UTF-8 at all (old exports from spreadsheets)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise MalformedBody(f"{name}: not UTF-16 text although it starts as such ({exc.reason})") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        nul = data.find(b"\x00", 0, 4096)
        if nul >= 0:
            raise MalformedBody(f"{name} is not text (binary data at byte {nul})") from exc
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            line = exc.object[: exc.start].count(b"\n") + 1
            raise MalformedBody(f"{name}, line {line}: not UTF-8 nor Windows-1252 text ({exc.reason})") from exc


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: the candidate that splits it most (outside quotes)."""
    counts = {d: len(next(csv.reader([header], delimiter=d))) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def read_csv(
    data: bytes | str | IO[bytes] | Iterable[str],
    name: str = "the file",
    required: Sequence[str] = (),
    delimiter: str | None = None,
) -> Iterator[Row]:
    """The rows of a CSV file by column name. ``data`` is the file's bytes or a binary stream (read
    whole: the encoding is guessed from all of it), its text, or a text stream or other iterable of
    lines (read line by line, never whole, so that a large file streams: see :func:`text_lines`).
    Raises MalformedBody naming the file and line for broken quoting, a text stream that is not
    UTF-8, a row longer than the header, or missing ``required`` columns."""
    lines, first = _lines(data, name)
    if not first.strip():
        raise MalformedBody(f"{name} is empty or has no header line")
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(lines, delimiter=delimiter or sniff_delimiter(first), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise MalformedBody(f"{name}, line 1: {exc}") from exc
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise MalformedBody(f"{name}, line 1: the column(s) {', '.join(map(repr, twice))} appear more than once")
    missing = [c for c in required if c not in header]
    if missing:
        raise MalformedBody(f"{name}: no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})")
    for start, cells in csv_rows(reader, name):
        if len(cells) > len(header):
            raise MalformedBody(f"{name}, line {start}: {len(cells)} fields for {len(header)} columns")
        yield Row(start, dict(zip(header, cells, strict=False)))


def csv_rows(reader: Any, name: str) -> Iterator[tuple[int, list[str]]]:
    """The non-empty rows of a ``csv.reader`` with the line each starts on; broken quoting or
    undecodable text is a MalformedBody naming the file and line."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise MalformedBody(f"{name}, line {start}: {exc} (broken quoting?)") from exc
        except UnicodeDecodeError as exc:  # a decoder reading ahead: the line is where it was
            raise MalformedBody(f"{name}, near line {start}: not UTF-8 text ({exc.reason})") from exc
        if any(c.strip() for c in cells):
            yield start, cells


def _lines(data: bytes | str | IO[bytes] | Iterable[str], name: str) -> tuple[Iterator[str], str]:
    """The lines for the CSV reader, and the header line (to find the delimiter)."""
    if isinstance(data, bytes | str):
        text = decode(data, name) if isinstance(data, bytes) else data.removeprefix("\ufeff")
        return iter(io.StringIO(text, newline="")), text.split("\n", 1)[0]
    lines = iter(data)
    try:
        head = next(lines, "")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"{name}, line 1: not UTF-8 text ({exc.reason})") from exc
    if isinstance(head, bytes):  # a binary stream: read whole, as its bytes would be
        return _lines(head + b"".join(lines), name)  # type: ignore[arg-type]
    head = head.removeprefix("\ufeff")
    return itertools.chain([head], lines), head


def read_lines(stream: IO[bytes], max_line: int = MAX_LINE) -> Iterator[bytes]:
    """The lines of a binary stream, each read ``max_line + 1`` bytes at most: iterating the stream
    would hold a line whole however long. :func:`text_lines` refuses the one that is too long."""
    while line := stream.readline(max_line + 1):
        yield line


def text_lines(stream: Iterable[bytes], name: str = "the file", max_line: int = MAX_LINE) -> Iterator[str]:
    """The lines of a UTF-8 byte stream (an open file, a ZIP entry) as text, one at a time and a
    BOM dropped, for :func:`read_csv`: the file is never held whole, and a byte that is not UTF-8
    is reported on its own line (a TextIOWrapper decodes ahead by blocks and cannot say where).
    A line longer than ``max_line`` bytes is a MalformedBody (read a stream with :func:`read_lines`,
    so that it is refused before it is held whole)."""
    for number, line in enumerate(stream, start=1):
        if len(line) > max_line:
            raise MalformedBody(f"{name}, line {number}: longer than {max_line} bytes")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBody(
                f"{name}, line {number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)"
            ) from exc
        yield text.removeprefix("\ufeff") if number == 1 else text


# `[^<>]`, not `[^>]`: a tag never holds `<`, and a text of many `<` without `>` is then read in
# linear time, not quadratic (a 4 MB field of them would hold the importer for hours).
_TAG = re.compile(r"<[^<>]*>")
_BLOCK = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|blockquote)\b[^<>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\n\s*\n+")


def html_text(value: str | None) -> str | None:
    """An HTML body as plain text: blocks become lines, tags go, entities are decoded."""
    if value is None or ("<" not in value and "&" not in value):
        return value
    text = _BLOCK.sub("\n", value)
    text = html.unescape(_TAG.sub("", text))
    text = _SPACES.sub(" ", text)
    return _LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


def localized(row: Row, field: str, languages: Sequence[str]) -> tuple[str | None, str | None]:
    """A multi-locale column (``title/ca``, ``title/es``, or ``title`` alone) in the first of
    ``languages`` present, else any: its text and its language code."""
    for lang in languages:
        value = row.get(f"{field}/{lang}", f"{field}.{lang}", f"{field}_{lang}")
        if value:
            return value, lang
    for column, value in row.cells.items():
        if column.startswith((f"{field}/", f"{field}.")) and value.strip():
            return value.strip(), column.split("/", 1)[-1].split(".", 1)[-1]
    return row.get(field), None
