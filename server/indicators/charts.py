"""Charts of comparisons and joins: a Vega-Lite specification made with Altair, rendered as SVG or
PNG on the server with vl-convert (no browser). Every chart has labelled axes with their units, a
title saying what and when, and the source line; a value that is not published is shown by its
status, not as a zero."""

from __future__ import annotations

from typing import Any

import altair as alt

from .compare import Comparison
from .join import CONFIDENCE, Join

#: What a reader sees for a value that is not published.
STATUS_TEXT = {
    "confidential": ("confidential", "confidentiel"),
    "missing": ("no population", "pas de population"),
    "no_data": ("no data", "pas de données"),
}


def compare_spec(comparison: Comparison, lang: str = "en") -> dict[str, Any]:
    """A bar per territory (in the order asked), its status where it has no value."""
    fr = lang == "fr"
    names = [r.name for r in comparison.rows]
    rows = [
        {
            # A name two territories share gets their ids: one bar each.
            "territory": r.name if names.count(r.name) == 1 else f"{r.name} ({r.territory})",
            "value": float(r.value) if r.value is not None else None,
            "status": "" if r.value is not None else STATUS_TEXT[r.status][fr],
        }
        for r in comparison.rows
    ]
    order = [r["territory"] for r in rows]
    x = alt.X("territory:N", sort=order, title="Territoire" if fr else "Territory", axis=alt.Axis(labelAngle=0))
    y_title = f"{comparison.label(lang)} ({comparison.unit(lang)})"
    base = alt.Chart(alt.Data(values=rows))
    bars = base.mark_bar(color="#2b6cb0").encode(
        x=x,
        y=alt.Y("value:Q", title=y_title),
        tooltip=[alt.Tooltip("territory:N"), alt.Tooltip("value:Q", title=comparison.label(lang))],
    )
    notes = (
        base.transform_filter("datum.value === null")
        .mark_text(dy=-8, color="#666", fontStyle="italic")
        .encode(x=x, y=alt.datum(0), text="status:N")
    )
    title = alt.TitleParams(
        f"{comparison.label(lang)}, {comparison.period}", subtitle=[comparison.source()], anchor="start"
    )
    return alt.layer(bars, notes).properties(title=title, width=max(240, 60 * len(rows)), height=280).to_dict()


def render(spec: dict[str, Any], image: str) -> bytes:
    """The chart as ``svg`` or ``png``."""
    import vl_convert as vlc  # a Rust extension: loaded when a chart is asked for

    if image == "svg":
        return vlc.vegalite_to_svg(spec).encode("utf-8")
    return vlc.vegalite_to_png(spec, scale=2)


def join_spec(joined: Join, lang: str = "en") -> dict[str, Any]:
    """A point per pair (measure across, indicator up) with a least-squares line, the
    coefficients and the number of pairs under the title."""
    fr = lang == "fr"
    area = "Territoire" if fr else "Territory"
    rows = [
        {"name": r.unit.name, "measure": float(r.measure), "value": float(r.value)}  # type: ignore[arg-type]
        for r in joined.pairs
    ]
    x_unit = joined.measure_unit_label()
    x_title = joined.measure_label() + (f" ({x_unit})" if x_unit else "")
    if joined.measure_period:
        x_title += f", {joined.measure_period}"
    y_title = f"{joined.label(lang)} ({joined.unit(lang)}), {joined.period}"
    base = alt.Chart(alt.Data(values=rows))
    points = base.mark_circle(size=70, color="#2b6cb0").encode(
        x=alt.X("measure:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y("value:Q", title=y_title),
        tooltip=[
            alt.Tooltip("name:N", title=("Quartier" if fr else "District") if joined.on == "district" else area),
            alt.Tooltip("measure:Q", title=joined.measure_label()),
            alt.Tooltip("value:Q", title=joined.label(lang)),
        ],
    )
    layers: list[Any] = [points]
    if len(rows) >= 2:
        layers.append(
            base.transform_regression("measure", "value")
            .mark_line(color="#c05621", strokeDash=[4, 3])
            .encode(x="measure:Q", y="value:Q")
        )
    stats = [
        f"{'Pearson r' if c.method == 'pearson' else 'Spearman rho'} = "
        + (f"{c.coefficient:.2f}" if c.coefficient is not None else "n/d" if fr else "n/a")
        + (f" [{c.interval[0]:.2f}, {c.interval[1]:.2f}]" if c.interval else "")
        for c in joined.correlations
    ]
    if joined.on == "district":
        where = ("par " if fr else "by ") + (joined.level or "district")
    else:
        where = "par territoire" if fr else "by territory"
    intervals = f"intervalles à {int(CONFIDENCE * 100)} %" if fr else f"{int(CONFIDENCE * 100)}% intervals"
    title = alt.TitleParams(
        f"{joined.label(lang)} {'et' if fr else 'and'} {joined.measure_label()}, {where}",
        subtitle=[f"{', '.join(stats)}; n = {len(rows)} ({intervals})", joined.source()],
        anchor="start",
    )
    return alt.layer(*layers).properties(title=title, width=420, height=320).to_dict()
