"""The fixtures that start servers: they wait for readiness, not a fixed short time, and stop
what they started whatever happens (a slow machine made CI fail and leak servers)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from . import conftest
from .conftest import free_port, spawn, stop_process, wait_until_ready

# Every test here starts processes (the civicfed command, servers): not in make test-fast.
pytestmark = pytest.mark.live

# A server whose socket accepts at once but whose first answer takes a while, as gunicorn's does
# while its worker loads the application (about a second on a loaded 2-core machine).
SLOW_FIRST_ANSWER = textwrap.dedent(
    """
    import http.server, sys, time
    class Slow(http.server.BaseHTTPRequestHandler):
        first = True
        def do_GET(self):
            if Slow.first:
                Slow.first = False
                time.sleep(float(sys.argv[2]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
    """
)


def _slow_server(delay: float) -> tuple[object, str]:
    port = free_port()
    process = spawn([sys.executable, "-c", SLOW_FIRST_ANSWER, str(port), str(delay)])
    return process, f"http://127.0.0.1:{port}/"


def test_a_slow_first_answer_is_waited_for() -> None:
    process, url = _slow_server(2.5)
    try:
        wait_until_ready(process, url, "slow server")  # type: ignore[arg-type]
        assert process.poll() is None  # type: ignore[attr-defined]
    finally:
        stop_process(process)  # type: ignore[arg-type]
    assert process.poll() is not None  # type: ignore[attr-defined]


def test_a_server_that_exits_fails_the_start_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("address already in use\n")
    process = spawn([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(RuntimeError, match="exited with 3: address already in use"):
        wait_until_ready(process, f"http://127.0.0.1:{free_port()}/", "broken server", log)
    assert process not in conftest._STARTED


def test_a_server_that_never_answers_is_stopped_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "START_DEADLINE", 1.0)
    process = spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(RuntimeError, match="did not answer within 1 s"):
        wait_until_ready(process, f"http://127.0.0.1:{free_port()}/", "silent server")
    assert process.poll() is not None, "the process the fixture started is stopped"


def test_stopping_a_server_stops_the_processes_it_started() -> None:
    # A parent that starts a child (as gunicorn starts workers, and workers start query processes).
    parent = spawn(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); print('started', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None and parent.stdout.readline().strip() == b"started"
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    assert children
    stop_process(parent)
    deadline = time.monotonic() + 10
    while any(_alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(child) for child in children)


def _alive(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be read
