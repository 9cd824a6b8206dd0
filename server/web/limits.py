"""Rate limits (flask-limiter): per client address for public reads, with their own budgets for
SPARQL and dumps; per API key for writes and ingests.

Every answer says where its client stands, with the IETF httpapi fields (draft-ietf-httpapi-
ratelimit-headers): ``RateLimit-Policy: "sparql";q=60;w=60`` (the quota and its window, seconds)
and ``RateLimit: "sparql";r=59;t=41`` (what remains, seconds to the reset). Past a limit the answer
is 429 with ``Retry-After``, rendered like the surface's other errors. ``RATELIMIT_ENABLED`` switches
them off (a private deployment).

Where the counts live, ``RATELIMIT_STORAGE_URI``: ``state`` (the state database, shared by every
process that uses it: ``limit_storage.py``), ``auto`` (the default: in memory while one process
serves the instance, the state database when the store is shared, so several may), or any
``limits`` storage URI (``memory://`` counts per process; ``redis://…``). If the storage fails
(the database or Redis unreachable), each process counts in memory until it answers again
(``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``) rather than failing the requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits.errors import ConfigurationError
from sqlalchemy.engine import make_url

from ..errors import TooManyRequests
from . import api, catalog, ckan, dumps, linked_data, ns, pages, sparql, void
from .http import principal
from .limit_storage import DIALECTS

READS = ("GET", "HEAD")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def client_address() -> str:
    """Who an anonymous request is: the client's address (the forwarded one behind PROXY_FIX)."""
    return request.remote_addr or "unknown"


def key_or_address() -> str:
    """Who a write is: its API key (a key's quota follows it from any address)."""
    who = principal()
    return f"key:{who.key_id}" if who is not None else f"address:{client_address()}"


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def _policy() -> str:
    """The name of the budget the request counts against."""
    if request.blueprint in ("sparql", "dumps"):
        return request.blueprint
    return "writes" if request.method in WRITES else "reads"


#: RATELIMIT_STORAGE_URI values of civicfed's own, and the schemes of their storages.
OWN_STORAGES = {"state": "civicfed+state://", "auto": "civicfed+auto://"}


def storage(app: Flask) -> tuple[str | None, dict[str, Any]]:
    """The storage URI and options flask-limiter gets for ``RATELIMIT_STORAGE_URI`` (None and no
    options: flask-limiter's own URIs, read from the configuration)."""
    config = app.config
    setting = str(config.get("RATELIMIT_STORAGE_URI") or "auto")
    if setting not in OWN_STORAGES:
        return None, {}
    strategy = config.setdefault("RATELIMIT_STRATEGY", "fixed-window")
    if strategy != "fixed-window":
        raise ConfigurationError(
            f"RATELIMIT_STORAGE_URI={setting} counts fixed windows only, not RATELIMIT_STRATEGY={strategy}: "
            "set RATELIMIT_STRATEGY=fixed-window, or give the counts to memory:// (one process) or redis://…"
        )
    backend = make_url(str(config["STATE_DB"])).get_backend_name()
    if backend not in DIALECTS:
        raise ConfigurationError(
            f"RATELIMIT_STORAGE_URI={setting} keeps the counts in the state database, which must be SQLite "
            f"or PostgreSQL, not {backend}: use memory:// (one process) or redis://…"
        )
    civicfed = app.extensions["civicfed"]  # opened on first use, not here
    options = {"services": civicfed} if setting == "auto" else {"state": lambda: civicfed.state}
    return OWN_STORAGES[setting], options


def init_app(app: Flask) -> Limiter:
    """Attach the limits to the surfaces' blueprints (after they are registered)."""
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)  # the IETF fields below instead
    uri, options = storage(app) if app.config.get("RATELIMIT_ENABLED", True) else (None, {})
    limiter = Limiter(key_func=client_address, app=app, storage_uri=uri, storage_options=options)
    reads = _setting("RATELIMIT_READS")
    for module in (linked_data, void, ns, pages, catalog):
        limiter.shared_limit(reads, scope="reads", methods=list(READS))(module.bp)
    # CKAN clients read with POST (ckanapi does): every action is a read here.
    limiter.shared_limit(reads, scope="reads", methods=["GET", "HEAD", "POST"])(ckan.bp)
    limiter.shared_limit(reads, scope="reads", methods=list(READS))(api.blp)
    limiter.limit(_setting("RATELIMIT_WRITES"), key_func=key_or_address, methods=list(WRITES), scope="writes")(api.blp)
    limiter.limit(_setting("RATELIMIT_SPARQL"), scope="sparql", methods=["GET", "POST"])(sparql.bp)
    limiter.limit(_setting("RATELIMIT_DUMPS"), scope="dumps", methods=list(READS))(dumps.bp)

    @app.after_request
    def _fields(resp: Response) -> Response:
        current = limiter.current_limit
        if current is not None:
            policy, window = _policy(), current.limit.get_expiry()
            reset = min(window, max(0, math.ceil(current.reset_at - time.time())))
            resp.headers["RateLimit-Policy"] = f'"{policy}";q={current.limit.amount};w={window}'
            resp.headers["RateLimit"] = f'"{policy}";r={max(0, current.remaining)};t={reset}'
            if current.breached:
                resp.headers["Retry-After"] = str(reset)
        return resp

    app.extensions["civicfed.limiter"] = limiter
    return limiter


__all__ = ["TooManyRequests", "init_app"]
