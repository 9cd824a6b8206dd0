"""The RDF mapping engine: field mappings that write N-Triples and read pyoxigraph terms back.

Each kind declares its mapping as a list of fields (``server/model/kinds.py``). Writing formats
N-Triples text directly (building pyoxigraph or rdflib term objects costs ~4 µs per quad, more
than Oxigraph's own write); reading takes the terms the store returns.

Structured values (a point, an amount, a counter, phases) become nodes named by hash IRIs of
the resource (``<…/proposal/p1#geometry>``), never blank nodes: a record's triples are then
exactly the triples of its IRI and of its ``#`` nodes, which makes replacing a record one
pattern delete on any SPARQL store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import shapely

from vocabularies import CF, DCT, GEO, LOCN, RDF, SDO, SF, XSD, concept_code, concept_iri

from ..store import Description
from ..urls import Urls
from .terms import (
    ESCAPES,
    canonical_datetime,
    format_datetime,
    format_decimal,
    json_number,
    literal,
    period_iri,
    period_of,
    typed,
)

MISSING: Any = object()


@dataclass
class Ctx:
    """What a mapping needs besides the record: where IRIs point, which territory, which language."""

    urls: Urls
    territory: str
    language: str | None = None


Props = dict[str, list[Any]]


def group(triples: Iterable[tuple[str, Any]]) -> Props:
    props: Props = {}
    for p, o in triples:
        props.setdefault(p, []).append(o)
    return props


class Field:
    """One JSON field ↔ some triples of the subject (and maybe of a ``#`` node)."""

    name: str
    #: The predicate linking the record to the value (filters match on it).
    predicate: str
    #: Query parameter that filters lists on this field (None: not filterable).
    filter_param: str | None = None

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        raise NotImplementedError

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        raise NotImplementedError

    def filter_term(self, value: str, ctx: Ctx) -> str:
        """The N-Triples term a filter value stands for (the object of ``predicate``)."""
        raise NotImplementedError


def _first(props: Props, predicate: str) -> Any:
    values = props.get(predicate)
    return values[0] if values else MISSING


@dataclass
class Text(Field):
    """A string; tagged with the record's language when it has one."""

    name: str
    predicate: str
    localized: bool = True

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        out.append(f"<{s}> <{self.predicate}> {literal(value, ctx.language if self.localized else None)}")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        values = props.get(self.predicate)
        if not values:
            return MISSING
        if ctx.language and len(values) > 1:
            for v in values:
                if getattr(v, "language", None) == ctx.language:
                    return v.value
        return values[0].value


_DATATYPES: dict[str, tuple[str, Callable[[Any], str], Callable[[str], Any]]] = {
    "string": (XSD.string, str, str),
    "integer": (XSD.integer, str, int),
    "decimal": (XSD.decimal, format_decimal, json_number),
    "boolean": (XSD.boolean, lambda v: "true" if v else "false", lambda s: s in ("true", "1")),
    "date": (XSD.date, lambda v: v.isoformat(), str),
    "datetime": (XSD.dateTime, format_datetime, canonical_datetime),
    "gyear": (XSD.gYear, lambda v: f"{int(v):04d}", int),
}


@dataclass
class Value(Field):
    """A typed literal (integer, decimal, boolean, date, datetime, gYear or plain string)."""

    name: str
    predicate: str
    datatype: str = "string"

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        dtype, fmt, _ = _DATATYPES[self.datatype]
        if self.datatype == "string":
            out.append(f"<{s}> <{self.predicate}> {literal(str(value))}")
        else:
            out.append(f"<{s}> <{self.predicate}> {typed(fmt(value), dtype)}")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        v = _first(props, self.predicate)
        if v is MISSING:
            return MISSING
        return _DATATYPES[self.datatype][2](v.value)


@dataclass
class Ref(Field):
    """A link to another record of the same territory, given by its local id."""

    name: str
    predicate: str
    kind: str
    many: bool = False
    filter_param: str | None = None

    def target(self, local_id: str, ctx: Ctx) -> str:
        return ctx.urls.resource(ctx.territory, self.kind, local_id)

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        for v in value if self.many else (value,):
            out.append(f"<{s}> <{self.predicate}> <{self.target(v, ctx)}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        ids = []
        for o in props.get(self.predicate, ()):
            ref = ctx.urls.parse(o.value)
            if ref and ref.kind == self.kind and ref.fragment is None:
                ids.append(ref.local_id)
        if self.many:
            return sorted(ids) if ids else MISSING
        return ids[0] if ids else MISSING

    def filter_term(self, value: str, ctx: Ctx) -> str:
        return f"<{self.target(value, ctx)}>"

    def targets(self, value: Any) -> list[str]:
        return list(value) if self.many else [value]


@dataclass
class Concept(Field):
    """A code of a SKOS scheme (ours at /ns, or an explicit code → IRI table)."""

    name: str
    predicate: str
    scheme: str
    many: bool = False
    iris: dict[str, str] | None = None
    filter_param: str | None = None

    def to_iri(self, code: str) -> str:
        return self.iris[code] if self.iris else concept_iri(self.scheme, code)

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        for code in value if self.many else (value,):
            out.append(f"<{s}> <{self.predicate}> <{self.to_iri(code)}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        codes = [c for c in (self.from_iri(o.value) for o in props.get(self.predicate, ())) if c]
        if self.many:
            return sorted(codes) if codes else MISSING
        return codes[0] if codes else MISSING

    def from_iri(self, value: str) -> str | None:
        if self.iris:
            for code, target in self.iris.items():
                if target == value:
                    return code
            return None
        return concept_code(self.scheme, value)

    def filter_term(self, value: str, ctx: Ctx) -> str:
        return f"<{self.to_iri(value)}>"


@dataclass
class Link(Field):
    """An external IRI (a web page, a homepage)."""

    name: str
    predicate: str

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        out.append(f"<{s}> <{self.predicate}> <{value}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        v = _first(props, self.predicate)
        return MISSING if v is MISSING else v.value


@dataclass
class Account(Field):
    """A pseudonymous participant account (``sioc:UserAccount``) named by its pseudonym."""

    name: str
    predicate: str

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        out.append(f"<{s}> <{self.predicate}> <{ctx.urls.account(ctx.territory, value)}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        v = _first(props, self.predicate)
        if v is MISSING:
            return MISSING
        return v.value.rsplit("/", 1)[-1]


@dataclass
class Node(Field):
    """A structured value: the ``{subject}#{suffix}`` node, with its own types and fields."""

    name: str
    predicate: str
    suffix: str
    types: tuple[str, ...]
    fields: tuple[Field, ...]

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        node = f"{s}#{self.suffix}"
        out.append(f"<{s}> <{self.predicate}> <{node}>")
        out.extend(f"<{node}> <{RDF.type}> <{t}>" for t in self.types)
        emit_fields(self.fields, node, value, ctx, out)

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        node = f"{s}#{self.suffix}"
        if node not in desc:
            return MISSING
        return read_fields(self.fields, node, group(desc[node]), desc, ctx) or MISSING


@dataclass
class NodeList(Field):
    """An ordered list of structured values: ``#{suffix}-1``, ``#{suffix}-2``… with schema:position."""

    name: str
    predicate: str
    suffix: str
    types: tuple[str, ...]
    fields: tuple[Field, ...]

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        for i, item in enumerate(value, start=1):
            node = f"{s}#{self.suffix}-{i}"
            out.append(f"<{s}> <{self.predicate}> <{node}>")
            out.extend(f"<{node}> <{RDF.type}> <{t}>" for t in self.types)
            out.append(f"<{node}> <{SDO.position}> {typed(str(i), XSD.integer)}")
            emit_fields(self.fields, node, item, ctx, out)

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        items = []
        for o in props.get(self.predicate, ()):
            node = o.value
            if node in desc:
                nprops = group(desc[node])
                pos = _first(nprops, SDO.position)
                items.append(
                    (int(pos.value) if pos is not MISSING else 0, read_fields(self.fields, node, nprops, desc, ctx))
                )
        return [item for _, item in sorted(items, key=lambda x: x[0])] if items else MISSING


@dataclass
class Point(Field):
    """A WGS84 point: GeoSPARQL WKT (lon lat order) plus schema.org latitude/longitude."""

    name: str = "location"
    suffix: str = "geometry"
    predicate: str = GEO.hasGeometry

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        node = f"{s}#{self.suffix}"
        lat, lon = format_decimal(value["lat"]), format_decimal(value["lon"])
        out += [
            f"<{s}> <{GEO.hasGeometry}> <{node}>",
            f"<{node}> <{RDF.type}> <{SF.Point}>",
            f"<{node}> <{GEO.asWKT}> {typed(f'POINT({lon} {lat})', GEO.wktLiteral)}",
            f"<{node}> <{SDO.latitude}> {typed(lat, XSD.decimal)}",
            f"<{node}> <{SDO.longitude}> {typed(lon, XSD.decimal)}",
        ]

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        node = f"{s}#{self.suffix}"
        if node not in desc:
            return MISSING
        nprops = group(desc[node])
        lat, lon = _first(nprops, SDO.latitude), _first(nprops, SDO.longitude)
        if lat is MISSING or lon is MISSING:
            return MISSING
        return {"lat": float(lat.value), "lon": float(lon.value)}


@dataclass
class Area(Field):
    """A polygon or multipolygon (GeoJSON in JSON): GeoSPARQL WKT for spatial queries, and the GeoJSON
    itself (``geo:asGeoJSON``), which is what is read back, exactly: some stores keep WKT in single
    precision (Virtuoso), and a boundary that came back changed would be rewritten at every sync."""

    name: str = "geometry"
    suffix: str = "geometry"
    predicate: str = GEO.hasGeometry

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        node = f"{s}#{self.suffix}"
        text = json.dumps(value, separators=(",", ":"))
        wkt = shapely.to_wkt(shapely.from_geojson(text), rounding_precision=7, trim=True, output_dimension=2)
        out += [
            f"<{s}> <{GEO.hasGeometry}> <{node}>",
            f"<{node}> <{RDF.type}> <{SF[value['type']]}>",
            f"<{node}> <{GEO.asWKT}> {typed(wkt, GEO.wktLiteral)}",
            f"<{node}> <{GEO.asGeoJSON}> {typed(text.translate(ESCAPES), GEO.geoJSONLiteral)}",
        ]

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        node = f"{s}#{self.suffix}"
        if node not in desc:
            return MISSING
        v = _first(group(desc[node]), GEO.asGeoJSON)
        return MISSING if v is MISSING else json.loads(v.value)


@dataclass
class Address(Field):
    """A postal address as one line (``locn:Address`` / ``locn:fullAddress``)."""

    name: str = "address"
    suffix: str = "address"
    predicate: str = LOCN.address

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        node = f"{s}#{self.suffix}"
        out += [
            f"<{s}> <{LOCN.address}> <{node}>",
            f"<{node}> <{RDF.type}> <{LOCN.Address}>",
            f"<{node}> <{LOCN.fullAddress}> {literal(value)}",
        ]

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        node = f"{s}#{self.suffix}"
        if node not in desc:
            return MISSING
        v = _first(group(desc[node]), LOCN.fullAddress)
        return MISSING if v is MISSING else v.value


def money(name: str, predicate: str, suffix: str) -> Node:
    return Node(
        name,
        predicate,
        suffix,
        (SDO.MonetaryAmount,),
        (Value("amount", SDO.value, "decimal"), Value("currency", SDO.currency)),
    )


@dataclass
class Counter(Field):
    """A count published as a ``schema:InteractionCounter`` (votes, comments, attendees)."""

    name: str
    suffix: str
    action: str
    predicate: str = SDO.interactionStatistic

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        node = f"{s}#{self.suffix}"
        out += [
            f"<{s}> <{SDO.interactionStatistic}> <{node}>",
            f"<{node}> <{RDF.type}> <{SDO.InteractionCounter}>",
            f"<{node}> <{SDO.interactionType}> <{self.action}>",
            f"<{node}> <{SDO.userInteractionCount}> {typed(str(int(value)), XSD.integer)}",
        ]

    def node(self, s: str) -> str:
        return f"{s}#{self.suffix}"

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        node = f"{s}#{self.suffix}"
        if node not in desc:
            return MISSING
        v = _first(group(desc[node]), SDO.userInteractionCount)
        return MISSING if v is MISSING else int(v.value)


def emit_fields(spec: Iterable[Field], s: str, data: dict[str, Any], ctx: Ctx, out: list[str]) -> None:
    for f in spec:
        value = data.get(f.name)
        if value is None or value == [] or value == "":
            continue
        f.emit(s, value, ctx, out)


def read_fields(spec: Iterable[Field], s: str, props: Props, desc: Description, ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in spec:
        value = f.read(s, props, desc, ctx)
        if value is not MISSING:
            out[f.name] = value
    return out


@dataclass
class Mapping:
    """How one kind of record is written to RDF and read back."""

    types: tuple[str, ...]
    fields: tuple[Field, ...]
    #: Extra triples derived from the record for consumers (CCCEV structure, exactMatch links…),
    #: written but never read back: the fields above are the record.
    extras: Callable[[str, dict[str, Any], Ctx, list[str]], None] | None = None
    by_name: dict[str, Field] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in self.fields}

    def to_ntriples(self, s: str, data: dict[str, Any], ctx: Ctx) -> list[str]:
        out = [f"<{s}> <{RDF.type}> <{t}>" for t in self.types]
        territory = ctx.urls.territory(ctx.territory)
        if s != territory:  # every record says which territory it belongs to, but the territory itself
            out.append(f"<{s}> <{CF.territory}> <{territory}>")
        emit_fields(self.fields, s, data, ctx, out)
        if self.extras:
            self.extras(s, data, ctx, out)
        return out

    def from_description(self, s: str, desc: Description, ctx: Ctx) -> dict[str, Any]:
        props = group(desc.get(s, ()))
        lang = _first(props, DCT.language)
        if lang is not MISSING:
            ctx = Ctx(ctx.urls, ctx.territory, lang.value)
        return read_fields(self.fields, s, props, desc, ctx)


@dataclass
class Wrapped(Field):
    """A single value carried by a typed ``#`` node (a place's name, a SIREN identifier…)."""

    name: str
    predicate: str
    suffix: str
    types: tuple[str, ...]
    inner: Field

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        node = f"{s}#{self.suffix}"
        out.append(f"<{s}> <{self.predicate}> <{node}>")
        out.extend(f"<{node}> <{RDF.type}> <{t}>" for t in self.types)
        self.inner.emit(node, value, ctx, out)

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        node = f"{s}#{self.suffix}"
        if node not in desc:
            return MISSING
        return self.inner.read(node, group(desc[node]), desc, ctx)


@dataclass
class Target(Field):
    """A link to a record of another kind given as ``{"kind": …, "id": …}`` (what a comment is about)."""

    name: str
    predicate: str
    filter_param: str | None = None
    #: The kinds it may name.
    kinds: tuple[str, ...] = ()

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        out.append(f"<{s}> <{self.predicate}> <{ctx.urls.resource(ctx.territory, value['kind'], value['id'])}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        for o in props.get(self.predicate, ()):
            ref = ctx.urls.parse(o.value)
            if ref and ref.kind and ref.fragment is None:
                return {"kind": ref.kind, "id": ref.local_id}
        return MISSING

    def filter_term(self, value: str, ctx: Ctx) -> str:
        kind, _, local_id = value.partition("/")
        return f"<{ctx.urls.resource(ctx.territory, kind, local_id)}>"


@dataclass
class Period(Field):
    """A year or a month, as its reference interval IRI (records/cube.py names its periods so)."""

    name: str
    predicate: str

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        out.append(f"<{s}> <{self.predicate}> <{period_iri(value)}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        for o in props.get(self.predicate, ()):
            period = period_of(o.value)
            if period is not None:
                return period
        return MISSING


@dataclass
class Matched(Field):
    """A code that is also the tail of an authority IRI, linked with ``skos:exactMatch`` (Wikidata)."""

    name: str
    predicate: str
    prefix: str

    def emit(self, s: str, value: Any, ctx: Ctx, out: list[str]) -> None:
        out.append(f"<{s}> <{self.predicate}> <{self.prefix}{value}>")

    def read(self, s: str, props: Props, desc: Description, ctx: Ctx) -> Any:
        for o in props.get(self.predicate, ()):
            if o.value.startswith(self.prefix):
                return o.value[len(self.prefix) :]
        return MISSING
