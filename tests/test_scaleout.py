"""Scale-out: several worker processes on one shared SPARQL store, moving data between stores."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import pytest
import requests

from .conftest import (
    TEST_STATE_DB,
    civicfed,
    drop_state_schema,
    start_server,
    state_db_url,
    stop_server,
    subprocess_env,
    unique_base,
)

# Every test here starts processes (the civicfed command, servers): not in make test-fast.
pytestmark = pytest.mark.live


def export(env: dict[str, str]) -> list[str]:
    out = civicfed(env, "export", "ndjson", "--territory", "lyon", "--include-private").stdout
    return sorted(json.dumps(json.loads(line), sort_keys=True) for line in out.splitlines())


def test_store_copy_both_ways(tmp_path: Path, shared_store: str) -> None:
    base = unique_base("copy")
    embedded = subprocess_env(tmp_path / "a", base, None)
    civicfed(embedded, "demo", "load", "--scale", "0.3")
    before = export(embedded)
    done = civicfed(embedded, "store", "copy", "--to", shared_store)
    assert "counts and hashes verified" in done.stdout
    # The same instance (same state database) now served from the SPARQL server.
    remote = {**embedded, "CIVICFED_STORE": shared_store}
    assert export(remote) == before
    # And back into a new embedded store.
    again = {**embedded, "CIVICFED_STORE": str(tmp_path / "b" / "oxigraph")}
    assert "verified" in civicfed(again, "store", "copy", "--from", shared_store).stdout
    assert export(again) == before
    bad = civicfed(embedded, "store", "copy", check=False)
    assert bad.returncode != 0 and "exactly one of --to and --from" in bad.stderr


def test_several_workers_need_a_remote_store(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "data", unique_base("workers"), None)
    done = civicfed(env, "serve", "--workers", "2", check=False)
    assert done.returncode != 0 and "one process only" in done.stderr


def test_four_workers_write_and_read_consistently(tmp_path: Path, shared_store: str) -> None:
    """Four gunicorn worker processes on one store: concurrent votes on one proposal from many
    clients all land, the maintained count is exact, and every worker answers the same."""
    extra = {"CIVICFED_STATE_DB": state_db_url(tmp_path)} if TEST_STATE_DB else {}
    server = start_server(tmp_path / "srv", shared_store, extra_env=extra, args=("--workers", "4"))
    try:
        base = server.url + "/api/v1/territories/lyon"
        before = requests.get(f"{base}/proposals/prop-00003", timeout=10).json().get("vote_count", 0)

        def vote(i: int) -> int:
            # A new connection per request spreads the requests over the workers.
            data = {"id": f"w4-{i}", "proposal": "prop-00003", "voter": f"worker-test-{i}"}
            resp = requests.put(f"{base}/votes/w4-{i}", json=data, headers=server.auth(), timeout=60)
            return resp.status_code

        def edit(i: int) -> int:
            patch = {"title": f"Titre modifié {i}"}
            return requests.patch(
                f"{base}/proposals/prop-{10 + i:05d}", json=patch, headers=server.auth(), timeout=60
            ).status_code

        def read(_: int) -> int:
            return requests.get(f"{base}/proposals?limit=50", timeout=60).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            votes = pool.map(vote, range(200))
            edits = pool.map(edit, range(20))
            reads = pool.map(read, range(60))
            assert list(votes) == [201] * 200
            assert list(edits) == [200] * 20
            assert list(reads) == [200] * 60

        answers = {
            json.dumps(requests.get(f"{base}/proposals/prop-00003", timeout=10).json(), sort_keys=True)
            for _ in range(20)
        }
        assert len(answers) == 1
        assert json.loads(answers.pop())["vote_count"] == before + 200
        # Record times grow in commit order across processes: an incremental sync misses nothing.
        listed = requests.get(f"{base}/votes?proposal=prop-00003&limit=1000", headers=server.auth(), timeout=30)
        listed = listed.json()["items"]
        mine = [v for v in listed if v["id"].startswith("w4-")]
        assert len(mine) == 200 and len({v["record_modified"] for v in listed}) == len(listed)
    finally:
        stop_server(server)


def test_the_write_lock_holds_across_processes(tmp_path: Path) -> None:
    """Writers of one territory in different processes take turns (PostgreSQL advisory lock, or an
    flock beside the SQLite database): another process holding the lock makes us wait."""
    import subprocess
    import sys
    import time

    from server.state import State

    url = state_db_url(tmp_path)
    holder = (
        "import sys, time\nfrom server.state import State\n"
        f"state = State({url!r})\n"
        "with state.write_lock('lyon'):\n    print('held', flush=True)\n    time.sleep(1.5)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        state = State(url)
        start = time.perf_counter()
        with state.write_lock("lyon"):
            waited = time.perf_counter() - start
        with state.write_lock("grenoble"):  # another territory is not held up
            pass
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert waited > 1.0


def test_workers_starting_together_on_a_new_state_database(tmp_path: Path) -> None:
    """Gunicorn workers boot at the same moment: on a brand-new database they raced to create its
    tables, and some died with "table territories already exists"."""
    import subprocess
    import sys

    for attempt in range(3):
        data = tmp_path / f"data{attempt}"
        data.mkdir(mode=0o700)
        url = f"sqlite:///{data}/state.sqlite3"
        code = f"from server.state import State; State({url!r})"
        starting = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)]
        failed = [p.communicate(timeout=120)[1].decode()[-300:] for p in starting if p.wait(timeout=120) != 0]
        assert not failed, failed


def test_workers_recording_the_base_iri_together(tmp_path: Path) -> None:
    """The next step of booting, on a database whose tables exist: every worker records the base
    IRI. Both found no row and both inserted it, and one died on "UNIQUE constraint failed:
    instance.key" (a CI failure of `serve --workers 2`). They start together on a signal file."""
    import subprocess
    import sys

    from server.state import State

    for attempt in range(5):
        url = state_db_url(tmp_path / f"run{attempt}")
        State(url)  # the tables, as `create_state_database` makes them before a test's workers
        go = tmp_path / f"go{attempt}"
        code = (
            "import os, time\nfrom server.state import State\n"
            f"state = State({url!r})\nprint('ready', flush=True)\n"
            f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.001)\n"
            "state.check_base_iri('http://example.org/')\n"
        )
        starting = [
            subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(6)
        ]
        try:
            for process in starting:
                assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
            go.touch()
            failed = [p.communicate(timeout=120)[1].decode()[-300:] for p in starting if p.wait(timeout=120) != 0]
        finally:
            for process in starting:
                process.kill()
                process.wait()
            drop_state_schema(url)
        assert not failed, failed


def test_the_sqlite_state_database_logs_ahead(tmp_path: Path) -> None:
    """Write-ahead logging: readers do not wait for a writer, and a commit is one append (rate-limit
    counts in the state database write on every request)."""
    from server.state import State

    (tmp_path / "data").mkdir(mode=0o700)
    state = State(f"sqlite:///{tmp_path}/data/state.sqlite3")
    with state.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "data" / "state.sqlite3").stat().st_mode & 0o077 == 0
