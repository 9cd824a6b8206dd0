"""civicfed: a federated open-data server for citizen-participation data.

``create_app`` is the application factory; ``civicfed`` (server/cli.py) is the command line.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from .config import configure, data_dir_from_env, store_options
from .errors import register_error_handlers
from .records import Records
from .state import State
from .store import Store, open_store
from .urls import Urls

__version__ = "0.1.0"


class Civicfed:
    """The services of one application: store, state database, IRIs, records.

    The store and the database open on first use, so that commands which need neither (or only
    the state database, while a server owns the embedded store) do not take their locks.
    """

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self.urls = Urls(app.config["BASE_URI"])
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._state: State | None = None
        self._records: Records | None = None
        self._sparql: Any = None

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.config["STORE"], **store_options(self.config))
        return self._store

    @property
    def state(self) -> State:
        if self._state is None:
            with self._lock:
                if self._state is None:
                    url = self.config["STATE_DB"]
                    if url.startswith("sqlite:///"):
                        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                    self._state = State(url)
        return self._state

    @property
    def records(self) -> Records:
        if self._records is None:
            store, state = self.store, self.state
            state.check_base_iri(self.urls.base)
            with self._lock:
                if self._records is None:
                    self._records = Records(store, state, self.urls, self.config["RECORD_CACHE_SIZE"])
        return self._records

    @property
    def sparql(self) -> Any:
        """The engine of the public SPARQL endpoint (killable worker processes for embedded stores)."""
        if self._sparql is None:
            store = self.store
            with self._lock:
                if self._sparql is None:
                    from .sparql_engine import RemoteEngine, SnapshotEngine

                    if store.backend == "embedded":
                        workdir = Path(self.config["DATA_DIR"]) / "snapshots"
                        self._sparql = SnapshotEngine(store, workdir, int(self.config["SPARQL_WORKERS"]))
                    else:
                        self._sparql = RemoteEngine(store)
        return self._sparql

    def open(self) -> None:
        """Open the store and the state database now, and check they belong to this instance."""
        self.records  # noqa: B018 - opening is the point

    def close(self) -> None:
        with self._lock:
            if self._sparql is not None:
                self._sparql.close()
                self._sparql = None
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._state is not None:
                self._state.close()
                self._state = None
            self._records = None


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the civicfed WSGI application."""
    data_dir = data_dir_from_env(test_config)
    app = Flask(__name__, instance_path=data_dir, instance_relative_config=True)
    configure(app, test_config)
    app.json.sort_keys = False  # records keep their documented field order
    app.extensions["civicfed"] = Civicfed(app)

    from . import api, dumps, linked_data, ns, pages, sparql, void

    api.init_app(app)
    dumps.init_app(app)
    ns.init_app(app)
    sparql.init_app(app)
    linked_data.init_app(app)
    void.init_app(app)
    pages.init_app(app)
    # After flask-smorest, whose Api registers an HTTPException handler of its own.
    register_error_handlers(app)
    return app


def services() -> Civicfed:
    """The services of the current application."""
    return current_app.extensions["civicfed"]
