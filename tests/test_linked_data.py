"""Dereferenceable IRIs (``GET {base}/id/…``) over a real socket, read by real clients: requests
for the protocol (content negotiation, validators, HEAD, 404/406/410), rdflib for the RDF
representations, an HTML parser for the pages browsers get.

The demo data of territory rennes is only read (nothing writes there); records a test needs to
change or delete are written to lyon through the JSON API, under ids of this module's own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import pytest
import rdflib
import requests
from rdflib.compare import graph_diff, to_isomorphic

from server.model.examples import record
from server.model.kinds import KINDS
from vocabularies import CONTEXT_FILE, ONTOLOGY_FILE, PREFIXES, SCHEMES_FILE

from .conftest import LiveServer

TIMEOUT = 30
CF = rdflib.Namespace("https://w3id.org/civicfed/ns#")
AS = rdflib.Namespace("https://www.w3.org/ns/activitystreams#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
SKOS = rdflib.Namespace("http://www.w3.org/2004/02/skos/core#")
TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML = (
    "text/turtle",
    "application/ld+json",
    "application/rdf+xml",
    "application/n-triples",
    "text/html",
)
OFFERED = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES, HTML)
RDF_MEDIA = {TURTLE: "turtle", JSON_LD: "json-ld", RDF_XML: "xml", N_TRIPLES: "nt"}
SUFFIXES = {"ttl": TURTLE, "jsonld": JSON_LD, "rdf": RDF_XML, "nt": N_TRIPLES, "html": HTML}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
PUBLISHED = ("territory", "process", "proposal", "comment", "meeting", "budget", "project", "organization", "rule")
PLURAL = {k: KINDS[k].plural for k in PUBLISHED}
#: A compact IRI as a page would show it when it has no human label ("schema:VoteAction").
COMPACT = re.compile(rf"^(?:{'|'.join(map(re.escape, PREFIXES))}):\S*$")
#: This module's records in lyon: unique within the session's live server.
UID = uuid.uuid4().hex[:6]


# -- helpers ----------------------------------------------------------------------------------


def get(url: str, accept: str | None = None, method: str = "GET", **headers: str) -> requests.Response:
    """One request; ``accept=None`` sends no Accept header at all."""
    return requests.request(method, url, headers={"Accept": accept, **headers}, timeout=TIMEOUT)


def media(resp: requests.Response) -> str:
    return resp.headers["Content-Type"].split(";")[0].strip()


def graph_of(resp: requests.Response, iri: str) -> rdflib.Graph:
    return rdflib.Graph().parse(data=resp.content, format=RDF_MEDIA[media(resp)], publicID=iri)


def assert_same_graph(expected: rdflib.Graph, got: rdflib.Graph, what: str) -> None:
    if to_isomorphic(expected) != to_isomorphic(got):
        _, only_expected, only_got = graph_diff(to_isomorphic(expected), to_isomorphic(got))
        pytest.fail(f"{what}: missing {sorted(only_expected)[:5]}, extra {sorted(only_got)[:5]}")


def http_time(value: str) -> dt.datetime:
    return parsedate_to_datetime(value)


def record_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def link_header(resp: requests.Response) -> dict[str, tuple[str, str]]:
    """``Link`` entries: media type → (target, rel)."""
    out = {}
    for target, params in re.findall(r"<([^>]*)>\s*((?:;\s*[^,;]+)*)", resp.headers.get("Link", "")):
        attrs = dict(re.findall(r'(\w+)="?([^";]*)"?', params))
        out[attrs.get("type", "")] = (target, attrs.get("rel", ""))
    return out


def vocabulary_labels() -> dict[str, dict[str, str]]:
    """rdfs:label / skos:prefLabel of civicfed's terms and concepts, by IRI and language."""
    out: dict[str, dict[str, str]] = {}
    graph = rdflib.Graph().parse(ONTOLOGY_FILE).parse(SCHEMES_FILE)
    for prop in (rdflib.RDFS.label, SKOS.prefLabel):
        for s, o in graph.subject_objects(prop):
            out.setdefault(str(s), {})[o.language or "en"] = str(o)
    return out


@dataclass
class Page:
    """What a browser shows of a resource page: title, property table, links, map, scripts."""

    lang: str | None = None
    title: str = ""
    h1: str = ""
    h2: list[str] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)  # (predicate IRI, label)
    links: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (href, text, attributes)
    inbound: list[tuple[str, str]] = field(default_factory=list)  # (href, text of the list item)
    tags: list[str] = field(default_factory=list)
    iframes: list[str] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""

    def hrefs(self) -> set[str]:
        return {href for href, _, _ in self.links}


class _PageParser(HTMLParser):
    CAPTURE = frozenset({"a", "title", "h1", "h2", "span", "script", "li", "th"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.open: list[tuple[str, dict[str, str], list[str]]] = []
        self.li_links: list[str] = []
        self.body: list[str] = []

    def inside(self, tag: str) -> bool:
        return any(t == tag for t, _, _ in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.page.lang = a.get("lang")
        elif tag == "iframe":
            self.page.iframes.append(a.get("src", ""))
        if tag in self.CAPTURE:
            self.open.append((tag, a, []))

    def handle_data(self, data: str) -> None:
        for _, _, buffer in self.open:
            buffer.append(data)
        if not self.inside("script") and not self.inside("title"):
            self.body.append(data)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i][0] == tag:
                _, a, buffer = self.open.pop(i)
                self.closed(tag, a, "".join(buffer).strip())
                return

    def closed(self, tag: str, a: dict[str, str], text: str) -> None:
        page = self.page
        text = " ".join(text.split())
        if tag == "title":
            page.title = text
        elif tag == "h1":
            page.h1 = text
        elif tag == "h2":
            page.h2.append(text)
        elif tag == "script":
            page.scripts.setdefault(a.get("type", ""), []).append(text)
        elif tag == "span" and "tag" in a.get("class", "").split():
            page.tags.extend(t.strip() for t in text.split(","))
        elif tag == "a":
            page.links.append((a.get("href", ""), text, a))
            if self.inside("th"):
                page.properties.append((a.get("href", ""), text))
            if self.inside("li"):
                self.li_links.append(a.get("href", ""))
        elif tag == "li" and page.h2 and self.li_links:
            page.inbound.append((self.li_links[0], text))
            self.li_links = []


def parse_page(resp: requests.Response) -> Page:
    assert media(resp) == HTML, resp.headers["Content-Type"]
    parser = _PageParser()
    parser.feed(resp.text)
    parser.close()
    parser.page.text = " ".join("".join(parser.body).split())
    return parser.page


# -- fixtures ---------------------------------------------------------------------------------


@dataclass
class Demo:
    """IRIs of the demo data of territory rennes, one or more per kind, and their API records."""

    server: LiveServer
    iris: dict[str, str]
    records: dict[str, dict[str, Any]]

    @property
    def base(self) -> str:
        return self.server.env["CIVICFED_BASE_URI"]


def api_items(server: LiveServer, territory: str, plural: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{server.url}/api/v1/territories/{territory}/{plural}?limit=1000", timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


@pytest.fixture(scope="module")
def demo(live_server: LiveServer) -> Demo:
    """Real IRIs of every published kind, found through the JSON API (and checked with SPARQL)."""
    base = live_server.env["CIVICFED_BASE_URI"]
    assert live_server.url == base  # the base IRI is the server's own URL: IRIs dereference here
    items = {kind: api_items(live_server, "rennes", PLURAL[kind]) for kind in PUBLISHED if kind != "territory"}
    records: dict[str, dict[str, Any]] = {}
    territory = requests.get(f"{live_server.url}/api/v1/territories/rennes", timeout=TIMEOUT).json()
    records["territory"] = territory
    by_id = {kind: {x["id"]: x for x in xs} for kind, xs in items.items()}
    reply = next(c for c in items["comment"] if c.get("reply_to") and c["about"]["kind"] == "proposal")
    records["comment"] = reply
    records["parent-comment"] = by_id["comment"][reply["reply_to"]]
    records["proposal"] = by_id["proposal"][reply["about"]["id"]]
    records["process"] = next(p for p in items["process"] if p.get("phases"))
    records["meeting"] = next(m for m in items["meeting"] if m["mode"] == "in_person")
    records["meeting-online"] = next(m for m in items["meeting"] if m["mode"] == "online")
    records["meeting-hybrid"] = next(m for m in items["meeting"] if m["mode"] == "hybrid")
    records["related-proposal"] = by_id["proposal"][records["meeting"]["proposals"][0]]
    records["organization"] = next(o for o in items["organization"] if o.get("siren"))
    for kind in ("budget", "project", "rule"):
        records[kind] = items[kind][0]
    iris = {name: r["iri"] for name, r in records.items()}
    # The same resources, seen by the SPARQL endpoint: the IRIs are those the store holds.
    values = " ".join(f"<{iri}>" for iri in iris.values())
    found = requests.get(
        f"{live_server.url}/sparql",
        params={"query": f"SELECT DISTINCT ?s WHERE {{ VALUES ?s {{ {values} }} ?s a ?type }}", "format": "json"},
        timeout=TIMEOUT,
    ).json()["results"]["bindings"]
    assert {b["s"]["value"] for b in found} == set(iris.values())
    return Demo(live_server, iris, records)


class Lyon:
    """Writes records to lyon through the JSON API with the editor key, as a platform would."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.api = f"{server.url}/api/v1/territories/lyon"

    def put(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        resp = requests.put(
            f"{self.api}/{KINDS[kind].plural}/{data['id']}", json=data, headers=self.server.auth(), timeout=TIMEOUT
        )
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def delete(self, kind: str, local_id: str) -> dict[str, Any]:
        resp = requests.delete(
            f"{self.api}/{KINDS[kind].plural}/{local_id}", headers=self.server.auth(), timeout=TIMEOUT
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def get(self, kind: str, local_id: str) -> dict[str, Any]:
        resp = requests.get(f"{self.api}/{KINDS[kind].plural}/{local_id}", headers=self.server.auth(), timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def lyon(live_server: LiveServer) -> Lyon:
    return Lyon(live_server)


def new_id(name: str) -> str:
    return f"ld-{UID}-{name}"


def proposal(local_id: str, **changes: Any) -> dict[str, Any]:
    """A proposal of lyon's demo process, handled by a demo organization, with no counts."""
    return record(
        "proposal", id=local_id, author_id=None, vote_count=None, comment_count=None, **{"author": "x", **changes}
    )


def comment(local_id: str, about: str, **changes: Any) -> dict[str, Any]:
    return record(
        "comment", id=local_id, author_id=None, about={"kind": "proposal", "id": about}, **{"author": "y", **changes}
    )


# -- content negotiation ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", PUBLISHED)
def test_every_kind_in_every_rdf_format_is_one_graph(demo: Demo, kind: str) -> None:
    """Turtle, JSON-LD (expanded by rdflib), RDF/XML and N-Triples, by Accept and by suffix, all
    parse and give the same graph: the resource typed as its kind, with its # nodes."""
    iri = demo.iris[kind]
    graphs: dict[str, rdflib.Graph] = {}
    for media_type in RDF_MEDIA:
        resp = get(iri, media_type)
        assert resp.status_code == 200, (media_type, resp.status_code, resp.text[:300])
        assert media(resp) == media_type
        graphs[media_type] = graph_of(resp, iri)
    for suffix, media_type in SUFFIXES.items():
        if media_type in RDF_MEDIA:
            resp = get(f"{iri}.{suffix}")
            assert resp.status_code == 200 and media(resp) == media_type, (suffix, resp.headers)
            assert_same_graph(graphs[media_type], graph_of(resp, iri), f"{kind} .{suffix} vs Accept")
    reference = graphs[TURTLE]
    for media_type, graph in graphs.items():
        assert_same_graph(reference, graph, f"{kind}: {media_type} vs Turtle")
    subject = rdflib.URIRef(iri)
    assert (subject, rdflib.RDF.type, rdflib.URIRef(KINDS[kind].mapping.types[0])) in reference
    assert (subject, DCT.identifier, rdflib.Literal(demo.records[kind]["id"])) in reference
    label = demo.records[kind].get("title") or demo.records[kind].get("name")
    if label:  # what the JSON API says is what the graph says
        assert label in {str(o) for o in reference.objects(subject) if isinstance(o, rdflib.Literal)}
    # The description of this resource only: itself and its own # nodes.
    assert {str(s).split("#")[0] for s in reference.subjects()} == {iri}
    assert len(reference) >= 5


def test_accept_q_values_are_honoured(demo: Demo) -> None:
    iri = demo.iris["proposal"]
    cases = [
        (TURTLE, TURTLE),
        (JSON_LD, JSON_LD),
        (RDF_XML, RDF_XML),
        (N_TRIPLES, N_TRIPLES),
        (HTML, HTML),
        (BROWSER, HTML),
        (f"{JSON_LD};q=0.5, {RDF_XML};q=0.9", RDF_XML),
        (f"{HTML};q=0.1, {N_TRIPLES}", N_TRIPLES),
        (f"{TURTLE};q=0.2, {JSON_LD};q=0.3, {N_TRIPLES};q=0.25", JSON_LD),
        (f"text/*;q=0.8, {HTML};q=0.2", TURTLE),
        (f"{HTML};q=0, text/*", TURTLE),
        (f"{TURTLE};q=0, {HTML};q=0, text/*;q=0.1, {RDF_XML};q=0.05", RDF_XML),
        # Media type parameters other than q do not make an offered type unacceptable.
        (f'{JSON_LD};profile="http://www.w3.org/ns/json-ld#compacted"', JSON_LD),
        (f"{TURTLE};charset=utf-8, {HTML};q=0.5", TURTLE),
    ]
    for accept, expected in cases:  # (the server's own preference breaks ties: not tested)
        resp = get(iri, accept)
        assert resp.status_code == 200, (accept, resp.status_code, resp.text[:200])
        assert media(resp) == expected, (accept, resp.headers["Content-Type"])
    # Anything goes, or no Accept at all: some RDF, not an error.
    for accept in ("*/*", None):
        resp = get(iri, accept)
        assert resp.status_code == 200 and media(resp) in RDF_MEDIA, (accept, resp.headers)
        assert len(graph_of(resp, iri)) > 5


def test_suffix_wins_over_accept(demo: Demo) -> None:
    iri = demo.iris["meeting"]
    for suffix, media_type in SUFFIXES.items():
        for accept in (BROWSER, TURTLE, "image/png"):
            resp = get(f"{iri}.{suffix}", accept)
            assert resp.status_code == 200 and media(resp) == media_type, (suffix, accept, resp.status_code)
    # A suffix that is no format is read as part of the id, which does not exist.
    for suffix in ("json", "xml", "png", "turtle"):
        assert get(f"{iri}.{suffix}", TURTLE).status_code == 404, suffix


def test_json_ld_is_compact_with_our_context(demo: Demo) -> None:
    context = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
    terms = {k for k, v in context.items() if isinstance(v, dict)}
    for kind in PUBLISHED:
        iri = demo.iris[kind]
        resp = get(iri, JSON_LD)
        doc = resp.json()
        assert doc["@context"] == context, kind
        nodes = doc["@graph"]
        assert nodes[0]["@id"] == iri, kind  # the resource first, then its # nodes
        for node in nodes:
            for key in node:
                # Every property is a term of our context (or, failing one, a compact IRI): never a full IRI.
                assert key.startswith("@") or key in terms or COMPACT.match(key), (kind, key)
        main = nodes[0]
        assert main["identifier"] == demo.records[kind]["id"], kind
        # Expanded (by rdflib's JSON-LD parser) it is the Turtle graph.
        assert_same_graph(graph_of(get(iri, TURTLE), iri), graph_of(resp, iri), f"{kind}: JSON-LD")
    process = get(demo.iris["process"], JSON_LD).json()["@graph"][0]
    assert process["title"] == {"@value": demo.records["process"]["title"], "@language": "fr"}
    assert process["organizer"].endswith(f"/id/rennes/organization/{demo.records['process']['organizer']}")
    assert isinstance(process["hasPart"], list) and len(process["hasPart"]) == len(demo.records["process"]["phases"])
    assert process["startDate"] == demo.records["process"]["start_date"]


# -- headers, validators, HEAD ----------------------------------------------------------------


@pytest.mark.parametrize("media_type", OFFERED)
def test_vary_link_etag_last_modified(demo: Demo, media_type: str) -> None:
    iri = demo.iris["project"]
    resp = get(iri, media_type)
    assert resp.status_code == 200 and media(resp) == media_type
    assert "accept" in [v.strip().lower() for v in resp.headers["Vary"].split(",")]
    links = link_header(resp)
    others = {m for m in OFFERED if m != media_type}
    assert set(links) == others, resp.headers["Link"]
    suffix_of = {m: s for s, m in SUFFIXES.items()}
    for other, (target, rel) in links.items():
        assert rel == "alternate" and target == f"{iri}.{suffix_of[other]}", (other, target, rel)
        alternate = get(target)
        assert alternate.status_code == 200 and media(alternate) == other, target
    etag = resp.headers["ETag"]
    assert re.fullmatch(r'(W/)?"[^"]+"', etag), etag
    modified = http_time(resp.headers["Last-Modified"])
    stored = record_time(demo.records["project"]["record_modified"])
    if media_type == HTML:  # a page also shows what links to the resource: it can be newer
        assert modified >= stored.replace(microsecond=0)
    else:
        assert modified == stored.replace(microsecond=0)
    # Each representation has its own entity tag.
    tags = {get(iri, m).headers["ETag"] for m in OFFERED}
    assert len(tags) == len(OFFERED)


@pytest.mark.parametrize("media_type", OFFERED)
def test_conditional_get(demo: Demo, media_type: str) -> None:
    iri = demo.iris["budget"]
    first = get(iri, media_type)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    same = get(iri, media_type, **{"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    # A 304 carries the validator and Vary a 200 would (RFC 9110 §15.4.5; werkzeug drops Last-Modified).
    assert same.headers["ETag"] == etag and same.headers["Vary"] == first.headers["Vary"]
    # Weak comparison, as RFC 9110 wants for If-None-Match (a proxy may have weakened the tag).
    weak = etag if etag.startswith("W/") else f"W/{etag}"
    assert get(iri, media_type, **{"If-None-Match": weak}).status_code == 304
    assert get(iri, media_type, **{"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert get(iri, media_type, **{"If-None-Match": "*"}).status_code == 304
    assert get(iri, media_type, **{"If-None-Match": '"other"'}).status_code == 200
    other_format = next(m for m in OFFERED if m != media_type)
    assert get(iri, other_format, **{"If-None-Match": etag}).status_code == 200
    assert get(iri, media_type, **{"If-Modified-Since": modified}).status_code == 304
    later = (http_time(modified) + dt.timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert get(iri, media_type, **{"If-Modified-Since": later}).status_code == 304
    earlier = (http_time(modified) - dt.timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    again = get(iri, media_type, **{"If-Modified-Since": earlier})
    assert again.status_code == 200 and again.content == first.content
    assert get(iri, media_type, **{"If-Modified-Since": "yesterday"}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    assert get(iri, media_type, **{"If-None-Match": '"other"', "If-Modified-Since": later}).status_code == 200


@pytest.mark.parametrize("media_type", OFFERED)
def test_head(demo: Demo, media_type: str) -> None:
    iri = demo.iris["rule"]
    full = get(iri, media_type)
    head = get(iri, media_type, method="HEAD")
    assert head.status_code == 200 and head.content == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Vary", "Link"):
        assert head.headers.get(name) == full.headers.get(name), name
    assert int(head.headers["Content-Length"]) == len(full.content) > 0
    assert get(iri, media_type, method="HEAD", **{"If-None-Match": full.headers["ETag"]}).status_code == 304
    assert get(f"{iri}-nope", media_type, method="HEAD").status_code == 404


def test_a_change_changes_the_validators(lyon: Lyon) -> None:
    local_id = new_id("changing")
    data = proposal(local_id, title="Avant")
    # Last-Modified counts seconds: it is sent once the second of the change is over, and then
    # says that second. A slow store may answer the read in the next second: try again then.
    for _attempt in range(5):
        written = lyon.put("proposal", data)
        iri, second = written["iri"], record_time(written["record_modified"]).replace(microsecond=0)
        resp = get(iri, TURTLE)
        if http_time(resp.headers["Date"]) <= second:
            assert "Last-Modified" not in resp.headers
            break
        assert http_time(resp.headers["Last-Modified"]) == second
        data = {**data, "body": f"{data.get('body', '')} ."}
    else:
        pytest.fail("no read answered within the second of its write")
    time.sleep(1.1)
    before = {m: get(iri, m) for m in OFFERED}
    lyon.put("proposal", {**data, "title": "Après"})
    time.sleep(1.1)
    for media_type, old in before.items():
        for condition in ({"If-None-Match": old.headers["ETag"]}, {"If-Modified-Since": old.headers["Last-Modified"]}):
            resp = get(iri, media_type, **condition)
            assert resp.status_code == 200, (media_type, condition)
            assert "Après" in resp.text and "Avant" not in resp.text, media_type
            assert resp.headers["ETag"] != old.headers["ETag"]
            assert http_time(resp.headers["Last-Modified"]) > http_time(old.headers["Last-Modified"])


# -- errors -----------------------------------------------------------------------------------


def test_406_lists_the_offered_types(demo: Demo) -> None:
    iri = demo.iris["organization"]
    for accept in ("image/png", "application/json", f"{TURTLE};q=0, {HTML};q=0, application/xml"):
        resp = get(iri, accept)
        assert resp.status_code == 406, (accept, resp.status_code)
        for media_type in OFFERED:
            assert media_type in resp.text, (accept, media_type, resp.text)
    problem = get(iri, "application/json, application/problem+json;q=0.5")
    assert problem.headers["Content-Type"].startswith("application/problem+json")
    assert sorted(problem.json()["offered"]) == sorted(OFFERED)
    # An unknown resource is a 404 whatever the client accepts.
    assert get(f"{demo.base}/id/rennes/proposal/nope", "image/png").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/id/paris",
        "/id/paris.ttl",
        "/id/Rennes",
        "/id/paris/proposal/prop-00001",
        "/id/rennes/petition/prop-00001",
        "/id/rennes/proposals/prop-00001",
        "/id/rennes/territory/rennes",
        "/id/rennes/proposal/prop-99999",
        "/id/rennes/proposal/prop-99999.ttl",
        "/id/rennes/comment/prop-00001",
        "/id/rennes/proposal/prop-00001/more",
        "/id/rennes/proposal/",
        "/id/rennes/account/0123456789abcdef0123456789abcdef",
        "/id/",
    ],
)
def test_unknown_iris_are_404(live_server: LiveServer, path: str) -> None:
    for accept in (TURTLE, JSON_LD, HTML, BROWSER):
        resp = get(live_server.url + path, accept)
        assert resp.status_code == 404, (path, accept, resp.status_code)


def test_votes_are_not_dereferenceable(lyon: Lyon, live_server: LiveServer) -> None:
    target = new_id("voted")
    lyon.put("proposal", proposal(target))
    vote_id = new_id("vote")
    vote = lyon.put("vote", {"id": vote_id, "proposal": target, "voter": f"voter-{UID}@example.org"})
    assert lyon.get("vote", vote_id)["proposal"] == target  # the vote exists: the API shows it to editors
    iri = f"{live_server.url}/id/lyon/vote/{vote_id}"
    assert vote["iri"] == iri
    for url in (iri, *(f"{iri}.{s}" for s in SUFFIXES)):
        for accept in (TURTLE, HTML, "*/*"):
            assert get(url, accept).status_code == 404, (url, accept)
            # Not even for the territory's editor.
            assert get(url, accept, **live_server.auth()).status_code == 404, (url, accept)
    # The voter's pseudonymous account is not published either.
    assert get(f"{live_server.url}/id/lyon/account/{vote['voter_id']}", TURTLE).status_code == 404
    # The proposal counts the vote and does not link to it.
    page = parse_page(get(f"{live_server.url}/id/lyon/proposal/{target}", HTML))
    assert not any("/vote/" in href for href in page.hrefs())
    proposal_iri = f"{live_server.url}/id/lyon/proposal/{target}"
    graph = graph_of(get(proposal_iri, TURTLE), proposal_iri)
    assert not any("/vote/" in str(term) for triple in graph for term in triple)
    assert 1 in [int(o) for o in graph.objects(None, rdflib.URIRef("https://schema.org/userInteractionCount"))]


def test_deleted_resources_are_410_with_the_deletion_time(lyon: Lyon, live_server: LiveServer) -> None:
    target = new_id("discussed")
    lyon.put("proposal", proposal(target))
    gone_id = new_id("gone")
    iri = lyon.put("comment", comment(gone_id, target))["iri"]
    assert get(iri, TURTLE).status_code == 200
    deleted = lyon.delete("comment", gone_id)
    when = deleted["deleted_at"]
    deleted_at = rdflib.Literal(when, datatype=rdflib.XSD.dateTime)
    for media_type in RDF_MEDIA:
        for resp in (get(iri, media_type), get(f"{iri}.{next(s for s, m in SUFFIXES.items() if m == media_type)}")):
            assert resp.status_code == 410, (media_type, resp.status_code)
            graph = graph_of(resp, iri)
            assert (rdflib.URIRef(iri), rdflib.RDF.type, AS.Tombstone) in graph, media_type
            assert (rdflib.URIRef(iri), AS.deleted, deleted_at) in graph, (media_type, when)
            assert (rdflib.URIRef(iri), AS.formerType, rdflib.URIRef("https://schema.org/Comment")) in graph
            assert "Bonne idée" not in resp.text  # the content is gone
    for accept in (HTML, BROWSER):
        page = get(iri, accept)
        assert page.status_code == 410 and media(page) == HTML
        assert when in page.text, page.text
    problem = get(iri, "application/problem+json, text/html;q=0.1")
    assert problem.status_code == 410 and problem.json()["deleted_at"] == when
    assert get(iri, TURTLE, method="HEAD").status_code == 410
    # The proposal no longer links to the deleted comment.
    page = parse_page(get(f"{live_server.url}/id/lyon/proposal/{target}", HTML))
    assert iri not in page.hrefs()


# -- HTML -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PUBLISHED)
def test_html_page_of_every_kind(demo: Demo, kind: str) -> None:
    iri = demo.iris[kind]
    resp = get(iri, BROWSER)
    assert resp.status_code == 200
    page = parse_page(resp)
    data = demo.records[kind]
    label = data.get("title") or data.get("name")
    if label:  # the resource's label is the title (comments have none)
        assert page.h1 == label and page.title.startswith(label), (page.h1, page.title)
    else:
        assert page.h1 == data["id"]
    # Its type, and its properties, with the labels of the vocabularies.
    labels = vocabulary_labels()
    main_type = KINDS[kind].mapping.types[0]
    if main_type in labels:
        assert labels[main_type]["en"] in page.tags, (kind, page.tags)
    assert page.properties, kind
    for predicate, text in page.properties:
        assert text and text != predicate and not COMPACT.match(text), (kind, predicate, text)
        if predicate in labels:
            assert text == labels[predicate]["en"], (kind, predicate, text)
    shown = {p for p, _ in page.properties}
    assert str(DCT.identifier) in shown
    # Links to the RDF formats.
    for suffix in ("ttl", "jsonld", "rdf", "nt"):
        assert f"{iri}.{suffix}" in page.hrefs(), (kind, suffix)
    # The embedded JSON-LD is the JSON-LD representation.
    embedded = json.loads(page.scripts["application/ld+json"][0])
    assert embedded == get(iri, JSON_LD).json()


def test_html_labels_every_term_in_english_and_french(demo: Demo) -> None:
    """Properties, types and coded values show human labels (the vocabulary's, in the reader's
    language), never bare IRIs or compact IRIs."""
    labels = vocabulary_labels()
    vocabularies = tuple(PREFIXES.values())
    for lang, heading in (("en", "Linked from"), ("fr", "Lié depuis")):
        for name, iri in demo.iris.items():
            resp = get(iri, BROWSER, **{"Accept-Language": f"{lang};q=0.9"})
            page = parse_page(resp)
            assert page.lang == lang, (name, page.lang)
            for predicate, text in page.properties:
                assert not COMPACT.match(text) and text != predicate, (lang, name, predicate, text)
                if predicate in labels:
                    assert text == labels[predicate].get(lang, labels[predicate]["en"]), (lang, predicate, text)
            for tag in page.tags:
                assert tag and not COMPACT.match(tag), (lang, name, tag)
            for href, text, attrs in page.links:
                if href.startswith(vocabularies) and "external" in attrs.get("rel", ""):
                    assert text and text != href and not COMPACT.match(text), (lang, name, href, text)
                    if href in labels:
                        assert text == labels[href].get(lang, labels[href]["en"]), (lang, href, text)
            if page.inbound:
                assert heading in page.h2, (lang, page.h2)
    page = parse_page(get(demo.iris["proposal"], HTML, **{"Accept-Language": "fr"}))
    theme = f"{CF}theme-{demo.records['proposal']['themes'][0]}"
    assert (theme, labels[theme]["fr"]) in [(h, t) for h, t, _ in page.links]
    assert (str(DCT.subject), "thème") in page.properties


def test_html_varies_with_the_language(demo: Demo) -> None:
    """The page is written in the reader's language: caches must know, and validators differ."""
    iri = demo.iris["proposal"]
    english = get(iri, HTML, **{"Accept-Language": "en"})
    french = get(iri, HTML, **{"Accept-Language": "fr-FR, fr;q=0.9"})
    assert parse_page(english).lang == "en" and parse_page(french).lang == "fr"
    assert english.text != french.text
    for resp in (english, french):
        assert {"accept", "accept-language"} <= {v.strip().lower() for v in resp.headers["Vary"].split(",")}
    assert english.headers["ETag"] != french.headers["ETag"]
    cached = get(iri, HTML, **{"Accept-Language": "fr", "If-None-Match": english.headers["ETag"]})
    assert cached.status_code == 200 and parse_page(cached).lang == "fr"
    assert get(iri, HTML, **{"Accept-Language": "fr", "If-None-Match": french.headers["ETag"]}).status_code == 304


def test_html_links_both_directions(demo: Demo) -> None:
    base = demo.base
    reply, parent, prop = (demo.iris[n] for n in ("comment", "parent-comment", "proposal"))
    # A reply links out to what it is about and to the comment it answers…
    page = parse_page(get(reply, HTML))
    out = {href: text for href, text, _ in page.links}
    assert prop in out and parent in out
    assert ("https://schema.org/about", "about") in page.properties
    assert ("http://rdfs.org/sioc/ns#reply_of", "reply to") in page.properties
    # …and both list it among what links to them.
    parent_page = parse_page(get(parent, HTML))
    assert (reply, f"{reply.rsplit('/', 1)[-1]} (reply to)") in parent_page.inbound, parent_page.inbound
    proposal_page = parse_page(get(prop, HTML))
    inbound = dict(proposal_page.inbound)
    comments = {
        c["iri"]
        for c in api_items(demo.server, "rennes", "comments")
        if c["about"]["id"] == demo.records["proposal"]["id"]
    }
    assert comments and comments <= set(inbound), (comments, inbound)
    assert all(inbound[c].endswith("(about)") for c in comments)
    # The proposal links out to its process, which lists it back.
    process = f"{base}/id/rennes/process/{demo.records['proposal']['process']}"
    assert process in proposal_page.hrefs()
    process_page = parse_page(get(process, HTML))
    assert dict(process_page.inbound).get(prop, "").endswith("(part of)"), process_page.inbound
    # A meeting links to the proposals it discussed; each lists the meeting.
    meeting = demo.iris["meeting"]
    meeting_page = parse_page(get(meeting, HTML))
    for local_id in demo.records["meeting"]["proposals"]:
        related = f"{base}/id/rennes/proposal/{local_id}"
        assert related in meeting_page.hrefs()
        back = dict(parse_page(get(related, HTML)).inbound)
        assert back.get(meeting, "").endswith("(related to)"), (related, back)
    # Votes never show up: they are not published.
    assert not any("/vote/" in href for href in proposal_page.hrefs())


def test_html_follows_changes_to_what_links_to_it(lyon: Lyon, live_server: LiveServer) -> None:
    """A page lists what links to its resource: a new or deleted link changes the page, so its
    validators change too (a browser revalidating must not keep a stale page)."""
    target = new_id("thread")
    lyon.put("proposal", proposal(target))
    first = new_id("first")
    first_iri = lyon.put("comment", comment(first, target))["iri"]
    time.sleep(1.1)  # Last-Modified counts seconds: sent once the second of the change is over
    before, turtle = get(first_iri, HTML), get(first_iri, TURTLE)
    assert parse_page(before).inbound == []
    answer = new_id("answer")
    answer_iri = lyon.put("comment", comment(answer, target, reply_to=first, body="Tout à fait."))["iri"]
    time.sleep(1.1)
    for condition in (
        {"If-None-Match": before.headers["ETag"]},
        {"If-Modified-Since": before.headers["Last-Modified"]},
    ):
        resp = get(first_iri, HTML, **condition)
        assert resp.status_code == 200, condition
        assert answer_iri in dict(parse_page(resp).inbound)
    with_answer = get(first_iri, HTML)
    answered = lyon.get("comment", answer)["record_modified"]
    assert http_time(with_answer.headers["Last-Modified"]) >= record_time(answered).replace(microsecond=0)
    assert get(first_iri, HTML, **{"If-None-Match": with_answer.headers["ETag"]}).status_code == 304
    # The answer is deleted: the page stops linking to it (it would be a 410) and says so to caches.
    lyon.delete("comment", answer)
    resp = get(first_iri, HTML, **{"If-None-Match": with_answer.headers["ETag"]})
    assert resp.status_code == 200
    assert answer_iri not in parse_page(resp).hrefs()
    # The RDF representations describe the resource only: they did not change.
    assert get(first_iri, TURTLE, **{"If-None-Match": turtle.headers["ETag"]}).status_code == 304


def marker(src: str) -> tuple[float, float]:
    found = re.search(r"marker=(-?[\d.]+)%2C(-?[\d.]+)", src)
    assert found, src
    return float(found[1]), float(found[2])


@pytest.mark.parametrize("name", ["territory", "proposal", "meeting", "project", "meeting-hybrid"])
def test_html_map_of_a_geolocated_resource(demo: Demo, name: str) -> None:
    location = demo.records[name]["location"]
    page = parse_page(get(demo.iris[name], BROWSER))
    assert len(page.iframes) == 1, page.iframes
    src = page.iframes[0]
    assert src.startswith("https://www.openstreetmap.org/export/embed.html?")
    lat, lon = marker(src)
    assert lat == pytest.approx(location["lat"], abs=1e-6) and lon == pytest.approx(location["lon"], abs=1e-6)
    bbox = [float(x) for x in re.search(r"bbox=([^&]+)", src)[1].split("%2C")]  # type: ignore[index]
    assert bbox[0] < lon < bbox[2] and bbox[1] < lat < bbox[3], bbox
    osm = [h for h in page.hrefs() if h.startswith("https://www.openstreetmap.org/?")]
    assert osm and f"mlat={location['lat']}" in osm[0] and f"mlon={location['lon']}" in osm[0]


@pytest.mark.parametrize("name", ["comment", "meeting-online", "budget", "organization", "rule", "process"])
def test_html_no_map_without_a_location(demo: Demo, name: str) -> None:
    assert "location" not in demo.records[name]
    page = parse_page(get(demo.iris[name], BROWSER))
    assert page.iframes == []
    assert not any("openstreetmap.org" in h for h in page.hrefs())


def test_html_escapes_what_platforms_send(lyon: Lyon, live_server: LiveServer) -> None:
    """Record text is data: shown as text, and it cannot end the embedded JSON-LD script early
    (``</script>``) nor make the parser swallow the rest of the page (``<!--<script>``)."""
    local_id = new_id("markup")
    title = "Des <b>arbres</b> & des bancs"
    body = 'Texte </script><script>alert("x")</script> puis <!--<script> et la suite'
    iri = lyon.put("proposal", proposal(local_id, title=title, body=body))["iri"]
    resp = get(iri, HTML)
    page = parse_page(resp)
    assert page.h1 == title and body in page.text
    assert "<b>arbres</b>" not in resp.text and '<script>alert("x")' not in resp.text
    scripts = page.scripts["application/ld+json"]
    assert len(scripts) == 1
    assert "<" not in scripts[0], scripts[0]  # no markup at all inside the script element
    embedded = json.loads(scripts[0])
    assert embedded == get(iri, JSON_LD).json()
    assert embedded["@graph"][0]["content"]["@value"] == body
    # Everything after the script is still markup: the page's own links are there.
    assert f"{iri}.ttl" in page.hrefs() and page.properties


# -- privacy ----------------------------------------------------------------------------------


def every_representation(url: str) -> Iterator[requests.Response]:
    for media_type in OFFERED:
        yield get(url, media_type)
    for suffix in SUFFIXES:
        yield get(f"{url}.{suffix}")


def test_no_participant_identity_in_any_representation(lyon: Lyon, live_server: LiveServer) -> None:
    author, author_email = f"Ada Lovelace {UID}", f"ada.{UID}@example.org"
    commenter_email = f"Grace.Hopper.{UID}@Example.org"
    voter, voter_email = f"Alan Turing {UID}", f"alan.{UID}@example.org"
    target = new_id("private")
    iri = lyon.put("proposal", proposal(target, author=author, author_email=author_email))["iri"]
    comment_iri = lyon.put("comment", comment(new_id("private-c"), target, author=None, author_email=commenter_email))[
        "iri"
    ]
    votes = [
        lyon.put("vote", {"id": new_id(f"private-v{i}"), "proposal": target, "voter": who})
        for i, who in enumerate((voter, voter_email))
    ]
    identities = [author, author_email, commenter_email, voter, voter_email, *(v["voter_id"] for v in votes)]
    author_account = graph_of(get(iri, TURTLE), iri).value(
        rdflib.URIRef(iri), rdflib.URIRef("http://rdfs.org/sioc/ns#has_creator")
    )
    assert author_account is not None  # a pseudonymous account stands for the author
    seen = 0
    for url in (iri, comment_iri, str(author_account)):
        for resp in every_representation(url):
            assert resp.status_code == 200, (url, resp.status_code)
            text = resp.text.lower()
            for identity in identities:
                assert identity.lower() not in text, (url, resp.headers["Content-Type"], identity)
            assert "example.org" not in text, (url, resp.headers["Content-Type"])
            seen += 1
    assert seen == 3 * 2 * len(OFFERED)
    # The voters' pseudonymous accounts are not published: nothing links to them.
    for vote in votes:
        assert get(f"{live_server.url}/id/lyon/account/{vote['voter_id']}", TURTLE).status_code == 404
