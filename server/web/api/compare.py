"""``GET /api/v1/compare``: territories compared on one indicator for one period (server/indicators/
compare.py), as JSON, CSV, a Vega-Lite chart specification, or the chart as SVG or PNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response
from marshmallow import RAISE, Schema, fields, validate

from vocabularies import indicators

from ...indicators.charts import compare_spec, render
from ...indicators.compare import PER_THOUSAND, compare
from ...rdf.negotiation import Format, negotiate
from ...services import services
from ..http import json_response
from .common import blp

JSON = Format("json", "json", "application/json")
CSV = Format("csv", "csv", "text/csv")
VEGA_LITE = Format("vega-lite", "vl.json", "application/vnd.vegalite+json")
SVG = Format("svg", "svg", "image/svg+xml")
PNG = Format("png", "png", "image/png")
OFFERED = (JSON, CSV, VEGA_LITE, SVG, PNG)


class ChartArgs(Schema):
    """What every chart-making endpoint takes: per inhabitants, the chart's language, the format."""

    per = fields.String(
        validate=validate.OneOf([PER_THOUSAND]),
        metadata={"description": "`1000inhabitants`: the values per 1,000 inhabitants of the year's population."},
    )
    lang = fields.String(validate=validate.OneOf(["en", "fr"]), metadata={"description": "The chart's language."})
    format = fields.String(
        validate=validate.OneOf([f.name for f in OFFERED] + [f.suffix for f in OFFERED]),
        metadata={"description": "json, csv, vega-lite, svg or png; else the Accept header decides (JSON by default)."},
    )


class CompareArgs(ChartArgs):
    indicator = fields.String(
        required=True,
        validate=validate.OneOf(list(indicators())),
        metadata={"description": "The indicator's code (docs/indicators.md).", "example": "participants"},
    )
    territories = fields.String(
        metadata={"description": "Territory ids separated by commas (this server's and replicated ones). Default: all."}
    )
    period = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$", error="A year (2024) or a month (2024-03)."),
        metadata={"description": "A year or a month.", "example": "2024"},
    )


@blp.route("/compare", methods=["GET"], endpoint="compare")
@blp.arguments(CompareArgs, location="query", error_status_code=400, as_kwargs=False, unknown=RAISE)
@blp.doc(
    tags=["indicators"],
    summary="Compare territories on an indicator for a period (per 1,000 inhabitants if asked)",
    description=(
        "One row per territory: its value, or why it has none (`confidential`: a small count withheld; "
        "`missing`: no population known for that year; `no_data`). Also as CSV, a Vega-Lite chart "
        "specification, or the chart as SVG or PNG (`format=` or `Accept`)."
    ),
    responses={
        "200": {
            "description": "The comparison",
            "content": {f.media_type: {} for f in OFFERED},
        }
    },
)
def compare_territories(args: dict[str, Any]) -> Response:
    fmt = negotiate(OFFERED)
    records = services().records
    asked = args.get("territories")
    territories = [t for t in asked.split(",") if t] if asked else records.territory_ids()
    comparison = compare(records, args["indicator"], territories, args["period"], args.get("per"))
    return answer(fmt, comparison, lambda: compare_spec(comparison, args.get("lang", "en")))


def answer(fmt: Format, result: Any, spec: Callable[[], dict[str, Any]]) -> Response:
    """A result (with ``to_json`` and ``to_csv``) in the negotiated format; its chart's ``spec``
    made only for a chart."""
    vary = {"Vary": "Accept"}  # the format is negotiated
    if fmt is JSON:
        return json_response(result.to_json(), headers=vary)
    if fmt is CSV:
        return Response(result.to_csv(), mimetype="text/csv", headers=vary)
    made = spec()
    if fmt is VEGA_LITE:
        return json_response(made, headers={"Content-Type": VEGA_LITE.media_type, **vary})
    return Response(render(made, fmt.name), mimetype=fmt.media_type, headers=vary)
