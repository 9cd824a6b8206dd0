"""Bulk NDJSON ingest: validated line by line, written in one atomic step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.model.examples import RECORDS, record

from .conftest import Territory, snapshot

INGEST = "/api/v1/territories/lyon/ingest"


def ndjson(*records: dict[str, Any]) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in records) + b"\n"


def lines_of_everything() -> list[dict[str, Any]]:
    order = ("organization", "process", "budget", "rule", "proposal", "vote", "comment", "meeting", "project")
    return [{"kind": k, **RECORDS[k]} for k in order]


def post(client: FlaskClient, t: Territory, body: bytes, query: str = "", role: str = "editor") -> Any:
    return client.post(INGEST + query, data=body, content_type="application/x-ndjson", headers=t.auth(role))


def test_mixed_kinds_in_one_batch(client: FlaskClient, lyon: Territory) -> None:
    # Lines may refer forward: links are checked against the batch as a whole.
    lines = list(reversed(lines_of_everything()))
    resp = post(client, lyon, ndjson(*lines))
    report = resp.get_json()
    assert resp.status_code == 200, report
    assert report["written"] is True and report["created"] == 9 and report["rejected"] == 0
    assert report["quads"] > 100
    assert client.get("/api/v1/territories/lyon/projects/prj1").get_json()["title"] == RECORDS["project"]["title"]


def test_one_invalid_line_writes_nothing(client: FlaskClient, lyon: Territory, svc: Any) -> None:
    post(client, lyon, ndjson(*lines_of_everything()[:4]))  # some data already there
    before = snapshot(svc)
    bad = [
        {"kind": "proposal", **record("proposal", id="ok1")},
        {"kind": "proposal", **record("proposal", id="bad1", title="")},
        {"kind": "proposal", **record("proposal", id="bad2", process="ghost")},
        {"kind": "planet", "id": "earth"},
        {"kind": "vote", "id": "v1", "proposal": "ok1", "voter": "ann"},
    ]
    body = ndjson(*bad) + b'{"kind": "proposal", "id": \n'
    resp = post(client, lyon, body)
    report = resp.get_json()
    assert resp.status_code == 422
    assert report["written"] is False
    assert snapshot(svc) == before  # quad for quad
    by_line = {e["line"]: e for e in report["errors"]}
    assert sorted(by_line) == [2, 3, 4, 6]
    assert by_line[2]["errors"][0]["pointer"] == "#/title" and by_line[2]["id"] == "bad1"
    assert by_line[3]["errors"][0]["pointer"] == "#/process"
    assert by_line[4]["errors"][0]["pointer"] == "#/kind"
    assert by_line[6]["status"] == 400  # malformed JSON


def test_partial_writes_the_valid_lines(client: FlaskClient, lyon: Territory) -> None:
    post(client, lyon, ndjson(*lines_of_everything()[:2]))
    lines = [
        {"kind": "proposal", **record("proposal", id="ok1", handled_by=None)},
        {"kind": "proposal", **record("proposal", id="bad1", title="")},
        {"kind": "comment", **record("comment", id="c9", about={"kind": "proposal", "id": "bad1"})},
    ]
    report = post(client, lyon, ndjson(*lines), "?partial=true").get_json()
    assert report["written"] is True and report["created"] == 1 and report["rejected"] == 2
    # The comment about the rejected proposal is rejected too: nothing dangles.
    assert {e["line"] for e in report["errors"]} == {2, 3}
    assert client.get("/api/v1/territories/lyon/proposals/ok1").status_code == 200
    assert client.get("/api/v1/territories/lyon/comments/c9").status_code == 404


def test_dry_run(client: FlaskClient, lyon: Territory, svc: Any) -> None:
    before = snapshot(svc)
    report = post(client, lyon, ndjson(*lines_of_everything()), "?dry_run=true").get_json()
    assert report["written"] is False and report["rejected"] == 0
    assert snapshot(svc) == before


def test_deletions_and_later_lines_win(client: FlaskClient, lyon: Territory) -> None:
    post(client, lyon, ndjson(*lines_of_everything()))
    lines = [
        {"kind": "proposal", **record("proposal", id="p1", title="first")},
        {"kind": "proposal", **record("proposal", id="p1", title="second")},
        {"kind": "comment", "id": "c1", "deleted": True},
    ]
    report = post(client, lyon, ndjson(*lines)).get_json()
    assert report["written"], report
    assert client.get("/api/v1/territories/lyon/proposals/p1").get_json()["title"] == "second"
    assert client.get("/api/v1/territories/lyon/comments/c1").status_code == 410
    # With no recorded comment left, a rewritten proposal shows the count its platform reports.
    assert client.get("/api/v1/territories/lyon/proposals/p1").get_json()["comment_count"] == 3


def test_votes_in_bulk_keep_counts_and_uniqueness(client: FlaskClient, lyon: Territory) -> None:
    post(client, lyon, ndjson(*lines_of_everything()[:5]))  # up to the proposal
    votes = [{"kind": "vote", "id": f"v{i}", "proposal": "p1", "voter": f"u{i}"} for i in range(50)]
    assert post(client, lyon, ndjson(*votes)).get_json()["created"] == 50
    assert client.get("/api/v1/territories/lyon/proposals/p1").get_json()["vote_count"] == 50
    dup = [{"kind": "vote", "id": "again", "proposal": "p1", "voter": "u7"}]
    report = post(client, lyon, ndjson(*dup)).get_json()
    assert report["written"] is False and report["errors"][0]["status"] == 409
    same_batch = [
        {"kind": "vote", "id": "x1", "proposal": "p1", "voter": "newcomer"},
        {"kind": "vote", "id": "x2", "proposal": "p1", "voter": "newcomer"},
    ]
    report = post(client, lyon, ndjson(*same_batch), "?partial=true").get_json()
    assert report["created"] == 1 and report["errors"][0]["line"] == 2
    assert client.get("/api/v1/territories/lyon/proposals/p1").get_json()["vote_count"] == 51


def test_media_type_and_roles(client: FlaskClient, lyon: Territory) -> None:
    body = ndjson(*lines_of_everything()[:1])
    wrong = client.post(INGEST, data=body, content_type="application/json", headers=lyon.auth())
    assert wrong.status_code == 415
    assert client.post(INGEST, data=body, content_type="application/x-ndjson").status_code == 401
    assert post(client, lyon, body, role="organization:voirie").status_code == 403
    assert post(client, lyon, body, role="admin").status_code == 200


def test_empty_lines_and_empty_body(client: FlaskClient, lyon: Territory) -> None:
    report = post(client, lyon, b"\n\n  \n").get_json()
    assert report["written"] is True and report["created"] == 0
    body = b"\n" + ndjson(*lines_of_everything()[:1]) + b"\n\n"
    assert post(client, lyon, body).get_json()["created"] == 1


def test_rejections_cascade_to_records_that_link_to_them(client: FlaskClient, lyon: Territory) -> None:
    """With partial=true, a comment on a proposal rejected for a bad link is rejected too,
    whatever the order of the lines."""
    post(client, lyon, ndjson(*lines_of_everything()[:2]))
    lines = [
        {"kind": "comment", **record("comment", id="c9", about={"kind": "proposal", "id": "orphan"})},
        {"kind": "comment", **record("comment", id="c10", reply_to="c9", about={"kind": "proposal", "id": "ok"})},
        {"kind": "proposal", **record("proposal", id="orphan", process="ghost", handled_by=None)},
        {"kind": "proposal", **record("proposal", id="ok", handled_by=None)},
    ]
    report = post(client, lyon, ndjson(*lines), "?partial=true").get_json()
    assert report["created"] == 1, report
    assert sorted(e["line"] for e in report["errors"]) == [1, 2, 3]
    assert client.get("/api/v1/territories/lyon/comments/c10").status_code == 404


def test_replaying_an_export_is_idempotent(client: FlaskClient, lyon: Territory) -> None:
    body = ndjson(*lines_of_everything())
    post(client, lyon, body)
    before = client.get("/api/v1/territories/lyon/proposals/p1").get_json()["record_modified"]
    again = post(client, lyon, body + ndjson({"kind": "meeting", "id": "never-seen", "deleted": True})).get_json()
    assert again["written"] and again["created"] == again["updated"] == 0 and again["unchanged"] == 10, again
    assert client.get("/api/v1/territories/lyon/proposals/p1").get_json()["record_modified"] == before


def test_rejected_batch_is_a_problem_document(client: FlaskClient, lyon: Territory) -> None:
    resp = post(client, lyon, ndjson({"kind": "proposal", **record("proposal", title="")}))
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["type"].endswith("#validation") and body["written"] is False and body["rejected"] == 1


def test_dry_run_says_what_would_happen(client: FlaskClient, lyon: Territory) -> None:
    report = post(client, lyon, ndjson(*lines_of_everything()), "?dry_run=true").get_json()
    assert report["written"] is False and report["created"] == 9


def test_an_importer_added_to_the_table_is_accepted_by_the_ingest_route(
    client: FlaskClient, seeded: Territory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding an importer is one module and one line in importers.IMPORTERS: the ingest route
    finds it by the upload's media type, and its items go through the same loader."""
    import csv
    import io

    import importers
    from server.ingest import Importer, Record
    from server.model.kinds import KINDS

    @dataclass
    class CsvSource:
        rows: list[dict[str, str]]
        id: str = "csv"
        name: str = "CSV"

        def items(self) -> Iterator[Record]:
            for i, row in enumerate(self.rows, start=2):
                yield Record(KINDS["organization"], {"id": row["id"], "name": row["name"], "type": "association"}, i)

    def read(data: bytes, **_: object) -> CsvSource:
        return CsvSource(list(csv.DictReader(io.StringIO(data.decode()))))

    monkeypatch.setitem(importers.IMPORTERS, "csv", Importer("csv", "Organizations as CSV", read, ("text/csv",)))
    body = "id,name\nasso-1,Les amis du parc\nasso-2,Vélo en ville\n".encode()
    resp = client.post(
        f"/api/v1/territories/{seeded.id}/ingest",
        data=body,
        headers={**seeded.auth(), "Content-Type": "text/csv"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["created"] == 2
    assert client.get(f"/api/v1/territories/{seeded.id}/organizations/asso-2").get_json()["name"] == "Vélo en ville"
    refused = client.post(
        f"/api/v1/territories/{seeded.id}/ingest", data=b"x", headers={**seeded.auth(), "Content-Type": "text/xml"}
    )
    assert refused.status_code == 415 and "text/csv" in refused.get_json()["detail"]
    # A source the importer cannot read at all (Latin-1 where UTF-8 is read) is the client's error.
    latin1 = "id,name\nasso-3,Vélo\n".encode("latin-1")
    unreadable = client.post(
        f"/api/v1/territories/{seeded.id}/ingest", data=latin1, headers={**seeded.auth(), "Content-Type": "text/csv"}
    )
    assert unreadable.status_code == 400 and "could not be read" in unreadable.get_json()["detail"]


def test_statements_of_a_source_replace_its_graph_with_the_records(
    client: FlaskClient, seeded: Territory, svc: Any
) -> None:
    """What a source says about itself goes into its graph in the same atomic write as its
    records: rewritten whole by each import, and left alone when the import writes nothing."""
    from server.ingest import Record, Statements, load
    from server.model.kinds import KINDS

    graph = svc.urls.source_graph(seeded.id, "catalog")
    about = f"<{graph}> <http://purl.org/dc/terms/title>"

    def items(title: str, org: dict[str, Any]) -> list[Any]:
        return [Statements((f'{about} "{title}"',)), Record(KINDS["organization"], org, 1)]

    org = {**RECORDS["organization"], "id": "from-catalog"}
    first = load(svc.records, seeded.id, items("first", org), None, source_id="catalog")
    assert first.written and svc.store.count(graph) == 1
    second = load(svc.records, seeded.id, items("second", {**org, "name": "Renamed"}), None, source_id="catalog")
    assert second.written and [q.object.value for q in svc.store.quads(graph=graph)] == ["second"]
    broken = load(svc.records, seeded.id, items("third", {**org, "type": "nonsense"}), None, source_id="catalog")
    assert not broken.written and [q.object.value for q in svc.store.quads(graph=graph)] == ["second"]
    # Another territory's import of a source of the same name has a graph of its own.
    assert svc.urls.source_graph("grenoble", "catalog") != graph


def test_a_report_lists_the_first_errors_and_counts_the_others(client: FlaskClient, seeded: Territory) -> None:
    """A body of nothing but broken lines answered one entry per line (671 MB for 8 MB of `{`):
    the report lists INGEST_MAX_ERRORS of them and counts the rest."""
    client.application.config["INGEST_MAX_ERRORS"] = 10
    body = b"{\n" * 5_000 + ndjson({"kind": "organization", **RECORDS["organization"], "id": "late"})
    resp = post(client, seeded, body)
    report = resp.get_json()
    assert resp.status_code == 422 and not report["written"]
    assert len(report["errors"]) == 10 and [e["line"] for e in report["errors"]] == list(range(1, 11))
    # The last line is valid but, with rejections and no `partial`, nothing is written.
    assert report["rejected"] == 5_000 and report["errors_omitted"] == 4_990 and report["accepted"] == 1
    assert "the first 10 of them" in report["detail"]
    assert len(resp.data) < 20_000


def test_a_line_longer_than_the_limit_is_refused_unread(client: FlaskClient, seeded: Territory) -> None:
    client.application.config["INGEST_MAX_LINE"] = 2_000
    long_line = json.dumps({"kind": "organization", **RECORDS["organization"], "id": "big", "name": "x" * 5_000})
    body = ndjson({"kind": "organization", **RECORDS["organization"], "id": "small"}) + long_line.encode() + b"\n"
    report = post(client, seeded, body, "?partial=true").get_json()
    assert report["written"] and report["created"] == 1
    assert report["errors"] == [
        {"line": 2, "status": 413, "title": "Request body too large", "detail": "the line is longer than 2000 bytes"}
    ]


def organizations(n: int, bad_every: int) -> list[dict[str, Any]]:
    base = {"kind": "organization", **RECORDS["organization"]}
    return [{**base, "id": f"o{i}", **({"type": "nonsense"} if i % bad_every == 0 else {})} for i in range(n)]


def test_large_sources_are_validated_by_worker_processes_with_the_same_outcome(
    client: FlaskClient, seeded: Territory, svc: Any
) -> None:
    """A source of 2,000 records or more is validated by worker processes, so that ingests into
    different territories run side by side: the report (each rejection, in line order) and what
    is written are exactly those of validation in the request thread."""
    from importers import IMPORTERS
    from server.ingest import load, open_source
    from server.ingest.validate import Validator

    body = ndjson(*organizations(2_500, bad_every=7))

    def report(validator: Validator) -> dict[str, Any]:
        source = open_source(IMPORTERS["ndjson"], body)
        return load(svc.records, seeded.id, source.items(), None, dry_run=True, validator=validator).to_dict()

    in_thread = report(Validator(0))
    assert in_thread["rejected"] == 358 and in_thread["errors"][0]["line"] == 1
    processes = Validator(2)
    try:
        assert report(processes) == in_thread
        started = [p.proc for p in processes.processes]
        assert len(started) == 2
        # A process that dies (killed, out of memory) costs nothing but time: validation goes
        # on in the thread, and the next large source starts a new one.
        started[0].kill()
        started[0].wait()
        assert report(processes) == in_thread
        assert report(processes) == in_thread and len(processes.processes) == 2
        started += [p.proc for p in processes.processes]
    finally:
        processes.close()
    assert all(p.poll() is not None for p in started)

    # Through the API, with the server's own processes.
    resp = post(client, seeded, body, "?partial=true")
    written = resp.get_json()
    assert resp.status_code == 200 and written["created"] == 2_500 - 358
    assert written["errors"] == in_thread["errors"]
    assert len(svc.validator.processes) == svc.validator.workers >= 1


def test_validating_processes_end_with_the_application(tmp_path: Any) -> None:
    from .conftest import make_app

    app = make_app(tmp_path, None)
    validator = app.extensions["civicfed"].validator
    validator.threshold = 1
    assert len(validator.check([("organization", RECORDS["organization"])] * 4)) == 4
    processes = list(validator.processes)
    assert processes and all(p.proc.poll() is None for p in processes)
    app.extensions["civicfed"].close()
    assert all(p.proc.poll() is not None for p in processes)
