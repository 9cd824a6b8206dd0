"""Statistical tables: a CSV of figures by area (population, income, equipment…) and a mapping
(``importers/table_mapping.py``) → RDF Data Cube observations, in the source's graph.

Each row is keyed to a district of the territory by its code (``sdmxd:refArea`` is the district's
IRI, ``{base}/id/{territory}/district/{code}``, or the territory's for the code the mapping says is
the territory's own), so that the figures join with the participation records of the district in
SPARQL. One ``qb:Observation`` per row and measure (the measure-dimension form of the Data Cube:
a row may lack a measure, and each measure has its unit): ``qb:dataSet``, ``sdmxd:refArea``,
``sdmxd:refPeriod`` (a literal: ``xsd:gYear``, ``xsd:gYearMonth`` or ``xsd:date``),
``qb:measureType``, the measure and its value, ``sdmxa:unitMeasure`` (a literal, or the unit's
IRI). The source also gets its ``qb:DataSet`` and ``qb:DataStructureDefinition``; a measure is a
``qb:MeasureProperty`` minted under the source (``{source}#measure-{name}``, a sub-property of
``sdmxm:obsValue``) unless the mapping names an existing one.

IRIs need the territory and the server's base: ``read`` takes ``territory`` and ``urls``. A code
that names no district yet is written as it is (the district may come later); a row whose code
is not one of its code list, a period or a number that cannot be read, is quarantined.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from server.errors import MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Rejected, Statements
from server.ingest.provenance import source_iri
from server.model.terms import format_decimal, literal, typed
from server.urls import Urls
from vocabularies import DCT, PROV, QB, RDF, RDFS, SDMXA, SDMXD, SDMXM, XSD

from .areas import code_problem, read_all, source_id
from .remote import Fetcher
from .table_mapping import PERIOD_RE, check_columns, load_mapping, measure_name
from .tabular import decode, read_csv, sniff_delimiter

_URL = re.compile(r"https?://[^\s<>\"{}|\\^`]+")
_SEPARATORS = re.compile(r"[\s\u00a0\u202f]")


def invalid(pointer: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"pointer": pointer, "detail": detail}])


def period_term(text: str) -> str:
    """A period as a typed literal: a year, a month or a day."""
    datatype = {4: XSD.gYear, 7: XSD.gYearMonth, 10: XSD.date}[len(text)]
    return typed(text, datatype)


def number(text: str, datatype: str) -> str:
    """A cell as an ``xsd:integer`` or ``xsd:decimal`` literal (spaces as thousands separators, a
    decimal comma); ValueError when it is not a number of that type."""
    cleaned = _SEPARATORS.sub("", text).replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite() or abs(value.adjusted()) > 30:  # an int of `1e999999999` never ends
        raise ValueError(f"{text!r} is not a number (or too large a one)")
    if datatype == "integer":
        if value != value.to_integral_value():
            raise ValueError(f"{text!r} is not an integer")
        return typed(str(int(value)), XSD.integer)
    return typed(format_decimal(value), XSD.decimal)


def unit_term(unit: str) -> str:
    return f"<{unit}>" if _URL.fullmatch(unit) else literal(unit)


@dataclass
class TableSource:
    """The observations of one CSV under its mapping."""

    data: bytes | IO[bytes]
    name: str
    id: str
    mapping: dict[str, Any]
    territory: str
    urls: Urls
    #: Which rows to read (all by default): a format built on this one may narrow them.
    keep: Callable[[dict[str, str]], bool] | None = None
    sha256: str | None = None
    location: str | None = None
    _seen: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The source's IRI: the dataset, structure, measures and observations are its # nodes."""
        return source_iri(self.urls, self.territory, self.id)

    def measure_iri(self, measure: dict[str, Any]) -> str:
        return measure.get("property") or f"{self.base}#measure-{measure_name(measure)}"

    def items(self) -> Iterator[Item]:
        raw, self.sha256 = read_all(self.data)
        self.location = self.name
        text = decode(raw, self.name)
        first = text.split("\n", 1)[0]
        if not first.strip():
            raise MalformedBody(f"{self.name} is empty or has no header line")
        columns = [c.strip() for c in next(csv.reader([first], delimiter=sniff_delimiter(first)), [])]
        check_columns(self.mapping, columns, self.name)
        statements = self.structure()
        for row in read_csv(text, self.name):
            if self.keep is not None and not self.keep(row.cells):
                continue
            try:
                area, period = self._keys(row.cells, row.line)
            except ValidationFailed as err:
                yield Rejected(err, row.line)
                continue
            for measure in self.mapping["measures"]:
                cell = (row.cells.get(measure["column"]) or "").strip()
                if not cell:  # no figure for this area: no observation
                    continue
                try:
                    value = number(cell, measure["datatype"])
                except ValueError as exc:
                    yield Rejected(invalid(f"#/{measure['column']}", f"{exc}."), row.line)
                    continue
                statements += self.observation(area, period, measure, value)
        yield Statements(tuple(statements))

    def _keys(self, cells: dict[str, str], line: int) -> tuple[str, str]:
        """The row's area (code) and period, checked; a row seen before is refused."""
        key, period_spec = self.mapping["key"], self.mapping["period"]
        code = (cells.get(key["column"]) or "").strip()
        problem = "no code" if not code else code_problem(code, key["code_list"])
        if problem:
            raise invalid(f"#/{key['column']}", f"{problem[:1].upper()}{problem[1:]}.")
        period = period_spec.get("value") or (cells.get(period_spec.get("column", "")) or "").strip()
        if not PERIOD_RE.fullmatch(period):
            raise invalid(f"#/{period_spec.get('column')}", f"{period!r} is not a period (YYYY, YYYY-MM, YYYY-MM-DD).")
        if (code, period) in self._seen:
            raise invalid(f"#/{key['column']}", f"{code} {period} is also on line {self._seen[(code, period)]}.")
        self._seen[(code, period)] = line
        return code, period

    def area_iri(self, code: str) -> str:
        if code == self.mapping["key"].get("territory"):
            return self.urls.territory(self.territory)
        return self.urls.resource(self.territory, "district", code)

    def observation(self, code: str, period: str, measure: dict[str, Any], value: str) -> list[str]:
        obs = f"<{self.base}#obs/{code}/{period}/{measure_name(measure)}>"
        prop = f"<{self.measure_iri(measure)}>"
        return [
            f"{obs} <{RDF.type}> <{QB.Observation}>",
            f"{obs} <{QB.dataSet}> <{self.base}#dataset>",
            f"{obs} <{SDMXD.refArea}> <{self.area_iri(code)}>",
            f"{obs} <{SDMXD.refPeriod}> {period_term(period)}",
            f"{obs} <{QB.measureType}> {prop}",
            f"{obs} {prop} {value}",
            f"{obs} <{SDMXA.unitMeasure}> {unit_term(measure['unit'])}",
        ]

    def structure(self) -> list[str]:
        """The data set and its structure: dimensions area, period and measure type; the unit
        attribute; one measure per mapped column."""
        ds, dsd = f"<{self.base}#dataset>", f"<{self.base}#structure>"
        dataset = self.mapping["dataset"]
        out = [
            f"{ds} <{RDF.type}> <{QB.DataSet}>",
            f"{ds} <{QB.structure}> {dsd}",
            f"{ds} <{DCT.title}> {literal(dataset.get('title') or self.name)}",
            f"{ds} <{DCT.spatial}> <{self.urls.territory(self.territory)}>",
            f"{dsd} <{RDF.type}> <{QB.DataStructureDefinition}>",
        ]
        if dataset.get("description"):
            out.append(f"{ds} <{DCT.description}> {literal(dataset['description'])}")
        if dataset.get("source_url"):
            out.append(f"{ds} <{PROV.wasDerivedFrom}> <{dataset['source_url']}>")
        components = [
            ("area", QB.dimension, SDMXD.refArea),
            ("period", QB.dimension, SDMXD.refPeriod),
            ("measure-type", QB.dimension, QB.measureType),
            ("unit", QB.attribute, SDMXA.unitMeasure),
        ]
        for i, measure in enumerate(self.mapping["measures"], start=1):
            components.append((f"measure-{i}", QB.measure, self.measure_iri(measure)))
        for order, (suffix, role, prop) in enumerate(components, start=1):
            node = f"<{self.base}#component-{suffix}>"
            out += [f"{dsd} <{QB.component}> {node}", f"{node} <{role}> <{prop}>"]
            if role == QB.dimension:
                out.append(f"{node} <{QB.order}> {typed(str(order), XSD.integer)}")
            if role == QB.attribute:
                out.append(f"{node} <{QB.componentAttachment}> <{QB.Observation}>")
        for measure in self.mapping["measures"]:
            if measure.get("property"):
                continue  # an existing measure, defined where it comes from
            prop = f"<{self.measure_iri(measure)}>"
            datatype = XSD.integer if measure["datatype"] == "integer" else XSD.decimal
            out += [
                f"{prop} <{RDF.type}> <{QB.MeasureProperty}>",
                f"{prop} <{RDF.type}> <{RDF.Property}>",
                f"{prop} <{RDFS.label}> {literal(measure.get('label') or measure['column'])}",
                f"{prop} <{RDFS.subPropertyOf}> <{SDMXM.obsValue}>",
                f"{prop} <{RDFS.range}> <{datatype}>",
            ]
        return out


def read(
    data: bytes | IO[bytes] | str,
    *,
    territory: str,
    urls: Urls,
    mapping: str | bytes | dict[str, Any],
    name: str = "table.csv",
    fetcher: Fetcher | None = None,
) -> TableSource:
    """A table source over a CSV body or open binary file, or the URL of one (a CSV resource of a
    CKAN dataset: fetched through ``fetcher``), under its mapping (TOML or JSON text, never a
    path: options may come from a request). ``territory`` and ``urls`` make the IRIs."""
    table = load_mapping(mapping)  # a bad mapping is said before anything is fetched
    if isinstance(data, str):
        if fetcher is None:
            raise MalformedBody(f"{data!r}: a table is read from a file or fetched from an http(s) URL")
        name = data  # the source's name and location: its URL
        data = fetcher.get(data, headers={"Accept": "text/csv, */*;q=0.1"}).content
    return TableSource(data, name, source_id("table", name), table, territory, urls)


IMPORTER = Importer(
    "table",
    "CSV of figures by district (a statistical table) and its mapping → RDF Data Cube observations",
    read,
    # No upload media type: text/csv says nothing of the mapping an upload would need.
    options={"mapping": "The mapping, as TOML or JSON text: key column and code list, period, measures and units."},
    remote=True,
)
