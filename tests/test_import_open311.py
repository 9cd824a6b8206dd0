"""Open311 requests loaded into a real store: what the API then serves, and no identity stored."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from importers.open311 import read
from server.ingest import load
from server.services import Civicfed

from .conftest import make_territory, snapshot

SAMPLES = Path(__file__).resolve().parent / "data" / "samples" / "open311"
TERRITORY = {"id": "bloomington", "name": "Bloomington", "country": "US", "language": "en"}


def test_bloomington_loaded_then_reloaded(client: FlaskClient, svc: Civicfed) -> None:
    make_territory(svc, TERRITORY, ())
    source = read(str(SAMPLES / "bloomington_requests.json"), services=str(SAMPLES / "bloomington_services.json"))
    report = load(svc.records, "bloomington", source.items(), None, source_id=source.id)
    assert report.written and report.rejected == 0, report.errors
    assert report.counts["created"] == 1 + 6 + 21  # the process, the agencies, the requests
    base = "/api/v1/territories/bloomington"
    graffiti = client.get(f"{base}/proposals/4fbd3beeb1fe2c9f5c000001").get_json()
    assert graffiti["title"] == "Graffiti" and graffiti["handled_by"] == "police-department"
    assert graffiti["location"] == {"lat": 39.1465519, "lon": -86.4854483}
    assert graffiti["created"] == "2012-05-23T19:35:08Z"  # stored in UTC
    handled = client.get(f"{base}/proposals?handled_by=hand").get_json()
    assert len(handled["items"]) == 6
    # The next run (updated_after in production) replaces what changed and nothing else.
    again = read(str(SAMPLES / "bloomington_requests.json"))
    report = load(svc.records, "bloomington", again.items(), None, source_id=again.id)
    assert report.written and report.counts.get("created", 0) == 0 and report.counts["unchanged"] == 28


def test_no_identity_reaches_the_store(client: FlaskClient, svc: Civicfed) -> None:
    make_territory(svc, TERRITORY, ())
    source = read(str(SAMPLES / "chicago_requests_personal.json"))
    report = load(svc.records, "bloomington", source.items(), None, source_id=source.id)
    assert report.written and report.rejected == 0, report.errors
    stored = snapshot(svc).decode().lower()
    identities = (
        "marguerite", "okafor", "tobias", "vandermeer", "ingrid", "solberg", "example.net", "example.com",
        "312 555", "555-0142", "555 01 234", "acct-553019", "device-9f3a77c1", "solberg-haugen",
    )  # fmt: skip
    assert [i for i in identities if i in stored] == []
    proposals = client.get("/api/v1/territories/bloomington/proposals").get_json()["items"]
    assert len(proposals) == 3 and all(len(p["author_id"]) == 32 for p in proposals)
    assert len({p["author_id"] for p in proposals}) == 3
