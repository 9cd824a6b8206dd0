"""Federation at scale: one territory of about a million quads, all published (votes as counts),
generated, ingested through the origin's JSON API (the baseline, measured in the same run), then replicated by a second
instance from the origin's event stream (``civicfed sync``'s code, over HTTP on loopback); then
1,000 changes on the origin (proposals retitled, comments rewritten, through the API) and an incremental sync.

Figures: initial replication (members/s, quads/s, bytes on the wire, and its time against the
ingest's time of the same territory); incremental sync (bytes per change, seconds), against the
size of a changed resource's description (its N-Triples, as ``/id/…`` serves it).

Targets (issue #11): initial replication ≥ 50% of the ingest rate of the same data through the
API; incremental bytes per change ≤ 3 times the changed resource's description. ``python -m
bench.federation`` runs this alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from .generate import write
from .run import Server, free_port, fresh_data_dir, ingest, setup

CHANGES = 1000


def run_federation(work: Path, quads: int = 1_000_000, threads: int = 8, changes: int = CHANGES) -> dict[str, Any]:
    # Votes as counts: individual votes are private, never in a stream, and would be most of the
    # quads of a territory whose published part is a tenth of its size.
    files = write(work / "federation-ndjson", quads, 1, counts_only=True)
    territory = files[0][0]["id"]
    origin_dir = fresh_data_dir(work / "federation-origin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"  # the origin's IRIs are where a replica reaches it
    keys = setup(origin_dir, [record for record, _, _ in files], base=base)
    origin = Server(origin_dir, threads, port=port, base=base)
    out: dict[str, Any] = {"territory": territory}
    try:
        out["ingest"] = ingest(origin, keys, files, 5000, 1)
        out["initial"], replica = _replicate(work, base, territory)
        out["incremental"] = _incremental(origin, keys[territory], territory, replica, changes)
    finally:
        origin.stop()
    return out


def _replicate(work: Path, base: str, territory: str) -> tuple[dict[str, Any], Any]:
    from importers.peer_sync import sync_peer
    from server.app import create_app
    from server.ingest.peers import Peers

    replica_dir = fresh_data_dir(work / "federation-replica")
    app = create_app(
        {"DATA_DIR": str(replica_dir), "BASE_URI": "https://replica.example", "IMPORT_ALLOW_PRIVATE": True}
    )
    ctx = app.app_context()
    ctx.push()
    svc = app.extensions["civicfed"]
    peer = Peers(svc.state).add(base, (territory,), "bench")
    started = time.perf_counter()
    [report] = sync_peer(svc, peer)
    seconds = time.perf_counter() - started
    if report.error:
        raise RuntimeError(f"the initial sync failed: {report.error}")
    replicated = svc.store.count(svc.urls.territory_graph(territory))
    initial = {**report.to_dict(), "seconds": seconds, "quads": replicated}
    return initial, (app, ctx, svc, peer)


def _incremental(origin: Server, key: str, territory: str, replica: Any, changes: int) -> dict[str, Any]:
    from importers.peer_sync import sync_peer

    app, ctx, svc, peer = replica
    http = requests.Session()
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/merge-patch+json"}
    root = f"{origin.url}/api/v1/territories/{territory}"
    # Proposals retitled, then comments rewritten, up to `changes` records (a territory of a
    # million quads has a few hundred proposals: votes are most of its quads).
    targets: list[tuple[str, str, dict[str, str]]] = []
    for plural, field in (("proposals", "title"), ("comments", "body")):
        cursor = None
        while len(targets) < changes:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = http.get(f"{root}/{plural}", params=params, timeout=60).json()
            targets += [(plural, r["id"], {field: f"Changed {r['id']}"}) for r in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    targets = targets[:changes]
    for plural, local_id, patch in targets:
        answer = http.patch(f"{root}/{plural}/{local_id}", json=patch, headers=auth, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"changing {plural}/{local_id} failed: {answer.status_code} {answer.text[:300]}")
    kinds = {"proposals": "proposal", "comments": "comment"}
    sample = targets[:: max(1, len(targets) // 50)]
    sizes = [len(http.get(f"{origin.url}/id/{territory}/{kinds[k]}/{i}.nt", timeout=60).content) for k, i, _ in sample]
    started = time.perf_counter()
    [report] = sync_peer(svc, peer)
    seconds = time.perf_counter() - started
    [nothing] = sync_peer(svc, peer)
    ctx.pop()
    app.extensions["civicfed"].close()
    if report.error:
        raise RuntimeError(f"the incremental sync failed: {report.error}")
    return {
        **report.to_dict(),
        "seconds": seconds,
        "changes": len(targets),
        "description_bytes": sum(sizes) / len(sizes),
        "bytes_per_change": report.bytes / len(targets),
        "nothing_new_bytes": nothing.bytes,
        "nothing_new_pages": nothing.pages,
    }


def report(results: dict[str, Any]) -> str:
    ing, first, inc = results["ingest"], results["initial"], results["incremental"]
    ratio = ing["seconds"] / first["seconds"]
    per_change = inc["bytes_per_change"] / inc["description_bytes"]
    members_s, quads_s = first["members"] / first["seconds"], first["quads"] / first["seconds"]
    return "\n".join(
        [
            "",
            f"federation: territory {results['territory']}, ingested through the API, replicated from its stream",
            f"  ingest through the API (baseline): {ing['records']:,} records, {ing['quads']:,} quads "
            f"in {ing['seconds']:.1f} s = {ing['quads_per_s']:,.0f} quads/s",
            f"  initial replication: {first['members']:,} members, {first['quads']:,} quads, {first['pages']:,} "
            f"pages, {first['bytes'] / 1e6:,.1f} MB on the wire in {first['seconds']:.1f} s "
            f"= {members_s:,.0f} members/s, {quads_s:,.0f} quads/s",
            f"    the same territory replicated at {ratio:.0%} of its ingest rate (ingest time / replication "
            f"time; target ≥ 50%: {'PASS' if ratio >= 0.5 else 'FAIL'})",
            f"  incremental sync after {inc['changes']:,} changes: {inc['applied']:,} members applied, "
            f"{inc['pages']} pages, {inc['bytes']:,} bytes in {inc['seconds']:.2f} s "
            f"= {inc['bytes_per_change']:,.0f} bytes per change",
            f"    a changed resource's description: {inc['description_bytes']:,.0f} bytes; per change "
            f"{per_change:.2f}x (target ≤ 3x: {'PASS' if per_change <= 3 else 'FAIL'})",
            f"  a sync with nothing new: {inc['nothing_new_pages']} request, {inc['nothing_new_bytes']} bytes",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quads", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="civicfed-bench-federation-") as work:
        results = run_federation(Path(work), args.quads, args.threads)
    print(report(results))
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
