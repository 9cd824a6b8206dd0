"""One fully populated, valid record per kind, in canonical form (what GET returns).

Used by the tests and by the generated documentation (tools/docgen.py).

Canonical means: datetimes in UTC with ``Z``, code lists sorted, amounts as JSON numbers.
Tests load them through the API and expect them back unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

PSEUDONYM = "0123456789abcdef0123456789abcdef"

TERRITORY: dict[str, Any] = {
    "id": "lyon",
    "name": "Lyon",
    "country": "FR",
    "insee_cog": "69123",
    "lau": "69123",
    "nuts": "FRK26",
    "wikidata": "Q456",
    "population": {
        "value": 522250,
        "year": 2021,
        "source": "INSEE, populations légales 2021",
        "source_url": "https://www.insee.fr/fr/information/7735186",
    },
    "location": {"lat": 45.7676, "lon": 4.8361},
    "language": "fr",
    "url": "https://www.lyon.fr/",
}

# Records of territory "lyon", in an order where links point backwards.
RECORDS: dict[str, dict[str, Any]] = {
    "district": {
        "id": "69383",
        "name": "Lyon 3e Arrondissement",
        "level": "arrondissement",
        "code_list": "insee-cog",
        # A rough outline (the real one has hundreds of vertices), around the proposal's location.
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[4.8387, 45.7645], [4.8429, 45.7512], [4.8987, 45.7435], [4.9034, 45.7611], [4.8387, 45.7645]]
            ],
        },
        "population": {
            "value": 100679,
            "year": 2023,
            "source": "INSEE, populations légales",
            "source_url": "https://www.insee.fr/fr/statistiques/8680726",
        },
        "url": "https://www.lyon.fr/mairie-du-3e",
    },
    "organization": {
        "id": "voirie",
        "name": "Direction de la voirie",
        "description": "Rues, trottoirs, pistes cyclables.",
        "type": "public_body",
        "competences": ["mobility", "safety"],
        "homepage": "https://www.lyon.fr/voirie",
        "siren": "216901231",
        "url": "https://participer.lyon.fr/organisations/voirie",
        "created": "2023-01-02T08:00:00Z",
        "modified": "2023-06-01T08:00:00Z",
    },
    "process": {
        "id": "bp-2024",
        "title": "Budget participatif 2024",
        "description": "Proposer puis voter des projets.",
        "type": "participatory_budget",
        "status": "open",
        "start_date": "2024-01-08",
        "end_date": "2024-10-31",
        "themes": ["green_spaces", "mobility"],
        "organizer": "voirie",
        "phases": [
            {"title": "Dépôt", "start_date": "2024-01-08", "end_date": "2024-03-15"},
            {"title": "Vote", "start_date": "2024-06-01", "end_date": "2024-06-30"},
        ],
        "targets": [
            {"indicator": "participants", "period": "2024", "value": 500, "title": "500 participants"},
            {"indicator": "proposals", "period": "2024", "value": 0.5, "per": "1000inhabitants"},
        ],
        "language": "fr",
        "url": "https://participer.lyon.fr/processes/bp-2024",
        "created": "2023-12-01T10:00:00Z",
    },
    "budget": {
        "id": "bp-2024-env",
        "process": "bp-2024",
        "title": "Enveloppe 2024",
        "description": "Investissement.",
        "amount": {"amount": 2500000.5, "currency": "EUR"},
        "fiscal_year": 2024,
        "themes": ["mobility"],
    },
    "rule": {
        "id": "bp-2024-rules",
        "process": "bp-2024",
        "title": "Recevabilité",
        "description": "20 soutiens, 150 000 € au plus.",
        "min_votes": 20,
        "allowed_themes": ["green_spaces", "mobility"],
        "max_budget": {"amount": 150000, "currency": "EUR"},
        "deadline": "2024-03-15T23:59:59Z",
        "votes_deadline": "2024-04-15T23:59:59Z",
    },
    "proposal": {
        "id": "p1",
        "process": "bp-2024",
        "title": "Plus d'arbres rue Garibaldi",
        "body": 'Planter des arbres.\nAvec des "guillemets", des \\ barres et des accents : é à ç.',
        "themes": ["green_spaces", "mobility"],
        "status": "evaluating",
        "location": {"lat": 45.7601, "lon": 4.8519},
        "address": "100 rue Garibaldi, 69003 Lyon",
        "author_id": PSEUDONYM,
        "handled_by": "voirie",
        "estimated_cost": {"amount": 45000, "currency": "EUR"},
        "vote_count": 12,
        "comment_count": 3,
        "language": "fr",
        "url": "https://participer.lyon.fr/proposals/1",
        "created": "2024-02-01T10:00:00Z",
        "modified": "2024-02-02T10:30:00.250000Z",
    },
    "vote": {
        "id": "v1",
        "proposal": "p1",
        "voter_id": PSEUDONYM,
        "created": "2024-02-03T12:00:00Z",
    },
    "comment": {
        "id": "c1",
        "about": {"kind": "proposal", "id": "p1"},
        "body": "Bonne idée !",
        "author_id": PSEUDONYM,
        "alignment": 1,
        "language": "fr",
        "created": "2024-02-04T09:00:00Z",
    },
    "meeting": {
        "id": "m1",
        "process": "bp-2024",
        "title": "Atelier Guillotière",
        "description": "Présentation puis ateliers.",
        "start": "2024-02-10T17:00:00Z",
        "end": "2024-02-10T19:00:00Z",
        "mode": "hybrid",
        "place_name": "Maison des associations",
        "address": "28 rue Denfert-Rochereau, 69004 Lyon",
        "location": {"lat": 45.7745, "lon": 4.8277},
        "online_url": "https://visio.example.org/atelier",
        "attendees_count": 42,
        "capacity": 80,
        "organizer": "voirie",
        "themes": ["governance"],
        "proposals": ["p1"],
        "language": "fr",
    },
    "project": {
        "id": "prj1",
        "process": "bp-2024",
        "budget": "bp-2024-env",
        "title": "Arbres rue Garibaldi",
        "description": "Plantation de 12 arbres.",
        "status": "in_progress",
        "cost": {"amount": 52000, "currency": "EUR"},
        "selected": True,
        "progress": 40.5,
        "start_date": "2024-07-01",
        "end_date": "2024-12-15",
        "milestones": [
            {"date": "2024-07-01", "title": "Études", "description": "Sondages du sol."},
            {"date": "2024-10-01", "title": "Plantation"},
        ],
        "proposals": ["p1"],
        "implemented_by": "voirie",
        "location": {"lat": 45.7601, "lon": 4.8519},
        "address": "Rue Garibaldi, Lyon",
        "themes": ["green_spaces"],
    },
}

PLURALS = {
    "district": "districts",
    "organization": "organizations",
    "process": "processes",
    "budget": "budgets",
    "rule": "rules",
    "proposal": "proposals",
    "vote": "votes",
    "comment": "comments",
    "meeting": "meetings",
    "project": "projects",
}


def record(kind: str, **changes: Any) -> dict[str, Any]:
    """A deep copy of the example of ``kind`` with some fields changed (None removes)."""
    out = copy.deepcopy(RECORDS[kind])
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out
