"""Running an import: the one function the command line and the server call, and the server's
runner thread that takes the runs queued in the state database (by the JSON API, or by a
``civicfed import`` whose embedded store a running server owns).

A run reads its source through its importer, loads it through the shared loader with its
provenance (server/ingest/loader.py), and records progress and the report in its row of the
state database. The write is one atomic commit: a run that fails or is killed leaves the store
as it was.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import inspect
import logging
import os
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from server.errors import BadRequest, CivicfedError, NotFound, PayloadTooLarge
from server.ingest import Importer, load, open_source
from server.ingest.loader import RunInfo
from server.ingest.provenance import activity_iri
from server.ingest.runs import BEAT, DONE, FAILED, QUEUED, RUNNING, UNCHANGED, Run, Runs
from server.services import Civicfed
from server.store import StoreBusyError

from . import IMPORTERS
from .remote import Fetcher

log = logging.getLogger(__name__)

#: How often a runner with nothing to do looks for queued runs (seconds).
POLL = 0.5
#: How often a run's progress is written to the state database at most (seconds).
PROGRESS_EVERY = 0.5


def cli_agent() -> str:
    """Who asked for a run from the command line: the operator's account on the server."""
    try:
        return f"command line ({getpass.getuser()})"
    except (KeyError, OSError):
        return "command line"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def execute(svc: Civicfed, run: Run, on_progress: Callable[[int], None] | None = None) -> Run:
    """Run a claimed import to its end; its row says how it ended (done, unchanged, failed).
    Raises nothing a source can cause: a source's error is the run's ``failed`` message."""
    runs = Runs(svc.state)
    last = [0.0]

    def progress(n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            runs.progress(run.id, n)
        if on_progress is not None:
            on_progress(n)

    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(runs, run.id, stop), name=f"import-{run.id}-beat", daemon=True)
    beating.start()
    try:
        status, result, message, sha256 = _load(svc, run, progress)
    except CivicfedError as err:
        runs.finish(run.id, FAILED, message=err.detail, result={"status": err.status, "title": err.title})
    except Exception as exc:  # a bug, not the source: the run says so, the server goes on
        log.exception("import run %s failed", run.id)
        runs.finish(run.id, FAILED, message=f"internal error ({type(exc).__name__}); see the server's log")
    else:
        runs.finish(run.id, status, read=result["read"], sha256=sha256, result=result, message=message)
    finally:
        stop.set()
    finished = runs.get(run.id)
    assert finished is not None
    return finished


def _beat(runs: Runs, run_id: str, stop: threading.Event) -> None:
    """Say the run's process is alive, every BEAT seconds until the run ends: a store shared by
    several processes tells a dead run from a long one by it (``Runs.fail_interrupted``)."""
    while not stop.wait(BEAT):
        try:
            runs.beat(run_id)
        except Exception:  # the state database away for a moment: the next beat tells
            log.warning("import run %s: could not record that it is alive", run_id)


def stale_after(svc: Civicfed) -> float | None:
    """After how long without a beat a run is dead: None where no other process runs imports on
    the store (every running run is then a dead one)."""
    return float(svc.config["IMPORT_STALE_AFTER"]) if svc.store.shared else None


def _load(
    svc: Civicfed, run: Run, progress: Callable[[int], None]
) -> tuple[str, dict[str, Any], str | None, str | None]:
    importer = IMPORTERS.get(run.format)
    if importer is None:
        raise NotFound(f"unknown format {run.format!r}: use one of {', '.join(IMPORTERS)}")
    options = dict(run.options)
    dry_run = bool(options.pop("dry_run", False))
    partial = bool(options.pop("partial", importer.quarantine))
    if "max_line" in importer.options:
        options.setdefault("max_line", svc.config["INGEST_MAX_LINE"])
    fetcher = Fetcher.from_config(svc.config)
    wants = inspect.signature(importer.read).parameters
    if "fetcher" in wants:
        options["fetcher"] = fetcher
    if "territory" in wants:  # observations keyed by the territory's districts (table, population)
        options.update(territory=run.territory, urls=svc.urls)
    reads_file = reads_path(importer, run.source)
    before = Runs(svc.state).last_done(run.territory, run.format, run.source)

    @functools.cache  # asked by the run's provenance and by its report: the file read once at most
    def digest() -> str | None:
        # The source's own, which it computes while reading; else the file's, read once more.
        found = getattr(source, "sha256", None)
        return found or (file_sha256(run.path) if reads_file and run.path else None)

    with ExitStack() as stack:
        if reads_file:
            if not run.path:
                raise NotFound(f"run {run.id} has no file to read")
            stream = stack.enter_context(open(run.path, "rb"))
            source = open_source(importer, stream, name=run.source, **options)
        else:
            source = open_source(importer, run.source, **options)
        url = run.source if is_url(run.source) else None
        info = RunInfo(
            run_id=run.id,
            format=run.format,
            source_id=source.id,
            source_name=Path(run.source).name if url is None else run.source,
            source_url=url,  # the URL asked for (a source may say where it ended up: its report)
            agent=run.agent,
            started=run.started_at or dt.datetime.now(dt.UTC),
            snapshot=importer.snapshot,
            progress=progress,
            sha256=digest,
            previous_statements=None if before is None else (before.result or {}).get("statements_sha256"),
        )
        report = load(
            svc.records, run.territory, source.items(), None, source_id=source.id, partial=partial,
            dry_run=dry_run, max_errors=int(svc.config["INGEST_MAX_ERRORS"]), validator=svc.validator, run=info,
            batch=int(svc.config["IMPORT_BATCH"]),
        )  # fmt: skip
        sha256 = digest()
    result: dict[str, Any] = {"read": report.read, "bytes_fetched": fetcher.received, **report.to_dict()}
    if report.statements or report.statements_sha256:
        result.update(statements=report.statements, statements_sha256=report.statements_sha256)
    if getattr(source, "complete", True) is False:  # a paged source stopped early (max_pages…)
        result["complete"] = False
        result["stopped"] = str(getattr(source, "stopped", "") or "a limit of the source's reading was reached")
    changed = report.written and (
        any(result[k] for k in ("created", "updated", "deleted")) or report.statements_changed
    )
    if changed:
        result["activity"] = activity_iri(svc.urls, run.territory, run.id)
        return DONE, result, None, sha256
    if report.written:
        since = f" since run {before.id}" if before is not None else ""
        return UNCHANGED, result, f"no change{since}: every record of the source is stored as it is", sha256
    if dry_run and not report.rejected:
        return DONE, result, "dry run: nothing written", sha256
    detail = f"{report.rejected} item(s) rejected; nothing was written"
    return FAILED, result, detail + ("" if dry_run else " (quarantine is off for this format: use --partial)"), sha256


def uploads_dir(svc: Civicfed) -> Path:
    """Where sources given as bodies (uploads, standard input) wait for their run."""
    path = Path(svc.config["DATA_DIR"]) / "imports"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def keep_upload(svc: Civicfed, chunks: Any, limit: int | None = None) -> str:
    """Write an upload (an iterable of bytes, or a binary stream) where its run will read it;
    more than ``limit`` bytes is refused (a body sent without its length is only known to be too
    large once read that far)."""
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".source", dir=uploads_dir(svc))
    try:
        with os.fdopen(fd, "wb") as out:
            if hasattr(chunks, "read"):
                chunks = iter(lambda: chunks.read(1024 * 1024), b"")
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise PayloadTooLarge(
                        "the request body is larger than this server accepts (setting MAX_CONTENT_LENGTH)"
                    )
                out.write(chunk)
    except BaseException:  # a body over the size limit (413), a client gone: no run will read it
        Path(name).unlink(missing_ok=True)
        raise
    return name


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def reads_path(importer: Importer, source: str) -> bool:
    """Whether a run reads a file (else a name or URL the importer reads itself): a file format
    that can also fetch (a table from a portal) reads a URL it is given."""
    return importer.reads_file and not (importer.remote and is_url(source))


def start(svc: Civicfed, importer: Importer, source: str, territory: str, options: dict[str, Any]) -> tuple[Run, bool]:
    """Record a run of the command line: to run here, or, when a server owns the embedded store,
    queued for that server (True). A file is read where it is; standard input is kept first."""
    if not svc.state.has_territory(territory):
        raise NotFound(f"no territory {territory!r}")
    path = None
    if reads_path(importer, source):
        if source == "-":
            if importer.snapshot:  # its name is the source: "stdin" would be every file's
                raise BadRequest(
                    f"read a {importer.format} source from its file, not standard input: its name is how the "
                    "source is known (a new run of it deletes what it no longer gives)"
                )
            path, source = keep_upload(svc, sys.stdin.buffer), "stdin"
        else:
            with open(source, "rb"):  # a missing or unreadable file fails here, named
                pass
            path = str(Path(source).resolve())
    runs = Runs(svc.state)
    try:
        handed = False
        runs.fail_interrupted(stale_after(svc))
    except StoreBusyError:
        handed = True
    run = runs.queue(
        territory, importer.format, source, path=path, options=options, agent=cli_agent(),
        status=QUEUED if handed else RUNNING,
    )  # fmt: skip
    return run, handed  # a server's runner finds a queued run within POLL seconds


def follow(svc: Civicfed, run: Run, on_progress: Callable[[int], None] | None = None) -> Run:
    """Run a command's run here, or follow the server running it to its end. A run no server
    takes (the server stopped meanwhile) is taken back and run here once the store is free."""
    if run.status == RUNNING:
        return _finish_here(svc, run, on_progress)
    runs = Runs(svc.state)
    waited = time.monotonic()
    while True:
        current = runs.get(run.id)
        assert current is not None
        if current.finished:
            return current
        if on_progress is not None:
            on_progress(current.read)
        if time.monotonic() - waited > 5 * POLL:
            waited = time.monotonic()
            try:
                svc.store  # noqa: B018 - free again: the server is gone
            except StoreBusyError:
                continue
            if current.status == QUEUED and runs.claim_this(run.id):
                taken = runs.get(run.id)
                assert taken is not None
                return _finish_here(svc, taken, on_progress)
            runs.fail_interrupted()  # it was running in the server, which stopped: it is dead
        time.sleep(0.2)


def _finish_here(svc: Civicfed, run: Run, on_progress: Callable[[int], None] | None) -> Run:
    try:
        return execute(svc, run, on_progress)
    finally:
        _forget_upload(svc, run)


def _forget_upload(svc: Civicfed, run: Run) -> None:
    if run.path and Path(run.path).parent == uploads_dir(svc):
        Path(run.path).unlink(missing_ok=True)


class Runner:
    """The server's runner: one thread taking queued runs, one at a time (each is one atomic
    write; the store serialises writes anyway)."""

    def __init__(self, svc: Civicfed) -> None:
        self.svc = svc
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="import-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        runs = Runs(self.svc.state)
        while not self._stop.is_set():
            try:
                run = runs.claim()
            except Exception:  # the state database away for a moment: try again later
                log.exception("claiming an import run failed")
                run = None
            if run is None:
                self._wake.wait(POLL)
                self._wake.clear()
                continue
            log.info("import run %s: %s %s into %s", run.id, run.format, run.source, run.territory)
            try:
                done = _finish_here(self.svc, run, None)
            except Exception:  # the state database away when the run ended: the runner goes on
                log.exception("import run %s: its end could not be recorded", run.id)
                continue
            log.info("import run %s %s: %s", run.id, done.status, done.message or "")


#: Each application's runner (weakly: an application closed and gone takes its entry along,
#: and a new one never finds an old runner under a reused id).
_runners: weakref.WeakKeyDictionary[Civicfed, Runner] = weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


def runner(svc: Civicfed) -> Runner:
    """This application's runner, started on first use (again if it died), stopped when the
    application closes."""
    with _runners_lock:
        found = _runners.get(svc)
        if found is None:
            svc.on_close.append(lambda: _stop(svc))
        if found is None or not found.alive:
            found = _runners[svc] = Runner(svc)
            found.start()
        return found


def _stop(svc: Civicfed) -> None:
    with _runners_lock:
        found = _runners.pop(svc, None)
    if found is not None:
        found.stop()
