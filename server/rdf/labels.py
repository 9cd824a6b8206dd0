"""Human labels of the terms civicfed publishes, in English and French, for HTML pages.

Our own terms and concepts take their labels from the vocabulary files; the shared terms the
mapping uses get theirs here (what a reader of a proposal page needs, not whole vocabularies).
"""

from __future__ import annotations

import functools

from vocabularies import ONTOLOGY_FILE, PREFIXES, RDFS, SCHEMES_FILE, SKOS, compact_iri

SHARED: dict[str, tuple[str, str]] = {
    "rdf:type": ("type", "type"),
    "dct:identifier": ("identifier", "identifiant"),
    "dct:title": ("title", "titre"),
    "dct:description": ("description", "description"),
    "dct:created": ("created", "créé le"),
    "dct:modified": ("modified", "modifié le"),
    "dct:language": ("language", "langue"),
    "dct:subject": ("theme", "thème"),
    "dct:type": ("type", "type"),
    "dct:isPartOf": ("part of", "fait partie de"),
    "dct:hasPart": ("has part", "comprend"),
    "dct:relation": ("related to", "en lien avec"),
    "dct:date": ("date", "date"),
    "dct:bibliographicCitation": ("source", "source"),
    "adms:status": ("status", "statut"),
    "adms:identifier": ("identifier", "identifiant"),
    "adms:schemaAgency": ("issued by", "attribué par"),
    "schema:url": ("web page", "page web"),
    "schema:name": ("name", "nom"),
    "schema:description": ("description", "description"),
    "schema:startDate": ("start", "début"),
    "schema:endDate": ("end", "fin"),
    "schema:location": ("place", "lieu"),
    "schema:organizer": ("organizer", "organisateur"),
    "schema:eventAttendanceMode": ("attendance", "participation"),
    "schema:maximumAttendeeCapacity": ("capacity", "capacité"),
    "schema:interactionStatistic": ("counts", "compteurs"),
    "schema:interactionType": ("of", "de"),
    "schema:userInteractionCount": ("count", "nombre"),
    "schema:about": ("about", "à propos de"),
    "schema:object": ("voted for", "vote pour"),
    "schema:agent": ("voter", "votant"),
    "schema:value": ("amount", "montant"),
    "schema:currency": ("currency", "devise"),
    "schema:latitude": ("latitude", "latitude"),
    "schema:longitude": ("longitude", "longitude"),
    "schema:position": ("position", "rang"),
    "schema:addressCountry": ("country", "pays"),
    "sioc:content": ("text", "texte"),
    "sioc:has_creator": ("author", "auteur"),
    "sioc:reply_of": ("reply to", "en réponse à"),
    "skos:prefLabel": ("name", "nom"),
    "skos:exactMatch": ("same as", "équivalent"),
    "skos:notation": ("code", "code"),
    "geo:hasGeometry": ("location", "localisation"),
    "geo:asWKT": ("WKT", "WKT"),
    "geo:sfWithin": ("within", "situé dans"),
    "locn:address": ("address", "adresse"),
    "locn:fullAddress": ("address", "adresse"),
    "org:purpose": ("competences", "compétences"),
    "org:subOrganizationOf": ("unit of", "service de"),
    "foaf:homepage": ("homepage", "site web"),
    "prov:wasDerivedFrom": ("derived from", "issu de"),
    "sdmxd:refArea": ("area", "territoire"),
    "sdmxd:refPeriod": ("year", "année"),
    "m8g:hasRequirement": ("conditions", "conditions"),
    "m8g:constrains": ("bears on", "porte sur"),
    "m8g:expressionOfExpectedValue": ("expected value", "valeur attendue"),
    "as:formerType": ("was a", "était"),
    "as:deleted": ("deleted", "supprimé le"),
    # Classes the mapping types resources and their # nodes with (shown as tags on pages).
    "sioc:Post": ("post", "contribution"),
    "sioc:UserAccount": ("participant account", "compte de participant"),
    "schema:Comment": ("comment", "commentaire"),
    "schema:Event": ("event", "événement"),
    "schema:Place": ("place", "lieu"),
    "schema:VirtualLocation": ("online place", "lieu en ligne"),
    "schema:MonetaryAmount": ("amount of money", "montant"),
    "schema:InteractionCounter": ("counter", "compteur"),
    "org:Organization": ("organization", "organisation"),
    "m8g:PublicOrganisation": ("public organisation", "organisme public"),
    "m8g:Criterion": ("criterion", "critère"),
    "m8g:Constraint": ("constraint", "contrainte"),
    "m8g:InformationConcept": ("information concept", "concept d'information"),
    "adms:Identifier": ("identifier", "identifiant"),
    "prov:Activity": ("activity", "activité"),
    "prov:Entity": ("entity", "entité"),
    "dct:Location": ("location", "lieu"),
    "geo:Feature": ("geographic feature", "entité géographique"),
    "sf:Point": ("point", "point"),
    "locn:Address": ("address", "adresse"),
    "qb:Observation": ("observation", "observation"),
    "as:Tombstone": ("deleted resource", "ressource supprimée"),
    # Values of schema.org the mapping uses (counted interactions, attendance modes).
    "schema:VoteAction": ("votes", "votes"),
    "schema:CommentAction": ("comments", "commentaires"),
    "schema:JoinAction": ("attendees", "participants"),
    "schema:OfflineEventAttendanceMode": ("in person", "en présence"),
    "schema:OnlineEventAttendanceMode": ("online", "en ligne"),
    "schema:MixedEventAttendanceMode": ("hybrid", "hybride"),
}


@functools.cache
def _labels() -> dict[str, dict[str, str]]:
    from pyoxigraph import RdfFormat, parse

    out: dict[str, dict[str, str]] = {}
    for path in (ONTOLOGY_FILE, SCHEMES_FILE):
        for t in parse(path=str(path), format=RdfFormat.TURTLE):
            if t.predicate.value in (RDFS.label, SKOS.prefLabel):
                out.setdefault(t.subject.value, {})[t.object.language or "en"] = t.object.value
    for short, (en, fr) in SHARED.items():
        prefix, local = short.split(":", 1)
        out.setdefault(PREFIXES[prefix] + local, {}).update({"en": en, "fr": fr})
    return out


def display(iri: str, lang: str = "en") -> str:
    """What a page shows for a term: its label, else its compact IRI."""
    return label(iri, lang) or compact_iri(iri)


def label(iri: str, lang: str = "en") -> str | None:
    """The label of a term or concept in ``lang`` (English as a fallback), or None."""
    found = _labels().get(iri)
    if not found:
        return None
    return found.get(lang) or found.get("en") or next(iter(found.values()))
