"""A CKAN package dict in DCAT: the statements :mod:`importers.ckan_portal` yields for each dataset.

The dataset is named by its ``uri`` extra (a dataset the portal itself harvested keeps its IRI),
else by its page on the portal (``{portal}/dataset/{name}``), and described as ckanext-dcat would
publish it: title, description, keywords, themes (the ``theme`` extra, the portal's groups),
publisher (``publisher_*`` extras, else the organization), licence (the licence document of a
licence this server knows by its CKAN id, vocabularies/licences.py, else the ``license_url``),
dates, landing page, frequency, the ``spatial*`` and ``temporal_*`` extras, and a
``dcat:Distribution`` per resource; ``dct:source`` and ``prov:wasDerivedFrom`` name the portal.
The ``author``/``maintainer`` fields (a person's name and e-mail, often) are left out: no clear
identity is published.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from server.catalog.formats import FILE_TYPES
from server.errors import ValidationFailed
from vocabularies import DCAT, DCT, EU_FILE_TYPE, FOAF, GEO, IANA_MEDIA, LOCN, PROV, RDF, SKOS, XSD
from vocabularies.licences import LICENCES

from .dcat_rdf import genid, iri, text, typed_text

_LICENCES = {lic.ckan_id: lic for lic in LICENCES.values()}
#: CKAN format labels → EU file-type codes (the formats our own catalog names, and common ones).
_FILE_TYPES = {ft.label.upper(): ft.eu_code for ft in FILE_TYPES.values()} | {
    code: code for code in ("CSV", "JSON", "XML", "XLSX", "XLS", "ODS", "PDF", "ZIP", "HTML", "TXT", "SHP", "KML")
}
_MEDIA_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+")
_DATES = ((re.compile(r"\d{4}"), XSD.gYear), (re.compile(r"\d{4}-\d{2}"), XSD.gYearMonth))


def package_statements(package: Any, portal: str) -> list[str]:
    """The DCAT description of one CKAN package dict, as package_show or package_search give it."""
    if not isinstance(package, dict):
        raise ValidationFailed("A dataset is an object.", errors=[{"pointer": "#", "detail": "Not an object."}])
    name = package.get("name") or package.get("id")
    if not isinstance(name, str) or not name:
        raise ValidationFailed("A dataset without name nor id.", errors=[{"pointer": "#/name", "detail": "Missing."}])
    extras = {e["key"]: e.get("value") for e in _objects(package.get("extras")) if isinstance(e.get("key"), str)}

    def value(key: str) -> Any:  # a schema's field (ckanext-scheming) or an extra
        found = package.get(key)
        return extras.get(key) if found in (None, "") else found

    page = f"{portal}/dataset/{quote(name, safe='')}"
    d = iri(value("uri")) or f"<{page}>"
    out = _Out(d, portal)
    out.add(d, RDF.type, f"<{DCAT.Dataset}>")
    out.add(d, DCT.identifier, _str(value("identifier") or value("guid") or package.get("id") or name))
    out.texts(d, DCT.title, package.get("title_translated"), package.get("title") or name)
    out.texts(d, DCT.description, package.get("notes_translated"), package.get("notes"))
    for tag in _objects(package.get("tags")):
        out.add(d, DCAT.keyword, _str(tag.get("display_name") or tag.get("name")))
    for theme in _list(value("theme")):
        out.add(d, DCAT.theme, iri(theme))
    for group in _objects(package.get("groups")):
        if isinstance(group.get("name"), str):
            concept = f"<{portal}/group/{quote(group['name'], safe='')}>"
            out.add(d, DCAT.theme, concept)
            out.add(concept, RDF.type, f"<{SKOS.Concept}>")
            out.add(concept, SKOS.prefLabel, _str(group.get("title") or group.get("display_name") or group["name"]))
    _publisher(out, package, value)
    _licence(out, package)
    out.add(d, DCT.issued, _moment(value("issued")) or _moment(package.get("metadata_created"), utc=True))
    out.add(d, DCT.modified, _moment(value("modified")) or _moment(package.get("metadata_modified"), utc=True))
    out.add(d, DCAT.landingPage, _http(package.get("url")))
    out.add(d, DCT.accrualPeriodicity, _http(value("frequency")))
    _temporal(out, value("temporal_start"), value("temporal_end"))
    _spatial(out, value("spatial_uri"), value("spatial_text"), value("spatial"))
    for position, resource in enumerate(_objects(package.get("resources"))):
        if resource.get("state", "active") == "active":
            _distribution(out, resource, page, position)
    out.add(d, DCT.source, f"<{portal}>")
    out.add(d, PROV.wasDerivedFrom, f"<{portal}>")
    return out.lines


@dataclass
class _Out:
    """The statements of one dataset being written."""

    dataset: str
    portal: str
    lines: list[str] = field(default_factory=list)

    def add(self, s: str, p: str, o: str | None) -> None:
        if o:
            self.lines.append(f"{s} <{p}> {o}")

    def node(self, *key: str) -> str:
        """A node of the dataset's (its temporal extent…): a stable IRI of our own (CKAN gives none)."""
        return f"<{genid(self.dataset, *key)}>"

    def texts(self, s: str, p: str, translated: Any, plain: Any) -> None:
        """Language-tagged values (ckanext-fluent's ``*_translated``), else the plain one."""
        if isinstance(translated, dict) and any(isinstance(v, str) and v for v in translated.values()):
            for lang, v in sorted(translated.items()):
                self.add(s, p, text(v, lang) if isinstance(v, str) and v else None)
        else:
            self.add(s, p, _str(plain))


def _publisher(out: _Out, package: dict[str, Any], value: Any) -> None:
    """ckanext-dcat's ``publisher_*`` extras, else the dataset's organization on the portal."""
    org = package.get("organization")
    if value("publisher_uri") or value("publisher_name"):
        agent, name = iri(value("publisher_uri")) or out.node("publisher"), value("publisher_name")
    elif isinstance(org, dict) and isinstance(org.get("name"), str):
        agent = f"<{out.portal}/organization/{quote(org['name'], safe='')}>"
        name = org.get("title") or org["name"]
    else:
        return
    out.add(out.dataset, DCT.publisher, agent)
    out.add(agent, RDF.type, f"<{FOAF.Agent}>")
    out.add(agent, FOAF.name, _str(name))


def _licence(out: _Out, package: dict[str, Any]) -> None:
    """The licence document of a licence this server knows by its CKAN id, else the portal's
    ``license_url`` (CKAN's ``notspecified`` and ``other-*`` have none)."""
    licence_id = package.get("license_id")
    known = _LICENCES.get(licence_id) if isinstance(licence_id, str) else None
    document = f"<{known.iri}>" if known else _http(package.get("license_url"))
    if document:
        out.add(out.dataset, DCT.license, document)
        out.add(document, RDF.type, f"<{DCT.LicenseDocument}>")
        out.add(document, DCT.title, _str(package.get("license_title")))


def _temporal(out: _Out, start: Any, end: Any) -> None:
    start, end = _moment(start), _moment(end)
    if start or end:
        period = out.node("temporal")
        out.add(out.dataset, DCT.temporal, period)
        out.add(period, RDF.type, f"<{DCT.PeriodOfTime}>")
        out.add(period, DCAT.startDate, start)
        out.add(period, DCAT.endDate, end)


def _spatial(out: _Out, uri: Any, label: Any, geometry: Any) -> None:
    """``spatial_uri`` (a place's IRI), ``spatial_text`` (its name), ``spatial`` (GeoJSON)."""
    geojson = _geojson(geometry)
    place = iri(uri) or (out.node("spatial") if geojson or _str(label) else None)
    if place is None:
        return
    out.add(out.dataset, DCT.spatial, place)
    out.add(place, RDF.type, f"<{DCT.Location}>")
    out.add(place, SKOS.prefLabel, _str(label))
    out.add(place, LOCN.geometry, typed_text(geojson, GEO.geoJSONLiteral) if geojson else None)


def _distribution(out: _Out, resource: dict[str, Any], page: str, position: int) -> None:
    rid = resource.get("id")
    url = resource.get("url")
    if isinstance(rid, str) and rid:
        default = f"<{page}/resource/{quote(rid, safe='')}>"
    else:
        default = out.node("resource", str(position), str(url))
    dist = iri(resource.get("uri")) or default
    out.add(out.dataset, DCAT.distribution, dist)
    out.add(dist, RDF.type, f"<{DCAT.Distribution}>")
    out.texts(dist, DCT.title, resource.get("name_translated"), resource.get("name"))
    out.texts(dist, DCT.description, resource.get("description_translated"), resource.get("description"))
    out.add(dist, DCAT.accessURL, iri(resource.get("access_url")) or iri(url))
    upload = url if resource.get("url_type") == "upload" else None  # a file the portal stores: its download
    out.add(dist, DCAT.downloadURL, iri(resource.get("download_url")) or iri(upload))
    fmt = _str(resource.get("format"))
    code = _FILE_TYPES.get((resource.get("format") or "").strip().upper()) if fmt else None
    out.add(dist, DCT["format"], f"<{EU_FILE_TYPE[code]}>" if code else fmt)
    mimetype = resource.get("mimetype")
    if isinstance(mimetype, str) and _MEDIA_TYPE.fullmatch(mimetype.strip()):
        out.add(dist, DCAT.mediaType, f"<{IANA_MEDIA[mimetype.strip().lower()]}>")
    size = resource.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        out.add(dist, DCAT.byteSize, typed_text(str(size), XSD.nonNegativeInteger))
    out.add(dist, DCT.issued, _moment(resource.get("created"), utc=True))
    out.add(dist, DCT.modified, _moment(resource.get("last_modified") or resource.get("metadata_modified"), utc=True))


# -- values ----------------------------------------------------------------------------------------


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a list field (``tags``, ``resources``…): anything else in it, or a field
    that is no list, says nothing."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return text(value.strip()) if isinstance(value, str) and value.strip() else None


def _http(value: Any) -> str | None:
    term = iri(value)
    return term if term and term.startswith(("<http://", "<https://")) else None


def _list(value: Any) -> list[str]:
    """A list extra: a list (ckanext-scheming), a JSON array in a string (ckanext-dcat), or one value."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: arrays nested a thousand deep
            return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _moment(value: Any, *, utc: bool = False) -> str | None:
    """A date or date-time as a typed literal. CKAN's own timestamps (``metadata_created``…) are
    naive UTC: ``utc`` says so. What is neither a date nor a date-time is left out."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    for pattern, datatype in _DATES:
        if pattern.fullmatch(value):
            return typed_text(value, datatype)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if len(value) == 10:
        return typed_text(moment.date().isoformat(), XSD.date)
    if moment.tzinfo is None and utc:
        moment = moment.replace(tzinfo=dt.UTC)
    lexical = moment.isoformat()
    return typed_text(lexical.removesuffix("+00:00") + "Z" if moment.tzinfo else lexical, XSD.dateTime)


def _geojson(value: Any) -> str | None:
    """A GeoJSON geometry (the ``spatial`` extra), as compact JSON; anything else is left out."""
    try:
        geometry = json.loads(value) if isinstance(value, str) else value
        if isinstance(geometry, dict) and isinstance(geometry.get("type"), str) and "coordinates" in geometry:
            return json.dumps(geometry, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):  # RecursionError: coordinates nested a thousand deep
        return None
    return None
