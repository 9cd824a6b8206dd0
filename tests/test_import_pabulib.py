"""Participatory-budget files loaded into a real store: the Pabulib and Paris samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from importers import pabulib, paris_bp
from server.ingest import load

from .conftest import make_territory, snapshot

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
PB = SAMPLES / "pb" / "poland_zabrze_2020_pawlow.pb"
PARIS = SAMPLES / "pb-paris" / "opendata.paris.fr_bp_projets_gagnants.csv"


def test_pabulib_sample_loads_counts_and_no_ballot(client: FlaskClient, svc: Any) -> None:
    make_territory(svc, {"id": "zabrze", "name": "Zabrze", "country": "PL"}, ("admin",))
    with PB.open("rb") as f:
        source = pabulib.read(f, name=PB.name)
        report = load(svc.records, "zabrze", source.items(), None, source_id=source.id).to_dict()
    assert report["written"] and (report["created"], report["rejected"]) == (6, 0), report
    api = "/api/v1/territories/zabrze"
    proposal = client.get(f"{api}/proposals/poland_zabrze_2020_pawlow-P0011").get_json()
    assert proposal["vote_count"] == 104 and proposal["estimated_cost"] == {"amount": 150000, "currency": "PLN"}
    project = client.get(f"{api}/projects/poland_zabrze_2020_pawlow-P0085").get_json()
    assert (
        project["proposals"] == ["poland_zabrze_2020_pawlow-P0085"] and project["budget"] == "poland_zabrze_2020_pawlow"
    )
    # Ballots are counted, never stored: no vote record, and no voter id as a plain literal anywhere.
    stored = snapshot(svc).decode()
    assert svc.urls.private_graph("zabrze") not in stored
    lines = PB.read_text(encoding="utf-8").splitlines()
    voter_ids = {line.split(";")[0] for line in lines[lines.index("VOTES") + 2 :]}
    assert len(voter_ids) == 167
    assert not any(f' "{v}" ' in stored or f' "{v}"@' in stored for v in voter_ids)


def test_paris_sample_loads_with_partial(client: FlaskClient, svc: Any) -> None:
    make_territory(svc, {"id": "paris", "name": "Paris", "insee_cog": "75056", "country": "FR"}, ("admin",))
    source = paris_bp.read(PARIS.read_bytes(), name=PARIS.name)
    report = load(svc.records, "paris", source.items(), None, source_id=source.id, partial=True).to_dict()
    # 1,209 projects, 9 editions (process + budget), 14 lead departments; 5 winners have no title.
    assert report["written"] and (report["created"], report["rejected"]) == (1209 + 18 + 14, 5), report
    api = "/api/v1/territories/paris"
    project = client.get(f"{api}/projects/paris-bp-3780").get_json()
    assert project["title"] == "#VillePlusPropre" and project["themes"] == ["cleanliness"]
    assert project["implemented_by"] == "paris-direction-de-la-proprete-et-de-l-eau"
    listed = client.get(f"{api}/projects", query_string={"budget": "paris-bp-2014", "limit": 50}).get_json()
    assert len(listed["items"]) == 8  # 9 winners, one without a title
    budget = client.get(f"{api}/budgets/paris-bp-2014").get_json()
    assert budget["amount"] == {"amount": 17_700_000, "currency": "EUR"}
