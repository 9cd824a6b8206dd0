"""N-Triples lines (the form documents are built in) written in the format a client asked for."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pyoxigraph import Literal, RdfFormat, parse, serialize

from vocabularies import RDF

from .jsonld import compact
from .negotiation import JSON_LD, N_TRIPLES, TURTLE, Format

RDF_TYPE = RDF.type


def render_lines(lines: list[str], fmt: Format, main: str | None, prefixes: Mapping[str, str]) -> bytes:
    """The statements in ``fmt``: N-Triples as they are, JSON-LD compacted around ``main``,
    Turtle with those of ``prefixes`` it uses, RDF/XML."""
    # Grouped by subject, the main node first: the serialisers group consecutive triples only,
    # and N-Triples lines sort by subject then predicate as they are.
    head = f"<{main}> "
    lines = sorted(lines, key=lambda line: (not line.startswith(head), line))
    text = "\n".join(lines) + "\n"
    if fmt is N_TRIPLES:
        return text.encode()
    triples = list(parse(text, format=RdfFormat.N_TRIPLES))
    if fmt is JSON_LD:
        return json.dumps(
            compact(((t.subject, t.predicate, t.object) for t in triples), main), ensure_ascii=False, indent=1
        ).encode()
    if fmt is TURTLE:
        used = {line.split(" ", 2)[1] for line in lines}
        used |= {line.rsplit(" ", 2)[-2] for line in lines if f" <{RDF_TYPE}> " in line}
        used |= {f"<{t.object.datatype.value}>" for t in triples if isinstance(t.object, Literal)}
        chosen = {p: ns for p, ns in prefixes.items() if any(iri.startswith("<" + ns) for iri in used)}
        return serialize(triples, format=RdfFormat.TURTLE, prefixes=chosen)
    return serialize(triples, format=RdfFormat.RDF_XML)
