"""The command line's federation commands: `civicfed peer add|list|remove` and `civicfed sync`
(docs/federation.md, docs/cli.md). server/cli.py adds them to `civicfed`."""

from __future__ import annotations

import getpass
import json
import time

import click
from flask.cli import with_appcontext

from .cli_errors import cli_errors, fail
from .services import services


@click.group("peer")
def peer_group() -> None:
    """Servers whose territories this one replicates (docs/federation.md)."""


@peer_group.command("add")
@click.argument("base_url")
@click.option("--territory", "territories", multiple=True, help="A territory to follow (repeat; default: all).")
@with_appcontext
@cli_errors
def peer_add(base_url: str, territories: tuple[str, ...]) -> None:
    """Follow the event streams of the civicfed server at BASE_URL."""
    from .ingest.peers import Peers

    peer = Peers(services().state).add(base_url, territories or None, f"command line ({getpass.getuser()})")
    which = ", ".join(peer.territories) if peer.territories else "every territory it publishes"
    click.echo(f"peer {peer.id}: {peer.base_url} ({which}); `civicfed sync {peer.id}` replicates it")


@peer_group.command("list")
@with_appcontext
@cli_errors
def peer_list() -> None:
    """The peers, and where the sync of each replicated territory stands."""
    from .ingest.peers import Peers

    peers = Peers(services().state)
    replicas = peers.replicas()
    for peer in peers.list():
        which = ", ".join(peer.territories) if peer.territories else "all"
        click.echo(f"{peer.id}\t{peer.base_url}\tterritories: {which}")
        for r in (r for r in replicas if r.peer == peer.id):
            when = r.synced_at.isoformat() if r.synced_at else "never"
            click.echo(f"  {r.territory}\t{r.members} members applied\tlast sync {when}")


@peer_group.command("remove")
@click.argument("peer")
@with_appcontext
@cli_errors
def peer_remove(peer: str) -> None:
    """Stop following a peer (what was replicated stays, read-only)."""
    from .ingest.peers import Peers

    removed = Peers(services().state).remove(peer)
    click.echo(f"peer {removed.id} removed")


@click.command("sync")
@click.argument("peer", required=False)
@click.option("--every", default=None, metavar="DURATION", help="Sync again and again, this long apart (30s, 10m, 1h).")
@with_appcontext
@cli_errors
def sync_command(peer: str | None, every: str | None) -> None:
    """Replicate the territories of one peer (or of every peer) from their event streams."""
    from importers.peer_sync import hand_over, sync_all

    from .store import StoreBusyError

    pause = _duration(every) if every else None
    while True:
        svc = services()
        try:
            svc.store  # noqa: B018 - the embedded store is free, or a server owns it
            reports = [r.to_dict() for r in sync_all(svc, peer)]
        except StoreBusyError:
            click.echo("the server owning the store runs the sync", err=True)
            reports = hand_over(svc, peer)
        finally:  # the embedded store let go between rounds: a server may start meanwhile
            svc.close()
        failed = False
        for report in reports:
            click.echo(json.dumps(report, ensure_ascii=False))
            failed = failed or report.get("error") is not None
        if pause is None:
            if failed:
                fail("a sync stopped with an error (see above); the next one goes on from where it stopped")
            return
        time.sleep(pause)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdecimal() or int(text[:-1]) < 1:
        fail(f"--every takes a duration such as 30s, 10m or 1h, not {text!r}")
    return int(text[:-1]) * units[text[-1]]
