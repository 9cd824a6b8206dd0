"""Compact JSON-LD of resource descriptions, with civicfed's context (vocabularies/context.jsonld).

A resource is a handful of flat nodes (the resource and its ``#`` nodes), so compaction is a
direct mapping: each predicate → the context term that declares it with a matching type
coercion (or its compact IRI when none does), each object → the value form that term implies.
This avoids a general JSON-LD processor on a hot path; tests expand the output with rdflib and
check it is the same graph.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from pyoxigraph import BlankNode, Literal, NamedNode

from vocabularies import CONTEXT_FILE, PREFIXES, RDF, XSD, compact_iri

RDF_TYPE = RDF.type
XSD_STRING = XSD.string


@functools.cache
def context() -> dict[str, Any]:
    return json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]


@functools.cache
def _terms() -> dict[str, list[tuple[str, str | None, bool]]]:
    """Predicate IRI → [(context term, type coercion, is a set)]. The context declares the
    prefixes of ``vocabularies.PREFIXES`` (a test holds them equal), so IRIs compact with
    :func:`vocabularies.compact_iri`."""
    ctx = context()

    def expand(value: str) -> str:
        if ":" in value and not value.startswith("http"):
            prefix, local = value.split(":", 1)
            return PREFIXES[prefix] + local if prefix in PREFIXES else value
        return value

    terms: dict[str, list[tuple[str, str | None, bool]]] = {}
    for term, definition in ctx.items():
        if isinstance(definition, dict) and "@id" in definition:
            coercion = definition.get("@type")
            coercion = coercion if coercion in (None, "@id") else expand(coercion)
            terms.setdefault(expand(definition["@id"]), []).append(
                (term, coercion, definition.get("@container") == "@set")
            )
    return terms


def _node_ref(term: Any) -> str:
    return f"_:{term.value}" if isinstance(term, BlankNode) else compact_iri(term.value)


def _value(obj: Any) -> Any:
    """A value object with no coercion to rely on."""
    if isinstance(obj, NamedNode | BlankNode):
        return {"@id": _node_ref(obj)}
    if obj.language:
        return {"@value": obj.value, "@language": obj.language}
    if obj.datatype.value == XSD_STRING:
        return obj.value
    return {"@value": obj.value, "@type": compact_iri(obj.datatype.value)}


def _pick(predicate: str, obj: Any) -> tuple[str, Any, bool]:
    """The key, the value and whether the key is a set, for one triple's predicate and object."""
    for term, coercion, is_set in _terms().get(predicate, ()):
        if coercion == "@id" and isinstance(obj, NamedNode | BlankNode):
            return term, _node_ref(obj), is_set
        if isinstance(obj, Literal) and not obj.language:
            if coercion is None and obj.datatype.value == XSD_STRING:
                return term, obj.value, is_set
            if coercion is not None and coercion != "@id" and obj.datatype.value == coercion:
                return term, obj.value, is_set
        if coercion is None and (isinstance(obj, NamedNode | BlankNode) or (isinstance(obj, Literal) and obj.language)):
            return term, _value(obj), is_set
    return compact_iri(predicate), _value(obj), False


def compact(triples: Iterable[tuple[Any, Any, Any]], main: str | None = None) -> dict[str, Any]:
    """Compact JSON-LD (context embedded) of some triples; ``main`` first in ``@graph``."""
    nodes: dict[str, dict[str, Any]] = {}
    sets: dict[str, set[str]] = {}
    for s, p, o in triples:
        node_id = _node_ref(s)
        node = nodes.setdefault(node_id, {"@id": node_id})
        if p.value == RDF_TYPE and isinstance(o, NamedNode):
            node.setdefault("@type", []).append(compact_iri(o.value))
            continue
        key, value, is_set = _pick(p.value, o)
        if key in node:
            if not isinstance(node[key], list):
                node[key] = [node[key]]
            node[key].append(value)
        else:
            node[key] = [value] if is_set else value
        if is_set:
            sets.setdefault(node_id, set()).add(key)
    ordered = sorted(nodes.values(), key=lambda n: (n["@id"] != (compact_iri(main) if main else None), n["@id"]))
    for node in ordered:
        if len(node.get("@type", [])) == 1:
            node["@type"] = node["@type"][0]
    return {"@context": context(), "@graph": ordered}
