"""Marshmallow schemas: the single definition of each kind's JSON shape and validation, built
from the field types of :mod:`server.model.values` (re-exported here: the rest of the code takes
them from this module).

Inputs are strict (a number is a JSON number, a boolean a JSON boolean) because silent
coercion hides bugs in the platforms that push to us. Read-only fields (``iri``,
``record_modified``…) are ignored on input so that a client can PUT back what it GOT.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from vocabularies import indicators
from vocabularies.licences import DEFAULT_LICENCE, LICENCES

from .values import (
    IRI_PATTERN,
    READ_ONLY_FIELDS,
    Amount,
    Documented,
    Geometry,
    Identifier,
    Iri,
    Language,
    Moment,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    TerritoryId,
    Text,
    Whole,
    code,
    geometry_value,
    long_text,
    parse_json,
    themes,
    title,
)

__all__ = [
    "IRI_PATTERN",
    "READ_ONLY_FIELDS",
    "Amount",
    "Documented",
    "Geometry",
    "Identifier",
    "Iri",
    "Language",
    "Moment",
    "StrictBoolean",
    "StrictInteger",
    "StrictNumber",
    "TerritoryId",
    "Text",
    "Whole",
    "code",
    "geometry_value",
    "long_text",
    "parse_json",
    "themes",
    "title",
]


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


class IndicatorTargetSchema(StrictSchema):
    """A value set for an indicator over a period (docs/indicators.md#targets)."""

    indicator = fields.String(
        required=True,
        validate=validate.OneOf(list(indicators())),
        metadata={"description": "The indicator's code (docs/indicators.md)."},
    )
    period = fields.String(
        required=True,
        validate=Whole(r"^(1[89]|2[01])[0-9]{2}(-(0[1-9]|1[0-2]))?$", error="A year (2025) or a month (2025-06)."),
        metadata={"description": "The year or month the target is for."},
    )
    value = Amount(required=True, metadata={"description": "The value aimed at, in the indicator's unit."})
    per = fields.String(
        validate=validate.OneOf(["1000inhabitants"]),
        metadata={"description": "`1000inhabitants`: the value is per 1,000 inhabitants."},
    )
    direction = fields.String(
        validate=validate.OneOf(["at_least", "at_most"]),
        metadata={"description": "`at_least` (absent: the value is to reach the target) or `at_most`."},
    )
    title = title(required=False)

    # Only indicators that have values per inhabitant take `per` (stated for the document too).
    JSON_SCHEMA = {
        "if": {"required": ["per"]},
        "then": {"properties": {"indicator": {"enum": [c for c, i in indicators().items() if i.per_inhabitants]}}},
    }

    @validates_schema
    def _per_inhabitants(self, data: dict[str, Any], **_: Any) -> None:
        found = indicators().get(data.get("indicator", ""))
        if data.get("per") and found is not None and not found.per_inhabitants:
            raise ValidationError(f"{found.code} has no value per 1,000 inhabitants.", field_name="per")


def targets() -> fields.List:
    return fields.List(
        fields.Nested(IndicatorTargetSchema),
        validate=validate.Length(max=50),
        metadata={"description": "Targets on indicators (GET /api/v1/territories/{territory}/targets)."},
    )


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
    origin = fields.String(
        dump_only=True,
        metadata={
            "description": "Only for a territory replicated from a peer: the record's URL in the JSON API "
            "of its origin server, where it is written."
        },
    )

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
    targets = targets()
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
    targets = targets()
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
    answered_at = Moment(
        metadata={
            "description": "When the territory answered it: its decision on it (accepted, rejected, not receivable…); "
            "the days from `created` to it make the indicator days_to_decision."
        }
    )
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
    targets = targets()

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
    votes_deadline = Moment(
        metadata={
            "description": "Supports count towards min_votes up to this time: a proposal short of them is "
            "pending until then, not receivable after."
        }
    )
    within = Identifier(
        metadata={
            "description": "District receivable proposals lie in: theirs is it or within it, or their "
            "location is inside its boundary."
        }
    )

    # An empty allowed_themes says nothing (and is not stored: the rule would come back empty).
    JSON_SCHEMA = {
        "anyOf": [
            {"required": ["min_votes"]},
            {"required": ["allowed_themes"], "properties": {"allowed_themes": {"minItems": 1}}},
            {"required": ["max_budget"]},
            {"required": ["deadline"]},
            {"required": ["within"]},
        ],
        # A votes deadline closes the count of min_votes.
        "if": {"required": ["votes_deadline"]},
        "then": {"required": ["min_votes"]},
    }
    CONDITIONS = ("min_votes", "allowed_themes", "max_budget", "deadline", "within")

    @validates_schema
    def _says_something(self, data: dict[str, Any], **_: Any) -> None:
        if not any(data.get(k) not in (None, []) for k in self.CONDITIONS):
            raise ValidationError(
                "A rule needs at least one of min_votes, allowed_themes, max_budget, deadline, within.",
                field_name="_schema",
            )
        if data.get("votes_deadline") is not None and data.get("min_votes") is None:
            raise ValidationError("A votes deadline closes the count of min_votes: set min_votes.", "votes_deadline")
