"""The mapping of a statistical table (``importers/table.py``): which column keys each row to a
district, which columns are measures, with their unit and period. Written in TOML or JSON::

    [key]
    column = "code_insee"       # the column holding each row's area code
    code_list = "insee-cog"     # insee-cog, iris, lau, nuts or local: the districts' ids
    territory = "69123"         # optional: rows with this code are about the territory itself

    [period]                    # exactly one of:
    column = "annee"            #   a column of years (2023), months (2023-05) or dates (2023-05-31)
    # value = "2023"            #   one period for every row

    [dataset]                   # optional
    title = "Populations légales"
    source_url = "https://www.insee.fr/fr/statistiques/8680726"

    [[measures]]
    column = "population"
    unit = "inhabitants"        # text, or the IRI of a unit (QUDT…)
    name = "population"         # optional: the measure's name in its IRI (default: from the column)
    label = "Population municipale"   # optional (default: the column)
    datatype = "integer"        # integer or decimal (default)
    property = "https://…"      # optional: an existing measure property instead of one minted

Errors name the mapping key at fault (``measures.0.unit``), and a column the CSV lacks is named
with the CSV's columns.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from server.errors import MalformedBody
from server.model.schemas import IRI_PATTERN, Whole

from .areas import CODE_LISTS

#: A period: a year, a month or a day (xsd:gYear, xsd:gYearMonth, xsd:date).
PERIOD_RE = re.compile(r"[0-9]{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12][0-9]|3[01]))?)?")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class KeySchema(_Strict):
    column = fields.String(required=True, validate=validate.Length(min=1))
    code_list = fields.String(required=True, validate=validate.OneOf(CODE_LISTS))
    territory = fields.String(validate=validate.Length(min=1))


class PeriodSchema(_Strict):
    column = fields.String(validate=validate.Length(min=1))
    value = fields.String(validate=Whole(f"^{PERIOD_RE.pattern}$", error="Must be YYYY, YYYY-MM or YYYY-MM-DD."))

    @validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if ("column" in data) == ("value" in data):
            raise ValidationError("Give exactly one of column and value.", field_name="column")


class DatasetSchema(_Strict):
    title = fields.String(validate=validate.Length(min=1, max=500))
    description = fields.String(validate=validate.Length(max=10_000))
    source_url = fields.String(validate=Whole(IRI_PATTERN, error="Must be an http(s) URL."))


class MeasureSchema(_Strict):
    column = fields.String(required=True, validate=validate.Length(min=1))
    unit = fields.String(required=True, validate=validate.Length(min=1, max=500))
    name = fields.String(validate=Whole(NAME_PATTERN, error="Lower-case letters, digits, _ and -, at most 63."))
    label = fields.String(validate=validate.Length(min=1, max=500))
    datatype = fields.String(load_default="decimal", validate=validate.OneOf(["integer", "decimal"]))
    property = fields.String(validate=Whole(IRI_PATTERN, error="Must be an http(s) IRI."))


class MappingSchema(_Strict):
    key = fields.Nested(KeySchema, required=True)
    period = fields.Nested(PeriodSchema, required=True)
    dataset = fields.Nested(DatasetSchema, load_default=dict)
    measures = fields.List(fields.Nested(MeasureSchema), required=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def _names(self, data: dict[str, Any], **_: Any) -> None:
        names = [measure_name(m) for m in data.get("measures", [])]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise ValidationError({i: {"name": [f"Measure name {n!r} is used twice."]}}, field_name="measures")


def measure_name(measure: Mapping[str, Any]) -> str:
    """The name of a measure in its IRI: given, or the column's as a slug."""
    if measure.get("name"):
        return str(measure["name"])
    text = unicodedata.normalize("NFKD", str(measure["column"])).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9_-]+", "-", text).strip("-_")[:63] or "measure"


def _flatten(messages: Any, path: str = "") -> list[str]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            here = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            out += _flatten(value, here)
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path or '(mapping)'}: {' '.join(messages)}"]
    return [f"{path or '(mapping)'}: {messages}"]


def load_mapping(mapping: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The mapping validated (MalformedBody naming each key at fault); text is TOML, or JSON when it
    starts with ``{``."""
    if isinstance(mapping, bytes):
        mapping = mapping.decode("utf-8", errors="replace")
    if isinstance(mapping, str):
        try:
            doc: Any = json.loads(mapping) if mapping.lstrip().startswith("{") else tomllib.loads(mapping)
        except (ValueError, RecursionError) as exc:  # also a number of 5,000 digits, arrays 1,000 deep
            raise MalformedBody(f"the mapping is neither TOML nor JSON: {str(exc)[:300]}") from exc
    else:
        doc = mapping
    if not isinstance(doc, dict):
        raise MalformedBody("the mapping must be an object (a TOML document or a JSON object)")
    try:
        return MappingSchema().load(doc)
    except ValidationError as err:
        raise MalformedBody("the mapping is not valid: " + "; ".join(_flatten(err.messages))) from err


def check_columns(mapping: dict[str, Any], columns: list[str], name: str) -> None:
    """MalformedBody naming each mapping key whose column the CSV lacks, and the CSV's columns."""
    wanted = [("key.column", mapping["key"]["column"])]
    if "column" in mapping["period"]:
        wanted.append(("period.column", mapping["period"]["column"]))
    wanted += [(f"measures.{i}.column", m["column"]) for i, m in enumerate(mapping["measures"])]
    missing = [f"{key} names {column!r}" for key, column in wanted if column not in columns]
    if missing:
        raise MalformedBody(f"{name}: no such column: {'; '.join(missing)} (its columns: {', '.join(columns)})")
