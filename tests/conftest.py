"""Fixtures: app → client → live server, one throw-away data directory each.

``app`` is a fresh application on its own on-disk Oxigraph store; ``lyon`` gives it a
territory, a minimal set of records to link to, and one API key per role.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from server import Civicfed, create_app, services
from server.model.examples import PLURALS, RECORDS, TERRITORY

BASE = "http://civicfed.test"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"DATA_DIR": str(tmp_path / "data"), "BASE_URI": BASE, "TESTING": True})
    yield app
    app.extensions["civicfed"].close()


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None, demo: bool = True) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "CIVICFED_DATA_DIR": str(data_dir),
        "CIVICFED_BASE_URI": f"http://127.0.0.1:{port}",
        **(extra_env or {}),
    }
    keys = {}
    if demo:
        civicfed(env, "demo", "load")
        for role in ("admin", "editor"):
            keys[role] = civicfed(env, "key", "create", "--territory", "lyon", "--role", role).stdout.strip()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/api/v1/territories", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None:
                raise RuntimeError((data_dir / "server.log").read_text()) from None
            time.sleep(0.1)
    return LiveServer(url, env, keys, process)


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    server.process.wait(timeout=30)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`civicfed serve` (gunicorn) on a loopback port, with the demo data and lyon keys."""
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    stop_server(server)
