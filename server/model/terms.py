"""RDF terms as civicfed writes them: N-Triples text for IRIs and literals, the one lexical
form of date-times and decimals it publishes, and the reference-interval IRIs of periods. The
mapping engine (model/rdf.py) and everything that writes or reads statements use them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyoxigraph import Literal

from vocabularies import XSD

ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def iri(value: str) -> str:
    return f"<{value}>"


def literal(value: str, lang: str | None = None) -> str:
    text = value.translate(ESCAPES)
    return f'"{text}"@{lang}' if lang else f'"{text}"'


def typed(lexical: str, datatype: str) -> str:
    return f'"{lexical}"^^<{datatype}>'


def format_datetime(value: dt.datetime) -> str:
    """xsd:dateTime lexical form, normalised to UTC so that stores return it unchanged."""
    text = value.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def stable_term(term: object) -> str:
    """A term read from a store, as N-Triples that every store reads back as the same term. A
    decimal read back without its point ("45000"^^xsd:decimal, as Virtuoso writes one) is an
    integer to Virtuoso when written again that way: it gets its point back."""
    if isinstance(term, Literal) and term.datatype.value == XSD.decimal and "." not in term.value:
        return typed(term.value + ".0", XSD.decimal)
    return str(term)


def canonical_datetime(lexical: str) -> str:
    """The one lexical form civicfed publishes for an xsd:dateTime read back from a store.

    Stores canonicalise differently (Oxigraph drops trailing zeros of fractions), so values
    are re-formatted: what a client wrote is what it reads, and cursors compare as strings.
    """
    return format_datetime(dt.datetime.fromisoformat(lexical))


def format_decimal(value: Decimal | float | int) -> str:
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d, "f")
    return text if "." in text else text + ".0"


def plain_decimal(value: Decimal | float | int | str) -> str:
    """A number as people write it, the same however it was given or read back (10000, 10000.0
    and 1E+4 are "10000"; 10000.50 is "10000.5")."""
    return format(Decimal(str(value)).normalize(), "f")


def json_number(value: str) -> int | float:
    d = Decimal(value)
    return int(d) if d == d.to_integral_value() else float(d)


#: Periods as the UK's reference intervals name them, as RDF Data Cube publishers do.
YEAR_IRI, MONTH_IRI = "http://reference.data.gov.uk/id/year/", "http://reference.data.gov.uk/id/month/"


def period_iri(period: str) -> str:
    """The interval IRI of a year (``2024``) or a month (``2024-03``)."""
    return f"{YEAR_IRI if len(period) == 4 else MONTH_IRI}{period}"


def period_of(iri: str) -> str | None:
    """The year or month a reference interval IRI names (None for another IRI)."""
    for prefix in (YEAR_IRI, MONTH_IRI):
        if iri.startswith(prefix):
            return iri[len(prefix) :]
    return None


def period_span(period: str) -> tuple[dt.date, dt.date] | None:
    """The first and last day of a year or a month (None for what is neither: a peer's period)."""
    try:
        year = int(period[:4])
        if len(period) == 4:
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if len(period) != 7:
            return None
        month = int(period[5:7])
        return dt.date(year, month, 1), dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    except ValueError:
        return None
