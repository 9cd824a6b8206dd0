"""CONSUL importers without a store: the GraphQL API (against a loopback CONSUL that answers from
the documentation's sample responses) and the CSV layouts (the real German sample, generated
Madrid-layout files)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from importers import consul, consul_csv
from importers.consul_map import moment, themes_of
from importers.remote import Fetcher, SourceRefused, SourceUnavailable
from server.errors import MalformedBody, ValidationFailed
from server.ingest import Record, Rejected
from server.ingest.validate import check_here

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "consul"
GERMAN = SAMPLES / "consul_de_instances_proposals_scraped.head200.csv"
LOOPBACK = Fetcher(allowed_hosts=frozenset({"127.0.0.1"}), allow_private=True)


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"consul-docs_graphql_response_{name}.json").read_text(encoding="utf-8"))


# -- a CONSUL GraphQL endpoint on loopback ------------------------------------------------------


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()  # CONSUL's cursors: "NQ==" is 5


def fake_data() -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], list[dict[str, Any]]]]:
    """60 proposals and 3 debates in the shapes of the documentation's samples: proposal 2 is the
    ``proposal(id: 2)`` sample, 1 and 3 carry the collection sample's titles, 4 the title and the
    user id of the user sample. Proposal 2 has the sample's 10 comments, proposal 5 thirty (two
    pages), debate 1 two."""
    titles = [e["node"]["title"] for e in sample("proposals_collection")["data"]["proposals"]["edges"]]
    by_id = sample("proposal_by_id")["data"]["proposal"]
    user = sample("user_public_proposals_geozone")["data"]["user"]
    counts = {2: by_id["comments_count"], 5: 30}
    proposals = []
    for n in range(1, 61):
        node: dict[str, Any] = {
            "id": n,
            "title": f"{titles[n % 2]} ({n})",
            "summary": f"Resumen {n}",
            "description": f"<p>Texto de la propuesta <strong>{n}</strong>.</p>",
            "cached_votes_up": 3 * n,
            "comments_count": counts.get(n, 0),
            "public_created_at": "2017-12-31 09:00:00 +0100",
            "retired_at": "2018-01-02T10:00:00+01:00" if n == 7 else None,
            "public_author": {"id": 77000 + n},
            "tags": [],
        }
        proposals.append(node)
    proposals[0].update(
        title=titles[0], tags=[{"name": "Movilidad", "kind": "category"}, {"name": "bici", "kind": None}]
    )
    proposals[1].update(title=by_id["title"])
    proposals[2].update(title=titles[1], tags=[{"name": "Sostenibilidad", "kind": "category"}])
    node = user["public_proposals"]["edges"][0]["node"]
    proposals[3].update(title=node["title"], geozone=node["geozone"], public_author={"id": user["id"]})
    debates = [
        {"id": n, "title": f"Debate {n}", "description": "<p>¿Qué opinas?</p>", "cached_votes_up": n,
         "comments_count": 2 if n == 1 else 0, "public_created_at": "2018-03-01 12:00:00 +0100",
         "public_author": None, "tags": []}
        for n in range(1, 4)
    ]  # fmt: skip
    comments: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for kind, pid, first, number in (("proposal", "2", 200, 10), ("proposal", "5", 500, 30), ("debate", "1", 900, 2)):
        comments[(kind, pid)] = [
            {"id": c, "body": f"<p>Comentario {c}</p>", "ancestry": None, "public_author": {"id": 88000 + c},
             "public_created_at": "2018-01-05 10:00:00 +0100"}
            for c in range(first, first + number)
        ]  # fmt: skip
    thread = comments[("proposal", "2")]
    thread[1]["ancestry"], thread[2]["ancestry"], thread[3]["ancestry"] = "200", "200/201", "999"  # 999: hidden
    return {"proposals": proposals, "debates": debates}, comments


def _connection(nodes: list[dict[str, Any]], offset: int, first: int, view: Any) -> dict[str, Any]:
    page = nodes[offset : offset + first]
    end = offset + len(page)
    info = {"hasNextPage": end < len(nodes), "endCursor": _cursor(end)}
    return {"pageInfo": info, "edges": [{"node": view(n)} for n in page]}


def _tagged(node: dict[str, Any]) -> dict[str, Any]:
    return {**node, "tags": {"edges": [{"node": t} for t in node["tags"]]}}


@dataclass
class FakeConsul:
    """Answers CONSUL GraphQL POSTs; ``mode`` makes it answer wrongly (error, html, loop)."""

    mode: str = "ok"
    queries: list[str] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    data: Any = field(default_factory=fake_data)
    url: str = ""

    def answer(self, query: str) -> tuple[int, str, bytes]:
        if self.mode == "error":
            return 200, "application/json", json.dumps(sample("error_depth")).encode()
        if self.mode == "html":
            return 200, "text/html", b"<html><body>Decide Madrid</body></html>"
        records, comments = self.data
        page = re.match(r'\{ (proposals|debates)\(first: (\d+)(?:, after: "([^"]*)")?\)', query)
        if page:
            section, first, after = page.group(1), int(page.group(2)), page.group(3)
            offset = int(base64.b64decode(after)) if after else 0
            connection = _connection(records[section], offset, first, _tagged)
            if self.mode == "loop":
                connection["pageInfo"] = {"hasNextPage": True, "endCursor": _cursor(0)}
            body: dict[str, Any] = {section: connection}
        else:
            body = {}
            pattern = r'(c\d+): (proposal|debate)\(id: "([^"]+)"\) \{ comments\(first: (\d+)(?:, after: "([^"]*)")?\)'
            for alias, kind, pid, first, after in re.findall(pattern, query):
                offset = int(base64.b64decode(after)) if after else 0
                body[alias] = {"comments": _connection(comments[(kind, pid)], offset, int(first), dict)}
        return 200, "application/json", json.dumps({"data": body}).encode()


@contextmanager
def consul_server(mode: str = "ok") -> Iterator[FakeConsul]:
    fake = FakeConsul(mode)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/graphql":
                self.send_error(404)
                return
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["query"]
            fake.queries.append(query)
            status, media_type, body = fake.answer(query)
            fake.answers.append(body)
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        requests.get(fake.url + "/", timeout=10).raise_for_status()  # ready
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def read_all(url: str, **options: Any) -> tuple[consul.ConsulApiSource, list[Any]]:
    source = consul.read(url, fetcher=LOOPBACK, **options)
    return source, list(source.items())


def by_id(items: list[Any]) -> dict[str, dict[str, Any]]:
    return {i.data["id"]: i.data for i in items if isinstance(i, Record)}


# -- GraphQL ----------------------------------------------------------------------------------


def test_graphql_pages_comments_and_mapping() -> None:
    with consul_server() as fake:
        source, items = read_all(fake.url)
    kinds = Counter(i.kind.name for i in items if isinstance(i, Record))
    assert kinds == {"process": 2, "proposal": 63, "comment": 42} and len(items) == 107
    assert all(isinstance(c, dict) for c in check_here([(i.kind.name, i.data) for i in items]))
    records = by_id(items)
    p2 = records["127.0.0.1-proposal-2"]
    assert p2 == {
        "id": "127.0.0.1-proposal-2",
        "process": "127.0.0.1-proposals",
        "title": "Crear una zona cercada para perros en Las Tablas",
        "body": "Resumen 2\n\nTexto de la propuesta 2.",
        "vote_count": 6,
        "comment_count": 10,
        "created": "2017-12-31T08:00:00Z",
        "author": "77002",
        "url": f"{fake.url}/proposals/2",
    }
    assert records["127.0.0.1-proposals"]["type"] == "citizen_initiative"
    assert records["127.0.0.1-debates"]["type"] == "debate"
    assert records["127.0.0.1-proposal-1"]["themes"] == ["mobility"]  # "bici" names no theme
    assert "themes" not in records["127.0.0.1-proposal-3"]  # Sostenibilidad: environment or energy?
    assert records["127.0.0.1-proposal-4"]["author"] == "468501"  # the user sample's id
    assert records["127.0.0.1-proposal-7"]["status"] == "withdrawn"
    assert records["127.0.0.1-debate-1"]["process"] == "127.0.0.1-debates"
    assert "author" not in records["127.0.0.1-debate-2"]
    # Replies: to a comment read, kept; to a hidden one (999), left out.
    assert records["127.0.0.1-comment-201"]["reply_to"] == "127.0.0.1-comment-200"
    assert records["127.0.0.1-comment-202"]["reply_to"] == "127.0.0.1-comment-201"
    assert "reply_to" not in records["127.0.0.1-comment-203"]
    assert records["127.0.0.1-comment-900"]["about"] == {"kind": "proposal", "id": "127.0.0.1-debate-1"}
    assert records["127.0.0.1-comment-529"]["body"] == "Comentario 529"  # second page of proposal 5
    # CONSUL's limits: 25 a page, two collections a query, depth 8.
    for query in fake.queries:
        assert all(int(n) <= 25 for n in re.findall(r"first: (\d+)", query))
        assert query.count("(first:") <= 2  # collections
        assert max(query[:i].count("{") - query[:i].count("}") for i in range(len(query))) <= 8
    assert sum(q.startswith("{ proposals(") for q in fake.queries) == 3  # 25 + 25 + 10
    assert source.sha256 == hashlib.sha256(b"".join(fake.answers)).hexdigest()
    assert source.location == f"{fake.url}/graphql" and source.id == "consul-127.0.0.1"


def test_graphql_source_as_graphql_url_limit_and_options() -> None:
    with consul_server() as fake:
        _, items = read_all(fake.url + "/graphql/", limit="30", prefix="madrid", language="es")
    records = by_id(items)
    assert Counter(i.kind.name for i in items) == {"process": 2, "proposal": 33, "comment": 42}
    assert all(r["id"].startswith("madrid-") for r in records.values())
    assert records["madrid-proposals"]["language"] == "es" and records["madrid-proposal-1"]["language"] == "es"
    pages = [q.split(" {")[0].removeprefix("{ ") for q in fake.queries if q.startswith("{ proposals(")]
    assert pages == ["proposals(first: 25)", 'proposals(first: 5, after: "MjU=")']  # 25 then 5


def test_graphql_error_answer_names_query_and_message() -> None:
    with consul_server("error") as fake, pytest.raises(SourceUnavailable) as caught:
        read_all(fake.url)
    assert "Query has depth of 9, which exceeds max depth of 8" in caught.value.detail
    assert "proposals page" in caught.value.detail and "{ proposals(first: 25)" in caught.value.detail


def test_graphql_answer_not_json() -> None:
    with consul_server("html") as fake, pytest.raises(MalformedBody, match="no JSON"):
        read_all(fake.url)


def test_graphql_cursor_that_does_not_move() -> None:
    with consul_server("loop") as fake, pytest.raises(MalformedBody, match="no new endCursor"):
        read_all(fake.url)
    assert sum(q.startswith("{ proposals(") for q in fake.queries) == 2


def test_graphql_host_not_allowed() -> None:
    with consul_server() as fake, pytest.raises(SourceRefused):
        list(consul.read(fake.url, fetcher=Fetcher()).items())


# -- CSV: the German instances (real) -----------------------------------------------------------


def test_scraped_sample_needs_a_city() -> None:
    with pytest.raises(ValidationFailed, match="4 CONSUL instances"):
        list(consul_csv.read(GERMAN.read_bytes(), name=GERMAN.name).items())
    with pytest.raises(ValidationFailed, match="no proposal of 'Berlin'"):
        list(consul_csv.read(GERMAN.read_bytes(), name=GERMAN.name, city="Berlin").items())


@pytest.mark.parametrize(
    ("city", "proposals", "processes"),
    [("Wuerzburg", 39, 3), ("Siegburg", 96, 8), ("Pforzheim", 33, 3), ("bamberg-gestalten.de", 32, 2)],
)
def test_scraped_sample_per_city(city: str, proposals: int, processes: int) -> None:
    source = consul_csv.read(GERMAN.read_bytes(), name=GERMAN.name, city=city)
    items = list(source.items())
    assert Counter(i.kind.name for i in items) == {"proposal": proposals, "process": processes}
    assert all(isinstance(c, dict) for c in check_here([(i.kind.name, i.data) for i in items]))
    assert source.sha256 == hashlib.sha256(GERMAN.read_bytes()).hexdigest() and source.layout.name == "consul-scraped"


def test_scraped_sample_values() -> None:
    items = list(consul_csv.read(GERMAN.read_bytes(), name=GERMAN.name, city="wuerzburg").items())
    records = by_id(items)
    # Line 2 of the file, checked by hand.
    assert records["wuerzburg-mitmachen.de-proposal-110"] == {
        "id": "wuerzburg-mitmachen.de-proposal-110",
        "process": "wuerzburg-mitmachen.de-project-zukunftskonzepte-fur-die-innenstadt",
        "title": "Autofreier Bischofshut",
        "body": "Wir fordern die Ausrufung des Klimanotstands, damit Belange unseres Klimas vor das wirtschaftliche "
        "Interesse gestellt werden. Würzburg ist laut Daten des deu...",
        "vote_count": 20,
        "comment_count": 0,
        "author": "Autor 005",  # made up here (SOURCES.md)
        "url": "https://wuerzburg-mitmachen.de/proposals/110-autofreier-bischofshut",
    }
    assert records["wuerzburg-mitmachen.de-project-klimaanpassung"] == {
        "id": "wuerzburg-mitmachen.de-project-klimaanpassung",
        "title": "Klimaanpassung",
        "type": "other",
    }
    assert items[1].line == 2 and items[0].kind.name == "process"
    # Quotes doubled in the file; the scraper's "..." kept.
    assert records["wuerzburg-mitmachen.de-proposal-106"]["title"].startswith('Bänke und "Grün" im neu')


# -- CSV: Madrid layouts (generated: the real files were not available) ------------------------

DEBATES = (
    "id;title;description;created_at;cached_votes_total;cached_votes_up;cached_votes_down;comments_count;author_name\n"
    '41;Más árboles;"<p>En <b>Tetuán</b> &amp; Usera</p>";31/12/2017 09;12;10;2;2;ana.g\n'
    '42;"Bancos; sombra";Texto;01/07/2018 17;1;1;0;0;\n'
)
COMMENTS = (
    "id;body;created_at;author_name;commentable_type;commentable_id;ancestry\n"
    "7;Sí;31/12/2017 10;luis;Debate;41;\n"
    "8;No;31/12/2017 11;marta;Debate;41;7\n"
    "9;Otra;31/12/2017 12;pepe;Poll;3;\n"
    "10;Hilo;31/12/2017 12;pepe;Proposal;5;4/6\n"
)


def test_madrid_debates_and_comments() -> None:
    options = {"instance": "https://decide.madrid.es", "timezone": "Europe/Madrid", "language": "es"}
    debates = list(consul_csv.read(DEBATES.encode(), name="debates.csv", **options).items())
    records = by_id(debates)
    assert records["decide.madrid.es-debates"]["url"] == "https://decide.madrid.es/debates"
    assert records["decide.madrid.es-debate-41"] == {
        "id": "decide.madrid.es-debate-41",
        "process": "decide.madrid.es-debates",
        "title": "Más árboles",
        "body": "En Tetuán & Usera",
        "vote_count": 10,
        "comment_count": 2,
        "created": "2017-12-31T08:00:00Z",
        "author": "ana.g",
        "url": "https://decide.madrid.es/debates/41",
        "language": "es",
    }
    assert records["decide.madrid.es-debate-42"]["created"] == "2018-07-01T15:00:00Z"  # summer time
    items = list(consul_csv.read(COMMENTS.encode(), name="comments.csv", **options).items())
    records = by_id(items)
    assert records["decide.madrid.es-comment-8"]["reply_to"] == "decide.madrid.es-comment-7"
    assert records["decide.madrid.es-comment-8"]["about"] == {"kind": "proposal", "id": "decide.madrid.es-debate-41"}
    assert "reply_to" not in records["decide.madrid.es-comment-10"]  # its parent 6 is not in the file
    (poll,) = [i for i in items if isinstance(i, Rejected)]
    assert poll.line == 4 and poll.local_id == "decide.madrid.es-comment-9"
    assert poll.error.errors[0]["pointer"] == "#/about"


def test_research_layout_without_instance() -> None:
    text = "id,url,code,title,userId,date,summary,text,numComments,status,numSupports,isAssociation\n"
    text += "3,https://decide.madrid.es/proposals/3,MAD-2015-09-3,Metro 24h,u1,2015-09-15,Corto,Largo,4,archived,99,0\n"
    (process, proposal) = consul_csv.read(text.encode(), name="proposals.csv").items()
    assert process.data == {"id": "consul-proposals", "title": "Proposals · consul", "type": "citizen_initiative"}
    assert proposal.data["id"] == "consul-proposal-3" and proposal.data["vote_count"] == 99
    assert proposal.data["body"] == "Corto\n\nLargo" and proposal.data["created"] == "2015-09-15T00:00:00Z"
    assert proposal.data["url"] == "https://decide.madrid.es/proposals/3"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'id;title;cached_votes_up\n1;"broken;3\n2;ok;1\n', "line 2"),  # quoting never closed
        (b"name;votes\nx;1\n", "no known CONSUL layout"),
        (b"id;title\n1;a;b\n", "3 fields for 2 columns"),
        (b"\x00\x01\x02\xff\xfe\x00", "not text"),
    ],
)
def test_csv_that_cannot_be_read(body: bytes, error: str) -> None:
    with pytest.raises(MalformedBody, match=error):
        list(consul_csv.read(body, name="bad.csv").items())


@pytest.mark.parametrize(
    ("row", "pointer"),
    [
        ("1;T;-3;31/12/2017 09", "#/vote_count"),
        ("1;T;2.5;31/12/2017 09", "#/vote_count"),
        ("1;T;3;mañana", "#/created"),
    ],
)
def test_csv_row_that_cannot_be_mapped(row: str, pointer: str) -> None:
    items = list(consul_csv.read(f"id;title;cached_votes_up;created_at\n{row}\n".encode(), name="p.csv").items())
    (rejected,) = [i for i in items if isinstance(i, Rejected)]
    assert rejected.line == 2 and rejected.local_id == "consul-proposal-1" and rejected.kind == "proposal"
    assert rejected.error.errors[0]["pointer"] == pointer


# -- shared mapping -----------------------------------------------------------------------------


def test_tags_name_themes_only_when_unambiguous() -> None:
    tags = [
        "Movilidad",
        "MEDIO AMBIENTE",
        "bici",
        "Sostenibilidad",
        "movilidad",
        "Sécurité et situations d\u2019urgence",
    ]
    assert themes_of(tags) == ["mobility", "environment", "safety"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2017-12-31 09:00:00 +0100", "2017-12-31T08:00:00Z"),
        ("2017-12-31 09:00:00 UTC", "2017-12-31T09:00:00Z"),
        ("2017-12-31T09:00:00+01:00", "2017-12-31T08:00:00Z"),
        ("31/12/2017 09", "2017-12-31T09:00:00Z"),
        ("", None),
    ],
)
def test_times(value: str, expected: str | None) -> None:
    from datetime import UTC

    assert moment(value, UTC, "#/created") == expected
