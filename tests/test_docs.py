"""The docs speak for the code: generated pages are current, and every route, setting and
command a user can reach is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from flask import Flask

from server.cli import cli
from server.config import DEFAULTS
from tools import docgen

DOCS = Path(__file__).resolve().parent.parent / "docs"


def all_docs() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def test_data_model_page_is_current() -> None:
    assert (DOCS / "data-model.md").read_text(encoding="utf-8") == docgen.render(), (
        "docs/data-model.md is stale: run `python -m tools.docgen`"
    )


def test_every_route_is_documented(app: Flask) -> None:
    """API routes word for word; the other surfaces (/sparql, /id/…, /dumps/…) by their fixed part."""
    text = all_docs()
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api-docs") or rule.endpoint == "static":
            continue
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        else:
            path = rule.rule.split("<", 1)[0]
            path = f"`{path}" if path == "/" else path
        if path not in text:
            missing.append(path)
    assert not missing, f"routes missing from docs/: {sorted(set(missing))}"


@pytest.mark.parametrize("setting", sorted(DEFAULTS))
def test_every_setting_is_documented(setting: str) -> None:
    assert f"CIVICFED_{setting}" in all_docs()


def _commands(group: click.Group, prefix: str) -> list[str]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix} {name}")
        else:
            out.append(f"{prefix} {name}")
    return out


def test_every_command_is_documented() -> None:
    """Ours, and those of installed Flask extensions (entry points ``flask.commands``), which
    `civicfed --help` lists too (flask-limiter's `limiter`)."""
    from importlib.metadata import entry_points

    text = all_docs()
    plugins = click.Group("plugins", commands={ep.name: ep.load() for ep in entry_points(group="flask.commands")})
    missing = [c for c in _commands(cli, "civicfed") + _commands(plugins, "civicfed") if c not in text]
    assert not missing, f"commands missing from docs/: {missing}"
