"""Vocabularies civicfed speaks: namespace objects and the files that define our own terms.

The ``cf:`` namespace is fixed and independent of any instance, so federated servers share the
same terms. Everything else is a shared vocabulary (DCAT, DCTERMS, schema.org, SIOC, ORG, CPOV,
locn, GeoSPARQL, SKOS, PROV-O, RDF Data Cube, CCCEV, ActivityStreams tombstones).

Namespace objects give plain ``str`` IRIs (``CF.Proposal == "https://w3id.org/civicfed/ns#Proposal"``):
the hot paths compare them with pyoxigraph ``.value`` strings and format them straight into
N-Triples. (rdflib's ``URIRef`` never equals a plain ``str``; wrap with ``URIRef`` where rdflib
needs a term.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path


class Namespace:
    """An IRI prefix; attribute or item access gives the full IRI as a plain ``str``.

    Not a ``str`` subclass on purpose: ``DCT.title`` must be the IRI, not ``str.title``.
    """

    __slots__ = ("_prefix",)

    def __init__(self, prefix: str) -> None:
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._prefix + name

    def __getitem__(self, name: str) -> str:
        return self._prefix + name

    def __str__(self) -> str:
        return self._prefix

    def __repr__(self) -> str:
        return f"Namespace({self._prefix!r})"

    def __contains__(self, iri: str) -> bool:
        return iri.startswith(self._prefix)


CF_IRI = "https://w3id.org/civicfed/ns#"

CF = Namespace(CF_IRI)
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS = Namespace("http://www.w3.org/2000/01/rdf-schema#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
DCT = Namespace("http://purl.org/dc/terms/")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
SDO = Namespace("https://schema.org/")
SIOC = Namespace("http://rdfs.org/sioc/ns#")
SIOCA = Namespace("http://rdfs.org/sioc/argument#")
ORG = Namespace("http://www.w3.org/ns/org#")
M8G = Namespace("http://data.europa.eu/m8g/")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GEO = Namespace("http://www.opengis.net/ont/geosparql#")
SF = Namespace("http://www.opengis.net/ont/sf#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
PROV = Namespace("http://www.w3.org/ns/prov#")
QB = Namespace("http://purl.org/linked-data/cube#")
SDMXD = Namespace("http://purl.org/linked-data/sdmx/2009/dimension#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
AS = Namespace("https://www.w3.org/ns/activitystreams#")
SH = Namespace("http://www.w3.org/ns/shacl#")
VANN = Namespace("http://purl.org/vocab/vann/")
EU_THEME = Namespace("http://publications.europa.eu/resource/authority/data-theme/")

#: Prefixes used when serialising RDF for people (Turtle, JSON-LD contexts, docs).
PREFIXES: dict[str, str] = {
    "cf": CF_IRI,
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
    "owl": str(OWL),
    "dct": str(DCT),
    "dcat": str(DCAT),
    "schema": str(SDO),
    "sioc": str(SIOC),
    "sioca": str(SIOCA),
    "org": str(ORG),
    "m8g": str(M8G),
    "locn": str(LOCN),
    "geo": str(GEO),
    "sf": str(SF),
    "skos": str(SKOS),
    "prov": str(PROV),
    "qb": str(QB),
    "sdmxd": str(SDMXD),
    "adms": str(ADMS),
    "foaf": str(FOAF),
    "as": str(AS),
    "sh": str(SH),
}

_BY_NAMESPACE = {ns: prefix for prefix, ns in PREFIXES.items()}
_NS_END = re.compile(r"[/#]")


@functools.lru_cache(maxsize=16_384)
def _prefixes_of(iri: str) -> tuple[str, ...]:
    # Every namespace ends with / or #: only the IRI's heads ending there can be one.
    return tuple(p for end in _NS_END.finditer(iri) if (p := _BY_NAMESPACE.get(iri[: end.end()])) is not None)


def prefixes_used(iris: Iterable[str]) -> dict[str, str]:
    """The entries of PREFIXES whose namespace starts one of these IRIs (on every Turtle response:
    the same predicates and classes come back, so each IRI's answer is cached)."""
    return {p: PREFIXES[p] for iri in set(iris) for p in _prefixes_of(iri)}


_DIR = Path(str(resources.files(__name__)))

#: The files of the vocabulary package, each a resource in its own right.
ONTOLOGY_FILE = _DIR / "civicfed.ttl"
SCHEMES_FILE = _DIR / "schemes.ttl"
SHAPES_FILE = _DIR / "shapes.ttl"
CONTEXT_FILE = _DIR / "context.jsonld"


def vocabulary_turtle() -> str:
    """The ``cf:`` ontology and its SKOS concept schemes, as one Turtle document (served at /ns)."""
    return ONTOLOGY_FILE.read_text(encoding="utf-8") + "\n" + SCHEMES_FILE.read_text(encoding="utf-8")


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


_SCHEMES: dict[str, dict[str, str]] | None = None
_CODES: dict[tuple[str, str], str] | None = None
