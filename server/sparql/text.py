"""What a SPARQL text is, read from its keywords without parsing it: the query form, whether it is
an update, whether it has dataset clauses. Strings, IRIs and comments are blanked out first so
that a keyword inside them does not count."""

from __future__ import annotations

import re
import urllib.parse

_STRINGS_AND_IRIS = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|<[^<>"\s]*>'
)
_COMMENTS = re.compile(r"#[^\n]*")
_FORM = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)
_UPDATE = re.compile(
    r"\b(INSERT|DELETE|LOAD|CLEAR|CREATE|DROP|COPY|MOVE|ADD)\b\s*(DATA|WHERE|\{|GRAPH|SILENT|<|DEFAULT|ALL|NAMED)",
    re.IGNORECASE,
)
_STRINGS = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_IRI = r'<[^<>"\s]*>'
# A keyword, not a variable (?from), a prefixed name's part (ex:from) or part of a longer word.
_NOT_AFTER = r"(?<![?$\w:.\-])"
_FROM = re.compile(_NOT_AFTER + r"FROM\b", re.IGNORECASE)
_SERVICE = re.compile(_NOT_AFTER + r"SERVICE\b", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*DEFINE\b", re.IGNORECASE)  # Virtuoso's "DEFINE input:…" pragmas
_GRAPH_REF = rf'(?:{_IRI}|[^\s<>{{}}"\']*:[^\s<>{{}}"\']*)'
_DATASET_CLAUSE = re.compile(_NOT_AFTER + rf"FROM\s+(NAMED\s+)?({_GRAPH_REF})", re.IGNORECASE)
_PREFIX = re.compile(rf"{_NOT_AFTER}PREFIX\s+([^\s:]*):\s*({_IRI})", re.IGNORECASE)
_BASE = re.compile(rf"{_NOT_AFTER}BASE\s+({_IRI})", re.IGNORECASE)


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))  # same length: positions stay valid


def keywords(sparql: str) -> str:
    """The text with strings, IRIs and comments blanked out."""
    return _COMMENTS.sub(" ", _STRINGS_AND_IRIS.sub(" ", sparql))


def _code(sparql: str) -> str:
    """The text with strings and comments blanked out, same length, IRIs kept."""
    text = _STRINGS.sub(_blank, sparql)
    # A '#' inside an IRI is not a comment: blank comments outside IRIs only.
    out, pos = [], 0
    for m in re.finditer(rf"{_IRI}|#[^\n]*", text):
        out.append(text[pos : m.start()])
        out.append(m.group(0) if m.group(0).startswith("<") else " " * len(m.group(0)))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def query_form(sparql: str) -> str | None:
    """SELECT, ASK, CONSTRUCT or DESCRIBE (after prefixes and comments), or None."""
    m = _FORM.search(keywords(sparql))
    return m.group(1).upper() if m else None


def is_graph_query(sparql: str) -> bool:
    """CONSTRUCT or DESCRIBE: the answer is a graph, not solutions."""
    return query_form(sparql) in ("CONSTRUCT", "DESCRIBE")


def looks_like_update(sparql: str) -> bool:
    return query_form(sparql) is None and bool(_UPDATE.search(keywords(sparql)))


def uses_service(sparql: str) -> bool:
    """Whether the query calls other endpoints (SERVICE): a public endpoint must not fetch them."""
    return bool(_SERVICE.search(keywords(sparql)))


def has_pragma(sparql: str) -> bool:
    """Whether the text starts with store-specific pragmas (Virtuoso's DEFINE), not SPARQL 1.1."""
    return bool(_PRAGMA.match(keywords(sparql)))


class DatasetClauseError(ValueError):
    """A FROM clause this module cannot read."""


def split_dataset(sparql: str) -> tuple[str, list[str], list[str]]:
    """The query without its FROM / FROM NAMED clauses, and the graphs they named (prefixes and
    BASE resolved). The caller passes the dataset as protocol parameters instead: some stores
    (Virtuoso) add a query's FROM graphs to the protocol's instead of letting them be overridden.
    """
    code = _code(sparql)
    if not _FROM.search(code):
        return sparql, [], []
    prefixes = {m.group(1): m.group(2)[1:-1] for m in _PREFIX.finditer(code)}
    base = m.group(1)[1:-1] if (m := _BASE.search(code)) else ""
    default: list[str] = []
    named: list[str] = []
    out, pos = [], 0
    for m in _DATASET_CLAUSE.finditer(code):
        ref = m.group(2)
        if ref.startswith("<"):
            iri = urllib.parse.urljoin(base, ref[1:-1]) if base else ref[1:-1]
        else:
            prefix, _, local = ref.partition(":")
            if prefix not in prefixes:
                raise DatasetClauseError(f"FROM {ref}: the prefix {prefix!r} is not declared")
            iri = prefixes[prefix] + local.replace("\\", "")
        (named if m.group(1) else default).append(iri)
        out.append(sparql[pos : m.start()] + " " * (m.end() - m.start()))
        pos = m.end()
    stripped = "".join(out) + sparql[pos:]
    if _FROM.search(_code(stripped)):
        raise DatasetClauseError(
            "a FROM clause could not be read; name the graphs with the default-graph-uri and "
            "named-graph-uri parameters instead"
        )
    return stripped, default, named
