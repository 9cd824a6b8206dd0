"""GeoJSON boundaries: a FeatureCollection of a territory's districts (arrondissements, quartiers,
IRIS, communes of a metropolis) → ``district`` records.

Each ``Polygon`` or ``MultiPolygon`` feature is a district: its code (the record's id) and name
come from properties the options ``code`` and ``label`` name (``label``, as ``name`` is the file's
name for every importer), as a property (``code=c_arinsee``), a template of
properties (``code=6938{numero_arrondissement}``) or a constant (``parent==75056``); by default,
the first of the usual properties present in every feature (Paris open data
``c_arinsee``/``l_ar``, Grand Lyon and france-geojson ``code``/``nom``, INSEE IRIS contours
``code_iris``/``nom_iris``). ``level`` and ``code_list`` say what the districts are; a code
property known to be INSEE's implies them, else ``level`` is ``other`` and the code list is left
unsaid (never guessed from what the codes look like).

``parent`` (a property or template) gives each district's parent code: the parent must exist in
the territory, or, with ``parent_label`` (a template for its name), the importer makes it from its
children, its boundary their union (Lyon's arrondissements from its quartiers:
``parent=6938{numero_arrondissement} parent_label="Lyon {numero_arrondissement}e arrondissement"``).

Coordinates must be WGS84 longitude/latitude (RFC 7946): a ``crs`` member naming anything but
CRS84/EPSG:4326 is refused (reprojection is out of scope), and so is a feature whose coordinates
cannot be degrees. An altitude is dropped. An invalid polygon (self-intersection…) is rejected with
GEOS's reason; ``repair=yes`` repairs it with ``make_valid`` instead (its polygonal part), which
changes the boundary the source published: only on request.

The file is read whole: each run is the territory's set of boundaries from this source (a snapshot).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import shapely
from marshmallow import ValidationError

from server.errors import MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Record, Rejected
from server.model.kinds import KINDS
from server.model.schemas import geometry_value, parse_json

from .areas import CODE_LISTS, LEVELS, choose, code_problem, read_all, render, source_id, template_fields

DISTRICT = KINDS["district"]
MEDIA_TYPES = ("application/geo+json",)
#: Properties holding a feature's code and name, most specific first (see the module's docstring).
CODE_PROPERTIES = ("code_iris", "CODE_IRIS", "c_arinsee", "insee_com", "INSEE_COM", "code_insee", "code", "CODE")
NAME_PROPERTIES = ("nom_iris", "NOM_IRIS", "l_ar", "nom", "NOM", "name", "nom_com", "NOM_COM", "libelle", "l_aroff")
#: What a code property says of the districts: (level, code list).
KNOWN_CODES = {
    "code_iris": ("iris", "iris"),
    "CODE_IRIS": ("iris", "iris"),
    "c_arinsee": ("arrondissement", "insee-cog"),
    "insee_com": ("commune", "insee-cog"),
    "INSEE_COM": ("commune", "insee-cog"),
    "code_insee": (None, "insee-cog"),
}
#: Names of WGS84 longitude/latitude in GeoJSON ``crs`` members (GeoJSON 2008; RFC 7946 dropped it).
WGS84 = {
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "urn:ogc:def:crs:ogc::crs84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84",
    "urn:ogc:def:crs:epsg::4326",
    "urn:ogc:def:crs:epsg:6.6:4326",
    "epsg:4326",
    "http://www.opengis.net/def/crs/epsg/0/4326",
}
YES = {"yes", "true", "1", "on"}


def invalid(pointer: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"pointer": pointer, "detail": detail}])


@dataclass
class BoundariesSource:
    """The districts of one GeoJSON FeatureCollection."""

    data: bytes | IO[bytes]
    name: str
    id: str
    options: dict[str, Any]
    sha256: str | None = None
    location: str | None = None
    _parents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def items(self) -> Iterator[Item]:
        raw, self.sha256 = read_all(self.data)
        self.location = self.name
        features = _features(raw, self.name)
        o = self.options
        code_spec = o.get("code") or _guess(features, CODE_PROPERTIES, "code", self.name)
        name_spec = o.get("label") or _guess(features, NAME_PROPERTIES, "label", self.name)
        known_level, known_list = KNOWN_CODES.get(code_spec, (None, None))
        level = o.get("level") or known_level or "other"
        code_list = o.get("code_list") or known_list
        seen: dict[str, int] = {}
        for number, feature in enumerate(features, start=1):
            try:
                record = self._district(feature, code_spec, name_spec, level, code_list, number, seen)
            except ValidationFailed as err:
                yield Rejected(err, number, DISTRICT.name, _code_of(feature, code_spec))
                continue
            yield Record(DISTRICT, record, number)
        yield from self._made_parents(len(features))

    def _district(
        self,
        feature: Any,
        code_spec: str,
        name_spec: str,
        level: str,
        code_list: str | None,
        number: int,
        seen: dict[str, int],
    ) -> dict[str, Any]:
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise invalid("#", "Not a GeoJSON Feature.")
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        code = render(code_spec, props)
        if code is None:
            raise invalid("#/id", f"No code: property {code_spec!r} is missing or empty.")
        problem = code_problem(code, code_list)
        if problem:
            raise invalid("#/id", problem + ".")
        if code in seen:
            raise invalid("#/id", f"Code {code!r} is also that of feature {seen[code]}: codes must be unique.")
        seen[code] = number
        name = render(name_spec, props)
        if name is None:
            raise invalid("#/name", f"No name: property {name_spec!r} is missing or empty.")
        record: dict[str, Any] = {"id": code, "name": name, "level": level}
        if code_list:
            record["code_list"] = code_list
        record["geometry"] = self._geometry(feature.get("geometry"))
        if self.options.get("parent"):
            parent = render(self.options["parent"], props)
            if parent is None:
                raise invalid("#/parent", f"No parent: {self.options['parent']!r} has a missing or empty property.")
            record["parent"] = parent
            if self.options.get("parent_label"):
                self._parents.setdefault(parent, {"props": props, "parts": []})["parts"].append(record["geometry"])
        return record

    def _geometry(self, geometry: Any) -> dict[str, Any]:
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise invalid("#/geometry", f"A district's geometry is a Polygon or a MultiPolygon, not {kind}.")
        try:
            shape = shapely.force_2d(shapely.from_geojson(json.dumps(geometry)))
        except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
            raise invalid("#/geometry", f"Unreadable geometry: {exc}.") from exc
        if shapely.is_empty(shape):  # its bounds are NaN: not a matter of reference system
            raise invalid("#/geometry", f"An empty {geometry['type']}: a district's boundary has coordinates.")
        minx, miny, maxx, maxy = shapely.bounds(shape).tolist()
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise invalid(
                "#/geometry",
                f"Coordinates out of WGS84 longitude/latitude (x {minx:g}…{maxx:g}, y {miny:g}…{maxy:g}): "
                "the file is in another reference system; reproject it (ogr2ogr -t_srs EPSG:4326).",
            )
        return self._checked(json.loads(shapely.to_geojson(shape)))

    def _checked(self, geojson: dict[str, Any]) -> dict[str, Any]:
        """The geometry rounded and valid, repaired if asked; rejected with GEOS's reason else."""
        try:
            return geometry_value({"type": geojson["type"], "coordinates": geojson["coordinates"]})
        except ValidationError as err:
            if str(self.options.get("repair", "")).lower() not in YES:
                raise invalid("#/geometry", f"{err.messages[0]} (repair=yes repairs it)") from err
        repaired = _polygonal(shapely.make_valid(shapely.from_geojson(json.dumps(geojson))))
        if repaired is None:
            raise invalid("#/geometry", "Not a valid polygon, and nothing of it is one once repaired.")
        try:
            return geometry_value(json.loads(shapely.to_geojson(repaired)))
        except ValidationError as err:
            raise invalid("#/geometry", f"{err.messages[0]} (even repaired)") from err

    def _made_parents(self, count: int) -> Iterator[Item]:
        """The parents the districts imply, each the union of its children (``parent_label``)."""
        o = self.options
        level = o.get("parent_level") or _level_above(o.get("level") or "other")
        for offset, (code, parent) in enumerate(sorted(self._parents.items()), start=1):
            number = count + offset  # after the features: a parent is no line of the file
            problem = code_problem(code, o.get("parent_code_list"))
            name = render(o["parent_label"], parent["props"])
            if problem or name is None:
                detail = problem or f"No name: {o['parent_label']!r} has a missing or empty property."
                yield Rejected(invalid("#/id" if problem else "#/name", detail), number, DISTRICT.name, code)
                continue
            union = shapely.union_all([shapely.from_geojson(json.dumps(g)) for g in parent["parts"]])
            record: dict[str, Any] = {"id": code, "name": name, "level": level}
            if o.get("parent_code_list"):
                record["code_list"] = o["parent_code_list"]
            try:
                record["geometry"] = self._checked(json.loads(shapely.to_geojson(_polygonal(union) or union)))
            except ValidationFailed as err:
                yield Rejected(err, number, DISTRICT.name, code)
                continue
            yield Record(DISTRICT, record, number)


def _features(raw: bytes, name: str) -> list[Any]:
    try:
        doc = parse_json(raw)
    except MalformedBody as err:
        raise MalformedBody(f"{name}: {err.detail}") from err
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise MalformedBody(f"{name}: not a GeoJSON FeatureCollection (an object with type and features)")
    crs = doc.get("crs")
    if crs is not None:
        properties = crs.get("properties") if isinstance(crs, dict) else None
        crs_name = properties.get("name") if isinstance(properties, dict) else None
        if not isinstance(crs_name, str) or crs_name.strip().lower() not in WGS84:
            raise MalformedBody(
                f"{name}: its coordinates are in {crs_name or json.dumps(crs)[:100]}; civicfed reads WGS84 "
                "longitude/latitude (CRS84) only. Reproject the file first, e.g. "
                "`ogr2ogr -f GeoJSON -t_srs EPSG:4326 out.geojson in.geojson`."
            )
    return doc["features"]


def _guess(features: list[Any], candidates: tuple[str, ...], what: str, name: str) -> str:
    """The first candidate property every feature has (with a value)."""
    props = [f.get("properties") or {} for f in features if isinstance(f, dict)]
    props = [p for p in props if isinstance(p, dict)]
    for candidate in candidates:
        if props and all(render(candidate, p) is not None for p in props):
            return candidate
    seen = sorted({k for p in props for k in p})[:40]
    raise MalformedBody(
        f"{name}: no property gives each feature's {what}; name it with the option {what}= "
        f"(a property, or a template such as {{nom}}). The properties are: {', '.join(seen) or 'none'}"
    )


def _code_of(feature: Any, code_spec: str) -> str | None:
    props = feature.get("properties") if isinstance(feature, dict) else None
    return render(code_spec, props) if isinstance(props, dict) else None


def _level_above(level: str) -> str:
    ranked = [lv for lv in LEVELS if lv != "other"]
    return ranked[ranked.index(level) - 1] if level in ranked[1:] else "other"


def _polygonal(shape: Any) -> Any:
    """The polygons of a geometry (a repaired one may hold lines and points): None if none."""
    polygons = [p for p in shapely.get_parts(shapely.get_parts(shape)) if p.geom_type == "Polygon"]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def read(data: bytes | IO[bytes], *, name: str = "boundaries.geojson", **options: str) -> BoundariesSource:
    """A boundaries source over a GeoJSON body or open binary file (options: see IMPORTER)."""
    unknown = sorted(set(options) - set(IMPORTER.options))
    if unknown:
        raise MalformedBody(f"unknown option(s) {', '.join(unknown)}: the options are {', '.join(IMPORTER.options)}")
    choose("level", options.get("level"), LEVELS)
    choose("parent_level", options.get("parent_level"), LEVELS)
    choose("code_list", options.get("code_list"), CODE_LISTS)
    choose("parent_code_list", options.get("parent_code_list"), CODE_LISTS)
    if options.get("parent_label") and not options.get("parent"):
        raise MalformedBody("option parent_label needs parent (the parent's code for each feature)")
    for key in ("code", "label", "parent", "parent_label"):
        if key in options and (options[key] == "=" or not all(template_fields(options[key]))):
            raise MalformedBody(f"option {key}: {options[key]!r} has an empty {{}} field")
    return BoundariesSource(data, name, source_id("boundaries", name), dict(options))


IMPORTER = Importer(
    "boundaries",
    "GeoJSON FeatureCollection of a territory's districts (arrondissements, quartiers, IRIS) and their boundaries",
    read,
    media_types=MEDIA_TYPES,
    options={
        "code": "Property (or {property} template) holding each district's code, its id (default: guessed).",
        "label": "Property (or template) holding each district's name (default: guessed).",
        "level": "commune, arrondissement, quartier, iris or other (default: from the code property, else other).",
        "code_list": "insee-cog, iris, lau, nuts or local: where the codes come from (default: by the code property).",
        "parent": "Property (or template, e.g. 6938{numero_arrondissement}) holding each district's parent code.",
        "parent_label": "Template of the parent's name: the importer makes each parent from its children.",
        "parent_level": "Level of the parents it makes (default: the level above).",
        "parent_code_list": "Code list of the parents' codes.",
        "repair": "yes: repair invalid polygons (make_valid) instead of rejecting them.",
    },
    snapshot=True,
)
