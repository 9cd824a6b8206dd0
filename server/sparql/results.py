"""SPARQL query results written in every format of the SPARQL 1.1 Protocol, with a row cap.

SELECT and ASK: JSON (W3C "SPARQL 1.1 Query Results JSON Format"), XML, CSV and TSV.
CONSTRUCT and DESCRIBE: Turtle, N-Triples, JSON-LD, RDF/XML, written by pyoxigraph.

SELECT results are written here rather than by pyoxigraph's serialiser so that the endpoint can
stop at the row cap and say so (``X-SPARQL-MaxRows``) instead of producing unbounded output.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pyoxigraph import (
    BlankNode,
    Literal,
    NamedNode,
    QueryBoolean,
    QueryTriples,
    RdfFormat,
    Triple,
    serialize,
)

from vocabularies import RDF, SPARQL_RESULTS, XSD

XSD_STRING = XSD.string
RDF_LANG_STRING = RDF.langString

#: format name → media type, for SELECT/ASK and for CONSTRUCT/DESCRIBE.
RESULT_FORMATS = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
GRAPH_FORMATS = {
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
    "jsonld": "application/ld+json",
    "rdfxml": "application/rdf+xml",
}
_RDF_FORMAT = {
    "turtle": RdfFormat.TURTLE,
    "ntriples": RdfFormat.N_TRIPLES,
    "jsonld": RdfFormat.JSON_LD,
    "rdfxml": RdfFormat.RDF_XML,
}


@dataclass
class Written:
    body: bytes
    media_type: str
    truncated: bool = False
    #: Where the time went, in seconds (the endpoint's Server-Timing field).
    timings: dict[str, float] = field(default_factory=dict)


def kind_of(result: Any) -> str:
    if isinstance(result, QueryBoolean | bool):
        return "ask"
    if isinstance(result, QueryTriples) or (isinstance(result, list) and result and isinstance(result[0], Triple)):
        return "graph"
    if hasattr(result, "variables"):
        return "select"
    return "graph"


def write_result(result: Any, fmt: str, row_cap: int) -> Written:
    """Write a pyoxigraph query result in ``fmt`` (a key of RESULT_FORMATS or GRAPH_FORMATS)."""
    kind = kind_of(result)
    if kind == "graph":
        triples: list[Triple] = []
        truncated = False
        for t in result:
            if len(triples) >= row_cap:
                truncated = True
                break
            triples.append(t)
        media = GRAPH_FORMATS[fmt]
        prefixes = None
        body = serialize(triples, format=_RDF_FORMAT[fmt], prefixes=prefixes)
        return Written(body, media, truncated)
    if kind == "ask":
        value = bool(result)
        return Written(_ask(value, fmt), RESULT_FORMATS[fmt])
    variables = [v.value for v in result.variables]
    rows: list[list[Any]] = []
    truncated = False
    for solution in result:
        if len(rows) >= row_cap:
            truncated = True
            break
        rows.append([solution[v] for v in variables])
    writer = {"json": _json, "xml": _xml, "csv": _csv, "tsv": _tsv}[fmt]
    return Written(writer(variables, rows), RESULT_FORMATS[fmt], truncated)


def _ask(value: bool, fmt: str) -> bytes:
    if fmt == "xml":
        return (
            f'<?xml version="1.0"?>\n<sparql xmlns="{SPARQL_RESULTS}">\n'
            f"<head/>\n<boolean>{'true' if value else 'false'}</boolean>\n</sparql>\n"
        ).encode()
    if fmt in ("csv", "tsv"):  # not defined by the CSV/TSV spec; the value alone, as common servers do
        return (("_askResult\n" if fmt == "csv" else "?_askResult\n") + ("true" if value else "false") + "\n").encode()
    return json.dumps({"head": {}, "boolean": value}).encode()


def _json_term(term: Any) -> dict[str, str]:
    if isinstance(term, NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    if isinstance(term, Triple):
        return {
            "type": "triple",
            "value": {  # type: ignore[dict-item]
                "subject": _json_term(term.subject),
                "predicate": _json_term(term.predicate),
                "object": _json_term(term.object),
            },
        }
    raise TypeError(type(term))


def _json(variables: list[str], rows: list[list[Any]]) -> bytes:
    bindings = [{v: _json_term(t) for v, t in zip(variables, row, strict=True) if t is not None} for row in rows]
    return json.dumps({"head": {"vars": variables}, "results": {"bindings": bindings}}, ensure_ascii=False).encode()


def _xml_term(term: Any) -> str:
    if isinstance(term, NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
        return f"<literal>{escape(term.value)}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def _xml(variables: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    out.write(f'<?xml version="1.0"?>\n<sparql xmlns="{SPARQL_RESULTS}">\n<head>')
    out.writelines(f"<variable name={quoteattr(v)}/>" for v in variables)
    out.write("</head>\n<results>\n")
    for row in rows:
        out.write("<result>")
        for v, t in zip(variables, row, strict=True):
            if t is not None:
                out.write(f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>")
        out.write("</result>\n")
    out.write("</results>\n</sparql>\n")
    return out.getvalue().encode()


def _csv_cell(term: Any) -> str:
    """SPARQL 1.1 CSV: plain values (IRIs and literals without datatype or language)."""
    if term is None:
        return ""
    value = term.value if isinstance(term, NamedNode | Literal) else f"_:{term.value}"
    if any(c in value for c in ',"\n\r'):
        value = '"' + value.replace('"', '""') + '"'
    return value


def _csv(variables: list[str], rows: list[list[Any]]) -> bytes:
    lines = [",".join(variables)] + [",".join(_csv_cell(t) for t in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def _tsv_cell(term: Any) -> str:
    """SPARQL 1.1 TSV: terms in Turtle/N-Triples syntax."""
    if term is None:
        return ""
    return str(term)


def _tsv(variables: list[str], rows: list[list[Any]]) -> bytes:
    lines = ["\t".join(f"?{v}" for v in variables)] + ["\t".join(_tsv_cell(t) for t in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def triples_of(result: Iterable[Any]) -> list[Triple]:
    return list(result)
