"""Marshmallow schemas: the single definition of each kind's JSON shape and validation.

Inputs are strict (a number is a JSON number, a boolean a JSON boolean) because silent
coercion hides bugs in the platforms that push to us. Read-only fields (``iri``,
``record_modified``…) are ignored on input so that a client can PUT back what it GOT.
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from vocabularies import concept_codes
from vocabularies.licences import DEFAULT_LICENCE, LICENCES

from ..urls import LOCAL_ID_PATTERN, TERRITORY_ID_PATTERN

# Control characters other than TAB, LF and CR are invalid in XML 1.0 (RDF/XML, SPARQL XML
# results); lone surrogates cannot be encoded at all. Refuse them at the door.
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_IRI_UNSAFE = re.compile(r'[\x00-\x20<>"{}|\\^`\x7f]')


def parse_json(raw: bytes) -> Any:
    """A JSON document, or MalformedBody saying where and why it is not one."""
    from ..errors import MalformedBody

    try:
        # UTF-8 only (RFC 8259 §8.1): json.loads would also take UTF-16 and UTF-32 bytes.
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw)
    except UnicodeDecodeError as exc:
        raise MalformedBody("the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:  # over-long numbers, absurd nesting
        raise MalformedBody(f"unreadable JSON: {str(exc)[:200]}") from exc


READ_ONLY_FIELDS = ("iri", "territory", "record_modified", "deleted", "deleted_at", "kind")


class Whole(validate.Regexp):
    """A regular expression the whole value must match.

    ``validate.Regexp`` uses ``re.match``, where ``$`` also matches before a final newline:
    ``"p1\\n"`` would pass as an identifier and break the IRI made of it.
    """

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class Documented:
    """A field whose validation refuses more than its JSON type: ``JSON_SCHEMA`` says what, in the
    field's metadata, which apispec copies into the OpenAPI document (the field's own metadata,
    a description say, comes on top). Clients and generators learn the rule; schema-valid data
    passes it."""

    JSON_SCHEMA: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["metadata"] = {**self.JSON_SCHEMA, **(kwargs.get("metadata") or {})}
        super().__init__(*args, **kwargs)


class Text(fields.String):
    """A string with no control characters; optionally a bounded length.

    The OpenAPI document says this in words (docs/api.md), not as a ``pattern``: a pattern on
    every text field made generating clients (hypothesis, schemathesis) take ~10 s and ~350 MB
    per operation, and the fuzz tests blow up with it."""

    default_error_messages = {"bad_char": "Contains a control character or an unpaired surrogate (U+{code:04X})."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        out = super()._deserialize(value, attr, data, **kwargs)
        bad = _BAD_CHARS.search(out)
        if bad:
            raise self.make_error("bad_char", code=ord(bad.group()))
        return unicodedata.normalize("NFC", out)


class Identifier(fields.String):
    """A local identifier, usable verbatim in IRIs and URLs."""

    def __init__(self, pattern: str = LOCAL_ID_PATTERN, **kwargs: Any) -> None:
        kwargs.setdefault(
            "validate",
            Whole(
                rf"^{pattern}$",
                error="Must be 1-128 characters among letters, digits and . _ ~ - , starting with a letter or digit.",
            ),
        )
        super().__init__(**kwargs)


class TerritoryId(Identifier):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "validate",
            Whole(
                rf"^{TERRITORY_ID_PATTERN}$",
                error="Must be a slug: lower-case letters, digits and inner hyphens, at most 64 characters.",
            ),
        )
        super().__init__(pattern=TERRITORY_ID_PATTERN, **kwargs)


#: A URL the ``Iri`` field accepts, as a JSON Schema pattern: http(s), a domain name with its top-level
#: domain, an optional port, and no character an IRI forbids. Narrower than what it accepts (an IP
#: address, ``localhost``, a non-ASCII domain also pass) but never wider.
IRI_PATTERN = (
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?::[0-9]{1,5})?"
    r'(?:/|[/?#][^\x00-\x20\s<>"{}|\\^`\x7F-\x9F]+)?$'
)


class Iri(Documented, fields.Url):
    """An absolute http(s) URL that can also be written as an RDF IRI."""

    MAX_LENGTH = 2048
    JSON_SCHEMA = {"format": "uri", "pattern": IRI_PATTERN, "maxLength": MAX_LENGTH}
    default_error_messages = {"iri": "Contains characters not allowed in an IRI (spaces, <, >, quotes…)."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("schemes", {"http", "https"})
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        out = super()._deserialize(value, attr, data, **kwargs)
        if _IRI_UNSAFE.search(out) or len(out) > self.MAX_LENGTH:
            raise self.make_error("iri")
        return out


class Moment(Documented, fields.AwareDateTime):
    """A date-time with its time zone, between the years 1000 and 9000 (stores and clients
    handle those; the extremes of Python's range overflow once converted to UTC)."""

    #: RFC 3339 as Python reads it (upper-case T and Z, no leap second), years 1000-9000.
    JSON_SCHEMA = {
        "pattern": (
            r"^(?:[1-8][0-9]{3}|9000)-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]+)?"
            r"(?:Z|[+-][0-9]{2}:[0-9]{2})$"
        )
    }
    default_error_messages = {"range": "Must be between the years 1000 and 9000."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        out = super()._deserialize(value, attr, data, **kwargs)
        if not 1000 <= out.year <= 9000:
            raise self.make_error("range")
        return out


#: xsd:long, the integers every store and SPARQL engine computes with (a larger one made SUM
#: over all vote counts come back empty).
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class StrictInteger(fields.Integer):
    """A JSON integer (not a string, a fraction or a boolean) within xsd:long; a field's own range
    narrows it (the OpenAPI document says both bounds). ``12.0`` is the integer 12, as JSON
    Schema's ``"type": "integer"`` has it: generated clients and validators send and pass it."""

    default_error_messages = {"invalid": "Not a valid integer."}

    def __init__(self, **kwargs: Any) -> None:
        validators = kwargs.pop("validate", None)
        validators = (
            [] if validators is None else list(validators) if isinstance(validators, list | tuple) else [validators]
        )
        super().__init__(strict=True, validate=[validate.Range(LONG_MIN, LONG_MAX), *validators], **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictNumber(fields.Float):
    """A JSON number (not a string, not a boolean)."""

    default_error_messages = {"invalid": "Not a valid number."}

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._validated(value)


class Amount(Documented, fields.Decimal):
    """A non-negative money amount: a JSON number, kept exact.

    The bound is checked here rather than with ``validate.Range`` so that the OpenAPI document
    says ``"minimum": 0`` (apispec would write the Decimal bound as the string "0").
    """

    #: Stores keep decimals in fixed precision (Virtuoso: ~40 digits); amounts have no need of more.
    MAXIMUM = Decimal("1e15")

    default_error_messages = {
        "invalid": "Not a valid amount (a JSON number is expected).",
        "negative": "Must be greater than or equal to 0.",
        "too_large": "Must be less than 10^15.",
        "too_precise": "At most 4 decimal places.",
    }

    #: The decimal places an amount may have.
    PLACES = 4
    JSON_SCHEMA = {"minimum": 0, "exclusiveMaximum": 10**15, "multipleOf": 10**-PLACES}

    def _validated(self, value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise self.make_error("invalid")
        out = super()._validated(str(value) if isinstance(value, float) else value)
        if out < 0:
            raise self.make_error("negative")
        if out >= self.MAXIMUM:
            raise self.make_error("too_large")
        if out != out.quantize(Decimal(1).scaleb(-self.PLACES)):
            raise self.make_error("too_precise")
        return out


class StrictBoolean(fields.Boolean):
    default_error_messages = {"invalid": "Not a valid boolean (true or false expected)."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Language(Documented, fields.String):
    """A BCP 47 language tag limited to language[-Script][-REGION] (fr, fr-FR, ca, zh-Hant-TW),
    normalised to its canonical case. Stores validate tags, and differ on the rarer forms."""

    JSON_SCHEMA = {"pattern": r"^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?$"}
    PATTERN = re.compile(JSON_SCHEMA["pattern"])
    default_error_messages = {"tag": "Must be a language tag such as fr, fr-FR or zh-Hant-TW."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        out = super()._deserialize(value, attr, data, **kwargs)
        m = self.PATTERN.fullmatch(out)
        if not m:
            raise self.make_error("tag")
        language, script, region = m.groups()
        return "-".join(x for x in (language.lower(), script and script.title(), region and region.upper()) if x)


def code(scheme: str, **kwargs: Any) -> fields.String:
    """A code of one of our SKOS concept schemes (see /ns)."""
    codes = concept_codes(scheme)
    metadata = {"enum": codes, "scheme": scheme, **kwargs.pop("metadata", {})}
    return fields.String(validate=validate.OneOf(codes), metadata=metadata, **kwargs)


def themes() -> fields.List:
    return fields.List(code("themes"), validate=validate.Length(max=20))


def title(required: bool = True) -> Text:
    return Text(required=required, validate=validate.Length(min=1, max=500))


def long_text() -> Text:
    return Text(validate=validate.Length(max=100_000))


# -- nested value schemas ---------------------------------------------------------------------


class Geometry(Documented, fields.Dict):
    """A GeoJSON ``Polygon`` or ``MultiPolygon`` in WGS84 longitude/latitude (RFC 7946), valid as
    simple features say (closed rings, no self-intersection: the reason GEOS gives is the error),
    its coordinates kept to 7 decimals like a point's. Holes are interior rings; a third value
    (altitude) is refused rather than silently dropped.

    JSON Schema says the shape; validity is refused with a reason (it cannot be said in a schema)."""

    #: More vertices than this is no district boundary but a mistake (or a memory bomb).
    MAX_POSITIONS = 100_000
    _POSITION: ClassVar[dict[str, Any]] = {
        "type": "array",
        "prefixItems": [
            {"type": "number", "minimum": -180, "maximum": 180},
            {"type": "number", "minimum": -90, "maximum": 90},
        ],
        "minItems": 2,
        "maxItems": 2,
    }
    _POLYGON: ClassVar[dict[str, Any]] = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "array", "minItems": 4, "items": _POSITION},
    }
    JSON_SCHEMA = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"type": {"const": name}, "coordinates": coordinates},
                "required": ["type", "coordinates"],
                "additionalProperties": False,
            }
            for name, coordinates in (
                ("Polygon", _POLYGON),
                ("MultiPolygon", {"type": "array", "minItems": 1, "items": _POLYGON}),
            )
        ]
    }
    default_error_messages = {"geometry": "{detail}"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        out = super()._deserialize(value, attr, data, **kwargs)
        return geometry_value(out, lambda detail: self.make_error("geometry", detail=detail))


def geometry_value(value: dict[str, Any], error: Any = ValidationError) -> dict[str, Any]:
    """A GeoJSON polygon or multipolygon checked and rounded (see :class:`Geometry`); ``error(detail)``
    makes the exception raised."""
    import shapely
    from shapely.errors import GEOSException

    kind, coordinates = value.get("type"), value.get("coordinates")
    if set(value) != {"type", "coordinates"}:
        raise error("Must have exactly the members type and coordinates.")
    if kind not in ("Polygon", "MultiPolygon"):
        raise error("type must be Polygon or MultiPolygon.")
    count = [0]

    def position(p: Any) -> list[float]:
        if (
            not isinstance(p, list)
            or len(p) != 2
            or any(isinstance(x, bool) or not isinstance(x, int | float) for x in p)
        ):
            raise error("A position is [longitude, latitude], two numbers.")
        lon, lat = p
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):  # NaN fails both
            raise error(f"Position {p} is not WGS84 longitude/latitude.")
        count[0] += 1
        if count[0] > Geometry.MAX_POSITIONS:
            raise error(f"More than {Geometry.MAX_POSITIONS} positions.")
        return [round(float(lon), 7), round(float(lat), 7)]

    def polygon(rings: Any) -> list[list[list[float]]]:
        if not isinstance(rings, list) or not rings:
            raise error("A polygon is a non-empty list of rings.")
        out = []
        for ring in rings:
            if not isinstance(ring, list) or len(ring) < 4:
                raise error("A ring is a list of at least 4 positions.")
            points = [position(p) for p in ring]
            if points[0] != points[-1]:
                raise error("A ring must end where it starts.")
            out.append(points)
        return out

    if kind == "Polygon":
        rounded: list[Any] = polygon(coordinates)
    else:
        if not isinstance(coordinates, list) or not coordinates:
            raise error("A multipolygon is a non-empty list of polygons.")
        rounded = [polygon(c) for c in coordinates]
    out = {"type": kind, "coordinates": rounded}
    try:
        shape = shapely.from_geojson(json.dumps(out))
        reason = None if shapely.is_valid(shape) else shapely.is_valid_reason(shape)
    except (GEOSException, ValueError) as exc:
        reason = str(exc)
    if reason:
        raise error(f"Not a valid {kind}: {reason}.")
    return out


class StrictSchema(Schema):
    #: What a schema-level validation requires, in JSON Schema where it can say it (``anyOf`` of
    #: required fields…): added to the schema's component in the OpenAPI document.
    JSON_SCHEMA: ClassVar[dict[str, Any]] = {}

    class Meta:
        unknown = RAISE


class PointSchema(StrictSchema):
    """A WGS84 point (GeoSPARQL ``POINT(lon lat)`` in RDF), kept to 7 decimals (about 1 cm)."""

    lat = StrictNumber(required=True, validate=validate.Range(-90, 90))
    lon = StrictNumber(required=True, validate=validate.Range(-180, 180))

    @post_load
    def _round(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: round(v, 7) for k, v in data.items()}


class MoneySchema(StrictSchema):
    amount = Amount(required=True)
    currency = fields.String(
        load_default="EUR",
        validate=Whole(r"^[A-Z]{3}$", error="Must be an ISO 4217 code such as EUR."),
    )


class PopulationSchema(StrictSchema):
    value = StrictInteger(required=True, validate=validate.Range(min=0))
    year = StrictInteger(required=True, validate=validate.Range(1800, 2200))
    source = Text(required=True, validate=validate.Length(min=1, max=500))
    source_url = Iri()


class PhaseSchema(StrictSchema):
    title = title()
    start_date = fields.Date()
    end_date = fields.Date()

    @validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        _check_order(data, "start_date", "end_date")


class MilestoneSchema(StrictSchema):
    date = fields.Date(required=True)
    title = title()
    description = long_text()


#: The kinds of record a comment may be about.
COMMENT_TARGETS = ("process", "proposal", "meeting", "project", "budget")


class TargetSchema(StrictSchema):
    """What a comment is about: another record of the same territory."""

    kind = fields.String(required=True, validate=validate.OneOf(COMMENT_TARGETS))
    id = Identifier(required=True)


def _check_order(data: dict[str, Any], start: str, end: str) -> None:
    if data.get(start) is not None and data.get(end) is not None and data[end] < data[start]:
        raise ValidationError(f"Must not be before {start}.", field_name=end)


# -- records ----------------------------------------------------------------------------------


class RecordSchema(StrictSchema):
    """Fields every record has."""

    id = Identifier(metadata={"description": "The territory's own identifier of the record (path segment)."})
    iri = fields.String(dump_only=True, metadata={"description": "Linked-data IRI of the record."})
    territory = fields.String(dump_only=True)
    url = Iri(metadata={"description": "Page of the record on the participation platform."})
    created = Moment(metadata={"description": "When the platform created it."})
    modified = Moment(metadata={"description": "When the platform last changed it."})
    record_modified = Moment(
        dump_only=True, metadata={"description": "When this server last wrote the record (sync cursor)."}
    )
    deleted = fields.Boolean(dump_only=True)
    deleted_at = Moment(dump_only=True)

    @pre_load
    def _drop_read_only(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}
        return data

    @validates_schema
    def _created_before_modified(self, data: dict[str, Any], **_: Any) -> None:
        _check_order(data, "created", "modified")


class AuthoredSchema(RecordSchema):
    """Records written by a participant: the identity is pseudonymised before storage."""

    author = Text(
        load_only=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "The platform's user id or display name. Never stored: pseudonymised."},
    )
    author_email = fields.Email(
        load_only=True, metadata={"description": "Used as the identity when `author` is absent; never stored."}
    )
    author_id = fields.String(
        validate=Whole(r"^[0-9a-f]{32}$", error="Must be a pseudonym issued by this server."),
        metadata={"description": "Pseudonym of the author (HMAC with the territory's secret)."},
    )


class TerritorySchema(RecordSchema):
    id = TerritoryId()
    name = title()
    country = fields.String(validate=Whole(r"^[A-Z]{2}$", error="Must be an ISO 3166-1 alpha-2 code such as FR."))
    insee_cog = fields.String(
        validate=Whole(r"^([0-9]{5}|2[AB][0-9]{3})$", error="Must be a 5-character INSEE COG code."),
        metadata={"description": "French official geographic code (commune, COG)."},
    )
    lau = fields.String(validate=Whole(r"^[A-Za-z0-9_-]{1,20}$"), metadata={"description": "EU LAU code."})
    nuts = fields.String(
        validate=Whole(r"^[A-Z]{2}[A-Z0-9]{0,3}$", error="Must be a NUTS code such as FRK26."),
    )
    wikidata = fields.String(validate=Whole(r"^Q[1-9][0-9]*$", error="Must be a Wikidata item id (Q…)."))
    population = fields.Nested(PopulationSchema)
    location = fields.Nested(PointSchema, metadata={"description": "A representative point (town hall)."})
    language = Language()
    license = fields.String(
        validate=validate.OneOf(sorted(LICENCES)),
        metadata={
            "enum": sorted(LICENCES),
            "description": f"The licence the territory's data is published under (default {DEFAULT_LICENCE}): "
            "the catalog's and the CKAN API's.",
        },
    )
    contact_email = fields.Email(
        validate=validate.Length(max=254),
        metadata={"description": "Where users of the open data write to (a service's address, not a person's)."},
    )


class DistrictSchema(RecordSchema):
    id = Identifier(
        metadata={
            "description": "Its code in its code list (INSEE COG 69381, IRIS 751010101…), or the territory's own."
        }
    )
    name = title()
    level = code("district-levels", required=True)
    code_list = code(
        "code-lists", metadata={"description": "Where the id comes from; absent when the source does not say."}
    )
    parent = Identifier(metadata={"description": "The district it is part of (an arrondissement's commune…)."})
    geometry = Geometry(metadata={"description": "Its boundary."})
    population = fields.Nested(PopulationSchema)


class ProcessSchema(RecordSchema):
    title = title()
    description = long_text()
    type = code("process-types", required=True)
    status = code("process-statuses")
    start_date = fields.Date()
    end_date = fields.Date()
    themes = themes()
    organizer = Identifier(metadata={"description": "Organization id."})
    phases = fields.List(fields.Nested(PhaseSchema), validate=validate.Length(max=50))
    language = Language()

    @validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        _check_order(data, "start_date", "end_date")


class ProposalSchema(AuthoredSchema):
    process = Identifier(required=True)
    title = title()
    body = long_text()
    themes = themes()
    status = code("proposal-statuses")
    location = fields.Nested(PointSchema)
    address = Text(validate=validate.Length(max=500))
    district = Identifier(
        metadata={"description": "District it lies in; filled from `location` on import when absent."}
    )
    handled_by = Identifier(metadata={"description": "Organization that takes the proposal up."})
    estimated_cost = fields.Nested(MoneySchema)
    vote_count = StrictInteger(
        validate=validate.Range(min=0),
        metadata={"description": "Supports reported by the platform; maintained from recorded votes once any exist."},
    )
    comment_count = StrictInteger(
        validate=validate.Range(min=0),
        metadata={
            "description": "Comments reported by the platform; maintained from recorded comments once any exist."
        },
    )
    language = Language()


class VoteSchema(RecordSchema):
    proposal = Identifier(required=True)
    voter = Text(
        load_only=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "The platform's user id of the voter. Never stored: pseudonymised."},
    )
    voter_id = fields.String(
        validate=Whole(r"^[0-9a-f]{32}$", error="Must be a pseudonym issued by this server."),
    )

    JSON_SCHEMA = {"anyOf": [{"required": ["voter"]}, {"required": ["voter_id"]}]}

    @validates_schema
    def _needs_voter(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("voter") and not data.get("voter_id"):
            raise ValidationError("A vote needs its voter (or voter_id).", field_name="voter")


class CommentSchema(AuthoredSchema):
    about = fields.Nested(TargetSchema, required=True)
    reply_to = Identifier(metadata={"description": "Comment this one answers (threading)."})
    body = Text(required=True, validate=validate.Length(min=1, max=100_000))
    alignment = StrictInteger(
        validate=validate.OneOf([-1, 0, 1]), metadata={"description": "-1 against, 0 neutral, 1 in favour."}
    )
    language = Language()


class MeetingSchema(RecordSchema):
    process = Identifier()
    title = title()
    description = long_text()
    start = Moment(required=True)
    end = Moment()
    mode = fields.String(required=True, validate=validate.OneOf(["in_person", "online", "hybrid"]))
    place_name = Text(validate=validate.Length(max=500))
    address = Text(validate=validate.Length(max=500))
    location = fields.Nested(PointSchema)
    district = Identifier(
        metadata={"description": "District it lies in; filled from `location` on import when absent."}
    )
    online_url = Iri()
    attendees_count = StrictInteger(validate=validate.Range(min=0))
    capacity = StrictInteger(validate=validate.Range(min=0))
    organizer = Identifier()
    themes = themes()
    proposals = fields.List(Identifier(), validate=validate.Length(max=1000))
    language = Language()

    # An online meeting has no place (its address may still be empty: the document is stricter).
    JSON_SCHEMA = {
        "if": {"properties": {"mode": {"const": "online"}}, "required": ["mode"]},
        "then": {"not": {"anyOf": [{"required": ["location"]}, {"required": ["address"]}]}},
    }

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        _check_order(data, "start", "end")
        if data.get("mode") == "online" and (data.get("location") or data.get("address")):
            raise ValidationError("An online meeting has no physical place; use mode 'hybrid'.", field_name="mode")


class BudgetSchema(RecordSchema):
    process = Identifier(required=True)
    title = title()
    description = long_text()
    amount = fields.Nested(MoneySchema, required=True)
    fiscal_year = StrictInteger(validate=validate.Range(1900, 2200))
    themes = themes()


class ProjectSchema(RecordSchema):
    process = Identifier()
    budget = Identifier()
    title = title()
    description = long_text()
    status = code("project-statuses")
    cost = fields.Nested(MoneySchema)
    selected = StrictBoolean()
    progress = StrictNumber(validate=validate.Range(0, 100), metadata={"description": "Percent done (2 decimals)."})

    @post_load
    def _round_progress(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("progress") is not None:
            data["progress"] = round(data["progress"], 2)
        return data

    start_date = fields.Date()
    end_date = fields.Date()
    milestones = fields.List(fields.Nested(MilestoneSchema), validate=validate.Length(max=200))
    proposals = fields.List(Identifier(), validate=validate.Length(max=1000))
    implemented_by = Identifier(metadata={"description": "Organization that carries the project out."})
    location = fields.Nested(PointSchema)
    address = Text(validate=validate.Length(max=500))
    district = Identifier(
        metadata={"description": "District it lies in; filled from `location` on import when absent."}
    )
    themes = themes()

    @validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        _check_order(data, "start_date", "end_date")


class OrganizationSchema(RecordSchema):
    name = title()
    description = long_text()
    type = code("organization-types", required=True)
    competences = fields.List(
        code("themes"), validate=validate.Length(max=20), metadata={"description": "Themes it takes ideas up in."}
    )
    parent = Identifier(metadata={"description": "Organization it is a unit of."})
    homepage = Iri()
    siren = fields.String(validate=Whole(r"^[0-9]{9}$", error="Must be a 9-digit SIREN number."))


class RuleSchema(RecordSchema):
    process = Identifier(required=True)
    title = title()
    description = long_text()
    min_votes = StrictInteger(validate=validate.Range(min=0), metadata={"description": "Supports a proposal needs."})
    allowed_themes = fields.List(code("themes"), validate=validate.Length(max=20))
    max_budget = fields.Nested(MoneySchema, metadata={"description": "Highest estimated cost receivable."})
    deadline = Moment(metadata={"description": "Proposals submitted later are not receivable."})

    # An empty allowed_themes says nothing (and is not stored: the rule would come back empty).
    JSON_SCHEMA = {
        "anyOf": [
            {"required": ["min_votes"]},
            {"required": ["allowed_themes"], "properties": {"allowed_themes": {"minItems": 1}}},
            {"required": ["max_budget"]},
            {"required": ["deadline"]},
        ]
    }

    @validates_schema
    def _says_something(self, data: dict[str, Any], **_: Any) -> None:
        if not any(data.get(k) not in (None, []) for k in ("min_votes", "allowed_themes", "max_budget", "deadline")):
            raise ValidationError(
                "A rule needs at least one of min_votes, allowed_themes, max_budget, deadline.", field_name="_schema"
            )
