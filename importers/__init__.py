"""Importers: each module reads one format and yields items to the shared loader
(:mod:`server.ingest`). Adding one is one module plus one line in :data:`IMPORTERS`: the command
line (``civicfed import FORMAT SOURCE``) and the JSON API's ingest route find it here.
"""

from __future__ import annotations

from server.ingest import Importer

from . import (
    boundaries,
    ckan_portal,
    consul,
    consul_csv,
    dcat_catalog,
    decidim,
    demo,
    ndjson,
    open311,
    pabulib,
    paris_bp,
    population,
    table,
)

#: Every importer, by format name.
IMPORTERS: dict[str, Importer] = {
    i.format: i
    for i in (
        ndjson.IMPORTER,
        demo.IMPORTER,
        ckan_portal.IMPORTER,
        consul.IMPORTER,
        consul_csv.IMPORTER,
        dcat_catalog.IMPORTER,
        decidim.IMPORTER,
        open311.IMPORTER,
        pabulib.IMPORTER,
        paris_bp.IMPORTER,
        boundaries.IMPORTER,
        population.IMPORTER,
        table.IMPORTER,
    )
}


def by_media_type(media_type: str) -> Importer | None:
    """The importer that accepts an upload of this media type, if any."""
    return next((i for i in IMPORTERS.values() if media_type in i.media_types), None)


def upload_types() -> list[str]:
    """Every media type an upload may have."""
    return [t for i in IMPORTERS.values() for t in i.media_types]
