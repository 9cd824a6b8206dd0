"""The ``civicfed`` command line. Commands call the same services as the HTTP views."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from .app import create_app
from .cli_errors import cli_errors as _cli_errors
from .cli_errors import fail as _fail
from .cli_indicators import indicators_group, rules_group
from .cli_peers import peer_group, sync_command
from .model.kinds import KINDS
from .services import services
from .state import readable_by_others


def _command_app() -> Flask:
    """The application of one command, closed when the command ends, however it ends: the
    embedded store is flushed (else its next owner, the server, replays the command's write-ahead
    log at start) and the state database closed."""
    app = create_app()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.find_root().call_on_close(app.extensions["civicfed"].close)
    return app


cli = FlaskGroup(
    create_app=_command_app,
    add_default_commands=False,
    help="civicfed: federated open data for citizen participation.",
)
cli.add_command(shell_command)
cli.add_command(peer_group)
cli.add_command(indicators_group)
cli.add_command(rules_group)
cli.add_command(sync_command)
cli.add_command(routes_command)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per worker process.")
@click.option(
    "--workers", default=1, show_default=True, type=int, help="Worker processes (more than one needs a remote store)."
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request to standard output.")
@click.option(
    "--pin-cpu/--no-pin-cpu",
    default=False,
    show_default=True,
    help="Keep each worker's request threads on one CPU: more small reads per second, less overlap of "
    "concurrent ingests (docs/deploy.md).",
)
@with_appcontext
def serve_command(host: str, port: int, threads: int, workers: int, access_log: bool, pin_cpu: bool) -> None:
    """Serve with gunicorn (threaded workers: pyoxigraph releases the GIL)."""
    from .serve import serve
    from .store import many_processes

    if workers < 1:
        _fail("--workers must be at least 1")
    data_dir = Path(services().config["DATA_DIR"])
    if readable_by_others(data_dir):
        # Like PostgreSQL: the data directory holds the territories' secrets and the private votes.
        _fail(
            f"the data directory {data_dir} can be read by other users (mode {data_dir.stat().st_mode & 0o777:o}): "
            f"it holds the territories' secrets and the private votes; run `chmod 700 {data_dir}`"
        )
    if workers > 1 and not many_processes(services().config["STORE"]):
        _fail(
            f"the embedded store ({services().config['STORE']}) can be opened by one process only: "
            "serve it with one worker (its threads answer requests in parallel), or move the data to a "
            "SPARQL server (`civicfed store copy --to URL`, then CIVICFED_STORE=URL) to run several workers"
        )
    serve(host=host, port=port, threads=threads, workers=workers, access_log=access_log, pin_cpu=pin_cpu)


# -- demo -------------------------------------------------------------------------------------
@cli.group("demo")
def demo_group() -> None:
    """Demo data."""


@demo_group.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing if a territory already exists.")
@click.option("--scale", default=1.0, show_default=True, type=float, help="Size multiplier.")
@with_appcontext
@_cli_errors
def demo_load(if_empty: bool, scale: float) -> None:
    """Create three territories (Lyon, Grenoble, Rennes) with realistic, deterministic data."""
    from importers import IMPORTERS
    from importers.demo import DEMO_TERRITORIES, territory_record
    from importers.runner import follow, start

    svc = services()
    existing = svc.state.territory_ids()
    if if_empty and existing:
        click.echo(f"demo: territories already exist ({', '.join(existing)}); nothing loaded")
        return
    clash = sorted({t.id for t in DEMO_TERRITORIES} & set(existing))
    if clash:
        _fail(f"the demo territories already exist ({', '.join(clash)}): loading again would overwrite their records")
    # Each territory's records come in through an import run, as another platform's would: they
    # carry their provenance (a PROV-O activity per territory), and `civicfed import report` shows it.
    for spec in DEMO_TERRITORIES:
        svc.records.create_territory(territory_record(spec))
        run, _ = start(svc, IMPORTERS["demo"], spec.id, spec.id, {"scale": scale})
        done = follow(svc, run)
        if done.status == "failed" or done.result is None:
            _fail(f"demo data of {spec.id} rejected: {done.message}")
        click.echo(f"demo: {spec.id}: {done.result['accepted']} records (import run {done.id})")


# -- territories ------------------------------------------------------------------------------
@cli.group("territory")
def territory_group() -> None:
    """Territories hosted by this server."""


@territory_group.command("create")
@click.argument("territory_id")
@click.option("--name", default=None, help="Official name (required for a new territory).")
@click.option("--country", default=None, help="ISO 3166-1 alpha-2 code, e.g. FR.")
@click.option("--insee", "insee_cog", default=None, help="INSEE COG code of the commune.")
@click.option("--lau", default=None, help="EU LAU code.")
@click.option("--nuts", default=None, help="NUTS code, e.g. FRK26.")
@click.option("--wikidata", default=None, help="Wikidata item, e.g. Q456.")
@click.option("--population", type=int, default=None, help="Number of inhabitants.")
@click.option("--population-year", type=int, default=None)
@click.option("--population-source", default=None, help="Who published the figure.")
@click.option("--population-source-url", default=None)
@with_appcontext
@_cli_errors
def territory_create(territory_id: str, **options: Any) -> None:
    """Register a territory (with its pseudonymisation secret) and write its record.

    On an existing territory, the options given change those fields and keep the others.
    """
    records = services().records
    record: dict[str, Any] = {"id": territory_id}
    if services().state.has_territory(territory_id):
        current = records.get(territory_id, KINDS["territory"], territory_id)
        record = {k: v for k, v in current.items() if k not in ("iri", "territory", "record_modified")}
    if "name" not in record and not options.get("name"):
        _fail("--name is required for a new territory")
    for key in ("name", "country", "insee_cog", "lau", "nuts", "wikidata"):
        if options.get(key):
            record[key] = options[key]
    if options.get("population") is not None:
        if not options.get("population_year") or not options.get("population_source"):
            _fail("--population needs --population-year and --population-source")
        record["population"] = {
            "value": options["population"],
            "year": options["population_year"],
            "source": options["population_source"],
        }
        if options.get("population_source_url"):
            record["population"]["source_url"] = options["population_source_url"]
    created, stored = records.create_territory(record)
    click.echo(f"territory {territory_id}: {'created' if created else 'updated'} ({stored['iri']})")


@territory_group.command("list")
@with_appcontext
def territory_list() -> None:
    """List territories (those replicated from peers with their origin)."""
    state = services().state  # not the store: the server may hold it
    origins = state.replica_origins()
    for t in sorted({*state.territory_ids(), *origins}):
        click.echo(f"{t}  (replica of {origins[t]})" if t in origins else t)


# -- API keys ---------------------------------------------------------------------------------
@cli.group("key")
def key_group() -> None:
    """API keys (stored hashed; a key is shown once)."""


@key_group.command("create")
@click.option("--territory", required=True)
@click.option("--role", required=True, help="admin, editor, or organization:<organization id>.")
@click.option("--label", default=None, help="Who or what uses the key.")
@with_appcontext
def key_create(territory: str, role: str, label: str | None) -> None:
    """Create a key and print it once."""
    try:
        key_id, key = services().state.create_key(territory, role, label)
    except (ValueError, LookupError) as exc:
        _fail(str(exc.args[0]))
    click.echo(f"key id: {key_id}", err=True)
    click.echo("store this key now: it is not kept in clear and cannot be shown again", err=True)
    click.echo(key)


@key_group.command("revoke")
@click.argument("key_id")
@with_appcontext
def key_revoke(key_id: str) -> None:
    """Revoke a key by its id."""
    if not services().state.revoke_key(key_id):
        _fail(f"no active key with id {key_id!r}")
    click.echo(f"key {key_id} revoked")


@key_group.command("list")
@click.option("--territory", default=None)
@with_appcontext
def key_list(territory: str | None) -> None:
    """List keys (ids, territories, roles; never the keys themselves)."""
    for k in services().state.keys(territory):
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        click.echo(f"{k.id}\t{k.territory}\t{k.role}\t{state}\t{k.label or ''}")


# -- import / export --------------------------------------------------------------------------
def _import_help() -> str:
    from importers import IMPORTERS

    return "Load data into a territory. FORMAT is one of:\n\n" + "\n\n".join(
        f"{name}: {i.summary}" for name, i in IMPORTERS.items()
    )


@cli.command("import", help=_import_help())
@click.argument("format_name", metavar="FORMAT")
@click.argument("source")
@click.option("--territory", default=None, help="The territory to load into (required, except for `import report`).")
@click.option("--partial", is_flag=True, help="ndjson, demo: write the valid records even if some are rejected.")
@click.option("--dry-run", is_flag=True, help="Validate only.")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE", help="An option of the format (demo: scale).")
@with_appcontext
@_cli_errors
def import_command(
    format_name: str, source: str, territory: str | None, partial: bool, dry_run: bool, options: tuple[str, ...]
) -> None:
    """Read SOURCE (a file, - for standard input, or a URL) in FORMAT and load it in one atomic
    step; `civicfed import report RUN` shows a run's report."""
    from importers import IMPORTERS
    from importers.runner import follow, start

    if format_name == "report":
        _print_run(_run_report(source))
        return
    importer = IMPORTERS.get(format_name)
    if importer is None:
        _fail(f"unknown format {format_name!r}: use one of {', '.join(IMPORTERS)}, or report")
    if territory is None:
        _fail("--territory is required: the territory to load into")
    extra: dict[str, Any] = {}
    for option in options:
        name, _, value = option.partition("=")
        if name not in importer.options:
            _fail(f"{format_name} takes no option {name!r}; its options: {', '.join(importer.options) or 'none'}")
        if name == "mapping" and value.startswith("@"):  # a table's mapping file, read here
            value = Path(value[1:]).read_text(encoding="utf-8")
        extra[name] = value
    extra["dry_run"] = dry_run
    if partial:
        extra["partial"] = True
    bar = _Progress() if sys.stderr.isatty() else None
    run, handed = start(services(), importer, source, territory, extra)
    if handed:
        click.echo(f"the server owning the store runs the import: run {run.id}", err=True)
    done = follow(services(), run, bar.update if bar else None)
    if bar:
        bar.close()
    _print_run(done)
    if done.status == "failed":
        sys.exit(1)


class _Progress:
    """Items read so far, on one line of a terminal."""

    def __init__(self) -> None:
        self.shown = -1

    def update(self, n: int) -> None:
        if n != self.shown:
            click.echo(f"\rread {n:,} items", err=True, nl=False)
            self.shown = n

    def close(self) -> None:
        if self.shown >= 0:
            click.echo(err=True)


def _run_report(run_id: str) -> Any:
    from server.ingest.runs import Runs

    run = Runs(services().state).get(run_id)
    if run is None:
        _fail(f"no import run {run_id!r} (`civicfed import report RUN` takes a run id a previous import printed)")
    return run


def _print_run(run: Any) -> None:
    """The run as JSON on standard output, and a one-paragraph summary on standard error."""
    data = run.to_dict()
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    counts = ", ".join(f"{data.get(k, 0):,} {k}" for k in ("created", "updated", "deleted", "unchanged"))
    quarantined = data.get("rejected", 0)
    summary = f"{run.territory} ← {run.source} ({run.format}): {run.status}"
    if "created" in data:
        word = "quarantined" if data.get("written") else "rejected"
        summary += f"; {data.get('read', 0):,} items read: {counts}, {quarantined:,} {word}"
    if run.message:
        summary += f". {run.message[:1].upper()}{run.message[1:]}"
    if quarantined:
        summary += f". Their reasons: `civicfed import report {run.id}`"
    click.echo(summary + ".", err=True)


def _export_help() -> str:
    from exporters import EXPORTERS
    from exporters.ckan import SUMMARY as CKAN_SUMMARY

    return (
        "Write data out of the store. FORMAT is one of:\n\n"
        + "\n\n".join(f"{name}: {e.summary}" for name, e in EXPORTERS.items())
        + f"\n\nckan: {CKAN_SUMMARY}"
    )


#: The options of ``export ckan`` (a portal, not a file) and those of the file formats.
CKAN_OPTIONS = ("url", "token", "org")
FILE_OPTIONS = ("kind", "output", "include_deleted", "include_private")


@cli.command("export", help=_export_help())
@click.argument("format_name", metavar="FORMAT")
@click.option("--territory", default=None, help="The territory (required, except for ckan: every territory).")
@click.option("--kind", default=None, help="The kind to dump (plural: proposals…), for the formats of one kind.")
@click.option("--output", "-o", type=click.File("wb"), default="-")
@click.option("--include-deleted", is_flag=True, help="ndjson: also write tombstones (`deleted: true`).")
@click.option("--include-private", is_flag=True, help="ndjson: also write votes (pseudonymous; never publish them).")
@click.option("--url", default=None, help="ckan: the portal's address (https://data.example.org).")
@click.option(
    "--token",
    default=None,
    envvar="CIVICFED_CKAN_TOKEN",
    help="ckan: an API token of a portal user who may create datasets (or CIVICFED_CKAN_TOKEN).",
)
@click.option("--org", default=None, help="ckan: the portal organization to publish in (default: one per territory).")
@click.pass_context
@with_appcontext
@_cli_errors
def export_command(
    ctx: click.Context,
    format_name: str,
    territory: str | None,
    kind: str | None,
    output: Any,
    include_deleted: bool,
    include_private: bool,
    url: str | None,
    token: str | None,
    org: str | None,
) -> None:
    """Write a territory's data in FORMAT, or push the catalog to a CKAN portal."""
    from exporters import EXPORTERS

    given = {name: ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE for name in ctx.params}
    if format_name == "ckan":
        for name in FILE_OPTIONS:
            if given[name]:
                _fail(f"ckan takes no --{name.replace('_', '-')}")
        _export_ckan(url, token, org, territory)
        return
    exporter = EXPORTERS.get(format_name)
    if exporter is None:
        _fail(f"unknown format {format_name!r}: use one of {', '.join([*EXPORTERS, 'ckan'])}")
    for name in CKAN_OPTIONS:
        if given[name]:
            _fail(f"{format_name} takes no --{name}")
    if territory is None:
        raise click.MissingParameter(ctx=ctx, param_hint="'--territory'", param_type="option")
    options = {"kind": kind, "include_deleted": include_deleted, "include_private": include_private}
    for name, value in options.items():
        if value and name not in exporter.options:
            _fail(f"{format_name} takes no --{name.replace('_', '-')}")
    options = {name: value for name, value in options.items() if name in exporter.options}
    try:
        n = exporter.dump(services().records, territory, output, **options)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"{n} {exporter.unit}", err=True)


def _export_ckan(url: str | None, token: str | None, org: str | None, territory: str | None) -> None:
    """``civicfed export ckan``: the same push as any other caller (exporters.ckan.push)."""
    from exporters.ckan import connect, push

    if not url:
        _fail("ckan needs --url: the portal's address")
    if not token:
        _fail("ckan needs --token (or CIVICFED_CKAN_TOKEN): an API token of the portal")
    svc = services()
    if territory is not None:
        svc.records.require_territory(territory)
    catalog = svc.catalog()
    territories = [territory] if territory is not None else None
    total = sum(1 for d in catalog.datasets if territory is None or d.territory.id == territory)
    with connect(url, token) as ckan:
        if sys.stdout.isatty():
            # A bar on a terminal only: in a log or a pipe it would be noise.
            with click.progressbar(length=total, label="ckan", show_pos=True) as bar:
                summary = push(
                    catalog,
                    ckan,
                    base=svc.urls.base,
                    org=org,
                    territories=territories,
                    progress=lambda _: bar.update(1),
                )
        else:
            summary = push(catalog, ckan, base=svc.urls.base, org=org, territories=territories)
    for failure in summary.failed:
        click.echo(f"ckan: {failure.name}: {failure.message}", err=True)
    click.echo(f"ckan: {summary.line()}")
    if summary.failed:
        _fail(f"{len(summary.failed)} of the datasets failed (see above)")


# -- store ------------------------------------------------------------------------------------
@cli.group("store")
def store_group() -> None:
    """The quad store: move the data between backends."""


@store_group.command("copy")
@click.option("--to", "target", default=None, help="Destination: a directory or a SPARQL query endpoint URL.")
@click.option("--from", "source", default=None, help="Origin (default: the configured CIVICFED_STORE).")
@with_appcontext
@_cli_errors
def store_copy(target: str | None, source: str | None) -> None:
    """Copy every graph of this instance to another store, then verify counts and hashes.

    Give --to (copy the configured store there) or --from (copy into the configured store).
    """
    from .config import store_options
    from .store import open_store
    from .store.copy import copy_graphs

    svc = services()
    if bool(target) == bool(source):
        _fail("give exactly one of --to and --from")
    options = store_options(svc.config)
    origin = svc.store if target else open_store(source, **options)
    destination = open_store(target, **options) if target else svc.store
    report = copy_graphs(origin, destination, svc.urls.is_own_graph, echo=click.echo)
    click.echo(f"copied {report.graphs} graphs, {report.quads} quads; counts and hashes verified")


def main() -> None:
    # Configuration comes from CIVICFED_* variables; FLASK_APP must not redirect us elsewhere.
    os.environ.pop("FLASK_APP", None)
    cli.main(prog_name="civicfed")


if __name__ == "__main__":
    main()
