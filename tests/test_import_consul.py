"""CONSUL imports into a real store: the GraphQL API (loopback) and the German CSV sample, with no
participant's identity left anywhere in the territory's triples."""

from __future__ import annotations

import csv
import re
from typing import Any

from flask.testing import FlaskClient

from importers import consul, consul_csv
from server.ingest import load

from .conftest import Territory, snapshot
from .importers.test_consul import GERMAN, LOOPBACK, consul_server

API = "/api/v1/territories/lyon"


def test_graphql_import(client: FlaskClient, lyon: Territory, svc: Any) -> None:
    with consul_server() as fake:
        source = consul.read(fake.url, fetcher=LOOPBACK, language="es")
        report = load(svc.records, "lyon", source.items(), None, source_id=source.id)
        identities = {str(node["public_author"]["id"]) for node in fake.data[0]["proposals"]}
        identities |= {str(c["public_author"]["id"]) for cs in fake.data[1].values() for c in cs}
    assert report.written and report.rejected == 0, report.to_dict()
    assert report.to_dict()["created"] == 107
    proposal = client.get(f"{API}/proposals/127.0.0.1-proposal-2").get_json()
    assert proposal["title"] == "Crear una zona cercada para perros en Las Tablas"
    assert proposal["process"] == "127.0.0.1-proposals" and proposal["vote_count"] == 6
    assert proposal["comment_count"] == 10  # the comments recorded now: the 10 the platform reported
    reply = client.get(f"{API}/comments/127.0.0.1-comment-201").get_json()
    assert reply["reply_to"] == "127.0.0.1-comment-200" and len(reply["author_id"]) == 32
    dump = snapshot(svc).decode()
    # A user id anywhere but inside a hexadecimal pseudonym.
    assert "468501" in identities
    assert [i for i in identities if re.search(rf"(?<![0-9a-f]){i}(?![0-9a-f])", dump)] == []


def test_csv_import_of_the_german_sample(client: FlaskClient, lyon: Territory, svc: Any) -> None:
    source = consul_csv.read(GERMAN.read_bytes(), name=GERMAN.name, city="Wuerzburg")
    report = load(svc.records, "lyon", source.items(), None, source_id=source.id)
    assert report.written and report.rejected == 0 and report.to_dict()["created"] == 42, report.to_dict()
    proposal = client.get(f"{API}/proposals/wuerzburg-mitmachen.de-proposal-110").get_json()
    assert proposal["vote_count"] == 20 and len(proposal["author_id"]) == 32
    with GERMAN.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["City"] == "Wuerzburg"]
    texts = " ".join(r["Title"] + " " + r["Description"] + " " + r["Proposed for Project"] for r in rows)
    # Every author name of the sample that is not also words of a text (those may be stored).
    authors = {r["Author"] for r in rows if r["Author"].strip() and r["Author"] not in texts}
    assert len(authors) > 15
    dump = snapshot(svc).decode("utf-8")
    assert [a for a in authors if a in dump] == []
