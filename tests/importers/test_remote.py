"""What an import may fetch: allowed hosts only, no loopback or private address unless allowed,
redirects checked like the URL itself, a size limit (importers/remote.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from importers.remote import Fetcher, SourceRefused, SourceUnavailable


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect-to-"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path.removeprefix("/redirect-to-"))
            self.end_headers()
            return
        body = b"x" * (4096 if self.path == "/big" else 10)
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_only_allowed_hosts_are_fetched(origin: str) -> None:
    with pytest.raises(SourceRefused, match="IMPORT_ALLOWED_HOSTS"):
        Fetcher(frozenset()).get(origin + "/ok")
    with pytest.raises(SourceRefused, match="not an http"):
        Fetcher(frozenset({"*"})).get("file:///etc/passwd")
    fetched = Fetcher(frozenset({"127.0.0.1"}), allow_private=True).get(origin + "/ok")
    assert fetched.status == 200 and fetched.content == b"x" * 10 and fetched.media_type == "text/plain"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.1", "169.254.169.254", "[::1]"])
def test_private_addresses_are_refused_even_when_their_host_is_allowed(host: str) -> None:
    fetcher = Fetcher(frozenset({"*"}))
    with pytest.raises(SourceRefused, match="IMPORT_ALLOW_PRIVATE"):
        fetcher.check(f"http://{host}/open311/v2")


def test_sub_domains_by_pattern() -> None:
    fetcher = Fetcher(frozenset({"*.example.org"}))
    with pytest.raises(SourceRefused, match="IMPORT_ALLOWED_HOSTS"):
        fetcher.check("http://example.com/x")
    with pytest.raises(SourceRefused, match="IMPORT_ALLOWED_HOSTS"):
        fetcher.check("http://evilexample.org/x")


def test_a_redirect_is_checked_like_the_url(origin: str) -> None:
    fetcher = Fetcher(frozenset({"127.0.0.1"}), allow_private=True)
    port = origin.rsplit(":", 1)[1]
    assert fetcher.get(f"{origin}/redirect-to-127.0.0.1:{port}/ok").content == b"x" * 10
    with pytest.raises(SourceRefused, match="'localhost' is not in IMPORT_ALLOWED_HOSTS"):
        fetcher.get(f"{origin}/redirect-to-localhost:{port}/ok")


def test_size_and_status_limits(origin: str) -> None:
    fetcher = Fetcher(frozenset({"127.0.0.1"}), allow_private=True, max_bytes=1000)
    with pytest.raises(SourceUnavailable, match="larger than IMPORT_MAX_BYTES"):
        fetcher.get(origin + "/big")
    with pytest.raises(SourceUnavailable, match="404"):
        fetcher.get(origin + "/missing")


def test_settings_from_the_configuration() -> None:
    fetcher = Fetcher.from_config({"IMPORT_ALLOWED_HOSTS": "a.org, *.b.org", "IMPORT_ALLOW_PRIVATE": True})
    assert fetcher.allowed_hosts == {"a.org", "*.b.org"} and fetcher.allow_private


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000\\@data.example.org/", "characters"),  # requests would go to 127.0.0.1
        ("http://data.example.org/a b", "characters"),
        ("http://data.example.org/x> . <http://evil.example/s", "characters"),  # into the provenance
        ("http://data.example.org:99999/x", "not a valid URL"),
        ("http://[::1/x", "not a valid URL"),
        ("http://[64:ff9b::7f00:1]/x", "IMPORT_ALLOW_PRIVATE"),  # NAT64 of 127.0.0.1
        ("http://[fec0::1]/x", "IMPORT_ALLOW_PRIVATE"),
    ],
)
def test_urls_read_differently_or_hiding_a_private_address_are_refused(url: str, why: str) -> None:
    with pytest.raises(SourceRefused, match=why):
        Fetcher(frozenset({"*"})).check(url)


def test_a_record_id_never_writes_rdf_into_the_report() -> None:
    """A source's id is put in an IRI only when it is an id (else the item's line stands for it)."""
    import datetime as dt

    from server.ingest.provenance import Activity, report_statements
    from server.urls import Urls

    now = dt.datetime.now(dt.UTC)
    activity = Activity("r1", "t", "open311", "s", "s", None, None, "test", now, now, {})
    evil = "a> . <http://evil.example/s> <http://evil.example/p> <http://evil.example/o"
    lines = report_statements(Urls("http://civicfed.test"), activity, [{"line": 7, "kind": "proposal", "id": evil}])
    assert not any("evil.example" in line for line in lines)
    assert any(line.endswith("<http://civicfed.test/id/t/import/r1#line-7>") for line in lines)


def test_hostile_cells_cost_linear_time() -> None:
    """A body of `<` without `>`, an amount of a billion digits: read at once, not for hours."""
    import time

    from importers.decidim_values import amount
    from importers.tabular import html_text

    started = time.perf_counter()
    assert html_text("<" * 200_000 + "x") is not None
    assert amount("1e999999999") == "1e999999999"  # left as text: the schema refuses it, naming the field
    assert time.perf_counter() - started < 5
