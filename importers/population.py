"""INSEE legal populations ("populations légales"): a CSV of populations by COG code and year →
RDF Data Cube observations of ``cf:inhabitants``, one per code and year, whose reference area is
the district of that code (``{base}/id/{territory}/district/{code}``) or, for the commune the
option ``commune`` names, the territory itself.

The table format (``importers/table.py``) with a mapping of its own: key ``code_insee`` (INSEE
COG), period ``annee_reference_population``, measure ``population`` as ``cf:inhabitants`` (the
measure of the territory's and districts' own ``population`` field), unit ``inhabitants``. With
``commune``, only that commune's row and its municipal arrondissements' rows are read (the file
of ``@etalab/decoupage-administratif`` holds every commune of France).

Populations are observations only. The ``population`` field of district and territory records is
not set from them: an item replaces a whole record, and this source knows nothing else of the
districts (their boundaries would be lost); see the lead's notes for a patch item.
"""

from __future__ import annotations

import re
from typing import IO, Any

from server.errors import MalformedBody
from server.ingest import Importer
from server.urls import Urls
from vocabularies import CF

from .areas import CODE_PATTERNS, source_id
from .table import TableSource
from .table_mapping import load_mapping

COLUMNS = {"code": "code_insee", "parent": "commune_parente", "year": "annee_reference_population"}
_URL = re.compile(r"https?://[^\s<>\"{}|\\^`]+")


def mapping(commune: str | None = None, source_url: str | None = None) -> dict[str, Any]:
    """The table mapping of the INSEE populations CSV."""
    key: dict[str, Any] = {"column": COLUMNS["code"], "code_list": "insee-cog"}
    if commune:
        key["territory"] = commune
    dataset: dict[str, Any] = {"title": "Populations légales (INSEE)"}
    if source_url:
        dataset["source_url"] = source_url
    return load_mapping(
        {
            "key": key,
            "period": {"column": COLUMNS["year"]},
            "dataset": dataset,
            "measures": [
                {
                    "column": "population",
                    "name": "population",
                    "label": "Population",
                    "unit": "inhabitants",
                    "datatype": "integer",
                    "property": CF.inhabitants,
                }
            ],
        }
    )


def read(
    data: bytes | IO[bytes],
    *,
    territory: str,
    urls: Urls,
    name: str = "populations.csv",
    commune: str | None = None,
    source_url: str | None = None,
) -> TableSource:
    """A populations source over the CSV's bytes or open binary file; ``commune`` (its COG code) is
    the territory's own: its row is about the territory, and only it and its arrondissements
    are read."""
    if commune is not None and not CODE_PATTERNS["insee-cog"].fullmatch(commune):
        raise MalformedBody(f"option commune: {commune!r} is not an INSEE COG code")
    if source_url is not None and not _URL.fullmatch(source_url):
        raise MalformedBody(f"option source_url: {source_url!r} is not an http(s) URL")

    def keep(cells: dict[str, str]) -> bool:
        return (cells.get(COLUMNS["code"]) or "").strip() == commune or (
            cells.get(COLUMNS["parent"]) or ""
        ).strip() == commune

    return TableSource(
        data, name, source_id("population", name), mapping(commune, source_url), territory, urls,
        keep=keep if commune else None,
    )  # fmt: skip


IMPORTER = Importer(
    "population",
    "INSEE legal populations CSV (code_insee, population, annee_reference_population) → observations by district",
    read,
    options={
        "commune": "COG code of the territory's commune: its row is the territory's; only it and its arrondissements.",
        "source_url": "Where the figures were published (the data set's prov:wasDerivedFrom).",
    },
)
