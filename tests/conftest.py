"""Fixtures: app → client → live server, one throw-away data directory each.

``app`` is a fresh application on its own store; ``lyon`` gives it a territory, a minimal set of
records to link to, and one API key per role.

The same suite runs on every backend, chosen by environment variables:

- ``CIVICFED_TEST_STORE``: ``embedded`` (default: an Oxigraph directory per test), ``oxigraph``
  (an Oxigraph SPARQL server, from the ``oxigraph`` PyPI package, started for the session), or
  the query URL of a running SPARQL server (CI starts Virtuoso). On a shared store each test uses
  its own base IRI and drops its graphs, so tests stay independent.
- ``CIVICFED_TEST_STATE_DB``: a PostgreSQL URL; each test then works in a schema of its own.
- ``CIVICFED_TEST_REQUIRE=1`` (set by CI): a test whose peer is missing fails instead of skipping.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from server.app import create_app
from server.model.examples import PLURALS, RECORDS, TERRITORY
from server.services import Civicfed, services

BASE = "http://civicfed.test"
ROOT = Path(__file__).resolve().parent.parent
TEST_STORE = os.environ.get("CIVICFED_TEST_STORE", "embedded")
TEST_STATE_DB = os.environ.get("CIVICFED_TEST_STATE_DB")
REQUIRE = os.environ.get("CIVICFED_TEST_REQUIRE") == "1"
REMOTE = TEST_STORE != "embedded"


#: Fixtures that start a server or talk to one over loopback: the tests using them (directly or
#: through another fixture) are marked ``live``, and ``make test-fast`` leaves them out.
LIVE_FIXTURES = {"live_server", "sparql_server", "w3c_server", "void_server", "shared_store"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


def need(condition: bool, reason: str) -> None:
    """Skip when a peer is missing, except in CI where that must fail."""
    if not condition:
        if REQUIRE:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


@contextmanager
def killed_at_commit(writer: Any, n: int) -> Iterator[None]:
    """The process dying at its ``n``-th commit (a write's records, then its derived data, which
    goes outside the instance's commit lock: ``Writer.commit_derived``); the test sees SystemExit."""
    real = {name: getattr(writer, name) for name in ("commit", "commit_derived")}
    calls: list[str] = []

    def dying(name: str) -> Any:
        def commit(arg: Any) -> None:
            calls.append(name)
            if len(calls) == n:
                raise SystemExit(f"killed at commit {n} ({', '.join(calls)})")
            real[name](arg)

        return commit

    for name in real:
        setattr(writer, name, dying(name))
    try:
        yield
    finally:
        for name, method in real.items():
            setattr(writer, name, method)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oxigraph_binary() -> str | None:
    local = Path(sys.executable).parent / "oxigraph"
    return str(local) if local.exists() else shutil.which("oxigraph")


# -- processes the tests start ------------------------------------------------------------------

#: How long a started server may take to answer. Generous on purpose: on a loaded 2-core machine a
#: gunicorn worker takes over a second to load the application, and CI must not fail for that.
START_DEADLINE = float(os.environ.get("CIVICFED_TEST_START_DEADLINE", "180"))
_STARTED: list[subprocess.Popen[bytes]] = []


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a process in a process group of its own (a server and every process it starts are
    stopped together), remembered so that nothing outlives the test session."""
    process = subprocess.Popen(args, start_new_session=True, **kwargs)
    _STARTED.append(process)
    return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM to the process group, SIGKILL if it has not ended in ``timeout`` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The group may outlive its leader (a worker still stopping): end what is left of it.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process in _STARTED:
        _STARTED.remove(process)


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_STARTED):
        stop_process(process, timeout=5)


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, what: str, log: Path | None = None, ready: Any = None
) -> None:
    """Poll ``url`` until it answers (and ``ready()`` holds) while the process is alive; any request
    error (refused, reset, read timeout while the app loads) means "not yet". A process that ends,
    or the deadline passing, stops it and fails with its log."""
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            stop_process(process)
            raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
        try:
            requests.get(url, timeout=10)
            if ready is None or ready():
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"{what} did not answer within {START_DEADLINE:g} s: {_tail(log)}")
        time.sleep(0.1)


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return log.read_text(errors="replace")[-4000:]


class OxigraphServer:
    """`oxigraph serve` on a loopback port (the SPARQL server of the oxigraph PyPI package)."""

    def __init__(self, location: Path) -> None:
        binary = oxigraph_binary()
        need(binary is not None, "the oxigraph server binary is not installed (pip install oxigraph)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/query"
        location.mkdir(parents=True, exist_ok=True)
        log = location.parent / f"{location.name}.log"
        with open(log, "wb") as out:
            self.process = spawn(
                # A server-side limit too: a query civicfed gave up on does not run on forever.
                [binary, "serve", "--location", str(location), "--bind", f"127.0.0.1:{self.port}", "--timeout-s", "20"],  # type: ignore[list-item]
                stdout=out,
                stderr=out,
            )
        wait_until_ready(self.process, f"http://127.0.0.1:{self.port}/", "the oxigraph server", log)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="session")
def remote_store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """The SPARQL server the tests share, or None for the embedded store."""
    if not REMOTE:
        yield None
        return
    if TEST_STORE == "oxigraph":
        server = OxigraphServer(tmp_path_factory.mktemp("oxigraph-server"))
        try:
            yield server.url
        finally:
            server.stop()
        return
    yield TEST_STORE


@pytest.fixture
def shared_store(tmp_path: Path, remote_store_url: str | None) -> Iterator[str]:
    """A SPARQL server for tests of remote-store behaviour: the one under test, or an Oxigraph
    server started for the test when the suite runs on the embedded store."""
    if remote_store_url:
        yield remote_store_url
        return
    server = OxigraphServer(tmp_path / "oxigraph")
    try:
        yield server.url
    finally:
        server.stop()


def state_db_url(tmp_path: Path) -> str:
    """A state database of the test's own: SQLite in its directory, or a fresh PostgreSQL schema."""
    if not TEST_STATE_DB:
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(TEST_STATE_DB)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in TEST_STATE_DB else "?"
    return f"{TEST_STATE_DB}{sep}options=-csearch_path%3D{schema}"


def unique_base(name: str) -> str:
    """On a shared store, each test's graphs live under a base IRI of its own."""
    return f"http://{name}-{uuid.uuid4().hex[:8]}.test" if REMOTE else f"http://{name}.test"


def drop_own_graphs(svc: Civicfed) -> None:
    for g in svc.store.graphs():
        if svc.urls.is_own_graph(g):
            svc.store.update(f"DROP SILENT GRAPH <{g}>")


def make_app(tmp_path: Path, store_url: str | None, **config: Any) -> Flask:
    """An application on the backend under test, with its own data directory."""
    settings: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "data"),
        "BASE_URI": BASE,
        "TESTING": True,
        "STATE_DB": state_db_url(tmp_path),
        # Tests send requests by the hundred; the rate-limit tests switch limits on.
        "RATELIMIT_ENABLED": False,
    }
    if store_url:
        settings["STORE"] = store_url
    settings.update(config)
    app = create_app(settings)
    if store_url:
        drop_own_graphs(app.extensions["civicfed"])
    return app


def reopen_app(app: Flask) -> Flask:
    """The same instance restarted: same data directory, state database and store, data kept."""
    keys = ("DATA_DIR", "BASE_URI", "TESTING", "STATE_DB", "STORE", "RATELIMIT_ENABLED")
    return create_app({k: app.config[k] for k in keys if k in app.config})


def subprocess_env(data_dir: Path, base: str, store_url: str | None) -> dict[str, str]:
    """Environment of a `civicfed` command run by a test, on the backend under test."""
    env = {**os.environ, "CIVICFED_DATA_DIR": str(data_dir), "CIVICFED_BASE_URI": base}
    env.setdefault("CIVICFED_RATELIMIT_ENABLED", "false")  # tests send requests by the hundred
    env.pop("CIVICFED_STORE", None)
    if store_url:
        env["CIVICFED_STORE"] = store_url
    return env


def snapshot(svc: Civicfed) -> bytes:
    """Every quad of this instance's graphs, sorted: the store 'quad for quad'."""
    from pyoxigraph import RdfFormat

    lines: list[bytes] = []
    for g in sorted(svc.store.graphs()):
        if svc.urls.is_own_graph(g):
            out = io.BytesIO()
            svc.store.dump(out, RdfFormat.N_TRIPLES, graph=g)
            lines += [f"<{g}> ".encode() + line for line in out.getvalue().splitlines()]
    return b"\n".join(sorted(lines))


def drop_state_schema(url: str) -> None:
    """Drop the PostgreSQL schema a test's state database lived in."""
    if "search_path%3D" not in url:
        return
    import sqlalchemy

    schema = url.rsplit("search_path%3D", 1)[1]
    engine = sqlalchemy.create_engine(TEST_STATE_DB)  # type: ignore[arg-type]
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


@pytest.fixture
def app(tmp_path: Path, remote_store_url: str | None) -> Iterator[Flask]:
    app = make_app(tmp_path, remote_store_url)
    yield app
    app.extensions["civicfed"].close()
    drop_state_schema(app.config["STATE_DB"])


@pytest.fixture
def svc(app: Flask) -> Iterator[Civicfed]:
    with app.app_context():
        yield services()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Territory:
    id: str
    keys: dict[str, str]

    def auth(self, role: str = "editor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def make_territory(svc: Civicfed, territory: dict[str, Any], roles: tuple[str, ...]) -> Territory:
    svc.records.create_territory(territory)
    keys = {role: svc.state.create_key(territory["id"], role)[1] for role in roles}
    return Territory(territory["id"], keys)


@pytest.fixture
def lyon(svc: Civicfed) -> Territory:
    """Territory lyon, with keys for admin, editor and organization:voirie."""
    return make_territory(svc, TERRITORY, ("admin", "editor", "organization:voirie"))


@pytest.fixture
def grenoble(svc: Civicfed) -> Territory:
    data = {"id": "grenoble", "name": "Grenoble", "insee_cog": "38185", "country": "FR"}
    return make_territory(svc, data, ("admin", "editor"))


def put(
    client: FlaskClient,
    t: Territory,
    kind: str,
    data: dict[str, Any],
    role: str = "editor",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.put(
        f"/api/v1/territories/{t.id}/{PLURALS[kind]}/{data['id']}",
        json=data,
        headers={**t.auth(role), **(headers or {})},
    )


@pytest.fixture
def seeded(client: FlaskClient, lyon: Territory) -> Territory:
    """lyon with the organization, process, budget and proposal of the examples."""
    for kind in ("organization", "process", "budget", "proposal"):
        resp = put(client, lyon, kind, RECORDS[kind])
        assert resp.status_code == 201, resp.get_json()
    return lyon


# -- live server ------------------------------------------------------------------------------


def civicfed(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the civicfed command line as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, check=check
    )


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    keys: dict[str, str]
    process: subprocess.Popen[bytes]

    def auth(self, role: str = "editor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def start_server(
    data_dir: Path,
    store_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    demo: bool = True,
    args: tuple[str, ...] = (),
    prepare: Any = None,
) -> LiveServer:
    """`civicfed serve` on a free loopback port; ``prepare(env)`` runs first (the base IRI known)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)  # (with a remote store and PostgreSQL nothing else creates it)
    data_dir.chmod(0o700)  # serve refuses a data directory others can read
    env = {**subprocess_env(data_dir, f"http://127.0.0.1:{port}", store_url), **(extra_env or {})}
    keys = {}
    if demo:
        civicfed(env, "demo", "load")
        for role in ("admin", "editor"):
            keys[role] = civicfed(env, "key", "create", "--territory", "lyon", "--role", role).stdout.strip()
    if prepare is not None:
        prepare(env)
    log = data_dir / "server.log"
    with open(log, "wb") as out:
        process = spawn(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port), *args], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1

    def every_worker_loaded() -> bool:
        # With several workers (SO_REUSEPORT), a worker still loading holds connections too: wait
        # until each has said it is ready.
        return len(re.findall(r"worker \d+ ready", log.read_text(errors="replace"))) >= workers

    wait_until_ready(process, url + "/api/v1/territories", "civicfed serve", log, every_worker_loaded)
    return LiveServer(url, env, keys, process)


def stop_server(server: LiveServer) -> None:
    stop_process(server.process)


@contextmanager
def running_server(*args: Any, **kwargs: Any) -> Iterator[LiveServer]:
    """`start_server` that stops the server whatever happens in the block."""
    server = start_server(*args, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[LiveServer]:
    """`civicfed serve` (gunicorn) on a loopback port, with the demo data and lyon keys."""
    with running_server(tmp_path_factory.mktemp("live"), remote_store_url) as server:
        yield server


@pytest.fixture(scope="session")
def sparql_server(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[LiveServer]:
    """A server with small SPARQL limits: a 3 s time limit and 50 rows."""
    extra = {"CIVICFED_SPARQL_TIMEOUT": "3", "CIVICFED_SPARQL_MAX_ROWS": "50"}
    with running_server(tmp_path_factory.mktemp("sparql"), remote_store_url, extra_env=extra) as server:
        yield server


@pytest.fixture(scope="session")
def w3c_server(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[LiveServer]:
    """A server publishing the data graphs of the W3C SPARQL 1.1 Protocol tests as source graphs."""

    def load(env: dict[str, str]) -> None:
        from pyoxigraph import RdfFormat

        settings: dict[str, Any] = {"DATA_DIR": env["CIVICFED_DATA_DIR"], "BASE_URI": env["CIVICFED_BASE_URI"]}
        if env.get("CIVICFED_STORE"):
            settings["STORE"] = env["CIVICFED_STORE"]
        app = create_app(settings)
        svc = app.extensions["civicfed"]
        for i in range(4):
            graph = f"{env['CIVICFED_BASE_URI']}/graph/source/w3c-data{i}"
            triple = (
                f"<{graph}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://xmlns.com/foaf/0.1/Document> ."
            )
            svc.store.replace_graph(graph, triple if i else "", RdfFormat.N_TRIPLES)
        svc.close()

    with running_server(tmp_path_factory.mktemp("w3c"), remote_store_url, demo=False, prepare=load) as server:
        yield server
