"""The application factory and the list of surfaces it serves."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import configure, data_dir_from_env
from .services import Civicfed
from .web import SURFACES, limits
from .web.errors import register_error_handlers


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the civicfed WSGI application."""
    data_dir = data_dir_from_env(test_config)
    app = Flask("server", instance_path=data_dir, instance_relative_config=True)
    configure(app, test_config)
    app.json.sort_keys = False  # records keep their documented field order
    app.extensions["civicfed"] = Civicfed(app)
    proxies = int(app.config["PROXY_FIX"])
    if proxies > 0:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies, x_prefix=proxies
        )  # type: ignore[method-assign]
    for surface in SURFACES:
        surface.init_app(app)
    limits.init_app(app)
    # After the surfaces: flask-smorest's Api registers an HTTPException handler of its own.
    register_error_handlers(app)
    return app
