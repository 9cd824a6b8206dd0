"""Pages for people: the home page that links every surface."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

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


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
