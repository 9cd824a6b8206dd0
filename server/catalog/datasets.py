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
from dataclasses import dataclass, field, replace
from typing import Any

from vocabularies import DCT, EU_THEME, GEO, PROV, QB, SCHEMES_FILE, SDMXD, SDO, SKOS
from vocabularies.licences import DEFAULT_LICENCE, LICENCES, Licence

from ..model.kinds import BY_PLURAL, Kind
from ..model.terms import canonical_datetime, period_of, period_span
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
    "districts": (
        "Districts of {name}",
        "Quartiers et découpages de {name}",
        "The districts of {name} (arrondissements, IRIS, quartiers…) with their official codes and boundaries, "
        "which located participation records are assigned to.",
        "Les quartiers et découpages de {name} (arrondissements, IRIS, quartiers…) avec leurs codes officiels et "
        "leurs limites, auxquels les contributions localisées sont rattachées.",
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
    #: What ``count`` counts, in the files' descriptions.
    items: str = "records"


@dataclass
class Catalog:
    """Every dataset, in name order (a stable order for paging), with their overall version."""

    datasets: list[Dataset]
    #: The territories it covers (those with no dataset too).
    territories: list[str] = field(default_factory=list)
    #: The territories whose datasets were read again for this version (None: all of them), so
    #: that what surfaces prepare per dataset is redone for these only.
    rebuilt: frozenset[str] | None = None
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
        """The datasets not deleted (listed once per version)."""
        live = self.derived.get("live")
        if live is None:
            live = self.derived["live"] = [d for d in self.datasets if not d.deleted]
        return live

    def fresh(self) -> list[Dataset]:
        """The datasets of the territories read again for this version."""
        if self.rebuilt is None:
            return self.datasets
        return [d for d in self.datasets if d.territory.id in self.rebuilt]

    def resource(self, resource_id: str) -> tuple[Dataset, Distribution] | None:
        """The dataset and file of a resource id (looked up in a table made on first use)."""
        table = self.derived.get("resources")
        if table is None:
            table = self.derived["resources"] = {r.resource_id: (d, r) for d in self.datasets for r in d.distributions}
        return table.get(resource_id)


#: A provider lists the datasets of some territories, given those the providers before it listed.
Provider = Callable[[Records, list[Territory], list[Dataset]], Iterator[Dataset]]


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
    )


def _when(term: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(canonical_datetime(term.value)) if term is not None else None


#: Territories per aggregate query (the query names their graphs).
CHUNK = 200


def _by_graph(rows: list[Any], *keys: str) -> dict[tuple[str, ...], Any]:
    return {tuple(r[k].value for k in keys): r for r in rows}


def kind_datasets(records: Records, territories: list[Territory], earlier: list[Dataset]) -> Iterator[Dataset]:
    """One dataset per kind of public record each territory holds or held: four aggregate
    queries per chunk of territories, whatever their number of kinds and records."""
    urls: Urls = records.urls
    kinds = [k for k in DUMPED_KINDS if k.plural in KIND_TEXTS]
    by_type = {k.mapping.types[0]: k for k in kinds}
    types = " ".join(f"<{t}>" for t in by_type)
    for start in range(0, len(territories), CHUNK):
        chunk = territories[start : start + CHUNK]
        index_of = {urls.index_graph(t.id, k.name): (t, k) for t in chunk for k in kinds}
        graph_of = {urls.territory_graph(t.id): t for t in chunk}
        indexes = " ".join(f"<{g}>" for g in index_of)
        graphs = " ".join(f"<{g}>" for g in graph_of)
        stamps = records.select(
            f"SELECT ?g ?p (COUNT(?s) AS ?n) (MIN(?m) AS ?first) (MAX(?m) AS ?last) WHERE {{ VALUES ?g {{ {indexes} }} "
            f"VALUES ?p {{ <{RECORD_MODIFIED}> <{RECORD_DELETED}> }} GRAPH ?g {{ ?s ?p ?m }} }} GROUP BY ?g ?p"
        )
        data = f"VALUES ?g {{ {graphs} }} VALUES ?type {{ {types} }} GRAPH ?g {{ ?s a ?type"
        spans = _by_graph(
            records.select(
                f"SELECT ?g ?type (MIN(?c) AS ?start) (MAX(?c) AS ?end) WHERE {{ {data} ; <{DCT.created}> ?c }} }} "
                "GROUP BY ?g ?type"
            ),
            "g",
            "type",
        )
        themes: dict[tuple[str, str], set[str]] = {}
        mapping = eu_themes()
        for row in records.select(f"SELECT DISTINCT ?g ?type ?t WHERE {{ {data} ; <{DCT.subject}> ?t }} }}"):
            if row["t"].value in mapping:
                themes.setdefault((row["g"].value, row["type"].value), set()).add(mapping[row["t"].value])
        boxes = _by_graph(
            records.select(
                "SELECT ?g ?type (MIN(?lon) AS ?w) (MIN(?lat) AS ?s2) (MAX(?lon) AS ?e) (MAX(?lat) AS ?n) WHERE { "
                f"{data} ; <{GEO.hasGeometry}> ?x . ?x <{SDO.latitude}> ?lat ; <{SDO.longitude}> ?lon }} }} "
                "GROUP BY ?g ?type"
            ),
            "g",
            "type",
        )
        found: dict[str, dict[str, Any]] = {}
        for row in stamps:
            found.setdefault(row["g"].value, {})[row["p"].value] = row
        for index, (territory, kind) in index_of.items():
            counts = found.get(index)
            if not counts:
                continue
            live, gone = counts.get(RECORD_MODIFIED), counts.get(RECORD_DELETED)
            count = int(live["n"].value) if live is not None else 0
            known = [w for r in (live, gone) if r is not None for k in ("first", "last") if (w := _when(r[k]))]
            key = (urls.territory_graph(territory.id), kind.mapping.types[0])
            span = spans.get(key)
            box = boxes.get(key)
            yield _dataset(
                urls,
                territory,
                kind,
                count,
                (min(known), max(known)),
                (_when(span["start"]), _when(span["end"])) if span is not None else (None, None),
                themes.get(key, set()),
                tuple(float(box[k].value) for k in ("w", "s2", "e", "n")) if box is not None else None,  # type: ignore[arg-type]
            )


def _dataset(
    urls: Urls,
    territory: Territory,
    kind: Kind,
    count: int,
    changed: tuple[dt.datetime, dt.datetime],
    created: tuple[dt.datetime | None, dt.datetime | None],
    eu_codes: set[str],
    bbox: tuple[float, float, float, float] | None,
) -> Dataset:
    name = f"{territory.id}-{kind.plural}"
    iri = f"{urls.base}/dataset/{name}"
    first, last = changed
    # What the records are about when they say (their creation dates), else when they were
    # published here.
    start = created[0] or first
    end = created[1] or last
    themes = {BASE_THEME, *eu_codes}
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


#: The kinds whose records the indicators count (their datasets date the cube).
COUNTED_PLURALS = ("proposals", "comments", "meetings", "projects", "budgets")
INDICATOR_TEXTS = (
    "Participation indicators of {name}",
    "Indicateurs de participation de {name}",
    "Participants, proposals, votes, comments, meetings, attendance, projects delivered and budgets of "
    "{name} per month, year, participatory process and district, and per 1,000 inhabitants: a W3C RDF "
    "Data Cube kept current as the data changes. Counts of fewer than {k} people are withheld.",
    "Participants, propositions, votes, commentaires, réunions, présence, projets réalisés et budgets de "
    "{name} par mois, année, démarche participative et quartier, et pour 1 000 habitants : un cube de "
    "données RDF (W3C) tenu à jour au fil des données. Les effectifs de moins de {k} personnes sont masqués.",
)
#: The cube document's formats (server/web/indicators.py), by suffix.
CUBE_FORMATS = {
    "ttl": "text/turtle",
    "jsonld": "application/ld+json",
    "rdf": "application/rdf+xml",
    "nt": "application/n-triples",
}
CUBE_FORMAT_NAMES = {"ttl": "Turtle", "jsonld": "JSON-LD", "rdf": "RDF/XML", "nt": "N-Triples"}


def indicator_datasets(records: Records, territories: list[Territory], earlier: list[Dataset]) -> Iterator[Dataset]:
    """One dataset per territory whose indicator cube has observations: its cube document in
    every RDF format. It changes when the counted records do (their datasets date it), and when
    receivability decisions are made or end (its shares; a deadline passing moves them alone)."""
    urls: Urls = records.urls
    graphs = {urls.indicators_cube_graph(t.id): t for t in territories}
    decided = {urls.receivability_graph(t.id): urls.indicators_cube_graph(t.id) for t in territories}
    last_decision: dict[str, dt.datetime] = {}
    counts: dict[str, int] = {}
    spans: dict[str, list[dt.date]] = {}
    names = list(graphs)
    for start in range(0, len(names), CHUNK):
        values = " ".join(f"<{g}>" for g in names[start : start + CHUNK])
        for row in records.select(
            f"SELECT ?g (COUNT(?o) AS ?n) WHERE {{ VALUES ?g {{ {values} }} "
            f"GRAPH ?g {{ ?o a <{QB.Observation}> }} }} GROUP BY ?g"
        ):
            counts[row["g"].value] = int(row["n"].value)
        # The periods the cube covers (its temporal coverage): a few dozen per territory.
        for row in records.select(
            f"SELECT DISTINCT ?g ?p WHERE {{ VALUES ?g {{ {values} }} "
            f"GRAPH ?g {{ ?o a <{QB.Observation}> ; <{SDMXD.refPeriod}> ?p }} }}"
        ):
            period = period_of(row["p"].value)
            days = period_span(period) if period else None
            if days:
                spans.setdefault(row["g"].value, []).extend(days)
        rvalues = " ".join(f"<{g}>" for g in list(decided)[start : start + CHUNK])
        for row in records.select(
            f"SELECT ?g (MAX(?t) AS ?last) WHERE {{ VALUES ?g {{ {rvalues} }} GRAPH ?g {{ "
            f"?d <{PROV.generatedAtTime}>|<{PROV.invalidatedAtTime}> ?t }} }} GROUP BY ?g"
        ):
            if row["last"] is not None:
                last = dt.datetime.fromisoformat(canonical_datetime(row["last"].value))
                last_decision[decided[row["g"].value]] = last
    counted: dict[str, list[Dataset]] = {}
    for d in earlier:
        if d.plural in COUNTED_PLURALS:
            counted.setdefault(d.territory.id, []).append(d)
    for graph, territory in graphs.items():
        sources = counted.get(territory.id)
        if not counts.get(graph) or not sources:
            continue
        document = urls.indicators_document(territory.id)
        name = f"{territory.id}-indicators"
        iri = f"{urls.base}/dataset/{name}"
        title_en, title_fr, description_en, description_fr = (
            t.format(name=territory.name, k=records.writer.min_people) for t in INDICATOR_TEXTS
        )
        distributions = tuple(
            Distribution(
                name=f"indicators.{fmt}",
                fmt=fmt,
                url=f"{document}.{fmt}",
                media_type=media_type,
                resource_id=stable_uuid(f"{document}.{fmt}"),
                title_en=f"{title_en} ({CUBE_FORMAT_NAMES[fmt]})",
                title_fr=f"{title_fr} ({CUBE_FORMAT_NAMES[fmt]})",
            )
            for fmt, media_type in CUBE_FORMATS.items()
        )
        keywords = ("participation", "indicators", "indicateurs", "RDF Data Cube", territory.name)
        covered = spans.get(graph) or [d.start for d in sources if d.start] + [d.end for d in sources if d.end]
        yield Dataset(
            name=name,
            iri=iri,
            id=stable_uuid(iri),
            territory=territory,
            plural="indicators",
            title_en=title_en,
            title_fr=title_fr,
            description_en=description_en,
            description_fr=description_fr,
            keywords=keywords,
            themes=(BASE_THEME, "SOCI"),
            count=counts[graph],
            deleted=False,
            issued=min(d.issued for d in sources if d.issued),
            modified=max([d.modified for d in sources if d.modified] + [*_also(last_decision.get(graph))]),
            start=min(covered),
            end=max(covered),
            bbox=None,
            distributions=distributions,
            api_url=document,
            search_text=" ".join((name, title_en, title_fr, description_en, description_fr, *keywords)).lower(),
            items="observations",
        )


def _also(moment: dt.datetime | None) -> list[dt.datetime]:
    return [moment] if moment is not None else []


PROVIDERS: list[Provider] = [kind_datasets, indicator_datasets]


def build_catalog(
    records: Records, territories: list[str], previous: Catalog | None = None, changed: set[str] | None = None
) -> Catalog:
    """Every dataset of these territories, from every provider. With ``previous`` and
    ``changed``, only the territories in ``changed`` (or new since) are read again: a write to
    one territory costs that territory's queries, not the whole instance's."""
    keep: dict[str, list[Dataset]] = {}
    if previous is not None and changed is not None:
        for d in previous.datasets:
            if d.territory.id not in changed:
                keep.setdefault(d.territory.id, []).append(d)
    known = set(previous.territories) if previous is not None and changed is not None else set()
    again = [t for t in territories if t not in known or t in (changed or set())]
    infos = [territory_info(records, t) for t in again]
    datasets = [d for t in territories if t not in again for d in keep.get(t, [])]
    fresh: list[Dataset] = []
    for provider in PROVIDERS:
        fresh.extend(provider(records, infos, fresh))
    rebuilt = frozenset(again) if previous is not None and changed is not None else None
    return Catalog(datasets + _with_territory_boxes(fresh), territories=list(territories), rebuilt=rebuilt)


def _with_territory_boxes(datasets: list[Dataset]) -> list[Dataset]:
    """Each territory's bounding box: that of all its located records (its spatial coverage)."""
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for d in datasets:
        if d.bbox is not None:
            w, s, e, n = d.bbox
            old = boxes.get(d.territory.id)
            boxes[d.territory.id] = (w, s, e, n) if old is None else (
                min(old[0], w), min(old[1], s), max(old[2], e), max(old[3], n)
            )  # fmt: skip
    territories: dict[str, Territory] = {}
    out = []
    for d in datasets:
        t = d.territory
        if t.id in boxes:
            t = territories.setdefault(t.id, replace(t, bbox=boxes[t.id]))
        out.append(replace(d, territory=t) if t is not d.territory else d)
    return out
