"""Every namespace IRI civicfed speaks, and nothing else: the one place they are typed.

Namespace objects give plain ``str`` IRIs (``CF.Proposal == "https://w3id.org/civicfed/ns#Proposal"``):
the hot paths compare them with pyoxigraph ``.value`` strings and format them straight into
N-Triples. (rdflib's ``URIRef`` never equals a plain ``str``; wrap with ``URIRef`` where rdflib
needs a term.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


class Namespace:
    """An IRI prefix; attribute or item access gives the full IRI as a plain ``str``.

    Not a ``str`` subclass on purpose: ``DCT.title`` must be the IRI, not ``str.title``.
    """

    def __init__(self, prefix: str) -> None:
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        # Kept as an attribute: the next lookup of a term finds it without calling this (the
        # write path looks terms up tens of thousands of times per batch).
        iri = self._prefix + name
        self.__dict__[name] = iri
        return iri

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
SDMXM = Namespace("http://purl.org/linked-data/sdmx/2009/measure#")
SDMXA = Namespace("http://purl.org/linked-data/sdmx/2009/attribute#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
AS = Namespace("https://www.w3.org/ns/activitystreams#")
SH = Namespace("http://www.w3.org/ns/shacl#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VANN = Namespace("http://purl.org/vocab/vann/")
EU_THEME = Namespace("http://publications.europa.eu/resource/authority/data-theme/")
# What a DCAT-AP catalog speaks besides: contact points, paging, and the EU authority tables
# (Named Authority Lists) that DCAT-AP 3 expects its values from.
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
# Linked Data Event Streams (SEMIC) over the TREE hypermedia specification: the event streams.
TREE = Namespace("https://w3id.org/tree#")
LDES = Namespace("https://w3id.org/ldes#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
EU_FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
EU_FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
EU_LANGUAGE = Namespace("http://publications.europa.eu/resource/authority/language/")
EU_ACCESS_RIGHT = Namespace("http://publications.europa.eu/resource/authority/access-right/")
EU_COUNTRY = Namespace("http://publications.europa.eu/resource/authority/country/")
EU_LICENCE = Namespace("http://publications.europa.eu/resource/authority/licence/")
EU_AVAILABILITY = Namespace("http://publications.europa.eu/resource/authority/planned-availability/")
IANA_MEDIA = Namespace("https://www.iana.org/assignments/media-types/")
ADMS_PUBLISHER_TYPE = Namespace("http://purl.org/adms/publishertype/")
ADMS_LICENCE_TYPE = Namespace("http://purl.org/adms/licencetype/")
# Self-description of the endpoint and the dataset (VoID, SPARQL Service Description, W3C formats).
VOID = Namespace("http://rdfs.org/ns/void#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
ENTAILMENT = Namespace("http://www.w3.org/ns/entailment/")
#: The XML namespace of SPARQL query results (application/sparql-results+xml).
SPARQL_RESULTS = Namespace("http://www.w3.org/2005/sparql-results#")
# Identifiers of places and things other authorities mint.
NUTS = Namespace("http://data.europa.eu/nuts/code/")
INSEE_COMMUNE = Namespace("http://id.insee.fr/geo/commune/")
WIKIDATA = Namespace("http://www.wikidata.org/entity/")
#: Types of problem details (RFC 9457) this server answers with.
PROBLEMS = Namespace("https://w3id.org/civicfed/problems#")
#: Virtuoso's own datatypes (its geometries come back typed so).
VIRTRDF = Namespace("http://www.openlinksw.com/schemas/virtrdf#")

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
    "sdmxm": str(SDMXM),
    "sdmxa": str(SDMXA),
    "adms": str(ADMS),
    "foaf": str(FOAF),
    "as": str(AS),
    "sh": str(SH),
    "spdx": str(SPDX),
}

#: Prefixes of the namespaces that describe the service rather than the data (VoID, service
#: description): used in those documents, not declared in the data's JSON-LD context.
SERVICE_PREFIXES: dict[str, str] = {"void": str(VOID), "sd": str(SD), "formats": str(FORMATS)}
#: Prefixes of a DCAT-AP catalog's Turtle (with those of PREFIXES it uses).
CATALOG_PREFIXES: dict[str, str] = {
    "vcard": str(VCARD),
    "hydra": str(HYDRA),
    "dcatap": str(DCATAP),
    "filetype": str(EU_FILE_TYPE),
    "frequency": str(EU_FREQUENCY),
    "language": str(EU_LANGUAGE),
    "datatheme": str(EU_THEME),
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


def compact_iri(iri: str) -> str:
    """``prefix:local`` for an IRI in a namespace of :data:`PREFIXES` (the longest that fits), or
    the IRI itself. The local part never holds ``/`` or ``#``, so the result is a valid compact
    IRI in Turtle and JSON-LD (whose context declares the same prefixes) and reads well on pages."""
    found = _prefixes_of(iri)
    if found:
        prefix = max(found, key=lambda p: len(PREFIXES[p]))
        local = iri[len(PREFIXES[prefix]) :]
        if local and "/" not in local and "#" not in local:
            return f"{prefix}:{local}"
    return iri


def namespace_of(iri: str) -> str:
    """The vocabulary a term belongs to: a known namespace, else the IRI up to its last ``#`` or ``/``."""
    found = _prefixes_of(iri)
    if found:
        return max((PREFIXES[p] for p in found), key=len)
    cut = max(iri.rfind("#"), iri.rfind("/"))
    return iri[: cut + 1] if cut > 0 else iri


def prefix_declarations(prefixes: Iterable[str], *, sparql: bool = False) -> str:
    """Turtle ``@prefix`` (or SPARQL ``PREFIX``) lines for these prefix names."""
    table = {**PREFIXES, **SERVICE_PREFIXES}
    if sparql:
        return "".join(f"PREFIX {p}: <{table[p]}>\n" for p in prefixes)
    return "".join(f"@prefix {p}: <{table[p]}> .\n" for p in prefixes)
