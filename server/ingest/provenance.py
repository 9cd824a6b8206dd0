"""An import run as PROV-O, in the territory's public graph: the activity (its source, the
source's SHA-256, start and end, its agent, its counts), the source as a ``prov:Entity``, and the
SHACL validation report of what was quarantined; and the statements each written record gets
(``prov:wasGeneratedBy`` the activity, ``dct:source`` the source).

IRIs: ``{base}/id/{territory}/import/{run}`` for a run, ``{base}/id/{territory}/source/{id}``
for a source; both dereference like records (server/web/linked_data.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vocabularies import CF, DCAT, DCT, PROV, RDF, RDFS, SH, SPDX, XSD

from ..model.kinds import KINDS
from ..model.terms import format_datetime, literal, typed
from ..urls import LOCAL_ID_RE, Urls

#: Kinds of IRI under a territory that are not records: what dereferencing looks up as provenance.
PROVENANCE_KINDS = ("import", "source")
#: What may stand in an IRI written as N-Triples (a URL given by an operator or a client).
SAFE_IRI = re.compile(r'[^\s<>"{}|^`\\\x00-\x1f]+')
#: Results a report lists at most (the run's count says how many were quarantined).
MAX_RESULTS = 1000


@dataclass(frozen=True)
class Activity:
    """What the PROV-O description of one run says."""

    run_id: str
    territory: str
    format: str
    source_id: str
    source_name: str
    #: The source's URL when it was fetched (None for a file).
    source_url: str | None
    sha256: str | None
    agent: str
    started: dt.datetime
    ended: dt.datetime
    counts: dict[str, int]

    def iri(self, urls: Urls) -> str:
        return activity_iri(urls, self.territory, self.run_id)


def activity_iri(urls: Urls, territory: str, run_id: str) -> str:
    return f"{urls.territory(territory)}/import/{run_id}"


def source_iri(urls: Urls, territory: str, source_id: str) -> str:
    return urls.source(territory, source_id)


def record_statements(urls: Urls, territory: str, run_id: str, source_id: str) -> list[tuple[str, str]]:
    """(predicate, object) pairs every record a run writes gets: the run, and the source (whose
    description says where it was fetched). Not ``prov:wasDerivedFrom``: records already use it
    for what they derive from (a project from its proposals), whose shapes allow nothing else."""
    return [
        (PROV.wasGeneratedBy, f"<{activity_iri(urls, territory, run_id)}>"),
        (DCT.source, f"<{source_iri(urls, territory, source_id)}>"),
    ]


def _int(value: int) -> str:
    return typed(str(value), XSD.integer)


def activity_statements(urls: Urls, a: Activity, rejected: Sequence[dict[str, Any]]) -> list[str]:
    """The run's description: N-Triples statements without the final `` .``."""
    act = f"<{a.iri(urls)}>"
    source = f"<{source_iri(urls, a.territory, a.source_id)}>"
    out = [
        f"{act} <{RDF.type}> <{PROV.Activity}>",
        f"{act} <{RDF.type}> <{CF.Import}>",
        f"{act} <{RDFS.label}> {literal(f'Import of {a.source_name} ({a.format}) into {a.territory}', 'en')}",
        f"{act} <{PROV.startedAtTime}> {typed(format_datetime(a.started), XSD.dateTime)}",
        f"{act} <{PROV.endedAtTime}> {typed(format_datetime(a.ended), XSD.dateTime)}",
        f"{act} <{PROV.wasAssociatedWith}> <{a.iri(urls)}#agent>",
        f"<{a.iri(urls)}#agent> <{RDF.type}> <{PROV.Agent}>",
        f"<{a.iri(urls)}#agent> <{RDFS.label}> {literal(a.agent)}",
        f"{act} <{DCT.format}> {literal(a.format)}",
        f"{source} <{RDF.type}> <{PROV.Entity}>",
        f"{source} <{DCT.title}> {literal(a.source_name)}",
        f"{source} <{DCT.format}> {literal(a.format)}",
    ]
    if a.source_url and SAFE_IRI.fullmatch(a.source_url):
        out.append(f"{source} <{DCAT.accessURL}> <{a.source_url}>")
    used = source
    if a.sha256:
        # The source as this run read it: the version its checksum names.
        used = f"<{a.iri(urls)}#input>"
        checksum = f"<{a.iri(urls)}#checksum>"
        out += [
            f"{used} <{RDF.type}> <{PROV.Entity}>",
            f"{used} <{PROV.specializationOf}> {source}",
            f"{used} <{SPDX.checksum}> {checksum}",
            f"{checksum} <{RDF.type}> <{SPDX.Checksum}>",
            f"{checksum} <{SPDX.algorithm}> <{SPDX.checksumAlgorithm_sha256}>",
            f"{checksum} <{SPDX.checksumValue}> {typed(a.sha256, XSD.hexBinary)}",
        ]
    out.append(f"{act} <{PROV.used}> {used}")
    for name, predicate in COUNTS.items():
        out.append(f"{act} <{predicate}> {_int(a.counts.get(name, 0))}")
    out += report_statements(urls, a, rejected)
    return out


#: The counts of a run, as the JSON report names them → their property.
COUNTS = {
    "read": CF.itemsRead,
    "created": CF.recordsCreated,
    "updated": CF.recordsUpdated,
    "deleted": CF.recordsDeleted,
    "unchanged": CF.recordsUnchanged,
    "rejected": CF.itemsRejected,
}


def report_statements(urls: Urls, a: Activity, rejected: Sequence[dict[str, Any]]) -> list[str]:
    """The quarantined items as a SHACL validation report: one ``sh:ValidationResult`` per field
    error (or per item without field errors), its focus node the record's IRI (or the source
    line's when the item has no id), the first MAX_RESULTS items."""
    act = a.iri(urls)
    report = f"<{act}#report>"
    out = [
        f"<{act}> <{CF.validationReport}> {report}",
        f"{report} <{RDF.type}> <{SH.ValidationReport}>",
        f"{report} <{SH.conforms}> {typed('false' if rejected else 'true', XSD.boolean)}",
    ]
    n = 0
    for entry in rejected[:MAX_RESULTS]:
        kind, local_id = entry.get("kind"), entry.get("id")
        if kind in KINDS and isinstance(local_id, str) and LOCAL_ID_RE.fullmatch(local_id):
            focus = f"<{urls.resource(a.territory, kind, local_id)}>"
        else:
            focus = f"<{act}#line-{entry.get('line') or 0}>"
        for pointer, detail in _field_errors(entry):
            n += 1
            result = f"<{act}#result-{n}>"
            out += [
                f"{report} <{SH.result}> {result}",
                f"{result} <{RDF.type}> <{SH.ValidationResult}>",
                f"{result} <{SH.focusNode}> {focus}",
                f"{result} <{SH.resultSeverity}> <{SH.Violation}>",
                f"{result} <{SH.sourceConstraintComponent}> <{CF.RecordSchemaConstraintComponent}>",
                f"{result} <{SH.resultMessage}> {literal(detail)}",
            ]
            path = _path(kind, pointer)
            if path:
                out.append(f"{result} <{SH.resultPath}> <{path}>")
            if entry.get("line"):
                out.append(f"{result} <{CF.sourceLine}> {_int(int(entry['line']))}")
    return out


def _field_errors(entry: dict[str, Any]) -> list[tuple[str | None, str]]:
    errors = entry.get("errors") or []
    if not errors:
        return [(None, str(entry.get("detail") or entry.get("title") or "rejected"))]
    return [(e.get("pointer"), f"{e.get('pointer', '#')}: {e.get('detail', '')}".strip()) for e in errors]


def _path(kind: str | None, pointer: str | None) -> str | None:
    """The property a JSON pointer's field maps to, when the field is one of the kind's."""
    if kind not in KINDS or not pointer or not pointer.startswith("#/"):
        return None
    field = pointer[2:].split("/", 1)[0]
    mapped = KINDS[kind].mapping.by_name.get(field)
    return getattr(mapped, "predicate", None)
