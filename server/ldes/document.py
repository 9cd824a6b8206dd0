"""A page of a territory's event stream as N-Triples lines: the stream's description (on every
page, so that a client may start anywhere), on the root page its view and retention policy, the
page's relation to the next one, its members, and what they link to that the territory publishes
beside its records (accounts, import runs, sources).

The stream says how to read its members (LDES 1.0): ``ldes:timestampPath prov:generatedAtTime``
orders them, ``ldes:versionOfPath dct:isVersionOf`` names the record each is a version of, and
``rdf:type as:Tombstone`` (``ldes:versionDeletePath``/``ldes:versionDeleteObject``) marks a
deletion. A full page's one relation, on the timestamp path: ``tree:GreaterThanOrEqualToRelation``
to the next page, from its first member's time.
"""

from __future__ import annotations

import datetime as dt

from vocabularies import AS, DCAT, DCT, LDES, PROV, RDF, TREE, XSD

from ..model.terms import format_datetime, literal, typed
from ..records.clock import micros, moment
from ..records.history import version_lines
from . import Page, Stream


def _time(time_us: int) -> str:
    return typed(format_datetime(moment(time_us)), XSD.dateTime)


def _duration(span: dt.timedelta) -> str:
    return typed(f"P{span.days}D" if not span.seconds else f"PT{int(span.total_seconds())}S", XSD.duration)


#: What a territory publishes beside its records, that records link to: pseudonymous accounts,
#: import runs and their sources. They only ever grow (written once, or added to), so a page
#: states them as they are, beside the members that link to them, for a replica to add.
RELATED = ("account", "import", "source")


def _related(stream: Stream, territory: str, lines: list[str]) -> list[str]:
    """The descriptions of the accounts, import runs and sources the members link to."""
    urls = stream.records.urls
    prefixes = tuple(f"<{urls.territory(territory)}/{kind}/" for kind in RELATED)
    linked = set()
    for line in lines:
        term = line.rsplit(" ", 1)[-1]
        if term.startswith(prefixes):
            linked.add(term[1:-1].split("#", 1)[0])
    desc = stream.records.store.describe(sorted(linked), urls.territory_graph(territory)) if linked else {}
    return [f"<{s}> <{p}> {o}" for s, triples in desc.items() for p, o in triples]


def page_lines(stream: Stream, page: Page, name: str) -> list[str]:
    """The page's statements (N-Triples lines); ``name`` is the territory's name (the stream's title)."""
    urls, store = stream.records.urls, stream.records.store
    t = page.territory
    here, root, sid = urls.stream_page(t, page.from_us), urls.stream_page(t), urls.stream(t)
    lines = [
        f"<{sid}> <{RDF.type}> <{LDES.EventStream}>",
        f"<{sid}> <{DCT.isPartOf}> <{urls.territory(t)}>",
        f"<{sid}> <{LDES.timestampPath}> <{PROV.generatedAtTime}>",
        f"<{sid}> <{LDES.versionOfPath}> <{DCT.isVersionOf}>",
        f"<{sid}> <{LDES.versionDeletePath}> <{RDF.type}>",
        f"<{sid}> <{LDES.versionDeleteObject}> <{AS.Tombstone}>",
        f"<{here}> <{RDF.type}> <{TREE.Node}>",
    ]
    if page.from_us is None:
        view, policy = f"{root}#view", f"{root}#retention"
        # (The title on the root page only: a full page must not change when the territory's
        # name does.)
        lines += [
            f"<{sid}> <{DCT.title}> {literal(f'{name}: participation records, every version', 'en')}",
            f"<{sid}> <{TREE.view}> <{root}>",
            f"<{root}> <{TREE.viewDescription}> <{view}>",
            f"<{view}> <{RDF.type}> <{LDES.EventSource}>",
            f"<{view}> <{RDF.type}> <{DCAT.DataService}>",
            f"<{view}> <{DCAT.servesDataset}> <{sid}>",
            f"<{view}> <{DCAT.endpointURL}> <{root}>",
            f"<{view}> <{LDES.retentionPolicy}> <{policy}>",
            f"<{policy}> <{RDF.type}> <{LDES.RetentionPolicy}>",
            f"<{policy}> <{LDES.fullLogDuration}> {_duration(stream.retention.full_log)}",
            f"<{policy}> <{LDES.versionAmount}> {typed('1', XSD.integer)}",
            f"<{policy}> <{LDES.versionDeleteDuration}> {_duration(stream.retention.deletions)}",
        ]
    # Later members are on the next page, and only there: one relation, known when the page is
    # found full and true ever after (a page has one way in, as TREE's search trees do).
    if page.next_from is not None:
        relation = f"{here}#next"
        lines += [
            f"<{here}> <{LDES.immutable}> {typed('true', XSD.boolean)}",
            f"<{here}> <{TREE.relation}> <{relation}>",
            f"<{relation}> <{RDF.type}> <{TREE.GreaterThanOrEqualToRelation}>",
            f"<{relation}> <{TREE.path}> <{PROV.generatedAtTime}>",
            f"<{relation}> <{TREE.value}> {_time(page.next_from)}",
            f"<{relation}> <{TREE.node}> <{urls.stream_page(t, page.next_from)}>",
        ]
    current = [e for e in page.entries if not e.historic]
    desc = store.describe([e.resource for e in current], urls.territory_graph(t))
    for e in current:
        lines += version_lines(urls, t, e.resource, moment(e.time_us), desc)
    lines += _related(stream, t, lines)
    historic = [urls.version(t, e.time_us) for e in page.entries if e.historic]
    kept = store.describe(historic, urls.history_graph(t))
    for s, triples in kept.items():
        for p, o in triples:
            # A time the store may have written its own way (trailing zeros of the fraction):
            # written as the version's time is written while it is the current one.
            term = _time(micros(dt.datetime.fromisoformat(o.value))) if p == PROV.generatedAtTime else str(o)  # type: ignore[attr-defined]
            lines.append(f"<{s}> <{p}> {term}")
    lines += [f"<{sid}> <{TREE.member}> <{urls.version(t, e.time_us)}>" for e in page.entries]
    return [line + " ." for line in lines]
