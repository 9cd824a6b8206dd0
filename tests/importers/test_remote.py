"""What an import may fetch: allowed hosts only, no loopback or private address unless allowed,
redirects checked like the URL itself, a size limit (importers/remote.py)."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection

from importers.remote import Fetcher, SourceRefused, SourceUnavailable


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect-to-"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path.removeprefix("/redirect-to-"))
            self.end_headers()
            return
        if self.path.startswith("/trickle"):  # a byte every 0.1 s (with or without a length)
            self.send_response(200)
            if self.path == "/trickle-length":
                self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(300):  # 30 s at most
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:  # the reader hung up
                pass
            self.close_connection = True
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


@pytest.mark.parametrize("path", ["/trickle-length", "/trickle"])
def test_a_source_trickling_its_answer_is_cut_off_at_the_deadline(origin: str, path: str) -> None:
    """Every byte comes within the read timeout, and a chunk read waits for a whole chunk: without
    a deadline the reader is held as long as the source likes (30 s here, days for a hostile one)."""
    fetcher = Fetcher(frozenset({"127.0.0.1"}), allow_private=True, timeout=5, deadline=1)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"within 1 s \(IMPORT_DEADLINE\)"):
        fetcher.get(origin + path)
    assert time.monotonic() - started < 5
    assert fetcher.get(origin + "/ok").content == b"x" * 10  # (the next answer is read as usual)


def test_settings_from_the_configuration() -> None:
    fetcher = Fetcher.from_config(
        {"IMPORT_ALLOWED_HOSTS": "a.org, *.b.org", "IMPORT_ALLOW_PRIVATE": True, "IMPORT_DEADLINE": "90"}
    )
    assert fetcher.allowed_hosts == {"a.org", "*.b.org"} and fetcher.allow_private and fetcher.deadline == 90


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


# -- DNS rebinding: the connection goes to the address that was checked ----------------------------

#: A public address (example.com's once): the tests' network never connects to it.
PUBLIC = "93.184.216.34"


class _Recording(_Handler):
    """Answers as :class:`_Handler` does, noting each request's path and ``Host`` header."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        super().do_GET()


class _LocalServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recording)
        self.seen: list[tuple[str, str | None]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def local() -> Iterator[_LocalServer]:
    yield from _serving(_LocalServer())


def _serving(server: _LocalServer) -> Iterator[_LocalServer]:
    # A short poll: shutdown() waits for it, once per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = urllib3.util.connection.create_connection


@dataclass
class _Network:
    """The resolver and the network the tests see. A name in ``answers`` gets its answers in turn
    (the last one then stays); a connection to an address in ``routes`` goes to the loopback
    address it names, to another non-loopback address it fails: nothing leaves loopback."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    #: (host, port) of each connection urllib3 opened, as it asked for it.
    connections: list[tuple[str, int]] = field(default_factory=list)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self.answers:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, int(port))) for a in addresses]

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address
        self.connections.append((host, port))
        if host in self.routes:
            return _real_create_connection((self.routes[host], port), *args, **kwargs)
        if _is_address(host) and not ipaddress.ip_address(host).is_loopback:
            raise OSError(f"no network in tests ({host})")
        return _real_create_connection(address, *args, **kwargs)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> _Network:
    net = _Network()
    monkeypatch.setattr(socket, "getaddrinfo", net.getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", net.create_connection)
    return net


def test_a_name_rebound_after_the_check_is_not_connected_to(local: _LocalServer, network: _Network) -> None:
    """The check hears a public address, a second resolution would hear 127.0.0.1: the connection
    goes to the public address, never by name (the tests' network refuses it)."""
    network.answers["rebind.example.test"] = [[PUBLIC], ["127.0.0.1"]]
    fetcher = Fetcher(frozenset({"rebind.example.test"}))
    with pytest.raises((SourceRefused, SourceUnavailable)):
        fetcher.get(f"http://rebind.example.test:{local.port}/ok")
    assert local.seen == []
    assert network.connections == [(PUBLIC, local.port)]


def test_addresses_are_checked_when_connecting(local: _LocalServer, network: _Network) -> None:
    """A source checked when configured (ckan_portal.read does) and rebound since is refused when
    fetched."""
    network.answers["rebind.example.test"] = [[PUBLIC], ["127.0.0.1"]]
    fetcher = Fetcher(frozenset({"rebind.example.test"}))
    url = f"http://rebind.example.test:{local.port}/ok"
    fetcher.check(url)
    with pytest.raises(SourceRefused, match=r"'rebind\.example\.test' is a loopback.*IMPORT_ALLOW_PRIVATE"):
        fetcher.get(url)
    assert local.seen == [] and network.connections == []


def test_a_public_source_is_fetched_from_its_checked_address(local: _LocalServer, network: _Network) -> None:
    """Connected to the address, the request still names the host (Host header); a redirect to a
    name that resolves to loopback is refused before anything is sent there."""
    network.answers |= {"data.example.test": [[PUBLIC]], "inside.example.test": [["127.0.0.1"]]}
    network.routes[PUBLIC] = "127.0.0.1"  # the "public" server is the local one
    fetcher = Fetcher(frozenset({"data.example.test", "inside.example.test"}))
    fetched = fetcher.get(f"http://data.example.test:{local.port}/ok")
    assert fetched.content == b"x" * 10 and fetched.url == f"http://data.example.test:{local.port}/ok"
    assert local.seen == [("/ok", f"data.example.test:{local.port}")]
    assert network.connections == [(PUBLIC, local.port)]
    with pytest.raises(SourceRefused, match=r"'inside\.example\.test' is a loopback"):
        fetcher.get(f"http://data.example.test:{local.port}/redirect-to-inside.example.test:{local.port}/ok")
    assert [path for path, _ in local.seen] == ["/ok", f"/redirect-to-inside.example.test:{local.port}/ok"]
    assert fetcher.received == 10


def test_a_private_source_when_allowed_keeps_its_host_name(local: _LocalServer, network: _Network) -> None:
    network.answers["intranet.example.test"] = [["127.0.0.1"]]
    fetcher = Fetcher(frozenset({"intranet.example.test"}), allow_private=True)
    assert fetcher.get(f"http://intranet.example.test:{local.port}/ok").content == b"x" * 10
    assert local.seen == [("/ok", f"intranet.example.test:{local.port}")]
    assert network.connections == [("127.0.0.1", local.port)]


def test_each_checked_address_is_tried_in_turn(local: _LocalServer, network: _Network) -> None:
    """As a connection by name would: the first address does not answer, the second does."""
    network.answers["two.example.test"] = [["192.0.2.1", "127.0.0.1"]]
    fetcher = Fetcher(frozenset({"two.example.test"}), allow_private=True)
    assert fetcher.get(f"http://two.example.test:{local.port}/ok").content == b"x" * 10
    assert network.connections == [("192.0.2.1", local.port), ("127.0.0.1", local.port)]
    assert len(local.seen) == 1


@pytest.fixture
def tls_local(tmp_path: Path) -> Iterator[tuple[_LocalServer, Path, list[str | None]]]:
    """A local HTTPS server whose certificate names data.example.test only; the server names
    the client sent (SNI) are noted."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=data.example.test",
         "-addext", "subjectAltName=DNS:data.example.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment]
    server = _LocalServer()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for running in _serving(server):
        yield running, cert, names


def test_tls_names_the_host_and_checks_its_certificate(
    tls_local: tuple[_LocalServer, Path, list[str | None]], network: _Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connected to an address, TLS still sends the host name (SNI) and checks the certificate
    against it: a name the certificate does not hold is refused."""
    server, cert, names = tls_local
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests prefers them to session.verify
        monkeypatch.delenv(name, raising=False)
    network.answers |= {"data.example.test": [["127.0.0.1"]], "other.example.test": [["127.0.0.1"]]}
    fetcher = Fetcher(frozenset({"data.example.test", "other.example.test"}), allow_private=True)
    fetcher.session.verify = str(cert)
    assert fetcher.get(f"https://data.example.test:{server.port}/ok").content == b"x" * 10
    assert names == ["data.example.test"]
    assert server.seen == [("/ok", f"data.example.test:{server.port}")]
    with pytest.raises(SourceUnavailable, match="could not be fetched"):
        fetcher.get(f"https://other.example.test:{server.port}/ok")
    assert len(server.seen) == 1


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
