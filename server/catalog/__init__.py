"""The catalog: what this server publishes as datasets, for open-data portals.

One dataset per territory and kind of public record it holds (``lyon-proposals``), each with its
distributions (the dumps) and the services that serve it (SPARQL, the JSON API). ``datasets``
computes the list from the store; ``dcat`` writes it as DCAT-AP 3. The surfaces (``/catalog``,
the CKAN Action API) and the CKAN exporter read the same list. The list is built from
*providers* (``datasets.PROVIDERS``): indicator cubes and imported sources add theirs.
"""

from __future__ import annotations

from .datasets import Catalog, Dataset, Distribution, build_catalog
from .formats import DUMPED_KINDS, RECORD_FORMATS, TERRITORY_FORMATS, dump_urls

__all__ = [
    "DUMPED_KINDS",
    "RECORD_FORMATS",
    "TERRITORY_FORMATS",
    "Catalog",
    "Dataset",
    "Distribution",
    "build_catalog",
    "dump_urls",
]
