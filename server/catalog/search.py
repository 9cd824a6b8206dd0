"""CKAN's ``package_search`` over the catalog: the subset of Solr's query syntax that real CKAN
clients send in ``q`` and ``fq`` (ckanext-harvest, udata, ckanapi), sorting and facets.

Syntax: ``field:value``, ``field:"a phrase"``, ``field:(a OR b)``, ``field:[X TO Y]`` (``*`` and
``NOW``, ``NOW-7DAYS``… in date ranges), ``-`` / ``+`` / ``NOT`` before a clause, ``AND`` / ``OR``
between clauses (clauses side by side must all hold, as CKAN's Solr schema says), parentheses,
``*:*``, and bare words (searched in the dataset's text). Anything else is a
:class:`QueryError` (CKAN's "Search Query Error").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: A dataset as a search sees it: field → its values (strings, or datetimes for dates).
Doc = dict[str, list[Any]]
Predicate = Callable[[Doc], bool]

DATE_FIELDS = ("metadata_modified", "metadata_created")
SORT_FIELDS = {
    "id": "id",
    "name": "name",
    "title_string": "title",
    "title": "title",
    "metadata_modified": "metadata_modified",
    "metadata_created": "metadata_created",
    "score": None,  # no relevance ranking: name order (stable)
}


class QueryError(ValueError):
    """A query CKAN's Solr would refuse."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lparen>\() | (?P<rparen>\)) |
      (?P<range>[\[{][^\]}]*[\]}]) |
      (?P<phrase>"(?:[^"\\]|\\.)*") |
      (?P<word>[^\s()"\[\]{}]+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"cannot read the query at {text[pos : pos + 20]!r}")
        token = m.group(m.lastgroup or "word")
        # field:"phrase", field:(…) and field:[…] arrive as two tokens: glue the field back on.
        if out and out[-1].endswith(":") and m.lastgroup in ("phrase", "range"):
            out[-1] += token
        else:
            out.append(token)
        pos = m.end()
    return out


def _now(expr: str) -> dt.datetime:
    m = re.fullmatch(r"NOW(?:([+-])(\d+)(DAYS?|HOURS?|MINUTES?|MONTHS?|YEARS?))?(?:/DAY)?", expr)
    if m is None:
        raise QueryError(f"not a date: {expr!r}")
    now = dt.datetime.now(dt.UTC)
    if not m.group(1):
        return now
    n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
    unit = m.group(3).rstrip("S")
    days = {"DAY": 1, "HOUR": 1 / 24, "MINUTE": 1 / 1440, "MONTH": 30, "YEAR": 365}[unit]
    return now + dt.timedelta(days=n * days)


def _date(text: str) -> dt.datetime | None:
    if text == "*":
        return None
    if text.startswith("NOW"):
        return _now(text)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"not a date: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value.replace("\\", "")


def _match_value(field: str, value: str) -> Predicate:
    value = _unquote(value)
    if value.startswith(("[", "{")):
        m = re.fullmatch(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])", value)
        if m is None:
            raise QueryError(f"not a range: {value!r}")
        low_incl, low, high, high_incl = m.group(1) == "[", m.group(2), m.group(3), m.group(4) == "]"
        if field in DATE_FIELDS:
            lo, hi = _date(low), _date(high)
        else:
            lo, hi = (None if low == "*" else low), (None if high == "*" else high)

        def in_range(doc: Doc) -> bool:
            for v in doc.get(field, ()):
                if lo is not None and (v < lo or (v == lo and not low_incl)):
                    continue
                if hi is not None and (v > hi or (v == hi and not high_incl)):
                    continue
                return True
            return False

        return in_range
    if value == "*":
        return lambda doc: bool(doc.get(field))
    if "*" in value:
        pattern = re.compile(".*".join(re.escape(p) for p in value.lower().split("*")) + r"\Z")
        return lambda doc: any(pattern.match(str(v).lower()) for v in doc.get(field, ()))
    if field == "text":
        words = value.lower().split()
        return lambda doc: all(w in doc["text"][0] for w in words)
    wanted = value.lower()
    folded = "~" + field  # the field's values lower-cased, as a set (see ``fold``)

    def equal(doc: Doc) -> bool:
        return wanted in doc.get(folded, ())

    # What an index can answer (see ``Postings``): a query of one such term is looked up.
    equal.equality = (field, wanted)  # type: ignore[attr-defined]
    return equal


class _Parser:
    def __init__(self, tokens: list[str], fields: set[str]) -> None:
        self.tokens, self.pos, self.fields = tokens, 0, fields

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        pred = self.expression()
        if self.peek() is not None:
            raise QueryError(f"unexpected {self.peek()!r}")
        return pred

    def expression(self) -> Predicate:
        """Clauses side by side, all required unless OR joins them."""
        alternatives: list[list[Predicate]] = [[]]
        while (token := self.peek()) is not None and token != ")":
            if token == "OR":
                self.take()
                alternatives.append([])
                continue
            if token == "AND":
                self.take()
                continue
            alternatives[-1].append(self.clause())
        groups = [g for g in alternatives if g]
        if not groups:
            raise QueryError("empty query")
        if len(groups) == 1 and len(groups[0]) == 1:
            return groups[0][0]  # one clause: no wrapper to call per dataset
        return lambda doc: any(all(p(doc) for p in g) for g in groups)

    def clause(self) -> Predicate:
        token = self.take()
        negate = False
        if token == "NOT":
            negate, token = True, self.take()
        elif token.startswith("-") and len(token) > 1:
            negate, token = True, token[1:]
        elif token.startswith("+") and len(token) > 1:
            token = token[1:]
        if token == "(":
            inner = self.expression()
            if self.peek() != ")":
                raise QueryError("a parenthesis is not closed")
            self.take()
            pred = inner
        else:
            pred = self.term(token)
        return (lambda doc: not pred(doc)) if negate else pred

    def term(self, token: str) -> Predicate:
        if token in ("*:*", "*"):
            return lambda doc: True
        field, colon, value = token.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", field):
            return _match_value("text", token)
        if field not in self.fields:
            # Solr answers an unknown field with an error: so does CKAN, so do we.
            raise QueryError(f"undefined field {field}")
        if value == "" and self.peek() == "(":
            self.take()
            values = []
            op_or = True
            while (t := self.peek()) is not None and t != ")":
                self.take()
                if t in ("OR", "AND"):
                    op_or = t == "OR"
                    continue
                values.append(_match_value(field, t))
            if self.peek() != ")":
                raise QueryError("a parenthesis is not closed")
            self.take()
            combine: Callable[[Iterable[bool]], bool] = any if op_or else all
            return lambda doc: combine(v(doc) for v in values)
        if value == "":
            raise QueryError(f"no value for {field}")
        return _match_value(field, value)


def compile_query(text: str | None, fields: set[str]) -> Predicate | None:
    """A predicate over docs for a ``q`` or ``fq`` text (None: everything)."""
    if text is None or not text.strip() or text.strip() == "*:*":
        return None
    return _Parser(_tokens(text), fields).parse()


def fold(doc: Doc) -> Doc:
    """Add each text field's values lower-cased, as a set under ``~field``: an equality test is
    then one set look-up per dataset."""
    extra = {f"~{k}": {str(v).lower() for v in values} for k, values in doc.items() if k not in DATE_FIELDS}
    return {**doc, **extra}  # type: ignore[dict-item]


@dataclass(frozen=True)
class SortKey:
    field: str | None
    descending: bool


def parse_sort(text: str | None) -> list[SortKey]:
    """``metadata_modified desc, name asc`` (default: CKAN's ``score desc, metadata_modified desc``)."""
    text = text or "score desc, metadata_modified desc"
    keys = []
    for part in text.split(","):
        bits = part.split()
        if not bits:
            continue
        if len(bits) != 2 or bits[1].lower() not in ("asc", "desc") or bits[0] not in SORT_FIELDS:
            raise QueryError(f"Can't determine a sort order from {part.strip()!r}")
        keys.append(SortKey(SORT_FIELDS[bits[0]], bits[1].lower() == "desc"))
    return keys


def sort_docs(docs: list[Doc], keys: Sequence[SortKey]) -> list[Doc]:
    """Sorted by the keys, then by id (the same request gives the same page)."""
    out = sorted(docs, key=lambda d: d["id"][0])
    for key in reversed(keys):
        if key.field is None:
            continue
        field = key.field
        # Missing values last in either direction, as Solr has them.
        present = [d for d in out if d.get(field)]
        missing = [d for d in out if not d.get(field)]
        present.sort(key=lambda d: d[field][0], reverse=key.descending)
        out = present + missing
    return out


class Postings:
    """For each field and lower-cased value, the positions of the docs holding it: a query that
    is one ``field:value`` term (what harvesters send: ``organization:lyon``) is looked up
    instead of tested on every dataset."""

    def __init__(self, docs: Sequence[Doc]) -> None:
        self.positions: dict[tuple[str, str], list[int]] = {}
        for i, doc in enumerate(docs):
            for key, values in doc.items():
                if key.startswith("~"):
                    for value in values:
                        self.positions.setdefault((key[1:], value), []).append(i)

    def candidates(self, filters: Sequence[Predicate], size: int) -> Iterable[int]:
        """Positions that may match every filter (all of them when no filter is a lookup)."""
        chosen: set[int] | None = None
        for f in filters:
            term = getattr(f, "equality", None)
            if term is not None:
                found = set(self.positions.get(term, ()))
                chosen = found if chosen is None else chosen & found
        return range(size) if chosen is None else sorted(chosen)
