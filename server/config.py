"""Configuration: defaults → instance-folder file → ``CIVICFED_*`` environment → test overrides.

Nothing here is read at import time; :func:`configure` runs inside the application factory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from flask import Flask

#: Every setting, its default, and what it is for (documented in docs/configuration.md).
DEFAULTS: dict[str, Any] = {
    # Public base IRI of this instance: resource IRIs and absolute links start with it.
    "BASE_URI": "http://127.0.0.1:8000",
    # Where the embedded store, the SQLite state database and the config file live.
    "DATA_DIR": None,
    # A directory (embedded Oxigraph) or an http(s) SPARQL endpoint URL. Default: DATA_DIR/oxigraph.
    "STORE": None,
    # Remote store only: update and Graph Store Protocol URLs when they are not the conventional
    # ones derived from the query URL (see server/store/remote.py), credentials, limits.
    "STORE_UPDATE_URL": None,
    "STORE_GRAPH_STORE_URL": None,
    "STORE_USER": None,
    "STORE_PASSWORD": None,
    "STORE_TOKEN": None,
    "STORE_TIMEOUT": 60,
    "STORE_RETRIES": 3,
    # Larger changesets are staged into internal graphs and swapped in (bytes of SPARQL Update).
    "STORE_MAX_UPDATE_BYTES": 4 * 1024 * 1024,
    # SQLAlchemy URL of the state database. Default: sqlite:///DATA_DIR/state.sqlite3.
    "STATE_DB": None,
    # Largest request body accepted (bytes); bigger requests get 413.
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    # Longest NDJSON line an ingest reads (bytes); a longer one is refused, not parsed.
    "INGEST_MAX_LINE": 1024 * 1024,
    # Rejected lines an ingest or import report lists; the others are counted (errors_omitted).
    "INGEST_MAX_ERRORS": 1_000,
    # Processes that validate the records of a large ingest or import (2,000 records or more), so
    # that ingests into different territories run side by side; 0 validates in the request thread.
    "INGEST_WORKERS": min(2, os.cpu_count() or 1),
    # Default and largest page sizes of JSON API lists.
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 1000,
    # Records whose JSON is kept in memory per process, keyed by version (0 disables).
    "RECORD_CACHE_SIZE": 20_000,
    # Public SPARQL endpoint: seconds before a query is stopped, rows returned at most, and (embedded
    # store) how many query processes run at once.
    "SPARQL_TIMEOUT": 10,
    "SPARQL_MAX_ROWS": 10_000,
    "SPARQL_WORKERS": 2,
    # Queries that may wait for a busy worker (the others get 503 at once: request threads stay
    # free for everything else), and the memory a query process may take (bytes; 0: no cap).
    "SPARQL_QUEUE": 2,
    "SPARQL_MEMORY_LIMIT": 1024**3,
    # Seconds the VoID statistics (aggregates over every public graph) are reused at most.
    "VOID_REFRESH": 300,
    # The catalog (/catalog, DCAT-AP; the CKAN API): who publishes it (the catalog's publisher and
    # contact; each territory's datasets name the territory and its record's contact_email), the
    # licence of what is not a territory's (its own datasets use its record's `license`), the
    # page size of /catalog and its maximum. On a store that cannot say when it changed (a remote
    # one), the dataset list is rebuilt every VOID_REFRESH seconds at most.
    "CATALOG_PUBLISHER": "civicfed",
    "CATALOG_CONTACT_EMAIL": None,
    "CATALOG_LICENSE": "etalab-2.0",
    "CATALOG_PAGE_SIZE": 100,
    "CATALOG_MAX_PAGE_SIZE": 1000,
    # Build the catalog and write its pages in the background when `civicfed serve` starts.
    "CATALOG_PREPARE": True,
    # Imports of remote sources (importers/remote.py): the hosts they may be fetched from
    # (names, "*.example.org" for sub-domains, "*" for any public host; none by default),
    # whether loopback, private and link-local addresses are allowed, and a size and time limit
    # per document fetched.
    "IMPORT_ALLOWED_HOSTS": "",
    "IMPORT_ALLOW_PRIVATE": False,
    "IMPORT_MAX_BYTES": 256 * 1024 * 1024,
    "IMPORT_TIMEOUT": 30,
    "IMPORT_DEADLINE": 600,
    # On a store several processes share, a run that has not said it is alive for this many
    # seconds is dead (its process was killed): the next import or server start marks it failed.
    "IMPORT_STALE_AFTER": 60,
    # Event streams (LDES, /ldes/{territory}): members per page; every version is kept this many
    # days, the latest version of each record always, a deletion this many days; the newest page
    # (the one that still grows) may be cached this many seconds (full pages: immutable).
    "LDES_PAGE_SIZE": 250,
    "LDES_FULL_LOG_DAYS": 7,
    "LDES_DELETIONS_DAYS": 365,
    "LDES_MAX_AGE": 10,
    # Following peers (civicfed peer/sync): the largest page read from a peer's event stream, and
    # the bytes one sync reads at most (the next sync goes on from where it stopped).
    "PEER_MAX_PAGE_BYTES": 64 * 1024 * 1024,
    "PEER_MAX_BYTES": 4 * 1024 * 1024 * 1024,
    # `civicfed serve` syncs every peer this often (seconds; 0: only when `civicfed sync` asks).
    "SYNC_EVERY": 0,
    # Published indicators (docs/indicators.md): a breakdown cell (by process, district or month)
    # of an indicator counting people is withheld below this many people.
    "INDICATORS_MIN_PEOPLE": 5,
    # Values per 1,000 inhabitants use the population of the period's year, or of the nearest
    # year before within this many (a legal population is in force in the years after its
    # reference year: INSEE's populations légales three years after); 0: the same year only.
    "INDICATORS_POPULATION_YEARS": 3,
    # Whether writes keep the indicator values and their cube current. Off only for a first bulk
    # load that must go as fast as possible; `civicfed indicators verify --repair` then sets them.
    "INDICATORS_MAINTAINED": True,
    # Items of a source written per batch: a larger source is written batch by batch to a staged
    # copy of the embedded store, swapped in at the end (one transaction would hold it in memory).
    "IMPORT_BATCH": 10_000,
    # Rate limits (flask-limiter syntax: "N per second|minute|hour|day", several joined by ";"):
    # public reads per client address, with their own budgets for SPARQL and dumps; writes and
    # ingests per API key. RATELIMIT_STORAGE_URI: where the counts live — "state" (the state
    # database, shared by every process using it), "auto" (memory while one process serves the
    # instance, i.e. the embedded store; the state database when the store is shared), or a
    # limits URI (memory:// per process, redis://…). If the storage fails, each process counts in
    # memory until it is back. The state database counts fixed windows only.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "auto",
    "RATELIMIT_STRATEGY": "fixed-window",
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_READS": "1200 per minute",
    "RATELIMIT_SPARQL": "60 per minute",
    "RATELIMIT_DUMPS": "60 per minute",
    "RATELIMIT_WRITES": "1200 per minute",
    # Behind reverse proxies: how many of them set X-Forwarded-For/-Proto/-Host/-Port/-Prefix
    # (werkzeug's ProxyFix), so that links clients follow use the address they reached. 0: none
    # (the headers are ignored: a client could otherwise send them).
    "PROXY_FIX": 0,
}

CONFIG_FILE = "civicfed.cfg"


def data_dir_from_env(test_config: dict[str, Any] | None) -> str | None:
    """The data directory, needed before Flask exists (it is Flask's instance folder)."""
    value = (test_config or {}).get("DATA_DIR") or os.environ.get("CIVICFED_DATA_DIR")
    return str(Path(value).resolve()) if value else None


def configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile(CONFIG_FILE, silent=True)
    app.config.from_prefixed_env("CIVICFED")
    if test_config:
        app.config.update(test_config)
    data_dir = Path(app.config["DATA_DIR"] or app.instance_path).resolve()
    app.config["DATA_DIR"] = str(data_dir)
    app.config["BASE_URI"] = str(app.config["BASE_URI"]).rstrip("/")
    if not app.config["STORE"]:
        app.config["STORE"] = str(data_dir / "oxigraph")
    if not app.config["STATE_DB"]:
        app.config["STATE_DB"] = f"sqlite:///{data_dir / 'state.sqlite3'}"


def store_options(config: Any) -> dict[str, Any]:
    """The remote-store settings, as keyword arguments of RemoteStore."""
    return {
        "update_url": config.get("STORE_UPDATE_URL"),
        "graph_store_url": config.get("STORE_GRAPH_STORE_URL"),
        "user": config.get("STORE_USER"),
        "password": config.get("STORE_PASSWORD"),
        "token": config.get("STORE_TOKEN"),
        "timeout": float(config.get("STORE_TIMEOUT") or 60),
        "retries": int(config.get("STORE_RETRIES") or 0),
        "max_update_bytes": int(config.get("STORE_MAX_UPDATE_BYTES") or 4 * 1024 * 1024),
        # The writers of one instance (one base IRI) find what their killed peers left staged.
        "staging_scope": hashlib.sha256(str(config.get("BASE_URI") or "").encode()).hexdigest()[:16],
    }
