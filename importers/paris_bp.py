"""The winning projects of the Paris participatory budget (opendata.paris.fr dataset
``bp_projets_gagnants``, "Les projets lauréats du Budget Participatif"): a ``;``-separated CSV,
one winning project a row, read by its French column labels.

Each edition year becomes a ``process`` and its ``budget``; each row a ``project`` (selected: they
are the winners) of that budget, implemented by the lead department (``Direction pilote``, an
``organization``). The file gives no envelope: a budget's amount is the sum of the edition's
winning projects in the file, and says so in its description.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import IO, Any

from server.errors import CivicfedError, MalformedBody
from server.ingest import Importer, Item, Record, Rejected
from server.model.kinds import KINDS
from server.urls import LOCAL_ID_RE

from .pabulib import amount, invalid, slug
from .tabular import Row, read_csv

ID = "Identifiant du projet lauréat"
EDITION = "Edition"
TITLE = "Titre du projet lauréat"
COST = "Budget global du projet lauréat"
URL = "Lien URL vers le projet lauréat"
THEME = "Thématique"
DIRECTION = "Direction pilote du projet lauréat"
ADDRESS = "Adresse du projet lauréat"
DISTRICT = "Arrondissement du projet lauréat"
PROGRESS = "Avancement du projet"
#: Columns that may hold a "lat, lon" point (the portal's geographic exports add one).
POINT_COLUMNS = ("geo_point_2d", "Géolocalisation", "Coordonnées géographiques", "Localisation")
#: The month columns (YYYY-MM), as project milestones.
MILESTONES = (
    ("Date de début des études du projet", "Début des études"),
    ("Date de lancement des procédures du projet", "Lancement des procédures"),
    ("Date de lancement des travaux du projet", "Lancement des travaux"),
    ("Date prévisonnelle de livraison du projet", "Livraison prévisionnelle"),  # [sic] in the source
    ("Date prévisionnelle de livraison du projet", "Livraison prévisionnelle"),
    ("Date d'ouverture du projet au public", "Ouverture au public"),
)
#: Paris's themes whose theme code is unambiguous ("Cadre de vie", living environment, is not).
THEMES = {
    "attractivité et emploi": "economy",
    "culture et patrimoine": "culture",
    "education et jeunesse": "education",
    "éducation et jeunesse": "education",
    "environnement": "environment",
    "mobilités": "mobility",
    "prévention et sécurité": "safety",
    "propreté": "cleanliness",
    "santé": "health",
    "solidarités": "social",
    "sport": "sport",
}
STATUSES = {
    "(non démarré)": "planned",
    "etudes": "in_progress",
    "procedures": "in_progress",
    "travaux": "in_progress",
    "livraison": "in_progress",
    "fin": "completed",
    "abandonné": "cancelled",
}
PREFIX = "paris-bp"
PROCESS, BUDGET, PROJECT, ORGANIZATION = (KINDS[k] for k in ("process", "budget", "project", "organization"))


@dataclass
class _Edition:
    line: int
    total: Decimal = Decimal(0)
    projects: int = 0


@dataclass
class ParisSource:
    """The rows of one export of ``bp_projets_gagnants``."""

    data: bytes
    name: str = "bp_projets_gagnants.csv"
    id: str = "paris-bp"
    sha256: str | None = None
    location: str | None = None
    editions: dict[str, _Edition] = field(default_factory=dict)
    departments: dict[str, tuple[int, str]] = field(default_factory=dict)  # id → (line, name)

    def items(self) -> Iterator[Item]:
        for row in read_csv(self.data, self.name, required=(ID, EDITION, TITLE, COST)):
            local_id = f"{PREFIX}-{row.get(ID) or ''}"
            try:
                yield Record(PROJECT, self._project(row, local_id), row.line)
            except CivicfedError as err:
                yield Rejected(
                    err, row.line, "project", local_id if row.get(ID) and LOCAL_ID_RE.fullmatch(local_id) else None
                )
        for year, edition in self.editions.items():
            yield Record(PROCESS, _process(year), edition.line)
            yield Record(BUDGET, _budget(year, edition), edition.line)
        for org_id, (line, name) in self.departments.items():
            yield Record(ORGANIZATION, {"id": org_id, "name": name, "type": "public_body"}, line)
        self.sha256, self.location = hashlib.sha256(self.data).hexdigest(), self.name

    def _project(self, row: Row, local_id: str) -> dict[str, Any]:
        if not row.get(ID) or not LOCAL_ID_RE.fullmatch(local_id):
            raise invalid("#/id", f"{row.get(ID)!r} is not an identifier")
        year = row.get(EDITION) or ""
        if not re.fullmatch(r"20\d\d", year):
            raise invalid("#/process", f"edition {year!r} is not a year")
        cost = amount(row.get(COST) or "", "#/cost/amount")
        # The edition's total counts every winner with a cost, even one rejected below.
        edition = self.editions.setdefault(year, _Edition(row.line))
        edition.total += cost
        edition.projects += 1
        title = row.get(TITLE)
        if not title:
            raise invalid("#/title", "the project has no title in the file")
        data: dict[str, Any] = {"id": local_id, "process": f"{PREFIX}-{year}", "budget": f"{PREFIX}-{year}"}
        data |= {"title": title, "cost": {"amount": cost, "currency": "EUR"}, "selected": True}
        theme = THEMES.get((row.get(THEME) or "").lower())
        if theme:
            data["themes"] = [theme]
        status = STATUSES.get((row.get(PROGRESS) or "").lower())
        if status:
            data["status"] = status
        if row.get(URL):
            data["url"] = row.get(URL)
        address = ", ".join(x for x in (row.get(ADDRESS), _district(row.get(DISTRICT))) if x)
        if address:
            data["address"] = address
        point = row.get(*POINT_COLUMNS)
        if point:
            data["location"] = _point(point)
        milestones = [_milestone(row, column, label) for column, label in MILESTONES if row.get(column)]
        if milestones:
            data["milestones"] = milestones  # in the order of the stages (their months may not be)
        department = row.get(DIRECTION)
        if department:
            data["implemented_by"] = f"paris-{slug(department)}"[:128].rstrip("-")
            self.departments.setdefault(data["implemented_by"], (row.line, department))
        return data


def _process(year: str) -> dict[str, Any]:
    title = f"Budget participatif de Paris {year}"
    return {"id": f"{PREFIX}-{year}", "title": title, "type": "participatory_budget", "language": "fr"}


def _budget(year: str, edition: _Edition) -> dict[str, Any]:
    description = (
        f"Somme des budgets globaux des {edition.projects} projets lauréats de l'édition {year} "
        "publiés dans le jeu de données bp_projets_gagnants (l'enveloppe votée n'y figure pas)."
    )
    return {
        "id": f"{PREFIX}-{year}",
        "process": f"{PREFIX}-{year}",
        "title": f"Budget participatif de Paris {year} : projets lauréats",
        "description": description,
        "amount": {"amount": edition.total, "currency": "EUR"},
    }


def _district(code: str | None) -> str | None:
    """The arrondissement column is a postal code (75001…75020, 75116), or 75123 for the merged
    "Paris Centre" sector (1st to 4th), which is no postal code."""
    if code is None:
        return None
    if code == "75123":
        return "Paris Centre"
    if re.fullmatch(r"750(0[1-9]|1\d|20)|75116", code):
        return f"{code} Paris"
    raise invalid("#/address", f"arrondissement {code!r} is not a Paris postal code")


def _point(text: str) -> dict[str, float]:
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise invalid("#/location", f"{text!r} is not a point (lat, lon)") from None
    return {"lat": lat, "lon": lon}


def _milestone(row: Row, column: str, label: str) -> dict[str, str]:
    # The source gives months; the model's dates are days: the first of the month, and the
    # description says the month is all the source gives.
    month = row.get(column) or ""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise invalid("#/milestones", f"{column}: {month!r} is not a month (YYYY-MM)")
    return {"date": f"{month}-01", "title": label, "description": f"Mois indiqué par la source : {month}."}


def read(data: bytes | IO[bytes], *, name: str = "bp_projets_gagnants.csv") -> ParisSource:
    """A source over the CSV's bytes or an open binary file (the file is ~0.5 MB: read whole)."""
    content = data if isinstance(data, bytes) else data.read()
    if not content.strip():
        raise MalformedBody(f"{name} is empty")
    return ParisSource(content, name=name, id=f"paris-bp-{slug(PurePath(name).stem)[:100]}".rstrip("-"))


IMPORTER = Importer(
    "paris-bp",
    "Paris participatory budget: winning projects (opendata.paris.fr bp_projets_gagnants CSV)",
    read,
    snapshot=True,
)
