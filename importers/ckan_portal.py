"""CKAN portals: the datasets a CKAN portal lists, described in DCAT in the source's own graph
(the territory's catalog of external datasets, source kept).

``civicfed import ckan https://ckan.example --territory t [--option fq=organization:xyz]`` pages
through the portal's ``package_search`` (``rows`` a page, ``start`` moving on, in name order) with
``ckanapi.RemoteCKAN``, every request made by the :class:`~importers.remote.Fetcher` (host
allowlist, private addresses, size and time limits), up to ``max_datasets`` datasets.

Each package becomes a ``dcat:Dataset`` (:mod:`importers.ckan_dcat` maps it): the items are
:class:`~server.ingest.Statements`, one per dataset, which the loader writes into the source's
graph, replaced whole on each run. A package that cannot be mapped is a Rejected item.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import ckanapi

from server.errors import CivicfedError, MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Rejected, Statements

from .ckan_dcat import package_statements
from .dcat_rdf import configured_fetcher, iri, source_slug
from .remote import USER_AGENT, Fetcher, SourceUnavailable

#: Datasets asked for a page by default (CKAN's own limit is 1000) and read at most.
ROWS = 100
MAX_DATASETS = 10_000


class FetcherSession:
    """What ``ckanapi.RemoteCKAN`` uses of a ``requests.Session``, each request made by the
    fetcher; the bytes it receives go into the source's digest."""

    def __init__(self, fetcher: Fetcher, digest: Any) -> None:
        self.fetcher, self.digest = fetcher, digest

    def get(self, url: str, params: Any = None, headers: Any = None, **_requests: Any) -> _Answer:
        return self._answer(self.fetcher.request("GET", url, params=params, headers=headers))

    def post(self, url: str, data: Any = None, headers: Any = None, files: Any = None, **_requests: Any) -> _Answer:
        if files:
            raise ValueError("an importer uploads nothing")
        body = json.loads(data) if data else {}
        return self._answer(self.fetcher.request("POST", url, headers=headers, json=body))

    def close(self) -> None:
        """Nothing to close: the fetcher's session is the fetcher's."""

    def _answer(self, fetched: Any) -> _Answer:
        self.digest.update(fetched.content)
        return _Answer(fetched.status, fetched.content.decode("utf-8", "replace"))


@dataclass(frozen=True)
class _Answer:
    status_code: int
    text: str


@dataclass
class CkanSource:
    """A CKAN portal at ``base``: its datasets matching ``fq``."""

    id: str
    name: str
    location: str
    base: str
    fetcher: Fetcher
    fq: str | None = None
    rows: int = ROWS
    max_datasets: int = MAX_DATASETS
    sha256: str | None = None
    #: False when reading stopped at ``max_datasets`` with more to read.
    complete: bool = True
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def items(self) -> Iterator[Item]:
        session = FetcherSession(self.fetcher, self._digest)
        ckan = ckanapi.RemoteCKAN(self.base, session=session, get_only=True, user_agent=USER_AGENT)
        seen: set[str] = set()
        start = number = count = 0
        while True:
            rows = min(self.rows, self.max_datasets - start)
            if rows <= 0:
                break
            results, count = self._search(ckan, start, rows)
            for package in results:
                number += 1
                key = package.get("id") or package.get("name") if isinstance(package, dict) else None
                if not isinstance(key, str):  # (a list or an object would not even hash)
                    key = None
                elif key in seen:  # the same dataset again on a later page (the portal changed meanwhile)
                    continue
                try:
                    lines = package_statements(package, self.base)
                except CivicfedError as err:
                    yield Rejected(err, number, "dataset", key)
                    continue
                if key is not None:
                    seen.add(key)
                yield Statements(tuple(lines))
            start += len(results)
            if not results or start >= count:
                break
        self.complete = start >= count
        self.sha256 = self._digest.hexdigest()

    def _search(self, ckan: ckanapi.RemoteCKAN, start: int, rows: int) -> tuple[list[Any], int]:
        params: dict[str, Any] = {"rows": rows, "start": start, "sort": "name asc"}
        if self.fq:
            params["fq"] = self.fq
        try:
            page = ckan.action.package_search(**params)
        except (ckanapi.SearchQueryError, ckanapi.SearchError, ckanapi.ValidationError) as exc:
            raise ValidationFailed(f"{self.base} refused the search {params}: {exc}") from exc
        except ckanapi.NotFound as exc:
            raise SourceUnavailable(f"{self.base} has no CKAN Action API (package_search not found)") from exc
        except (ckanapi.CKANAPIError, ckanapi.ServerIncompatibleError) as exc:
            raise MalformedBody(f"{self.base} did not answer as a CKAN Action API: {str(exc)[:300]}") from exc
        except RecursionError as exc:  # ckanapi's json.loads of an answer nested beyond reason
            raise MalformedBody(f"{self.base}: package_search (start={start}) answered JSON nested too deeply") from exc
        if not (
            isinstance(page, dict) and isinstance(page.get("results"), list) and isinstance(page.get("count"), int)
        ):
            raise MalformedBody(f"{self.base}: package_search (start={start}) answered no results list and count")
        return page["results"], page["count"]


# -- the importer ----------------------------------------------------------------------------------


def read(
    source: str,
    *,
    fetcher: Fetcher | None = None,
    fq: str | None = None,
    rows: int | str = ROWS,
    max_datasets: int | str = MAX_DATASETS,
) -> CkanSource:
    """A CKAN portal: ``source`` is its base URL (``https://ckan.example``; a URL of its API is
    cut back to it)."""
    try:
        size, most = int(rows), int(max_datasets)
    except ValueError:
        raise ValidationFailed("rows and max_datasets are numbers") from None
    if not 1 <= size <= 1000 or most < 1:
        raise ValidationFailed("rows is 1 to 1000 (CKAN's limit) and max_datasets at least 1")
    if not source.startswith(("http://", "https://")):
        raise MalformedBody(f"{source!r} is not a CKAN portal's http(s) URL")
    base = re.sub(r"/api(/\d+)?(/action(/.*)?)?$", "", source.rstrip("/"))
    if iri(base) != f"<{base}>" or urlsplit(base).query:
        raise MalformedBody(f"{source!r} is not a portal's base URL")
    fetcher = fetcher or configured_fetcher()
    fetcher.check(base)  # refused now rather than when the run starts reading
    source_id = "ckan-" + source_slug(base, fq or "")
    return CkanSource(source_id, f"CKAN {base}", base, base, fetcher, fq=fq or None, rows=size, max_datasets=most)


IMPORTER = Importer(
    "ckan",
    "A CKAN portal's datasets, described in DCAT in the source's graph (SOURCE: the portal's base URL)",
    read,
    reads_file=False,
    options={
        "fq": "A Solr filter on the datasets (package_search's fq), e.g. organization:city-of-example.",
        "rows": f"Datasets asked for a page (default {ROWS}; CKAN allows up to 1000).",
        "max_datasets": f"Datasets read at most (default {MAX_DATASETS}).",
    },
    remote=True,
)
