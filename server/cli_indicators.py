"""The command line's indicator and rule commands: `civicfed indicators compute|verify`, `civicfed
rules evaluate` (docs/indicators.md, docs/rules.md,
docs/cli.md). server/cli.py adds them to `civicfed`."""

from __future__ import annotations

import csv
import re
import sys

import click
from flask.cli import with_appcontext

from .cli_errors import cli_errors, fail
from .services import services


@click.group("indicators")
def indicators_group() -> None:
    """The participation indicators (docs/indicators.md)."""


@indicators_group.command("compute")
@click.option("--territory", required=True, help="The territory (its own, or one replicated from a peer).")
@click.option("--period", default=None, help="Only this year or month and its months (2024, 2024-03).")
@with_appcontext
@cli_errors
def indicators_compute(territory: str, period: str | None) -> None:
    """Compute a territory's indicators from its records, by period, process and district; print
    CSV (indicator, period, process, district: empty for all of them, value)."""
    from vocabularies import indicators

    from .indicators import recompute

    if period is not None and not re.fullmatch(r"\d{4}(-(0[1-9]|1[0-2]))?", period):
        fail(f"--period is a year or a month (2024, 2024-03), not {period!r}")
    records = services().records
    records.require_readable(territory)
    order = {code: i for i, code in enumerate(indicators())}
    cells = sorted(recompute(records, territory).items(), key=lambda c: (order[c[0][0]], *_sortable(c[0][1:])))
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["indicator", "period", "process", "district", "value"])
    for (code, when, process, district), value in cells:
        if period is None or when.startswith(period):
            out.writerow([code, when, process or "", district or "", value])


@indicators_group.command("verify")
@click.option("--territory", "territories", multiple=True, help="A territory (repeat; default: all of them).")
@click.option("--repair", is_flag=True, help="Rewrite the maintained values of a territory that differs.")
@with_appcontext
@cli_errors
def indicators_verify(territories: tuple[str, ...], repair: bool) -> None:
    """Compare the indicator values every write maintains with a computation from scratch; print
    each difference (territory, indicator, period, process, district, maintained, computed).
    Exits 1 on any difference, unless --repair set it right."""
    from .indicators import verify

    records = services().records
    for territory in territories:
        records.require_readable(territory)
    wrong = 0
    out = csv.writer(sys.stdout, lineterminator="\n")
    for territory in territories or records.territory_ids():
        verdict = verify(records, territory, repair=repair)
        for d in verdict.differences:
            code, period, process, district = d.cell
            row = [territory, code, period, process or "", district or "", _text(d.maintained), _text(d.computed)]
            out.writerow(row)
        wrong += bool(verdict)
        said = [f"{len(verdict.differences)} differences"] if verdict.differences else []
        said += [f"the cube differs by {verdict.cube} statements"] if verdict.cube else []
        said += ["a write's values were not written"] if verdict.pending else []
        said += [f"{verdict.participants} participants differ"] if verdict.participants else []
        state = ("repaired: " if repair else "") + ", ".join(said) if verdict else "ok"
        click.echo(f"{territory}: {state}", err=True)
    if wrong and not repair:
        fail(f"{wrong} territories' maintained indicators differ from their records (--repair sets them right)")


def _sortable(place: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(part or "" for part in place)


def _text(value: object) -> str:
    return "" if value is None else str(value)


@click.group("rules")
def rules_group() -> None:
    """The receivability rules (docs/rules.md)."""


@rules_group.command("evaluate")
@click.option("--territory", "territories", multiple=True, help="A territory (repeat; default: all of them).")
@with_appcontext
@cli_errors
def rules_evaluate(territories: tuple[str, ...]) -> None:
    """Decide anew the receivability of every proposal of every process with rules, as writes
    do; only decisions that change are written. Prints how many changed per territory. (`civicfed
    serve` does it at start and whenever a rule's deadline passes.)"""
    records = services().records
    for territory in territories:
        records.require_territory(territory)
    for territory in territories or records.territory_ids(replicas=False):
        click.echo(f"{territory}\t{records.decide(territory)}")
