"""The field types every record schema is made of: strict numbers and booleans, text without
control characters, identifiers, IRIs, moments, amounts, languages, code lists, GeoJSON areas —
each with what it says of itself in the OpenAPI document (``Documented``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate

from vocabularies import concept_codes

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


READ_ONLY_FIELDS = ("iri", "territory", "record_modified", "deleted", "deleted_at", "kind", "origin")


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
