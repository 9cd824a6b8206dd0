"""Schemas: every example is valid; each kind of mistake is refused with the field's path."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import ValidationFailed
from server.model.examples import RECORDS, TERRITORY, record
from server.model.kinds import KINDS


def prepare(svc: Any, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return svc.records.prepare(KINDS[kind], data)


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_examples_are_valid(svc: Any, kind: str) -> None:
    loaded = prepare(svc, kind, RECORDS[kind])
    assert loaded["id"] == RECORDS[kind]["id"]


def test_territory_example_is_valid(svc: Any) -> None:
    assert prepare(svc, "territory", TERRITORY)["insee_cog"] == "69123"


def polygon(*ring: list[Any]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [list(ring)]}


INVALID = [
    # (kind, changes, pointer of the error)
    ("proposal", {"title": None}, "#/title"),
    ("proposal", {"title": ""}, "#/title"),
    ("proposal", {"title": 42}, "#/title"),
    ("proposal", {"process": None}, "#/process"),
    ("proposal", {"themes": ["not-a-theme"]}, "#/themes/0"),
    ("proposal", {"themes": "mobility"}, "#/themes"),
    ("proposal", {"status": "approved"}, "#/status"),
    ("proposal", {"location": {"lat": 91, "lon": 4.8}}, "#/location/lat"),
    ("proposal", {"location": {"lat": "45.7", "lon": 4.8}}, "#/location/lat"),
    ("proposal", {"location": {"lat": 45.7}}, "#/location/lon"),
    ("proposal", {"location": {"lat": 45.7, "lon": 4.8, "alt": 3}}, "#/location/alt"),
    ("proposal", {"vote_count": -1}, "#/vote_count"),
    ("proposal", {"vote_count": 1.5}, "#/vote_count"),
    ("proposal", {"vote_count": "12"}, "#/vote_count"),
    ("proposal", {"vote_count": True}, "#/vote_count"),
    ("proposal", {"estimated_cost": {"amount": "1000"}}, "#/estimated_cost/amount"),
    ("proposal", {"estimated_cost": {"amount": -5}}, "#/estimated_cost/amount"),
    ("proposal", {"estimated_cost": {"amount": 5, "currency": "euro"}}, "#/estimated_cost/currency"),
    ("proposal", {"created": "2024-02-01T10:00:00"}, "#/created"),  # naive datetime
    ("proposal", {"created": "yesterday"}, "#/created"),
    ("proposal", {"created": "2024-03-01T00:00:00Z", "modified": "2024-02-01T00:00:00Z"}, "#/modified"),
    ("proposal", {"url": "ftp://example.org/x"}, "#/url"),
    ("proposal", {"url": "https://example.org/a b"}, "#/url"),
    ("proposal", {"author_email": "not-an-email"}, "#/author_email"),
    ("proposal", {"author_id": "Alice"}, "#/author_id"),
    ("proposal", {"body": "bell \x07 character"}, "#/body"),
    ("proposal", {"body": "lone surrogate \ud800"}, "#/body"),
    ("proposal", {"unknown_field": 1}, "#/unknown_field"),
    ("proposal", {"id": "has space"}, "#/id"),
    ("proposal", {"id": "a/b"}, "#/id"),
    ("proposal", {"id": "-starts-with-dash"}, "#/id"),
    ("vote", {"voter_id": None}, "#/voter"),
    ("comment", {"about": {"kind": "vote", "id": "v1"}}, "#/about/kind"),
    ("comment", {"alignment": 2}, "#/alignment"),
    ("comment", {"body": None}, "#/body"),
    ("meeting", {"mode": "in person"}, "#/mode"),
    ("meeting", {"end": "2024-02-10T16:00:00Z"}, "#/end"),
    ("meeting", {"mode": "online"}, "#/mode"),  # online but with an address
    ("meeting", {"capacity": -3}, "#/capacity"),
    ("project", {"progress": 101}, "#/progress"),
    ("project", {"selected": "yes"}, "#/selected"),
    ("project", {"milestones": [{"title": "no date"}]}, "#/milestones/0/date"),
    ("project", {"start_date": "2024-07-01", "end_date": "2024-06-01"}, "#/end_date"),
    ("organization", {"type": "ngo"}, "#/type"),
    ("organization", {"siren": "12345"}, "#/siren"),
    ("rule", {"min_votes": None, "allowed_themes": None, "max_budget": None, "deadline": None}, "#"),
    # An empty list says nothing either (and stores nothing: the rule would come back empty).
    ("rule", {"min_votes": None, "allowed_themes": [], "max_budget": None, "deadline": None}, "#"),
    ("budget", {"amount": None}, "#/amount"),
    ("district", {"level": "ward"}, "#/level"),
    ("district", {"name": None}, "#/name"),
    ("district", {"geometry": {"type": "Point", "coordinates": [4.8, 45.7]}}, "#/geometry"),
    ("district", {"geometry": polygon([0, 0], [1, 1], [1, 0], [0, 1], [0, 0])}, "#/geometry"),  # self-intersecting
    ("district", {"geometry": polygon([0, 0], [1, 0], [1, 1], [0, 1])}, "#/geometry"),  # not closed
    ("district", {"geometry": polygon([0, 0], [1, 0], [1, 95], [0, 0])}, "#/geometry"),  # latitude
    ("district", {"geometry": polygon([0, 0, 3], [1, 0, 3], [1, 1, 3], [0, 0, 3])}, "#/geometry"),  # altitude
    ("district", {"geometry": polygon([0, 0], [1, 0], [1, True], [0, 0])}, "#/geometry"),
    ("proposal", {"district": "has space"}, "#/district"),
    (
        "process",
        {"phases": [{"title": "x", "start_date": "2024-05-01", "end_date": "2024-04-01"}]},
        "#/phases/0/end_date",
    ),
]


def test_an_integral_number_is_an_integer(svc: Any) -> None:
    """As JSON Schema's "integer" has it: 12.0 is the integer 12 (generated clients send it)."""
    loaded = prepare(svc, "proposal", record("proposal", vote_count=12.0))
    assert loaded["vote_count"] == 12 and isinstance(loaded["vote_count"], int)


@pytest.mark.parametrize(("kind", "changes", "where"), INVALID, ids=[f"{k}:{w}" for k, _, w in INVALID])
def test_invalid_input_names_the_field(svc: Any, kind: str, changes: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        prepare(svc, kind, record(kind, **changes))
    pointers = [e["pointer"] for e in err.value.errors]
    assert where in pointers, err.value.errors
    assert err.value.status == 422


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"insee_cog": "6912"}, "#/insee_cog"),
        ({"nuts": "frk26"}, "#/nuts"),
        ({"wikidata": "456"}, "#/wikidata"),
        ({"country": "FRA"}, "#/country"),
        ({"id": "Lyon"}, "#/id"),  # territory ids are lower-case slugs
        ({"population": {"value": 10, "year": 2021}}, "#/population/source"),
    ],
)
def test_invalid_territory(svc: Any, changes: dict[str, Any], where: str) -> None:
    data = {**TERRITORY, **changes}
    with pytest.raises(ValidationFailed) as err:
        prepare(svc, "territory", data)
    assert where in [e["pointer"] for e in err.value.errors]


def test_read_only_fields_are_ignored_on_input(svc: Any) -> None:
    """A client may PUT back what it GOT: iri, territory, record_modified are dropped."""
    data = {**RECORDS["proposal"], "iri": "x", "territory": "y", "record_modified": "z", "deleted": False}
    loaded = prepare(svc, "proposal", data)
    assert "iri" not in loaded and "record_modified" not in loaded


def test_not_an_object(svc: Any) -> None:
    with pytest.raises(ValidationFailed):
        svc.records.prepare(KINDS["proposal"], ["a", "list"])


@pytest.mark.parametrize(
    ("tag", "canonical"), [("fr", "fr"), ("FR-fr", "fr-FR"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419")]
)
def test_language_tags_are_normalised(svc: Any, tag: str, canonical: str) -> None:
    assert prepare(svc, "proposal", record("proposal", language=tag))["language"] == canonical


@pytest.mark.parametrize("tag", ["aa-a", "aaa-0", "french", "fr_FR", "fr-", "x-private"])
def test_malformed_language_tags_are_refused(svc: Any, tag: str) -> None:
    """Such tags made stores refuse the write (found by fuzzing a remote Oxigraph server)."""
    with pytest.raises(ValidationFailed) as err:
        prepare(svc, "proposal", record("proposal", language=tag))
    assert err.value.errors[0]["pointer"] == "#/language"


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"estimated_cost": {"amount": 1e300}}, "#/estimated_cost/amount"),
        ({"estimated_cost": {"amount": 10.12345}}, "#/estimated_cost/amount"),
    ],
)
def test_amounts_fit_every_store(svc: Any, changes: dict[str, Any], where: str) -> None:
    """Virtuoso refused a 300-digit decimal (found by fuzzing): amounts are bounded and exact to 4 places."""
    with pytest.raises(ValidationFailed) as err:
        prepare(svc, "proposal", record("proposal", **changes))
    assert err.value.errors[0]["pointer"] == where


@pytest.mark.parametrize(
    ("kind", "changes", "where"),
    [
        ("proposal", {"vote_count": 10**29}, "#/vote_count"),
        ("proposal", {"comment_count": 2**63}, "#/comment_count"),
        ("meeting", {"capacity": 10**20}, "#/capacity"),
        ("rule", {"min_votes": 2**64}, "#/min_votes"),
    ],
)
def test_integers_fit_xsd_long(svc: Any, kind: str, changes: dict[str, Any], where: str) -> None:
    """One vote_count of 10^29 made SUM over every vote count come back empty: integers are
    xsd:long at most."""
    with pytest.raises(ValidationFailed) as err:
        prepare(svc, kind, record(kind, **changes))
    assert err.value.errors[0]["pointer"] == where
    field = next(iter(changes))
    assert prepare(svc, kind, record(kind, **{field: 2**63 - 1}))[field] == 2**63 - 1


def test_integer_bounds_are_in_the_openapi_document(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    vote_count = spec["components"]["schemas"]["Proposal"]["properties"]["vote_count"]
    assert vote_count["minimum"] == 0 and vote_count["maximum"] == 2**63 - 1


def test_coordinates_are_rounded_to_a_centimetre(svc: Any) -> None:
    loaded = prepare(svc, "proposal", record("proposal", location={"lat": 1e-300, "lon": 4.123456789}))
    assert loaded["location"] == {"lat": 0.0, "lon": 4.1234568}
