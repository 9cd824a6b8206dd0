"""Rate limits (flask-limiter): per client address for public reads, with their own budgets for
SPARQL and dumps; per API key for writes and ingests.

Every answer says where its client stands, with the IETF httpapi fields (draft-ietf-httpapi-
ratelimit-headers): ``RateLimit-Policy: "sparql";q=60;w=60`` (the quota and its window, seconds)
and ``RateLimit: "sparql";r=59;t=41`` (what remains, seconds to the reset). Past a limit the answer
is 429 with ``Retry-After``, rendered like the surface's other errors. ``RATELIMIT_ENABLED`` switches
them off (a private deployment); ``RATELIMIT_STORAGE_URI`` shares the counts between processes
(``redis://…``; the default, ``memory://``, counts per process).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter

from ..errors import TooManyRequests
from . import api, dumps, linked_data, ns, pages, sparql, void
from .http import principal

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


def init_app(app: Flask) -> Limiter:
    """Attach the limits to the surfaces' blueprints (after they are registered)."""
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)  # the IETF fields below instead
    limiter = Limiter(key_func=client_address, app=app)
    reads = _setting("RATELIMIT_READS")
    for module in (linked_data, void, ns, pages):
        limiter.shared_limit(reads, scope="reads", methods=list(READS))(module.bp)
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
