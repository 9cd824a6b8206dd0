"""Superseded versions of public records, kept for the event stream (server/ldes).

A record's current version is its description in the territory graph, named in the event stream
by its time in the record index. When a write replaces or deletes a record (or moves its counts),
the version it replaces is copied into the territory's history graph, under the version's own
IRI (``urls.version``: the resource IRI and its ``#`` nodes rewritten), with ``dct:isVersionOf``
the record and ``prov:generatedAtTime`` its time: a page of the stream that listed that version
lists it the same way afterwards, so a full page never changes. History is internal (never in a
public graph), and pruned after the stream's full-log retention (server/ldes/retention.py).
"""

from __future__ import annotations

import datetime as dt

from pyoxigraph import NamedNode

from vocabularies import DCT, PROV, XSD

from ..model.terms import format_datetime, stable_term, typed
from ..store import Changeset, Description, Store
from ..urls import Urls
from .clock import micros


def emit_history(cs: Changeset, urls: Urls, territory: str, iri: str, modified: dt.datetime, desc: Description) -> None:
    """Copy the version of ``iri`` of time ``modified``, described in ``desc``, into history."""
    cs.add(urls.history_graph(territory), version_lines(urls, territory, iri, modified, desc))


def version_lines(urls: Urls, territory: str, iri: str, modified: dt.datetime, desc: Description) -> list[str]:
    """The version of ``iri`` of time ``modified`` as N-Triples: its description in ``desc``
    under the version's IRI, ``dct:isVersionOf`` the record, ``prov:generatedAtTime`` the time."""
    prefix = iri + "#"
    version = urls.version(territory, micros(modified))

    def term(o: object) -> str:
        if type(o) is NamedNode and (o.value == iri or o.value.startswith(prefix)):
            return f"<{version}{o.value[len(iri) :]}>"
        return stable_term(o)  # the copy must say what was published, on every store

    lines = [
        f"<{version}> <{DCT.isVersionOf}> <{iri}>",
        f"<{version}> <{PROV.generatedAtTime}> {typed(format_datetime(modified), XSD.dateTime)}",
    ]
    for s, triples in desc.items():
        if s == iri or s.startswith(prefix):
            subject = f"<{version}{s[len(iri) :]}>"
            lines += [f"{subject} <{p}> {term(o)}" for p, o in triples]
    return lines


def erase_history(cs: Changeset, store: Store, urls: Urls, territory: str, iris: list[str]) -> None:
    """Drop every kept version of these records (deleted: their content leaves the stream)."""
    if not iris:
        return
    graph = urls.history_graph(territory)
    for start in range(0, len(iris), 500):
        values = " ".join(f"<{i}>" for i in iris[start : start + 500])
        rows = store.select(
            f"SELECT ?v WHERE {{ GRAPH <{graph}> {{ VALUES ?r {{ {values} }} ?v <{DCT.isVersionOf}> ?r }} }}"
        )
        versions = [row["v"].value for row in rows]
        for subject in store.describe(versions, graph) if versions else ():
            cs.drop(graph, subject)
