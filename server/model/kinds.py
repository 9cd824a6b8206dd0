"""The kinds of participation records: each binds its JSON schema to its RDF mapping.

This table is the data model. ``docs/data-model.md`` describes it for people; the SHACL shapes
in ``vocabularies/shapes.ttl`` describe the RDF it produces, and a test holds both to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema

from vocabularies import (
    ADMS,
    CF,
    DCT,
    FOAF,
    GEO,
    INSEE_COMMUNE,
    M8G,
    NUTS,
    ORG,
    PROV,
    QB,
    RDF,
    SDMXD,
    SDO,
    SIOC,
    SKOS,
    WIKIDATA,
    indicators,
)
from vocabularies.licences import LICENCES

from . import schemas as s
from .rdf import (
    Account,
    Address,
    Area,
    Concept,
    Counter,
    Ctx,
    Field,
    Link,
    Mapping,
    Matched,
    Node,
    NodeList,
    Period,
    Point,
    Ref,
    Target,
    Text,
    Value,
    Wrapped,
    money,
)
from .terms import format_datetime, literal, plain_decimal


@dataclass(frozen=True)
class Tally:
    """A count a record publishes that this server maintains (a proposal's votes and comments).

    The published value is the number of live records of kind ``member`` whose field ``link``
    names the record; while there is none, the figure the record's own platform sent (kept in
    the record's index entry under the ``reported`` predicate, apart from the published one).
    """

    field: str
    member: str
    link: str
    reported: str
    #: At most one member per participant, and what a second one would do ("voted for"): one
    #: vote per voter per proposal.
    one_per_participant: str | None = None


@dataclass
class Kind:
    """One kind of record: names, schema, mapping, and how lists of it can be filtered."""

    name: str
    plural: str
    label: str
    schema: type[Schema]
    mapping: Mapping
    #: Stored in the territory's private graph and never published (only counts are).
    private: bool = False
    #: Predicates searched by the ``q`` text filter.
    text_predicates: tuple[str, ...] = ()
    #: Identity fields pseudonymised before storage: input field → stored pseudonym field.
    identities: dict[str, str] = field(default_factory=dict)
    #: Counts this kind publishes that the server maintains from other records.
    tallies: tuple[Tally, ...] = ()
    filters: dict[str, Field] = field(init=False)

    def __post_init__(self) -> None:
        self.filters = {f.filter_param: f for f in self.mapping.fields if f.filter_param}

    @functools.cached_property
    def loader(self) -> Schema:
        """A shared schema instance: building one per record costs more than loading with it."""
        return self.schema()

    @property
    def geolocated(self) -> bool:
        return "location" in self.mapping.by_name

    @property
    def mappable(self) -> bool:
        """Records of this kind can be drawn on a map: a point, or a boundary (a GeoJSON dump)."""
        return self.geolocated or "geometry" in self.mapping.by_name

    @property
    def participant(self) -> Account | None:
        """The field naming the participant who made the record (author, voter), if any."""
        return next((f for f in self.mapping.fields if isinstance(f, Account)), None)


def _fields(*specific: Field) -> tuple[Field, ...]:
    """A kind's fields: its own, framed by those every record has (JSON field order follows)."""
    return (
        Value("id", DCT.identifier),
        *specific,
        Link("url", SDO.url),
        Value("created", DCT.created, "datetime"),
        Value("modified", DCT.modified, "datetime"),
    )


def _language() -> Field:
    return Value("language", DCT.language)


def _themes(name: str = "themes", predicate: str = DCT.subject, param: str | None = "theme") -> Concept:
    return Concept(name, predicate, "themes", many=True, filter_param=param)


def _process() -> Ref:
    return Ref("process", DCT.isPartOf, "process", filter_param="process")


# -- extras: derived triples for consumers, never read back ----------------------------------


def _account_extras(field_name: str) -> Callable[[str, dict[str, Any], Ctx, list[str]], None]:
    """Declare the pseudonymous account as a ``sioc:UserAccount`` (its only published triple)."""

    def extras(subject: str, data: dict[str, Any], ctx: Ctx, out: list[str]) -> None:
        pseudonym = data.get(field_name)
        if pseudonym:
            out.append(f"<{ctx.urls.account(ctx.territory, pseudonym)}> <{RDF.type}> <{SIOC.UserAccount}>")

    return extras


def _territory_extras(subject: str, data: dict[str, Any], ctx: Ctx, out: list[str]) -> None:
    if data.get("insee_cog"):
        out.append(f"<{subject}> <{SKOS.exactMatch}> <{INSEE_COMMUNE[data['insee_cog']]}>")
    if data.get("nuts"):
        out.append(f"<{subject}> <{GEO.sfWithin}> <{NUTS[data['nuts']]}>")
    _population_extras(subject, data, out)


def _population_extras(subject: str, data: dict[str, Any], out: list[str]) -> None:
    """The population observation's reference area is the place that has it (a territory, a district)."""
    if data.get("population"):
        out.append(f"<{subject}#population> <{SDMXD.refArea}> <{subject}>")


def _district_extras(subject: str, data: dict[str, Any], ctx: Ctx, out: list[str]) -> None:
    """Where a district's code is an authority's identifier, the authority's IRI of the same place."""
    code_list, level = data.get("code_list"), data.get("level")
    if code_list == "insee-cog" and level == "commune":
        out.append(f"<{subject}> <{SKOS.exactMatch}> <{INSEE_COMMUNE[data['id']]}>")
    elif code_list == "nuts":
        out.append(f"<{subject}> <{SKOS.exactMatch}> <{NUTS[data['id']]}>")
    _population_extras(subject, data, out)


def _organization_extras(subject: str, data: dict[str, Any], ctx: Ctx, out: list[str]) -> None:
    if data.get("type") == "public_body":
        out.append(f"<{subject}> <{RDF.type}> <{M8G.PublicOrganisation}>")
    if data.get("siren"):
        out.append(f"<{subject}#siren> <{ADMS.schemaAgency}> {literal('INSEE (Sirene)')}")


def _rule_extras(subject: str, data: dict[str, Any], ctx: Ctx, out: list[str]) -> None:
    """The rule as EU CCCEV: one m8g:Constraint per condition, constraining an information
    concept of this rule that carries the expected value in words (CCCEV puts
    ``expressionOfExpectedValue`` on the InformationConcept) and is typed by civicfed's generic
    concept (support count, theme, estimated cost, submission date)."""

    def constraint(name: str, generic: str, expected: str) -> None:
        node, concept = f"{subject}#constraint-{name}", f"{subject}#concept-{name}"
        out.extend(
            [
                f"<{subject}> <{M8G.hasRequirement}> <{node}>",
                f"<{node}> <{RDF.type}> <{M8G.Constraint}>",
                f"<{node}> <{M8G.constrains}> <{concept}>",
                f"<{concept}> <{RDF.type}> <{M8G.InformationConcept}>",
                f"<{concept}> <{DCT.type}> <{generic}>",
                f"<{concept}> <{M8G.expressionOfExpectedValue}> {literal(expected)}",
            ]
        )

    if data.get("min_votes") is not None:
        closes = f" by {format_datetime(data['votes_deadline'])}" if data.get("votes_deadline") else ""
        constraint("min-votes", CF["concept-support-count"], f">= {data['min_votes']}{closes}")
    if data.get("allowed_themes"):
        constraint("themes", CF["concept-theme"], "one of: " + ", ".join(sorted(data["allowed_themes"])))
    if data.get("max_budget"):
        cap = data["max_budget"]
        expected = f"<= {plain_decimal(cap['amount'])} {cap.get('currency', 'EUR')}"
        constraint("max-budget", CF["concept-estimated-cost"], expected)
    if data.get("deadline"):
        constraint("deadline", CF["concept-submission-date"], f"<= {format_datetime(data['deadline'])}")
    if data.get("within"):
        constraint("within", CF["concept-location"], f"in district {data['within']}")


def _population_node() -> Node:
    return Node(
        "population",
        CF.population,
        "population",
        (QB.Observation,),
        (
            Value("value", CF.inhabitants, "integer"),
            Value("year", SDMXD.refPeriod, "gyear"),
            Text("source", DCT.bibliographicCitation, localized=False),
            Link("source_url", PROV.wasDerivedFrom),
        ),
    )


def _targets() -> NodeList:
    """Targets on indicators: the #target-1, #target-2… nodes (docs/indicators.md#targets)."""
    return NodeList(
        "targets",
        CF.hasTarget,
        "target",
        (CF.Target,),
        (
            Concept("indicator", CF.targetIndicator, "indicators", iris={c: i.iri for c, i in indicators().items()}),
            Period("period", CF.targetPeriod),
            Value("value", CF.targetValue, "decimal"),
            Concept("per", CF.targetPer, "per", iris={"1000inhabitants": CF.perThousandInhabitants}),
            Concept("direction", CF.targetDirection, "directions", iris={"at_least": CF.atLeast, "at_most": CF.atMost}),
            Text("title", DCT.title),
        ),
    )


TERRITORY = Kind(
    "territory",
    "territories",
    "Territory",
    s.TerritorySchema,
    Mapping(
        (CF.Territory, DCT.Location, GEO.Feature),
        _fields(
            Text("name", SKOS.prefLabel, localized=False),
            Value("country", SDO.addressCountry),
            Value("insee_cog", CF.inseeCode),
            Value("lau", CF.lauCode),
            Value("nuts", CF.nutsCode),
            Matched("wikidata", SKOS.exactMatch, str(WIKIDATA)),
            _population_node(),
            Point(),
            _language(),
            Concept("license", DCT.license, "licences", iris={code: lic.iri for code, lic in LICENCES.items()}),
            Value("contact_email", SDO.email),
            _targets(),
        ),
        extras=_territory_extras,
    ),
    text_predicates=(SKOS.prefLabel,),
)


# A district is typed like the territory (dct:Location: the range of dct:spatial, by which located
# records name it; geo:Feature: the domain of geo:hasGeometry) rather than schema:AdministrativeArea:
# IRIS and quartiers are statistical or local divisions, not administrations, and the schema.org
# class would pull in Place properties nothing here uses.
DISTRICT = Kind(
    "district",
    "districts",
    "District",
    s.DistrictSchema,
    Mapping(
        (CF.District, DCT.Location, GEO.Feature),
        _fields(
            Text("name", SKOS.prefLabel, localized=False),
            Concept("level", DCT.type, "district-levels", filter_param="level"),
            Concept("code_list", CF.codeList, "code-lists"),
            # GeoSPARQL's containment between features: the arrondissement's commune…
            Ref("parent", GEO.sfWithin, "district", filter_param="parent"),
            Area(),
            _population_node(),
        ),
        extras=_district_extras,
    ),
    text_predicates=(SKOS.prefLabel,),
)


def _district() -> Ref:
    """The district a located record lies in: dct:spatial, whose range (dct:Location) a district
    is; schema:containedInPlace would make proposals and projects schema:Places."""
    return Ref("district", DCT.spatial, "district", filter_param="district")


PROCESS = Kind(
    "process",
    "processes",
    "Participatory process",
    s.ProcessSchema,
    Mapping(
        (CF.ParticipatoryProcess, PROV.Activity),
        _fields(
            Text("title", DCT.title),
            Text("description", DCT.description),
            Concept("type", DCT.type, "process-types", filter_param="type"),
            Concept("status", ADMS.status, "process-statuses", filter_param="status"),
            Value("start_date", SDO.startDate, "date"),
            Value("end_date", SDO.endDate, "date"),
            _themes(),
            Ref("organizer", SDO.organizer, "organization", filter_param="organizer"),
            NodeList(
                "phases",
                DCT.hasPart,
                "phase",
                (CF.Phase, PROV.Activity),
                (
                    Text("title", DCT.title),
                    Value("start_date", SDO.startDate, "date"),
                    Value("end_date", SDO.endDate, "date"),
                ),
            ),
            _targets(),
            _language(),
        ),
    ),
    text_predicates=(DCT.title, DCT.description),
)

PROPOSAL = Kind(
    "proposal",
    "proposals",
    "Proposal",
    s.ProposalSchema,
    Mapping(
        (CF.Proposal, SIOC.Post),
        _fields(
            _process(),
            Text("title", DCT.title),
            Text("body", SIOC.content),
            _themes(),
            Concept("status", ADMS.status, "proposal-statuses", filter_param="status"),
            Point(),
            Address(),
            _district(),
            Account("author_id", SIOC.has_creator),
            Ref("handled_by", CF.handledBy, "organization", filter_param="handled_by"),
            Value("answered_at", CF.answeredAt, "datetime"),
            money("estimated_cost", CF.estimatedCost, "estimated-cost"),
            Counter("vote_count", "votes", SDO.VoteAction),
            Counter("comment_count", "comments", SDO.CommentAction),
            _language(),
        ),
        extras=_account_extras("author_id"),
    ),
    text_predicates=(DCT.title, SIOC.content),
    identities={"author": "author_id"},
    tallies=(
        Tally("vote_count", "vote", "proposal", CF.reportedVoteCount, one_per_participant="voted for"),
        Tally("comment_count", "comment", "about", CF.reportedCommentCount),
    ),
)

VOTE = Kind(
    "vote",
    "votes",
    "Vote",
    s.VoteSchema,
    Mapping(
        (CF.Vote, SDO.VoteAction),
        _fields(
            Ref("proposal", SDO.object, "proposal", filter_param="proposal"),
            Account("voter_id", SDO.agent),
        ),
    ),
    private=True,
    identities={"voter": "voter_id"},
)

COMMENT = Kind(
    "comment",
    "comments",
    "Comment",
    s.CommentSchema,
    Mapping(
        (SDO.Comment, SIOC.Post),
        _fields(
            Target("about", SDO.about, filter_param="about", kinds=s.COMMENT_TARGETS),
            Ref("reply_to", SIOC.reply_of, "comment", filter_param="reply_to"),
            Text("body", SIOC.content),
            Account("author_id", SIOC.has_creator),
            Value("alignment", CF.alignment, "integer"),
            _language(),
        ),
        extras=_account_extras("author_id"),
    ),
    text_predicates=(SIOC.content,),
    identities={"author": "author_id"},
)

MEETING = Kind(
    "meeting",
    "meetings",
    "Meeting",
    s.MeetingSchema,
    Mapping(
        (CF.Meeting, SDO.Event),
        _fields(
            _process(),
            Text("title", SDO.name),
            Text("description", SDO.description),
            Value("start", SDO.startDate, "datetime"),
            Value("end", SDO.endDate, "datetime"),
            Concept(
                "mode",
                SDO.eventAttendanceMode,
                "meeting-modes",
                iris={
                    "in_person": SDO.OfflineEventAttendanceMode,
                    "online": SDO.OnlineEventAttendanceMode,
                    "hybrid": SDO.MixedEventAttendanceMode,
                },
                filter_param="mode",
            ),
            Wrapped("place_name", SDO.location, "place", (SDO.Place,), Text("place_name", SDO.name, localized=False)),
            Address(),
            Point(),
            _district(),
            Wrapped("online_url", SDO.location, "online", (SDO.VirtualLocation,), Link("online_url", SDO.url)),
            Counter("attendees_count", "attendees", SDO.JoinAction),
            Value("capacity", SDO.maximumAttendeeCapacity, "integer"),
            Ref("organizer", SDO.organizer, "organization", filter_param="organizer"),
            _themes(),
            Ref("proposals", DCT.relation, "proposal", many=True, filter_param="proposal"),
            _language(),
        ),
    ),
    text_predicates=(SDO.name, SDO.description),
)

BUDGET = Kind(
    "budget",
    "budgets",
    "Budget",
    s.BudgetSchema,
    Mapping(
        (CF.Budget, PROV.Entity),
        _fields(
            _process(),
            Text("title", DCT.title),
            Text("description", DCT.description),
            money("amount", CF.totalAmount, "amount"),
            Value("fiscal_year", CF.fiscalYear, "gyear"),
            _themes(),
        ),
    ),
    text_predicates=(DCT.title, DCT.description),
)

PROJECT = Kind(
    "project",
    "projects",
    "Project",
    s.ProjectSchema,
    Mapping(
        (CF.Project, PROV.Entity),
        _fields(
            _process(),
            Ref("budget", DCT.isPartOf, "budget", filter_param="budget"),
            Text("title", DCT.title),
            Text("description", DCT.description),
            Concept("status", ADMS.status, "project-statuses", filter_param="status"),
            money("cost", CF.cost, "cost"),
            Value("selected", CF.selected, "boolean"),
            Value("progress", CF.progress, "decimal"),
            Value("start_date", SDO.startDate, "date"),
            Value("end_date", SDO.endDate, "date"),
            NodeList(
                "milestones",
                CF.hasMilestone,
                "milestone",
                (CF.Milestone,),
                (Value("date", DCT.date, "date"), Text("title", DCT.title), Text("description", DCT.description)),
            ),
            Ref("proposals", PROV.wasDerivedFrom, "proposal", many=True, filter_param="proposal"),
            Ref("implemented_by", CF.implementedBy, "organization", filter_param="implemented_by"),
            Point(),
            Address(),
            _district(),
            _themes(),
            _targets(),
        ),
    ),
    text_predicates=(DCT.title, DCT.description),
)

ORGANIZATION = Kind(
    "organization",
    "organizations",
    "Organization",
    s.OrganizationSchema,
    Mapping(
        (ORG.Organization,),
        _fields(
            Text("name", SKOS.prefLabel, localized=False),
            Text("description", DCT.description),
            Concept("type", DCT.type, "organization-types", filter_param="type"),
            _themes("competences", ORG.purpose, "competence"),
            Ref("parent", ORG.subOrganizationOf, "organization", filter_param="parent"),
            Link("homepage", FOAF.homepage),
            Wrapped("siren", ADMS.identifier, "siren", (ADMS.Identifier,), Value("siren", SKOS.notation)),
        ),
        extras=_organization_extras,
    ),
    text_predicates=(SKOS.prefLabel, DCT.description),
)

RULE = Kind(
    "rule",
    "rules",
    "Receivability rule",
    s.RuleSchema,
    Mapping(
        (CF.ReceivabilityRule, M8G.Criterion),
        _fields(
            _process(),
            Text("title", DCT.title),
            Text("description", DCT.description),
            Value("min_votes", CF.minimumVotes, "integer"),
            _themes("allowed_themes", CF.allowedTheme, None),
            money("max_budget", CF.maximumBudget, "max-budget"),
            Value("deadline", CF.deadline, "datetime"),
            Value("votes_deadline", CF.votesDeadline, "datetime"),
            Ref("within", CF.withinDistrict, "district", filter_param="within"),
        ),
        extras=_rule_extras,
    ),
    text_predicates=(DCT.title, DCT.description),
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (TERRITORY, DISTRICT, PROCESS, PROPOSAL, VOTE, COMMENT, MEETING, BUDGET, PROJECT, ORGANIZATION, RULE)
}
BY_PLURAL: dict[str, Kind] = {k.plural: k for k in KINDS.values()}
#: Kinds a territory holds records of (everything but the territory itself).
RECORD_KINDS: tuple[Kind, ...] = tuple(k for k in KINDS.values() if k.name != "territory")


def links(kind: Kind) -> set[str]:
    """The kinds a record of ``kind`` may link to (its references, checked when written)."""
    out: set[str] = set()
    for f in kind.mapping.fields:
        if isinstance(f, Ref):
            out.add(f.kind)
        elif isinstance(f, Target):
            out.update(f.kinds)
    return out - {kind.name}


def load_order(kinds: tuple[Kind, ...] = RECORD_KINDS) -> list[Kind]:
    """The kinds in an order where every record's links point to kinds that come before (for
    exports that are loaded again in pieces); ties keep the model's order."""
    pending = list(kinds)
    names = {k.name for k in kinds}
    done: list[Kind] = []
    while pending:
        ready = next(k for k in pending if links(k) & names <= {d.name for d in done})
        done.append(ready)
        pending.remove(ready)
    return done


def kind_named(name: str) -> Kind | None:
    """Look a kind up by singular or plural name."""
    return KINDS.get(name) or BY_PLURAL.get(name)
