"""Import runs: one loading path with provenance. A run is a PROV-O activity in the store that
each record it wrote links to; an unchanged source changes nothing; a snapshot source deletes
what it no longer gives; invalid items are quarantined with their reasons (the run's report and
a SHACL validation report); the JSON API runs imports in the background; `civicfed import`
hands its run to the server owning the embedded store; a run killed mid-way writes nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyshacl
import pytest
import rdflib
import requests
from flask.testing import FlaskClient
from pyoxigraph import RdfFormat

from importers.runner import execute
from server.ingest import Record, load
from server.ingest.runs import RUNNING, Run, Runs
from server.model.kinds import KINDS
from server.services import services
from server.state import State
from vocabularies import CF, CF_IRI, DCAT, DCT, ONTOLOGY_FILE, PROV, SCHEMES_FILE, SH, SHAPES_FILE, SPDX

from .conftest import Territory, civicfed, make_app, make_territory, running_server, subprocess_env, unique_base

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
PB = SAMPLES / "pb" / "poland_zabrze_2020_pawlow.pb"
PARIS = SAMPLES / "pb-paris" / "opendata.paris.fr_bp_projets_gagnants.csv"


def run_import(svc: Any, fmt: str, path: Path, territory: str = "zabrze", **options: Any) -> Run:
    """A run as `civicfed import` makes it when it owns the store."""
    run = Runs(svc.state).queue(
        territory, fmt, str(path), path=str(path), options=options, agent="test", status=RUNNING
    )
    return execute(svc, run)


@pytest.fixture
def zabrze(svc: Any) -> Territory:
    return make_territory(svc, {"id": "zabrze", "name": "Zabrze", "country": "PL"}, ("admin", "editor"))


def _ask(svc: Any, where: str) -> bool:
    return _count(svc, where) > 0


def _count(svc: Any, where: str) -> int:
    """Matches in the territory's graph (a shared store holds other tests' territories too)."""
    graph = svc.urls.territory_graph("zabrze")
    rows = svc.store.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ {where} }} }}")
    return int(rows[0]["n"].value)


def test_a_run_is_a_prov_activity_every_written_record_links_to(
    svc: Any, client: FlaskClient, zabrze: Territory
) -> None:
    run = run_import(svc, "pabulib", PB)
    assert run.status == "done" and run.result is not None, run
    assert (run.result["created"], run.result["read"], run.result["rejected"]) == (6, 6, 0)
    activity = run.result["activity"]
    sha = hashlib.sha256(PB.read_bytes()).hexdigest()
    assert run.sha256 == sha
    assert _ask(svc, f"<{activity}> a <{PROV.Activity}> ; <{CF.recordsCreated}> 6 ; <{CF.itemsRejected}> 0")
    assert _ask(svc, f"<{activity}> <{PROV.used}> ?in . ?in <{SPDX.checksum}> ?c . ?c <{SPDX.checksumValue}> ?v "
                     f"FILTER(STR(?v) = \"{sha}\")")  # fmt: skip
    assert _ask(
        svc, f"<{activity}> <{PROV.startedAtTime}> ?s ; <{PROV.endedAtTime}> ?e ; <{PROV.wasAssociatedWith}> ?a"
    )
    # Every record it wrote links to it and to its source.
    source = f"{svc.urls.territory('zabrze')}/source/pabulib-poland-zabrze-2020-pawlow"
    written = _count(svc, f"?r <{PROV.wasGeneratedBy}> <{activity}> ; <{DCT.source}> <{source}>")
    assert written == 6
    # The activity dereferences like a record, in every RDF format.
    path = activity.removeprefix(svc.urls.base)
    page = client.get(path, headers={"Accept": "text/turtle"})
    assert page.status_code == 200 and "prov:Activity" in page.get_data(as_text=True)
    assert client.get(path + ".jsonld").status_code == 200


def test_rerunning_an_unchanged_source_changes_nothing(svc: Any, client: FlaskClient, zabrze: Territory) -> None:
    first = run_import(svc, "pabulib", PB)
    proposal = "/api/v1/territories/zabrze/proposals/poland_zabrze_2020_pawlow-P0011"
    before = client.get(proposal).get_json()["record_modified"]
    again = run_import(svc, "pabulib", PB)
    assert again.status == "unchanged" and again.result is not None
    assert again.result["unchanged"] == 6 and "activity" not in again.result
    assert first.id in (again.message or "")
    assert client.get(proposal).get_json()["record_modified"] == before
    assert _count(svc, f"?a a <{CF.Import}>") == 1  # no second activity


def test_a_snapshot_source_deletes_the_records_it_no_longer_gives(
    svc: Any, client: FlaskClient, zabrze: Territory, tmp_path: Path
) -> None:
    lines = PARIS.read_text(encoding="utf-8").splitlines(keepends=True)
    source = tmp_path / "bp.csv"  # the same file, downloaded again: the source is the same
    source.write_text("".join(lines[:30]), encoding="utf-8")
    first = run_import(svc, "paris-bp", source, partial=True)
    assert first.status == "done", first
    projects = client.get("/api/v1/territories/zabrze/projects?limit=100").get_json()["items"]
    source.write_text("".join(lines[:25]), encoding="utf-8")
    second = run_import(svc, "paris-bp", source, partial=True)
    assert second.status == "done" and second.result is not None
    remaining = client.get("/api/v1/territories/zabrze/projects?limit=100").get_json()["items"]
    gone = {p["id"] for p in projects} - {p["id"] for p in remaining}
    assert len(gone) == 5 and second.result["deleted"] >= 5
    assert client.get(f"/api/v1/territories/zabrze/projects/{sorted(gone)[0]}").status_code == 410


def test_invalid_items_are_quarantined_with_their_reasons(svc: Any, zabrze: Territory) -> None:
    run = run_import(svc, "paris-bp", PARIS)
    assert run.status == "done" and run.result is not None
    # The five winning projects without a title (lines 2, 243, 341, 924, 981) are set aside.
    quarantined = run.result["errors"]
    assert [e["line"] for e in quarantined] == [2, 243, 341, 924, 981]
    assert all(e["errors"][0]["pointer"] == "#/title" for e in quarantined)
    assert run.result["rejected"] == 5 and run.result["created"] > 1200
    # The same, as the run's SHACL validation report in the store.
    activity = run.result["activity"]
    assert _ask(svc, f"<{activity}> <{CF.validationReport}> ?r . ?r a <{SH.ValidationReport}> ; <{SH.conforms}> false")
    assert _count(svc, f"<{activity}> <{CF.validationReport}> ?r . ?r <{SH.result}> ?x . ?x <{SH.focusNode}> ?f") == 5


def _wait(client: FlaskClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body = client.get(url, headers=headers).get_json()
        if body["status"] in ("done", "unchanged", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_the_api_runs_an_upload_in_the_background(client: FlaskClient, zabrze: Territory) -> None:
    admin = zabrze.auth("admin")
    answer = client.post(
        "/api/v1/territories/zabrze/imports?format=pabulib&name=pawlow.pb",
        data=PB.read_bytes(),
        headers={**admin, "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 202, answer.get_json()
    location = answer.headers["Location"]
    assert answer.get_json()["status"] in ("queued", "running", "done")
    done = _wait(client, location, admin)
    assert done["status"] == "done" and done["created"] == 6 and done["source"] == "pawlow.pb", done
    listed = client.get("/api/v1/territories/zabrze/imports", headers=zabrze.auth("editor")).get_json()
    assert [r["id"] for r in listed] == [done["id"]]
    # Only the territory's admin may import, only its keys see the runs.
    refused = client.post(
        "/api/v1/territories/zabrze/imports?format=pabulib",
        data=PB.read_bytes(),
        headers={**zabrze.auth("editor"), "Content-Type": "application/octet-stream"},
    )
    assert refused.status_code == 403
    assert client.get(location).status_code == 403
    assert client.get("/api/v1/territories/zabrze/imports/20200101T000000Z-000000", headers=admin).status_code == 404


def test_an_upload_over_the_size_limit_is_refused_and_not_kept(tmp_path: Path, remote_store_url: str | None) -> None:
    app = make_app(tmp_path, remote_store_url, MAX_CONTENT_LENGTH=1024)
    try:
        with app.app_context():
            territory = make_territory(services(), {"id": "zabrze", "name": "Zabrze", "country": "PL"}, ("admin",))
        client = app.test_client()
        body = PB.read_bytes()
        assert len(body) > 1024
        url = "/api/v1/territories/zabrze/imports?format=pabulib&name=pawlow.pb"
        headers = {**territory.auth("admin"), "Content-Type": "application/octet-stream"}
        # Announced (Content-Length) or not (chunked, the limit met while reading).
        refused = client.post(url, data=body, headers=headers)
        chunked = {
            "headers": {**headers, "Transfer-Encoding": "chunked"},
            "environ_overrides": {"wsgi.input_terminated": True},
        }
        streamed = client.post(url, data=io.BytesIO(body), **chunked)
        for answer in (refused, streamed):
            assert answer.status_code == 413, answer.get_data(as_text=True)
            assert "MAX_CONTENT_LENGTH" in answer.get_json()["detail"]
        # An empty body is not a source either.
        empty = client.post(url, data=io.BytesIO(b""), **chunked)
        assert empty.status_code == 400 and "empty" in empty.get_json()["detail"]
        assert list((tmp_path / "data" / "imports").glob("*")) == []
        with app.app_context():
            assert Runs(services().state).list("zabrze") == []
    finally:
        app.extensions["civicfed"].close()


def test_the_api_refuses_a_url_outside_the_allowlist_at_once(client: FlaskClient, zabrze: Territory) -> None:
    answer = client.post(
        "/api/v1/territories/zabrze/imports",
        json={"format": "open311", "url": "http://127.0.0.1:9/open311/v2"},
        headers=zabrze.auth("admin"),
    )
    assert answer.status_code == 403 and "IMPORT_ALLOWED_HOSTS" in answer.get_json()["detail"]
    bad = client.post(
        "/api/v1/territories/zabrze/imports",
        json={"format": "pabulib", "url": "ftp://x", "options": {"nope": 1}},
        headers=zabrze.auth("admin"),
    )
    assert bad.status_code == 422 and {e["pointer"] for e in bad.get_json()["errors"]} >= {"#/url"}


def test_the_command_line_hands_its_run_to_the_running_server(tmp_path: Path, remote_store_url: str | None) -> None:
    """With the embedded store a server owns, `civicfed import` queues the run for the server
    and follows it; with a shared store it runs the import itself. Either way the same report."""

    def territory(env: dict[str, str]) -> None:
        civicfed(env, "territory", "create", "zabrze", "--name", "Zabrze", "--country", "PL")

    with running_server(tmp_path / "data", remote_store_url, demo=False, prepare=territory) as server:
        done = civicfed(server.env, "import", "pabulib", str(PB), "--territory", "zabrze")
        run = json.loads(done.stdout)
        assert run["status"] == "done" and run["created"] == 6, run
        handed = "the server owning the store runs the import" in done.stderr
        assert handed == (remote_store_url is None), done.stderr
        assert "6 created" in done.stderr  # the summary
        shown = json.loads(civicfed(server.env, "import", "report", run["id"]).stdout)
        assert shown["id"] == run["id"] and shown["created"] == 6
        found = requests.get(f"{server.url}/api/v1/territories/zabrze/proposals", timeout=30).json()["items"]
        assert len(found) == 2


def _big_pabulib(path: Path, projects: int, ballots: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(f"META\nkey;value\ndescription;Kill test\ncountry;Poland\nunit;Testowo\ninstance;2024\n"
                  f"num_projects;{projects}\nnum_votes;{ballots}\nbudget;1000000\nvote_type;approval\n")  # fmt: skip
        out.write("PROJECTS\nproject_id;cost;name\n")
        out.writelines(f"P{i};{1000 + i};Project {i}\n" for i in range(projects))
        out.write("VOTES\nvoter_id;vote\n")
        out.writelines(f"{v};P{v % projects}\n" for v in range(ballots))


def test_a_run_killed_in_the_middle_writes_nothing(tmp_path: Path, remote_store_url: str | None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    # On a shared store, a dead run is one that stopped beating: this long, not a minute.
    base = unique_base("import-kill")  # a shared store keeps what earlier runs of this test left
    env = {**subprocess_env(data_dir, base, remote_store_url), "CIVICFED_IMPORT_STALE_AFTER": "1"}
    # In batches of 1,000 (on the embedded store, to a staged copy of the store): killed once a
    # few are written, it must still leave the store as it was before the run.
    env["CIVICFED_IMPORT_BATCH"] = "1000"
    civicfed(env, "territory", "create", "testowo", "--name", "Testowo", "--country", "PL")
    civicfed(env, "import", "pabulib", str(PB), "--territory", "testowo")
    before = civicfed(env, "export", "ndjson", "--territory", "testowo").stdout
    assert before.count("\n") == 6
    source = tmp_path / "big.pb"
    _big_pabulib(source, 20_000, 200_000)
    state = State(env.get("CIVICFED_STATE_DB") or f"sqlite:///{data_dir / 'state.sqlite3'}")
    runs = Runs(state)
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "import", "pabulib", str(source), "--territory", "testowo"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # Embedded: the run read 5,000 items, so the batches before are validated, written or being
        # written to the staged copy. A SPARQL server takes the run as one update: killed reading.
        enough = 5000 if remote_store_url is None else 1
        while not (found := [r for r in runs.list("testowo") if r.source == str(source)]) or found[0].read < enough:
            assert process.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        staged = (data_dir / "oxigraph" / "store.1").is_dir()
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    [killed_run] = [r for r in runs.list("testowo") if r.source == str(source)]
    assert killed_run.status == "running"  # it never got to say anything
    state.close()
    listed = civicfed(env, "export", "ndjson", "--territory", "testowo").stdout
    assert listed == before, "a killed import left records behind"
    # The copy the killed run was writing is gone (the command above opened the store).
    assert staged == (remote_store_url is None), "the run was not writing a staged copy when killed"
    assert remote_store_url or [p.name for p in (data_dir / "oxigraph").iterdir() if p.name.startswith("store.")] == []
    time.sleep(1.5)  # on a shared store: longer than CIVICFED_IMPORT_STALE_AFTER without a beat
    # The next import marks the killed run failed (its write never happened), and runs.
    again = civicfed(env, "import", "pabulib", str(PB), "--territory", "testowo")
    assert json.loads(again.stdout)["status"] == "unchanged"  # (imported before the killed run)
    killed = json.loads(civicfed(env, "import", "report", found[0].id).stdout)
    assert killed["status"] == "failed" and "interrupted" in killed["message"]


def test_a_made_up_parent_never_overwrites_the_real_one(svc: Any, client: FlaskClient, zabrze: Territory) -> None:
    """A Decidim file names its participatory space by URL only: the process the importer makes
    up for it is written only if the territory has none (a richer one is kept as it is)."""
    process = KINDS["process"]
    load(svc.records, "zabrze", [Record(process, {"id": "bp", "title": "Budget participatif", "type": "other"})], None)
    made_up = [
        Record(process, {"id": "bp", "title": "bp", "type": "other"}, if_absent=True),
        Record(process, {"id": "new", "title": "new", "type": "other"}, if_absent=True),
    ]
    report = load(svc.records, "zabrze", made_up, None).to_dict()
    assert (report["created"], report["unchanged"]) == (1, 1), report
    assert client.get("/api/v1/territories/zabrze/processes/bp").get_json()["title"] == "Budget participatif"


def test_a_catalog_import_is_a_change_once_then_unchanged(svc: Any, zabrze: Territory) -> None:
    """A source that yields statements (a DCAT catalog's datasets), not records: its first run
    writes the source's graph and is recorded; the same catalog again rewrites nothing."""
    madrid = SAMPLES / "dcat" / "datos.madrid.es_300312-0-presupuestos-participativos.dcat.rdf"
    first = run_import(svc, "dcat", madrid)
    assert first.status == "done" and first.result is not None, first
    assert first.result["statements"] == 25 and "activity" in first.result
    graph = next(g for g in svc.store.graphs() if g.startswith(svc.urls.public_prefix + "source/zabrze/"))
    assert svc.store.count(graph) == 25
    again = run_import(svc, "dcat", madrid)
    assert again.status == "unchanged", again
    assert svc.store.count(graph) == 25 and _count(svc, f"?a a <{CF.Import}>") == 1


POPULATIONS = SAMPLES / "population" / "insee_populations_legales_paris_lyon_grenoble_rennes.csv"
TABLE_MAPPING = """
[key]
column = "code_insee"
code_list = "insee-cog"
[period]
column = "annee_reference_population"
[[measures]]
column = "population"
unit = "inhabitants"
datatype = "integer"
"""


class _CsvHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = POPULATIONS.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_table_is_fetched_from_a_portal_and_uploaded_with_its_mapping(
    svc: Any, client: FlaskClient, zabrze: Territory
) -> None:
    """A CSV resource of a portal's dataset, fetched within the allowed hosts, loaded as
    observations; the same file uploaded to the API with its mapping as the format's option."""
    portal = ThreadingHTTPServer(("127.0.0.1", 0), _CsvHandler)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{portal.server_address[1]}/dataset/populations/resource/populations.csv"
    svc.config.update(IMPORT_ALLOWED_HOSTS="127.0.0.1", IMPORT_ALLOW_PRIVATE=True)
    try:
        run = Runs(svc.state).queue(
            "zabrze", "table", url, path=None, options={"mapping": TABLE_MAPPING}, agent="test", status=RUNNING
        )
        done = execute(svc, run)
    finally:
        portal.shutdown()
        portal.server_close()
    assert done.status == "done" and done.result is not None, done
    assert done.result["statements"] > 66 and done.sha256 == hashlib.sha256(POPULATIONS.read_bytes()).hexdigest()
    assert _ask(svc, f"<{done.result['activity']}> <{PROV.used}> ?in . ?in <{PROV.specializationOf}> ?s . "
                     f"?s <{DCAT.accessURL}> <{url}>")  # fmt: skip
    # Uploaded: the mapping as the format's option, the file as the body.
    options = json.dumps({"mapping": TABLE_MAPPING})
    answer = client.post(
        "/api/v1/territories/zabrze/imports",
        query_string={"format": "table", "name": "populations.csv", "options": options},
        data=POPULATIONS.read_bytes(),
        headers={**zabrze.auth("admin"), "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 202, answer.get_json()
    uploaded = _wait(client, answer.headers["Location"], zabrze.auth("admin"))
    assert uploaded["status"] == "done" and uploaded["statements"] == done.result["statements"], uploaded
    refused = client.post(
        "/api/v1/territories/zabrze/imports",
        query_string={"format": "table", "options": json.dumps({"maping": "x"})},
        data=b"a,b\n",
        headers={**zabrze.auth("admin"), "Content-Type": "application/octet-stream"},
    )
    assert refused.status_code == 422 and "maping" in refused.get_json()["detail"]


def test_what_every_importer_writes_conforms_to_the_shapes(svc: Any, zabrze: Territory, tmp_path: Path) -> None:
    """The records of real samples of each format, with their runs' provenance and validation
    reports, in one territory's graph: they conform to the SHACL shapes of vocabularies/, and
    every cf: term they use is declared (the schemas validate, the shapes state the same rules)."""
    paris = tmp_path / "paris.csv"
    paris.write_text("".join(PARIS.read_text(encoding="utf-8").splitlines(keepends=True)[:60]), encoding="utf-8")
    boundaries = SAMPLES / "boundaries" / "paris_arrondissements.opendata.paris.fr.geojson"
    runs = [
        run_import(svc, "boundaries", boundaries),
        run_import(svc, "pabulib", PB),
        run_import(svc, "paris-bp", paris),
        run_import(svc, "open311", SAMPLES / "open311" / "bloomington_requests.json"),
        run_import(svc, "open311", SAMPLES / "open311" / "toronto_requests.xml"),
        run_import(svc, "decidim", SAMPLES / "decidim" / "www.decidim.barcelona-open-data-projects.head50.csv"),
        run_import(
            svc, "consul-csv", SAMPLES / "consul" / "consul_de_instances_proposals_scraped.head200.csv", city="Bamberg"
        ),
    ]
    assert all(r.status == "done" for r in runs), [(r.format, r.status, r.message) for r in runs]
    out = io.BytesIO()
    svc.store.dump(out, RdfFormat.N_TRIPLES, graph=svc.urls.territory_graph("zabrze"))
    data = rdflib.Graph().parse(data=out.getvalue().decode(), format="nt")
    assert len(data) > 2000
    conforms, _, report = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES_FILE))
    assert conforms, report[:3000]
    declared = {str(s) for f in (ONTOLOGY_FILE, SCHEMES_FILE) for s in rdflib.Graph().parse(f).subjects()}
    used = {str(t) for _s, p, o in data for t in (p, o) if str(t).startswith(CF_IRI)}
    assert not {u for u in used if u not in declared and "-status-" not in u and "-type-" not in u}


BOUNDARIES = SAMPLES / "boundaries" / "paris_arrondissements.opendata.paris.fr.geojson"


def test_a_record_a_run_only_moved_to_its_district_is_not_the_runs(
    svc: Any, client: FlaskClient, zabrze: Territory
) -> None:
    """A boundaries import moves the territory's located records into their districts; those
    records stay their own source's (an editor's, here): the same boundaries again delete none."""
    process = Record(KINDS["process"], {"id": "bp", "title": "Budget participatif", "type": "other"})
    notre_dame = {"id": "p1", "process": "bp", "title": "Fontaine", "location": {"lat": 48.853, "lon": 2.3499}}
    load(svc.records, "zabrze", [process, Record(KINDS["proposal"], notre_dame)], None)
    first = run_import(svc, "boundaries", BOUNDARIES)
    assert first.result is not None and first.result["updated"] == 1, first
    again = run_import(svc, "boundaries", BOUNDARIES)
    assert again.result is not None and again.result["deleted"] == 0, again
    proposal = client.get("/api/v1/territories/zabrze/proposals/p1")
    assert proposal.status_code == 200 and proposal.get_json()["district"] == "75104"


def test_a_dry_run_is_not_the_run_a_real_one_compares_with(svc: Any, zabrze: Territory) -> None:
    madrid = SAMPLES / "dcat" / "datos.madrid.es_300312-0-presupuestos-participativos.dcat.rdf"
    assert run_import(svc, "dcat", madrid, dry_run=True).status == "done"
    real = run_import(svc, "dcat", madrid)
    assert real.status == "done" and real.result is not None and "activity" in real.result, real
    graph = next(g for g in svc.store.graphs() if g.startswith(svc.urls.public_prefix + "source/zabrze/"))
    assert svc.store.count(graph) == 25


def test_an_upload_of_a_snapshot_format_must_be_named(client: FlaskClient, zabrze: Territory) -> None:
    """Its name is the source: two unnamed uploads of different files would delete each other."""
    answer = client.post(
        "/api/v1/territories/zabrze/imports?format=pabulib",
        data=PB.read_bytes(),
        headers={**zabrze.auth("admin"), "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 400 and "name" in answer.get_json()["detail"]


def test_the_runner_survives_a_run_whose_end_cannot_be_recorded(
    svc: Any, zabrze: Territory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importers.runner import runner

    failed = threading.Event()
    finish = Runs.finish

    def flaky(self: Runs, *args: Any, **kwargs: Any) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("state database away")
        finish(self, *args, **kwargs)

    monkeypatch.setattr(Runs, "finish", flaky)
    runs = Runs(svc.state)
    first = runs.queue("zabrze", "pabulib", "a.pb", path=str(PB), options={}, agent="test")
    runner(svc).wake()
    assert failed.wait(60), "the first run did not end"
    # The runner goes on: a run queued after it is run.
    second = runs.queue("zabrze", "pabulib", "b.pb", path=str(PB), options={}, agent="test")
    runner(svc).wake()
    deadline = time.monotonic() + 60
    while (done := runs.get(second.id)) is None or not done.finished:
        assert time.monotonic() < deadline, "the runner stopped after a run it could not record"
        time.sleep(0.1)
    assert done.status in ("done", "unchanged") and runs.get(first.id).status == "running"  # type: ignore[union-attr]
