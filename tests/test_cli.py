"""The command line, run as a user runs it (a subprocess per command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import civicfed, subprocess_env, unique_base

# Every test here starts processes (the civicfed command, servers): not in make test-fast.
pytestmark = pytest.mark.live


@pytest.fixture
def env(tmp_path: Path, remote_store_url: str | None) -> dict[str, str]:
    return subprocess_env(tmp_path / "data", unique_base("cli"), remote_store_url)


def test_territory_keys_and_revocation(env: dict[str, str]) -> None:
    out = civicfed(
        env,
        "territory",
        "create",
        "annecy",
        "--name",
        "Annecy",
        "--insee",
        "74010",
        "--nuts",
        "FRK28",
        "--population",
        "131272",
        "--population-year",
        "2021",
        "--population-source",
        "INSEE",
    )
    assert f"annecy: created ({env['CIVICFED_BASE_URI']}/id/annecy)" in out.stdout
    assert civicfed(env, "territory", "list").stdout.split() == ["annecy"]
    made = civicfed(env, "key", "create", "--territory", "annecy", "--role", "editor", "--label", "platform")
    key = made.stdout.strip()
    assert key.startswith("cfk_") and "key id:" in made.stderr
    key_id = made.stderr.split("key id: ")[1].split()[0]
    listed = civicfed(env, "key", "list").stdout
    assert key_id in listed and "editor" in listed and key not in listed
    assert "revoked" in civicfed(env, "key", "revoke", key_id).stdout
    assert "revoked" in civicfed(env, "key", "list").stdout
    again = civicfed(env, "key", "revoke", key_id, check=False)
    assert again.returncode != 0 and "no active key" in again.stderr


def test_bad_role_and_territory(env: dict[str, str]) -> None:
    civicfed(env, "territory", "create", "annecy", "--name", "Annecy")
    bad = civicfed(env, "key", "create", "--territory", "annecy", "--role", "owner", check=False)
    assert bad.returncode != 0 and "unknown role" in bad.stderr
    bad = civicfed(env, "key", "create", "--territory", "nowhere", "--role", "admin", check=False)
    assert bad.returncode != 0 and "unknown territory" in bad.stderr
    bad = civicfed(env, "territory", "create", "Not A Slug", "--name", "X", check=False)
    assert bad.returncode != 0 and "#/id" in bad.stderr


def test_demo_load_is_idempotent_with_if_empty(env: dict[str, str]) -> None:
    first = civicfed(env, "demo", "load", "--if-empty")
    assert "lyon" in first.stdout and "grenoble" in first.stdout and "rennes" in first.stdout
    second = civicfed(env, "demo", "load", "--if-empty")
    assert "nothing loaded" in second.stdout


def test_export_then_import_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    civicfed(env, "demo", "load")
    dump = tmp_path / "lyon.ndjson"
    civicfed(env, "export", "ndjson", "--territory", "lyon", "-o", str(dump), "--include-private")
    lines = [json.loads(x) for x in dump.read_text().splitlines()]
    kinds = {x["kind"] for x in lines}
    assert kinds == {
        "district", "organization", "process", "budget", "rule", "proposal", "vote", "comment", "meeting", "project"
    }  # fmt: skip
    # Into a fresh server's territory: every record is accepted, links resolve.
    other = {**env, "CIVICFED_DATA_DIR": str(tmp_path / "other"), "CIVICFED_BASE_URI": unique_base("cli-other")}
    civicfed(other, "territory", "create", "lyon", "--name", "Lyon")
    report = json.loads(civicfed(other, "import", "ndjson", str(dump), "--territory", "lyon").stdout)
    assert report["written"] and report["rejected"] == 0 and report["created"] == len(lines)
    again = [
        json.loads(x)
        for x in civicfed(other, "export", "ndjson", "--territory", "lyon", "--include-private").stdout.splitlines()
    ]
    assert sorted(json.dumps(x, sort_keys=True) for x in again) == sorted(json.dumps(x, sort_keys=True) for x in lines)


def test_import_reports_errors(env: dict[str, str], tmp_path: Path) -> None:
    civicfed(env, "territory", "create", "annecy", "--name", "Annecy")
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"kind": "proposal", "id": "p1", "title": "x", "process": "none"}\n')
    done = civicfed(env, "import", "ndjson", str(bad), "--territory", "annecy", check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["errors"][0]["errors"][0]["pointer"] == "#/process"


def test_territory_create_on_existing_changes_only_given_fields(env: dict[str, str]) -> None:
    civicfed(
        env,
        "territory",
        "create",
        "annecy",
        "--name",
        "Annecy",
        "--nuts",
        "FRK28",
        "--population",
        "131272",
        "--population-year",
        "2021",
        "--population-source",
        "INSEE",
    )
    out = civicfed(env, "territory", "create", "annecy", "--wikidata", "Q50189")
    assert "annecy: updated" in out.stdout
    from server.app import create_app
    from server.model.kinds import KINDS
    from server.services import services

    settings = {"DATA_DIR": env["CIVICFED_DATA_DIR"], "BASE_URI": env["CIVICFED_BASE_URI"]}
    if env.get("CIVICFED_STORE"):
        settings["STORE"] = env["CIVICFED_STORE"]
    app = create_app(settings)
    with app.app_context():
        record = services().records.get("annecy", KINDS["territory"], "annecy")
    app.extensions["civicfed"].close()
    assert record["nuts"] == "FRK28" and record["wikidata"] == "Q50189" and record["population"]["value"] == 131272


def test_base_iri_cannot_change_under_the_data(env: dict[str, str]) -> None:
    civicfed(env, "territory", "create", "annecy", "--name", "Annecy")
    moved = {**env, "CIVICFED_BASE_URI": "https://elsewhere.example"}
    done = civicfed(moved, "territory", "create", "annecy", "--name", "Annecy", check=False)
    assert done.returncode != 0 and f"CIVICFED_BASE_URI={env['CIVICFED_BASE_URI']}" in done.stderr


def test_demo_load_twice_is_refused_cleanly(env: dict[str, str]) -> None:
    civicfed(env, "demo", "load", "--scale", "0.2")
    again = civicfed(env, "demo", "load", check=False)
    assert again.returncode != 0 and "already exist" in again.stderr and "Traceback" not in again.stderr


def test_import_names_a_missing_file_without_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    civicfed(env, "demo", "load")
    done = civicfed(env, "import", "ndjson", str(tmp_path / "missing.ndjson"), "--territory", "lyon", check=False)
    assert done.returncode != 0
    assert "missing.ndjson: No such file or directory" in done.stderr and "Traceback" not in done.stderr


def test_import_and_export_formats_come_from_the_tables(env: dict[str, str], tmp_path: Path) -> None:
    from exporters import EXPORTERS
    from importers import IMPORTERS

    helps = civicfed(env, "import", "--help").stdout + civicfed(env, "export", "--help").stdout
    for name in (*IMPORTERS, *EXPORTERS):
        assert f"{name}:" in helps
    unknown = civicfed(env, "import", "csv-of-petitions", "x", "--territory", "lyon", check=False)
    assert unknown.returncode != 0 and "use one of ndjson, demo" in unknown.stderr
    # The demo data is an importer like the others: one territory's records into another.
    civicfed(env, "territory", "create", "annecy", "--name", "Annecy")
    report = json.loads(
        civicfed(env, "import", "demo", "grenoble", "--territory", "annecy", "--option", "scale=0.2").stdout
    )
    assert report["written"] and report["created"] > 50 and not report["errors"]
    # Every dump format is an exporter too, writing what /dumps serves.
    out = tmp_path / "annecy-proposals.csv"
    civicfed(env, "export", "csv", "--territory", "annecy", "--kind", "proposals", "-o", str(out))
    assert out.read_text().splitlines()[0].startswith("id,iri,territory,")
    no_kind = civicfed(env, "export", "geojson", "--territory", "annecy", check=False)
    assert no_kind.returncode != 0 and "give the kind to dump" in no_kind.stderr
    placeless = civicfed(env, "export", "geojson", "--territory", "annecy", "--kind", "organizations", check=False)
    assert placeless.returncode != 0 and "no location" in placeless.stderr
    wrong = civicfed(
        env, "export", "csv", "--territory", "annecy", "--kind", "proposals", "--include-private", check=False
    )
    assert wrong.returncode != 0 and "csv takes no --include-private" in wrong.stderr


def test_the_data_directory_is_private(env: dict[str, str], tmp_path: Path) -> None:
    """The state database holds the territories' secrets and the key hashes, the store the private
    votes: created for this user only, and serve refuses a data directory others can read."""
    data = Path(env["CIVICFED_DATA_DIR"])
    civicfed(env, "demo", "load")
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "state.sqlite3").stat().st_mode & 0o777 == 0o600
    if "CIVICFED_STORE" not in env:  # the embedded store, in the data directory
        assert (data / "oxigraph").stat().st_mode & 0o777 == 0o700
    data.chmod(0o755)
    refused = civicfed(env, "serve", "--port", "1", check=False)
    assert refused.returncode != 0 and "can be read by other users (mode 755)" in refused.stderr
    assert f"chmod 700 {data}" in refused.stderr


def test_a_command_leaves_the_embedded_store_flushed(tmp_path: Path) -> None:
    # On the embedded store whatever backend the suite runs on: the flush is the embedded store's.
    # A command that wrote and left its data in the write-ahead log only would make the server
    # that opens the store next replay it at start (hundreds of MB after a large import).
    env = subprocess_env(tmp_path / "data", unique_base("cli-flush"), None)
    civicfed(env, "demo", "load")
    store = tmp_path / "data" / "oxigraph"
    tables = sum(p.stat().st_size for p in store.glob("*.sst"))
    logs = {p.name: p.stat().st_size for p in store.glob("*.log")}
    assert tables > 1_000_000, f"the demo's quads are still only in the write-ahead log {logs}"


def test_the_rate_limit_commands_run(env: dict[str, str]) -> None:
    """`civicfed limiter …` (flask-limiter's commands, listed by `civicfed --help`): `config` ended
    in a traceback (AttributeError: 'AutoStorage' object has no attribute 'storage')."""
    env = {**env, "CIVICFED_RATELIMIT_ENABLED": "true", "COLUMNS": "200"}
    config = civicfed(env, "limiter", "config", check=False)
    assert config.returncode == 0 and "Traceback" not in config.stderr, config.stderr[-2000:]
    assert "memory (this process)" in config.stdout or "rate_limits table" in config.stdout
    limits = civicfed(env, "limiter", "limits", check=False)
    assert limits.returncode == 0 and "/api/v1/territories" in limits.stdout, limits.stderr[-2000:]
