"""The Decidim importer into a real store: a ZIP of decidim.barcelona's samples loads whole, again
unchanged, and no participant's name is anywhere in the territory's quads."""

from __future__ import annotations

import csv
from typing import Any

from importers.decidim import read
from server.ingest import load

from .conftest import make_territory, snapshot
from .importers.test_decidim import HOST, MEETING_COMMENTS, MEETINGS, RESULT_COMMENTS, identities, sample_zip

BARCELONA = {"id": "barcelona", "name": "Barcelona", "country": "ES", "language": "ca"}


def results_file() -> str:
    """The export's results file, reduced to the results the sample comments are on."""
    urls: dict[str, str] = {}
    with RESULT_COMMENTS.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter=";"):
            url = row["root_commentable_url"]
            urls[url.rsplit("/", 1)[1]] = url
    lines = ["id;title/ca;title/es;description/ca;start_date;end_date;progress;created_at;url;proposal_urls"]
    lines += [f"{i};Actuació {i};Actuación {i};;2016-01-01;;50.0;2016-06-01 10:00:00 UTC;{u};" for i, u in urls.items()]
    return "\n".join(lines) + "\n"


def import_zip(svc: Any, data: bytes, **settings: Any) -> dict[str, Any]:
    source = read(data, name="www.decidim.barcelona-open-data.zip")
    return load(svc.records, "barcelona", source.items(), None, source_id=source.id, **settings).to_dict()


def test_a_zip_of_the_samples_loads_with_no_identity(svc: Any) -> None:
    make_territory(svc, BARCELONA, ("admin",))
    data = sample_zip((f"{HOST}meetings.csv", MEETINGS), (f"{HOST}results.csv", results_file()))
    report = import_zip(svc, data)
    assert report["written"] and report["rejected"] == 0, report["errors"][:3]
    # 6 spaces, 50 projects, 2 meetings, 57 results, 87 + 200 comments.
    assert report["created"] == 6 + 50 + 2 + 57 + 287
    dump = snapshot(svc).decode()
    assert "Activitats culturals als interiors d'illa" in dump and "result.6469" in dump
    names = identities(RESULT_COMMENTS, MEETING_COMMENTS)
    assert not [name for name in names if name in dump]
    # The same export again changes nothing.
    again = import_zip(svc, data)
    assert again["written"] and again["unchanged"] == report["created"] and again["created"] == 0


def test_comments_on_records_the_territory_lacks_are_rejected(svc: Any) -> None:
    make_territory(svc, BARCELONA, ("admin",))
    source = read(MEETING_COMMENTS.read_bytes(), name=MEETING_COMMENTS.name)
    report = load(svc.records, "barcelona", source.items(), None, partial=True).to_dict()
    assert report["created"] == 0 and report["rejected"] == 200
    assert report["errors"][0]["detail"] == "about: no meeting '905' in territory 'barcelona'"
