"""The catalog as CKAN sees it: dataset, resource, organization, group, tag and licence dicts in
exactly the shapes CKAN 2.12's Action API answers (``package_show``…), for the CKAN-compatible
API (``server/web/ckan.py``) and for pushing to a CKAN portal (``exporters/ckan.py``).

Ids are UUIDs derived from IRIs (``uuid5``): the same on every run and every store, so a CKAN
harvester or a push recognises the same dataset again. Timestamps are naive UTC, as CKAN writes
them (microseconds only when they are not zero). Names and tags follow CKAN's validators.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
from typing import Any

from vocabularies import EU_FREQUENCY, EU_THEME
from vocabularies.licences import LICENCES, Licence

from .datasets import Catalog, Dataset, Distribution, Territory, stable_uuid
from .dcat import EU_THEME_LABELS, FREQUENCY
from .formats import FILE_TYPES

#: CKAN's own view of who made the datasets: one constant user.
CREATOR = stable_uuid("urn:civicfed:ckan:creator")
#: CKAN tag names: alphanumerics, spaces, "-", "_" and ".", 2 to 100 characters.
TAG_BAD = re.compile(r"[^\w \-.]", re.UNICODE)
#: CKAN licences this server may report, as ``license_list`` has them.
CKAN_LICENCE_TITLES = {
    "fr-lo": "Licence Ouverte / Open Licence version 2.0",
    "cc-by": "Creative Commons Attribution",
    "cc-by-sa": "Creative Commons Attribution Share-Alike",
    "odc-odbl": "Open Data Commons Open Database License (ODbL)",
    "cc-zero": "Creative Commons CCZero",
}


def ckan_time(value: dt.datetime | None) -> str | None:
    """``2026-11-25T17:12:57.495348`` (naive UTC; CKAN drops a zero microsecond part)."""
    if value is None:
        return None
    naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return naive.isoformat()


def tag_name(text: str) -> str | None:
    """A keyword as a valid CKAN tag, or None when nothing valid is left."""
    name = TAG_BAD.sub(" ", text).strip()[:100]
    return name if len(name) >= 2 else None


def tag_id(name: str) -> str:
    return stable_uuid(f"urn:civicfed:tag:{name}")


def org_name(territory: str) -> str:
    """CKAN names have 2 to 100 characters: a one-letter territory gets a suffix."""
    return territory if len(territory) >= 2 else f"{territory}-territory"


def _title(d: Dataset) -> str:
    return d.title_fr if d.territory.language.startswith("fr") else d.title_en


def _notes(d: Dataset) -> str:
    return d.description_fr if d.territory.language.startswith("fr") else d.description_en


def licence_dict(lic: Licence) -> dict[str, Any]:
    return {
        "domain_content": "False",
        "domain_data": "True",
        "domain_software": "False",
        "family": "",
        "id": lic.ckan_id,
        "is_generic": "False",
        "maintainer": "",
        "od_conformance": lic.od_conformance,
        "osd_conformance": "not reviewed",
        "status": "active",
        "title": CKAN_LICENCE_TITLES.get(lic.ckan_id, lic.title_en),
        "url": lic.url,
    }


def licence_list() -> list[dict[str, Any]]:
    return [licence_dict(lic) for lic in LICENCES.values()]


def _organization(t: Territory, created: dt.datetime | None) -> dict[str, Any]:
    """The keys of an organization a dataset dict embeds."""
    return {
        "approval_status": "approved",
        "created": ckan_time(created),
        "description": f"Participation data of {t.name}, published by civicfed.",
        "id": stable_uuid(t.iri),
        "image_url": "",
        "is_organization": True,
        "name": org_name(t.id),
        "state": "active",
        "title": t.name,
        "type": "organization",
    }


def organization_dict(t: Territory, datasets: list[Dataset]) -> dict[str, Any]:
    created = min((d.issued for d in datasets if d.issued), default=None)
    return {
        **_organization(t, created),
        "display_name": t.name,
        "image_display_url": "",
        "num_followers": 0,
        "package_count": sum(1 for d in datasets if not d.deleted),
    }


def organization_show(t: Territory, datasets: list[Dataset]) -> dict[str, Any]:
    out = organization_dict(t, datasets)
    out["extras"] = [{"key": "uri", "value": t.iri}]
    out["groups"] = []
    out["users"] = []
    return out


def _group_iri(code: str) -> str:
    return EU_THEME[code]


def group_dict(code: str, count: int) -> dict[str, Any]:
    """An EU data theme as a CKAN group."""
    en, _ = EU_THEME_LABELS.get(code, (code, code))
    return {
        "approval_status": "approved",
        "created": None,
        "description": "",
        "display_name": en,
        "id": stable_uuid(_group_iri(code)),
        "image_display_url": "",
        "image_url": "",
        "is_organization": False,
        "name": code.lower(),
        "num_followers": 0,
        "package_count": count,
        "state": "active",
        "title": en,
        "type": "group",
    }


def group_show(code: str, count: int) -> dict[str, Any]:
    return {**group_dict(code, count), "extras": [{"key": "uri", "value": _group_iri(code)}], "groups": [], "users": []}


def resource_dict(d: Dataset, r: Distribution, position: int) -> dict[str, Any]:
    return {
        "cache_last_updated": None,
        "cache_url": None,
        "created": ckan_time(d.issued),
        "description": f"All {d.count} {d.items}, one {FILE_TYPES[r.fmt].label} file, updated as the data changes.",
        "format": FILE_TYPES[r.fmt].label,
        "hash": "",
        "id": r.resource_id,
        "last_modified": ckan_time(d.modified),
        "metadata_modified": ckan_time(d.modified),
        "mimetype": r.media_type,
        "mimetype_inner": None,
        "name": r.title_fr if d.territory.language.startswith("fr") else r.title_en,
        "package_id": d.id,
        "position": position,
        "resource_type": None,
        "size": None,
        "state": "active",
        "url": r.url,
        "url_type": None,
    }


def package_dict(d: Dataset, catalog: Catalog | None = None) -> dict[str, Any]:
    """One dataset as CKAN's ``package_show`` gives it (``catalog``: where its territory's other
    datasets are, for its organization's creation time)."""
    siblings = [x for x in catalog.datasets if x.territory.id == d.territory.id] if catalog else [d]
    # A copy: the kept dict is shared by every request that shows the dataset.
    return copy.deepcopy(package_of(d, min((x.issued for x in siblings if x.issued), default=None)))


@functools.lru_cache(maxsize=50_000)
def package_text(d: Dataset, org_created: dt.datetime | None) -> str:
    """``package_of`` as JSON, kept with it: a search answer is assembled from these."""
    return json.dumps(package_of(d, org_created), ensure_ascii=False)


@functools.lru_cache(maxsize=50_000)
def package_of(d: Dataset, org_created: dt.datetime | None) -> dict[str, Any]:
    """``package_dict`` once the organization's creation time is known; kept while the dataset
    is unchanged (a search over 10,000 datasets reuses them). Shared: never change it."""
    t, lic = d.territory, d.territory.licence
    tags = sorted({n for n in (tag_name(k) for k in d.keywords) if n})
    extras = [
        {"key": "uri", "value": d.iri},
        {"key": "identifier", "value": d.iri},
        {"key": "spatial_uri", "value": t.iri},
        # udata's CKAN harvester reads these spellings.
        {"key": "spatial-uri", "value": t.iri},
        {"key": "spatial-text", "value": t.name},
        {"key": "frequency", "value": EU_FREQUENCY[FREQUENCY]},
        {"key": "record_count", "value": str(d.count)},
        {"key": "theme", "value": json.dumps([_group_iri(c) for c in d.themes])},
    ]
    if d.start and d.end:
        extras += [
            {"key": "temporal_start", "value": d.start.isoformat()},
            {"key": "temporal_end", "value": d.end.isoformat()},
        ]
    box = d.bbox or t.bbox
    if box:
        w, s, e, n = box
        polygon = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
        extras.append({"key": "spatial", "value": json.dumps(polygon)})
    extras.sort(key=lambda x: x["key"])
    return {
        "author": t.name,
        "author_email": None,
        "creator_user_id": CREATOR,
        "extras": extras,
        "groups": [
            {
                "description": "",
                "display_name": g["display_name"],
                "id": g["id"],
                "image_display_url": "",
                "name": g["name"],
                "title": g["title"],
            }
            for g in (group_dict(c, 0) for c in d.themes)
        ],
        "id": d.id,
        "isopen": lic.od_conformance == "approved",
        "license_id": lic.ckan_id,
        "license_title": CKAN_LICENCE_TITLES.get(lic.ckan_id, lic.title_en),
        "license_url": lic.url,
        "maintainer": t.name,
        "maintainer_email": t.contact_email,
        "metadata_created": ckan_time(d.issued),
        "metadata_modified": ckan_time(d.modified),
        "name": d.name,
        "notes": _notes(d),
        "num_resources": len(d.distributions),
        "num_tags": len(tags),
        "organization": {
            **_organization(t, org_created),
            # CKAN 2.8 and earlier had them, and udata's CKAN harvester still requires them.
            "revision_id": stable_uuid(f"{t.iri}#revision"),
            "revision_timestamp": ckan_time(org_created),
        },
        "owner_org": stable_uuid(t.iri),
        "private": False,
        "relationships_as_object": [],
        "relationships_as_subject": [],
        "resources": [resource_dict(d, r, i) for i, r in enumerate(d.distributions)],
        "state": "deleted" if d.deleted else "active",
        "tags": [
            {"display_name": n, "id": tag_id(n), "name": n, "state": "active", "vocabulary_id": None} for n in tags
        ],
        "title": _title(d),
        "type": "dataset",
        "url": d.iri + ".html",
        "version": None,
    }


#: The dataset fields a push sends (``package_create``/``package_update``); CKAN computes or
#: owns the rest (timestamps, creator, counts, licence title, organization dict).
PUSHED_FIELDS = (
    "id",
    "name",
    "title",
    "notes",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license_id",
    "url",
    "version",
    "private",
    "state",
)
#: The resource fields a push sends: the rest (position, created, metadata_modified…) is CKAN's.
PUSHED_RESOURCE_FIELDS = ("id", "name", "description", "format", "mimetype", "url", "last_modified")


def push_payload(package: dict[str, Any], owner_org: str) -> dict[str, Any]:
    """The ``package_create``/``package_update`` body for a :func:`package_dict`, in the portal's
    organization ``owner_org`` (its id). Groups are left out: they are the portal's own taxonomy,
    and the EU themes stay in the ``theme`` extra."""
    out = {k: package[k] for k in PUSHED_FIELDS}
    out["owner_org"] = owner_org
    out["extras"] = [{"key": e["key"], "value": e["value"]} for e in package["extras"]]
    out["tags"] = [{"name": t["name"]} for t in package["tags"]]
    out["resources"] = [{k: r[k] for k in PUSHED_RESOURCE_FIELDS} for r in package["resources"]]
    return out
