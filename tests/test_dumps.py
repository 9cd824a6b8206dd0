"""Dumps over a real socket: every documented kind and format parses and holds exactly the records
the JSON API and SPARQL see; whole-territory N-Quads/TriG hold exactly the public graph; gzip,
ETag and conditional GET, streaming, 404s, deletions. The columns and formats checked are the
ones docs/data-model.md documents, read from the page itself."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import socket
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest
import rdflib
import requests
from flask.testing import FlaskClient

from server.model.examples import record
from server.model.kinds import BY_PLURAL, KINDS

from .conftest import LiveServer, Territory, put

DOCS = Path(__file__).resolve().parent.parent / "docs" / "data-model.md"
TERRITORIES = ("lyon", "grenoble", "rennes")
RDFLIB_FORMATS = {"ttl": "turtle", "nt": "nt", "jsonld": "json-ld", "nq": "nquads", "trig": "trig"}
MEDIA_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "geojson": "application/geo+json",
    "ttl": "text/turtle",
    "jsonld": "application/ld+json",
    "nt": "application/n-triples",
    "nq": "application/n-quads",
    "trig": "application/trig",
}
RDF_TYPE = rdflib.RDF.type
CF = rdflib.Namespace("https://w3id.org/civicfed/ns#")
SDO = rdflib.Namespace("https://schema.org/")
AS = rdflib.Namespace("https://www.w3.org/ns/activitystreams#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
DUMP_LINE = re.compile(
    r"^Dumps: `/dumps/\{territory\}/(?P<plural>[a-z_]+)\.\{(?P<formats>[a-z,]+)\}`\. "
    r"CSV columns, in order: (?P<columns>.+)\.$",
    re.MULTILINE,
)


def documented_dumps() -> dict[str, tuple[list[str], list[str]]]:
    """What docs/data-model.md promises: per kind (plural), its dump formats and CSV columns."""
    out = {}
    for m in DUMP_LINE.finditer(DOCS.read_text(encoding="utf-8")):
        out[m["plural"]] = (m["formats"].split(","), re.findall(r"`([^`]+)`", m["columns"]))
    return out


DOCUMENTED = documented_dumps()
CASES = [(plural, fmt) for plural, (formats, _) in DOCUMENTED.items() for fmt in formats]
ALL_FORMATS = ("csv", "json", "geojson", "ttl", "jsonld", "nt")


# -- helpers --------------------------------------------------------------------------------------


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=60, **kwargs)


def plain(url: str, **headers: str) -> requests.Response:
    """GET without content coding, as a client that does not accept gzip."""
    return get(url, headers={"Accept-Encoding": "identity", **headers})


def settled(url: str) -> requests.Response:
    """A plain GET once the dump's last change is over a second old: Last-Modified (one-second
    precision) is only sent then."""
    resp = plain(url)
    if "Last-Modified" not in resp.headers:
        time.sleep(1.1)
        resp = plain(url)
    assert "Last-Modified" in resp.headers
    return resp


def api_records(server: LiveServer, territory: str, plural: str) -> list[dict[str, Any]]:
    """Every live record of a kind in a territory, as the JSON API lists them."""
    if plural == "territories":
        return [get(f"{server.url}/api/v1/territories/{territory}").json()]
    items: list[dict[str, Any]] = []
    url: str | None = f"{server.url}/api/v1/territories/{territory}/{plural}?limit=1000"
    while url:
        body = get(url, headers=server.auth() if BY_PLURAL[plural].private else {}).json()
        items += body["items"]
        url = body["next"]
    return items


def sparql_select(server: LiveServer, query: str) -> list[dict[str, Any]]:
    resp = get(server.url + "/sparql", params={"query": query, "format": "json"})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]["bindings"]  # type: ignore[no-any-return]


def term(binding: dict[str, str]) -> rdflib.term.Node:
    """An RDF term from a SPARQL JSON results binding."""
    if binding["type"] == "uri":
        return rdflib.URIRef(binding["value"])
    if binding["type"] == "bnode":
        return rdflib.BNode(binding["value"])
    datatype = binding.get("datatype")
    return rdflib.Literal(binding["value"], lang=binding.get("xml:lang"), datatype=datatype and rdflib.URIRef(datatype))


def record_iris(graph: rdflib.Graph, plural: str) -> set[str]:
    """Records of a kind in a parsed RDF dump: subjects typed with the kind's main class."""
    cls = rdflib.URIRef(BY_PLURAL[plural].mapping.types[0])
    return {str(s) for s in graph.subjects(RDF_TYPE, cls) if "#" not in str(s)}


def parse_rdf(body: bytes, fmt: str) -> rdflib.Graph:
    if fmt in ("nq", "trig"):
        dataset = rdflib.Dataset(default_union=True)  # triple patterns see every graph
        dataset.parse(data=body, format=RDFLIB_FORMATS[fmt])
        return dataset
    return rdflib.Graph().parse(data=body, format=RDFLIB_FORMATS[fmt])


def check_point(geometry: dict[str, Any]) -> tuple[float, float]:
    """A valid RFC 7946 Point: two numbers, longitude then latitude, in range."""
    assert geometry["type"] == "Point", geometry
    coordinates = geometry["coordinates"]
    assert len(coordinates) == 2 and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates), (
        coordinates
    )
    lon, lat = coordinates
    assert -180 <= lon <= 180 and -90 <= lat <= 90, coordinates
    return lon, lat


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """A JSON record flattened as the CSV documents it: an object field becomes field_sub columns."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if isinstance(value, dict):
            out.update({f"{key}_{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def cell_holds(cell: str, value: Any) -> bool:
    """Whether a CSV cell reads back as the JSON value: booleans true/false, lists of codes and ids
    joined with |, lists of objects or of lists (coordinates) as one JSON array, absent as empty."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == ("true" if value else "false")
    if isinstance(value, int | float):
        return cell != "" and float(cell) == value
    if isinstance(value, list):
        if value and isinstance(value[0], dict | list):
            return json.loads(cell) == value  # type: ignore[no-any-return]
        return cell.split("|") == [str(v) for v in value] if value else cell == ""
    return cell == str(value)


def raw_get(url: str, headers: dict[str, str] | None = None) -> tuple[str, dict[str, str], list[bytes]]:
    """GET over a bare socket: the status line, headers, and the body as the chunks it came in."""
    parts = urllib.parse.urlsplit(url)
    request = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    request += [f"{k}: {v}" for k, v in (headers or {}).items()]
    data = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
        while block := sock.recv(1 << 16):
            data += block
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    if fields.get("transfer-encoding") != "chunked":
        return status, fields, [body]
    chunks = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return status, fields, chunks
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def write_proposal(server: LiveServer, local_id: str) -> dict[str, Any]:
    data = record("proposal", id=local_id, author_id=None, author="dump-tester", handled_by=None, process="bp-2024")
    resp = requests.put(
        f"{server.url}/api/v1/territories/lyon/proposals/{local_id}", json=data, headers=server.auth(), timeout=30
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


# -- every documented dump ------------------------------------------------------------------------


def test_docs_document_a_dump_for_every_published_kind() -> None:
    published = {k.plural for k in KINDS.values() if not k.private}
    assert set(DOCUMENTED) == published
    for plural, (formats, columns) in DOCUMENTED.items():
        expected = {"csv", "json", "ttl", "jsonld", "nt"} | ({"geojson"} if BY_PLURAL[plural].mappable else set())
        assert set(formats) == expected, plural
        assert columns[:3] == ["id", "iri", "territory"] and columns[-1] == "record_modified", plural


@pytest.mark.parametrize("territory", TERRITORIES)
@pytest.mark.parametrize(("plural", "fmt"), CASES)
def test_every_documented_dump_parses_and_holds_the_api_records(
    live_server: LiveServer, territory: str, plural: str, fmt: str
) -> None:
    resp = plain(f"{live_server.url}/dumps/{territory}/{plural}.{fmt}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == MEDIA_TYPES[fmt]
    records = api_records(live_server, territory, plural)
    assert records, f"the demo data has {plural} in {territory}"
    iris = {r["iri"] for r in records}
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8"), newline="")))
        header, body = rows[0], rows[1:]
        assert header == DOCUMENTED[plural][1]
        assert len(body) == len(records)
        assert sorted(row[1] for row in body) == sorted(iris)  # one row per resource
    elif fmt == "json":
        assert sorted(resp.json(), key=lambda r: r["iri"]) == sorted(records, key=lambda r: r["iri"])
    elif fmt == "geojson":
        collection = resp.json()
        assert collection["type"] == "FeatureCollection"
        if plural == "districts":  # boundaries, as the API gives them
            shapes = {r["iri"]: r["geometry"] for r in records}
            assert {f["id"]: f["geometry"] for f in collection["features"]} == shapes
            assert all(f["geometry"]["type"] == "Polygon" for f in collection["features"])
            return
        located = {r["iri"]: r["location"] for r in records if r.get("location")}
        assert located, f"some {plural} of {territory} have a location"
        assert len(collection["features"]) == len(located)
        for feature in collection["features"]:
            assert feature["type"] == "Feature" and "location" not in feature["properties"]
            lon, lat = check_point(feature["geometry"])
            assert (lat, lon) == (located[feature["id"]]["lat"], located[feature["id"]]["lon"])
    else:
        graph = parse_rdf(resp.content, fmt)
        assert record_iris(graph, plural) == iris


@pytest.mark.parametrize("territory", TERRITORIES)
def test_record_counts_equal_the_sparql_counts(live_server: LiveServer, territory: str) -> None:
    graph = f"{live_server.env['CIVICFED_BASE_URI']}/graph/{territory}"
    types = " ".join(f"<{BY_PLURAL[p].mapping.types[0]}>" for p in DOCUMENTED)
    rows = sparql_select(
        live_server,
        f"SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s a ?c VALUES ?c {{ {types} }} "
        'FILTER(!CONTAINS(STR(?s), "#")) } } GROUP BY ?c',
    )
    counts = {r["c"]["value"]: int(r["n"]["value"]) for r in rows}
    for plural in DOCUMENTED:
        body = plain(f"{live_server.url}/dumps/{territory}/{plural}.csv").content.decode("utf-8")
        n_rows = len(list(csv.reader(io.StringIO(body, newline="")))) - 1
        assert n_rows == counts.get(BY_PLURAL[plural].mapping.types[0], 0), plural


@pytest.mark.parametrize("plural", list(DOCUMENTED))
def test_csv_cells_hold_the_json_values(live_server: LiveServer, plural: str) -> None:
    """Flat columns: object fields as field_sub, every field of the JSON record in some column."""
    records = {r["iri"]: flatten(r) for r in api_records(live_server, "lyon", plural)}
    body = plain(f"{live_server.url}/dumps/lyon/{plural}.csv").content.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert len(rows) == len(records)
    for row in rows:
        flat = records[row["iri"]]
        assert set(flat) <= set(row), f"fields missing from the CSV: {set(flat) - set(row)}"
        for column, cell in row.items():
            assert cell_holds(cell, flat.get(column)), (row["iri"], column, cell, flat.get(column))


def test_csv_lists_of_objects_read_back(live_server: LiveServer) -> None:
    """A list of objects is one JSON value: a | or a quote in a phase title cannot split it."""
    local_id = f"dumps-phases-{uuid.uuid4().hex[:8]}"
    phases = [
        {"title": 'Dépôt | "idées", avis', "start_date": "2025-01-01", "end_date": "2025-02-01"},
        {"title": "Vote|final\nrésultats", "start_date": "2025-03-01", "end_date": "2025-03-31"},
    ]
    data = record("process", id=local_id, phases=phases, organizer=None)
    url = f"{live_server.url}/api/v1/territories/lyon/processes/{local_id}"
    created = requests.put(url, json=data, headers=live_server.auth(), timeout=30)
    assert created.status_code == 201, created.text
    try:
        body = plain(f"{live_server.url}/dumps/lyon/processes.csv").content.decode("utf-8")
        row = next(r for r in csv.DictReader(io.StringIO(body, newline="")) if r["id"] == local_id)
        assert json.loads(row["phases"]) == created.json()["phases"] == phases
        assert row["themes"].split("|") == data["themes"]
    finally:
        requests.delete(url, headers=live_server.auth(), timeout=30)


# -- whole territory ------------------------------------------------------------------------------


@pytest.mark.parametrize("territory", TERRITORIES)
@pytest.mark.parametrize("fmt", ["nq", "trig"])
def test_territory_dump_is_exactly_its_public_graph(live_server: LiveServer, territory: str, fmt: str) -> None:
    base = live_server.env["CIVICFED_BASE_URI"]
    graph_iri = f"{base}/graph/{territory}"
    resp = plain(f"{live_server.url}/dumps/{territory}.{fmt}")
    assert resp.status_code == 200 and resp.headers["Content-Type"].split(";")[0] == MEDIA_TYPES[fmt]
    assert b"/_internal/" not in resp.content
    dataset = parse_rdf(resp.content, fmt)
    quads = list(dataset.quads((None, None, None, None)))
    assert {str(g) for *_, g in quads} == {graph_iri}
    rows = sparql_select(live_server, f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}")
    published = {(term(r["s"]), term(r["p"]), term(r["o"])) for r in rows}
    assert 1000 < len(published) < 10_000  # (under the endpoint's row cap: the whole graph)
    assert {(s, p, o) for s, p, o, _ in quads} == published
    for vote_class in (CF.Vote, SDO.VoteAction):
        assert not any(dataset.quads((None, RDF_TYPE, vote_class, None)))


def test_no_vote_nor_participant_identity_in_any_dump(live_server: LiveServer) -> None:
    """Votes are counted, never published: no vote IRI, no pseudonym of someone who only voted,
    no platform user id in any dump of lyon."""
    votes = api_records(live_server, "lyon", "votes")
    assert len(votes) > 100
    authors = {r.get("author_id") for p in ("proposals", "comments") for r in api_records(live_server, "lyon", p)}
    voters_only = {v["voter_id"] for v in votes} - authors
    assert len(voters_only) > 10
    vote_iri = votes[0]["iri"].encode()
    urls = [f"{live_server.url}/dumps/lyon.{fmt}" for fmt in ("nq", "trig")]
    urls += [f"{live_server.url}/dumps/lyon/{plural}.{fmt}" for plural, fmt in CASES]
    for url in urls:
        body = plain(url).content
        assert vote_iri not in body and b"/vote/" not in body, url
        assert b"user-lyon-" not in body and b"voter_id" not in body, url
        leaked = [v for v in voters_only if v.encode() in body]
        assert not leaked, (url, leaked[:3])


# -- HTTP behaviour -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dumps/lyon/proposals.csv", "/dumps/lyon/meetings.geojson", "/dumps/lyon.nq"])
def test_gzip_when_accepted_and_plain_otherwise(live_server: LiveServer, path: str) -> None:
    url = live_server.url + path
    identity = plain(url)
    assert identity.status_code == 200 and "Content-Encoding" not in identity.headers
    zipped = get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == identity.content
    for refused in ("gzip;q=0, identity", "br", ""):
        other = get(url, headers={"Accept-Encoding": refused}, stream=True)
        assert "Content-Encoding" not in other.headers, refused
        assert other.raw.read(decode_content=False) == identity.content, refused
    bare = get(url, headers={"Accept-Encoding": None}, stream=True)  # type: ignore[dict-item]
    assert "Content-Encoding" not in bare.headers and bare.raw.read(decode_content=False) == identity.content


@pytest.mark.parametrize("path", ["/dumps/lyon/proposals.csv", "/dumps/rennes/rules.ttl", "/dumps/grenoble.trig"])
def test_etag_and_conditional_get(live_server: LiveServer, path: str) -> None:
    url = live_server.url + path
    first = settled(url)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag)
    assert plain(url).headers["ETag"] == etag  # stable while nothing changes
    for validator in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = plain(url, **{"If-None-Match": validator})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag, validator
    assert plain(url, **{"If-None-Match": '"other"'}).status_code == 200
    assert plain(url, **{"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    # The gzip representation is another representation: its own validator, honoured for gzip.
    zipped = get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["ETag"] != etag
    assert get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}).status_code == 304
    both = f"{etag}, {zipped.headers['ETag']}"  # what a cache holding both variants sends
    assert get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": both}).status_code == 304
    assert plain(url, **{"If-None-Match": both}).status_code == 304
    assert plain(url, **{"If-None-Match": zipped.headers["ETag"]}).status_code == 200


def test_a_write_changes_the_etag_and_a_deletion_empties_the_dumps(live_server: LiveServer) -> None:
    url = live_server.url
    watched = {p: plain(url + p).headers["ETag"] for p in ("/dumps/lyon/proposals.csv", "/dumps/lyon.nq")}
    untouched = {
        p: plain(url + p).headers["ETag"] for p in ("/dumps/lyon/budgets.csv", "/dumps/grenoble/proposals.csv")
    }
    local_id = f"dumps-{uuid.uuid4().hex[:8]}"
    created = write_proposal(live_server, local_id)
    iri = created["iri"]
    for path, old in watched.items():
        now = plain(url + path, **{"If-None-Match": old})
        assert now.status_code == 200 and now.headers["ETag"] != old, path
        watched[path] = now.headers["ETag"]
    for path, old in untouched.items():
        assert plain(url + path).headers["ETag"] == old, path
    for fmt in ALL_FORMATS:
        assert iri.encode() in plain(f"{url}/dumps/lyon/proposals.{fmt}").content, fmt

    deleted = requests.delete(
        f"{url}/api/v1/territories/lyon/proposals/{local_id}", headers=live_server.auth(), timeout=30
    )
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    for path, old in watched.items():
        assert plain(url + path).headers["ETag"] != old, path
    for fmt in ALL_FORMATS:
        body = plain(f"{url}/dumps/lyon/proposals.{fmt}").content
        assert iri.encode() not in body, fmt
    rows = list(csv.DictReader(io.StringIO(plain(f"{url}/dumps/lyon/proposals.csv").text, newline="")))
    assert local_id not in {r["id"] for r in rows}
    # The territory's graph keeps a tombstone (for syncing consumers), never the record's content.
    dataset = parse_rdf(plain(f"{url}/dumps/lyon.nq").content, "nq")
    node = rdflib.URIRef(iri)
    assert set(dataset.objects(node, RDF_TYPE)) == {AS.Tombstone}
    assert not list(dataset.objects(node, DCT.title))
    assert not [s for s in dataset.subjects() if str(s).startswith(iri + "#")]


def test_last_modified_never_validates_a_copy_older_than_a_later_change(live_server: LiveServer) -> None:
    """Last-Modified has one-second precision: a client echoing it in If-Modified-Since must not
    get 304 after a change made within that same second."""
    url = f"{live_server.url}/dumps/lyon/proposals.csv"
    first_id, second_id = (f"dumps-{uuid.uuid4().hex[:8]}" for _ in range(2))
    try:
        write_proposal(live_server, first_id)
        seen = plain(url)
        assert first_id in seen.text
        write_proposal(live_server, second_id)
        since = seen.headers.get("Last-Modified")
        if since is not None:
            again = plain(url, **{"If-Modified-Since": since})
            assert again.status_code == 200 and second_id in again.text, since
    finally:
        for local_id in (first_id, second_id):
            requests.delete(
                f"{live_server.url}/api/v1/territories/lyon/proposals/{local_id}",
                headers=live_server.auth(),
                timeout=30,
            )


@pytest.mark.parametrize("path", ["/dumps/lyon.nq", "/dumps/lyon.trig", "/dumps/lyon/comments.json"])
def test_dumps_are_streamed(live_server: LiveServer, path: str) -> None:
    """Sent as it is produced: chunked, no Content-Length, in many chunks, gzip included."""
    whole = plain(live_server.url + path).content
    status, headers, chunks = raw_get(live_server.url + path)
    assert status.startswith("HTTP/1.1 200")
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert len(chunks) > 10 and b"".join(chunks) == whole
    status, headers, chunks = raw_get(live_server.url + path, {"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and "content-length" not in headers and len(chunks) > 1
    assert gzip.decompress(b"".join(chunks)) == whole


@pytest.mark.parametrize(
    "path",
    [
        "/dumps/nowhere/proposals.csv",
        "/dumps/nowhere.nq",
        "/dumps/lyon/votes.csv",
        "/dumps/lyon/votes.ttl",
        "/dumps/lyon/ideas.csv",
        "/dumps/lyon/proposals.xml",
        "/dumps/lyon/proposals",
        "/dumps/lyon/processes.geojson",
        "/dumps/lyon/comments.geojson",
        "/dumps/lyon.zip",
        "/dumps/lyon",
        "/dumps/lyon.nq.gz",
    ],
)
def test_unknown_territory_kind_or_format_is_404(live_server: LiveServer, path: str) -> None:
    assert plain(live_server.url + path).status_code == 404
    assert requests.head(live_server.url + path, timeout=30).status_code == 404


@pytest.mark.parametrize("path", ["/dumps/lyon/proposals.csv", "/dumps/lyon/projects.geojson", "/dumps/rennes.nq"])
def test_head_answers_like_get_without_a_body(live_server: LiveServer, path: str) -> None:
    got = settled(live_server.url + path)
    head = requests.head(live_server.url + path, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert head.status_code == 200 and head.content == b""
    for name in ("ETag", "Content-Type", "Last-Modified", "Content-Disposition"):
        assert head.headers[name] == got.headers[name], name
    conditional = {"Accept-Encoding": "identity", "If-None-Match": got.headers["ETag"]}
    assert requests.head(live_server.url + path, headers=conditional, timeout=30).status_code == 304


# -- controlled data (Flask test client) ----------------------------------------------------------


def client_body(client: FlaskClient, path: str) -> bytes:
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.get_data(as_text=True)[:300])
    return resp.get_data()


def test_a_territory_without_records_has_empty_dumps(client: FlaskClient, lyon: Territory) -> None:
    for plural, (formats, columns) in DOCUMENTED.items():
        expected = 1 if plural == "territories" else 0
        for fmt in formats:
            body = client_body(client, f"/dumps/lyon/{plural}.{fmt}")
            if fmt == "csv":
                rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
                assert rows[0] == columns and len(rows) == 1 + expected, plural
            elif fmt == "json":
                assert len(json.loads(body)) == expected, plural
            elif fmt == "geojson":
                assert len(json.loads(body)["features"]) == expected, plural
            else:
                assert len(record_iris(parse_rdf(body, fmt), plural)) == expected, (plural, fmt)
    dataset = parse_rdf(client_body(client, "/dumps/lyon.trig"), "trig")
    assert {str(s) for s in dataset.subjects(RDF_TYPE, CF.Territory)} == {f"{dataset_base(client)}/id/lyon"}


def dataset_base(client: FlaskClient) -> str:
    return str(client.application.config["BASE_URI"])


def test_dumps_spanning_many_pages_are_whole(
    client: FlaskClient, seeded: Territory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records are read a page at a time: the pages join into one valid file of each format."""
    import exporters.dumps

    monkeypatch.setattr(exporters.dumps, "PAGE", 4)
    for i in range(10):
        data = record("proposal", id=f"paged-{i:02d}", location={"lat": 45.7 + i / 100, "lon": 4.8})
        assert put(client, seeded, "proposal", data).status_code == 201
    base = dataset_base(client)
    iris = {f"{base}/id/lyon/proposal/paged-{i:02d}" for i in range(10)} | {f"{base}/id/lyon/proposal/p1"}
    for fmt in ALL_FORMATS:
        body = client_body(client, f"/dumps/lyon/proposals.{fmt}")
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
            assert {r["iri"] for r in rows} == iris and len(rows) == len(iris)
        elif fmt == "json":
            assert sorted(r["iri"] for r in json.loads(body)) == sorted(iris)
        elif fmt == "geojson":
            features = json.loads(body)["features"]
            assert sorted(f["id"] for f in features) == sorted(iris)
            for feature in features:
                check_point(feature["geometry"])
        else:
            graph = parse_rdf(body, fmt)
            assert record_iris(graph, "proposals") == iris, fmt
            assert len(set(graph.objects(None, rdflib.URIRef("http://www.w3.org/ns/locn#fullAddress")))) >= 1
