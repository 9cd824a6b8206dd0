"""``GET /api/v1/join``: an indicator beside a measure of the territories' tables, per territory or
per district, with its correlations (server/indicators/join.py), as JSON, CSV, a Vega-Lite
scatter plot specification, or the plot as SVG or PNG. And ``GET /api/v1/territories/{t}/targets``:
the targets set on indicators beside their values (server/indicators/targets.py)."""

from __future__ import annotations

from typing import Any

from flask import Response
from marshmallow import RAISE, Schema, fields, validate

from vocabularies import indicators

from ...indicators.charts import join_spec
from ...indicators.join import ON, join
from ...indicators.targets import targets
from ...rdf.negotiation import negotiate
from ...services import services
from ..http import json_response
from .common import blp
from .compare import OFFERED, ChartArgs, answer

PERIOD = r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$"


class JoinArgs(ChartArgs):
    indicator = fields.String(
        required=True,
        validate=validate.OneOf(list(indicators())),
        metadata={"description": "The indicator's code (docs/indicators.md).", "example": "proposals"},
    )
    period = fields.String(
        required=True,
        validate=validate.Regexp(PERIOD, error="A year (2024) or a month (2024-03)."),
        metadata={"description": "The indicator's period: a year or a month.", "example": "2024"},
    )
    measure = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "The measure: an IRI, a prefixed name (`cf:inhabitants`), or a table's column name "
            "(with `dataset`).",
            "example": "cf:inhabitants",
        },
    )
    on = fields.String(
        load_default="territory",
        validate=validate.OneOf(ON),
        metadata={"description": "`territory` (a pair per territory) or `district` (a pair per district of one)."},
    )
    territories = fields.String(
        metadata={"description": "Territory ids separated by commas (default: all); exactly one with `on=district`."}
    )
    dataset = fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "Only this table's observations: an import source's id, or its qb:DataSet IRI."},
    )
    measure_period = fields.String(
        validate=validate.Regexp(r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$", error="A year, a month or a day."),
        metadata={"description": "The measure's period (default: the latest not after the indicator's)."},
    )
    level = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "With `on=district`: the districts' level (needed when there are several)."},
    )


@blp.route("/join", methods=["GET"], endpoint="join")
@blp.arguments(JoinArgs, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
@blp.doc(
    tags=["indicators"],
    summary="An indicator beside a measure of the territories' tables, with correlations",
    description=(
        "One row per territory (`on=territory`) or per district of one territory (`on=district`): the "
        "indicator's value (or why it has none) and the measure's. Pearson's and Spearman's correlations over "
        "the pairs with both, their p-values and 95% confidence intervals. Also as CSV, a Vega-Lite scatter "
        "plot specification, or the plot as SVG or PNG (`format=` or `Accept`)."
    ),
    responses={"200": {"description": "The join", "content": {f.media_type: {} for f in OFFERED}}},
)
def join_measure(args: dict[str, Any]) -> Response:
    fmt = negotiate(OFFERED)
    records = services().records
    asked = args.get("territories")
    territories = [t for t in asked.split(",") if t] if asked else records.territory_ids()
    joined = join(
        records,
        args["indicator"],
        args["period"],
        args["measure"],
        on=args["on"],
        territories=territories,
        dataset=args.get("dataset"),
        measure_period=args.get("measure_period"),
        per=args.get("per"),
        level=args.get("level"),
    )
    return answer(fmt, joined, lambda: join_spec(joined, args.get("lang", "en")))


class TargetsArgs(Schema):
    lang = fields.String(validate=validate.OneOf(["en", "fr"]), metadata={"description": "The labels' language."})


@blp.route("/territories/<territory>/targets", methods=["GET"], endpoint="targets")
@blp.arguments(TargetsArgs, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
@blp.doc(
    tags=["indicators"],
    summary="The targets of a territory, its processes and its projects, each beside the indicator's value",
    description=(
        "The `targets` of the territory's record and of its processes' and projects' records (`scope`), each with "
        "the indicator's value (`actual`, and its `status` as in /compare; a project's counted from its own records: "
        "its proposals, their votes, the comments on them or on it), `progress` (the value as a share of the "
        "target), `met` "
        "(null until it is decided: an `at_least` target on a count or an amount is met once reached and missed "
        "when its period ends below it; an `at_most` one is missed once exceeded and met when its period ends "
        "under it; a share or a median is decided when its period ends; a withheld value decides nothing)."
    ),
    responses={"404": {"description": "No such territory"}},
)
def territory_targets(args: dict[str, Any], territory: str) -> Response:
    records = services().records
    found = targets(records, territory)
    lang = args.get("lang", "en")
    body = {"territory": territory, "targets": [t.to_json(lang) for t in found]}
    return json_response(body)
