"""Following a peer: a replica syncs a territory from the origin's event stream over HTTP (a
live `civicfed serve` on loopback), holds what the origin publishes of its records under the
origin's IRIs, takes changes and deletions incrementally (a sync with nothing new is one 304),
is read-only, and refuses what a hostile peer says about others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import rdflib
import requests
import sqlalchemy
from flask import current_app
from rdflib.compare import graph_diff, isomorphic, to_isomorphic

from importers.peer_sync import sync_all, sync_peer
from server.app import create_app
from server.cli import cli
from server.errors import Conflict
from server.indicators import recompute
from server.ingest.peers import Peers, peer_id
from server.model.kinds import KINDS
from server.records import Op
from server.records.index import read_index
from server.services import services
from server.state import State
from vocabularies import CF

from .conftest import LiveServer, civicfed, free_port, make_app, running_server, subprocess_env, unique_base

XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[LiveServer]:
    """A live server with the demo data, pages of 10 members (a territory is tens of pages)."""
    with running_server(
        tmp_path_factory.mktemp("origin"), remote_store_url, extra_env={"CIVICFED_LDES_PAGE_SIZE": "10"}
    ) as server:
        yield server


@pytest.fixture
def replica(tmp_path: Path, remote_store_url: str | None) -> Iterator[Any]:
    app = make_app(tmp_path, remote_store_url, IMPORT_ALLOW_PRIVATE=True)
    with app.app_context():
        yield services()
    app.extensions["civicfed"].close()


def origin_graph(server: LiveServer, territory: str = "lyon") -> rdflib.Graph:
    """What the origin publishes of the territory: its graph, through /sparql."""
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{server.url}/graph/{territory}> {{ ?s ?p ?o }} }}"
    answer = requests.post(
        f"{server.url}/sparql", data={"query": query}, headers={"Accept": "application/n-triples"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return rdflib.Graph().parse(data=answer.text, format="nt")


RELATED = ("/account/", "/import/", "/source/")


def _related(s: Any) -> bool:
    return any(k in str(s) for k in RELATED)


def assert_faithful(replica: rdflib.Graph, origin: rdflib.Graph) -> None:
    """The records are the same graph on both; the accounts, import runs and sources the records
    link to are on the replica as on the origin, and the replica states none the origin does not
    (one no record links to any more — the account of a deleted proposal — stays on the origin,
    and on a replica that had it before)."""
    records = [rdflib.Graph(), rdflib.Graph()]
    for graph, part in zip((replica, origin), records, strict=True):
        for triple in graph:
            if not _related(triple[0]):
                part.add(triple)
    if not isomorphic(*records):
        _, only_replica, only_origin = graph_diff(to_isomorphic(records[0]), to_isomorphic(records[1]))
        raise AssertionError(f"records differ: {sorted(only_replica)[:3]} / {sorted(only_origin)[:3]}")
    linked = {str(o).split("#")[0] for _, _, o in records[1] if _related(o)}
    for triple in origin:
        if _related(triple[0]) and str(triple[0]).split("#")[0] in linked:
            assert triple in replica, f"missing on the replica: {triple}"
    extra = [t for t in replica if _related(t[0]) and t not in origin]
    assert not extra, f"stated by the replica only: {extra[:3]}"


def replica_graph(svc: Any, territory: str = "lyon") -> rdflib.Graph:
    graph = rdflib.Graph()
    lines = "".join(
        f"{q.subject} {q.predicate} {q.object} .\n" for q in svc.store.quads(graph=svc.urls.territory_graph(territory))
    )
    return graph.parse(data=lines, format="nt")


def test_a_replica_holds_what_the_origin_publishes_and_follows_its_changes(origin: LiveServer, replica: Any) -> None:
    peer = Peers(replica.state).add(origin.url, ("lyon",), "test")
    [first] = sync_peer(replica, peer)
    assert first.error is None and not first.rejected, first.to_dict()
    assert first.pages >= 15 and first.applied == first.members > 100
    assert_faithful(replica_graph(replica), origin_graph(origin))
    # The sync is described in PROV-O beside the replica (not in it).
    activity = replica.store.select(
        f"SELECT ?a ?n ?b WHERE {{ GRAPH <{replica.urls.sync_graph('lyon')}> {{ ?a a <{CF.Sync}> ; "
        f"<{CF.membersApplied}> ?n ; <{CF.bytesReceived}> ?b }} }}"
    )
    assert [(int(r["n"].value), int(r["b"].value)) for r in activity] == [(first.applied, first.bytes)]
    # The same SPARQL query gives the same rows on both (the replica keeps the origin's IRIs).
    titles = (
        "SELECT ?p ?t WHERE { GRAPH <%s> { ?p a <https://w3id.org/civicfed/ns#Proposal> ; "
        "<http://purl.org/dc/terms/title> ?t } } ORDER BY ?p"
    )
    asked = requests.post(
        f"{origin.url}/sparql",
        data={"query": titles % f"{origin.url}/graph/lyon"},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    ).json()["results"]["bindings"]
    rows = replica.store.select(titles % replica.urls.territory_graph("lyon"))
    assert [(r["p"].value, r["t"].value) for r in rows] == [(b["p"]["value"], b["t"]["value"]) for b in asked]
    assert len(rows) > 50

    # Nothing new: one conditional request, answered 304.
    [again] = sync_peer(replica, peer)
    assert again.unchanged and again.pages == 1 and again.applied == 0 and again.bytes < 1000, again.to_dict()
    assert replica.store.count(replica.urls.sync_graph("lyon")) == len(activity) * 11  # (no activity for it)

    # An update, a deletion, a creation on the origin: the next sync applies those, not the territory.
    editor = {"Authorization": f"Bearer {origin.keys['editor']}"}
    proposals = f"{origin.url}/api/v1/territories/lyon/proposals"
    listed = requests.get(proposals, params={"limit": 2}, timeout=30).json()["items"]
    changed = {**{k: v for k, v in listed[0].items() if not k.startswith(("record_", "vote_", "comment_"))}}
    changed["title"] = "Un titre revu sur l'origine"
    assert requests.put(f"{proposals}/{listed[0]['id']}", json=changed, headers=editor, timeout=30).status_code == 200
    assert requests.delete(f"{proposals}/{listed[1]['id']}", headers=editor, timeout=30).status_code == 200
    # When the replica first recorded the proposal stays as the origin rewrites it.
    iri = listed[0]["iri"]
    [before] = read_index(replica.store, replica.urls, "lyon", KINDS["proposal"], [iri]).values()
    assert before.created is not None
    made = {"title": "Une idée née après la réplication", "process": listed[0]["process"]}
    assert requests.put(f"{proposals}/tardive", json=made, headers=editor, timeout=30).status_code == 201
    [later] = sync_peer(replica, peer)
    assert later.error is None and 3 <= later.applied <= 6, later.to_dict()
    assert later.bytes < first.bytes / 3
    assert_faithful(replica_graph(replica), origin_graph(origin))
    [after] = read_index(replica.store, replica.urls, "lyon", KINDS["proposal"], [iri]).values()
    assert after.created == before.created and after.modified > before.modified
    # Its indicators follow each sync: what is stored is what its records give.
    values = replica.records.indicator_values("lyon")
    assert values == recompute(replica.records, "lyon")
    live = requests.get(proposals, params={"limit": 500}, timeout=30).json()["items"]
    assert sum(
        v
        for (code, period, *place), v in values.items()
        if code == "proposals" and len(period) == 4 and place == [None, None]
    ) == len([p for p in live if p.get("created")])
    assert_same_json(origin, replica, deleted=listed[1]["id"])


def assert_same_json(origin: LiveServer, replica: Any, deleted: str) -> None:
    """The replica's JSON API serves the replicated records as the origin's does (deletions
    included), each with the URL where it is written: its ``origin``."""
    client = current_app.test_client()  # the replica's application (its context is pushed)
    at_origin = f"{origin.url}/api/v1/territories/lyon"
    [territory] = [t for t in client.get("/api/v1/territories").get_json()["items"] if t["id"] == "lyon"]
    assert territory["origin"] == at_origin and territory["iri"] == f"{origin.url}/id/lyon"
    params = {"limit": 500, "include_deleted": "true"}
    theirs = requests.get(f"{at_origin}/proposals", params=params, timeout=30).json()["items"]
    ours = client.get("/api/v1/territories/lyon/proposals", query_string=params).get_json()["items"]
    assert len(ours) == len(theirs) > 50
    for mine, their in zip(ours, theirs, strict=True):  # in the same order
        assert mine.pop("origin") == f"{at_origin}/proposals/{their['id']}"
        # When this server wrote it (its lists' cursor), not when the origin did.
        assert mine.pop("record_modified") > their.pop("record_modified")
        if mine.get("deleted"):
            assert mine.pop("deleted_at") > their.pop("deleted_at")
        assert mine == their
    gone = client.get(f"/api/v1/territories/lyon/proposals/{deleted}")
    assert gone.status_code == 410 and gone.get_json()["record"]["deleted_at"]
    one = theirs[-1]["id"] if not theirs[-1].get("deleted") else theirs[0]["id"]
    assert (
        client.get(f"/api/v1/territories/lyon/proposals/{one}").get_json()["iri"]
        == f"{origin.url}/id/lyon/proposal/{one}"
    )
    # Its origin decides its receivability: the replica says so rather than an empty answer.
    decided = client.get(f"/api/v1/territories/lyon/proposals/{one}/receivability")
    assert decided.status_code == 404 and "origin decides" in decided.get_json()["detail"]
    assert replica.records.decide("lyon") == 0
    # Lists across territories take it too, beside the replica's own territories; its dumps are served.
    replica.records.create_territory({"id": "bron", "name": "Bron", "country": "FR"})
    op = Op(KINDS["process"], "budget", "upsert", {"title": "Budget participatif", "type": "participatory_budget"})
    replica.records.write_internal("bron", [op])
    op = Op(KINDS["proposal"], "locale", "upsert", {"title": "Une idée d'ici", "process": "budget"})
    replica.records.write_internal("bron", [op])
    across = client.get("/api/v1/proposals", query_string={"limit": 500}).get_json()["items"]
    assert {(p["territory"], p["id"], p["iri"]) for p in across} == {
        *(("lyon", p["id"], p["iri"]) for p in theirs if not p.get("deleted")),
        ("bron", "locale", f"{replica.urls.base}/id/bron/proposal/locale"),
    }
    assert sorted(t["id"] for t in client.get("/api/v1/territories").get_json()["items"]) == ["bron", "lyon"]
    listed = current_app.test_cli_runner().invoke(cli, ["territory", "list"])
    assert listed.output.splitlines() == ["bron", f"lyon  (replica of {origin.url}/id/lyon)"], listed.output
    dump = client.get("/dumps/lyon/proposals.csv")
    assert dump.status_code == 200 and dump.get_data(as_text=True).count("\n") > 50


def test_a_replicated_territory_is_read_only_and_listed_with_its_origin(origin: LiveServer, replica: Any) -> None:
    peer = Peers(replica.state).add(origin.url, ("lyon",), "test")
    sync_peer(replica, peer)
    client = current_app.test_client()  # the replica's application (its context is pushed)
    void = rdflib.Graph().parse(data=client.get("/.well-known/void", headers={"Accept": "text/turtle"}).data)
    subset = rdflib.URIRef(f"{replica.urls.base}/.well-known/void#lyon")
    assert void.value(subset, rdflib.namespace.DCTERMS.source) == rdflib.URIRef(f"{origin.url}/ldes/lyon#stream")
    assert f"{origin.url}/id/lyon" in client.get("/").get_data(as_text=True)
    answer = client.put("/api/v1/territories/lyon/proposals/x", json={"title": "x"})
    assert answer.status_code == 409, answer.get_json()
    # An id that cannot be a territory is a 404 before any database is asked (PostgreSQL refuses
    # a NUL byte with an error: it was a 500 there).
    assert client.put("/api/v1/territories/a%00b/proposals/x", json={"title": "x"}).status_code == 404
    assert answer.get_json()["origin"] == f"{origin.url}/id/lyon"


def test_two_syncs_of_one_territory_at_once_apply_it_once(origin: LiveServer, replica: Any) -> None:
    """Two syncs at the same moment (a schedule and the command line): one reads the stream, the
    other then starts where it stopped (one 304). Both read every page, and counted and described
    the members twice, before syncs of a territory took its lock."""
    peer = Peers(replica.state).add(origin.url, ("lyon",), "test")
    reports: list[Any] = []
    both = [threading.Thread(target=lambda: reports.extend(sync_peer(replica, peer))) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(timeout=600)
    assert all(r.error is None for r in reports), [r.to_dict() for r in reports]
    applied = sorted(r.applied for r in reports)
    assert applied[0] == 0 and applied[1] > 100, applied
    assert replica.store.count(replica.urls.sync_graph("lyon")) == 11  # one activity
    [row] = replica.state.engine.connect().execute(sqlalchemy.text("SELECT members FROM replicas")).all()
    assert row[0] == applied[1]


class Hostile(BaseHTTPRequestHandler):
    """A peer that misbehaves in one chosen way (``server.mode``)."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_port}"
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "loop":
            self.send_response(302)
            self.send_header("Location", self.path + "x")
            self.end_headers()
            return
        stream, version = f"<{base}/ldes/t#stream>", f"<{base}/ldes/t/version/1>"
        body = [
            f"{stream} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/ldes#EventStream> .",
            f"{stream} <https://w3id.org/tree#member> {version} .",
            f'{version} <http://www.w3.org/ns/prov#generatedAtTime> "2026-01-01T00:00:00Z"^^<{XSD_DATETIME}> .',
        ]
        if mode == "foreign":  # a version of someone else's record
            body += [f"{version} <http://purl.org/dc/terms/isVersionOf> <http://victim.example/id/lyon/proposal/p1> .",
                     f'{version} <http://purl.org/dc/terms/title> "pwned" .']  # fmt: skip
        if mode == "spoof":  # a "territory" inside the territory, an id that is no id, a time in 2099
            evil, p1 = f"<{base}/ldes/t/version/2>", f"<{base}/id/t/proposal/p1>"
            cf, dct = "https://w3id.org/civicfed/ns#", "http://purl.org/dc/terms/"
            body = [
                body[0],
                body[1],
                f"{stream} <https://w3id.org/tree#member> {evil} .",
                f'{version} <http://www.w3.org/ns/prov#generatedAtTime> "2099-01-01T00:00:00Z"^^<{XSD_DATETIME}> .',
                f"{version} <{dct}isVersionOf> {p1} .",
                f"{version} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{cf}Proposal> .",
                f'{version} <{dct}identifier> "../../../evil?x=1" .',
                f'{version} <{dct}title> "Une idée" .',
                f'{evil} <http://www.w3.org/ns/prov#generatedAtTime> "2099-01-02T00:00:00Z"^^<{XSD_DATETIME}> .',
                f"{evil} <{dct}isVersionOf> <{base}/id/t/territory/lyon> .",
                f"{evil} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{cf}Territory> .",
                f'{evil} <{dct}identifier> "lyon" .',
            ]
        if mode == "self":  # a page whose next page is itself
            here = f"<{base}{self.path}>"
            body += [
                f"{here} <https://w3id.org/tree#relation> <{base}{self.path}#next> .",
                f"<{base}{self.path}#next> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
                "<https://w3id.org/tree#GreaterThanOrEqualToRelation> .",
                f"<{base}{self.path}#next> <https://w3id.org/tree#node> {here} .",
            ]
        text = "\n".join(body) + "\n"
        if mode == "malformed":
            text = text.replace(" .\n", "\n", 1)
        if mode == "huge":
            text += "# " + "x" * 300_000 + "\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/n-triples")
        self.end_headers()
        self.wfile.write(text.encode())


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("foreign", "outside"),
        ("malformed", "not a readable page"),
        ("loop", "redirects"),
        ("huge", "larger than"),
        ("self", "lead back"),
    ],
)
def test_a_hostile_peer_is_refused_without_damage(replica: Any, mode: str, expected: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.mode = mode  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        replica.config["PEER_MAX_PAGE_BYTES"] = 100_000
        peer = Peers(replica.state).add(f"http://127.0.0.1:{server.server_port}", ("t",), "test")
        graph = replica.urls.territory_graph("t")
        [report] = sync_peer(replica, peer)
        said = json.dumps(report.to_dict())
        assert expected in said, said
        assert list(replica.store.quads(graph=graph)) == []  # (a shared store holds others' graphs)

    finally:
        server.shutdown()
        server.server_close()


def test_a_peer_cannot_pass_off_records_ids_or_times(replica: Any) -> None:
    """What a peer states is served under its own territory, as what its IRIs say: a "territory"
    inside its territory is no record of the JSON API (it was listed among the territories, with
    the id it chose), a record's id is its IRI's (not its dct:identifier), and a time in 2099
    moves neither the replica's record times nor its clock (they were the peer's)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.mode = "spoof"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        [report] = sync_peer(replica, Peers(replica.state).add(base, ("t",), "test"))
        assert report.error is None and report.applied == 2, report.to_dict()
        client = current_app.test_client()
        assert [t["iri"] for t in client.get("/api/v1/territories").get_json()["items"]] == []
        [proposal] = client.get("/api/v1/territories/t/proposals").get_json()["items"]
        assert proposal["id"] == "p1" and proposal["origin"] == f"{base}/api/v1/territories/t/proposals/p1"
        assert proposal["record_modified"] < "2030" and proposal["title"] == "Une idée"
        assert client.get("/api/v1/territories/t/proposals/p1").status_code == 200
        # A record written here afterwards gets a time of now, not one after 2099.
        replica.records.create_territory({"id": "bron", "name": "Bron", "country": "FR"})
        assert client.get("/api/v1/territories/bron").get_json()["record_modified"] < "2030"
    finally:
        server.shutdown()
        server.server_close()


def test_a_sync_killed_anywhere_resumes_losing_and_duplicating_nothing(
    origin: LiveServer, tmp_path: Path, remote_store_url: str | None
) -> None:
    data_dir = tmp_path / "replica"
    data_dir.mkdir(mode=0o700)
    env = {
        **subprocess_env(data_dir, unique_base("sync-kill"), remote_store_url),
        "CIVICFED_IMPORT_ALLOW_PRIVATE": "true",
    }
    civicfed(env, "peer", "add", origin.url, "--territory", "lyon")
    state = State(env.get("CIVICFED_STATE_DB") or f"sqlite:///{data_dir / 'state.sqlite3'}")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "sync"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (found := Peers(state).replica("lyon")) is None or found.members < 20:
            assert process.poll() is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    state.close()
    again = [json.loads(line) for line in civicfed(env, "sync").stdout.splitlines()]
    assert again[0]["error"] is None and again[0]["applied"] > 0, again
    # The replica as its server would open it (make_app would start from empty graphs).
    settings = {"DATA_DIR": str(data_dir), "BASE_URI": env["CIVICFED_BASE_URI"], "TESTING": True}
    settings |= {k: env[f"CIVICFED_{k}"] for k in ("STORE", "STATE_DB") if env.get(f"CIVICFED_{k}")}
    app = create_app(settings)
    try:
        with app.app_context():
            assert_faithful(replica_graph(services()), origin_graph(origin))
    finally:
        app.extensions["civicfed"].close()


def test_the_command_line_adds_a_peer_and_syncs(
    origin: LiveServer, tmp_path: Path, remote_store_url: str | None
) -> None:
    """`civicfed peer add` and `civicfed sync` while the replica's server runs: with the embedded
    store, the command hands the sync to the server and prints its reports."""

    def follow(env: dict[str, str]) -> None:
        added = civicfed(env, "peer", "add", origin.url, "--territory", "grenoble")
        assert "civicfed sync" in added.stdout

    extra = {"CIVICFED_IMPORT_ALLOW_PRIVATE": "true"}
    with running_server(tmp_path / "replica", remote_store_url, extra, demo=False, prepare=follow) as server:
        done = civicfed(server.env, "sync")
        [report] = [json.loads(line) for line in done.stdout.splitlines()]
        assert report["territory"] == "grenoble" and report["applied"] > 0 and report["error"] is None
        assert ("the server owning the store runs the sync" in done.stderr) == (remote_store_url is None)
        listed = civicfed(server.env, "peer", "list").stdout
        assert "grenoble" in listed and f"{report['applied']} members applied" in listed
        answer = requests.get(f"{server.url}/ldes/grenoble", timeout=30)
        assert answer.status_code == 404  # a replica is not republished as a stream of this server


def test_the_server_syncs_its_peers_by_itself(origin: LiveServer, tmp_path: Path, remote_store_url: str | None) -> None:
    """`CIVICFED_SYNC_EVERY`: the server follows its peers without being asked."""

    def follow(env: dict[str, str]) -> None:
        civicfed(env, "peer", "add", origin.url, "--territory", "rennes")

    extra = {"CIVICFED_IMPORT_ALLOW_PRIVATE": "true", "CIVICFED_SYNC_EVERY": "1"}
    with running_server(tmp_path / "replica", remote_store_url, extra, demo=False, prepare=follow) as server:
        query = f"ASK {{ GRAPH <{server.url}/graph/rennes> {{ <{origin.url}/id/rennes> ?p ?o }} }}"
        deadline = time.monotonic() + 60
        while not requests.post(
            f"{server.url}/sparql", data={"query": query}, headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        ).json()["boolean"]:  # fmt: skip
            assert time.monotonic() < deadline, "the server did not sync its peer"
            time.sleep(0.2)


def test_a_peer_away_or_wrong_stops_only_itself(origin: LiveServer, replica: Any) -> None:
    """A peer that does not answer does not stop the others; a territory a peer does not publish
    leaves no replica behind; a replica's id cannot be taken by a local territory."""
    peers = Peers(replica.state)
    peers.add(f"http://127.0.0.1:{free_port()}", None, "test")  # nothing listens there
    peers.add(origin.url, ("lyon", "nowhere"), "test")
    reports = {(r.peer, r.territory): r for r in sync_all(replica)}
    away = [r for (peer, _), r in reports.items() if peer != peer_id(origin.url)]
    assert len(away) == 1 and "could not be fetched" in (away[0].error or ""), away
    assert reports[(peer_id(origin.url), "lyon")].error is None
    assert "404" in (reports[(peer_id(origin.url), "nowhere")].error or "")
    assert peers.replica("nowhere") is None and peers.replica("lyon") is not None
    with pytest.raises(Conflict, match="replicated from peer"):
        replica.records.create_territory({"id": "lyon", "name": "Lyon", "country": "FR"})


def test_base_urls_making_one_id_get_their_own(replica: Any) -> None:
    """http and https of one host (or two paths on it) make the same id: the second peer was an
    IntegrityError (a 500 through the command line's handler); it now gets the next free id."""
    peers = Peers(replica.state)
    first = peers.add("http://peer.example:8001", None, "test")
    second = peers.add("https://peer.example:8001", None, "test")
    third = peers.add("https://peer.example:8001/civicfed", None, "test")
    assert [first.id, second.id, third.id] == ["peer-example-8001", "peer-example-8001-2", "peer-example-8001-3"]
    assert peers.get("peer-example-8001-2").base_url == "https://peer.example:8001"
    with pytest.raises(Conflict, match="already a peer"):
        peers.add("https://peer.example:8001/", None, "test")
