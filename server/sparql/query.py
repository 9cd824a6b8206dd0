"""What a public SPARQL query says, read from a real parse (rdflib's SPARQL 1.1 grammar): its form,
its dataset clauses (FROM, FROM NAMED), and the text to run without them.

Only queries are accepted: an update, a SERVICE call or a text that does not parse is refused. The
dataset clauses are located by the parser itself and blanked out; the result is parsed again and
must be the same query without them, or it is refused: no text the parser has not vouched for is
sent to a store. (Some stores, Virtuoso among them, add a query's FROM graphs to the protocol's
instead of letting the protocol's replace them.)
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyparsing
from rdflib import BNode
from rdflib.plugins.sparql import parser as grammar
from rdflib.plugins.sparql.parserutils import CompValue

FORMS = {"SelectQuery": "SELECT", "ConstructQuery": "CONSTRUCT", "DescribeQuery": "DESCRIBE", "AskQuery": "ASK"}
#: Longer texts are refused: rdflib parses ~0.4 MB/s, in the request thread, holding the GIL.
MAX_LENGTH = 200_000
#: Recent texts up to this length keep their parse (clients and benchmarks repeat queries).
CACHE_MAX_LENGTH = 8_192
CACHE_SIZE = 128
UNVERIFIED = (
    "the query's FROM clauses could not be removed safely; name the graphs with the "
    "default-graph-uri and named-graph-uri parameters instead"
)


class Refused(ValueError):
    """A text the endpoint does not run (400)."""


class Malformed(Refused):
    """Not a SPARQL 1.1 query (400)."""


class ReadOnly(Refused):
    """A SPARQL Update request (403: the endpoint is read-only)."""


class TooLong(Refused):
    """A text longer than MAX_LENGTH (413)."""


@dataclass(frozen=True)
class Query:
    """A query accepted for running."""

    form: str  #: SELECT, CONSTRUCT, DESCRIBE or ASK
    text: str  #: what to send: escapes expanded, dataset clauses blanked out
    default_graphs: tuple[str, ...]  #: the FROM graphs, prefixes and BASE resolved
    named_graphs: tuple[str, ...]  #: the FROM NAMED graphs


# SPARQL 1.1 §19.2: \uXXXX and \UXXXXXXXX stand for code points anywhere in the text. Not rdflib's
# expandUnicodeEscapes: its pattern is case-insensitive, so \u takes 8 digits when 8 follow.
_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
# A comment ends at CR or LF in SPARQL, at LF only in rdflib's grammar (pyparsing's rest_of_line):
# the parser reads a lone CR as LF. Same length, so its positions hold for the text sent.
_LONE_CR = re.compile(r"\r(?!\n)")


def _record_start(_text: str, loc: int, tokens: pyparsing.ParseResults) -> None:
    # Annotates only the clause this call produced: thread-safe, and a clause the parser
    # backtracks over is dropped with its annotation.
    tokens[0].civicfed_start = loc


grammar.DatasetClause.add_parse_action(_record_start)
# Copies, to read tabs as tabs: pyparsing expands them by default (positions shift, literals change).
_QUERY = grammar.Query.copy().parse_with_tabs()
_UPDATE = grammar.UpdateUnit.copy().parse_with_tabs()
_CLAUSE = pyparsing.Located(grammar.DatasetClause).parse_with_tabs()


#: Words a text must hold to have a dataset clause, a SERVICE call, an update operation or a store
#: pragma: a short text with none of them (in any case, anywhere) cannot have any, whatever a
#: parser makes of it, so reading its form is enough (``quick_read``).
_NEEDS_PARSE = (
    "from",
    "service",
    "define",
    "insert",
    "delete",
    "load",
    "clear",
    "drop",
    "create",
    "add",
    "move",
    "copy",
)
QUICK_MAX_LENGTH = 4_096
# The prologue (BASE and PREFIX declarations, white space and comments) then the form's keyword,
# as SPARQL 1.1 §19.8 writes them. A regular expression, not rdflib's pyparsing grammar: it reads a
# prologue of ten prefixes in ~10 µs instead of ~600 µs, in the request thread, holding the GIL.
# It can only be stricter than the grammar (a text it does not match gets the full parse), and
# what follows the keyword is judged by the store's parser; no dataset clause can hide in a text
# free of the _NEEDS_PARSE words.
_WS = r"(?:[ \t\r\n]|#[^\r\n]*(?:\r\n?|\n|$))*"
_IRIREF = r"<[^<>\"{}|^`\\\x00-\x20]*>"
_PN_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d\u2070-\u218f"
    "\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_PN_CHARS = _PN_BASE + "_0-9\\-\u00b7\u0300-\u036f\u203f-\u2040"
_PNAME_NS = rf"(?:[{_PN_BASE}](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?)?:"
_HEAD = re.compile(
    rf"{_WS}(?:(?:BASE{_WS}{_IRIREF}|PREFIX{_WS}{_PNAME_NS}{_WS}{_IRIREF}){_WS})*"
    r"(SELECT|CONSTRUCT|DESCRIBE|ASK)(?![A-Za-z0-9_])",
    re.IGNORECASE,
)


def quick_read(text: str) -> Query | None:
    """The reading of a short query that cannot hold a dataset clause, SERVICE, an update or a
    pragma (none of their keywords appear in it, in strings and comments included): its form, read
    with the grammar's prologue, and no dataset. None when the text needs the full parse. The
    store's own parser then judges the rest, as it does for every query."""
    if len(text) > QUICK_MAX_LENGTH:
        return None
    try:
        text = _expand(text)
    except Malformed:
        return None
    lowered = text.lower()  # SPARQL keywords are ASCII, in any case
    if any(word in lowered for word in _NEEDS_PARSE):
        return None
    head = _HEAD.match(text)
    if head is None:
        return None
    return Query(head[1].upper(), text, (), ())


def parse_query(text: str) -> Query:
    """The query in ``text``, ready to run, or Refused (Malformed, ReadOnly, TooLong) saying why."""
    if len(text) > CACHE_MAX_LENGTH:
        return _analyse(text)
    return _cached(text)


def _analyse(text: str) -> Query:
    if len(text) > MAX_LENGTH:
        raise TooLong(f"the query is longer than {MAX_LENGTH} characters")
    text = _expand(text)
    try:
        tree = _parse(text)
    except (pyparsing.ParseBaseException, RecursionError) as exc:
        if _is_update(text):
            raise ReadOnly("this endpoint is read-only: SPARQL Update is not accepted") from None
        raise _malformed(exc) from None
    query = tree[1]
    if any(node.name == "ServiceGraphPattern" for node in _nodes(tree)):
        raise Refused("federated queries (SERVICE) are not run by this endpoint")
    clauses = dict.get(query, "datasetClause") or []
    if not clauses:
        return Query(FORMS[query.name], text, (), ())
    resolve = _resolver(tree[0])
    default = tuple(resolve(dict.get(c, "default")) for c in clauses if "default" in c)
    named = tuple(resolve(dict.get(c, "named")) for c in clauses if "named" in c)
    stripped = _without(text, clauses)
    try:
        again = _parse(stripped)
    except (pyparsing.ParseBaseException, RecursionError):
        raise Refused(UNVERIFIED) from None
    # The same query without its dataset clauses (all keys compared: a clause left would show).
    if _shape(again) != _shape(tree, skip="datasetClause"):
        raise Refused(UNVERIFIED)
    return Query(FORMS[query.name], stripped, default, named)


_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_analyse)


def _expand(text: str) -> str:
    def char(m: re.Match[str]) -> str:
        code = int(m.group(1) or m.group(2), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise Malformed(f"{m.group(0)} is not a Unicode code point")
        return chr(code)

    expanded = _ESCAPE.sub(char, text)
    # Stores that expand escapes again (or only inside strings) would read another query.
    if _ESCAPE.search(expanded):
        raise Malformed("an escape sequence spells another one (\\u005C…): write the character instead")
    return expanded


def _parse(text: str) -> pyparsing.ParseResults:
    return _QUERY.parse_string(_LONE_CR.sub("\n", text), parse_all=True)


def _is_update(text: str) -> bool:
    try:
        update = _UPDATE.parse_string(_LONE_CR.sub("\n", text), parse_all=True)[0]
    except (pyparsing.ParseBaseException, RecursionError):
        return False
    return bool(dict.get(update, "request"))  # a bare prologue (or nothing) parses as an update too


def _malformed(exc: pyparsing.ParseBaseException | RecursionError) -> Refused:
    if isinstance(exc, RecursionError):
        return Malformed("the query is nested too deeply")
    if exc.pstr[exc.loc :].lstrip()[:6].upper() == "DEFINE":  # Virtuoso's pragmas
        return Refused("store pragmas (DEFINE …) are not accepted: send a SPARQL 1.1 query")
    expected = exc.msg if len(exc.msg) <= 160 else exc.msg[:160] + "…"
    return Malformed(f"malformed query at line {exc.lineno}, column {exc.col}: {expected}, found {exc.found}")


def _resolver(prologue: pyparsing.ParseResults) -> Any:
    """IRI of a dataset clause's graph: IRIs resolved against BASE, prefixed names expanded."""
    base, prefixes = "", {}

    def join(iri: str) -> str:
        try:
            return urllib.parse.urljoin(base, iri) if base else iri
        except ValueError as exc:  # not an IRI urllib can resolve (an unclosed IPv6 literal…)
            raise Malformed(f"cannot resolve <{iri}> against BASE <{base}>: {exc}") from None

    for decl in prologue:  # in order: a BASE applies to what follows it
        if decl.name == "Base":
            base = join(str(dict.get(decl, "iri")))
        elif decl.name == "PrefixDecl":
            prefixes[dict.get(decl, "prefix") or ""] = join(str(dict.get(decl, "iri")))

    def resolve(ref: Any) -> str:
        if not isinstance(ref, CompValue):
            return join(str(ref))
        prefix, local = dict.get(ref, "prefix") or "", dict.get(ref, "localname") or ""
        if prefix not in prefixes:
            raise Malformed(f"FROM {prefix}:{local}: the prefix {prefix}: is not declared")
        return prefixes[prefix] + re.sub(r"\\(.)", r"\1", local)  # PN_LOCAL_ESC: \- is -

    return resolve


def _without(text: str, clauses: list[CompValue]) -> str:
    """The text with the clauses' spans blanked out (line breaks kept: positions stay valid)."""
    chars = list(text)
    view = _LONE_CR.sub("\n", text)
    for clause in clauses:
        start = getattr(clause, "civicfed_start", None)
        if not isinstance(start, int):
            raise Refused(UNVERIFIED)
        try:
            begin, _, end = _CLAUSE.parse_string(view[start:])
        except pyparsing.ParseBaseException:
            raise Refused(UNVERIFIED) from None
        for i in range(start + begin, start + end):
            if chars[i] not in "\r\n":
                chars[i] = " "
    return "".join(chars)


def _nodes(node: Any) -> Iterator[CompValue]:
    """Every CompValue in a parse tree."""
    if isinstance(node, CompValue):
        yield node
        for value in dict.values(node):
            yield from _nodes(value)
    elif isinstance(node, list | pyparsing.ParseResults):
        for item in node:
            yield from _nodes(item)


def _shape(node: Any, skip: str = "", bnodes: dict[BNode, int] | None = None) -> Any:
    """A parse tree as nested tuples that compare equal for the same query: blank nodes (fresh at
    each parse) numbered in order of appearance; the key ``skip`` left out."""
    bnodes = {} if bnodes is None else bnodes
    if isinstance(node, CompValue):
        items = ((k, _shape(v, skip, bnodes)) for k, v in dict.items(node) if k != skip)
        return (node.name, tuple(items))
    if isinstance(node, list | pyparsing.ParseResults):
        return tuple(_shape(item, skip, bnodes) for item in node)
    if isinstance(node, BNode):
        return ("_:", bnodes.setdefault(node, len(bnodes)))
    return (type(node).__name__, node)
