"""The datasets: what each territory publishes, described once for every catalog surface.

A territory publishes one dataset per kind of public record it holds (``lyon-proposals``). Its
metadata comes from the data itself — how many records, when the first and the last changed,
the dates they cover, the themes they are classified under, where they are — and from the
territory's record (name, licence, contact, language). Computing it takes a few aggregate
queries per territory, so the list is kept by the services and rebuilt when the store changes
(``services().catalog()``), not per request.

A dataset whose records were all deleted stays in the list, marked ``deleted``: a CKAN client
asking with ``include_deleted`` learns of it; DCAT-AP leaves it out.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vocabularies import DCT, EU_THEME, GEO, SCHEMES_FILE, SDO, SKOS
from vocabularies.licences import DEFAULT_LICENCE, LICENCES, Licence

from ..model.kinds import BY_PLURAL, Kind
from ..model.rdf import canonical_datetime
from ..records import Records
from ..records.index import RECORD_DELETED, RECORD_MODIFIED
from ..urls import Urls
from .formats import DUMPED_KINDS, FILE_TYPES, RECORD_FORMATS, kind_formats

#: Every dataset of participation data is about government and public sector (EU data theme).
BASE_THEME = "GOVE"

#: Titles and descriptions of each kind's dataset (English, French), ``{name}`` the territory's.
KIND_TEXTS: dict[str, tuple[str, str, str, str]] = {
    "processes": (
        "Participatory processes of {name}",
        "Démarches participatives de {name}",
        "Consultations, participatory budgets, citizen initiatives and other participatory processes "
        "run by {name}: their type, status, phases, dates and themes.",
        "Consultations, budgets participatifs, initiatives citoyennes et autres démarches participatives "
        "de {name} : type, statut, phases, dates et thèmes.",
    ),
    "proposals": (
        "Citizen proposals of {name}",
        "Propositions citoyennes de {name}",
        "Ideas and proposals submitted in the participatory processes of {name}, with their status, "
        "themes, location, support counts and estimated cost. Authors are pseudonymised.",
        "Idées et propositions déposées dans les démarches participatives de {name} : statut, thèmes, "
        "localisation, nombre de soutiens et coût estimé. Les auteurs sont pseudonymisés.",
    ),
    "comments": (
        "Comments on participation in {name}",
        "Commentaires sur la participation à {name}",
        "Comments on proposals, processes, meetings and projects of {name}, threaded, with their "
        "stance. Authors are pseudonymised.",
        "Commentaires sur les propositions, démarches, réunions et projets de {name}, en fil de "
        "discussion, avec leur position. Les auteurs sont pseudonymisés.",
    ),
    "meetings": (
        "Participation meetings of {name}",
        "Réunions de participation de {name}",
        "Public meetings, workshops and online sessions of the participatory processes of {name}: "
        "dates, places, attendance.",
        "Réunions publiques, ateliers et sessions en ligne des démarches participatives de {name} : "
        "dates, lieux, participation.",
    ),
    "budgets": (
        "Participatory budgets of {name}",
        "Budgets participatifs de {name}",
        "The envelopes of the participatory budgets of {name}: amounts, themes, processes.",
        "Les enveloppes des budgets participatifs de {name} : montants, thèmes, démarches.",
    ),
    "projects": (
        "Projects carried out in {name}",
        "Projets réalisés à {name}",
        "Projects selected from citizen proposals in {name} and carried out by organizations: "
        "status, budget allocated and spent, progress, location.",
        "Projets retenus parmi les propositions citoyennes de {name} et menés par des organisations : "
        "statut, budget alloué et dépensé, avancement, localisation.",
    ),
    "organizations": (
        "Organizations taking part in participation in {name}",
        "Organisations parties prenantes de la participation à {name}",
        "Public bodies, associations and companies that organise processes or take up and carry out "
        "ideas in {name}, with their fields of competence.",
        "Organismes publics, associations et entreprises qui organisent des démarches ou reprennent et "
        "mènent des idées à {name}, avec leurs domaines de compétence.",
    ),
    "rules": (
        "Receivability rules of participation in {name}",
        "Règles de recevabilité de la participation à {name}",
        "The conditions a proposal must meet in the participatory processes of {name}: minimum "
        "support, allowed themes, maximum budget, deadline.",
        "Les conditions qu'une proposition doit remplir dans les démarches participatives de {name} : "
        "soutiens minimum, thèmes admis, budget maximum, date limite.",
    ),
}
#: ISO 639-1 → the EU language authority table's code.
LANGUAGES = {"fr": "FRA", "en": "ENG", "de": "DEU", "es": "SPA", "it": "ITA", "nl": "NLD", "ca": "CAT", "eu": "EUS"}


@dataclass(frozen=True)
class Distribution:
    """One file of a dataset (a dump), or the dataset through a service."""

    name: str
    fmt: str
    url: str
    media_type: str
    resource_id: str
    title_en: str
    title_fr: str


@dataclass(frozen=True)
class Territory:
    """What a catalog needs of a territory's record."""

    id: str
    iri: str
    name: str
    licence: Licence
    contact_email: str | None
    language: str
    country: str | None
    location: tuple[float, float] | None  # lon, lat
    url: str | None
    #: min lon, min lat, max lon, max lat of every located record of the territory.
    bbox: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    iri: str
    #: The CKAN id: a UUID derived from the IRI, the same on every run and every store.
    id: str
    territory: Territory
    plural: str
    title_en: str
    title_fr: str
    description_en: str
    description_fr: str
    keywords: tuple[str, ...]
    #: EU data-theme codes.
    themes: tuple[str, ...]
    count: int
    deleted: bool
    issued: dt.datetime | None
    modified: dt.datetime | None
    start: dt.date | None
    end: dt.date | None
    #: min lon, min lat, max lon, max lat of the records' locations.
    bbox: tuple[float, float, float, float] | None
    distributions: tuple[Distribution, ...]
    #: The API list of these records (the landing page of a machine).
    api_url: str
    search_text: str = field(repr=False, default="")


@dataclass
class Catalog:
    """Every dataset, in name order (a stable order for paging), with their overall version."""

    datasets: list[Dataset]
    by_name: dict[str, Dataset] = field(init=False)
    version: str = field(init=False)
    modified: dt.datetime | None = field(init=False)
    #: What surfaces derive from this version of the list (CKAN dicts…), kept with it.
    derived: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.datasets.sort(key=lambda d: d.name)
        self.by_name = {d.name: d for d in self.datasets}
        stamps = [d.modified for d in self.datasets if d.modified]
        self.modified = max(stamps) if stamps else None
        key = "|".join(f"{d.name}:{d.count}:{d.deleted}:{d.modified}" for d in self.datasets)
        self.version = hashlib.sha256(key.encode()).hexdigest()[:20]

    def live(self) -> list[Dataset]:
        return [d for d in self.datasets if not d.deleted]

    def resource(self, resource_id: str) -> tuple[Dataset, Distribution] | None:
        for d in self.datasets:
            for r in d.distributions:
                if r.resource_id == resource_id:
                    return d, r
        return None


#: A provider lists the datasets of one territory (kinds today; indicator cubes and imported
#: sources later).
Provider = Callable[[Records, Territory], Iterator[Dataset]]


def stable_uuid(iri: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, iri))


@functools.lru_cache(maxsize=1)
def eu_themes() -> dict[str, str]:
    """Our theme concept IRI → the EU data theme it matches (exactly or closely)."""
    from pyoxigraph import NamedNode, RdfFormat, parse

    out: dict[str, str] = {}
    for predicate in (SKOS.closeMatch, SKOS.exactMatch):  # exact wins
        for q in parse(path=str(SCHEMES_FILE), format=RdfFormat.TURTLE):
            if q.predicate == NamedNode(predicate) and q.object.value in EU_THEME:
                out[q.subject.value] = q.object.value[len(str(EU_THEME)) :]
    return out


def territory_info(records: Records, territory: str) -> Territory:
    data = records.get(territory, BY_PLURAL["territories"], territory)
    licence = LICENCES.get(data.get("license") or DEFAULT_LICENCE, LICENCES[DEFAULT_LICENCE])
    point = data.get("location")
    graph = records.urls.territory_graph(territory)
    rows = records.select(
        "SELECT (MIN(?lon) AS ?w) (MIN(?lat) AS ?s) (MAX(?lon) AS ?e) (MAX(?lat) AS ?n) WHERE { "
        f"GRAPH <{graph}> {{ ?r <{GEO.hasGeometry}> ?g . ?g <{SDO.latitude}> ?lat ; <{SDO.longitude}> ?lon }} }}"
    )
    bbox = None
    if rows and rows[0]["w"] is not None:
        bbox = tuple(float(rows[0][k].value) for k in ("w", "s", "e", "n"))
    return Territory(
        id=territory,
        iri=records.urls.territory(territory),
        name=data.get("name") or territory,
        licence=licence,
        contact_email=data.get("contact_email"),
        language=data.get("language") or "fr",
        country=data.get("country"),
        location=(point["lon"], point["lat"]) if point else None,
        url=data.get("url"),
        bbox=bbox,  # type: ignore[arg-type]
    )


def _when(term: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(canonical_datetime(term.value)) if term is not None else None


def kind_datasets(records: Records, territory: Territory) -> Iterator[Dataset]:
    """One dataset per kind of public record the territory holds or held."""
    urls: Urls = records.urls
    graph = urls.territory_graph(territory.id)
    for kind in DUMPED_KINDS:
        if kind.plural not in KIND_TEXTS:
            continue
        index = urls.index_graph(territory.id, kind.name)
        rows = records.select(
            f"SELECT ?p (COUNT(?s) AS ?n) (MIN(?m) AS ?first) (MAX(?m) AS ?last) WHERE {{ VALUES ?p "
            f"{{ <{RECORD_MODIFIED}> <{RECORD_DELETED}> }} GRAPH <{index}> {{ ?s ?p ?m }} }} GROUP BY ?p"
        )
        counts = {r["p"].value: r for r in rows if r["p"] is not None}
        live = counts.get(RECORD_MODIFIED)
        gone = counts.get(RECORD_DELETED)
        if live is None and gone is None:
            continue
        count = int(live["n"].value) if live is not None else 0
        stamps = [_when(r[k]) for r in (live, gone) if r is not None for k in ("first", "last")]
        known = [s for s in stamps if s is not None]
        yield _dataset(records, territory, kind, graph, index, count, min(known), max(known))


def _dataset(
    records: Records,
    territory: Territory,
    kind: Kind,
    graph: str,
    index: str,
    count: int,
    first: dt.datetime,
    last: dt.datetime,
) -> Dataset:
    urls = records.urls
    name = f"{territory.id}-{kind.plural}"
    iri = f"{urls.base}/dataset/{name}"
    live = f"GRAPH <{index}> {{ ?s <{RECORD_MODIFIED}> ?m }} GRAPH <{graph}>"
    span = records.select(
        f"SELECT (MIN(?c) AS ?start) (MAX(?c) AS ?end) WHERE {{ {live} {{ ?s <{DCT.created}> ?c }} }}"
    )
    # What the records are about when they say (their creation dates), else when they were
    # published here.
    start = (_when(span[0]["start"]) if span else None) or first
    end = (_when(span[0]["end"]) if span else None) or last
    themes = {BASE_THEME}
    if "themes" in kind.mapping.by_name:
        mapping = eu_themes()
        for row in records.select(f"SELECT DISTINCT ?t WHERE {{ {live} {{ ?s <{DCT.subject}> ?t }} }}"):
            if row["t"].value in mapping:
                themes.add(mapping[row["t"].value])
    bbox = None
    if kind.geolocated:
        rows = records.select(
            "SELECT (MIN(?lon) AS ?w) (MIN(?lat) AS ?s2) (MAX(?lon) AS ?e) (MAX(?lat) AS ?n) WHERE { "
            f"{live} {{ ?s <{GEO.hasGeometry}> ?g . ?g <{SDO.latitude}> ?lat ; <{SDO.longitude}> ?lon }} }}"
        )
        if rows and rows[0]["w"] is not None:
            r = rows[0]
            bbox = (float(r["w"].value), float(r["s2"].value), float(r["e"].value), float(r["n"].value))
    title_en, title_fr, description_en, description_fr = (
        t.format(name=territory.name) for t in KIND_TEXTS[kind.plural]
    )
    distributions = tuple(
        Distribution(
            name=f"{kind.plural}.{fmt}",
            fmt=fmt,
            url=urls.dump(f"{territory.id}/{kind.plural}.{fmt}"),
            media_type=RECORD_FORMATS[fmt].split(";")[0],
            resource_id=stable_uuid(urls.dump(f"{territory.id}/{kind.plural}.{fmt}")),
            title_en=f"{title_en} ({FILE_TYPES[fmt].label})",
            title_fr=f"{title_fr} ({FILE_TYPES[fmt].label})",
        )
        for fmt in kind_formats(kind)
    )
    keywords = ("participation", "citizen participation", "participation citoyenne", kind.plural, territory.name)
    return Dataset(
        name=name,
        iri=iri,
        id=stable_uuid(iri),
        territory=territory,
        plural=kind.plural,
        title_en=title_en,
        title_fr=title_fr,
        description_en=description_en,
        description_fr=description_fr,
        keywords=keywords,
        themes=tuple(sorted(themes)),
        count=count,
        deleted=count == 0,
        issued=min(first, start),
        modified=last,
        start=start.date(),
        end=max(start, end).date(),
        bbox=bbox,
        distributions=distributions,
        api_url=urls.api(f"/territories/{territory.id}/{kind.plural}"),
        search_text=" ".join((name, title_en, title_fr, description_en, description_fr, *keywords)).lower(),
    )


PROVIDERS: list[Provider] = [kind_datasets]


def build_catalog(records: Records, territories: list[str]) -> Catalog:
    """Every dataset of these territories, from every provider."""
    datasets: list[Dataset] = []
    for territory in territories:
        info = territory_info(records, territory)
        for provider in PROVIDERS:
            datasets.extend(provider(records, info))
    return Catalog(datasets)
