"""Operational state: territories' secrets and API keys, in a small relational database.

Never in the public quad store. SQLite file by default; any SQLAlchemy URL (PostgreSQL for
scale-out) through ``CIVICFED_STATE_DB``. Keys are stored as SHA-256 hashes: they are 256-bit
random tokens, so a plain hash is as strong as a slow KDF and keeps verification cheap.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable

from .errors import Conflict
from .urls import TERRITORY_ID_RE

ROLE_RE = re.compile(r"^(admin|editor|organization:[A-Za-z0-9][A-Za-z0-9._~-]{0,127})$")
KEY_PREFIX = "cfk_"

metadata = MetaData()

territories = Table(
    "territories",
    metadata,
    Column("id", String(64), primary_key=True),
    # HMAC key for pseudonyms: losing it changes every pseudonym, so back the database up.
    Column("secret", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Facts about the instance that must not change under its data (the base IRI).
instance = Table(
    "instance",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(2048), nullable=False),
)

#: Per territory, the last record_modified (µs) any process wrote: processes sharing a remote
#: store never go back in time, so cursors and modified_since stay exact.
clocks = Table(
    "clocks",
    metadata,
    Column("territory", String(64), primary_key=True),
    Column("last_us", BigInteger, nullable=False),
)

#: Rate-limit counts when the processes serving the instance share them (``server/web/limit_storage.py``):
#: one row per client and budget, its hits in the current fixed window and when that window ends
#: (Unix seconds). A row whose window is over counts as zero and is deleted now and then. Written
#: by every limited request, so UNLOGGED on PostgreSQL: no WAL, no disk flush per request; after a
#: crash (or on a standby) the table is empty, which only restarts the windows.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=False),
    info={"unlogged": True},
)


#: The people among the participants of each place of a territory's indicators (a period, a
#: process or a district: server/records/participants.py), so that distinct participants stay
#: exact when a contribution goes. An index over the store's records, set again from them when
#: the indicators are repaired: kept here, a write's participants cost a row each, not a quad.
indicator_participants = Table(
    "indicator_participants",
    metadata,
    Column("territory", String(64), primary_key=True),
    Column("place", String(400), primary_key=True),
    Column("person", String(128), primary_key=True),
    # Rows are their key alone: SQLite then keeps one B-tree, not a table and its index (half
    # the file; an import adds a row per person and place).
    sqlite_with_rowid=False,
)


#: The indicator cells of each territory (server/records/cell_rows.py): per cell (an indicator, or
#: a count a share or a median is made from, at a place: ``code/period/process/district``) its
#: value and how many contributions make it, which every write adds to. Like the participants, an
#: index over the store's records, set again from them when the indicators are repaired: kept
#: here, a write's cells cost a row each, not a quad in the store the records are written to.
indicator_cells = Table(
    "indicator_cells",
    metadata,
    Column("territory", String(64), primary_key=True),
    Column("cell", String(400), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("contributions", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)


@compiles(CreateTable, "postgresql")
def _create_unlogged(create: CreateTable, compiler: Any, **kw: Any) -> str:
    sql: str = compiler.visit_create_table(create, **kw)
    if create.element.info.get("unlogged"):
        sql = sql.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1)
    return sql


#: Import runs (server/ingest/runs.py): queued by the JSON API or by a `civicfed import` that
#: hands its run to the server owning the embedded store, run by the server, followed by both.
import_runs = Table(
    "import_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("territory", String(64), ForeignKey("territories.id"), nullable=False, index=True),
    Column("format", String(64), nullable=False),
    Column("source", String(2048), nullable=False),
    # The file the runner reads: an upload kept in the data directory, or the operator's file.
    Column("path", String(4096), nullable=True),
    Column("options", Text, nullable=False),
    Column("agent", String(200), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("read", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    # Written every few seconds while it runs: a run whose process died stops beating.
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("sha256", String(64), nullable=True),
    # The report (counts, quarantined items), JSON.
    Column("result", Text, nullable=True),
    Column("message", Text, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True, index=True),
    Column("territory", String(64), ForeignKey("territories.id"), nullable=False),
    Column("role", String(160), nullable=False),
    Column("label", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


#: Servers whose territories this one replicates (docs/federation.md): added by an administrator.
peers = Table(
    "peers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("base_url", String(2048), nullable=False, unique=True),
    # The territories followed, JSON (null: every territory the peer publishes).
    Column("territories", Text, nullable=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("added_by", String(200), nullable=False),
)

#: Each territory replicated from a peer, and where its sync stands: the page to read next (the
#: newest page read, with its ETag) and the time of the last member applied.
replicas = Table(
    "replicas",
    metadata,
    Column("territory", String(64), primary_key=True),
    Column("peer", String(64), ForeignKey("peers.id"), nullable=False, index=True),
    Column("origin", String(2048), nullable=False),
    Column("page_url", String(4096), nullable=False),
    Column("etag", String(512), nullable=True),
    Column("last_us", BigInteger, nullable=False, default=0),
    Column("members", BigInteger, nullable=False, default=0),
    Column("synced_at", DateTime(timezone=True), nullable=True),
)


#: Where each full page of a territory's event stream ends (the next page's first time), fixed
#: the first time the page is found full: retention then only ever takes members away from a
#: page, never moves its bounds (server/ldes).
stream_pages = Table(
    "stream_pages",
    metadata,
    Column("territory", String(64), primary_key=True),
    Column("from_us", BigInteger, primary_key=True, autoincrement=False),
    Column("next_us", BigInteger, nullable=False),
)

#: Syncs asked for by a `civicfed sync` that could not open the embedded store (a server owns
#: it): the server's sync thread runs them and writes their reports back.
sync_requests = Table(
    "sync_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("peer", String(64), nullable=True),  # null: every peer
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("result", Text, nullable=True),
)


class InstanceMismatch(RuntimeError):
    """The state database belongs to an instance with another base IRI."""


@dataclass(frozen=True)
class Principal:
    """Who is writing: an API key's territory and role."""

    key_id: str
    territory: str
    role: str

    @property
    def organization(self) -> str | None:
        return self.role.split(":", 1)[1] if self.role.startswith("organization:") else None


@dataclass(frozen=True)
class KeyInfo:
    id: str
    territory: str
    role: str
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter (created 0700 if missing, with its parents)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode goes through the umask
    return path


def readable_by_others(path: Path) -> bool:
    """Whether other users may list or read ``path`` (group or other permission bits)."""
    return path.exists() and bool(path.stat().st_mode & 0o077)


class State:
    """Access to the state database, plus per-territory write locks."""

    def __init__(self, url: str) -> None:
        if url.startswith(("postgresql://", "postgres://")):  # use psycopg 3, not SQLAlchemy's default psycopg2
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.url = url
        # flock files beside a SQLite database (None for in-memory SQLite and server databases).
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
        self.lock_dir = Path(path).parent / "locks" if path else None
        kwargs: dict[str, object] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if path and path != ":memory:":
            # Territory secrets and key hashes: readable by this user only, from the first byte.
            private_dir(Path(path).parent)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(path, 0o600)
        self.engine: Engine = create_engine(url, **kwargs)
        self._secrets: dict[str, bytes] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._held = threading.local()  # the names of the locks this thread holds
        # Workers starting together on a new database would race to create the tables ("table
        # territories already exists"): one creates them, the others then find them.
        with self._lock("schema"):
            metadata.create_all(self.engine)
        if path and path != ":memory:":
            # Write-ahead logging: readers never wait for a writer, and a commit is one append,
            # not a rewrite of the journal (rate-limit counts write on every request). Persistent:
            # it is a property of the database file.
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

    # -- instance ----------------------------------------------------------------------------
    def check_base_iri(self, base_iri: str) -> None:
        """Record the base IRI on first use; refuse another one later.

        Every stored IRI starts with it: serving the same data under another base would make
        every record unreachable, so the mismatch is an error, not a silent 404 everywhere.
        Workers booting together on a new database would both find no row and both insert it
        (UNIQUE constraint failed): the lock makes the second one read the first one's row.
        """
        with self._lock("instance"), self.engine.begin() as conn:
            row = conn.execute(select(instance.c.value).where(instance.c.key == "base_iri")).first()
            if row is None:
                conn.execute(insert(instance).values(key="base_iri", value=base_iri))
            elif row[0] != base_iri:
                raise InstanceMismatch(
                    f"this data directory was created with CIVICFED_BASE_URI={row[0]}, not {base_iri}: "
                    "every stored IRI starts with it. Set CIVICFED_BASE_URI back, or copy the data "
                    "to a new instance (see docs/configuration.md)."
                )

    # -- territories -------------------------------------------------------------------------
    def create_territory(self, territory: str) -> bool:
        """Register a territory and give it a fresh secret; False if it already exists. The id
        of a territory replicated from a peer is taken (409): its graph holds the origin's data."""
        with self.engine.begin() as conn:
            replica = conn.execute(select(replicas.c.peer).where(replicas.c.territory == territory)).first()
            if replica is not None:
                raise Conflict(f"territory {territory!r} is replicated from peer {replica.peer!r}: choose another id")
            if conn.execute(select(territories.c.id).where(territories.c.id == territory)).first():
                return False
            conn.execute(insert(territories).values(id=territory, secret=secrets.token_bytes(32), created_at=_now()))
        return True

    def territory_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(territories.c.id).order_by(territories.c.id))]

    def replica_origins(self) -> dict[str, str]:
        """The territories replicated from peers, with each one's IRI at its origin."""
        with self.engine.connect() as conn:
            return {r.territory: r.origin for r in conn.execute(select(replicas.c.territory, replicas.c.origin))}

    def has_territory(self, territory: str) -> bool:
        return self.secret(territory) is not None

    def secret(self, territory: str) -> bytes | None:
        cached = self._secrets.get(territory)
        if cached is not None:
            return cached
        # A string that cannot be a territory id is unknown without asking the database:
        # PostgreSQL refuses some of them (NUL bytes) with an error instead of "no row".
        if not TERRITORY_ID_RE.fullmatch(territory):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(territories.c.secret).where(territories.c.id == territory)).first()
        if row is None:
            return None
        self._secrets[territory] = bytes(row[0])
        return self._secrets[territory]

    # -- API keys ----------------------------------------------------------------------------
    def create_key(self, territory: str, role: str, label: str | None = None) -> tuple[str, str]:
        """Create an API key; returns (key id, key). The key is shown once and stored hashed."""
        if not ROLE_RE.match(role):
            raise ValueError(f"unknown role {role!r}: use admin, editor or organization:<organization id>")
        if not self.has_territory(territory):
            raise LookupError(f"unknown territory {territory!r}")
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    key_hash=hash_key(key),
                    territory=territory,
                    role=role,
                    label=label,
                    created_at=_now(),
                )
            )
        return key_id, key

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return result.rowcount > 0

    def keys(self, territory: str | None = None) -> list[KeyInfo]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if territory:
            query = query.where(api_keys.c.territory == territory)
        with self.engine.connect() as conn:
            return [
                KeyInfo(r.id, r.territory, r.role, r.label, r.created_at, r.revoked_at) for r in conn.execute(query)
            ]

    def principal(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key, or None."""
        if not key.startswith(KEY_PREFIX):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_keys.c.id, api_keys.c.territory, api_keys.c.role, api_keys.c.revoked_at).where(
                    api_keys.c.key_hash == hash_key(key)
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal(row.id, row.territory, row.role)

    # -- write serialisation -----------------------------------------------------------------
    @contextmanager
    def write_lock(self, territory: str) -> Iterator[None]:
        """Serialise writers of one territory (read-check-write of counts and uniqueness)."""
        with self._lock(f"territory:{territory}"):
            yield

    @contextmanager
    def commit_lock(self) -> Iterator[None]:
        """Serialise the commits of the whole instance (record times follow commit order)."""
        with self._lock("commit"):
            yield

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """A named lock across threads, and across processes: a PostgreSQL advisory lock, or an
        flock on a file beside the SQLite database (processes of one machine). A thread holding
        it may take it again (a staged import's batches, each a write, under the lock it holds
        for the whole import)."""
        held: set[str] = self._held.__dict__.setdefault("names", set())
        if name in held:
            yield
            return
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock, self._holding(held, name):
            if self.engine.dialect.name == "postgresql":
                key = int.from_bytes(hashlib.sha256(f"civicfed:{name}".encode()).digest()[:8], "big", signed=True)
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    try:
                        yield
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
            elif self.lock_dir is not None:
                private_dir(self.lock_dir)
                with open(self.lock_dir / f"{name.replace(':', '-')}.lock", "a") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(handle, fcntl.LOCK_UN)
            else:
                yield

    @staticmethod
    @contextmanager
    def _holding(held: set[str], name: str) -> Iterator[None]:
        held.add(name)
        try:
            yield
        finally:
            held.discard(name)

    def clock_floor(self, territory: str) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(clocks.c.last_us).where(clocks.c.territory == territory)).first()
        return int(row[0]) if row else 0

    def set_clock_floor(self, territory: str, last_us: int) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(clocks).where(clocks.c.territory == territory).values(last_us=last_us))
            if done.rowcount == 0:
                conn.execute(insert(clocks).values(territory=territory, last_us=last_us))

    def close(self) -> None:
        self.engine.dispose()
