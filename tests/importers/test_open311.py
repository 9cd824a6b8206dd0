"""Open311 importer, without a store: the real samples read from files, then served by a loopback
endpoint (paging, filters, JSON → XML fallback), and one case per kind of malformed response."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from importers.open311 import IMPORTER, read
from importers.open311_parse import parse, slug
from importers.remote import Fetcher, SourceRefused, SourceUnavailable
from server.errors import MalformedBody, ValidationFailed
from server.ingest import Record, Rejected

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "open311"


def records(source: Any) -> dict[str, list[dict[str, Any]]]:
    """The records of a source by kind (failing on anything rejected)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in source.items():
        assert isinstance(item, Record), item
        out.setdefault(item.kind.name, []).append(item.data)
    return out


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


# -- the samples, read from files ---------------------------------------------------------------


def test_bloomington_json() -> None:
    source = read(str(SAMPLES / "bloomington_requests.json"), services=str(SAMPLES / "bloomington_services.json"))
    got = records(source)
    assert [p["id"] for p in got["process"]] == ["open311-bloomington"]
    assert got["process"][0] == {
        "id": "open311-bloomington",
        "title": "Open311 service requests, bloomington",
        "type": "other",
    }
    proposals = by_id(got["proposal"])
    assert len(proposals) == 21
    # 2 requests with null lat/long and 6 with 0/0: 13 located.
    assert sum("location" in p for p in proposals.values()) == 13
    assert [p["status"] for p in proposals.values()].count("implemented") == 3  # "closed"
    assert {o["id"]: o["name"] for o in got["organization"]} == {
        "street-department": "Street Department",
        "police-department": "Police Department",
        "hand": "HAND",
        "sanitation-department": "Sanitation Department",
        "information-services": "Information Services",
        "engineering-department": "Engineering Department",
    }
    graffiti = proposals["4fbd3beeb1fe2c9f5c000001"]
    assert graffiti == {
        "id": "4fbd3beeb1fe2c9f5c000001",
        "process": "open311-bloomington",
        "title": "Graffiti",
        "body": "Graffiti on mailboxes",
        "status": "published",
        "location": {"lat": 39.146551871103, "lon": -86.485448337464},
        "address": "2303-2559 S Olcott Blvd",
        "handled_by": "police-department",
        "created": "2012-05-23T15:35:08-04:00",
        "modified": "2012-05-23T15:35:10-04:00",
    }
    weeds = proposals["4fbd2b76b1fe2c195f000000"]  # lat 0, long 0, zipcode ""
    assert "location" not in weeds and weeds["address"] == "612 W Coolidge DR"
    mulberry = proposals["4fbd14bbb1fe2c5214000000"]  # description "", zipcode "47401"
    assert "body" not in mulberry and mulberry["address"] == "3313 E Mulberry CT, 47401"
    first = proposals["4fbd40b2b1fe2c4b02000001"]  # \r\n in the text
    assert first["body"].endswith("large pickup.\n\nThanks.") and "location" not in first
    read_in_order = b"".join((SAMPLES / f"bloomington_{n}.json").read_bytes() for n in ("services", "requests"))
    assert source.sha256 == hashlib.sha256(read_in_order).hexdigest()
    assert source.location.endswith("bloomington_requests.json") and source.id == "open311-bloomington"


def test_services_of_bloomington_json_and_giessen_xml() -> None:
    bloomington = parse((SAMPLES / "bloomington_services.json").read_bytes(), "services.json", "service")
    assert len(bloomington) == 46 and bloomington[1]["service_code"] == "4e090d24992b941e78000027"
    giessen = parse((SAMPLES / "giessen_services.xml").read_bytes(), "services.xml", "service")
    assert len(giessen) == 8
    assert [s["service_code"] for s in giessen][:3] == ["015", "010", "013"]  # codes stay strings
    assert giessen[4]["service_name"] == "Straßen- und Gehwegschäden"
    assert giessen[0]["description"] is None  # <description></description>


def test_service_name_from_the_services_when_a_request_has_none(tmp_path: Path) -> None:
    request = {"service_request_id": "1", "service_code": "015", "requested_datetime": "2024-05-01T10:00:00+02:00"}
    saved = tmp_path / "requests.json"
    saved.write_text(json.dumps([request, {**request, "service_request_id": "2", "service_code": "999"}]))
    items = list(read(str(saved), services=str(SAMPLES / "giessen_services.xml"), language="de").items())
    proposal = next(i.data for i in items if isinstance(i, Record) and i.kind.name == "proposal")
    assert proposal["title"] == "Abwasser und Wasser" and proposal["language"] == "de"
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [(r.line, r.local_id) for r in rejected] == [(2, "2")]  # unknown code, no name: no title
    assert rejected[0].error.errors[0]["pointer"] == "#/service_name"


def test_chicago_json() -> None:
    got = records(read(str(SAMPLES / "chicago_requests.json")))
    proposals = by_id(got["proposal"])
    assert sorted(proposals) == ["14-01100627", "14-01100669"]
    light = proposals["14-01100669"]
    assert light["title"] == "Alley Light Out" and "body" not in light
    assert light["location"] == {"lat": 41.858724777757864, "lon": -87.66475146237676}
    assert light["address"] == "1540 W 17TH ST, CHICAGO, IL, 60608"  # the zipcode is in it already
    assert [o["id"] for o in got["organization"]] == ["division-of-electrical-operations-cdot", "dob-conservation"]
    assert "Locked" not in json.dumps(got)  # status_notes: no field for it


def test_toronto_xml() -> None:
    got = records(read(str(SAMPLES / "toronto_requests.xml"), timezone="America/Toronto"))
    proposals = by_id(got["proposal"])
    assert sorted(proposals) == ["101005420892", "101005420894"]
    pothole = proposals["101005420892"]
    # <long> before <lat>; <description/> and <updated_datetime/> empty.
    assert pothole["location"] == {"lat": 43.691104288, "lon": -79.272306875}
    assert "body" not in pothole and "modified" not in pothole
    assert pothole["created"] == "2018-07-30T00:01:00-04:00" and pothole["title"] == "Road - Pot hole"
    assert pothole["address"] == "Warden Ave / Freeman St, Scarborough" and pothole["handled_by"] == "311-toronto"
    assert got["organization"] == [{"id": "311-toronto", "name": "311 Toronto", "type": "public_body"}]


def test_identities_only_in_the_write_only_fields() -> None:
    got = records(read(str(SAMPLES / "chicago_requests_personal.json")))
    proposals = by_id(got["proposal"])
    # The account id first; else the e-mail address; else the name (an invalid address is not one).
    assert proposals["14-01100669"]["author"] == "acct-553019"
    assert proposals["14-01100669"]["author_email"] == "marguerite.okafor@example.net"
    assert proposals["14-01100627"]["author_email"] == "tobias.vandermeer@example.com"
    assert "author" not in proposals["14-01100627"]
    assert proposals["fms-60211"]["author"] == "Ingrid Solberg-Haugen"
    for p in proposals.values():
        p.pop("author", None), p.pop("author_email", None)
    everything = json.dumps(got).lower()
    for identity in ("okafor", "marguerite", "vandermeer", "tobias", "solberg", "ingrid", "555", "acct-", "device"):
        assert identity not in everything
    fms = proposals["fms-60211"]
    assert fms["title"] == "Deep pothole outside the bakery" and fms["body"].startswith("About 20 cm")
    assert fms["status"] == "implemented" and "handled_by" not in fms  # two recipients: neither is *the* one
    assert fms["location"] == {"lat": 41.8801, "lon": -87.6298}
    assert {"roads-department", "highways-agency"} <= {o["id"] for o in got["organization"]}


def test_values_checked_per_request(tmp_path: Path) -> None:
    base = {"service_name": "Pothole", "requested_datetime": "2024-05-01T10:00:00Z"}
    rows = [
        {**base, "service_request_id": 638344},  # a number: kept as its string
        {**base, "service_request_id": "a/b"},
        {**base, "service_request_id": "3", "lat": "north", "long": "1"},
        {**base, "service_request_id": "4", "requested_datetime": "2024-05-01 10:00"},
        {**base, "service_request_id": "5", "status": "duplicate", "lat": 0, "long": 0},
        "a string",
    ]
    saved = tmp_path / "requests.json"
    saved.write_text(json.dumps(rows))
    items = list(read(str(saved), id_prefix="sf-").items())
    proposals = {i.data["id"]: i.data for i in items if isinstance(i, Record) and i.kind.name == "proposal"}
    assert sorted(proposals) == ["sf-5", "sf-638344"]
    assert "status" not in proposals["sf-5"] and "location" not in proposals["sf-5"]
    pointers = {i.line: i.error.errors[0]["pointer"] for i in items if isinstance(i, Rejected)}
    assert pointers == {2: "#/service_request_id", 3: "#/lat", 4: "#/requested_datetime", 6: "#"}
    # A time without offset is refused, unless the server's zone is given.
    with_zone = list(read(str(saved), timezone="America/Chicago").items())
    assert next(i.data for i in with_zone if isinstance(i, Record) and i.data["id"] == "4")["created"] == (
        "2024-05-01T10:00:00-05:00"
    )


def test_slugs_and_options() -> None:
    assert slug("DOB - Conservation") == "dob-conservation"
    assert slug("Straßen- und Gehwegschäden") == "strassen-und-gehwegschaden"
    assert slug("Δήμος Αθηναίων").startswith("x-") and slug("Δήμος Αθηναίων") == slug("Δήμος Αθηναίων")
    with pytest.raises(ValidationFailed):
        read(str(SAMPLES / "chicago_requests.json"), page_size="ten")
    with pytest.raises(ValidationFailed):
        read(str(SAMPLES / "chicago_requests.json"), format="csv")
    with pytest.raises(ValidationFailed):
        read(str(SAMPLES / "chicago_requests.json"), updated_after="yesterday")
    with pytest.raises(MalformedBody):
        read("/nonexistent/requests.json")
    # An existing process: the requests join it and it is not replaced.
    got = records(read(str(SAMPLES / "chicago_requests.json"), process="bp-2024"))
    assert "process" not in got and {p["process"] for p in got["proposal"]} == {"bp-2024"}
    assert set(IMPORTER.options) >= {"jurisdiction_id", "updated_after", "page_size", "max_pages", "services"}
    assert IMPORTER.reads_file is False


# -- malformed responses: one case each ---------------------------------------------------------

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<service_requests><request><service_request_id>1</service_request_id><description>&lol9;</description>
</request></service_requests>"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ((SAMPLES / "toronto_requests.xml").read_bytes().replace(b"</status>", b"</statut>", 1), "line 5, column"),
        (b'{"service_requests": []}', "a JSON list of requests expected, got dict"),
        (b'[{"service_request_id": "1",', "neither JSON nor XML"),
        (b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", "an HTML page"),
        (BOMB, "refused XML (EntitiesForbidden"),
        (b"<services><service/></services>", "<services> where Open311 has <service_requests>"),
        (b'[{"code": 403, "description": "Invalid api_key"}]', "an Open311 error, not data (403: Invalid api_key)"),
    ],
    ids=["invalid-xml", "json-object", "broken-json", "html-page", "entity-bomb", "wrong-root", "error-document"],
)
def test_malformed_responses(tmp_path: Path, body: bytes, message: str) -> None:
    saved = tmp_path / "requests.dat"
    saved.write_bytes(body)
    started = time.monotonic()
    with pytest.raises(MalformedBody) as caught:
        list(read(str(saved)).items())
    assert message in caught.value.detail and "requests.dat" in caught.value.detail, caught.value.detail
    assert time.monotonic() - started < 1  # nothing expanded


def test_a_request_without_id_is_rejected_not_dropped(tmp_path: Path) -> None:
    rows = json.loads((SAMPLES / "chicago_requests.json").read_text())
    del rows[1]["service_request_id"]
    saved = tmp_path / "requests.json"
    saved.write_text(json.dumps(rows))
    items = list(read(str(saved)).items())
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [(r.line, r.kind, r.error.errors) for r in rejected] == [
        (2, "proposal", [{"pointer": "#/service_request_id", "detail": rejected[0].error.errors[0]["detail"]}])
    ]
    assert [i.data["id"] for i in items if isinstance(i, Record) and i.kind.name == "proposal"] == ["14-01100669"]


# -- a loopback endpoint ------------------------------------------------------------------------

Answer = tuple[int, str, bytes]
JSON, XML = "application/json", "text/xml; charset=utf-8"


class Endpoint:
    """An Open311 endpoint on 127.0.0.1: ``routes`` maps a path to a function of the query that
    answers (status, content type, body); every request is logged (path, query)."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[dict[str, str]], Answer]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                endpoint.log.append((parts.path, query))
                route = endpoint.routes.get(parts.path)
                status, media_type, body = route(query) if route else (404, "text/plain", b"not found")
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/open311/v2"

    def serve(self, name: str, body: bytes, media_type: str = JSON) -> None:
        self.routes[f"/open311/v2/{name}"] = lambda _query: (200, media_type, body)

    def paged(self, name: str, rows: list[Any], default_size: int | None = None) -> None:
        """JSON requests paged with page/page_size (None: a server that does not page)."""

        def answer(query: dict[str, str]) -> Answer:
            if default_size is None:
                return 200, JSON, json.dumps(rows).encode()
            page, size = int(query.get("page", "1")), int(query.get("page_size", str(default_size)))
            return 200, JSON, json.dumps(rows[(page - 1) * size : page * size]).encode()

        self.routes[f"/open311/v2/{name}"] = answer

    def requested(self, name: str) -> list[dict[str, str]]:
        return [q for path, q in self.log if path == f"/open311/v2/{name}"]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:  # ready when it answers
        try:
            requests.get(server.base + "/ready", timeout=1)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    server.log.clear()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join(5)


LOOPBACK = Fetcher(allowed_hosts=frozenset({"127.0.0.1"}), allow_private=True)
BLOOMINGTON = json.loads((SAMPLES / "bloomington_requests.json").read_text())


def bloomington(endpoint: Endpoint, default_size: int | None) -> None:
    endpoint.serve("services.json", (SAMPLES / "bloomington_services.json").read_bytes())
    endpoint.paged("requests.json", BLOOMINGTON, default_size)


@pytest.mark.live
def test_pages_and_filters_passed_through(endpoint: Endpoint) -> None:
    bloomington(endpoint, 1000)
    source = read(
        endpoint.base + "/",
        fetcher=LOOPBACK,
        jurisdiction_id="bloomington.in.gov",
        updated_after="2012-05-01T00:00:00Z",
        page_size="5",
    )
    got = records(source)
    assert [p["id"] for p in got["proposal"]] == [r["service_request_id"] for r in BLOOMINGTON]
    asked = endpoint.requested("requests.json")
    assert [q["page"] for q in asked] == ["1", "2", "3", "4", "5"]  # 5, 5, 5, 5, 1: the short page is the last
    for query in asked:
        assert query["updated_after"] == "2012-05-01T00:00:00Z" and query["page_size"] == "5"
        assert query["jurisdiction_id"] == "bloomington.in.gov"
    assert endpoint.requested("services.json") == [{"jurisdiction_id": "bloomington.in.gov"}]
    assert got["process"][0]["id"] == source.id == "open311-bloomington-in-gov"
    assert source.location == endpoint.base and source.complete


@pytest.mark.live
def test_the_server_page_size_and_a_server_that_does_not_page(endpoint: Endpoint) -> None:
    bloomington(endpoint, 8)  # pages of 8 unless asked otherwise: 8, 8, 5
    assert len(records(read(endpoint.base, fetcher=LOOPBACK))["proposal"]) == 21
    assert len(endpoint.requested("requests.json")) == 3
    endpoint.log.clear()
    bloomington(endpoint, None)  # page ignored: page 2 repeats page 1, and reading stops there
    assert len(records(read(endpoint.base, fetcher=LOOPBACK))["proposal"]) == 21
    assert len(endpoint.requested("requests.json")) == 2
    endpoint.log.clear()
    source = read(endpoint.base, fetcher=LOOPBACK, max_pages="1")  # no paging at all
    assert len(records(source)["proposal"]) == 21
    assert endpoint.requested("requests.json") == [{}]


@pytest.mark.live
def test_a_request_met_again_on_the_next_page_is_kept_once(endpoint: Endpoint) -> None:
    # A request came in while paging: the last of page 1 is now the first of page 2.
    pages = {"1": BLOOMINGTON[0:3], "2": BLOOMINGTON[2:5], "3": BLOOMINGTON[5:6]}
    endpoint.serve("services.json", b"[]")
    endpoint.routes["/open311/v2/requests.json"] = lambda q: (200, JSON, json.dumps(pages[q["page"]]).encode())
    got = records(read(endpoint.base, fetcher=LOOPBACK, page_size="3"))
    assert [p["id"] for p in got["proposal"]] == [r["service_request_id"] for r in BLOOMINGTON[:6]]


@pytest.mark.live
def test_max_pages_bounds_the_reading(endpoint: Endpoint) -> None:
    bloomington(endpoint, 1000)
    source = read(endpoint.base, fetcher=LOOPBACK, page_size="5", max_pages="2")
    assert len(records(source)["proposal"]) == 10
    assert not source.complete


@pytest.mark.live
def test_xml_when_json_is_not_served(endpoint: Endpoint) -> None:
    # services.json is a 404, requests.json an HTML page: XML for both, and requests.json never asked.
    endpoint.serve("services.xml", (SAMPLES / "giessen_services.xml").read_bytes(), XML)
    endpoint.serve("requests.xml", (SAMPLES / "toronto_requests.xml").read_bytes(), XML)
    endpoint.serve("requests.json", b"<html><body>Not here</body></html>", "text/html")
    source = read(endpoint.base, fetcher=LOOPBACK)
    got = records(source)
    assert sorted(p["id"] for p in got["proposal"]) == ["101005420892", "101005420894"]
    assert [path.rsplit("/", 1)[1] for path, _ in endpoint.log] == [
        "services.json",
        "services.xml",
        "requests.xml",
        "requests.xml",  # page 2 repeats page 1
    ]
    toronto = (SAMPLES / "toronto_requests.xml").read_bytes()
    giessen = (SAMPLES / "giessen_services.xml").read_bytes()
    assert source.sha256 == hashlib.sha256(giessen + toronto + toronto).hexdigest()
    # The format in the URL is the one asked for.
    endpoint.log.clear()
    records(read(endpoint.base + "/requests.xml", fetcher=LOOPBACK, max_pages="1"))
    assert [path.rsplit("/", 1)[1] for path, _ in endpoint.log] == ["services.xml", "requests.xml"]


@pytest.mark.live
def test_an_endpoint_that_fails(endpoint: Endpoint) -> None:
    endpoint.serve("services.json", (SAMPLES / "bloomington_services.json").read_bytes())
    endpoint.serve("requests.json", b"<!DOCTYPE html><html><title>Error</title></html>", "text/html")
    with pytest.raises(MalformedBody, match="HTML page"):
        list(read(endpoint.base, fetcher=LOOPBACK).items())
    endpoint.routes["/open311/v2/requests.json"] = lambda _q: (500, "text/plain", b"oops")
    with pytest.raises(SourceUnavailable, match="500"):
        list(read(endpoint.base, fetcher=LOOPBACK).items())
    endpoint.routes.clear()  # neither services.json nor services.xml
    with pytest.raises(SourceUnavailable, match=r"services\.json .*404.*services\.xml .*404"):
        list(read(endpoint.base, fetcher=LOOPBACK).items())


@pytest.mark.live
def test_hosts_not_allowed_are_refused(endpoint: Endpoint) -> None:
    bloomington(endpoint, 1000)
    with pytest.raises(SourceRefused):
        list(read(endpoint.base, fetcher=Fetcher(allowed_hosts=frozenset({"127.0.0.1"}))).items())
    with pytest.raises(SourceRefused):
        list(read(endpoint.base).items())  # outside the application: no host allowed
    assert endpoint.log == []
