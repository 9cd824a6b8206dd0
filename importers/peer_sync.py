"""Following peers: each territory a peer publishes, replicated here from its event stream
(``/ldes/{territory}``, docs/federation.md) under the origin's IRIs, in the graph of the same
territory id, read-only.

A sync walks the stream from where the last one stopped (``server/ingest/peers.py`` keeps the page
to read next, its ETag and the time of the last member applied): full pages are read once; the
newest page is asked again with ``If-None-Match``, so a sync with nothing new costs one 304. Each
page is applied in one store write — every member replaces the description of the record it is
a version of (a tombstone included, as the origin's graph holds it) —, then the progress is
recorded: a sync killed anywhere applies the page again next time, which changes nothing twice.

What a peer may say is bounded: only members that are versions of IRIs of the territory it
publishes (``{peer}/id/{territory}`` and below), about themselves and their ``#`` nodes; pages,
members and bytes per sync are limited; addresses go through the import fetcher's checks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyoxigraph import Literal, NamedNode, RdfFormat, Triple, parse

from server.errors import CivicfedError, Conflict, MalformedBody
from server.indicators import sums
from server.ingest.peers import Peer, Peers, SyncRequests
from server.model.kinds import KINDS, Kind
from server.model.terms import format_datetime, stable_term, typed
from server.records.clock import micros
from server.records.index import emit_index, read_index
from server.services import Civicfed
from server.store import Changeset, StoreBusyError
from server.urls import TERRITORY_ID_RE
from vocabularies import AS, CF, DCT, LDES, PROV, RDF, TREE, XSD

from .remote import Fetcher, SourceUnavailable

log = logging.getLogger(__name__)

#: How often the server's sync thread looks for syncs handed to it (seconds).
POLL = 1.0
#: What a peer's page may hold at most, and a sync may read.
MAX_MEMBERS = 10_000
MAX_PAGES = 100_000
ACCEPT = "application/n-triples, text/turtle;q=0.9"
#: A member's own statements that say what it is a version of and when: not the record's.
_TIME = NamedNode(PROV.generatedAtTime)
_STREAM_TERMS = (NamedNode(DCT.isVersionOf), _TIME)
_FORMATS = {"application/n-triples": RdfFormat.N_TRIPLES, "text/turtle": RdfFormat.TURTLE}


@dataclass
class SyncReport:
    """What one sync of one replicated territory did."""

    territory: str
    peer: str
    pages: int = 0
    members: int = 0
    applied: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: The newest page had not changed (the sync was one conditional request).
    unchanged: bool = False
    rejected: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "territory": self.territory, "peer": self.peer, "pages": self.pages, "members": self.members,
            "applied": self.applied, "bytes": self.bytes, "seconds": round(self.seconds, 3),
            "unchanged": self.unchanged, "rejected": self.rejected[:100], "error": self.error,
        }  # fmt: skip


def fetcher_for(svc: Civicfed, peer: Peer) -> Fetcher:
    """The fetcher of a peer: its host only (an administrator added it), private addresses as
    for imports (IMPORT_ALLOW_PRIVATE), a size limit per page."""
    from urllib.parse import urlsplit

    config = svc.config
    return Fetcher(
        allowed_hosts=frozenset({urlsplit(peer.base_url).hostname or ""}),
        allow_private=bool(config["IMPORT_ALLOW_PRIVATE"]),
        max_bytes=int(config["PEER_MAX_PAGE_BYTES"]),
        timeout=float(config["IMPORT_TIMEOUT"]),
        deadline=float(config["IMPORT_DEADLINE"]),
    )


def territories_of(peer: Peer, fetcher: Fetcher) -> list[str]:
    """The territories a peer publishes: its VoID description's event streams."""
    got = fetcher.get(f"{peer.base_url}/.well-known/void", headers={"Accept": "text/turtle"})
    prefix = f"{peer.base_url}/ldes/"
    found = set()
    for t in _parse(got.content, "text/turtle", got.url):
        if t.predicate == NamedNode(CF.eventStream) and isinstance(t.object, NamedNode):
            stream = t.object.value.split("#", 1)[0]
            if stream.startswith(prefix) and "/" not in stream[len(prefix) :]:
                found.add(stream[len(prefix) :])
    return sorted(found)


def sync_peer(svc: Civicfed, peer: Peer, fetcher: Fetcher | None = None) -> list[SyncReport]:
    """Sync every territory followed from a peer; one report each (an error stops only its own)."""
    fetcher = fetcher or fetcher_for(svc, peer)
    try:
        territories = list(peer.territories or territories_of(peer, fetcher))
    except CivicfedError as err:  # the peer away: its report says so, the other peers go on
        return [SyncReport("*", peer.id, error=f"the territories of {peer.base_url}: {err.detail or err.title}")]
    reports = []
    for territory in territories:
        report = SyncReport(territory, peer.id)
        try:
            sync_territory(svc, peer, territory, fetcher, report)
        except CivicfedError as err:
            report.error = err.detail or err.title
        except Exception as exc:  # a store or database refusal: this territory's sync stops here
            log.exception("sync of %s from %s", territory, peer.id)
            report.error = f"the sync stopped: {type(exc).__name__}: {str(exc)[:300]}"
        reports.append(report)
    return reports


def sync_territory(svc: Civicfed, peer: Peer, territory: str, fetcher: Fetcher, report: SyncReport) -> None:
    if not TERRITORY_ID_RE.fullmatch(territory):
        raise MalformedBody(f"{peer.base_url} names a territory {territory[:80]!r}, which is not a territory id")
    if svc.state.has_territory(territory):
        raise Conflict(f"territory {territory!r} is this server's own: it cannot also be replicated from {peer.id}")
    # One sync of a territory at a time, across threads and processes (workers syncing on a
    # schedule, `civicfed sync` beside them): the next one starts where this one stops, instead
    # of reading the same pages and counting their members twice.
    with svc.state.write_lock(territory):
        _sync_territory(svc, peer, territory, fetcher, report)


def _sync_territory(svc: Civicfed, peer: Peer, territory: str, fetcher: Fetcher, report: SyncReport) -> None:
    peers = Peers(svc.state)
    origin = f"{peer.base_url}/id/{territory}"
    replica = peers.replica(territory)
    if replica is not None and replica.peer != peer.id:
        raise Conflict(f"territory {territory!r} is already replicated from peer {replica.peer!r}")
    # The replica is recorded once its stream has answered (a territory the peer does not publish
    # leaves nothing behind).
    url = replica.page_url if replica else f"{peer.base_url}/ldes/{territory}"
    etag, last_us = (replica.etag, replica.last_us) if replica else (None, 0)
    if replica is not None and replica.members and not svc.store.count(svc.urls.index_graph(territory, "territory")):
        # Replicated before syncs kept the record index: the stream read again from its start
        # (applying a member twice changes nothing) indexes every record.
        url, etag, last_us = f"{peer.base_url}/ldes/{territory}", None, 0
    seen: set[str] = set()
    # A sync that died between its pages and its recount left the marker: recount this time.
    recount = svc.records.writer.cells.pending(territory)
    started, received = time.monotonic(), fetcher.received
    budget = int(svc.config["PEER_MAX_BYTES"])
    began = dt.datetime.now(dt.UTC)
    try:
        for _ in range(MAX_PAGES):
            if url in seen:
                raise MalformedBody(f"{url}: the stream's relations lead back to a page already read")
            seen.add(url)
            headers = {"Accept": ACCEPT, **({"If-None-Match": etag} if etag else {})}
            got = fetcher.get(url, headers=headers)
            report.pages += 1
            if replica is None:
                replica = peers.start(territory, peer, origin, url)
            if got.status == 304:
                report.unchanged = report.pages == 1
                return
            triples = _parse(got.content, got.media_type, got.url)
            members, following, related = _page(triples, url, peer, origin, report)
            report.members += len(members)
            fresh = [m for m in members if m[0] > last_us]
            if fresh or related:
                if not recount:  # the pages' indicators are counted at the end: say so first
                    svc.records.commit(lambda _: svc.records.writer.cells.marked(territory))
                    recount = True
                _apply(svc, territory, peer, fresh, related)
            if fresh:
                last_us = max(m[0] for m in fresh)
                report.applied += len(fresh)
            if following is None:  # the newest page: asked again, conditionally, next time
                tag = got.headers.get("ETag")
                peers.progress(territory, url, tag if tag and len(tag) <= 500 else None, last_us, len(fresh))
                return
            if len(following) > 4000:
                raise MalformedBody(f"{url} leads to a URL of {len(following)} characters")
            peers.progress(territory, following, None, last_us, len(fresh))
            url, etag = following, None
            if fetcher.received - received > budget:
                report.error = f"stopped after {budget} bytes (PEER_MAX_BYTES); the next sync goes on from here"
                return
        report.error = f"stopped after {MAX_PAGES} pages; the next sync goes on from here"
    finally:
        report.bytes = fetcher.received - received
        report.seconds = time.monotonic() - started
        if report.applied:  # a sync that changed nothing adds nothing (a 304 every ten minutes)
            _describe(svc, peer, territory, report, began)
        if recount and sys.exc_info()[0] is None:
            # A replica's indicators are computed again from what it now holds, once per sync
            # (under the territory's write lock the sync holds): its pages are written apart
            # from the write path, which keeps its own territories' values current. The
            # replacement removes the marker; a sync that failed leaves it for the next one.
            svc.records.replace_indicators(territory, sums(svc.records, territory))


def _describe(svc: Civicfed, peer: Peer, territory: str, report: SyncReport, began: dt.datetime) -> None:
    """The sync as a PROV-O activity, in the territory's sync graph (not the replica's own)."""
    urls = svc.urls
    ended = dt.datetime.now(dt.UTC)
    act = f"<{urls.sync_run(territory, began.strftime('%Y%m%dT%H%M%S%fZ'))}>"
    stream, replica = f"<{peer.base_url}/ldes/{territory}#stream>", f"<{urls.territory_graph(territory)}>"
    lines = [
        f"{act} <{RDF.type}> <{PROV.Activity}>",
        f"{act} <{RDF.type}> <{CF.Sync}>",
        f"{act} <{PROV.used}> {stream}",
        f"{act} <{PROV.startedAtTime}> {typed(format_datetime(began), XSD.dateTime)}",
        f"{act} <{PROV.endedAtTime}> {typed(format_datetime(ended), XSD.dateTime)}",
        f"{act} <{CF.pagesRead}> {typed(str(report.pages), XSD.integer)}",
        f"{act} <{CF.membersApplied}> {typed(str(report.applied), XSD.integer)}",
        f"{act} <{CF.bytesReceived}> {typed(str(report.bytes), XSD.integer)}",
        f"{replica} <{DCT.source}> {stream}",
        f"{replica} <{PROV.wasDerivedFrom}> {stream}",
        f"{replica} <{PROV.wasGeneratedBy}> {act}",
    ]
    cs = Changeset()
    cs.add(urls.sync_graph(territory), lines)
    with svc.state.commit_lock():
        svc.store.apply(cs)


Member = tuple[int, str, list[str]]  # (time in µs, resource IRI, its N-Triples statements)


def _parse(content: bytes, media_type: str, url: str) -> list[Triple]:
    try:
        return [q.triple for q in parse(content, format=_FORMATS.get(media_type, RdfFormat.TURTLE), base_iri=url)]
    except (SyntaxError, ValueError) as exc:
        raise MalformedBody(f"{url} is not a readable page of an event stream: {exc}") from exc


def _page(
    triples: Iterable[Triple], url: str, peer: Peer, origin: str, report: SyncReport
) -> tuple[list[Member], str | None, list[str]]:
    """The page's members (in time order), the next page's URL (None: the newest page), and
    what the page says of what its members link to."""
    by_subject: dict[str, list[Triple]] = {}
    for t in triples:
        if isinstance(t.subject, NamedNode):
            by_subject.setdefault(t.subject.value, []).append(t)
    streams = [
        s
        for s, ts in by_subject.items()
        if any(t.predicate == NamedNode(RDF.type) and t.object == NamedNode(LDES.EventStream) for t in ts)
    ]
    if len(streams) != 1:
        raise MalformedBody(f"{url} describes {len(streams)} event streams, not one")
    versions = [
        t.object.value
        for t in by_subject[streams[0]]
        if t.predicate == NamedNode(TREE.member) and isinstance(t.object, NamedNode)
    ]
    if len(versions) > MAX_MEMBERS:
        raise MalformedBody(f"{url} holds {len(versions)} members, more than {MAX_MEMBERS}")
    # Each version's own subjects: the version and its `#` nodes (grouped once, not per member).
    nodes: dict[str, list[str]] = {}
    for subject in by_subject:
        nodes.setdefault(subject.split("#", 1)[0], []).append(subject)
    members = []
    for version in versions:
        member = _member(version, by_subject, nodes.get(version, []), peer, origin)
        if isinstance(member, str):
            report.rejected.append(member)
        else:
            members.append(member)
    following = None
    for t in by_subject.get(url, []):
        if t.predicate == NamedNode(TREE.relation):
            relation = by_subject.get(getattr(t.object, "value", ""), [])
            kinds = {r.object for r in relation if r.predicate == NamedNode(RDF.type)}
            nodes = [
                r.object.value
                for r in relation
                if r.predicate == NamedNode(TREE.node) and isinstance(r.object, NamedNode)
            ]
            if NamedNode(TREE.GreaterThanOrEqualToRelation) in kinds and nodes:
                following = nodes[0]
    if following is not None and not following.startswith(f"{peer.base_url}/ldes/"):
        raise MalformedBody(f"{url} leads to {following}, outside the peer's event streams")
    return sorted(members), following, _related(by_subject, set(versions), origin)


def _related(by_subject: dict[str, list[Triple]], versions: set[str], origin: str) -> list[str]:
    """What the territory publishes beside its records (accounts, import runs, sources), stated
    by the page for the members that link to it: added, never dropped (it only grows at the
    origin). Only subjects of the territory's own IRIs: anything else on a page is not taken."""
    kinds = tuple(f"{origin}/{kind}/" for kind in ("account", "import", "source"))
    return [
        f"<{t.subject.value}> <{t.predicate.value}> {stable_term(t.object)}"
        for subject, ts in by_subject.items()
        if subject.startswith(kinds) and "/.." not in subject
        for t in ts
        if type(t.object) is not Triple
    ]


def _member(
    version: str, by_subject: dict[str, list[Triple]], subjects: list[str], peer: Peer, origin: str
) -> Member | str:
    """A member as the statements of the resource it is a version of; or why it is refused."""
    own = by_subject.get(version, [])
    resource = next(
        (t.object.value for t in own if t.predicate == NamedNode(DCT.isVersionOf) and isinstance(t.object, NamedNode)),
        None,
    )
    moment = next((t.object.value for t in own if t.predicate == _TIME and type(t.object) is Literal), None)
    if resource is None or moment is None:
        return f"{version}: no dct:isVersionOf or prov:generatedAtTime"
    if not version.startswith(peer.base_url + "/") or not (resource == origin or resource.startswith(origin + "/")):
        return f"{version}: a version of {resource}, outside {origin}"
    try:
        time_us = micros(dt.datetime.fromisoformat(moment))
    except (ValueError, TypeError):
        return f"{version}: its time {moment!r} is not an xsd:dateTime with a time zone"
    prefix = version + "#"

    def term(node: Any) -> str:
        if isinstance(node, NamedNode) and (node.value == version or node.value.startswith(prefix)):
            return f"<{resource}{node.value[len(version) :]}>"
        return stable_term(node)  # what the origin publishes, on every store

    if any(type(t.object) is Triple for subject in subjects for t in by_subject[subject]):
        return f"{version}: a statement about a statement (RDF 1.2), which a version does not hold"
    lines = []
    for subject in subjects:
        if subject == version or subject.startswith(prefix):
            for t in by_subject[subject]:
                if subject == version and t.predicate in _STREAM_TERMS:
                    continue
                lines.append(f"{term(t.subject)} <{t.predicate.value}> {term(t.object)}")
    return time_us, resource, lines


def _apply(svc: Civicfed, territory: str, peer: Peer, members: list[Member], related: list[str]) -> None:
    """One write: each record's latest version on the page replaces what the replica holds of
    it; what the records link to is added. The record index follows, so that the JSON API
    lists and reads a replica like a territory of this server's own: each record's time is when
    this server applied it (this server's clock: its lists' cursors and ``modified_since`` see
    replicated records in the order they arrived, and a peer's clock, wrong or hostile, moves
    nothing here), in the order of the origin's versions."""
    graph = svc.urls.territory_graph(territory)
    latest: dict[str, Member] = {}
    for member in members:  # in time order: the last version wins
        latest[member[1]] = member
    cs = Changeset()
    for subject in svc.store.describe(sorted(latest), graph):
        cs.drop(graph, subject)
    origin = svc.urls.of_origin(peer.base_url)
    indexed: list[tuple[Kind, str, bool]] = []
    for _, resource, lines in sorted(latest.values()):
        cs.add(graph, lines)
        ref = origin.parse(resource)
        # The territory itself, or a record of a public kind: only what a JSON API serves
        # (`…/id/t/territory/x` is no record: a territory is `…/id/t` alone).
        kind = None
        if ref is not None and ref.fragment is None and ref.kind != "territory":
            kind = KINDS.get(ref.kind or "territory")
        if kind is not None and not kind.private:
            indexed.append((kind, resource, f"<{resource}> <{RDF.type}> <{AS.Tombstone}>" in lines))
    cs.add(graph, related)
    # When each record was first recorded here stays (the JSON API's first time, and what a vote
    # without its own date counts from against a deadline); a record new or back is recorded now.
    first: dict[str, dt.datetime] = {}
    for name in sorted({k.name for k, _, _ in indexed}):
        entries = read_index(svc.store, svc.urls, territory, KINDS[name], [r for k, r, _ in indexed if k.name == name])
        first.update((iri, e.created or e.modified) for iri, e in entries.items() if not e.deleted)

    def stamped(now: Callable[[], dt.datetime]) -> Changeset:
        for kind, resource, gone in indexed:
            at = now()
            created = first.get(resource, at)
            emit_index(cs, svc.urls, territory, kind, resource, at, deleted=gone, existed=True, created=created)
        return cs

    svc.records.commit(stamped)


def sync_all(svc: Civicfed, peer: str | None = None) -> list[SyncReport]:
    """Sync one peer (by id or URL) or every peer."""
    peers = Peers(svc.state)
    reports: list[SyncReport] = []
    for p in [peers.get(peer)] if peer else peers.list():
        reports += sync_peer(svc, p)
    return reports


class Syncer:
    """The server's sync thread: every peer every ``SYNC_EVERY`` seconds (0: only when asked),
    and the syncs a `civicfed sync` hands over while this process owns the embedded store."""

    def __init__(self, svc: Civicfed) -> None:
        self.svc = svc
        try:  # read now: a bad setting fails the start, not the thread later
            self.every = float(svc.config["SYNC_EVERY"] or 0)
        except (TypeError, ValueError):
            raise ValueError(f"CIVICFED_SYNC_EVERY is a number of seconds, not {svc.config['SYNC_EVERY']!r}") from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peer-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        every = self.every
        due = time.monotonic() + every if every > 0 else None
        requests = SyncRequests(self.svc.state)
        while not self._stop.wait(POLL):
            try:
                for request_id, peer in requests.pending():
                    done: list[dict[str, Any]] = [{"peer": peer, "error": "the sync stopped (see the server's log)"}]
                    try:
                        done = [r.to_dict() for r in sync_all(self.svc, peer)]
                    except CivicfedError as err:
                        done = [{"peer": peer, "error": err.detail or err.title}]
                    finally:  # every request is answered once, whatever happened
                        requests.done(request_id, done)
                if due is not None and time.monotonic() >= due:
                    due = time.monotonic() + every  # (before: a failing sync must not run every second)
                    for report in sync_all(self.svc):
                        log.info("sync %s: %s", report.territory, json.dumps(report.to_dict()))
            except Exception:  # the state database or a peer away for a moment: next round
                log.exception("syncing peers failed")


def hand_over(svc: Civicfed, peer: str | None, timeout: float = 3600.0) -> list[dict[str, Any]]:
    """Ask the server owning the embedded store to sync, and wait for its reports. When the store
    comes free first (it was held by another command, or the server stopped), the sync is taken
    back and run here."""
    requests = SyncRequests(svc.state)
    request_id = requests.ask(peer)
    deadline = time.monotonic() + timeout
    tried = time.monotonic()
    while time.monotonic() < deadline:
        result = requests.result(request_id)
        if result is not None:
            return result
        if time.monotonic() - tried > 5 * POLL:
            tried = time.monotonic()
            try:
                svc.store  # noqa: B018 - free now?
            except StoreBusyError:
                pass
            else:
                if requests.withdraw(request_id):  # (not if a server answered it meanwhile)
                    return [r.to_dict() for r in sync_all(svc, peer)]
        time.sleep(POLL / 2)
    raise SourceUnavailable(f"the server owning the store did not run sync {request_id} within {timeout:g} s")
