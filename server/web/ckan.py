"""A CKAN-compatible Action API: ``/api/3/action/{name}`` and ``/api/action/{name}`` (GET and
POST), and ``/api/3``.

The read surface CKAN harvesters and clients use (ckanext-harvest's CKAN harvester, udata's,
ckanapi and its ``dump``/``search`` commands), answering exactly as CKAN 2.12 does: the envelope
``{"help", "success", "result"}``, errors ``{"__type", "message"}`` with CKAN's statuses, CKAN's
dataset dicts (``server/catalog/ckan.py``) and its ``package_search`` (``server/catalog/search.py``).
Territories are organizations, EU data themes are groups. Writes are not offered: they answer
CKAN's authorization error.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, request

from ..catalog import Catalog, Dataset
from ..catalog import ckan as ck
from ..catalog.dcat import EU_THEME_LABELS
from ..catalog.search import Postings, QueryError, compile_query, fold, parse_sort, sort_docs
from ..errors import CivicfedError
from ..services import services
from .errors import RENDERERS

bp = Blueprint("ckan", __name__)
#: What CKAN version this API answers like.
CKAN_VERSION = "2.12.0"
ROWS_MAX = 1000
#: package_search parameters CKAN accepts (any other is a Search Query Error).
SEARCH_PARAMS = {
    "q", "fq", "fq_list", "rows", "start", "sort", "facet", "facet.field", "facet.limit", "facet.mincount",
    "include_private", "include_drafts", "include_deleted", "use_default_schema", "fl", "qf", "defType",
    "wt", "callback",
}  # fmt: skip
#: Fields a query may name (CKAN's Solr schema, those a catalog of ours can hold).
SEARCH_FIELDS = {
    "id", "name", "title", "notes", "organization", "owner_org", "groups", "tags", "res_format", "res_url",
    "res_name", "license_id", "metadata_modified", "metadata_created", "type", "dataset_type", "capacity",
    "state", "text", "url", "author", "maintainer", "extras_uri", "extras_spatial_uri", "site_id", "entity_type",
}  # fmt: skip
WRITE_SUFFIXES = ("_create", "_update", "_patch", "_delete", "_purge", "_revise", "_reorder", "_upload")


class CkanError(Exception):
    """An error in CKAN's shape: ``__type`` (which ckanapi maps to its exceptions) and status."""

    def __init__(self, status: int, kind: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.fields = status, kind, message, fields


def _help(name: str) -> str:
    return f"{services().urls.base}/api/3/action/help_show?name={name}"


def _envelope(name: str, body: dict[str, Any], status: int = 200) -> Response:
    result = body.get("result")
    if isinstance(result, Raw):
        text = f'{{"help": {json.dumps(_help(name))}, "success": true, "result": {result}}}'
    else:
        text = json.dumps({"help": _help(name), **body}, ensure_ascii=False)
    callback = request.args.get("callback")
    if callback and request.method == "GET" and status == 200 and re.fullmatch(r"[A-Za-z_$][\w$.]*", callback):
        return Response(f"{callback}({text});", status=status, mimetype="application/javascript")
    resp = Response(text, status=status, content_type="application/json;charset=utf-8")
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def _error(name: str, err: CkanError) -> Response:
    error = {"__type": err.kind, **({"message": err.message} if err.message else {}), **err.fields}
    return _envelope(name, {"success": False, "error": error}, err.status)


def not_found(what: str = "Not found") -> CkanError:
    return CkanError(404, "Not Found Error", what)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _int(data: dict[str, Any], key: str, default: int | None) -> int | None:
    value = data.get(key)
    if value in (None, ""):
        return default
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise CkanError(409, "Validation Error", "", **{key: ["Invalid integer"]}) from None
    if out < 0:
        raise CkanError(409, "Validation Error", "", **{key: ["Must be a natural number"]})
    return out


def data_dict() -> dict[str, Any]:
    """The action's parameters: query arguments (one value → a string, several → a list), merged
    with a JSON object body or form fields, as CKAN reads them."""
    out: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        out[key] = values[0] if len(values) == 1 else values
    if request.method == "POST":
        raw = request.get_data(cache=True)
        if request.form:
            for key in request.form:
                values = request.form.getlist(key)
                out[key] = values[0] if len(values) == 1 else values
        elif raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise _BadRequest(f"Bad request: JSON Error: {exc}") from None
            if not isinstance(body, dict):
                raise _BadRequest("Bad request: JSON Error: Request data JSON decoded to "
                                  f"{body!r} but it needs to be a dictionary.")  # fmt: skip
            out.update(body)
    return out


class _BadRequest(Exception):
    """CKAN answers a request it cannot read with a bare JSON string and 400."""


def _catalog() -> Catalog:
    return services().catalog()


def _find(catalog: Catalog, ident: Any) -> Dataset:
    if not isinstance(ident, str) or not ident:
        raise CkanError(409, "Validation Error", "", id=["Missing value"])
    d = catalog.by_name.get(ident) or next((x for x in catalog.datasets if x.id == ident), None)
    if d is None or d.deleted:
        raise not_found()
    return d


def _org_created(catalog: Catalog) -> dict[str, Any]:
    """Each territory's organization's creation time: its earliest dataset's."""
    created = catalog.derived.get("ckan-created")
    if created is None:
        created = catalog.derived["ckan-created"] = {}
        for d in catalog.datasets:
            if d.issued and (d.territory.id not in created or d.issued < created[d.territory.id]):
                created[d.territory.id] = d.issued
    return created


def _per_dataset(catalog: Catalog, key: str, of: Callable[[Dataset, dt.datetime | None], Any]) -> dict[str, Any]:
    """``of(dataset, its organization's creation)`` for every dataset, by name, made once per
    version of the catalog (``of`` keeps each result while its dataset is unchanged)."""
    table = catalog.derived.get(key)
    if table is None:
        created = _org_created(catalog)
        table = catalog.derived[key] = {d.name: of(d, created.get(d.territory.id)) for d in catalog.datasets}
    return table


def _packages(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Every dataset's dict (``ck.package_of``)."""
    return _per_dataset(catalog, "ckan", ck.package_of)


class Raw(str):
    """A result already written as JSON (assembled from each dataset's kept JSON)."""


def _texts(catalog: Catalog) -> dict[str, str]:
    """Every dataset's dict as JSON (``ck.package_text``)."""
    return _per_dataset(catalog, "ckan-json", ck.package_text)


def _postings(catalog: Catalog) -> Postings:
    """Where each one-term query's datasets are (``package_search``)."""
    postings = catalog.derived.get("ckan-postings")
    if postings is None:
        postings = catalog.derived["ckan-postings"] = Postings([doc for _, doc in _docs(catalog)])
    return postings


def _prepare(catalog: Catalog) -> None:
    """What the actions serve from a new version of the catalog, made before a client asks."""
    _texts(catalog)
    _postings(catalog)


def _docs(catalog: Catalog) -> list[tuple[Dataset, dict[str, list[Any]]]]:
    """What package_search filters: one doc per dataset, for this version of the catalog."""
    docs = catalog.derived.get("ckan-docs")
    if docs is None:
        packages = _packages(catalog)
        docs = catalog.derived["ckan-docs"] = [(d, fold(_doc(d, packages[d.name]))) for d in catalog.datasets]
    return docs


def _doc(d: Dataset, pkg: dict[str, Any]) -> dict[str, list[Any]]:
    extras = {e["key"]: e["value"] for e in pkg["extras"]}
    return {
        "id": [pkg["id"]],
        "name": [pkg["name"]],
        "title": [pkg["title"]],
        "notes": [pkg["notes"]],
        "organization": [pkg["organization"]["name"]],
        "owner_org": [pkg["owner_org"]],
        "groups": [g["name"] for g in pkg["groups"]],
        "tags": [t["name"] for t in pkg["tags"]],
        "res_format": [r["format"] for r in pkg["resources"]],
        "res_url": [r["url"] for r in pkg["resources"]],
        "res_name": [r["name"] for r in pkg["resources"]],
        "license_id": [pkg["license_id"]],
        "metadata_modified": [d.modified] if d.modified else [],
        "metadata_created": [d.issued] if d.issued else [],
        "type": ["dataset"],
        "dataset_type": ["dataset"],
        "entity_type": ["package"],
        "capacity": ["public"],
        "state": [pkg["state"]],
        "url": [pkg["url"]],
        "author": [pkg["author"]],
        "maintainer": [pkg["maintainer"]],
        "extras_uri": [extras.get("uri", "")],
        "extras_spatial_uri": [extras.get("spatial_uri", "")],
        "site_id": [pkg["url"].split("/dataset/", 1)[0]],
        "text": [d.search_text + " " + " ".join(t["name"] for t in pkg["tags"]).lower()],
    }


def _facet_fields(data: dict[str, Any]) -> list[str]:
    raw = data.get("facet.field")
    if raw in (None, "", []):
        return []
    if isinstance(raw, list):
        return [str(x) for x in raw]
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    return [str(x) for x in parsed] if isinstance(parsed, list) else [str(parsed)]


def _display(field: str, value: str, catalog: Catalog) -> str:
    if field == "organization":
        titles = catalog.derived.get("ckan-org-titles")
        if titles is None:  # once per catalog version, not once per facet item
            titles = catalog.derived["ckan-org-titles"] = {
                ck.org_name(d.territory.id): d.territory.name for d in catalog.datasets
            }
        return titles.get(value, value)
    if field == "groups":
        return EU_THEME_LABELS.get(value.upper(), (value, value))[0]
    if field == "license_id":
        return ck.CKAN_LICENCE_TITLES.get(value, value)
    return value


# -- actions ------------------------------------------------------------------------------------


def status_show(data: dict[str, Any]) -> Any:
    config = services().config
    return {
        "ckan_version": CKAN_VERSION,
        "error_emails_to": "",
        "extensions": ["civicfed"],
        "locale_default": "fr",
        "site_description": "Citizen-participation open data (civicfed).",
        "site_title": config["CATALOG_PUBLISHER"],
        "site_url": services().urls.base,
    }


def site_read(data: dict[str, Any]) -> Any:
    return True  # removed in CKAN 2.11; older clients still call it


def package_list(data: dict[str, Any]) -> Any:
    names = [d.name for d in _catalog().live()]
    offset, limit = _int(data, "offset", 0) or 0, _int(data, "limit", None)
    return names[offset : offset + limit if limit is not None else None]


def package_show(data: dict[str, Any]) -> Any:
    catalog = _catalog()
    return Raw(_texts(catalog)[_find(catalog, data.get("id") or data.get("name_or_id")).name])


def resource_show(data: dict[str, Any]) -> Any:
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        raise CkanError(409, "Validation Error", "", id=["Missing value"])
    found = _catalog().resource(ident)
    if found is None or found[0].deleted:
        raise not_found()
    d, r = found
    return ck.resource_dict(d, r, d.distributions.index(r))


def package_search(data: dict[str, Any]) -> Any:
    unknown = sorted(k for k in data if k not in SEARCH_PARAMS and not k.startswith("ext_"))
    if unknown:
        raise CkanError(400, "Search Query Error", f'Search Query is invalid: "Invalid search parameters: {unknown}"')
    catalog = _catalog()
    fq_list = data.get("fq_list") or []
    if isinstance(fq_list, str):
        try:
            fq_list = json.loads(fq_list) if fq_list.startswith("[") else [fq_list]
        except ValueError:
            fq_list = [fq_list]
    try:
        texts = [str(data.get("q") or ""), str(data.get("fq") or ""), *map(str, fq_list)]
        filters = [f for text in texts if (f := compile_query(text, SEARCH_FIELDS)) is not None]
        keys = parse_sort(data.get("sort"))
    except QueryError as exc:
        raise CkanError(400, "Search Query Error", f"Search Query is invalid: {exc}") from None
    include_deleted = _bool(data.get("include_deleted", False))
    every = _docs(catalog)
    postings = _postings(catalog)
    docs = []
    for i in postings.candidates(filters, len(every)):
        d, doc = every[i]
        if (include_deleted or not d.deleted) and all(f(doc) for f in filters):
            docs.append(doc)
    docs = sort_docs(docs, keys)
    rows = min(_int(data, "rows", 10) or 0, ROWS_MAX)
    start = _int(data, "start", 0) or 0
    page = docs[start : start + rows]
    facets: dict[str, dict[str, int]] = {}
    search_facets: dict[str, Any] = {}
    limit = _int(data, "facet.limit", 50)
    mincount = _int(data, "facet.mincount", 1) or 0
    for field in _facet_fields(data):
        counts = Counter(v for doc in docs for v in set(map(str, doc.get(field, ()))))
        items = [(v, n) for v, n in counts.most_common() if n >= mincount]
        if limit is not None and limit >= 0:
            items = items[:limit]
        facets[field] = dict(items)
        shown = [{"count": n, "display_name": _display(field, v, catalog), "name": v} for v, n in items]
        shown.sort(key=lambda i: i["display_name"], reverse=True)
        search_facets[field] = {"title": field, "items": shown}
    texts = _texts(catalog)
    results = ", ".join(texts[doc["name"][0]] for doc in page)
    sort = json.dumps(data.get("sort") or "score desc, metadata_modified desc")
    return Raw(
        f'{{"count": {len(docs)}, "facets": {json.dumps(facets, ensure_ascii=False)}, "results": [{results}], '
        f'"search_facets": {json.dumps(search_facets, ensure_ascii=False)}, "sort": {sort}}}'
    )


def current_package_list_with_resources(data: dict[str, Any]) -> Any:
    limit = _int(data, "limit", None)
    offset = _int(data, "offset", None)
    page = _int(data, "page", None)
    if offset is None:
        offset = ((page or 1) - 1) * (limit or 0) if page else 0
    catalog = _catalog()
    packages = _packages(catalog)
    live = sorted(catalog.live(), key=lambda d: (d.modified or d.issued, d.id), reverse=True)
    chosen = live[offset : offset + limit if limit is not None else None]
    return [packages[d.name] for d in chosen]


def _territories(catalog: Catalog) -> dict[str, list[Dataset]]:
    out: dict[str, list[Dataset]] = {}
    for d in catalog.datasets:
        out.setdefault(ck.org_name(d.territory.id), []).append(d)
    return out


def _listing(data: dict[str, Any], items: list[dict[str, Any]]) -> list[Any]:
    all_fields = _bool(data.get("all_fields", False))
    query = str(data.get("q") or "").lower()
    if query:
        items = [i for i in items if query in i["name"] or query in i["title"].lower()]
    sort = str(data.get("sort") or "title asc").split()
    field, descending = sort[0], len(sort) > 1 and sort[1].lower() == "desc"
    if field not in ("name", "title", "package_count"):
        raise CkanError(409, "Validation Error", "", sort=[f"Cannot sort by field `{field}`"])
    items.sort(key=lambda i: (i[field], i["name"]), reverse=descending)
    limit = _int(data, "limit", 25 if all_fields else 1000) or 0
    limit = min(limit, 25 if all_fields else 1000)
    offset = _int(data, "offset", 0) or 0
    items = items[offset : offset + limit]
    return items if all_fields else [i["name"] for i in items]


def organization_list(data: dict[str, Any]) -> Any:
    catalog = _catalog()
    items = [ck.organization_dict(ds[0].territory, ds) for ds in _territories(catalog).values()]
    return _listing(data, items)


def organization_show(data: dict[str, Any]) -> Any:
    catalog = _catalog()
    ident = data.get("id")
    for name, ds in _territories(catalog).items():
        org = ck.organization_dict(ds[0].territory, ds)
        if ident in (name, org["id"]):
            out = ck.organization_show(ds[0].territory, ds)
            if _bool(data.get("include_datasets", False)):
                packages = _packages(catalog)
                out["packages"] = [packages[d.name] for d in ds if not d.deleted][:ROWS_MAX]
            return out
    raise not_found()


def _themes(catalog: Catalog) -> Counter[str]:
    return Counter(code for d in catalog.live() for code in d.themes)


def group_list(data: dict[str, Any]) -> Any:
    return _listing(data, [ck.group_dict(code, n) for code, n in _themes(_catalog()).items()])


def group_show_action(data: dict[str, Any]) -> Any:
    catalog = _catalog()
    ident = str(data.get("id") or "")
    for code, n in _themes(catalog).items():
        g = ck.group_dict(code, n)
        if ident in (g["name"], g["id"]):
            out = ck.group_show(code, n)
            if _bool(data.get("include_datasets", False)):
                packages = _packages(catalog)
                out["packages"] = [packages[d.name] for d in catalog.live() if code in d.themes][:ROWS_MAX]
            return out
    raise not_found()


def tag_list(data: dict[str, Any]) -> Any:
    packages = _packages(_catalog())
    names = sorted({t["name"] for p in packages.values() if p["state"] == "active" for t in p["tags"]})
    query = str(data.get("query") or data.get("q") or "").lower()
    if query:
        names = [n for n in names if query in n.lower()]
    if _bool(data.get("all_fields", False)):
        return [{"display_name": n, "id": ck.tag_id(n), "name": n, "vocabulary_id": None} for n in names]
    return names


def license_list_action(data: dict[str, Any]) -> Any:
    return ck.licence_list()


def help_show(data: dict[str, Any]) -> Any:
    name = str(data.get("name") or "")
    if name not in ACTIONS:
        raise not_found(f"Action function not found: {name}")
    return (ACTIONS[name].__doc__ or f"CKAN's {name}, read-only.").strip()


ACTIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "status_show": status_show,
    "site_read": site_read,
    "package_list": package_list,
    "package_show": package_show,
    "package_search": package_search,
    "current_package_list_with_resources": current_package_list_with_resources,
    "resource_show": resource_show,
    "organization_list": organization_list,
    "organization_show": organization_show,
    "group_list": group_list,
    "group_show": group_show_action,
    "tag_list": tag_list,
    "license_list": license_list_action,
    "help_show": help_show,
}


@bp.route("/api/util/status", methods=["GET"])
def util_status() -> Response:
    """CKAN's older status page, which udata's CKAN harvester reads first."""
    return Response(json.dumps(status_show({})), content_type="application/json;charset=utf-8")


@bp.route("/api/3", methods=["GET"])
def api_version() -> Response:
    return Response('{"version": 3}', content_type="application/json;charset=utf-8")


@bp.route("/api/3/action/<name>", methods=["GET", "POST"])
@bp.route("/api/action/<name>", methods=["GET", "POST"])
def action(name: str) -> Response:
    try:
        if name.endswith(WRITE_SUFFIXES) or name in ("member_create", "user_invite"):
            raise CkanError(403, "Authorization Error", f"Access denied: {name} is not offered (read-only catalog)")
        function = ACTIONS.get(name)
        if function is None:
            return Response(
                json.dumps(f"Bad request: Action name not known: {name}"),
                status=400,
                content_type="application/json;charset=utf-8",
            )
        result = function(data_dict())
    except CkanError as err:
        return _error(name, err)
    except _BadRequest as err:
        return Response(json.dumps(str(err)), status=400, content_type="application/json;charset=utf-8")
    return _envelope(name, {"success": True, "result": result})


def _render(err: CivicfedError) -> Response:
    """Errors raised before an action runs (rate limits, body size): CKAN's shape."""
    kinds = {404: "Not Found Error", 403: "Authorization Error", 429: "Too Many Requests"}
    name = request.path.rsplit("/", 1)[-1]
    resp = _error(name, CkanError(err.status, kinds.get(err.status, "Bad Request"), err.detail))
    resp.headers.update(err.headers)
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.extensions["civicfed"].catalog_listeners.append(_prepare)
    RENDERERS["/api/3"] = RENDERERS["/api/action"] = _render
