"""The dumps a territory publishes: their formats, media types, EU file types and URLs."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.kinds import BY_PLURAL, RECORD_KINDS, Kind
from ..urls import Urls

RECORD_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "geojson": "application/geo+json",
    "ttl": "text/turtle; charset=utf-8",
    "jsonld": "application/ld+json",
    "nt": "application/n-triples",
}
TERRITORY_FORMATS = {"nq": "application/n-quads", "trig": "application/trig"}
#: Kinds dumped one file per format: every published kind, the territory itself included (one record).
DUMPED_KINDS: tuple[Kind, ...] = tuple(k for k in (BY_PLURAL["territories"], *RECORD_KINDS) if not k.private)


@dataclass(frozen=True)
class FileType:
    """How a catalog names a format: the EU file-type authority code, CKAN's format label."""

    eu_code: str
    label: str


FILE_TYPES: dict[str, FileType] = {
    "csv": FileType("CSV", "CSV"),
    "json": FileType("JSON", "JSON"),
    "geojson": FileType("GEOJSON", "GeoJSON"),
    "ttl": FileType("RDF_TURTLE", "Turtle"),
    "jsonld": FileType("JSON_LD", "JSON-LD"),
    "nt": FileType("RDF_N_TRIPLES", "N-Triples"),
    # CKAN files RDF/XML under "RDF" (its resource_formats.json): a portal given "RDF/XML" reads
    # back "RDF", and every push would see a change.
    "rdf": FileType("RDF_XML", "RDF"),
    "nq": FileType("RDF_N_QUADS", "N-Quads"),
    "trig": FileType("RDF_TRIG", "TriG"),
}


def kind_formats(kind: Kind) -> list[str]:
    """The dump formats of one kind (GeoJSON only for kinds with a location or a boundary)."""
    return [fmt for fmt in RECORD_FORMATS if fmt != "geojson" or kind.mappable]


def dump_urls(urls: Urls, territory: str) -> dict[str, str]:
    """Every dump of a territory, by file name (for the catalog, VoID and the home page)."""
    out = {f"{territory}.{fmt}": urls.dump(f"{territory}.{fmt}") for fmt in TERRITORY_FORMATS}
    for kind in DUMPED_KINDS:
        for fmt in kind_formats(kind):
            out[f"{kind.plural}.{fmt}"] = urls.dump(f"{territory}/{kind.plural}.{fmt}")
    return out
