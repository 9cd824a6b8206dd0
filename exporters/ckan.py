"""Push the catalog to a CKAN portal: ``civicfed export ckan --url URL --token TOKEN``.

Each territory's datasets go into a CKAN organization (the territory's id, or ``--org``), with
the ids this server gives them (:mod:`server.catalog.ckan`: UUIDs derived from the dataset IRIs),
so a second push finds the same datasets again and the portal's links stay stable.

A push is idempotent: a dataset is written only when what we would send differs from what the
portal holds, so pushing twice leaves the portal's ``metadata_modified`` untouched. A dataset
whose records were all deleted here is deleted there, and so is a dataset of the organization
that carries our marker (its ``uri`` extra is one of this server's dataset IRIs) but that this
server no longer lists. Errors are per dataset: one the portal refuses does not stop the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ckanapi
import requests

from server.catalog import Catalog, Dataset
from server.catalog.ckan import org_name as territory_org_name
from server.catalog.ckan import organization_dict, package_dict, push_payload

#: The line ``civicfed export --help`` shows.
SUMMARY = (
    "Push the catalog to a CKAN portal: --url URL --token TOKEN [--org NAME] [--territory T] "
    "(creates, updates and deletes datasets; docs/publishing-to-ckan.md)"
)
#: What one portal call may raise that concerns that call only (the run goes on).
PORTAL_ERRORS: tuple[type[BaseException], ...] = (ckanapi.errors.CKANAPIError, requests.RequestException)
#: package_search's page size (CKAN clamps ``rows`` to 1000).
SEARCH_ROWS = 1000
#: Seconds a portal call may take (ckanapi waits forever by default: a hung portal would hang the push).
TIMEOUT = 60


@dataclass(frozen=True)
class Failure:
    name: str
    message: str


@dataclass
class Summary:
    """What a push did, by dataset name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "deleted": len(self.deleted),
            "failed": len(self.failed),
        }

    def line(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts().items())


def error_message(err: BaseException) -> str:
    """One line for a portal error: a validation error's field messages, else the error's text."""
    if isinstance(err, ckanapi.ValidationError) and isinstance(err.error_dict, dict):
        parts = []
        for key, value in err.error_dict.items():
            if key == "__type":
                continue
            parts.append(f"{key}: {_flat(value)}")
        return "; ".join(parts) or "validation error"
    if isinstance(err, ckanapi.NotAuthorized):
        detail = err.error_dict.get("message") if isinstance(getattr(err, "error_dict", None), dict) else None
        return f"not authorized: {detail or err}"
    text = " ".join(str(err).split())
    # A CKANAPIError carries the whole response body: keep the line readable.
    return f"{type(err).__name__}: {text[:300]}"


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    return str(value)


def _norm(value: Any) -> Any:
    # CKAN answers null for some empty strings and "" for some nulls: the same thing to us.
    return "" if value is None else value


def comparable(package: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """The part of a package dict (ours or the portal's) that a push sends, in one shape: scalar
    fields as given, extras and tags as sorted lists, resources in order with our fields only.
    ``keys`` is the payload: the portal's additions (timestamps, counts…) are left out."""
    out: dict[str, Any] = {}
    for key, value in keys.items():
        if key == "extras":
            out[key] = sorted((e["key"], _norm(e.get("value"))) for e in package.get("extras") or [])
        elif key == "tags":
            out[key] = sorted(t["name"] for t in package.get("tags") or [])
        elif key == "resources":
            fields = sorted({k for r in value for k in r})
            out[key] = [{k: _norm(r.get(k)) for k in fields} for r in package.get("resources") or []]
        else:
            out[key] = _norm(package.get(key))
    return out


class _Portal:
    """One push's calls to the portal."""

    def __init__(self, ckan: ckanapi.RemoteCKAN) -> None:
        self.ckan = ckan

    def call(self, action: str, **data: Any) -> Any:
        return self.ckan.call_action(action, data, requests_kwargs={"timeout": TIMEOUT})

    def show(self, dataset_id: str) -> dict[str, Any] | None:
        try:
            # include_plugin_data makes CKAN read its database, not the copy in its search index
            # (for a sysadmin; others get the index copy): an index that lags behind would make
            # us skip a write, or repeat one on every push.
            return self.call("package_show", id=dataset_id, include_plugin_data=True)
        except ckanapi.NotFound:
            return None

    def organization(self, name: str, title: str, description: str, uri: str | None) -> dict[str, Any]:
        try:
            return self.call("organization_show", id=name)
        except ckanapi.NotFound:
            pass
        data: dict[str, Any] = {"name": name, "title": title, "description": description}
        if uri:
            data["extras"] = [{"key": "uri", "value": uri}]
        return self.call("organization_create", **data)

    def datasets_of(self, org_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "package_search",
                fq=f'owner_org:"{org_id}"',
                include_private=True,
                rows=SEARCH_ROWS,
                start=len(found),
                sort="name asc",
            )
            found.extend(page["results"])
            if not page["results"] or len(found) >= page["count"]:
                return found


def _push_dataset(portal: _Portal, dataset: Dataset, catalog: Catalog, owner_org: str, summary: Summary) -> None:
    shown = portal.show(dataset.id)
    if dataset.deleted:
        if shown is not None and shown.get("state") != "deleted":
            portal.call("package_delete", id=dataset.id)
            summary.deleted.append(dataset.name)
        else:
            summary.unchanged.append(dataset.name)
        return
    payload = push_payload(package_dict(dataset, catalog), owner_org)
    if shown is None:
        portal.call("package_create", **payload)
        summary.created.append(dataset.name)
    elif comparable(shown, payload) != comparable(payload, payload):
        portal.call("package_update", **payload)
        summary.updated.append(dataset.name)
    else:
        summary.unchanged.append(dataset.name)


def _is_ours(package: dict[str, Any], prefix: str) -> bool:
    return any(
        e.get("key") == "uri" and str(e.get("value", "")).startswith(prefix) for e in package.get("extras") or []
    )


def push(
    catalog: Catalog,
    ckan: ckanapi.RemoteCKAN,
    *,
    base: str,
    org: str | None = None,
    territories: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Create, update or delete the datasets of ``territories`` (every territory of the catalog by
    default) in the portal ``ckan``, in the organization ``org`` (by default one per territory,
    named after it, created when missing). ``base`` is this server's base IRI: the portal's
    datasets whose ``uri`` starts with ``{base}/dataset/`` are ours. ``progress(name)`` is called
    after each dataset."""
    portal = _Portal(ckan)
    summary = Summary()
    chosen = [d for d in catalog.datasets if territories is None or d.territory.id in territories]
    wanted = territories if territories is not None else sorted({d.territory.id for d in chosen})
    by_org: dict[str, list[Dataset]] = {}
    titles: dict[str, tuple[str, str, str | None]] = {}
    for territory in wanted:
        name = org or territory_org_name(territory)
        by_org.setdefault(name, [])
        mine = [d for d in chosen if d.territory.id == territory]
        by_org[name].extend(mine)
        if name not in titles:
            if org is None and mine:
                t = mine[0].territory
                titles[name] = (t.name, organization_dict(t, mine)["description"], t.iri)
            else:
                titles[name] = (name, "Participation data published by civicfed.", None)
    known = {d.id for d in catalog.datasets}
    prefix = f"{base.rstrip('/')}/dataset/"
    for name, datasets in by_org.items():
        try:
            owner = portal.organization(name, *titles[name])
        except PORTAL_ERRORS as err:
            message = f"organization {name}: {error_message(err)}"
            for dataset in datasets:
                summary.failed.append(Failure(dataset.name, message))
                if progress:
                    progress(dataset.name)
            continue
        for dataset in datasets:
            try:
                _push_dataset(portal, dataset, catalog, owner["id"], summary)
            except PORTAL_ERRORS as err:
                summary.failed.append(Failure(dataset.name, error_message(err)))
            if progress:
                progress(dataset.name)
        # Datasets we pushed once and no longer list (a territory's kind gone for good, a
        # dataset renamed): ours by their uri, so a portal's own datasets are never touched.
        try:
            there = portal.datasets_of(owner["id"])
        except PORTAL_ERRORS as err:
            summary.failed.append(Failure(f"organization {name}", f"listing its datasets: {error_message(err)}"))
            continue
        for package in there:
            if package["id"] in known or package.get("state") == "deleted" or not _is_ours(package, prefix):
                continue
            try:
                # The search index may lag behind the database (a dataset deleted or purged
                # still listed): package_show says what is really there.
                current = portal.show(package["id"])
                if current is None or current.get("state") == "deleted":
                    continue
                portal.call("package_delete", id=package["id"])
                summary.deleted.append(package["name"])
            except PORTAL_ERRORS as err:
                summary.failed.append(Failure(package["name"], error_message(err)))
    return summary


def connect(url: str, token: str | None) -> ckanapi.RemoteCKAN:
    """The portal at ``url`` (its site root), with an API token."""
    return ckanapi.RemoteCKAN(url.rstrip("/"), apikey=token, user_agent="civicfed-export-ckan")
