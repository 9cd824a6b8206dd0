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


def source_graphs(store: Store, urls: Urls, territory: str | None = None) -> dict[str, list[str]]:
    """The graphs of the territories' import sources that hold a data set, by territory (of one
    territory, or of all): where their tables' observations are (every observation is in a data
    set, IC-1, and a table's source declares its own). Found by their ``qb:DataSet``: listing
    every graph of the store took longer than the rest of a join at 100 territories (1,600
    graphs, a name read for each), and a remote store lists them by scanning every quad."""
    root = urls.source_graph("", "")[:-1]  # …/graph/source/, then a territory, then a source
    prefix = root if territory is None else urls.source_graph(territory, "")
    sources: dict[str, list[str]] = {}
    for r in store.select(
        f"SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?ds <{RDF.type}> <{QB.DataSet}> }} "
        f'FILTER(STRSTARTS(STR(?g), "{prefix}")) }}'
    ):
        g = r["g"].value
        sources.setdefault(g[len(root) :].split("/", 1)[0], []).append(g)
    return sources


def observations(store: Store, urls: Urls, wanted: list[tuple[str, str, str, str | None]]) -> list[Observed]:
    """Every observation about these (territory, area IRI, measure, qb:DataSet or None for any)
    from the territory's graphs: its own and its import sources'.

    Each query names its graphs and its measure (one per measure asked): with either a variable,
    Oxigraph starts from every observation of the area in every graph (the indicator cubes hold
    thousands), 40 ms for 100 territories instead of 3. The data sets and units, optional, are
    read after for the observations found, for the same reason.

    The sources' graphs are those of :func:`source_graphs`."""
    sources = source_graphs(store, urls)
    found: list[tuple[str, str, str, str, str, str | None]] = []  # (graph, obs, area, period, value, wanted)
    measures = sorted({m for _, _, m, _ in wanted})
    for measure in measures:
        rows: list[str] = []
        for t, area, m, dataset in wanted:
            if m != measure:
                continue
            for g in [urls.territory_graph(t), *sources.get(t, ())]:
                rows.append(f"(<{g}> <{area}> {f'<{dataset}>' if dataset else 'UNDEF'})")
        for i in range(0, len(rows), CHUNK):
            part = " ".join(rows[i : i + CHUNK])
            for r in store.select(
                f"SELECT ?g ?obs ?area ?period ?v ?want WHERE {{ VALUES (?g ?area ?want) {{ {part} }} "
                # The area first: a quarter faster on Oxigraph at 100 territories (a graph holds
                # the observations of several areas for each measure).
                f"GRAPH ?g {{ ?obs <{SDMXD.refArea}> ?area ; <{measure}> ?v ; <{SDMXD.refPeriod}> ?period }} }}"
            ):
                want = r["want"].value if r["want"] is not None else None
                found.append((r["g"].value, r["obs"].value, r["area"].value, r["period"].value, r["v"].value, want))
    details: dict[tuple[str, str], dict[str, str]] = {}
    pairs = sorted({(g, obs) for g, obs, *_ in found})
    for i in range(0, len(pairs), CHUNK):
        values = " ".join(f"(<{g}> <{obs}>)" for g, obs in pairs[i : i + CHUNK])
        for r in store.select(
            f"SELECT ?g ?obs ?p ?o WHERE {{ VALUES (?g ?obs) {{ {values} }} GRAPH ?g {{ ?obs ?p ?o }} "
            f"FILTER(?p IN (<{QB.dataSet}>, <{SDMXA.unitMeasure}>)) }}"
        ):
            details.setdefault((r["g"].value, r["obs"].value), {})[r["p"].value] = r["o"].value
    own_graphs = {urls.territory_graph(t) for t, *_ in wanted}
    out: list[Observed] = []
    for g, obs, area, period, lexical, want in found:
        more = details.get((g, obs), {})
        ds = more.get(str(QB.dataSet))
        if want is not None and ds != want:
            continue
        try:
            value = Decimal(lexical)
        except InvalidOperation:  # not a number: nothing to correlate
            continue
        if not value.is_finite():
            continue
        out.append(Observed(area, period, value, ds, g not in own_graphs, more.get(str(SDMXA.unitMeasure))))
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
