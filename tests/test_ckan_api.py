"""The CKAN-compatible Action API as CKAN clients use it: ckanapi's RemoteCKAN (POST, and GET with
``get_only``) and its ``dump`` / ``search`` commands against a live server, the Solr subset real
harvesters send in ``fq``, paging, sorting, facets, deletions, and CKAN's exact envelopes and
errors (shapes checked against real CKAN 2.12 answers)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ckanapi
import pytest
import requests

from importers.demo import load_demo
from server.services import services

from .conftest import LiveServer, make_app

#: Keys every CKAN 2.12 dataset dict has (reference: ckan-compat.md §3.3).
PACKAGE_KEYS = {
    "id", "name", "title", "type", "state", "private", "owner_org", "organization", "notes", "license_id",
    "license_title", "license_url", "isopen", "url", "version", "author", "author_email", "maintainer",
    "maintainer_email", "metadata_created", "metadata_modified", "creator_user_id", "tags", "num_tags",
    "groups", "extras", "resources", "num_resources", "relationships_as_subject", "relationships_as_object",
}  # fmt: skip
RESOURCE_KEYS = {
    "cache_last_updated", "cache_url", "created", "description", "format", "hash", "id", "last_modified",
    "metadata_modified", "mimetype", "mimetype_inner", "name", "package_id", "position", "resource_type",
    "size", "state", "url", "url_type",
}  # fmt: skip
#: What udata's CKAN harvester requires (voluptuous required=True; HARVESTERS.md §4.4).
UDATA_PACKAGE = {
    "id", "name", "title", "notes", "license_id", "license_title", "tags", "metadata_created", "metadata_modified",
    "organization", "resources", "private", "type", "author", "author_email", "maintainer", "maintainer_email", "state",
}  # fmt: skip
UDATA_ORGANIZATION = {
    "id", "description", "created", "title", "name", "revision_timestamp", "is_organization", "state", "image_url",
    "revision_id", "type", "approval_status",
}  # fmt: skip
UDATA_RESOURCE = {
    "id", "position", "name", "description", "format", "mimetype", "size", "hash", "created", "last_modified",
    "url", "resource_type",
}  # fmt: skip
CKAN_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$"


@pytest.fixture(scope="module")
def ckan(live_server: LiveServer) -> ckanapi.RemoteCKAN:
    return ckanapi.RemoteCKAN(live_server.url)


def test_the_server_prepares_its_catalog_at_start(live_server: LiveServer) -> None:
    """`civicfed serve` builds the catalog in the background when it starts and says so: the
    first harvest after a start does not wait for it."""
    log = Path(live_server.env["CIVICFED_DATA_DIR"]) / "server.log"
    deadline = time.monotonic() + 60
    while not (found := re.findall(r"prepared its catalog: (\d+) datasets", log.read_text(errors="replace"))):
        assert time.monotonic() < deadline, "the server did not log that it prepared its catalog"
        time.sleep(0.1)
    # Every dataset it has, deleted ones included (other tests' writes add none).
    every = requests.get(f"{live_server.url}/api/3/action/package_search?include_deleted=true&rows=0", timeout=30)
    assert int(found[0]) == every.json()["result"]["count"] > 0


def test_envelope_and_version(live_server: LiveServer) -> None:
    assert requests.get(f"{live_server.url}/api/3", timeout=30).json() == {"version": 3}
    status = requests.get(f"{live_server.url}/api/util/status", timeout=30)  # udata asks it first
    assert status.headers["Content-Type"].startswith("application/json") and "ckan_version" in status.json()
    for prefix in ("/api/3/action", "/api/action"):
        resp = requests.get(f"{live_server.url}{prefix}/status_show", timeout=30)
        body = resp.json()
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
        assert body["success"] is True and body["help"].endswith("/api/3/action/help_show?name=status_show")
        assert body["result"]["ckan_version"].startswith("2.")
    # ckanapi in GET mode sends Content-Type: application/json with no body: that must work.
    get = requests.get(
        f"{live_server.url}/api/3/action/package_list", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert get.status_code == 200 and get.json()["success"]


def test_every_dataset_once_through_list_show_and_search(ckan: ckanapi.RemoteCKAN, live_server: LiveServer) -> None:
    names = ckan.action.package_list()
    assert names == sorted(names) and len(names) == len(set(names)) >= 20
    found: list[dict[str, Any]] = []
    start = 0
    while True:  # the way ckanapi's `search datasets` and harvesters walk it
        page = ckan.action.package_search(q="*:*", rows=7, start=start, sort="id asc")
        if not page["results"]:
            break
        found += page["results"]
        start += len(page["results"])
    assert sorted(p["name"] for p in found) == names and page["count"] == len(names)
    assert [p["id"] for p in found] == sorted(p["id"] for p in found)
    for pkg in found[:5]:
        # A dataset in package_search is its package_show, by name or by id.
        assert ckan.action.package_show(id=pkg["name"]) == pkg == ckan.action.package_show(id=pkg["id"])
    pkg = found[0]
    assert set(pkg) >= PACKAGE_KEYS and pkg["type"] == "dataset" and pkg["state"] == "active"
    assert pkg["organization"]["id"] == pkg["owner_org"] and pkg["num_resources"] == len(pkg["resources"])
    assert re.match(CKAN_TIME, pkg["metadata_modified"]) and re.match(CKAN_TIME, pkg["metadata_created"])
    for position, res in enumerate(pkg["resources"]):
        assert set(res) >= RESOURCE_KEYS and res["position"] == position and res["package_id"] == pkg["id"]
        assert ckan.action.resource_show(id=res["id"]) == res
        assert requests.head(res["url"], timeout=30).status_code == 200
    # The same request gives the same page.
    again = ckan.action.package_search(q="*:*", rows=7, start=7, sort="id asc")
    assert again == ckan.action.package_search(q="*:*", rows=7, start=7, sort="id asc")
    assert ckan.action.package_search(rows=5, start=10_000)["results"] == []


def test_ids_are_stable_across_servers(tmp_path: Path, live_server: LiveServer) -> None:
    """A second instance with the same base IRI and data, on the embedded store (the live server
    is on the backend under test), names everything with the same ids."""
    app = make_app(tmp_path, None, BASE_URI=live_server.url)
    with app.app_context():
        load_demo(services().records)
    client = app.test_client()
    mine = client.get("/api/3/action/package_show?id=grenoble-meetings").get_json()["result"]
    theirs = requests.get(f"{live_server.url}/api/3/action/package_show?id=grenoble-meetings", timeout=30).json()
    assert mine["id"] == theirs["result"]["id"]
    assert [r["id"] for r in mine["resources"]] == [r["id"] for r in theirs["result"]["resources"]]
    app.extensions["civicfed"].close()


@pytest.mark.parametrize(
    ("fq", "expect"),
    [
        ("organization:lyon", lambda p: p["organization"]["name"] == "lyon"),
        ("-organization:lyon", lambda p: p["organization"]["name"] != "lyon"),
        ("organization:(lyon OR rennes)", lambda p: p["organization"]["name"] in ("lyon", "rennes")),
        ('organization:lyon AND res_format:"GeoJSON"', lambda p: p["organization"]["name"] == "lyon"
         and "GeoJSON" in {r["format"] for r in p["resources"]}),
        ("+organization:grenoble +groups:envi", lambda p: p["organization"]["name"] == "grenoble"
         and "envi" in {g["name"] for g in p["groups"]}),
        ("metadata_modified:[2000-01-01T00:00:00Z TO NOW]", lambda p: True),
        ("metadata_modified:[NOW+1DAY TO *]", lambda p: False),
        ("dataset_type:dataset", lambda p: True),
        ("tags:proposals OR tags:meetings", lambda p: p["name"].endswith(("-proposals", "-meetings"))),
        ("license_id:fr-lo", lambda p: p["license_id"] == "fr-lo"),
        ("name:lyon-*", lambda p: p["name"].startswith("lyon-")),
        ("*:*", lambda p: True),
    ],
)  # fmt: skip
def test_fq_subset_of_solr(ckan: ckanapi.RemoteCKAN, fq: str, expect: Any) -> None:
    everything = ckan.action.package_search(rows=1000)["results"]
    got = ckan.action.package_search(fq=fq, rows=1000)
    assert sorted(p["name"] for p in got["results"]) == sorted(p["name"] for p in everything if expect(p))
    assert got["count"] == len(got["results"])
    assert ckan.action.package_search(fq_list=[fq], rows=1000)["count"] == got["count"]


def test_sort_rows_clamp_and_facets(ckan: ckanapi.RemoteCKAN) -> None:
    newest = ckan.action.package_search(sort="metadata_modified desc", rows=1000)["results"]
    stamps = [p["metadata_modified"] for p in newest]
    assert stamps == sorted(stamps, reverse=True)
    by_name = ckan.action.package_search(sort="name asc", rows=3)["results"]
    assert [p["name"] for p in by_name] == sorted(ckan.action.package_list())[:3]
    assert len(ckan.action.package_search(rows=5000)["results"]) <= 1000  # clamped, not an error
    faceted = ckan.action.package_search(
        **{"facet.field": json.dumps(["organization", "res_format", "license_id"]), "facet.limit": 2, "rows": 0}
    )
    assert set(faceted["facets"]) == {"organization", "res_format", "license_id"}
    assert len(faceted["facets"]["organization"]) == 2 and faceted["results"] == []
    items = faceted["search_facets"]["organization"]["items"]
    assert {i["display_name"] for i in items} <= {"Lyon", "Grenoble", "Rennes"}
    assert [i["display_name"] for i in items] == sorted((i["display_name"] for i in items), reverse=True)
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(sort="nonsense desc")
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(unknown_parameter="x")
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(fq="nofield:x")


def test_errors_map_to_ckanapi_exceptions(ckan: ckanapi.RemoteCKAN, live_server: LiveServer) -> None:
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="no-such-dataset")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.organization_show(id="no-such-territory")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.resource_show(id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_show()
    with pytest.raises(ckanapi.NotAuthorized):
        ckan.action.package_create(name="sneaky", owner_org="lyon")
    with pytest.raises(ckanapi.NotAuthorized):
        ckan.action.resource_delete(id="x")
    unknown = requests.post(f"{live_server.url}/api/3/action/no_such_action", json={}, timeout=30)
    assert unknown.status_code == 400 and unknown.json() == "Bad request: Action name not known: no_such_action"
    bad = requests.post(f"{live_server.url}/api/3/action/package_list", data="[1]", timeout=30,
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert bad.status_code == 400 and bad.json().startswith("Bad request: JSON Error")


def test_organizations_groups_tags_and_licences(ckan: ckanapi.RemoteCKAN) -> None:
    orgs = ckan.action.organization_list()
    assert {"lyon", "grenoble", "rennes"} <= set(orgs)
    full = ckan.action.organization_list(all_fields=True)
    assert all(o["is_organization"] and o["package_count"] > 0 for o in full)
    lyon = ckan.action.organization_show(id="lyon", include_datasets=True)
    assert lyon["title"] == "Lyon" and {p["organization"]["name"] for p in lyon["packages"]} == {"lyon"}
    assert lyon["package_count"] == len(lyon["packages"])
    groups = ckan.action.group_list()
    assert "gove" in groups
    gove = ckan.action.group_show(id="gove")
    assert gove["is_organization"] is False and gove["package_count"] == len(ckan.action.package_list())
    assert "proposals" in ckan.action.tag_list()
    ids = {lic["id"] for lic in ckan.action.license_list()}
    assert {"fr-lo", "cc-by", "odc-odbl"} <= ids
    assert ckan.action.site_read() is True


def test_ckanapi_get_only_mode(live_server: LiveServer) -> None:
    client = ckanapi.RemoteCKAN(live_server.url, get_only=True)
    result = client.action.package_search(fq="organization:rennes", rows=100)
    assert result["count"] == len(result["results"]) > 0
    assert all(p["organization"]["name"] == "rennes" for p in result["results"])


def _ckanapi_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "ckanapi"
    # `dump` runs its workers as `ckanapi … --worker`, found on PATH, as a user's shell has it.
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_ckanapi_dump_and_search_commands(live_server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "datasets.jsonl"
    _ckanapi_cli("dump", "datasets", "--all", "-r", live_server.url, "-O", str(out), "-p", "2", "-q")
    dumped = [json.loads(line) for line in out.read_text().splitlines()]
    names = requests.get(f"{live_server.url}/api/3/action/package_list", timeout=30).json()["result"]
    assert [d["name"] for d in dumped] == names  # each exactly once, in package_list order
    searched = [
        json.loads(line) for line in _ckanapi_cli("search", "datasets", "-r", live_server.url).stdout.splitlines()
    ]
    assert sorted(d["name"] for d in searched) == names
    assert {d["name"]: d for d in searched} == {d["name"]: d for d in dumped}


def test_deleted_datasets_with_include_deleted(live_server: LiveServer, ckan: ckanapi.RemoteCKAN) -> None:
    api = f"{live_server.url}/api/v1/territories/lyon/budgets"
    budgets = requests.get(api, params={"limit": 1000}, timeout=30).json()["items"]
    assert budgets
    for budget in budgets:
        assert requests.delete(f"{api}/{budget['id']}", headers=live_server.auth("admin"), timeout=30).ok
    try:
        assert "lyon-budgets" not in ckan.action.package_list()
        with pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id="lyon-budgets")
        assert "lyon-budgets" not in {p["name"] for p in ckan.action.package_search(rows=1000)["results"]}
        deleted = ckan.action.package_search(fq="name:lyon-budgets", include_deleted=True)["results"]
        assert [(p["name"], p["state"]) for p in deleted] == [("lyon-budgets", "deleted")]
    finally:
        skip = ("kind", "iri", "record_modified", "deleted")
        for budget in budgets:
            body = {k: v for k, v in budget.items() if k not in skip}
            assert requests.put(f"{api}/{budget['id']}", json=body, headers=live_server.auth("admin"), timeout=30).ok
    assert "lyon-budgets" in ckan.action.package_list()


def test_the_indicator_cube_is_a_dataset_of_the_catalogs(ckan: ckanapi.RemoteCKAN, live_server: LiveServer) -> None:
    """Each territory's indicator cube is listed (CKAN and DCAT-AP, which the shapes test
    validates as a whole): one file per RDF format, each the cube itself, its observations counted."""
    from pyoxigraph import RdfFormat, parse

    package = ckan.action.package_show(id="lyon-indicators")
    assert set(package) >= PACKAGE_KEYS and "cube de données RDF" in package["notes"]
    assert {r["format"] for r in package["resources"]} == {"Turtle", "JSON-LD", "RDF", "N-Triples"}
    extras = {e["key"]: e["value"] for e in package["extras"]}
    count = int(extras["record_count"])
    periods: set[str] = set()
    formats = {"Turtle": RdfFormat.TURTLE, "N-Triples": RdfFormat.N_TRIPLES, "RDF": RdfFormat.RDF_XML}
    for resource in package["resources"]:
        assert f"{count} observations" in resource["description"]
        got = requests.get(resource["url"], timeout=30)
        assert got.status_code == 200 and got.headers["Content-Type"].startswith(resource["mimetype"])
        if resource["format"] in formats:
            triples = list(parse(got.content, format=formats[resource["format"]]))
            typed = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
            observations = {
                t.subject
                for t in triples
                if t.predicate.value == typed and t.object.value == "http://purl.org/linked-data/cube#Observation"
            }
            assert len(observations) == count
            periods |= {
                t.object.value.rsplit("/", 1)[1]
                for t in triples
                if t.predicate.value == "http://purl.org/linked-data/sdmx/2009/dimension#refPeriod"
            }
    # Its temporal coverage is the periods it has (votes', meetings', budgets' years count too).
    assert (extras["temporal_start"][:4], extras["temporal_end"][:4]) == (min(periods)[:4], max(periods)[:4])
    found = ckan.action.package_search(q="indicateurs", rows=100)["results"]
    assert {"lyon-indicators", "grenoble-indicators", "rennes-indicators"} <= {d["name"] for d in found}
    dcat = requests.get(f"{live_server.url}/dataset/lyon-indicators", headers={"Accept": "text/turtle"}, timeout=30)
    assert dcat.status_code == 200 and "/indicators/lyon.ttl" in dcat.text
