"""Production serving with gunicorn (threaded workers).

The embedded Oxigraph store belongs to one process, so it is served by one worker with
several threads; pyoxigraph releases the GIL, so threads run queries in parallel. With a remote
SPARQL store, any number of worker processes share it (``--workers``).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

#: The cyclic garbage collector's thresholds in a serving worker (CPython's are 700, 10, 10). A
#: write allocates hundreds of thousands of short-lived objects (an ingest of 5,000 records: their
#: dicts, statements and contributions) and, at 700, every few thousand of them set off a
#: collection, a whole-heap one every hundred: 9% of an ingest's CPU without the indicators, 11%
#: with them (docs/benchmarks.md). The records are trees: the few cycles wait a little longer.
GC_THRESHOLDS = (20_000, 20, 20)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], load: Callable[[], Any] | None = None) -> None:
        self.options = options
        self._load = load
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings of newer gunicorn releases are skipped on older ones
                self.cfg.set(key, value)

    def load(self) -> Any:
        _answer_protocol_errors_as_problems()
        app = self._load() if self._load is not None else self._civicfed()
        _tune_gc()
        # gunicorn logs a worker's boot before the app loads; this says it can answer.
        logging.getLogger("gunicorn.error").info("worker %s ready", os.getpid())
        return app

    @staticmethod
    def _civicfed() -> Any:
        from .app import create_app

        app = create_app()
        # Open the store and check the instance now, not on the first request: a locked or
        # mismatched store fails the start, and the lock is held from the start.
        svc = app.extensions["civicfed"]
        svc.open()
        _start_import_runner(svc)
        _start_syncer(svc)
        threading.Thread(target=_apply_retention, args=(svc,), name="ldes-retention", daemon=True).start()
        threading.Thread(target=_decide_at_deadlines, args=(svc,), name="receivability", daemon=True).start()
        if app.config["CATALOG_PREPARE"]:
            threading.Thread(target=_prepare_catalog, args=(svc,), name="catalog-prepare", daemon=True).start()
        return app


def _tune_gc() -> None:
    """Collect less often (:data:`GC_THRESHOLDS`), and never scan again what loading the
    application made (modules, the app, its services): it lives as long as the worker."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _start_import_runner(svc: Any) -> None:
    """The import runner takes the runs queued by the JSON API and by `civicfed import` (which
    hands its run over while this process owns the embedded store). Runs a stopped process left
    running are marked failed first: their write never happened (one atomic commit). On a store
    several processes share, those are the runs that stopped beating (IMPORT_STALE_AFTER)."""
    from importers.runner import runner, stale_after
    from server.ingest.runs import Runs

    Runs(svc.state).fail_interrupted(stale_after(svc))
    runner(svc)


def _start_syncer(svc: Any) -> None:
    """Peers synced every SYNC_EVERY seconds, and the syncs `civicfed sync` hands over."""
    from importers.peer_sync import Syncer

    Syncer(svc).start()


def _apply_retention(svc: Any) -> None:
    """The event streams' retention policy, applied to every territory once an hour (the
    replaced versions older than LDES_FULL_LOG_DAYS removed: server/ldes/retention.py)."""
    from server.ldes.retention import prune

    log = logging.getLogger("gunicorn.error")
    while True:
        try:
            for territory in svc.state.territory_ids():
                removed = prune(svc.records, territory, svc.stream.retention)
                if removed:
                    log.info("event stream of %s: %d replaced versions past retention removed", territory, removed)
        except Exception:  # the store or the state database away for a moment: next hour
            log.exception("applying the event streams' retention failed")
        time.sleep(RETENTION_EVERY)


def _decide_at_deadlines(svc: Any) -> None:
    """Receivability decided again when a rule's deadline passes (a proposal short of supports
    when votes close turns not receivable without any write: docs/rules.md). At start, every
    process with rules: decisions the store lacks (rules older than this server) are made."""
    log = logging.getLogger("gunicorn.error")
    since: dict[str, dt.datetime] = {}  # per territory: up to when its deadlines were seen
    while True:
        try:
            territories = svc.records.territory_ids(replicas=False)
        except Exception:  # the state database away for a moment: next time
            log.exception("listing the territories to decide receivability failed")
            territories = []
        for territory in territories:
            until = dt.datetime.now(dt.UTC)
            try:  # one territory failing leaves the others decided
                last = since.get(territory)
                due = None if last is None else svc.records.due_processes(territory, last, until)
                if due is None or due:
                    changed = svc.records.decide(territory, due)
                    if changed:
                        log.info("receivability of %s: %d decisions changed", territory, changed)
                since[territory] = until
            except Exception:  # the same window next time
                log.exception("deciding the receivability of %s at its rules' deadlines failed", territory)
        time.sleep(DECIDE_EVERY)


def _prepare_catalog(svc: Any) -> None:
    """The catalog built and its pages written at start, in the background: at 10,000 datasets
    that is seconds of queries a first harvester would otherwise wait for."""
    log = logging.getLogger("gunicorn.error")
    started = time.monotonic()
    try:
        catalog = svc.prepare_catalog()
    except Exception:  # the requests build it themselves
        log.exception("preparing the catalog failed")
        return
    log.info(
        "worker %s prepared its catalog: %d datasets in %.1f s",
        os.getpid(), len(catalog.datasets), time.monotonic() - started,
    )  # fmt: skip


#: Slugs of the problems gunicorn answers itself, before the application sees the request.
#: Seconds between two applications of the event streams' retention policy.
RETENTION_EVERY = 3600
#: Seconds between two looks for rules whose deadline passed.
DECIDE_EVERY = 30

_PROTOCOL_PROBLEMS = {
    400: "bad-request",
    403: "forbidden",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "header-fields-too-large",
    500: "internal",
    501: "not-implemented",
}


def _answer_protocol_errors_as_problems() -> None:
    """gunicorn answers what it cannot parse (a request line over its limit: 414, too many or too
    large headers: 431…) with an HTML page of its own: answer RFC 9457 problem details instead,
    like every error of the application."""
    from gunicorn import util

    from .errors import PROBLEM_BASE, PROBLEM_JSON

    def write_problem(sock: Any, status: int, reason: str, detail: str) -> None:
        body = json.dumps(
            {
                "type": PROBLEM_BASE + _PROTOCOL_PROBLEMS.get(status, "http-error"),
                "title": reason,
                "status": status,
                "detail": detail or reason,
            }
        ).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin-1") + body)

    util.write_error = write_problem


def serve(
    *, host: str, port: int, threads: int = 8, workers: int = 1, access_log: bool = False, pin_cpu: bool = False
) -> None:
    """Run the server until interrupted."""
    options = gunicorn_options(
        host=host, port=port, threads=threads, workers=workers, access_log=access_log, pin_cpu=pin_cpu
    )
    _Gunicorn(options).run()


def run_wsgi(load: Callable[[], Any], **settings: Any) -> None:
    """Serve another WSGI application with the very settings of ``serve`` (the benchmark's
    bare baseline runs under the same server as civicfed)."""
    _Gunicorn(gunicorn_options(**settings), load).run()


def _pin_worker(worker: Any) -> None:
    """gunicorn's post_worker_init hook: after the app (and the store, with its own threads) is
    loaded, keep this worker's request threads on one CPU; worker n gets the n-th CPU."""
    from .cpu import pin_this_thread

    cpu = pin_this_thread(worker.age - 1)
    if cpu is not None:
        worker.log.info("request threads of worker %s on CPU %s", worker.pid, cpu)


def _close_services(arbiter: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook, in the worker once it stopped answering: close what the
    application opened. The embedded store is flushed: a worker that exits without it leaves its
    recent writes in RocksDB's write-ahead log (hundreds of MB after a large ingest), which the next
    start replays, slowly, into memory the new worker then keeps for its whole life."""
    civicfed = getattr(worker.wsgi, "extensions", {}).get("civicfed")
    if civicfed is not None:
        civicfed.close()


def gunicorn_options(
    *,
    host: str,
    port: int,
    threads: int = 8,
    workers: int = 1,
    access_log: bool = False,
    pin_cpu: bool = False,
) -> dict[str, Any]:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # Bulk ingests of large NDJSON batches take a while; don't kill the worker mid-write.
        "timeout": 600,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "civicfed",
        # gunicorn ≥ 25 opens a control socket at one fixed path per user; several servers on one
        # machine (tests, workers of several instances) would fight over it.
        "control_socket_disable": True,
        # Each worker gets its own listening socket and the kernel spreads connections evenly:
        # with one shared socket, a few workers can end up holding every keep-alive connection.
        "reuse_port": workers > 1,
        # gunicorn would trust X-Forwarded-Proto from loopback clients by default; whether a proxy
        # sets forwarded headers is the operator's to say (CIVICFED_PROXY_FIX, werkzeug's ProxyFix).
        "secure_scheme_headers": {},
        "worker_exit": _close_services,
    }
    if pin_cpu:
        options["post_worker_init"] = _pin_worker
    return options
