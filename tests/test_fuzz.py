"""No input produces a 500: the JSON API fuzzed from its own OpenAPI document (schemathesis),
and bulk ingest fed arbitrary JSON lines (hypothesis). Deterministic (derandomised) runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importers.demo import load_demo
from server.services import services

from .conftest import make_app, unique_base

# Generated requests by the thousand: not in make test-fast.
pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, remote_store_url: str | None) -> Iterator[tuple[Flask, str]]:
    app = make_app(Path(tmp_path_factory.mktemp("fuzz")), remote_store_url, BASE_URI=unique_base("fuzz"))
    with app.app_context():
        load_demo(services().records, scale=0.2)
        key = services().state.create_key("lyon", "editor")[1]
    yield app, key
    app.extensions["civicfed"].close()


def operations(app: Flask) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # The ingest body is NDJSON, which schemathesis cannot generate; it has its own fuzz below.
    return [op.ok() for op in schema.get_all_operations() if not op.ok().path.endswith("/ingest")]


def test_api_never_answers_5xx(fuzz_app: tuple[Flask, str]) -> None:
    app, key = fuzz_app
    failures: list[str] = []
    total = 0
    for op in operations(app):

        @SETTINGS
        @given(case=op.as_strategy())
        def check(case: Any) -> None:
            nonlocal total
            total += 1
            # Half the cases aim at a real territory so that they reach the records code.
            if "territory" in (case.path_parameters or {}) and total % 2:
                case.path_parameters["territory"] = "lyon"
            if total % 3:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} → {response.status_code}")

        check()
    assert total > 1000
    assert not failures, failures[:20]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
KINDS = st.sampled_from(["proposal", "vote", "comment", "meeting", "project", "process", "rule", "budget", "x", 3])
FIELDS = st.sampled_from(
    [
        "id",
        "title",
        "process",
        "proposal",
        "voter",
        "about",
        "themes",
        "location",
        "start",
        "mode",
        "body",
        "amount",
        "deleted",
        "type",
        "name",
    ]
)
RECORD = st.builds(lambda kind, extra: {"kind": kind, **extra}, KINDS, st.dictionaries(FIELDS, JSON, max_size=6))
LINE = RECORD.map(lambda r: json.dumps(r).encode()) | st.binary(max_size=40)


@SETTINGS
@given(lines=st.lists(LINE, max_size=8), partial=st.booleans())
def test_ingest_never_answers_5xx(fuzz_app: tuple[Flask, str], lines: list[bytes], partial: bool) -> None:
    app, key = fuzz_app
    resp = app.test_client().post(
        "/api/v1/territories/lyon/ingest" + ("?partial=true" if partial else ""),
        data=b"\n".join(lines),
        content_type="application/x-ndjson",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code in (200, 422), resp.get_data(as_text=True)[:500]
