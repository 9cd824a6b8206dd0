"""The services of one application: store, state database, IRIs, records, the SPARQL engine.

Every surface and command reaches the data through these (``services()`` in a request or a
command), never by opening a backend itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from .catalog import Catalog, build_catalog
from .config import store_options
from .ingest.validate import Validator
from .ldes import Retention, Stream
from .records import Records
from .sparql.dataset import public_graphs
from .sparql.engine import Engine, open_engine
from .sparql.stats import Statistics
from .state import State, private_dir
from .store import Store, open_store
from .urls import Urls


class Civicfed:
    """The services of one application.

    The store and the database open on first use, so that commands which need neither (or only
    the state database, while a server owns the embedded store) do not take their locks.
    """

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self.urls = Urls(app.config["BASE_URI"])
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._stream: Stream | None = None
        self._state: State | None = None
        self._records: Records | None = None
        self._sparql: Engine | None = None
        self._statistics: Statistics | None = None
        self._public_graphs: tuple[int, list[str]] | None = None
        self._validator: Validator | None = None
        self._catalog: tuple[tuple[object, int], Catalog] | None = None
        self._catalog_lock = threading.Lock()
        #: Called with each new version of the catalog, one at a time on a thread of their own
        #: (the surfaces prepare what they serve: a harvest finds its pages written).
        self.catalog_listeners: list[Callable[[Catalog], None]] = []
        #: Called when the application closes (background work stops: the import runner…).
        self.on_close: list[Callable[[], None]] = []
        self._preparing: ThreadPoolExecutor | None = None
        self._prepared: Future[None] | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    private_dir(Path(self.config["DATA_DIR"]))
                    self._store = open_store(self.config["STORE"], **store_options(self.config))
        return self._store

    @property
    def state(self) -> State:
        if self._state is None:
            with self._lock:
                if self._state is None:
                    private_dir(Path(self.config["DATA_DIR"]))
                    self._state = State(self.config["STATE_DB"])
        return self._state

    @property
    def records(self) -> Records:
        if self._records is None:
            store, state = self.store, self.state
            state.check_base_iri(self.urls.base)
            with self._lock:
                if self._records is None:
                    self._records = Records(
                        store,
                        state,
                        self.urls,
                        self.config["RECORD_CACHE_SIZE"],
                        min_people=self.config["INDICATORS_MIN_PEOPLE"],
                        population_years=self.config["INDICATORS_POPULATION_YEARS"],
                    )
                    self._records.writer.maintain_indicators = bool(self.config["INDICATORS_MAINTAINED"])
        return self._records

    @property
    def sparql(self) -> Engine:
        """The engine of the public SPARQL endpoint (killable query processes over snapshots where
        the store takes them, else the store's own server)."""
        if self._sparql is None:
            store = self.store
            with self._lock:
                if self._sparql is None:
                    self._sparql = open_engine(
                        store,
                        Path(self.config["DATA_DIR"]) / "snapshots",
                        workers=int(self.config["SPARQL_WORKERS"]),
                        queue=int(self.config["SPARQL_QUEUE"]),
                        memory_limit=int(self.config["SPARQL_MEMORY_LIMIT"]),
                    )
        return self._sparql

    @property
    def stream(self) -> Stream:
        """The territories' event streams (LDES)."""
        if self._stream is None:
            records, config = self.records, self.config
            with self._lock:
                if self._stream is None:
                    retention = Retention(
                        dt.timedelta(days=float(config["LDES_FULL_LOG_DAYS"])),
                        dt.timedelta(days=float(config["LDES_DELETIONS_DAYS"])),
                    )
                    self._stream = Stream(records, max(1, int(config["LDES_PAGE_SIZE"])), retention)
        return self._stream

    @property
    def validator(self) -> Validator:
        """Validates the records of large ingests and imports in worker processes."""
        if self._validator is None:
            with self._lock:
                if self._validator is None:
                    self._validator = Validator(int(self.config["INGEST_WORKERS"]))
        return self._validator

    def public_graphs(self) -> list[str]:
        """The graphs public queries see (server/sparql/dataset.py holds the rule); kept while the
        store has not changed, where it can tell (listing them is a quarter of a small query's
        time on the embedded store)."""
        store = self.store
        if not store.tracks_writes:
            return public_graphs(store, self.urls)
        generation = store.generation  # read first: a write during the listing makes it stale
        cached = self._public_graphs
        if cached is None or cached[0] != generation:
            cached = self._public_graphs = (generation, public_graphs(store, self.urls))
        return cached[1]

    def statistics(self) -> dict[str, Any]:
        """Statistics of the public dataset, reused while the store has not changed (and for
        ``VOID_REFRESH`` seconds at most when it cannot tell)."""
        if self._statistics is None:
            store = self.store
            with self._lock:
                if self._statistics is None:
                    self._statistics = Statistics(store, self.urls)
        return self._statistics.get(float(self.config["VOID_REFRESH"]))

    def catalog(self) -> Catalog:
        """Every dataset the instance publishes, rebuilt for the territories this process wrote
        to since the last build (the others' datasets are kept). A store other processes may
        write to (a remote one) is also read again whole every ``VOID_REFRESH`` seconds at most,
        for their writes."""
        store = self.store
        records = self.records
        if store.tracks_writes:
            epoch: object = store.generation
        else:
            epoch = int(time.monotonic() // max(1.0, float(self.config["VOID_REFRESH"])))
        key = (epoch, sum(records.changes.values()))
        cached = self._catalog
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._catalog_lock:  # one build at a time; the others wait for it
            cached = self._catalog
            if cached is not None and cached[0] == key:
                return cached[1]
            # Read before the build: a write during it makes the result stale, not wrong.
            changes = dict(records.changes)
            territories = self.state.territory_ids()
            if cached is not None and (store.tracks_writes or cached[0][0] == epoch):  # type: ignore[index]
                seen: dict[str, int] = cached[1].derived.get("changes", {})
                changed = {t for t, n in changes.items() if seen.get(t) != n}
                catalog = build_catalog(records, territories, cached[1], changed)
            else:
                catalog = build_catalog(records, territories)
            catalog.derived["changes"] = changes
            # Keyed by what was read before the build: a write during it only makes a rebuild come.
            self._catalog = ((epoch, sum(changes.values())), catalog)
            if self.catalog_listeners:
                if self._preparing is None:
                    self._preparing = ThreadPoolExecutor(1, thread_name_prefix="catalog-prepare")
                self._prepared = self._preparing.submit(self._tell_listeners, catalog)
        return catalog

    def _tell_listeners(self, catalog: Catalog) -> None:
        for listener in self.catalog_listeners:
            try:
                listener(catalog)
            except Exception:  # a listener only prepares: a request does the work itself
                logging.getLogger(__name__).exception("preparing the catalog failed")

    def prepare_catalog(self) -> Catalog:
        """Build the catalog and wait until the surfaces have prepared what they serve from it
        (``civicfed serve`` does it in the background at start: the first harvest after a start
        does not pay for it)."""
        catalog = self.catalog()
        prepared = self._prepared
        if prepared is not None:
            prepared.result()
        return catalog

    def open(self) -> None:
        """Open the store and the state database now, and check they belong to this instance;
        prepare the SPARQL engine (which removes what a stopped server left of its snapshots)."""
        self.records  # noqa: B018 - opening is the point
        self.sparql  # noqa: B018

    def close(self) -> None:
        for stop in self.on_close:
            stop()
        self.on_close.clear()
        with self._lock:
            if self._preparing is not None:
                self._preparing.shutdown(wait=False, cancel_futures=True)
                self._preparing = None
            if self._validator is not None:
                self._validator.close()
                self._validator = None
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
            self._statistics = None
            self._public_graphs = None
            self._catalog = None


def services() -> Civicfed:
    """The services of the current application."""
    return current_app.extensions["civicfed"]
