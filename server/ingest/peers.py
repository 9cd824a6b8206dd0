"""Peers and replicated territories in the state database (docs/federation.md).

A peer is another server whose event streams this one follows; a replica is one of its
territories held here, read-only, under the origin's IRIs, with where its sync stands. The
state database is what every process of an instance shares: the command line and the server
see the same peers and the same progress.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update

from ..errors import BadRequest, Conflict, NotFound
from ..state import State, peers, replicas, sync_requests, territories
from ..urls import TERRITORY_ID_RE


@dataclass(frozen=True)
class Peer:
    id: str
    base_url: str
    #: None: every territory the peer publishes.
    territories: tuple[str, ...] | None
    added_at: dt.datetime
    added_by: str


@dataclass(frozen=True)
class Replica:
    territory: str
    peer: str
    #: The territory's IRI at its origin (``{peer}/id/{territory}``).
    origin: str
    page_url: str
    etag: str | None
    last_us: int
    members: int
    synced_at: dt.datetime | None


def peer_id(base_url: str) -> str:
    """A peer's id: its host and port, as a slug (``lyon-example-org``, ``127-0-0-1-8001``)."""
    parts = urlsplit(base_url)
    return re.sub(r"[^a-z0-9]+", "-", f"{parts.hostname}-{parts.port or ''}".lower()).strip("-")[:64]


class Peers:
    def __init__(self, state: State) -> None:
        self.state = state

    def add(self, base_url: str, territories: tuple[str, ...] | None, added_by: str) -> Peer:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise BadRequest(f"a peer is the base URL of a civicfed server (http(s)://host[:port]), not {base_url!r}")
        base_url = base_url.rstrip("/")
        for t in territories or ():
            if not TERRITORY_ID_RE.fullmatch(t):
                raise BadRequest(f"{t!r} is not a territory id")
        with self.state.engine.begin() as conn:
            if conn.execute(select(peers.c.id).where(peers.c.base_url == base_url)).first():
                raise Conflict(f"{base_url} is already a peer")
            # Two base URLs may make one id (http and https, two paths on one host): -2, -3…
            taken = {r.id for r in conn.execute(select(peers.c.id))}
            name = peer_id(base_url)
            if name in taken:
                name = next(f"{name[:60]}-{n}" for n in range(2, len(taken) + 3) if f"{name[:60]}-{n}" not in taken)
            peer = Peer(name, base_url, territories, dt.datetime.now(dt.UTC), added_by)
            conn.execute(
                insert(peers).values(
                    id=peer.id, base_url=base_url, added_at=peer.added_at, added_by=added_by,
                    territories=None if territories is None else json.dumps(list(territories)),
                )
            )  # fmt: skip
        return peer

    def list(self) -> list[Peer]:
        with self.state.engine.connect() as conn:
            rows = conn.execute(select(peers).order_by(peers.c.id)).all()
        return [
            Peer(r.id, r.base_url, None if r.territories is None else tuple(json.loads(r.territories)),
                 r.added_at, r.added_by)
            for r in rows
        ]  # fmt: skip

    def get(self, name: str) -> Peer:
        """A peer by id or base URL."""
        for peer in self.list():
            if name in (peer.id, peer.base_url, peer.base_url + "/"):
                return peer
        raise NotFound(f"no peer {name!r}: see `civicfed peer list`")

    def remove(self, name: str) -> Peer:
        """Forget a peer and where its syncs stand (the replicated data stays until dropped)."""
        peer = self.get(name)
        with self.state.engine.begin() as conn:
            conn.execute(delete(replicas).where(replicas.c.peer == peer.id))
            conn.execute(delete(peers).where(peers.c.id == peer.id))
        return peer

    # -- replicas ----------------------------------------------------------------------------
    def replica(self, territory: str) -> Replica | None:
        with self.state.engine.connect() as conn:
            r = conn.execute(select(replicas).where(replicas.c.territory == territory)).first()
        return (
            None
            if r is None
            else Replica(r.territory, r.peer, r.origin, r.page_url, r.etag, r.last_us, r.members, r.synced_at)
        )

    def replicas(self) -> list[Replica]:
        with self.state.engine.connect() as conn:
            rows = conn.execute(select(replicas).order_by(replicas.c.territory)).all()
        return [
            Replica(r.territory, r.peer, r.origin, r.page_url, r.etag, r.last_us, r.members, r.synced_at) for r in rows
        ]

    def start(self, territory: str, peer: Peer, origin: str, page_url: str) -> Replica:
        """Record a territory to replicate (no-op if it is already this peer's)."""
        found = self.replica(territory)
        if found is not None:
            if found.peer != peer.id:
                raise Conflict(f"territory {territory!r} is already replicated from peer {found.peer!r}")
            return found
        with self.state.engine.begin() as conn:
            # (A local territory created since the sync began: the id is taken. The territory
            # creation checks the replicas the same way, in its own transaction.)
            if conn.execute(select(territories.c.id).where(territories.c.id == territory)).first():
                raise Conflict(f"territory {territory!r} is this server's own: it cannot also be replicated")
            conn.execute(
                insert(replicas).values(
                    territory=territory, peer=peer.id, origin=origin, page_url=page_url, last_us=0, members=0
                )
            )
        return self.replica(territory)  # type: ignore[return-value]

    def progress(self, territory: str, page_url: str, etag: str | None, last_us: int, applied: int) -> None:
        """Where the sync of a territory stands, once what it applied is in the store."""
        with self.state.engine.begin() as conn:
            conn.execute(
                update(replicas)
                .where(replicas.c.territory == territory)
                .values(page_url=page_url, etag=etag, last_us=last_us, members=replicas.c.members + applied,
                        synced_at=dt.datetime.now(dt.UTC))
            )  # fmt: skip


def _replica(r: Any) -> Replica:
    return Replica(r.territory, r.peer, r.origin, r.page_url, r.etag, r.last_us, r.members, r.synced_at)


class SyncRequests:
    """Syncs handed by the command line to the server that owns the embedded store."""

    def __init__(self, state: State) -> None:
        self.state = state

    def ask(self, peer: str | None) -> str:
        request_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        with self.state.engine.begin() as conn:
            conn.execute(insert(sync_requests).values(id=request_id, peer=peer, requested_at=dt.datetime.now(dt.UTC)))
        return request_id

    def pending(self) -> list[tuple[str, str | None]]:
        with self.state.engine.connect() as conn:
            rows = conn.execute(
                select(sync_requests.c.id, sync_requests.c.peer)
                .where(sync_requests.c.done_at.is_(None))
                .order_by(sync_requests.c.requested_at)
            ).all()
        return [(r.id, r.peer) for r in rows]

    def done(self, request_id: str, result: list[dict[str, Any]]) -> None:
        with self.state.engine.begin() as conn:
            conn.execute(
                update(sync_requests)
                .where(sync_requests.c.id == request_id)
                .values(done_at=dt.datetime.now(dt.UTC), result=json.dumps(result))
            )

    def withdraw(self, request_id: str) -> bool:
        """Take back a request no server has answered; False if one has."""
        with self.state.engine.begin() as conn:
            gone = conn.execute(
                delete(sync_requests).where(sync_requests.c.id == request_id, sync_requests.c.done_at.is_(None))
            )
        return gone.rowcount == 1

    def result(self, request_id: str) -> list[dict[str, Any]] | None:
        """The reports of a request once the server ran it (None: not yet)."""
        with self.state.engine.connect() as conn:
            row = conn.execute(select(sync_requests.c.result).where(sync_requests.c.id == request_id)).first()
        if row is None or row.result is None:
            return None
        return json.loads(row.result)
