"""``civicfed export ckan`` against a real CKAN 2.12 (``../shared/tools/real-ckan``): what the portal
reads back is what we published, a second push changes nothing there, a deletion here is a
deletion there, and a dataset the portal refuses is reported without stopping the others.

The CKAN is the shared tool's: PostgreSQL and Redis from Debian, CKAN in its own venv, a small
Solr stand-in. The fixture reuses one already answering on the port (``.ci/run`` starts it before
the suite), else starts it with the tool (a few minutes the first time, ~10 s later). It leaves
the CKAN running at the end: the tool daemonises CKAN and its Solr stand-in without giving their
process ids, PostgreSQL and Redis are system services, and the next run reuses them in a second.
A test cleans up the datasets it makes instead (purged at the start, so a failed run leaves no
trace that matters). Outside CI the tests skip when that CKAN cannot start; in CI they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ckanapi
import pytest
import requests

from server.app import create_app
from server.catalog.ckan import package_dict
from server.services import services

from .conftest import ROOT, civicfed, need, subprocess_env

pytestmark = pytest.mark.live

SHARED = Path(os.environ.get("CIVICFED_SHARED") or ROOT.parent / "shared")
SETUP = SHARED / "tools" / "real-ckan" / "setup_real_ckan.sh"
CKAN_PORT = int(os.environ.get("CIVICFED_TEST_CKAN_PORT", "5000"))
CKAN_URL = f"http://127.0.0.1:{CKAN_PORT}"
#: The tool's work directory (its venv, site and token): the tool's own default unless told.
CKAN_WORK = Path(os.environ.get("CIVICFED_TEST_CKAN_WORK") or Path.home() / "ckanwork")
#: Fixed, so the dataset ids (derived from it) are the same on every run of the tests.
BASE = "http://civicfed-ckan.test"
#: A dataset of ours the tests make the portal refuse, and one they make vanish from our catalog.
CLASH = "grenoble-rules"
ORPHAN = "lyon-petitions"


def _answers() -> bool:
    try:
        return requests.get(f"{CKAN_URL}/api/3/action/status_show", timeout=5).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[ckanapi.RemoteCKAN, str]]:
    """A sysadmin client of the real CKAN, and its token."""
    token_file = CKAN_WORK / "ckansite" / "token.txt"
    if not _answers():
        need(SETUP.exists(), f"the real-CKAN tool is missing ({SETUP}; set CIVICFED_SHARED)")
        env = {**os.environ, "W": str(CKAN_WORK), "PORT": str(CKAN_PORT)}
        try:
            done = subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=1800)
            failed = "" if done.returncode == 0 else (done.stdout + done.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            failed = "setup_real_ckan.sh did not finish in 30 minutes"
        need(not failed and _answers(), f"the real CKAN 2.12 could not start at {CKAN_URL}: {failed}")
    need(token_file.exists(), f"CKAN answers at {CKAN_URL} but {token_file} is missing (set CIVICFED_TEST_CKAN_WORK)")
    token = token_file.read_text().strip()
    with ckanapi.RemoteCKAN(CKAN_URL, apikey=token) as ckan:
        yield ckan, token


@dataclass
class Instance:
    env: dict[str, str]
    #: Our datasets as CKAN's package_show gives them, by name.
    packages: dict[str, dict[str, Any]]

    def refresh(self) -> None:
        self.packages = _packages(self.env)


def _packages(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    app = create_app({"DATA_DIR": env["CIVICFED_DATA_DIR"], "BASE_URI": env["CIVICFED_BASE_URI"]})
    try:
        with app.app_context():
            catalog = services().catalog()
            return {d.name: package_dict(d, catalog) for d in catalog.datasets}
    finally:
        app.extensions["civicfed"].close()


def _purge(ckan: ckanapi.RemoteCKAN, name: str) -> None:
    with suppress(ckanapi.NotFound):
        ckan.action.dataset_purge(id=name)


@pytest.fixture(scope="module")
def instance(portal: tuple[ckanapi.RemoteCKAN, str], tmp_path_factory: pytest.TempPathFactory) -> Instance:
    """A civicfed with the demo data (three territories), and a portal without its datasets."""
    data = tmp_path_factory.mktemp("ckan-push") / "data"
    env = subprocess_env(data, BASE, None)  # the push reads the catalog: any backend says the same
    civicfed(env, "demo", "load", "--scale", "0.2")
    packages = _packages(env)
    ckan, _ = portal
    # By id (ours, deleted or not, from an earlier run) and by name (anyone's holding it).
    for name_or_id in [*(p["id"] for p in packages.values()), *packages, ORPHAN]:
        _purge(ckan, name_or_id)
    return Instance(env, packages)


def export(instance: Instance, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return civicfed(instance.env, "export", "ckan", "--url", CKAN_URL, "--token", token, *args, check=False)


def _summary(done: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in done.stdout.splitlines() if line.startswith("ckan: "))


def _show(ckan: ckanapi.RemoteCKAN, name_or_id: str) -> dict[str, Any]:
    """package_show from the portal's database (the Solr stand-in keeps stale copies of deleted
    datasets, which package_show would otherwise serve)."""
    return ckan.action.package_show(id=name_or_id, include_plugin_data=True)


def _listed(ckan: ckanapi.RemoteCKAN, territories: set[str]) -> list[str]:
    """The portal's active datasets of these territories, by name (package_list reads the database:
    the Solr stand-in keeps deleted datasets in its index)."""
    return [name for name in ckan.action.package_list() if name.split("-")[0] in territories]


def test_the_portal_reads_back_what_was_published_and_a_second_push_changes_nothing(
    portal: tuple[ckanapi.RemoteCKAN, str], instance: Instance
) -> None:
    ckan, token = portal
    first = export(instance, token)
    assert first.returncode == 0, first.stderr
    n = len(instance.packages)
    assert n >= 20  # three territories, eight kinds each
    assert _summary(first) == f"ckan: {n} created, 0 updated, 0 unchanged, 0 deleted, 0 failed"
    territories = {p["organization"]["name"] for p in instance.packages.values()}
    assert Counter(_listed(ckan, territories)) == Counter(list(instance.packages))  # every dataset, exactly once
    modified = {}
    for ours in instance.packages.values():
        there = _show(ckan, ours["id"])
        for key in ("id", "name", "title", "notes", "license_id", "url", "maintainer", "author", "state"):
            assert there[key] == ours[key], (ours["name"], key)
        assert there["organization"]["name"] == ours["organization"]["name"]
        assert there["organization"]["title"] == ours["organization"]["title"]
        assert [(r["id"], r["url"], r["format"], r["name"], r["position"]) for r in there["resources"]] == [
            (r["id"], r["url"], r["format"], r["name"], r["position"]) for r in ours["resources"]
        ]
        assert sorted(t["name"] for t in there["tags"]) == sorted(t["name"] for t in ours["tags"])
        assert {e["key"]: e["value"] for e in there["extras"]} == {e["key"]: e["value"] for e in ours["extras"]}
        modified[ours["id"]] = there["metadata_modified"]
    # The same again: nothing is written, so the portal's modification times stay.
    second = export(instance, token)
    assert second.returncode == 0, second.stderr
    assert _summary(second) == f"ckan: 0 created, 0 updated, {n} unchanged, 0 deleted, 0 failed"
    for dataset_id, stamp in modified.items():
        assert _show(ckan, dataset_id)["metadata_modified"] == stamp
    # Pushing one territory touches that territory only.
    one = export(instance, token, "--territory", "rennes")
    assert one.returncode == 0, one.stderr
    rennes = sum(1 for name in instance.packages if name.startswith("rennes-"))
    assert _summary(one) == f"ckan: 0 created, 0 updated, {rennes} unchanged, 0 deleted, 0 failed"


def test_a_deletion_here_is_a_deletion_there(
    portal: tuple[ckanapi.RemoteCKAN, str], instance: Instance, tmp_path: Path
) -> None:
    ckan, token = portal
    assert export(instance, token).returncode == 0
    lyon = ckan.action.organization_show(id="lyon")
    # A dataset this server pushed once and no longer lists, and one of the portal's own.
    ckan.action.package_create(
        name=ORPHAN,
        title="Petitions",
        owner_org=lyon["id"],
        extras=[{"key": "uri", "value": f"{BASE}/dataset/{ORPHAN}"}],
    )
    theirs = ckan.action.package_create(name="lyon-portal-own", title="Portal's own", owner_org=lyon["id"])
    try:
        # Every rule of Lyon deleted: the dataset of Lyon's rules is gone.
        dump = civicfed(instance.env, "export", "ndjson", "--territory", "lyon").stdout.splitlines()
        rules = [json.loads(line) for line in dump if json.loads(line)["kind"] == "rule"]
        assert rules
        tombstones = tmp_path / "tombstones.ndjson"
        tombstones.write_text(
            "".join(json.dumps({"kind": "rule", "id": r["id"], "deleted": True}) + "\n" for r in rules)
        )
        civicfed(instance.env, "import", "ndjson", str(tombstones), "--territory", "lyon")
        before = dict(instance.packages)
        instance.refresh()
        assert instance.packages["lyon-rules"]["state"] == "deleted"
        done = export(instance, token)
        assert done.returncode == 0, done.stderr
        # The rules gone, Lyon's proposals are no longer decided: its indicator cube loses its shares.
        assert _summary(done) == f"ckan: 0 created, 1 updated, {len(before) - 2} unchanged, 2 deleted, 0 failed"
        cube = "lyon-indicators"
        assert instance.packages[cube]["metadata_modified"] != before[cube]["metadata_modified"]
        assert _show(ckan, before["lyon-rules"]["id"])["state"] == "deleted"
        assert _show(ckan, ORPHAN)["state"] == "deleted"
        assert _show(ckan, theirs["id"])["state"] == "active"  # not ours: left alone
        assert "lyon-rules" not in _listed(ckan, {"lyon"})
        # Deleted stays deleted: the next push has nothing to do.
        again = export(instance, token)
        assert _summary(again) == f"ckan: 0 created, 0 updated, {len(before)} unchanged, 0 deleted, 0 failed"
    finally:
        _purge(ckan, theirs["id"])
        _purge(ckan, ORPHAN)


def test_a_dataset_the_portal_refuses_is_reported_and_the_others_go_through(
    portal: tuple[ckanapi.RemoteCKAN, str], instance: Instance
) -> None:
    ckan, token = portal
    assert export(instance, token).returncode == 0
    ours = instance.packages[CLASH]
    # Someone else's dataset took the name in the portal: CKAN refuses ours (the name is in use).
    _purge(ckan, ours["id"])
    grenoble = ckan.action.organization_show(id="grenoble")
    theirs = ckan.action.package_create(name=CLASH, title="Not ours", owner_org=grenoble["id"])
    try:
        done = export(instance, token)
        assert done.returncode == 1
        assert f"ckan: {CLASH}: name: That URL is already in use." in done.stderr
        assert "Traceback" not in done.stderr
        assert (
            _summary(done) == f"ckan: 0 created, 0 updated, {len(instance.packages) - 1} unchanged, 0 deleted, 1 failed"
        )
        assert _show(ckan, theirs["id"])["title"] == "Not ours"
    finally:
        _purge(ckan, theirs["id"])
    # The name free again, the next push creates our dataset with our id.
    healed = export(instance, token)
    assert healed.returncode == 0, healed.stderr
    assert "1 created" in _summary(healed)
    assert _show(ckan, CLASH)["id"] == ours["id"]


def test_a_portal_that_does_not_answer_fails_every_dataset_in_one_line_each(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "data", BASE, None)
    civicfed(env, "territory", "create", "annecy", "--name", "Annecy")
    civicfed(env, "import", "demo", "grenoble", "--territory", "annecy", "--option", "scale=0.1")
    # A closed loopback port: a connection error, per dataset.
    done = civicfed(env, "export", "ckan", "--url", "http://127.0.0.1:9", "--token", "x", check=False)
    assert done.returncode == 1
    failures = [line for line in done.stderr.splitlines() if line.startswith("ckan: annecy-")]
    assert failures and all("organization annecy:" in line for line in failures)
    assert "Traceback" not in done.stderr
    assert "failed" in _summary(done)


def test_the_command_checks_its_options(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "data", BASE, None)
    no_url = civicfed(env, "export", "ckan", "--token", "x", check=False)
    assert no_url.returncode != 0 and "ckan needs --url" in no_url.stderr
    no_token = civicfed(env, "export", "ckan", "--url", CKAN_URL, check=False)
    assert no_token.returncode != 0 and "ckan needs --token" in no_token.stderr
    kind = civicfed(env, "export", "ckan", "--url", CKAN_URL, "--token", "x", "--kind", "proposals", check=False)
    assert kind.returncode != 0 and "ckan takes no --kind" in kind.stderr
    url = civicfed(env, "export", "ndjson", "--territory", "lyon", "--url", CKAN_URL, check=False)
    assert url.returncode != 0 and "ndjson takes no --url" in url.stderr
    unknown = civicfed(env, "export", "ckan", "--url", CKAN_URL, "--token", "x", "--territory", "nowhere", check=False)
    assert unknown.returncode != 0 and "nowhere" in unknown.stderr
    missing = civicfed(env, "export", "ndjson", check=False)
    assert missing.returncode == 2 and "Missing option '--territory'" in missing.stderr
