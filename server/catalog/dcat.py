"""The catalog as DCAT-AP 3: N-Triples lines for a page of the catalog or for one dataset.

What harvesters need, beyond the DCAT-AP 3.0.1 shapes (see docs/harvesting.md): every value of
a ranged property carries its type (licence, formats, frequency, languages, places…), EU
authority-table terms their ``skos:inScheme`` and labels, every dataset and service a literal
``dct:identifier`` (udata skips those without), temporal coverage as a blank node (udata
downloads an IRI), spatial coverage as a place with a WKT bounding box (udata imports polygons
only), and the paging block in both Hydra styles with absolute URLs (udata, ckanext-dcat and
data.europa.eu's piveau each read a different one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vocabularies import (
    ADMS_LICENCE_TYPE,
    ADMS_PUBLISHER_TYPE,
    DCAT,
    DCATAP,
    DCT,
    EU_ACCESS_RIGHT,
    EU_AVAILABILITY,
    EU_COUNTRY,
    EU_FILE_TYPE,
    EU_FREQUENCY,
    EU_LANGUAGE,
    EU_THEME,
    FOAF,
    GEO,
    HYDRA,
    IANA_MEDIA,
    RDF,
    SKOS,
    VCARD,
    XSD,
)
from vocabularies.licences import LICENCES, Licence

from ..model.terms import format_datetime, literal, typed
from ..urls import Urls
from .datasets import LANGUAGES, Dataset, Territory
from .formats import FILE_TYPES

#: ISO 3166-1 alpha-2 → the EU country authority table's code.
COUNTRIES = {
    "FR": "FRA", "BE": "BEL", "CH": "CHE", "LU": "LUX", "ES": "ESP", "IT": "ITA", "DE": "DEU",
    "NL": "NLD", "PT": "PRT", "CA": "CAN", "GB": "GBR", "IE": "IRL", "AT": "AUT", "PL": "POL",
}  # fmt: skip
EU_THEME_LABELS = {
    "AGRI": ("Agriculture, fisheries, forestry and food", "Agriculture, pêche, sylviculture et alimentation"),
    "ECON": ("Economy and finance", "Économie et finances"),
    "EDUC": ("Education, culture and sport", "Éducation, culture et sport"),
    "ENER": ("Energy", "Énergie"),
    "ENVI": ("Environment", "Environnement"),
    "GOVE": ("Government and public sector", "Gouvernement et secteur public"),
    "HEAL": ("Health", "Santé"),
    "INTR": ("International issues", "Questions internationales"),
    "JUST": ("Justice, legal system and public safety", "Justice, système juridique et sécurité publique"),
    "REGI": ("Regions and cities", "Régions et villes"),
    "SOCI": ("Population and society", "Population et société"),
    "TECH": ("Science and technology", "Science et technologie"),
    "TRAN": ("Transport", "Transports"),
}
#: The data is updated as the territory's platform sends it.
FREQUENCY = "UPDATE_CONT"
ADMS_PUBLISHER_SCHEME = ADMS_PUBLISHER_TYPE["1.0"]
ADMS_LICENCE_SCHEME = ADMS_LICENCE_TYPE["1.0"]
SPARQL_PROTOCOL = "https://www.w3.org/TR/sparql11-protocol/"
OPENAPI_SPEC = "https://spec.openapis.org/oas/v3.1.0"
CATALOG_DESCRIPTION_EN = (
    "Open data of citizen participation: processes, proposals, vote counts, comments, meetings, budgets, "
    "projects, organizations and receivability rules of the territories this server hosts."
)
CATALOG_DESCRIPTION_FR = (
    "Données ouvertes de la participation citoyenne : démarches, propositions, décomptes de votes, "
    "commentaires, réunions, budgets, projets, organisations et règles de recevabilité des territoires "
    "que ce serveur héberge."
)


@dataclass(frozen=True)
class Site:
    """The instance as a catalog's publisher: its name, contact and default licence."""

    title_en: str
    title_fr: str
    publisher_name: str
    contact_email: str | None
    licence: Licence


def _lit(text: str, lang: str | None = None) -> str:
    return literal(text, lang)


def _date(value: dt.date) -> str:
    return typed(value.isoformat(), XSD.date)


def _datetime(value: dt.datetime) -> str:
    return typed(format_datetime(value), XSD.dateTime)


class Writer:
    """Collects the triples of one document, each term's description once."""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls
        self.lines: list[str] = []
        self._described: set[str] = set()

    def add(self, s: str, p: str, o: str) -> None:
        self.lines.append(f"{s} <{p}> {o} .")

    def once(self, key: str) -> bool:
        if key in self._described:
            return False
        self._described.add(key)
        return True

    # -- terms ---------------------------------------------------------------------------------
    def concept(self, iri: str, scheme: str, cls: str | None, labels: Iterable[tuple[str, str]] = ()) -> str:
        """An authority-table term, typed as the range of the property that names it."""
        if self.once(iri):
            s = f"<{iri}>"
            if cls:
                self.add(s, RDF.type, f"<{cls}>")
            self.add(s, SKOS.inScheme, f"<{scheme}>")
            for text, lang in labels:
                self.add(s, SKOS.prefLabel, _lit(text, lang))
        return f"<{iri}>"

    def theme(self, code: str) -> str:
        en, fr = EU_THEME_LABELS.get(code, (code, code))
        scheme = str(EU_THEME).rstrip("/")
        if self.once(scheme):
            self.add(f"<{scheme}>", RDF.type, f"<{SKOS.ConceptScheme}>")
            self.add(f"<{scheme}>", DCT.title, _lit("Data theme", "en"))
        return self.concept(EU_THEME[code], scheme, SKOS.Concept, [(en, "en"), (fr, "fr")])

    def file_type(self, fmt: str) -> str:
        return self.concept(EU_FILE_TYPE[FILE_TYPES[fmt].eu_code], str(EU_FILE_TYPE).rstrip("/"), DCT.MediaTypeOrExtent)

    def media_type(self, media_type: str) -> str:
        iri = IANA_MEDIA[media_type]
        if self.once(iri):
            self.add(f"<{iri}>", RDF.type, f"<{DCT.MediaType}>")
        return f"<{iri}>"

    def language(self, code: str) -> str:
        eu = LANGUAGES.get(code.split("-")[0].lower(), "FRA")
        return self.concept(EU_LANGUAGE[eu], str(EU_LANGUAGE).rstrip("/"), DCT.LinguisticSystem)

    def frequency(self) -> str:
        return self.concept(EU_FREQUENCY[FREQUENCY], str(EU_FREQUENCY).rstrip("/"), DCT.Frequency)

    def public(self) -> str:
        return self.concept(EU_ACCESS_RIGHT.PUBLIC, str(EU_ACCESS_RIGHT).rstrip("/"), DCT.RightsStatement)

    def stable(self) -> str:
        scheme = str(EU_AVAILABILITY).rstrip("/")
        return self.concept(EU_AVAILABILITY.STABLE, scheme, SKOS.Concept, [("stable", "en"), ("stable", "fr")])

    def country(self, alpha2: str | None) -> str | None:
        code = COUNTRIES.get((alpha2 or "").upper())
        if code is None:
            return None
        return self.concept(EU_COUNTRY[code], str(EU_COUNTRY).rstrip("/"), DCT.Location)

    def licence(self, lic: Licence) -> str:
        s = f"<{lic.iri}>"
        if self.once(lic.iri):
            self.add(s, RDF.type, f"<{DCT.LicenseDocument}>")
            self.add(s, DCT.title, _lit(lic.title_en, "en"))
            self.add(s, DCT.title, _lit(lic.title_fr, "fr"))
            for t in lic.types:
                self.add(s, DCT.type, f"<{t}>")
                if self.once(t):
                    self.add(f"<{t}>", RDF.type, f"<{SKOS.Concept}>")
                    self.add(f"<{t}>", SKOS.prefLabel, _lit(t.rsplit("/", 1)[-1], "en"))
                    self.add(f"<{t}>", SKOS.inScheme, self.scheme(ADMS_LICENCE_SCHEME, "Licence type"))
        return s

    def scheme(self, iri: str, title: str) -> str:
        if self.once(iri):
            self.add(f"<{iri}>", RDF.type, f"<{SKOS.ConceptScheme}>")
            self.add(f"<{iri}>", DCT.title, _lit(title, "en"))
        return f"<{iri}>"

    def document(self, url: str) -> str:
        if self.once("doc " + url):
            self.add(f"<{url}>", RDF.type, f"<{FOAF.Document}>")
        return f"<{url}>"

    def standard(self, url: str, title: str) -> str:
        if self.once(url):
            self.add(f"<{url}>", RDF.type, f"<{DCT.Standard}>")
            self.add(f"<{url}>", DCT.title, _lit(title, "en"))
        return f"<{url}>"

    # -- agents --------------------------------------------------------------------------------
    def agent(self, iri: str, name: str, publisher_type: str) -> str:
        s = f"<{iri}>"
        if self.once(iri):
            self.add(s, RDF.type, f"<{FOAF.Agent}>")
            self.add(s, RDF.type, f"<{FOAF.Organization}>")
            self.add(s, FOAF.name, _lit(name))
            kind = ADMS_PUBLISHER_TYPE[publisher_type]
            self.add(s, DCT.type, f"<{kind}>")
            if self.once(kind):
                self.add(f"<{kind}>", RDF.type, f"<{SKOS.Concept}>")
                self.add(f"<{kind}>", SKOS.prefLabel, _lit(publisher_type, "en"))
                self.add(f"<{kind}>", SKOS.inScheme, self.scheme(ADMS_PUBLISHER_SCHEME, "Publisher type"))
        return s

    def contact(self, iri: str, name: str, email: str | None, url: str) -> str:
        s = f"<{iri}>"
        if self.once(iri):
            self.add(s, RDF.type, f"<{VCARD.Kind}>")
            self.add(s, RDF.type, f"<{VCARD.Organization}>")
            self.add(s, VCARD.fn, _lit(name))
            if email:
                self.add(s, VCARD.hasEmail, f"<mailto:{email}>")
            self.add(s, VCARD.hasURL, f"<{url}>")
        return s

    def publisher(self, t: Territory) -> str:
        return self.agent(publisher_iri(self.urls, t.id), t.name, "LocalAuthority")

    def territory_contact(self, t: Territory, site: Site) -> str:
        email = t.contact_email or site.contact_email
        iri = f"{publisher_iri(self.urls, t.id)}#contact"
        return self.contact(iri, f"Open data — {t.name}", email, self.urls.base + "/")

    def place(self, t: Territory) -> str | None:
        """The territory as a dct:Location with its bounding box and centre."""
        box = t.bbox or _around(t.location)
        if box is None:
            return None
        s = f"<{t.iri}>"
        if self.once("place " + t.iri):
            self.add(s, RDF.type, f"<{DCT.Location}>")
            w, south, e, n = box
            polygon = f"POLYGON(({w} {south}, {e} {south}, {e} {n}, {w} {n}, {w} {south}))"
            self.add(s, DCAT.bbox, typed(polygon, GEO.wktLiteral))
            lon, lat = t.location or ((w + e) / 2, (south + n) / 2)
            self.add(s, DCAT.centroid, typed(f"POINT({lon} {lat})", GEO.wktLiteral))
        return s


def _around(point: tuple[float, float] | None, margin: float = 0.05) -> tuple[float, float, float, float] | None:
    """A small box around the territory's point when no record is located."""
    if point is None:
        return None
    lon, lat = point
    return (round(lon - margin, 6), round(lat - margin, 6), round(lon + margin, 6), round(lat + margin, 6))


def publisher_iri(urls: Urls, territory: str) -> str:
    return f"{urls.base}/catalog/publisher/{territory}"


def catalog_iri(urls: Urls) -> str:
    return f"{urls.base}/catalog"


def service_iris(urls: Urls) -> tuple[str, str]:
    return f"{urls.base}/catalog#sparql", f"{urls.base}/catalog#api"


def dataset_triples(w: Writer, d: Dataset, site: Site) -> None:
    s = f"<{d.iri}>"
    t = d.territory
    add = w.add
    add(s, RDF.type, f"<{DCAT.Dataset}>")
    add(s, DCT.identifier, _lit(d.iri))
    add(s, DCT.title, _lit(d.title_fr, "fr"))
    add(s, DCT.title, _lit(d.title_en, "en"))
    add(s, DCT.description, _lit(d.description_fr, "fr"))
    add(s, DCT.description, _lit(d.description_en, "en"))
    for k in d.keywords:
        add(s, DCAT.keyword, _lit(k))
    for code in d.themes:
        add(s, DCAT.theme, w.theme(code))
    add(s, DCT.publisher, w.publisher(t))
    add(s, DCAT.contactPoint, w.territory_contact(t, site))
    add(s, DCAT.landingPage, w.document(d.iri + ".html"))
    if (place := w.place(t)) is not None:
        add(s, DCT.spatial, place)
    if d.start and d.end:
        period = f"_:period-{hashlib.sha256(d.name.encode()).hexdigest()[:16]}"
        add(s, DCT.temporal, period)
        add(period, RDF.type, f"<{DCT.PeriodOfTime}>")
        add(period, DCAT.startDate, _date(d.start))
        add(period, DCAT.endDate, _date(d.end))
    if d.issued:
        add(s, DCT.issued, _datetime(d.issued))
    if d.modified:
        add(s, DCT.modified, _datetime(d.modified))
    add(s, DCT.accrualPeriodicity, w.frequency())
    add(s, DCT.accessRights, w.public())
    add(s, DCT.language, w.language(t.language))
    add(s, DCT.license, w.licence(t.licence))
    for r in d.distributions:
        node = f"<{d.iri}#{r.fmt}>"
        add(s, DCAT.distribution, node)
        add(node, RDF.type, f"<{DCAT.Distribution}>")
        add(node, DCT.identifier, _lit(r.resource_id))
        add(node, DCT.title, _lit(r.title_fr, "fr"))
        add(node, DCT.title, _lit(r.title_en, "en"))
        add(node, DCT.description, _lit(f"All {d.count} {d.items}, one file, updated as the data changes.", "en"))
        add(node, DCAT.accessURL, f"<{r.url}>")
        add(node, DCAT.downloadURL, f"<{r.url}>")
        add(node, DCT.format, w.file_type(r.fmt))
        add(node, DCAT.mediaType, w.media_type(r.media_type))
        add(node, DCT.license, w.licence(t.licence))
        add(node, DCATAP.availability, w.stable())
        if d.modified:
            add(node, DCT.modified, _datetime(d.modified))


def services_triples(w: Writer, site: Site, served: Sequence[Dataset]) -> None:
    sparql, api = service_iris(w.urls)
    base = w.urls.base
    publisher = w.agent(f"{catalog_iri(w.urls)}#publisher", site.publisher_name, "LocalAuthority")
    contact = w.contact(f"{catalog_iri(w.urls)}#contact", site.publisher_name, site.contact_email, base + "/")
    for iri, title_en, title_fr, endpoint, description, standard in (
        (
            sparql,
            "SPARQL endpoint of the participation data",
            "Point d'accès SPARQL des données de participation",
            f"{base}/sparql",
            f"{base}/sparql",
            w.standard(SPARQL_PROTOCOL, "SPARQL 1.1 Protocol"),
        ),
        (
            api,
            "JSON API of the participation data",
            "API JSON des données de participation",
            f"{base}/api/v1",
            f"{base}/api/v1/openapi.json",
            w.standard(OPENAPI_SPEC, "OpenAPI Specification 3.1"),
        ),
    ):
        s = f"<{iri}>"
        w.add(s, RDF.type, f"<{DCAT.DataService}>")
        w.add(s, DCT.identifier, _lit(iri))
        w.add(s, DCT.title, _lit(title_fr, "fr"))
        w.add(s, DCT.title, _lit(title_en, "en"))
        w.add(s, DCT.description, _lit(title_en + ", every public graph of every territory.", "en"))
        w.add(s, DCAT.endpointURL, f"<{endpoint}>")
        w.add(s, DCAT.endpointDescription, f"<{description}>")
        w.add(s, DCT.conformsTo, standard)
        w.add(s, DCAT.theme, w.theme("GOVE"))
        w.add(s, DCAT.keyword, _lit("participation"))
        w.add(s, DCAT.keyword, _lit("linked data" if iri == sparql else "API"))
        w.add(s, DCT.publisher, publisher)
        w.add(s, DCAT.contactPoint, contact)
        w.add(s, DCT.license, w.licence(site.licence))
        w.add(s, DCT.accessRights, w.public())
        for d in served:
            w.add(s, DCAT.servesDataset, f"<{d.iri}>")


@dataclass(frozen=True)
class PageLinks:
    """The absolute URLs of a catalog page and of its neighbours."""

    current: str
    first: str
    last: str
    next: str | None
    previous: str | None
    total: int
    per_page: int


def catalog_triples(
    w: Writer,
    site: Site,
    page: Sequence[Dataset],
    links: PageLinks,
    everything: Sequence[Dataset],
    with_datasets: bool = True,
) -> None:
    """The catalog node, the datasets of this page, the services, and the paging block."""
    c = f"<{catalog_iri(w.urls)}>"
    base = w.urls.base
    w.add(c, RDF.type, f"<{DCAT.Catalog}>")
    w.add(c, RDF.type, f"<{HYDRA.Collection}>")
    w.add(c, DCT.title, _lit(site.title_fr, "fr"))
    w.add(c, DCT.title, _lit(site.title_en, "en"))
    w.add(c, DCT.description, _lit(CATALOG_DESCRIPTION_EN, "en"))
    w.add(c, DCT.description, _lit(CATALOG_DESCRIPTION_FR, "fr"))
    w.add(c, DCT.publisher, w.agent(f"{catalog_iri(w.urls)}#publisher", site.publisher_name, "LocalAuthority"))
    w.add(c, FOAF.homepage, w.document(base + "/"))
    w.add(c, DCT.license, w.licence(site.licence))
    w.add(c, DCAT.themeTaxonomy, f"<{str(EU_THEME).rstrip('/')}>")
    w.theme("GOVE")  # describes the scheme (its title) once
    languages = sorted({d.territory.language for d in everything} or {"fr"})
    for lang in languages:
        w.add(c, DCT.language, w.language(lang))
    issued = [d.issued for d in everything if d.issued]
    modified = [d.modified for d in everything if d.modified]
    if issued:
        w.add(c, DCT.issued, _datetime(min(issued)))
    if modified:
        w.add(c, DCT.modified, _datetime(max(modified)))
    # The places of this page's datasets (each page is a partial view of the catalog, as its
    # dcat:dataset list is; naming every territory on every page would not scale).
    for t in sorted({d.territory for d in page}, key=lambda t: t.id):
        if (place := w.place(t)) is not None:
            w.add(c, DCT.spatial, place)
    sparql, api = service_iris(w.urls)
    w.add(c, DCAT.service, f"<{sparql}>")
    w.add(c, DCAT.service, f"<{api}>")
    for d in page:
        w.add(c, DCAT.dataset, f"<{d.iri}>")
        if with_datasets:
            dataset_triples(w, d, site)
    services_triples(w, site, page)
    # Paging: both Hydra styles on one node (HARVESTERS.md §6.4).
    view = f"<{links.current}>"
    total = typed(str(links.total), XSD.integer)
    w.add(c, HYDRA.totalItems, total)
    w.add(c, HYDRA.view, view)
    w.add(view, RDF.type, f"<{HYDRA.PartialCollectionView}>")
    w.add(view, RDF.type, f"<{HYDRA.PagedCollection}>")
    w.add(view, HYDRA.totalItems, total)
    w.add(view, HYDRA.itemsPerPage, typed(str(links.per_page), XSD.integer))
    for new, old, url in (
        (HYDRA.first, HYDRA.firstPage, links.first),
        (HYDRA.last, HYDRA.lastPage, links.last),
        (HYDRA.next, HYDRA.nextPage, links.next),
        (HYDRA.previous, HYDRA.previousPage, links.previous),
    ):
        if url is not None:
            w.add(view, new, f"<{url}>")
            w.add(view, old, f"<{url}>")


def dataset_document(urls: Urls, site: Site, d: Dataset) -> list[str]:
    """One dataset's document: the dataset, its distributions, the catalog it is in and the
    services that serve it."""
    w = Writer(urls)
    w.add(f"<{catalog_iri(urls)}>", DCAT.dataset, f"<{d.iri}>")
    dataset_triples(w, d, site)
    services_triples(w, site, [d])
    return w.lines


def catalog_document(
    urls: Urls,
    site: Site,
    page: Sequence[Dataset],
    links: PageLinks,
    everything: Sequence[Dataset],
    with_datasets: bool = True,
) -> list[str]:
    """A catalog page; without ``with_datasets``, only the catalog, services and paging (the
    datasets' own descriptions are then added by the caller, see ``dataset_lines``)."""
    w = Writer(urls)
    catalog_triples(w, site, page, links, everything, with_datasets)
    return w.lines


def dataset_lines(urls: Urls, site: Site, d: Dataset) -> tuple[list[str], list[str]]:
    """A dataset's description: the lines about the dataset itself (and its distributions and
    period), and those describing what it refers to (its publisher, place, vocabulary terms),
    which the datasets of a page share."""
    w = Writer(urls)
    dataset_triples(w, d, site)
    own = (f"<{d.iri}>", f"<{d.iri}#", "_:period-")
    return [x for x in w.lines if x.startswith(own)], [x for x in w.lines if not x.startswith(own)]


__all__ = ["LICENCES", "PageLinks", "Site", "catalog_document", "dataset_document", "dataset_lines"]
