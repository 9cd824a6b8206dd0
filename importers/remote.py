"""Fetching a remote source (an Open311 endpoint, a CONSUL GraphQL API, a CKAN or DCAT portal)
within the limits an administrator set: hosts on an allowlist only, never a loopback, private
or link-local address unless allowed, a few redirects each checked the same way, a size and a
time limit. Importers get a :class:`Fetcher` as their ``fetcher`` option and call ``get``.

A host is resolved once per request, and the connection goes to one of the addresses that
resolution gave and the check let through (:class:`_PinnedAdapter`): were the name resolved again
when connecting, a hostile DNS server could answer a public address to the check and 127.0.0.1 to
the connection (DNS rebinding).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from server.errors import CivicfedError

#: Defaults of the IMPORT_* settings (docs/configuration.md).
MAX_BYTES = 256 * 1024 * 1024
TIMEOUT = 30.0
DEADLINE = 600.0
MAX_REDIRECTS = 3
USER_AGENT = "civicfed-importer (+https://w3id.org/civicfed)"
DEFAULT_PORTS = {"http": 80, "https": 443}


class SourceRefused(CivicfedError):
    """The source's address is not one this server may fetch (configuration decides)."""

    status, slug, title = 403, "source-refused", "Source not allowed"


class SourceUnavailable(CivicfedError):
    """The source did not answer as a source should (network error, HTTP error, too large)."""

    status, slug, title = 502, "source-unavailable", "Source unavailable"


@dataclass(frozen=True)
class Fetched:
    """A fetched document: the URL it came from (after redirects), status, headers and body."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


@dataclass
class Fetcher:
    """Fetches within limits. ``allowed_hosts`` lists host names (``*.example.org`` matches
    sub-domains; ``*`` any public host); ``allow_private`` lets loopback, private and link-local
    addresses through (tests, an intranet source)."""

    allowed_hosts: frozenset[str] = frozenset()
    allow_private: bool = False
    max_bytes: int = MAX_BYTES
    timeout: float = TIMEOUT
    #: Seconds an answer may take to arrive whole, redirects included (0: no limit): ``timeout``
    #: bounds the wait between two reads only, and a source sending a byte every few seconds
    #: would hold its reader for ever. (Headers are cut by the read timeout, shortened to what is
    #: left: a source trickling its header lines is held for that long per read.)
    deadline: float = DEADLINE
    max_redirects: int = MAX_REDIRECTS
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    #: Bytes received so far (provenance reports them).
    received: int = 0

    def __post_init__(self) -> None:
        # requests' own adapters would resolve the host again when connecting: this one connects
        # to the addresses `_connectable` resolved and checked.
        adapter = _PinnedAdapter(self._connectable)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Fetcher:
        hosts = config.get("IMPORT_ALLOWED_HOSTS") or ()
        if isinstance(hosts, str):
            hosts = [h for h in hosts.replace(",", " ").split() if h]
        return cls(
            allowed_hosts=frozenset(h.lower() for h in hosts),
            allow_private=bool(config.get("IMPORT_ALLOW_PRIVATE", False)),
            max_bytes=int(config.get("IMPORT_MAX_BYTES", MAX_BYTES)),
            timeout=float(config.get("IMPORT_TIMEOUT", TIMEOUT)),
            deadline=float(config.get("IMPORT_DEADLINE", DEADLINE)),
        )

    def check(self, url: str) -> None:
        """Raise :class:`SourceRefused` unless this URL may be fetched."""
        host, port = self._check_url(url)
        if not self.allow_private:
            self._connectable(host, port)

    def _check_url(self, url: str) -> tuple[str, int]:
        """The URL's host and port, once its form and host are allowed (no name resolved: the
        adapter resolves and checks the addresses it connects to)."""
        # What HTTP clients and this check could read differently is refused outright: a
        # backslash (`http://127.0.0.1\@allowed.org/` goes to 127.0.0.1 with requests),
        # spaces, control characters, and the characters an IRI may not hold (it is written
        # into the run's provenance).
        if UNSAFE_URL.search(url):
            raise SourceRefused(f'{url!r} holds characters a source URL may not (backslash, space, <>"{{}}|^`)')
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise SourceRefused(f"{url!r} is not a valid URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceRefused(f"{url!r} is not an http(s) URL")
        host = parts.hostname.lower()
        if not _host_allowed(host, self.allowed_hosts):
            raise SourceRefused(
                f"the host {host!r} is not in IMPORT_ALLOWED_HOSTS: an administrator allows the hosts sources "
                "are fetched from"
            )
        return host, port or DEFAULT_PORTS[parts.scheme]

    def _connectable(self, host: str, port: int) -> list[str]:
        """The host's addresses, each one checked, in the resolver's order: those a connection
        to the host may go to."""
        addresses = _addresses(host, port)
        if not self.allow_private:
            for address in addresses:
                if not _public(address):
                    raise SourceRefused(
                        f"{host!r} is a loopback, private or link-local address ({address}): refused unless "
                        "IMPORT_ALLOW_PRIVATE is set"
                    )
        return list(dict.fromkeys(str(address) for address in addresses))

    def get(
        self, url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Fetched:
        """GET the URL (each redirect checked like the URL itself); raise SourceUnavailable on a
        network error, an HTTP error status, or a body over ``max_bytes``."""
        return self.request("GET", url, params=params, headers=headers)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Fetched:
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        # One deadline for the answer, redirects included (0: none).
        ends = time.monotonic() + self.deadline if self.deadline > 0 else None
        for _hop in range(self.max_redirects + 1):
            self._check_url(url)  # the addresses are checked by the session's adapter, when connecting
            left = self.timeout if ends is None else min(self.timeout, ends - time.monotonic())
            if left <= 0:
                raise SourceUnavailable(f"{url} did not send its answer within {self.deadline:g} s (IMPORT_DEADLINE)")
            try:
                with self.session.request(
                    method, url, params=params, headers=sent, json=json, timeout=left,
                    allow_redirects=False, stream=True,
                ) as resp:  # fmt: skip
                    if resp.is_redirect and "Location" in resp.headers:
                        url, params = urljoin(resp.url, resp.headers["Location"]), None
                        if resp.status_code in (301, 302, 303):
                            method, json = "GET", None
                        continue
                    body = self._read(resp, url, ends)
                    if resp.status_code >= 400:
                        raise SourceUnavailable(f"{url} answered {resp.status_code} {resp.reason}")
                    return Fetched(resp.url, resp.status_code, resp.headers, body)
            except requests.RequestException as exc:
                raise SourceUnavailable(f"{url} could not be fetched: {exc}") from exc
        raise SourceUnavailable(f"{url}: more than {self.max_redirects} redirects")

    def _read(self, resp: requests.Response, url: str, ends: float | None) -> bytes:
        """The body, within ``max_bytes`` and by ``ends``: then a watchdog shuts the connection
        down, which ends the read blocked in it (a read of a chunk waits for the whole chunk, so
        a check between chunks would come too late)."""
        out = bytearray()
        late = threading.Event()
        watchdog = threading.Timer(max(0.0, ends - time.monotonic()) if ends else 0, _cut, (resp, late))
        watchdog.daemon = True
        if ends is not None:
            watchdog.start()
        try:
            for chunk in resp.iter_content(64 * 1024):
                out += chunk
                if len(out) > self.max_bytes:
                    raise SourceUnavailable(f"{url} is larger than IMPORT_MAX_BYTES ({self.max_bytes} bytes)")
        except requests.RequestException:
            if not late.is_set():
                raise
        finally:
            watchdog.cancel()
        length = resp.headers.get("Content-Length", "")
        whole = length.isdigit() and int(length) == len(out)  # (cut just after the last byte came)
        if late.is_set() and not whole:  # a body without a length just ends early when cut
            raise SourceUnavailable(f"{url} did not send its answer within {self.deadline:g} s (IMPORT_DEADLINE)")
        self.received += len(out)
        return bytes(out)


class _PinnedAdapter(HTTPAdapter):
    """Sends a request to an address ``connectable`` gave for its host (resolved and checked
    once, for this request), trying them in turn as a connection to a host name does. The name
    stays in the ``Host`` header, the TLS server name (SNI) and the certificate check. Proxies are
    not used: a proxy would resolve the name again."""

    def __init__(self, connectable: Callable[[str, int], list[str]]) -> None:
        super().__init__()
        self._connectable = connectable

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        addresses = self._connectable(parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme])
        for n, address in enumerate(addresses, 1):
            try:
                return super().send(_pinned(request, parts, address), stream, timeout, verify, cert, None)
            except requests.ConnectionError as exc:
                if n == len(addresses) or not _not_connected(exc):
                    raise
        # Reached only when the resolver gave no address at all.
        raise SourceUnavailable(f"the host {parts.hostname!r} has no address")

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # The pool connects to the checked address; with TLS, the name is still the one sent
        # (SNI) and the one the certificate must match. Pools are keyed by both.
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        host_params["host"] = getattr(request, _ADDRESS)
        if host_params["scheme"] == "https":
            pool_kwargs |= {"server_hostname": name, "assert_hostname": name}
        return host_params, pool_kwargs


#: The attribute of a request sent by :class:`_PinnedAdapter` naming the address to connect to.
_ADDRESS = "civicfed_checked_address"


def _pinned(request: requests.PreparedRequest, parts: SplitResult, address: str) -> requests.PreparedRequest:
    """A copy of the request bound for this address, with the ``Host`` header urllib3 would have
    written from the URL (it writes the address it connects to otherwise)."""
    pinned = request.copy()
    setattr(pinned, _ADDRESS, address)
    if "Host" not in pinned.headers:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = parts.port
        pinned.headers["Host"] = host if port in (None, DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"
    return pinned


def _cut(resp: requests.Response, late: threading.Event) -> None:
    """Shut down the connection a response is read from (from the watchdog's thread)."""
    late.set()
    # The socket the body is read from: http.client's file over it (the connection object may
    # have let go of its own reference once the headers were read).
    sock = getattr(getattr(getattr(getattr(resp.raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    if sock is None:
        sock = getattr(getattr(resp.raw, "_connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: the read has ended
            sock.shutdown(socket.SHUT_RDWR)


def _not_connected(exc: requests.ConnectionError) -> bool:
    """Whether no connection was made (nothing was sent), so that the next address may be tried."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


#: Characters no source URL needs and some would be read differently by a client or break an IRI.
UNSAFE_URL = re.compile(r'[\\\s<>"{}|^`\x00-\x1f\x7f]')
#: IPv6 forms that carry an IPv4 address (NAT64, IPv4-compatible) and the deprecated site-local
#: range, which Python counts as global.
_NOT_PUBLIC_V6 = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::/96", "fec0::/10")]


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    return not (isinstance(address, ipaddress.IPv6Address) and any(address in n for n in _NOT_PUBLIC_V6))


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    if "*" in allowed or host in allowed:
        return True
    return any(a.startswith("*.") and host.endswith(a[1:]) for a in allowed)


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise SourceUnavailable(f"the host {host!r} could not be resolved: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
