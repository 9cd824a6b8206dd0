"""Catalog importers loaded into a real store: the external datasets land in the source's own
graph, and the next run replaces them (nothing doubles, what the source no longer gives is gone).
DCAT from civicfed's own paged catalog on a live server; CKAN from the real CKAN 2.12. The
portal's datasets are not changed here: other runs of the suite may read them meanwhile."""

from __future__ import annotations

from typing import Any

import pytest

from importers import ckan_portal, dcat_catalog
from server.ingest import load
from server.services import Civicfed
from vocabularies import DCAT, DCT, HYDRA

from .conftest import LiveServer, make_territory, snapshot
from .importers.test_catalog_import import LOOPBACK, ORG, PEOPLE, ckan_datasets  # noqa: F401 - a fixture
from .test_ckan_push import CKAN_URL, portal  # noqa: F401 - the real CKAN's fixture, which ckan_datasets uses

TERRITORY = {"id": "lyon", "name": "Lyon", "country": "FR", "language": "fr"}


def _load(svc: Civicfed, source: Any) -> None:
    report = load(svc.records, "lyon", source.items(), None, source_id=source.id)
    assert report.written and report.rejected == 0, report.errors


def _datasets(svc: Civicfed, graph: str) -> list[str]:
    rows = svc.store.select(f"SELECT DISTINCT ?d WHERE {{ GRAPH <{graph}> {{ ?d a <{DCAT.Dataset}> }} }}")
    return sorted(row["d"].value for row in rows)


def _count(svc: Civicfed, graph: str, where: str = "?s ?p ?o") -> int:
    rows = svc.store.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ {where} }} }}")
    return int(rows[0]["n"].value)


def test_civicfed_catalog_loaded_then_replaced(svc: Civicfed, live_server: LiveServer) -> None:
    make_territory(svc, TERRITORY, ())
    source = dcat_catalog.read(f"{live_server.url}/catalog?page_size=5", fetcher=LOOPBACK)
    _load(svc, source)
    graph = svc.urls.source_graph("lyon", source.id)
    walked = _datasets(svc, graph)
    assert len(walked) >= 20 and len(source.pages) >= 4
    assert f"{live_server.url}/dataset/lyon-proposals" in walked
    assert _count(svc, graph, f"?s ?p ?o FILTER(STRSTARTS(STR(?p), '{HYDRA}'))") == 0
    titles = f"?d <{DCT.title}> ?t FILTER(?d = <{live_server.url}/dataset/lyon-proposals>)"
    assert _count(svc, graph, titles) == 2  # fr and en, once each
    before = _count(svc, graph)
    # The same again: the graph is rewritten, not added to.
    _load(svc, dcat_catalog.read(f"{live_server.url}/catalog?page_size=5", fetcher=LOOPBACK))
    assert _count(svc, graph) == before and _datasets(svc, graph) == walked
    # A run that reads less: what it no longer gives is gone.
    fewer = dcat_catalog.read(f"{live_server.url}/catalog?page_size=5", fetcher=LOOPBACK, max_pages=2)
    _load(svc, fewer)
    assert fewer.id == source.id and len(_datasets(svc, graph)) == 10 and _count(svc, graph) < before


@pytest.mark.live  # the real CKAN
def test_ckan_portal_loaded_then_replaced(svc: Civicfed, ckan_datasets: dict[str, dict[str, Any]]) -> None:  # noqa: F811
    make_territory(svc, TERRITORY, ())
    source = ckan_portal.read(CKAN_URL, fetcher=LOOPBACK, fq=f"organization:{ORG}", rows=2)
    _load(svc, source)
    graph = svc.urls.source_graph("lyon", source.id)
    everything = sorted(
        [f"{CKAN_URL}/dataset/{name}" for name in ("cci-meetings", "cci-proposals")]
        + ["https://data.example.org/id/dataset/budget"]
    )
    assert _datasets(svc, graph) == everything
    before = _count(svc, graph)
    # No person's name nor address reaches the store.
    stored = snapshot(svc).decode()
    assert [p for p in PEOPLE if p in stored] == []
    # The same again: rewritten, not added to. Then a run that reads less: the rest is gone.
    _load(svc, ckan_portal.read(CKAN_URL, fetcher=LOOPBACK, fq=f"organization:{ORG}", rows=2))
    assert _count(svc, graph) == before
    fewer = ckan_portal.read(CKAN_URL, fetcher=LOOPBACK, fq=f"organization:{ORG}", max_datasets=2)
    _load(svc, fewer)
    assert fewer.id == source.id and not fewer.complete
    # In name order, the first two: cci-budget (known by its own IRI) and cci-meetings.
    assert _datasets(svc, graph) == sorted(
        [f"{CKAN_URL}/dataset/cci-meetings", "https://data.example.org/id/dataset/budget"]
    )
