"""Vocabularies civicfed speaks: namespace objects and the files that define our own terms.

The ``cf:`` namespace is fixed and independent of any instance, so federated servers share the
same terms. Everything else is a shared vocabulary (DCAT, DCTERMS, schema.org, SIOC, ORG, CPOV,
locn, GeoSPARQL, SKOS, PROV-O, RDF Data Cube, CCCEV, ActivityStreams tombstones).

Namespace objects and prefixes live in :mod:`vocabularies.namespaces` (re-exported here): no IRI
of a namespace is typed anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .namespaces import *  # noqa: F403 - the namespaces are this package's vocabulary
from .namespaces import CF_IRI, SKOS

_DIR = Path(str(resources.files(__name__)))

#: The files of the vocabulary package, each a resource in its own right.
ONTOLOGY_FILE = _DIR / "civicfed.ttl"
SCHEMES_FILE = _DIR / "schemes.ttl"
SHAPES_FILE = _DIR / "shapes.ttl"
CONTEXT_FILE = _DIR / "context.jsonld"
INDICATORS_FILE = _DIR / "indicators.ttl"


def vocabulary_turtle() -> str:
    """The ``cf:`` ontology, its SKOS concept schemes and the indicators with their data structure,
    as one Turtle document (served at /ns)."""
    return "\n".join(f.read_text(encoding="utf-8") for f in (ONTOLOGY_FILE, SCHEMES_FILE, INDICATORS_FILE))


def concept_codes(scheme: str) -> list[str]:
    """The codes (``skos:notation``) of a concept scheme of ours, e.g. ``concept_codes("themes")``."""
    return list(_schemes().get(scheme, {}))


def concept_iri(scheme: str, code: str) -> str:
    return _schemes()[scheme][code]


def concept_code(scheme: str, iri: str) -> str | None:
    """The code of a concept IRI in one of our schemes, or None if it is not one of them."""
    global _CODES
    if _CODES is None:
        _CODES = {(s, i): c for s, concepts in _schemes().items() for c, i in concepts.items()}
    return _CODES.get((scheme, iri))


def _schemes() -> dict[str, dict[str, str]]:
    global _SCHEMES
    if _SCHEMES is None:
        from pyoxigraph import RdfFormat, parse

        in_scheme: dict[str, str] = {}
        notation: dict[str, str] = {}
        for t in parse(path=str(SCHEMES_FILE), format=RdfFormat.TURTLE):
            p = t.predicate.value
            if p == str(SKOS.inScheme):
                in_scheme[t.subject.value] = t.object.value.removeprefix(CF_IRI)
            elif p == str(SKOS.notation):
                notation[t.subject.value] = t.object.value
        out: dict[str, dict[str, str]] = {}
        for concept, scheme in in_scheme.items():
            out.setdefault(scheme, {})[notation[concept]] = concept
        _SCHEMES = out
    return _SCHEMES


@dataclass(frozen=True)
class Indicator:
    """A participation indicator as indicators.ttl defines it (texts by language tag)."""

    iri: str
    code: str
    label: dict[str, str]
    definition: dict[str, str]
    computation: dict[str, str]
    unit: str
    datatype: str
    per_inhabitants: bool
    counts_people: bool


def indicators() -> dict[str, Indicator]:
    """The indicators by code, in the order indicators.ttl defines them."""
    global _INDICATORS
    if _INDICATORS is None:
        from pyoxigraph import Literal, RdfFormat, parse

        from .namespaces import CF, RDF, RDFS, SDMXA

        texts = {str(RDFS.label): "label", str(SKOS.definition): "definition", str(CF.computation): "computation"}
        props: dict[str, dict[str, object]] = {}
        order: list[str] = []
        for t in parse(path=str(INDICATORS_FILE), format=RdfFormat.TURTLE):
            s, p, o = t.subject.value, t.predicate.value, t.object
            if p == str(RDF.type) and o.value == str(CF.Indicator):
                order.append(s)
            entry = props.setdefault(s, {"label": {}, "definition": {}, "computation": {}})
            if p in texts and isinstance(o, Literal) and o.language:
                entry[texts[p]][o.language] = o.value  # type: ignore[index]
            elif p == str(CF.code):
                entry["code"] = o.value
            elif p == str(SDMXA.unitMeasure):
                entry["unit"] = o.value
            elif p == str(RDFS.range):
                entry["datatype"] = o.value
            elif p in (str(CF.perInhabitants), str(CF.countsPeople)):
                entry[p] = o.value == "true"
        _INDICATORS = {}
        for s in order:
            e = props[s]
            _INDICATORS[str(e["code"])] = Indicator(
                s, str(e["code"]), e["label"], e["definition"], e["computation"],  # type: ignore[arg-type]
                str(e["unit"]), str(e["datatype"]),
                bool(e[str(CF.perInhabitants)]), bool(e[str(CF.countsPeople)]),
            )  # fmt: skip
    return _INDICATORS


_INDICATORS: dict[str, Indicator] | None = None
_SCHEMES: dict[str, dict[str, str]] | None = None
_CODES: dict[tuple[str, str], str] | None = None
