"""Faults caused for real: kill -9 in the middle of a write, a disk that fills up.

Nothing here is simulated. The server (or the import command) is a real process, killed with
SIGKILL at a moment chosen by watching it work: its request sent, the store's write-ahead log
growing, a remote store receiving staging graphs, the source file half read. The full disk is a
real tmpfs filled to its last block and inode. After a kill the store must hold exactly what it
held before the write, or exactly what the whole write makes of it (record times aside, which
differ from run to run), never a mix, once the indicator values a kill may have left marked as
pending are counted again, as the territory's next write does first; the server must start again
on it and write. On a full
disk, writes and queries answer 503, nothing changes, and both work again once there is room.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from pyoxigraph import RdfFormat

from importers import IMPORTERS
from importers.demo import DEMO_TERRITORIES, generate, territory_record
from server.app import create_app
from server.ingest import load
from server.model.examples import RECORDS
from server.services import Civicfed
from server.store import open_store
from server.store.base import StoreError
from server.store.remote import STAGING_PREFIX
from vocabularies import AS, CF, DCT, PROV

from .conftest import (
    BASE,
    ROOT,
    LiveServer,
    drop_own_graphs,
    need,
    running_server,
    snapshot,
    spawn,
    start_server,
    stop_process,
    stop_server,
    subprocess_env,
    unique_base,
)

# Every test here starts processes (servers, the civicfed command): not in make test-fast.
pytestmark = pytest.mark.live

LYON, GRENOBLE, RENNES = DEMO_TERRITORIES

#: How long a killed write may take to reach its kill point (the ingest itself takes ~2 s).
KILL_DEADLINE = 120.0


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


@cache
def initial_lyon() -> bytes:
    """Lyon's records before the faults: the demo's, without votes (the bulk ingest brings votes
    of its own, and one voter may vote once per proposal)."""
    return ndjson([r for r in generate(LYON, scale=1) if r["kind"] != "vote"])


@cache
def bulk() -> bytes:
    """The ingest the server is killed in: ~3,000 lines, ~29,000 quads, 2-3 s of work. Into lyon it
    replaces ~170 records and adds the rest (a write with deletions: one SPARQL update on the
    embedded store); into the empty grenoble it only adds (one N-Quads load)."""
    return ndjson(list(generate(LYON, scale=2)))


@cache
def nightly() -> bytes:
    """The import the command is killed in: the demo's lyon again, its votes included (~1,100
    lines), as a nightly re-import sends it: most records unchanged, ~1,500 votes added and the
    proposals' vote counts rewritten."""
    return ndjson(list(generate(LYON, scale=1)))


# -- the instance under test, opened between the faults (its server stopped) -----------------------


@dataclass
class Instance:
    """An instance's data directory, base IRI and store: what a server is started on, and what
    the test opens in process between the faults, with no server running."""

    data_dir: Path
    base: str
    store_url: str | None

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "DATA_DIR": str(self.data_dir),
            "BASE_URI": self.base,
            "STATE_DB": f"sqlite:///{self.data_dir / 'state.sqlite3'}",
            "RATELIMIT_ENABLED": False,
        }
        if self.store_url:
            settings["STORE"] = self.store_url
        return settings

    @contextmanager
    def services(self) -> Iterator[Civicfed]:
        app = create_app(self.settings)
        svc: Civicfed = app.extensions["civicfed"]
        try:
            with app.app_context():
                yield svc
        finally:
            svc.close()

    def prepare(self) -> dict[str, str]:
        """lyon with the demo's records, grenoble and rennes empty; an editor key of each."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = {}
        with self.services() as svc:
            for spec in (LYON, GRENOBLE, RENNES):
                svc.records.create_territory(territory_record(spec))
                keys[spec.id] = svc.state.create_key(spec.id, "editor")[1]
            report = ingest(svc, "lyon", initial_lyon(), None)
            assert report["written"], report
        return keys

    def state(self) -> bytes:
        """Every quad of the instance (conftest.snapshot: public, private, index and staging graphs),
        once the store has settled: a remote store may still be applying a request the killed
        process sent."""
        with self.services() as svc:
            now = self._snapshot(svc)
            while self.store_url:
                time.sleep(0.5)
                now, last = self._snapshot(svc), now
                if now == last:
                    break
        return now

    def _snapshot(self, svc: Civicfed) -> bytes:
        """conftest.snapshot; on a remote store a graph listed may be gone when it is read (the
        killed process's last request, dropping a staging graph, still being applied): the store
        has not settled yet, read it again (seen in CI, under a parallel run)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return snapshot(svc)
            except StoreError:
                if not self.store_url or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def serve(self) -> LiveServer:
        return start_server(self.data_dir, self.store_url, extra_env={"CIVICFED_BASE_URI": self.base}, demo=False)

    def watch(self) -> StoreWatch:
        return StoreWatch(self.data_dir / "oxigraph", self.store_url)

    def drop(self) -> None:
        """On a shared store, the test's graphs go (the embedded store goes with tmp_path)."""
        if self.store_url:
            with self.services() as svc:
                drop_own_graphs(svc)


class StoreWatch:
    """What a write running in another process does to the store, seen from outside: on the
    embedded store, its write-ahead log (where a transaction commits, in one record, before the
    write returns); on a remote store, the staging graphs a large write is posted into before one
    update swaps them in."""

    #: A log still for this long after growing: the transaction has committed (RocksDB appends a
    #: record in 1 MiB writes, far less than this apart).
    QUIET = 0.02

    def __init__(self, store_dir: Path, store_url: str | None) -> None:
        self.store_dir = store_dir
        self.remote = open_store(store_url) if store_url else None
        self.start = self.last = self._size()
        self.changed_at = time.monotonic()
        self.staged = False

    def _size(self) -> int:
        if self.remote is not None:
            return 0
        size = 0
        for entry in os.scandir(self.store_dir):
            if entry.name.endswith(".log"):  # RocksDB's write-ahead logs (its text log is LOG)
                with suppress(FileNotFoundError):  # a log RocksDB retired meanwhile
                    size += entry.stat().st_size
        return size

    def _staging(self) -> bool:
        assert self.remote is not None
        return any(g.startswith(STAGING_PREFIX) for g in self.remote.graphs())

    def writing(self) -> bool:
        """The write has begun to reach the store (the log grows; staging graphs exist)."""
        if self.remote is not None:
            self.staged = self.staged or self._staging()
            return self.staged
        return self._size() > self.start

    def written(self) -> bool:
        """The write has reached the store and is over there (the log grew, then stayed still;
        staging graphs came, then went in the swap)."""
        if self.remote is not None:
            staging = self._staging()
            self.staged = self.staged or staging
            return self.staged and not staging
        size, now = self._size(), time.monotonic()
        if size != self.last:
            self.last, self.changed_at = size, now
        return size > self.start and now - self.changed_at >= self.QUIET


def make_instance(data_dir: Path, store_url: str | None) -> Instance:
    return Instance(data_dir, unique_base("faults") if store_url else BASE, store_url)


def ingest(svc: Civicfed, territory: str, body: bytes, key: str | None) -> dict[str, Any]:
    """The ingest route's work, in process: ``key``'s holder writes (None: the operator)."""
    principal = svc.state.principal(key) if key else None
    source = IMPORTERS["ndjson"].read(body)
    return load(svc.records, territory, source.items(), principal, source_id=source.id).to_dict()


# -- before or after ---------------------------------------------------------------------------

#: Predicates whose values are the time of the write (record times, deletion times, when a
#: receivability decision was made or ended): with the decisions' IRIs (named by that time,
#: ``…/receivability/{t}/{p}#{µs}``), the only parts in which two runs of one write differ.
WRITE_TIMES = {
    f"<{p}>".encode()
    for p in (CF.recordModified, CF.recordCreated, CF.recordDeleted, AS.deleted, PROV.generatedAtTime,
              PROV.invalidatedAtTime)
}  # fmt: skip
QUAD = re.compile(rb"^(<[^>]*>) (<[^>]*>) (<[^>]*>) (.*) \.$")
DECISION = re.compile(rb"(/receivability/[^#>]+#)[0-9]+")


def timeless(state: bytes) -> list[bytes]:
    """A state's quads (conftest.snapshot lines: graph first) with the write times blanked."""
    out = []
    for line in state.splitlines():
        m = QUAD.match(line)
        assert m, line
        line = m[1] + b" " + m[2] + b" " + m[3] + b' "*" .' if m[3] in WRITE_TIMES else line
        out.append(DECISION.sub(rb"\1*", line))
    return sorted(out)


def nquads(state: bytes) -> bytes:
    """conftest.snapshot lines (``<g> s p o .``) as N-Quads (``s p o <g> .``), to load them back."""
    out = []
    for line in state.splitlines():
        graph, triple = line.split(b" ", 1)
        out.append(triple.removesuffix(b" .") + b" " + graph + b" .\n")
    return b"".join(out)


def assert_only_about(now: bytes, before: bytes, iri: str) -> None:
    """``now`` is ``before`` with one record written: they differ, and only in quads about it."""
    differ = set(now.splitlines()) ^ set(before.splitlines())
    assert differ, f"the write of {iri} is missing"
    # The version the write replaced joins the history of the event stream, under its own IRI.
    versions = {
        QUAD.match(line)[2].decode().strip("<>")  # type: ignore[index]
        for line in differ
        if f"<{DCT.isVersionOf}> <{iri}>".encode() in line and b"/_internal/history/" in line
    }
    for line in differ:
        subject = QUAD.match(line)[2].decode().strip("<>").split("#")[0]  # type: ignore[index]
        assert subject == iri or subject in versions, line


def differences(found: list[bytes], expected: list[bytes], limit: int = 8) -> str:
    extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    lines = [f"{len(extra)} quads too many, {len(missing)} missing"]
    lines += ["+ " + q.decode(errors="replace")[:300] for q in extra[:limit]]
    lines += ["- " + q.decode(errors="replace")[:300] for q in missing[:limit]]
    return "\n".join(lines)


def written(instance: Instance, before: bytes, territory: str, body: bytes, key: str | None) -> bytes:
    """The state the whole write makes of ``before``: the store is put back in ``before`` and the
    same write runs to its end, in process, on the same store and state database (same backend,
    same territory secrets, so the same pseudonyms). Leaves the store in that state."""
    with instance.services() as svc:
        graphs = [g for g in svc.store.graphs() if svc.urls.is_own_graph(g)]
        if graphs:  # one request: conftest.drop_own_graphs sends one per graph
            svc.store.update(" ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in graphs))
        if before:
            svc.store.load(nquads(before), RdfFormat.N_QUADS)
        assert snapshot(svc) == before
        report = ingest(svc, territory, body, key)
        assert report["written"], report
        return snapshot(svc)


def settled(instance: Instance, territory: str, now: bytes) -> bytes:
    """The state once the territory's next write has done what it does first: a write's
    indicator values follow its records in writes of their own, and a kill between them leaves a
    marker; the values are then counted again from the records (Writer.repair_indicators)."""
    with instance.services() as svc:
        if not svc.records.writer.cells.pending(territory):
            return now
        with svc.state.write_lock(territory):
            svc.records.writer.repair_indicators(territory)
    return instance.state()


def check_before_or_after(
    instance: Instance, before: bytes, territory: str, body: bytes, key: str | None, what: str, leftovers: list[str]
) -> tuple[str, bytes]:
    """Whether the store holds the state before the write or the whole write, and what it holds.
    Staging graphs a killed writer left in a remote store are added to ``leftovers``: the next
    writer of the instance drops them before its first write, as checked here."""
    now = instance.state()
    if instance.store_url:
        with instance.services() as svc:
            scope = f"{STAGING_PREFIX}{svc.store.staging_scope}:"  # type: ignore[attr-defined]
            left = [g for g in svc.store.graphs() if g.startswith(scope)]
            if left:
                leftovers += left
                with svc.state.commit_lock():  # what Writer.write does once per process
                    swept = svc.store.discard_leftovers()
                registry = svc.store.staging_registry  # type: ignore[attr-defined]
                assert set(left) - {registry} <= set(swept), (left, swept)
                assert not [g for g in svc.store.graphs() if g.startswith(scope)]
        now = instance.state() if left else now
    now = settled(instance, territory, now)
    if now == before:
        return "before", now
    after = written(instance, before, territory, body, key)
    if timeless(now) != timeless(after):
        raise AssertionError(
            f"killed {what}, the store holds neither the state before the write nor the state after it: "
            f"against after, {differences(timeless(now), timeless(after))}; "
            f"against before, {differences(timeless(now), timeless(before))}"
        )
    # The store now holds ``after``: the same as what the kill left but for record times.
    return "after", after


def kill_group_when(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    ended: Callable[[], bool] = lambda: False,
    *,
    may_end: bool = False,
    log: Path | None = None,
) -> None:
    """SIGKILL ``process`` and its whole group (a server's worker, query and validating processes)
    the moment ``ready()`` holds; fail if the work ``ended()`` first (no fault would be injected),
    or the process exited, unless ``may_end`` and it exited with success."""
    deadline = time.monotonic() + KILL_DEADLINE
    while not ready():
        assert not ended(), "the write ended before the kill point: no fault was injected"
        if may_end and process.poll() == 0:
            return
        if process.poll() is not None:
            said = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"the process exited with {process.returncode} before the kill point: {said}")
        assert time.monotonic() < deadline, f"the kill point was not reached within {KILL_DEADLINE:g} s"
        time.sleep(0.001)
    with suppress(ProcessLookupError):  # it ended between the last look and now: the write is done
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def kill_during_ingest(server: LiveServer, watch: StoreWatch, territory: str, key: str, point: str) -> int | None:
    """Send the bulk ingest and kill the server at ``point``: ``sent`` (the body sent), ``writing``
    (the write reaching the store), ``written`` (the write over in the store, or at the latest
    when the server answers). The status of the answer, None if there was none."""
    url = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=KILL_DEADLINE)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    conn.request("POST", f"/api/v1/territories/{territory}/ingest", body=bulk(), headers=headers)
    # Returns once the whole body is sent: the server reads it whole before it works on it.

    def answered() -> bool:  # the socket is readable: an answer, or the connection closed
        return bool(select.select([conn.sock], [], [], 0)[0])

    if point == "written":
        kill_group_when(server.process, lambda: watch.written() or answered())
    else:
        kill_group_when(server.process, watch.writing if point == "writing" else lambda: True, answered)
    try:
        return conn.getresponse().status
    except (http.client.HTTPException, OSError):
        return None  # killed before it answered
    finally:
        conn.close()


# -- kill -9 -----------------------------------------------------------------------------------


def test_kill_9_during_an_ingest_leaves_the_data_before_or_after(tmp_path: Path, remote_store_url: str | None) -> None:
    """The server's process group is killed during a bulk ingest, at three points: its body just
    sent (the server reading and checking it); the store's log beginning to grow, a write that
    replaces records committing; the log grown and still, a write that adds records committed
    (a write made of several transactions would be caught half-way there). Each time the data
    is the state before the ingest or after it, and the server starts again on it; at the end it
    writes again, and a write it has answered survives one more kill."""
    instance = make_instance(tmp_path / "data", remote_store_url)
    keys = instance.prepare()
    before = instance.state()
    points = (
        ("lyon", "just after the request body was sent", "sent"),
        ("lyon", "as the store's log began to grow (a write replacing records)", "writing"),
        ("grenoble", "once the store's log had grown (a write adding records)", "written"),
    )
    outcomes: list[str] = []
    leftovers: list[str] = []
    try:
        for territory, what, point in points:
            server = instance.serve()
            try:
                status = kill_during_ingest(server, instance.watch(), territory, keys[territory], point)
            finally:
                stop_server(server)
            outcome, before = check_before_or_after(
                instance, before, territory, bulk(), keys[territory], what, leftovers
            )
            outcomes.append(outcome if status is None else f"{outcome} (answered {status})")
            # An answer came first at the last point (or if the commit and the answer both fell
            # between two looks at the log): an answered ingest was written.
            assert status is None or (status == 200 and outcome == "after"), (status, outcome)
        assert outcomes[0] == "before", "killed while it read the body, the server cannot have written the ingest"
        # The server starts on what the last kill left and writes; killed as soon as it has
        # answered, it has lost nothing of that write.
        server = instance.serve()
        try:
            listed = requests.get(f"{server.url}/api/v1/territories/grenoble/proposals?limit=1", timeout=30)
            assert listed.status_code == 200 and (listed.json()["items"] != []) == (outcomes[-1] != "before")
            url = f"{server.url}/api/v1/territories/rennes/organizations/{RECORDS['organization']['id']}"
            auth = {"Authorization": f"Bearer {keys['rennes']}"}
            resp = requests.put(url, json=RECORDS["organization"], headers=auth, timeout=30)
            assert resp.status_code == 201, resp.text
            kill_group_when(server.process, lambda: True)
        finally:
            stop_server(server)
        assert_only_about(instance.state(), before, resp.json()["iri"])
    finally:
        instance.drop()
    print(f"kill -9 during an ingest: {outcomes}")  # which side of the commit each kill fell on (pytest -s)
    staging_left(leftovers)


def test_kill_9_during_an_import_leaves_the_data_before_or_after(tmp_path: Path, remote_store_url: str | None) -> None:
    """`civicfed import ndjson FILE` (no server: the command owns the embedded store) is killed
    once it has read half its file, then as it begins to write the store; each time the data is
    the state before the import or after it (a store that opens again: the next command opens it)."""
    instance = make_instance(tmp_path / "data", remote_store_url)
    instance.prepare()
    before = instance.state()
    # On a remote store only a write too large for one update request is staged, which leaves a
    # window to kill the command in (one update request is the SPARQL server's to apply or not).
    body = bulk() if instance.store_url else nightly()
    source = tmp_path / "import.ndjson"
    source.write_bytes(body)
    env = subprocess_env(instance.data_dir, instance.base, instance.store_url)
    command = [sys.executable, "-m", "server.cli", "import", "ndjson", str(source), "--territory", "lyon"]
    points = (("once it had read half its file", "read"), ("as the store's log began to grow", "writing"))
    outcomes: list[str] = []
    leftovers: list[str] = []
    try:
        for what, point in points:
            watch = instance.watch()
            with open(tmp_path / "import.log", "wb") as out:
                process = spawn(command, env=env, stdout=out, stderr=out)
            ready = watch.writing if point == "writing" else half_read(source, process.pid)
            try:
                # A command that ends between two looks (its log retired as it closes the store)
                # is not killed, and must have written the whole import.
                kill_group_when(process, ready, may_end=True, log=tmp_path / "import.log")
            finally:
                stop_process(process)
            outcome, before = check_before_or_after(instance, before, "lyon", body, None, what, leftovers)
            outcomes.append(outcome if process.returncode else f"{outcome} (ran to its end)")
            assert process.returncode or outcome == "after"
        assert outcomes[0] == "before", "killed while it read its source, the import cannot have been written"
    finally:
        instance.drop()
    print(f"kill -9 during an import: {outcomes}")
    staging_left(leftovers)


def staging_left(leftovers: list[str]) -> None:
    """A writer killed while it posts a large write into a remote store's staging graphs leaves
    them there; they are registered in the instance's registry graph until the swap, so that the
    next writer finds and drops them (checked in check_before_or_after)."""
    if leftovers:
        print(f"staging graphs a killed writer left, dropped by the next writer: {len(leftovers)}")


def half_read(path: Path, pid: int) -> Callable[[], bool]:
    """Whether process ``pid`` has read half of ``path``: the offset of its descriptor of the file
    (/proc/PID/fdinfo). Nothing is written before the whole source is read and checked."""
    target, half = str(path), path.stat().st_size // 2

    def ready() -> bool:
        with suppress(OSError):  # the process is starting, or a descriptor closed meanwhile
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                    return int(re.search(r"^pos:\s*(\d+)", info, re.M)[1]) >= half  # type: ignore[index]
        return False

    return ready


# -- a full disk -------------------------------------------------------------------------------

#: The small disk: big enough for RocksDB to resume writing by itself once the filler is gone
#: (after a write failed for want of space it looks every 5 s, and resumes once 128 MiB are free:
#: on a smaller disk it would stay read-only until restarted), small enough to fill at once.
DISK_MB, DISK_INODES = 192, 2_000
#: How long RocksDB may take to resume writing once there is room again.
RESUME_DEADLINE = 60.0


@contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    """A tmpfs of DISK_MB MiB and DISK_INODES inodes mounted at ``where``, unmounted at the end."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,nr_inodes={DISK_INODES},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    need(mounted.returncode == 0, f"cannot mount a tmpfs for a full disk: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        # Lazily if a process still holds a file there: the mount goes once it lets go.
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> None:
    """Take every free block, then every free inode: as on a disk that is really full, anything
    that needs room (a log append, a new file, a directory) fails with ENOSPC."""
    inodes = disk / "inodes"
    inodes.mkdir()
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        stat = os.statvfs(disk)
        with suppress(OSError):
            os.posix_fallocate(fd, 0, stat.f_bavail * stat.f_frsize)
        with suppress(OSError):  # whatever fallocate left (rounding, a block freed meanwhile)
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    with suppress(OSError):
        for i in range(DISK_INODES + 1):
            (inodes / str(i)).touch()
    assert os.statvfs(disk).f_bavail == 0 and os.statvfs(disk).f_favail == 0


def free(disk: Path) -> None:
    (disk / "filler").unlink()
    shutil.rmtree(disk / "inodes")


def test_a_full_disk_answers_503_and_loses_nothing(tmp_path: Path, remote_store_url: str | None) -> None:
    """The data directory on a disk that fills up: a PUT, an ingest and a SPARQL query (which needs
    a snapshot of the store) answer 503, not 500; nothing changes; reads still work. Once space
    is freed, writes and queries work again, and the store holds exactly what it held plus the
    write made after. On the embedded store whatever backend the suite runs on: a remote store's
    disk is its server's."""
    if os.geteuid() != 0:
        rerun_as_namespace_root(test_a_full_disk_answers_503_and_loses_nothing.__name__, tmp_path / "namespace")
        return
    with small_disk(tmp_path / "disk") as disk:
        instance = make_instance(disk / "data", None)
        keys = instance.prepare()
        before = instance.state()
        auth = {"Authorization": f"Bearer {keys['lyon']}"}
        records = "/api/v1/territories/lyon/organizations"
        changed = {**RECORDS["organization"], "id": "solidarites", "name": "Renamed while the disk was full"}
        newcomer = {**RECORDS["organization"], "id": "newcomer"}
        with (
            running_server(
                instance.data_dir, None, extra_env={"CIVICFED_BASE_URI": instance.base}, demo=False
            ) as server,
            requests.Session() as http,
        ):
            old_name = http.get(f"{server.url}{records}/solidarites", timeout=30).json()["name"]
            fill(disk)

            def sparql() -> requests.Response:
                query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
                return http.get(f"{server.url}/sparql", params={"query": query, "format": "json"}, timeout=30)

            # The first query since the start needs a snapshot (a new directory, then a checkpoint).
            full = sparql()
            assert full.status_code == 503, full.text
            assert full.headers["Content-Type"].startswith("text/plain")  # the SPARQL protocol's errors
            assert "Retry-After" in full.headers
            assert not list((instance.data_dir / "snapshots").glob("*")), "a failed snapshot was left behind"
            put = http.put(f"{server.url}{records}/solidarites", json=changed, headers=auth, timeout=30)
            assert put.status_code == 503, put.text
            assert put.headers["Content-Type"] == "application/problem+json" and put.json()["status"] == 503
            body = ndjson([{"kind": "organization", **newcomer}])
            bulk_write = http.post(
                f"{server.url}/api/v1/territories/lyon/ingest",
                data=body,
                headers={**auth, "Content-Type": "application/x-ndjson"},
                timeout=30,
            )
            assert bulk_write.status_code == 503, bulk_write.text
            assert bulk_write.headers["Content-Type"] == "application/problem+json"
            # Reads still work, and say nothing changed.
            assert http.get(f"{server.url}{records}/solidarites", timeout=30).json()["name"] == old_name
            assert http.get(f"{server.url}{records}/newcomer", timeout=30).status_code == 404

            free(disk)
            deadline = time.monotonic() + RESUME_DEADLINE
            while (
                put := http.put(f"{server.url}{records}/solidarites", json=changed, headers=auth, timeout=30)
            ).status_code == 503:
                assert time.monotonic() < deadline, (
                    f"writes still fail {RESUME_DEADLINE:g} s after space was freed: {put.text}"
                )
                time.sleep(0.2)
            assert put.status_code == 200, put.text
            again = sparql()
            assert again.status_code == 200, again.text
            assert http.get(f"{server.url}{records}/solidarites", timeout=30).json()["name"] == changed["name"]
        # Quad for quad: what was there before, but for the record written once there was room.
        assert_only_about(instance.state(), before, f"{instance.base}/id/lyon/organization/solidarites")


def rerun_as_namespace_root(name: str, basetemp: Path) -> None:
    """Not root: run the test again as root of a user and mount namespace of its own
    (`unshare -Urm`), where it may mount a tmpfs that no one else sees. (Its temporary files go
    to ``basetemp``: pytest refuses a directory of the outer user's, as root's.)"""
    unshare = shutil.which("unshare")
    usable = unshare is not None and subprocess.run([unshare, "-Urm", "true"], check=False).returncode == 0
    need(usable, "a full disk needs a tmpfs: run as root, or allow user namespaces (unshare -Urm)")
    assert unshare is not None
    pytest_args = ["-q", "-rs", "-p", "no:cacheprovider", "--basetemp", str(basetemp), f"{__file__}::{name}"]
    result = subprocess.run(
        [unshare, "-Urm", sys.executable, "-m", "pytest", *pytest_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    skipped = re.search(r"^SKIPPED \[\d+\] \S+: (.*)$", result.stdout, re.M)
    if result.returncode == 0 and skipped:
        pytest.skip(skipped[1])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
