"""Deterministic demo data: three real territories with realistic participation records.

An importer like the others: ``civicfed demo load`` creates the territories and loads each one's
records through the loader (``civicfed import demo lyon --territory lyon`` loads one). The same
generator, scaled up and with synthetic territories, feeds the benchmarks (``bench/generate.py``):
every record goes through the public JSON shapes, so demo data and benchmark data exercise
exactly what a platform would send.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from server.errors import NotFound, ValidationFailed
from server.ingest import Importer, Item, Record, load
from server.model.kinds import KINDS
from server.records import Records

INSEE_SOURCE = "INSEE, recensement de la population, populations légales millésime 2021 (population municipale)"
INSEE_URL = "https://www.insee.fr/fr/information/7735186"
DEMO_POPULATION_SOURCE = "Démo civicfed : population municipale INSEE 2021 répartie entre les quartiers (illustration)"


@dataclass(frozen=True)
class TerritorySpec:
    id: str
    name: str
    insee_cog: str | None
    nuts: str | None
    wikidata: str | None
    population: int
    center: tuple[float, float]  # lat, lon of the town hall
    span: tuple[float, float]  # half-size of the area proposals fall in (degrees lat, lon)
    districts: tuple[str, ...]


DEMO_TERRITORIES = (
    TerritorySpec(
        "lyon",
        "Lyon",
        "69123",
        "FRK26",
        "Q456",
        522_250,
        (45.7676, 4.8361),
        (0.035, 0.05),
        ("Presqu'île", "Croix-Rousse", "Guillotière", "Part-Dieu", "Confluence", "Vaise", "Gerland", "Monplaisir"),
    ),
    TerritorySpec(
        "grenoble",
        "Grenoble",
        "38185",
        "FRK24",
        "Q1289",
        157_477,
        (45.1885, 5.7245),
        (0.02, 0.03),
        ("Championnet", "Île Verte", "Villeneuve", "Berriat", "Teisseire", "Europole", "Mistral"),
    ),
    TerritorySpec(
        "rennes",
        "Rennes",
        "35238",
        "FRH03",
        "Q647",
        225_081,
        (48.1113, -1.6800),
        (0.03, 0.045),
        ("Centre", "Thabor", "Villejean", "Maurepas", "Bréquigny", "Cleunay", "Sud-Gare", "Jeanne d'Arc"),
    ),
)

ORGANIZATIONS = (
    ("voirie", "Direction de la voirie et des mobilités", "public_body", ["mobility", "urban_planning", "safety"]),
    ("espaces-verts", "Direction des espaces verts", "public_body", ["green_spaces", "environment"]),
    ("education", "Direction de l'éducation", "public_body", ["education", "food"]),
    ("culture", "Direction des affaires culturelles", "public_body", ["culture", "international"]),
    ("sports", "Direction des sports", "public_body", ["sport"]),
    ("proprete", "Direction de la propreté", "public_body", ["cleanliness"]),
    ("solidarites", "Centre communal d'action sociale", "public_body", ["social", "housing", "health"]),
    ("velo", "Association des cyclistes urbains", "association", ["mobility"]),
    ("jardins", "Collectif des jardins partagés", "association", ["green_spaces", "food"]),
)

IDEAS: dict[str, list[tuple[str, str]]] = {
    "mobility": [
        ("Piste cyclable sécurisée {place}", "Créer une piste cyclable séparée de la circulation {where}."),
        ("Arceaux vélos devant l'école {place}", "Installer des arceaux pour stationner les vélos {where}."),
        ("Zone de rencontre {place}", "Limiter la vitesse à 20 km/h et partager la rue {where}."),
    ],
    "green_spaces": [
        ("Plantation d'arbres {place}", "Planter des arbres d'alignement pour faire de l'ombre {where}."),
        ("Jardin partagé {place}", "Transformer une friche en jardin partagé ouvert aux habitants {where}."),
        ("Îlot de fraîcheur {place}", "Désimperméabiliser la cour et végétaliser {where}."),
    ],
    "cleanliness": [
        ("Composteur collectif {place}", "Installer un composteur de quartier géré par les habitants {where}."),
        ("Plus de poubelles de tri {place}", "Ajouter des corbeilles de tri sélectif {where}."),
    ],
    "sport": [
        ("Agrès de street workout {place}", "Installer des agrès de sport en accès libre {where}."),
        ("Terrain multisport {place}", "Rénover le terrain multisport {where}."),
    ],
    "culture": [
        ("Boîte à livres {place}", "Installer une boîte à livres en libre-service {where}."),
        ("Fresque participative {place}", "Réaliser une fresque avec les habitants {where}."),
    ],
    "education": [
        ("Rue aux écoles {place}", "Fermer la rue à la circulation aux heures d'entrée et de sortie {where}."),
    ],
    "social": [
        ("Bancs et fontaines {place}", "Ajouter des bancs et une fontaine à eau pour les personnes âgées {where}."),
        ("Local associatif {place}", "Ouvrir un local partagé pour les associations du quartier {where}."),
    ],
    "energy": [
        ("Éclairage public sobre {place}", "Passer l'éclairage public en LED avec détection de présence {where}."),
    ],
}
THEME_ORG = {
    "mobility": "voirie",
    "green_spaces": "espaces-verts",
    "cleanliness": "proprete",
    "sport": "sports",
    "culture": "culture",
    "education": "education",
    "social": "solidarites",
    "energy": "voirie",
}
COMMENTS = (
    (1, "Très bonne idée, je soutiens !"),
    (1, "Indispensable pour les enfants du quartier."),
    (0, "Quel serait le coût d'entretien ?"),
    (0, "Il faudrait associer les commerçants."),
    (-1, "Je crains que cela supprime des places de stationnement."),
    (-1, "Ce n'est pas une priorité pour le quartier."),
    (1, "Enfin ! Cela fait des années que nous le demandons."),
)
STATUSES = ("published", "published", "evaluating", "accepted", "rejected", "selected", "not_receivable")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def territory_record(spec: TerritorySpec) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "country": "FR",
        "population": {"value": spec.population, "year": 2021, "source": INSEE_SOURCE, "source_url": INSEE_URL},
        "location": {"lat": spec.center[0], "lon": spec.center[1]},
        "language": "fr",
    }
    if spec.insee_cog:
        record.update(insee_cog=spec.insee_cog, lau=spec.insee_cog)
    if spec.nuts:
        record["nuts"] = spec.nuts
    if spec.wikidata:
        record["wikidata"] = spec.wikidata
    return record


def district_id(name: str) -> str:
    """A demo district's local code: its name as an ASCII slug."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def district_cells(spec: TerritorySpec) -> dict[str, tuple[float, float, float, float]]:
    """The demo districts tile the territory's area in a grid: name → (south, west, north, east)."""
    n = len(spec.districts)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    south, west = spec.center[0] - spec.span[0], spec.center[1] - spec.span[1]
    height, width = 2 * spec.span[0] / rows, 2 * spec.span[1] / cols
    return {
        name: (
            round(south + (i // cols) * height, 6),
            round(west + (i % cols) * width, 6),
            round(south + (i // cols + 1) * height, 6),
            round(west + (i % cols + 1) * width, 6),
        )
        for i, name in enumerate(spec.districts)
    }


def _in_cell(cell: tuple[float, float, float, float], u: float, v: float) -> dict[str, float]:
    """The point at fractions (u, v) of a cell, a little inside its edges."""
    south, west, north, east = cell
    lat = south + (0.05 + 0.9 * u) * (north - south)
    lon = west + (0.05 + 0.9 * v) * (east - west)
    return {"lat": round(lat, 6), "lon": round(lon, 6)}


def district_populations(spec: TerritorySpec, seed: int = 2024) -> dict[str, int]:
    """The territory's population shared out among its demo quartiers (an illustration, so that
    the demo's districts join with a population: no official figure is per demo quartier)."""
    rng = random.Random(f"{seed}:{spec.id}:population")  # its own draws: the records stay the same
    weights = [0.5 + rng.random() for _ in spec.districts]
    shares = [int(spec.population * w / sum(weights)) for w in weights]
    shares[-1] += spec.population - sum(shares)
    return dict(zip(spec.districts, shares, strict=True))


def generate(
    spec: TerritorySpec, scale: float = 1.0, seed: int = 2024, *, counts_only: bool = False
) -> Iterator[dict[str, Any]]:
    """Records of one territory (each with its ``kind``), in an order where links point backwards.

    ``scale=1`` gives a demo-sized territory (~60 proposals, ~1,500 votes); the benchmarks use
    hundreds. Voters and authors are drawn from a pool of fake platform user ids. With
    ``counts_only`` every proposal carries its vote count and no individual vote is made (as
    platforms that send only counts: everything generated is published).
    """
    rng = random.Random(f"{seed}:{spec.id}")
    start = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.UTC)
    cells = district_cells(spec)
    people = district_populations(spec, seed)
    # The quartiers first: located records are placed in them (the loader finds which from
    # their coordinates, as it does for any import).
    for name, (south, west, north, east) in cells.items():
        yield {
            "kind": "district",
            "id": district_id(name),
            "name": name,
            "level": "quartier",
            "code_list": "local",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
            },
            "population": {"value": people[name], "year": 2021, "source": DEMO_POPULATION_SOURCE},
        }
    users = [f"user-{spec.id}-{i:06d}" for i in range(max(200, int(400 * scale)))]

    for org_id, name, org_type, competences in ORGANIZATIONS:
        yield {
            "kind": "organization",
            "id": org_id,
            "name": f"{name} de {spec.name}" if org_type == "public_body" else f"{name} ({spec.name})",
            "type": org_type,
            "competences": competences,
            **({"siren": f"2{rng.randrange(10**8):08d}"} if org_type == "public_body" else {}),
        }

    year = 2024
    yield {
        "kind": "process",
        "id": f"bp-{year}",
        "title": f"Budget participatif {year}",
        "description": f"Les habitants de {spec.name} proposent puis votent des projets d'investissement.",
        "type": "participatory_budget",
        "status": "closed",
        "start_date": f"{year}-01-08",
        "end_date": f"{year}-10-31",
        "themes": sorted(IDEAS),
        "organizer": "solidarites",
        "phases": [
            {"title": "Dépôt des idées", "start_date": f"{year}-01-08", "end_date": f"{year}-03-15"},
            {"title": "Analyse de recevabilité", "start_date": f"{year}-03-16", "end_date": f"{year}-05-31"},
            {"title": "Vote", "start_date": f"{year}-06-01", "end_date": f"{year}-06-30"},
            {"title": "Réalisation", "start_date": f"{year}-07-01", "end_date": f"{year}-10-31"},
        ],
        # The pilot's aims (GET /api/v1/territories/{t}/targets, and the territory's page).
        "targets": [
            {"indicator": "participants", "period": str(year), "value": 500, "title": "500 participants"},
            {"indicator": "proposals", "period": str(year), "value": 0.1, "per": "1000inhabitants"},
            {"indicator": "proposals", "period": f"{year}-02", "value": 20, "title": "20 idées en février"},
        ],
        "language": "fr",
    }
    yield {
        "kind": "process",
        "id": "plan-velo",
        "title": "Concertation sur le plan vélo",
        "description": "Où faut-il des pistes cyclables, des arceaux, des zones apaisées ?",
        "type": "consultation",
        "status": "open",
        "start_date": f"{year}-09-01",
        "end_date": f"{year + 1}-01-31",
        "themes": ["mobility", "safety"],
        "organizer": "voirie",
        "language": "fr",
    }
    yield {
        "kind": "budget",
        "id": f"bp-{year}-enveloppe",
        "process": f"bp-{year}",
        "title": f"Enveloppe du budget participatif {year}",
        "amount": {"amount": int(spec.population * 4), "currency": "EUR"},
        "fiscal_year": year,
    }
    yield {
        "kind": "rule",
        "id": f"bp-{year}-recevabilite",
        "process": f"bp-{year}",
        "title": "Règles de recevabilité",
        "description": "Un projet doit relever des compétences de la ville, coûter au plus 150 000 € et "
        "réunir au moins 20 soutiens avant la fin du dépôt.",
        "min_votes": 20,
        "allowed_themes": sorted(IDEAS),
        "max_budget": {"amount": 150000, "currency": "EUR"},
        "deadline": f"{year}-03-15T23:59:59Z",
        "votes_deadline": f"{year}-03-15T23:59:59Z",
    }

    n_proposals = max(10, int(60 * scale))
    proposals: list[dict[str, Any]] = []
    for i in range(1, n_proposals + 1):
        theme = rng.choice(sorted(IDEAS))
        title, body = rng.choice(IDEAS[theme])
        district = rng.choice(spec.districts)
        process = f"bp-{year}" if theme != "mobility" or rng.random() < 0.5 else "plan-velo"
        created = start + dt.timedelta(days=rng.randrange(0, 65), minutes=rng.randrange(0, 1440))
        location = _in_cell(cells[district], rng.random(), rng.random())
        status = rng.choice(STATUSES)
        proposal: dict[str, Any] = {
            "kind": "proposal",
            "id": f"prop-{i:05d}",
            "process": process,
            "title": title.format(place=f"({district})", where=f"dans le quartier {district}"),
            "body": body.format(place=district, where=f"dans le quartier {district}"),
            "themes": sorted({theme, *([rng.choice(sorted(IDEAS))] if rng.random() < 0.3 else [])}),
            "status": status,
            "location": location,
            "address": f"{rng.randrange(1, 120)} rue du quartier {district}, {spec.name}",
            "author": rng.choice(users),
            "created": _iso(created),
            "modified": _iso(created + dt.timedelta(days=rng.randrange(0, 30))),
            "estimated_cost": {"amount": rng.randrange(5, 300) * 1000, "currency": "EUR"},
            "language": "fr",
        }
        if status in ("accepted", "selected", "evaluating", "rejected", "not_receivable"):
            proposal["handled_by"] = THEME_ORG[theme]
        if status in ("accepted", "selected", "rejected", "not_receivable"):  # answered at its last change
            proposal["answered_at"] = proposal["modified"]
        if counts_only or i % 7 == 0:  # some platforms only send counts
            proposal["vote_count"] = rng.randrange(0, 40)
        proposals.append(proposal)
        yield proposal

    for p in proposals:
        if "vote_count" in p:
            continue
        popularity = rng.choice((0, 2, 5, 10, 20, 35, 60))
        voters = rng.sample(users, min(len(users), int(popularity * max(1.0, scale**0.5))))
        for v, voter in enumerate(voters):
            yield {
                "kind": "vote",
                "id": f"{p['id']}-v{v:05d}",
                "proposal": p["id"],
                "voter": voter,
                "created": _iso(dt.datetime.fromisoformat(p["created"]) + dt.timedelta(hours=v + 1)),
            }

    comment_no = 0
    for p in proposals:
        thread: list[str] = []
        for _ in range(rng.choice((0, 0, 1, 2, 3, 5))):
            comment_no += 1
            alignment, text = rng.choice(COMMENTS)
            comment: dict[str, Any] = {
                "kind": "comment",
                "id": f"com-{comment_no:06d}",
                "about": {"kind": "proposal", "id": p["id"]},
                "body": text,
                "alignment": alignment,
                "author": rng.choice(users),
                "created": _iso(dt.datetime.fromisoformat(p["created"]) + dt.timedelta(days=1, hours=comment_no % 24)),
                "language": "fr",
            }
            if thread and rng.random() < 0.4:
                comment["reply_to"] = rng.choice(thread)
            thread.append(comment["id"])
            yield comment

    for m in range(1, max(3, int(8 * scale)) + 1):
        mode = ("in_person", "in_person", "online", "hybrid")[m % 4]
        district = spec.districts[m % len(spec.districts)]
        begin = start + dt.timedelta(days=7 * m, hours=9)
        meeting: dict[str, Any] = {
            "kind": "meeting",
            "id": f"reunion-{m:04d}",
            "process": f"bp-{year}" if m % 2 else "plan-velo",
            "title": f"Atelier de quartier {district}" if mode != "online" else "Webinaire de présentation",
            "description": "Présentation de la démarche puis travail en petits groupes.",
            "start": _iso(begin),
            "end": _iso(begin + dt.timedelta(hours=2)),
            "mode": mode,
            "attendees_count": rng.randrange(8, 120),
            "capacity": 150,
            "organizer": "solidarites" if m % 2 else "voirie",
            "themes": ["governance"],
            "proposals": sorted(rng.sample([p["id"] for p in proposals], 3)),
            "language": "fr",
        }
        if mode != "online":
            meeting.update(
                place_name=f"Maison de quartier {district}",
                address=f"{rng.randrange(1, 60)} place {district}, {spec.name}",
                location=_in_cell(cells[district], rng.random(), rng.random()),
            )
        if mode != "in_person":
            meeting["online_url"] = f"https://visio.example.org/{spec.id}/atelier-{m}"
        yield meeting

    selected = [p for p in proposals if p["status"] == "selected"]
    for k, p in enumerate(selected, start=1):
        status = ("planned", "in_progress", "completed")[k % 3]
        begin = dt.date(year, 7, 1) + dt.timedelta(days=10 * k)
        project: dict[str, Any] = {
            "kind": "project",
            "id": f"projet-{k:04d}",
            "process": f"bp-{year}",
            "budget": f"bp-{year}-enveloppe",
            "title": p["title"],
            "description": p["body"],
            "status": status,
            "cost": p["estimated_cost"],
            "selected": True,
            "progress": {"planned": 0, "in_progress": 45, "completed": 100}[status],
            "start_date": begin.isoformat(),
            "milestones": [
                {"date": begin.isoformat(), "title": "Études"},
                {"date": (begin + dt.timedelta(days=60)).isoformat(), "title": "Travaux"},
            ],
            "proposals": [p["id"]],
            "implemented_by": p.get("handled_by") or THEME_ORG.get(p["themes"][0], "voirie"),
            "location": p["location"],
            "themes": p["themes"],
        }
        if status == "completed":
            project["end_date"] = (begin + dt.timedelta(days=120)).isoformat()
        if k == 1:  # the pilot project's aims, counted from its own proposal, votes and comments
            project["targets"] = [
                {"indicator": "votes", "period": str(year), "value": 50, "title": "50 votes pour le projet pilote"},
                {"indicator": "participants", "period": str(year), "value": 20},
            ]
        yield project


@dataclass
class DemoSource:
    """The generated records of one demo territory."""

    spec: TerritorySpec
    scale: float = 1.0

    @property
    def id(self) -> str:
        return f"demo-{self.spec.id}"

    @property
    def name(self) -> str:
        return f"demo data of {self.spec.name}"

    def items(self) -> Iterator[Item]:
        for data in generate(self.spec, scale=self.scale):
            yield Record(KINDS[data.pop("kind")], data)


def read(source: str, *, scale: float | str = 1.0) -> DemoSource:
    """The demo data of one demo territory (``lyon``, ``grenoble``, ``rennes``)."""
    try:
        scale = float(scale)
    except ValueError:
        raise ValidationFailed(f"scale must be a number, not {scale!r}") from None
    # Counts are made from it: a finite, positive size (the benchmarks go to a few thousand).
    if not 0 < scale <= 100_000:
        raise ValidationFailed(f"scale must be a number above 0 and at most 100000, not {scale!r}")
    spec = next((t for t in DEMO_TERRITORIES if t.id == source), None)
    if spec is None:
        names = ", ".join(t.id for t in DEMO_TERRITORIES)
        raise NotFound(f"no demo territory {source!r}: use one of {names}")
    return DemoSource(spec, scale)


def load_demo(records: Records, *, scale: float = 1.0) -> dict[str, int]:
    """Create the demo territories and load their records through the loader."""
    written: dict[str, int] = {}
    for spec in DEMO_TERRITORIES:
        records.create_territory(territory_record(spec))
        report = load(records, spec.id, DemoSource(spec, scale).items(), None)
        if report.errors:
            first = report.errors[0]
            raise RuntimeError(f"demo data rejected: {first.get('kind')} {first.get('id')}: {first['detail']}")
        written[spec.id] = report.accepted
    return written


IMPORTER = Importer(
    "demo",
    "Deterministic demo data of one demo territory (SOURCE: lyon, grenoble or rennes)",
    read,
    reads_file=False,
    options={"scale": "Size multiplier (1: demo size)."},
    quarantine=False,
)
