"""A territory's Linked Data Event Stream (LDES 1.0 over TREE), walked as an LDES client walks it:
from the root page, following the relations. Members are versions of the public records (an
update adds one and the version it replaced stays; a deletion adds a tombstone and takes the
record's content out of the stream), pages are time-ordered
and linked, full pages never change and say so, nothing private is a member."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rdflib
from flask.testing import FlaskClient
from rdflib import RDF, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, PROV, XSD

from server.ldes.retention import prune
from server.model.kinds import KINDS
from server.records import Op, Records
from vocabularies import AS, CF, LDES, TREE

from .conftest import BASE, make_app, make_territory

T_TREE, T_LDES = rdflib.Namespace(str(TREE)), rdflib.Namespace(str(LDES))
TOMBSTONE = URIRef(str(AS.Tombstone))
PAGE_SIZE = 3


@pytest.fixture
def app(tmp_path: Path, remote_store_url: str | None) -> Iterator[Any]:
    app = make_app(tmp_path, remote_store_url, LDES_PAGE_SIZE=PAGE_SIZE)
    yield app
    app.extensions["civicfed"].close()


@pytest.fixture
def client(app: Any) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def svc(app: Any) -> Iterator[Any]:
    from server.services import services

    with app.app_context():
        yield services()


def _put(client: FlaskClient, auth: dict[str, str], path: str, body: dict[str, Any]) -> None:
    answer = client.put(f"/api/v1/territories/oullins/{path}", json=body, headers=auth)
    assert answer.status_code in (200, 201), answer.get_json()


@pytest.fixture
def oullins(svc: Any, client: FlaskClient) -> dict[str, str]:
    """A territory, a process, five proposals; p1 retitled, p2 deleted, a vote for p3."""
    auth = make_territory(svc, {"id": "oullins", "name": "Oullins", "country": "FR"}, ("editor",)).auth()
    _put(client, auth, "processes/bp", {"title": "Budget participatif", "type": "participatory_budget"})
    for i in range(1, 6):
        _put(client, auth, f"proposals/p{i}", {"title": f"Idée {i}", "process": "bp"})
    _put(client, auth, "proposals/p1", {"title": "Idée 1, revue", "process": "bp"})
    assert client.delete("/api/v1/territories/oullins/proposals/p2", headers=auth).status_code == 200
    _put(client, auth, "votes/v1", {"proposal": "p3", "voter": "jeanne@example.org"})
    return auth


def walk(client: FlaskClient, start: str = "/ldes/oullins") -> list[tuple[str, rdflib.Graph, Any]]:
    """Every page from the root, following the GreaterThanOrEqualTo relations: (URL, graph, answer)."""
    pages, url, seen = [], start, set()
    while url is not None:
        assert url not in seen, f"a relation loops back to {url}"
        seen.add(url)
        answer = client.get(url, headers={"Accept": "text/turtle"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        graph = rdflib.Graph().parse(data=answer.data, format="turtle")
        pages.append((url, graph, answer))
        here = URIRef(BASE + url)
        nxt = [
            graph.value(r, T_TREE.node)
            for r in graph.objects(here, T_TREE.relation)
            if (r, RDF.type, T_TREE.GreaterThanOrEqualToRelation) in graph
        ]
        url = str(nxt[0]).removeprefix(BASE) if nxt else None
    return pages


def members(graph: rdflib.Graph) -> list[tuple[Any, URIRef, Any]]:
    """(time, version, resource) of the page's members, in time order."""
    stream = next(graph.subjects(RDF.type, T_LDES.EventStream))
    found = [
        (graph.value(v, PROV.generatedAtTime).toPython(), v, graph.value(v, DCTERMS.isVersionOf))
        for v in graph.objects(stream, T_TREE.member)
    ]
    return sorted(found)


def test_every_version_is_a_member_in_time_order(oullins: dict[str, str], client: FlaskClient) -> None:
    pages = walk(client)
    everything = [m for _, graph, _ in pages for m in members(graph)]
    assert [t for t, _, _ in everything] == sorted(t for t, _, _ in everything), "members out of time order"
    assert len({v for _, v, _ in everything}) == len(everything), "a member on two pages"
    assert all(len(members(graph)) <= PAGE_SIZE for _, graph, _ in pages)
    proposal = f"{BASE}/id/oullins/proposal/"
    versions: dict[str, list[URIRef]] = {}
    for _, version, resource in everything:
        versions.setdefault(str(resource).removeprefix(proposal), []).append(version)
    merged = rdflib.Graph()
    for _, graph, _ in pages:
        merged += graph
    # p1: created then retitled, both versions, each with its own title.
    assert [str(merged.value(v, DCTERMS.title)) for v in versions["p1"]] == ["Idée 1", "Idée 1, revue"]
    # p2: created then deleted: its member is the tombstone, as the stream declares; what it said
    # is no longer published anywhere in the stream.
    [last] = versions["p2"]
    assert (last, RDF.type, TOMBSTONE) in merged
    assert b"Id\xc3\xa9e 2" not in b"".join(answer.data for _, _, answer in pages)
    stream = next(merged.subjects(RDF.type, T_LDES.EventStream))
    assert merged.value(stream, T_LDES.versionDeleteObject) == TOMBSTONE
    # p3: its vote count moved, a new version; the vote and the voter are nowhere.
    assert len(versions["p3"]) == 2
    body = b"".join(answer.data for _, _, answer in pages)
    assert b"/vote/" not in body and b"jeanne" not in body
    # The pages are linked by time: each relation's value is the next page's first member.
    for (_, graph, _), (_, following, _) in itertools.pairwise(pages):
        relation = next(graph.subjects(RDF.type, T_TREE.GreaterThanOrEqualToRelation))
        assert graph.value(relation, T_TREE.path) == PROV.generatedAtTime
        value = graph.value(relation, T_TREE.value)
        assert value.datatype == XSD.dateTime and value.toPython() == members(following)[0][0]


def test_the_latest_versions_are_the_published_records(oullins: dict[str, str], client: FlaskClient, svc: Any) -> None:
    """Replaying the stream (the latest version of each record, under the record's IRI) gives
    each live record's description as the territory graph holds it."""
    latest: dict[str, tuple[rdflib.Graph, URIRef]] = {}
    for _, graph, _ in walk(client):
        for _, version, resource in members(graph):
            latest[str(resource)] = (graph, version)
    graph_iri = svc.urls.territory_graph("oullins")
    for resource, (graph, version) in latest.items():
        prefix = str(version)
        replayed = {
            (str(s).replace(prefix, resource, 1), str(p), o.n3().replace(prefix, resource, 1))
            for s, p, o in graph
            if (str(s) == prefix or str(s).startswith(prefix + "#"))
            and p not in (DCTERMS.isVersionOf, PROV.generatedAtTime)
        }
        stored = svc.store.describe([resource], graph_iri)
        published = {(s, p, _n3(o)) for s, triples in stored.items() for p, o in triples}
        assert replayed == published, resource


def _n3(term: Any) -> str:
    """A pyoxigraph term as rdflib writes it (the page was parsed by rdflib)."""
    return (
        rdflib.Graph().parse(data=f"<urn:s> <urn:p> {term} .", format="nt").value(URIRef("urn:s"), URIRef("urn:p")).n3()
    )


def test_the_root_describes_the_stream_its_view_and_retention(oullins: dict[str, str], client: FlaskClient) -> None:
    _, graph, answer = walk(client)[0]
    root = URIRef(f"{BASE}/ldes/oullins")
    [(stream, _, _)] = list(graph.triples((None, T_TREE.view, root)))  # exactly one: the LDES discovery rule
    assert (stream, RDF.type, T_LDES.EventStream) in graph
    assert graph.value(stream, T_LDES.timestampPath) == PROV.generatedAtTime
    assert graph.value(stream, T_LDES.versionOfPath) == DCTERMS.isVersionOf
    assert graph.value(stream, DCTERMS.isPartOf) == URIRef(f"{BASE}/id/oullins")
    policy = graph.value(graph.value(root, T_TREE.viewDescription), T_LDES.retentionPolicy)
    assert str(graph.value(policy, T_LDES.fullLogDuration)) == "P7D"
    assert graph.value(policy, T_LDES.versionAmount).toPython() == 1
    assert answer.headers["Vary"] == "Accept"


def test_full_pages_are_immutable_and_the_newest_is_not(oullins: dict[str, str], client: FlaskClient) -> None:
    pages = walk(client)
    assert len(pages) >= 3
    for url, graph, answer in pages[:-1]:
        assert "immutable" in answer.headers["Cache-Control"], url
        assert (URIRef(BASE + url), T_LDES.immutable, rdflib.Literal(True)) in graph
    newest = pages[-1][2]
    assert "immutable" not in newest.headers["Cache-Control"] and "max-age=10" in newest.headers["Cache-Control"]
    # More writes change the newest page, never a full one.
    for i in range(6, 12):
        _put(client, oullins, f"proposals/p{i}", {"title": f"Idée {i}", "process": "bp"})
    _put(client, oullins, "proposals/p1", {"title": "Idée 1, encore", "process": "bp"})
    again = walk(client)
    for (url, _, before), (url_again, _, after) in zip(pages[:-1], again, strict=False):
        assert url == url_again and after.data == before.data and after.headers["ETag"] == before.headers["ETag"]
    assert len(again) > len(pages)


def test_retention_and_renames_never_add_to_a_full_page(oullins: dict[str, str], client: FlaskClient, svc: Any) -> None:
    """A full page keeps its bounds: past the retention window it loses the versions it no
    longer keeps and gains none; renaming the territory leaves it as it was."""
    stream = svc.stream
    root = stream.page("oullins", None)
    assert root.next_from is not None
    later = dt.datetime.now(dt.UTC) + stream.retention.full_log + dt.timedelta(hours=1)
    aged = stream.page("oullins", None, later)
    assert aged.next_from == root.next_from
    assert {e.time_us for e in aged.entries} < {e.time_us for e in root.entries}  # lost some, gained none
    second = client.get(f"/ldes/oullins/{root.next_from}")
    renamed = Records.prepare(KINDS["territory"], {"id": "oullins", "name": "Oullins-la-Belle", "country": "FR"})
    assert svc.records.write_internal("oullins", [Op(KINDS["territory"], "oullins", "upsert", renamed)]).written
    assert client.get(f"/ldes/oullins/{root.next_from}").data == second.data


def test_validators_formats_and_errors(oullins: dict[str, str], client: FlaskClient) -> None:
    first = client.get("/ldes/oullins", headers={"Accept": "text/turtle"})
    assert (
        client.get(
            "/ldes/oullins", headers={"Accept": "text/turtle", "If-None-Match": first.headers["ETag"]}
        ).status_code
        == 304
    )
    turtle = rdflib.Graph().parse(data=first.data, format="turtle")
    as_jsonld = client.get("/ldes/oullins", headers={"Accept": "application/ld+json"})
    assert as_jsonld.mimetype == "application/ld+json"
    assert isomorphic(rdflib.Graph().parse(data=as_jsonld.data, format="json-ld"), turtle)
    as_nt = client.get("/ldes/oullins.nt")
    assert as_nt.mimetype == "application/n-triples"
    assert isomorphic(rdflib.Graph().parse(data=as_nt.data, format="nt"), turtle)
    assert client.get("/ldes/oullins", headers={"Accept": "image/png"}).status_code == 406
    assert client.get("/ldes/nowhere").status_code == 404
    for odd in ("not-a-page", "00012", "٣٤", "99999999999999999999", "253402300800000000"):
        assert client.get(f"/ldes/oullins/{odd}").status_code == 404, odd
    assert KINDS["vote"].private


def test_the_stream_is_linked_from_the_territory_and_void(oullins: dict[str, str], client: FlaskClient) -> None:
    stream = URIRef(f"{BASE}/ldes/oullins#stream")
    cf_stream = URIRef(str(CF.eventStream))
    territory = rdflib.Graph().parse(data=client.get("/id/oullins.ttl").data, format="turtle")
    assert (URIRef(f"{BASE}/id/oullins"), cf_stream, stream) in territory
    void = rdflib.Graph().parse(data=client.get("/.well-known/void", headers={"Accept": "text/turtle"}).data)
    assert (URIRef(f"{BASE}/.well-known/void#oullins"), cf_stream, stream) in void


def test_retention_drops_replaced_versions_then_old_deletions(oullins: dict[str, str], svc: Any) -> None:
    stream = svc.stream

    def members_at(now: dt.datetime) -> list[Any]:
        found, page = [], stream.page("oullins", None, now)
        while True:
            found += page.entries
            if page.next_from is None:
                return found
            page = stream.page("oullins", page.next_from, now)

    now = dt.datetime.now(dt.UTC)
    everything = members_at(now)
    replaced = [e for e in everything if e.historic]
    assert len(replaced) == 2  # p1 retitled, p3's vote count moved (p2's content left with it)
    # Past the full-log window: the replaced versions go, the latest of each record stays.
    later = now + stream.retention.full_log + dt.timedelta(hours=1)
    kept = members_at(later)
    assert not any(e.historic for e in kept) and len(kept) == len(everything) - 2
    assert any(e.deleted for e in kept)
    # Past the deletions' window, the deletion goes too.
    assert not any(e.deleted for e in members_at(now + stream.retention.deletions + dt.timedelta(days=1)))
    # Applied: the replaced versions are removed from the store.
    assert prune(svc.records, "oullins", stream.retention, now) == 0
    assert prune(svc.records, "oullins", stream.retention, later) == 2
    assert svc.store.count(svc.urls.history_graph("oullins")) == 0
    assert [e for e in members_at(now) if not e.historic] == [e for e in everything if not e.historic]
