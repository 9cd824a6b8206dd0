"""Pages for people: the home page that links every surface, and the comparison of territories."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request

from vocabularies import indicators

from .. import __version__
from ..ingest.peers import Peers
from ..services import services

bp = Blueprint("pages", __name__)


@bp.get("/")
def home() -> str:
    svc = services()
    return render_template(
        "home.html",
        territories=svc.state.territory_ids(),
        replicas=Peers(svc.state).replicas(),
        base=svc.urls.base,
        version=__version__,
    )


@bp.get("/compare")
def compare_page() -> str:
    """Choose an indicator, territories and a period; see the chart and the table (the page
    asks ``GET /api/v1/compare``; its address keeps the choice)."""
    svc = services()
    territories = svc.records.territory_ids()
    asked = request.args.get("territories")
    chosen = {
        "indicator": request.args.get("indicator", "participants"),
        "period": request.args.get("period", ""),
        "per": request.args.get("per"),
        "territories": [t for t in asked.split(",") if t] if asked else territories,
    }
    lang = request.accept_languages.best_match(["en", "fr"]) or "en"
    return render_template("compare.html", indicators=indicators(), territories=territories, chosen=chosen, lang=lang)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
