"""`civicfed sync` beside a command that holds the embedded store: the sync handed over, then
taken back when the store comes free. Both servers use the embedded store whatever the backend
under test (only it is held by one process): CI runs this file once, in its first stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import LiveServer, civicfed, running_server, subprocess_env, unique_base

pytestmark = pytest.mark.live  # servers and commands: not in make test-fast


def test_a_sync_handed_over_is_taken_back_when_the_store_comes_free(tmp_path: Path) -> None:
    """The embedded store held by another command (not a server): `civicfed sync` hands its sync
    over, and nobody runs it. It waited an hour for nothing; it now runs the sync itself once the
    other command lets the store go."""
    data_dir = tmp_path / "replica"
    data_dir.mkdir(mode=0o700)
    env = {**subprocess_env(data_dir, unique_base("sync-held"), None), "CIVICFED_IMPORT_ALLOW_PRIVATE": "true"}
    with running_server(tmp_path / "origin", None) as origin:
        _follow(origin, env)


def _follow(origin: LiveServer, env: dict[str, str]) -> None:
    civicfed(env, "peer", "add", origin.url, "--territory", "grenoble")
    hold = (
        "import sys\nfrom server.app import create_app\nfrom server.services import services\n"
        "app = create_app()\nwith app.app_context():\n"
        "    services().store\n    print('held', flush=True)\n    sys.stdin.readline()\n"
        "app.extensions['civicfed'].close()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    syncing = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        syncing = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "sync"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert syncing.stderr is not None
        assert "the server owning the store runs the sync" in syncing.stderr.readline().decode()
        assert holder.stdin is not None
        holder.stdin.close()  # the other command ends
        holder.wait(timeout=60)
        out, _ = syncing.communicate(timeout=120)
        [report] = [json.loads(line) for line in out.decode().splitlines()]
        assert report["territory"] == "grenoble" and report["applied"] > 0 and report["error"] is None
    finally:
        for process in (holder, syncing):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
