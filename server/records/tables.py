"""What a territory's tables say of its areas, and its districts: what joins
(server/indicators/join.py) cross the indicators with.

A measure is read from RDF Data Cube observations (``sdmxd:refArea``, ``sdmxd:refPeriod``, the
measure and its value) in the territory's own graph (a territory's or district's population, as
its record gives it) or in the graphs of its imported sources (importers/table.py, population.py):
a table of another territory says nothing of this one's areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from vocabularies import DCT, GEO, QB, RDF, SDMXA, SDMXD, SKOS, concept_code

from ..store import Store
from ..urls import Urls

#: Areas read per query.
CHUNK = 400


@dataclass(frozen=True)
class Observed:
    """A measure's value for an area and a period, and where it comes from."""

    area: str
    period: str
    value: Decimal
    #: The observation's qb:DataSet (None: a place's own population, which belongs to none).
    dataset: str | None
    #: From an imported table (else from a record of the territory).
    imported: bool
    #: Its unit (sdmxa:unitMeasure: an IRI or a text), if it says.
    unit: str | None = None


@dataclass(frozen=True)
class District:
    id: str
    iri: str
    name: str
    level: str | None
    parent: str | None


def observations(store: Store, urls: Urls, wanted: list[tuple[str, str, str, str | None]]) -> list[Observed]:
    """Every observation about these (territory, area IRI, measure, qb:DataSet or None for any)
    from the territory's graphs."""
    out: list[Observed] = []
    for i in range(0, len(wanted), CHUNK):
        rows = " ".join(
            f'(<{area}> <{urls.territory_graph(t)}> "{urls.source_graph(t, "")}" <{measure}> '
            f"{f'<{dataset}>' if dataset else 'UNDEF'})"
            for t, area, measure, dataset in wanted[i : i + CHUNK]
        )
        found = store.select(
            f"SELECT ?g ?own ?area ?period ?v ?ds ?unit WHERE {{ VALUES (?area ?own ?sources ?m ?want) {{ {rows} }} "
            f"GRAPH ?g {{ ?obs <{SDMXD.refArea}> ?area ; <{SDMXD.refPeriod}> ?period ; ?m ?v . "
            f"OPTIONAL {{ ?obs <{QB.dataSet}> ?ds }} OPTIONAL {{ ?obs <{SDMXA.unitMeasure}> ?unit }} }} "
            f"FILTER((?g = ?own || STRSTARTS(STR(?g), ?sources)) && (!BOUND(?want) || ?ds = ?want)) }}"
        )
        for r in found:
            try:
                value = Decimal(r["v"].value)
            except InvalidOperation:  # not a number: nothing to correlate
                continue
            if not value.is_finite():
                continue
            ds = r["ds"].value if r["ds"] is not None else None
            unit = r["unit"].value if r["unit"] is not None else None
            imported = r["g"].value != r["own"].value
            out.append(Observed(r["area"].value, r["period"].value, value, ds, imported, unit))
    return out


def districts(store: Store, urls: Urls, territory: str, names: Urls) -> list[District]:
    """The territory's districts (``names``: the IRIs its records have, its origin's for a
    replica), with their level and the district each is part of."""
    found = store.select(
        f"SELECT ?d ?name ?level ?parent WHERE {{ GRAPH <{urls.territory_graph(territory)}> {{ "
        f"?d <{RDF.type}> <{DCT.Location}> ; <{SKOS.prefLabel}> ?name . "
        f"OPTIONAL {{ ?d <{DCT.type}> ?level }} OPTIONAL {{ ?d <{GEO.sfWithin}> ?parent }} }} }}"
    )
    out: dict[str, District] = {}
    for r in found:
        ref = names.parse(r["d"].value)
        if ref is None or ref.kind != "district" or ref.fragment or not ref.local_id:
            continue
        level = concept_code("district-levels", r["level"].value) if r["level"] is not None else None
        parent = names.parse(r["parent"].value) if r["parent"] is not None else None
        up = parent.local_id if parent and parent.kind == "district" else None
        out[ref.local_id] = District(ref.local_id, r["d"].value, r["name"].value, level, up)
    return sorted(out.values(), key=lambda d: d.id)
