"""A territory's receivability decisions as data (docs/rules.md): which proposals a write may
decide anew, their rules evaluated (records/receivability.py decides), and the decisions in the
public graph ``{base}/graph/receivability/{t}``.

Each decision is a node of its proposal's document (``{base}/receivability/{t}/{p}#{µs}``, the
time of the write that made it): a ``cf:ReceivabilityDecision`` and EU CCCEV ``m8g:Evidence``,
with one ``m8g:SupportedValue`` per condition of each rule. A new node is made only when the
status or a condition's outcome or expectation changes; it replaces the current one
(``prov:wasRevisionOf``), which stays: the history is the chain. ``<p> cf:receivability <d>``
names the current one. The decisions are written in the same changeset as the write that moves
them, so a proposal and its decision never disagree in the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyoxigraph import Triple

from vocabularies import CF, DCT, M8G, PROV, RDF, XSD, concept_code, concept_iri

from ..model.kinds import KINDS
from ..model.terms import format_datetime, literal, typed
from ..store import Changeset
from .batch import Batch
from .clock import micros
from .counts import Counts
from .read import Reader
from .receivability import MET, PENDING, UNMET, Decision, Facts, decide, moment
from .tables import districts

CHUNK = 500
PROPOSAL, RULE, VOTE, DISTRICT = (KINDS[k] for k in ("proposal", "rule", "vote", "district"))
_REQUIREMENT = {MET: M8G.supportsRequirement, UNMET: CF.unmetRequirement, PENDING: CF.pendingRequirement}


@dataclass
class Current:
    """A proposal's current decision as stored: its node and what makes it the same decision."""

    iri: str
    status: str
    conditions: dict[tuple[str, str], tuple[str, str, str]] = field(
        default_factory=dict
    )  # (rule, name) → (outcome, expected, value)

    @property
    def key(self) -> tuple[str, frozenset[tuple[str, str, str, str]]]:
        return (self.status, frozenset((r, n, o, e) for (r, n), (o, e, _) in self.conditions.items()))


class Decider:
    """The decisions one write (or a sweep, with no batch) makes in a territory. ``counts`` are
    the supports the write leaves (records/counts.py), ``now`` the time rules are judged at."""

    def __init__(self, reader: Reader, territory: str, batch: Batch | None, counts: Counts, now: dt.datetime) -> None:
        self.reader, self.urls, self.territory = reader, reader.urls, territory
        self.batch = batch if batch is not None else Batch()
        self.counts, self.now = counts, now
        self.graph = self.urls.receivability_graph(territory)
        self._districts: dict[str, dict[str, Any] | None] = {}
        self._parents: dict[str, str | None] | None = None
        self._live: list[str] = []
        self._entries: dict[str, Any] = {}
        self._by_deadline: dict[dt.datetime, dict[str, tuple[int, int]]] = {}
        #: Per proposal IRI, its decision's status before the write and after it (absent: none);
        #: and the live proposals whose status the write changes, with their data.
        self.before: dict[str, str] = {}
        self.after: dict[str, str] = {}
        self.moved: dict[str, dict[str, Any]] = {}

    # -- what to decide ----------------------------------------------------------------------
    def ruled_processes(self) -> set[str]:
        """Processes (local ids) that have a live rule, stored or in the write."""
        rows = self.reader.store.select(
            f"SELECT DISTINCT ?proc WHERE {{ GRAPH <{self.urls.territory_graph(self.territory)}> {{ "
            f"?r a <{RULE.mapping.types[0]}> ; <{DCT.isPartOf}> ?proc }} }}"
        )
        found = {ref.local_id for r in rows if (ref := self.urls.parse(r["proc"].value)) and ref.local_id}
        for iri, kind in self.batch.kinds.items():
            if kind is RULE:
                for data in (self.batch.old_data.get(iri), self.batch.final.get(iri)):
                    if data:
                        found.add(data["process"])
        return found

    def scope(self) -> set[str]:
        """The proposals (IRIs) the write may decide anew: those it writes or whose supports it
        moves, every proposal of a process whose rules it writes, and, when it writes a district,
        every proposal of a process with a rule on a district."""
        b = self.batch
        out = {i for i, k in b.kinds.items() if k is PROPOSAL}
        out |= {p for p in self.counts if (ref := self.urls.parse(p)) and ref.kind == "proposal"}
        processes: set[str] = set()
        for iri, kind in b.kinds.items():
            if kind is RULE:
                processes |= {d["process"] for d in (b.old_data.get(iri), b.final.get(iri)) if d}
        if any(k is DISTRICT for k in b.kinds.values()):
            # Any district: a boundary, or a parent at any depth of the one a rule names.
            rows = self.reader.store.select(
                f"SELECT DISTINCT ?proc WHERE {{ GRAPH <{self.urls.territory_graph(self.territory)}> {{ "
                f"?r <{CF.withinDistrict}> ?d ; <{DCT.isPartOf}> ?proc }} }}"
            )
            processes |= {ref.local_id for r in rows if (ref := self.urls.parse(r["proc"].value)) and ref.local_id}
        return out | self.proposals_of(processes)

    def proposals_of(self, processes: Iterable[str]) -> set[str]:
        """The live proposals of these processes, stored or in the write."""
        wanted = sorted(set(processes))
        out: set[str] = set()
        graph = self.urls.territory_graph(self.territory)
        for i in range(0, len(wanted), CHUNK):
            values = " ".join(f"<{self.urls.resource(self.territory, 'process', p)}>" for p in wanted[i : i + CHUNK])
            rows = self.reader.store.select(
                f"SELECT ?x WHERE {{ GRAPH <{graph}> {{ VALUES ?proc {{ {values} }} "
                f"?x <{DCT.isPartOf}> ?proc ; a <{PROPOSAL.mapping.types[0]}> }} }}"
            )
            out |= {r["x"].value for r in rows}
        out |= {
            i
            for i, d in self.batch.final.items()
            if d and self.batch.kinds[i] is PROPOSAL and d.get("process") in wanted
        }
        return out

    # -- deciding ----------------------------------------------------------------------------
    def prepare(self, proposals: set[str]) -> DecisionStamp | None:
        """What the write changes in these proposals' decisions, emitted at commit with its time."""
        if not proposals:
            return None
        b = self.batch
        deleted = sorted(p for p in proposals if p in b.final and b.final[p] is None)
        erased = self._decision_nodes(deleted) if deleted else {}
        decided: dict[str, tuple[Decision, Current | None]] = {}
        dropped: dict[str, str] = {}  # proposal → its current decision, which no rule upholds any more
        ruled = self.ruled_processes()
        if ruled:  # else no proposal has a current decision (a rule's deletion drops them)
            data = self._proposals(sorted(proposals.difference(deleted)))
            live = {p: d for p, d in data.items() if d is not None and d.get("process") in ruled}
            # A proposal moved out of every ruled process keeps no current decision.
            unruled = [p for p, d in data.items() if d is not None and d.get("process") not in ruled]
            current = current_decisions(self.reader, self.territory, [*deleted, *live, *unruled])
            dropped = {p: current[p].iri for p in unruled if p in current}
            self.before = {p: c.status for p, c in current.items()}
            self.after = {p: c.status for p, c in current.items() if p not in deleted and p not in dropped}
            rules = self._rules({d["process"] for d in live.values()})
            self._live = sorted(live)
            undated = [p for p, d in live.items() if not d.get("created") and p not in b.index]
            self._entries = self.reader.index_entries(self.territory, PROPOSAL, undated) if undated else {}
            for p, d in live.items():
                before = current.get(p)
                decision = decide(d, rules.get(d["process"], []), self._facts(p, d, before))
                if decision is None:
                    if before is not None:
                        dropped[p] = before.iri
                        self.after.pop(p, None)
                elif before is None or before.key != decision.key:
                    decided[p] = (decision, before)
                    self.after[p] = decision.status
            # The proposals whose decision moves (their indicators with it), as the write leaves them.
            self.moved = {p: d for p, d in data.items() if d is not None and self.before.get(p) != self.after.get(p)}
        if not decided and not dropped and not erased:
            return None
        return DecisionStamp(self, decided, dropped, erased)

    def _facts(self, iri: str, data: dict[str, Any], before: Current | None) -> Facts:
        counted = self.counts.get(iri, {})
        supports = int((counted["vote_count"] if "vote_count" in counted else data.get("vote_count")) or 0)
        submitted = moment(data.get("created"))
        if submitted is None and before is not None:  # as the first decision knew it
            known = next((v for (_, n), (_, _, v) in before.conditions.items() if n == "deadline" and v), None)
            submitted = moment(known) if known else None
        if submitted is None:  # when this server first had it: now for a new one
            entry = self.batch.index.get(iri) or self._entries.get(iri)
            # (A record stored before the server kept that time: its last change, a bound.)
            submitted = self.now if entry is None or entry.deleted else entry.created or entry.modified
        return Facts(
            now=self.now,
            supports=supports,
            supports_by=lambda deadline: self._supports_by(iri, supports, deadline),
            submitted=submitted,
            district_area=lambda d: (self._district(d) or {}).get("geometry"),
            within=self._within,
        )

    def _supports_by(self, proposal: str, reported: int, deadline: dt.datetime) -> int:
        """The proposal's individual votes given by ``deadline`` (their ``created``, else when
        this server first recorded them); with none recorded at all, the count its platform
        reported."""
        if deadline not in self._by_deadline:
            self._by_deadline[deadline] = self._votes_by(deadline)
        given, total = self._by_deadline[deadline].get(proposal, (0, 0))
        return given if total else reported

    def _votes_by(self, deadline: dt.datetime) -> dict[str, tuple[int, int]]:
        """Per live proposal, (votes given by ``deadline``, votes) as the write leaves them:
        counted by the store (an aggregate: a SPARQL server may cut long answers), then the
        write's votes taken from their stored state to their new one."""
        b = self.batch
        graph, index = self.urls.private_graph(self.territory), self.urls.index_graph(self.territory, "vote")
        on, by = VOTE.mapping.by_name["proposal"].predicate, typed(format_datetime(deadline), XSD.dateTime)
        counts: dict[str, list[int]] = {}
        for i in range(0, len(self._live), CHUNK):
            values = " ".join(f"<{p}>" for p in self._live[i : i + CHUNK])
            rows = self.reader.store.select(
                f"SELECT ?p (SUM(IF(COALESCE(?c, ?f, ?m) <= {by}, 1, 0)) AS ?given) (COUNT(?v) AS ?n) WHERE {{ "
                f"GRAPH <{graph}> {{ VALUES ?p {{ {values} }} ?v <{on}> ?p ; a <{VOTE.mapping.types[0]}> "
                f"OPTIONAL {{ ?v <{DCT.created}> ?c }} }} GRAPH <{index}> {{ ?v <{CF.recordModified}> ?m "
                f"OPTIONAL {{ ?v <{CF.recordCreated}> ?f }} }} }} GROUP BY ?p"
            )
            counts.update((r["p"].value, [int(r["given"].value), int(r["n"].value)]) for r in rows)

        def move(vote: dict[str, Any] | None, when: dt.datetime | None, sign: int) -> None:
            if vote is not None:
                counted = counts.setdefault(self.urls.resource(self.territory, "proposal", vote["proposal"]), [0, 0])
                counted[0] += sign * (when is not None and when <= deadline)
                counted[1] += sign

        for iri, kind in b.kinds.items():
            if kind is VOTE:
                entry = b.index.get(iri)
                stored = b.old_data.get(iri)
                first = entry.created or entry.modified if entry is not None and not entry.deleted else None
                move(stored, moment(stored.get("created")) or first if stored else None, -1)
                new = b.final.get(iri, stored)
                move(new, (moment(new.get("created")) or first or self.now) if new else None, 1)
        return {p: (given, n) for p, (given, n) in counts.items()}

    def _within(self, district: str, area: str) -> bool:
        """Whether ``district`` is ``area`` or lies in it, at any depth (every district's parent
        read in one query, as the write leaves them)."""
        if self._parents is None:
            found = districts(self.reader.store, self.urls, self.territory, self.urls)
            self._parents = {d.id: d.parent for d in found}
            for iri, kind in self.batch.kinds.items():
                if kind is DISTRICT:
                    data = self.batch.final.get(iri, self.batch.old_data.get(iri))
                    self._parents[iri.rsplit("/", 1)[-1]] = data.get("parent") if data else None
        seen: set[str] = set()
        current: str | None = district
        while current and current not in seen:
            if current == area:
                return True
            seen.add(current)
            current = self._parents.get(current)
        return False

    def _district(self, local_id: str) -> dict[str, Any] | None:
        """A district's record as the write leaves it (for its boundary)."""
        if local_id not in self._districts:
            iri = self.urls.resource(self.territory, "district", local_id)
            if iri in self.batch.kinds:
                self._districts[local_id] = self.batch.final.get(iri, self.batch.old_data.get(iri))
            else:
                self._districts[local_id] = self._load(DISTRICT, [iri]).get(iri)
        return self._districts[local_id]

    # -- reading -----------------------------------------------------------------------------
    def _proposals(self, iris: list[str]) -> dict[str, dict[str, Any] | None]:
        b = self.batch
        out = {i: (b.final[i] if i in b.final else b.old_data.get(i)) for i in iris if i in b.kinds}
        out.update(self._load(PROPOSAL, [i for i in iris if i not in b.kinds]))
        for i, d in out.items():
            if d is not None and "id" not in d:
                out[i] = {**d, "id": i.rsplit("/", 1)[-1]}
        return out

    def _rules(self, processes: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The live rules of these processes, as the write leaves them."""
        if not processes:
            return {}
        b = self.batch
        graph = self.urls.territory_graph(self.territory)
        values = " ".join(f"<{self.urls.resource(self.territory, 'process', p)}>" for p in sorted(processes))
        rows = self.reader.store.select(
            f"SELECT ?r WHERE {{ GRAPH <{graph}> {{ VALUES ?proc {{ {values} }} "
            f"?r <{DCT.isPartOf}> ?proc ; a <{RULE.mapping.types[0]}> }} }}"
        )
        found = self._load(RULE, sorted({r["r"].value for r in rows} - b.kinds.keys()))
        found.update({i: b.final.get(i, b.old_data.get(i)) for i, k in b.kinds.items() if k is RULE})
        out: dict[str, list[dict[str, Any]]] = {}
        for iri, data in found.items():
            if data is not None and data.get("process") in processes:
                out.setdefault(data["process"], []).append({**data, "id": iri.rsplit("/", 1)[-1]})
        return out

    def _load(self, kind: Any, iris: list[str]) -> dict[str, dict[str, Any] | None]:
        return self.reader.load(self.territory, kind, iris, CHUNK)

    def _decision_nodes(self, proposals: list[str]) -> dict[str, list[str]]:
        """Every decision node (and value node) of these proposals: what their deletion erases."""
        out: dict[str, list[str]] = {}
        for i in range(0, len(proposals), CHUNK):
            values = " ".join(f"<{p}>" for p in proposals[i : i + CHUNK])
            rows = self.reader.store.select(
                f"SELECT ?p ?d ?v WHERE {{ GRAPH <{self.graph}> {{ VALUES ?p {{ {values} }} "
                f"?d <{CF.decisionOn}> ?p OPTIONAL {{ ?d <{M8G.supportsValue}> ?v }} }} }}"
            )
            for r in rows:
                nodes = out.setdefault(r["p"].value, [])
                nodes += [r["d"].value] + ([r["v"].value] if r["v"] is not None else [])
        return out


class DecisionStamp:
    """The decisions of one write, given their time at commit (like a record's index entry)."""

    def __init__(
        self,
        decider: Decider,
        decided: dict[str, tuple[Decision, Current | None]],
        dropped: dict[str, str],
        erased: dict[str, list[str]],
    ) -> None:
        self.decider, self.decided, self.dropped, self.erased = decider, decided, dropped, erased

    def __len__(self) -> int:
        return len(self.decided) + len(self.dropped) + len(self.erased)

    def emit(self, cs: Changeset, writer: Any, territory: str, now: dt.datetime) -> None:
        self.into(cs, now)

    def into(self, cs: Changeset, now: dt.datetime) -> None:
        d = self.decider
        urls, graph = d.urls, d.graph
        # A decision replaced, or no longer upheld by any rule, says until when it stood.
        ended = typed(format_datetime(now), XSD.dateTime)
        for p, last in self.dropped.items():
            cs.drop(graph, p)
            cs.add(graph, [f"<{last}> <{PROV.invalidatedAtTime}> {ended}"])
        for p, nodes in self.erased.items():
            cs.drop(graph, p)
            for node in nodes:
                cs.drop(graph, node)
        for p, (decision, before) in self.decided.items():
            local = p.rsplit("/", 1)[-1]
            node = f"{urls.receivability_document(d.territory, local)}#{micros(now)}"
            if before is not None:  # (a first decision drops nothing: an ingest stays a pure load)
                cs.drop(graph, p)
            cs.add(graph, [f"<{p}> <{CF.receivability}> <{node}>"])
            cs.add(graph, decision_triples(d, node, p, decision, before, now))
            if before is not None:
                cs.add(graph, [f"<{before.iri}> <{PROV.invalidatedAtTime}> {ended}"])


def decision_triples(
    d: Decider, node: str, proposal: str, decision: Decision, before: Current | None, now: dt.datetime
) -> list[str]:
    out = [
        f"<{node}> <{RDF.type}> <{CF.ReceivabilityDecision}>",
        f"<{node}> <{RDF.type}> <{M8G.Evidence}>",
        f"<{node}> <{CF.decisionOn}> <{proposal}>",
        f"<{node}> <{CF.decisionStatus}> <{concept_iri('receivability-statuses', decision.status)}>",
        f"<{node}> <{PROV.generatedAtTime}> {typed(format_datetime(now), XSD.dateTime)}",
    ]
    if before is not None:
        out.append(f"<{node}> <{PROV.wasRevisionOf}> <{before.iri}>")
    for c in decision.conditions:
        rule = d.urls.resource(d.territory, "rule", c.rule)
        constraint, value = f"{rule}#constraint-{c.name}", f"{node}-{c.rule}-{c.name}"
        out += [
            f"<{node}> <{_REQUIREMENT[c.outcome]}> <{constraint}>",
            f"<{node}> <{M8G.supportsValue}> <{value}>",
            f"<{value}> <{RDF.type}> <{M8G.SupportedValue}>",
            f"<{value}> <{CF.condition}> <{constraint}>",
            f"<{value}> <{M8G.providesValueFor}> <{rule}#concept-{c.name}>",
            f"<{value}> <{CF.outcome}> <{concept_iri('condition-outcomes', c.outcome)}>",
            f"<{value}> <{CF.expected}> {literal(c.expected)}",
            f"<{value}> <{M8G.value}> {literal(c.value)}",
            f"<{value}> <{DCT.description}> {literal(c.explanation, 'en')}",
        ]
    return out


def due(reader: Reader, territory: str, since: dt.datetime, until: dt.datetime) -> set[str]:
    """The processes (local ids) with a rule whose deadline or votes deadline falls in
    (``since``, ``until``]: their pending decisions may have turned without any write."""
    rows = reader.store.select(
        f"SELECT DISTINCT ?proc WHERE {{ GRAPH <{reader.urls.territory_graph(territory)}> {{ "
        f"?r a <{RULE.mapping.types[0]}> ; <{DCT.isPartOf}> ?proc . "
        f"{{ ?r <{CF.deadline}> ?when }} UNION {{ ?r <{CF.votesDeadline}> ?when }} }} "
        f"FILTER(?when > {typed(format_datetime(since), XSD.dateTime)} && "
        f"?when <= {typed(format_datetime(until), XSD.dateTime)}) }}"
    )
    return {ref.local_id for r in rows if (ref := reader.urls.parse(r["proc"].value)) and ref.local_id}


# -- reading decisions (the API, pages and the document) ----------------------------------------
def current_decisions(reader: Reader, territory: str, proposals: list[str]) -> dict[str, Current]:
    """The current decision of each of these proposals that has one."""
    graph = reader.urls.receivability_graph(territory)
    out: dict[str, Current] = {}
    for i in range(0, len(proposals), CHUNK):
        values = " ".join(f"<{p}>" for p in proposals[i : i + CHUNK])
        rows = reader.store.select(
            f"SELECT ?p ?d ?s ?c ?o ?e ?v WHERE {{ GRAPH <{graph}> {{ VALUES ?p {{ {values} }} "
            f"?p <{CF.receivability}> ?d . ?d <{CF.decisionStatus}> ?s "
            f"OPTIONAL {{ ?d <{M8G.supportsValue}> ?x . ?x <{CF.condition}> ?c ; <{CF.outcome}> ?o ; "
            f"<{CF.expected}> ?e ; <{M8G.value}> ?v }} }} }}"
        )
        for r in rows:
            status = concept_code("receivability-statuses", r["s"].value) or ""
            cur = out.setdefault(r["p"].value, Current(r["d"].value, status))
            if r["c"] is not None:
                rule_iri, _, name = r["c"].value.partition("#constraint-")
                outcome = concept_code("condition-outcomes", r["o"].value) or ""
                cur.conditions[(rule_iri.rsplit("/", 1)[-1], name)] = (outcome, r["e"].value, r["v"].value)
    return out


def decision_history(reader: Reader, territory: str, proposal: str) -> list[dict[str, Any]]:
    """Every decision on a proposal, newest first, as the JSON API gives them (``current``: the
    one in force; none is once no rule applies any more)."""
    graph = reader.urls.receivability_graph(territory)
    rows = reader.store.select(
        f"SELECT ?d ?s ?t ?end ?prev ?x ?c ?o ?e ?v ?why WHERE {{ GRAPH <{graph}> {{ "
        f"?d <{CF.decisionOn}> <{proposal}> ; <{CF.decisionStatus}> ?s ; <{PROV.generatedAtTime}> ?t "
        f"OPTIONAL {{ ?d <{PROV.wasRevisionOf}> ?prev }} OPTIONAL {{ ?d <{PROV.invalidatedAtTime}> ?end }} "
        f"OPTIONAL {{ ?d <{M8G.supportsValue}> ?x . ?x <{CF.condition}> ?c ; <{CF.outcome}> ?o ; "
        f"<{CF.expected}> ?e ; <{M8G.value}> ?v ; <{DCT.description}> ?why }} }} }}"
    )
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = found.setdefault(
            r["d"].value,
            {
                "iri": r["d"].value,
                "status": concept_code("receivability-statuses", r["s"].value),
                "decided_at": _time(r["t"]),
                "replaces": r["prev"].value if r["prev"] is not None else None,
                "ended_at": _time(r["end"]),
                "conditions": [],
            },
        )
        if r["c"] is not None:
            rule_iri, _, name = r["c"].value.partition("#constraint-")
            entry["conditions"].append(
                {
                    "rule": rule_iri.rsplit("/", 1)[-1],
                    "condition": name,
                    "outcome": concept_code("condition-outcomes", r["o"].value),
                    "expected": r["e"].value,
                    "value": r["v"].value,
                    "explanation": r["why"].value,
                }
            )
    current = reader.store.select(f"SELECT ?d WHERE {{ GRAPH <{graph}> {{ <{proposal}> <{CF.receivability}> ?d }} }}")
    now = {r["d"].value for r in current}
    for entry in found.values():
        entry["conditions"].sort(key=lambda c: (c["rule"], c["condition"]))
        entry["current"] = entry["iri"] in now
    return sorted(found.values(), key=lambda e: e["decided_at"], reverse=True)


def statuses(reader: Reader, territory: str, process: str) -> list[tuple[str, str, str]]:
    """(proposal id, status, decided at) of every proposal of a process that has a current decision."""
    graph, data = reader.urls.receivability_graph(territory), reader.urls.territory_graph(territory)
    rows = reader.store.select(
        f"SELECT ?p ?s ?t WHERE {{ GRAPH <{data}> {{ ?p <{DCT.isPartOf}> "
        f"<{reader.urls.resource(territory, 'process', process)}> ; a <{PROPOSAL.mapping.types[0]}> }} "
        f"GRAPH <{graph}> {{ ?p <{CF.receivability}> ?d . ?d <{CF.decisionStatus}> ?s ; "
        f"<{PROV.generatedAtTime}> ?t }} }}"
    )
    out = [
        (r["p"].value.rsplit("/", 1)[-1], concept_code("receivability-statuses", r["s"].value) or "",
         format_datetime(moment(r["t"].value)))  # type: ignore[arg-type]
        for r in rows
    ]  # fmt: skip
    return sorted(out)


def document_triples(reader: Reader, territory: str, proposal: str) -> list[Triple]:
    """The triples of a proposal's decisions document: every decision and value node, and the
    pointer to the current one."""
    graph = reader.urls.receivability_graph(territory)
    rows = reader.store.select(
        f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ "
        f"{{ BIND(<{proposal}> AS ?s) ?s ?p ?o }} UNION {{ ?s <{CF.decisionOn}> <{proposal}> ; ?p ?o }} "
        f"UNION {{ ?d <{CF.decisionOn}> <{proposal}> ; <{M8G.supportsValue}> ?s . ?s ?p ?o }} }} }}"
    )
    return [Triple(r["s"], r["p"], r["o"]) for r in rows]


def _time(term: Any) -> str | None:
    """A date-time read back, in the one form civicfed publishes (None for an unbound one)."""
    return format_datetime(moment(term.value)) if term is not None else None  # type: ignore[arg-type]
