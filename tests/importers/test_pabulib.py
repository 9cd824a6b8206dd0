"""Participatory-budget files, read without a store: Pabulib ``.pb`` (the Zabrze sample and
generated files) and the Paris winning-projects CSV (the opendata.paris.fr sample)."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from importers import pabulib, paris_bp
from server.errors import MalformedBody
from server.ingest import Item, Record, Rejected

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
PB = SAMPLES / "pb" / "poland_zabrze_2020_pawlow.pb"
PARIS = SAMPLES / "pb-paris" / "opendata.paris.fr_bp_projets_gagnants.csv"
PROCESS = "poland_zabrze_2020_pawlow"


def records(items: list[Item]) -> dict[tuple[str, str], Record]:
    return {(i.kind.name, i.data["id"]): i for i in items if isinstance(i, Record)}


def rejected(items: list[Item]) -> list[Rejected]:
    return [i for i in items if isinstance(i, Rejected)]


def pb_items(text: str, **options: Any) -> list[Item]:
    return list(pabulib.read(text.encode(), name="test.pb", **options).items())


def pb_file(projects: str, votes: str, meta: str = "currency;EUR\n") -> str:
    head = "META\nkey;value\ndescription;Test PB\ncountry;Narnia\nunit;Cair\ninstance;2024\nbudget;1000\n"
    return f"{head}{meta}PROJECTS\n{projects}VOTES\n{votes}"


# -- Pabulib: the real sample ------------------------------------------------------------------


def test_pabulib_sample_maps_meta_projects_and_counts() -> None:
    with PB.open("rb") as f:
        source = pabulib.read(f, name=PB.name)
        items = list(source.items())
    assert rejected(items) == []
    by_key = records(items)
    assert Counter(kind for kind, _ in by_key) == {"process": 1, "budget": 1, "project": 2, "proposal": 2}
    process = by_key["process", PROCESS].data
    assert process == {
        "id": PROCESS,
        "title": "District PB in Zabrze, Pawłów",
        "type": "participatory_budget",
        "start_date": "2019-10-03",
        "end_date": "2019-10-17",
    }
    budget = by_key["budget", PROCESS].data
    # No currency in META: Poland's.
    assert budget["amount"] == {"amount": Decimal(150000), "currency": "PLN"} and budget["fiscal_year"] == 2020
    project = by_key["project", f"{PROCESS}-P0085"].data
    assert project["title"] == "Kwitnący Pawłów" and project["cost"] == {"amount": Decimal(143000), "currency": "PLN"}
    assert project["process"] == project["budget"] == PROCESS and project["proposals"] == [f"{PROCESS}-P0085"]
    assert "selected" not in project  # the file has no selected column
    assert by_key["proposal", f"{PROCESS}-P0011"].data["vote_count"] == 104
    assert by_key["proposal", f"{PROCESS}-P0085"].data["vote_count"] == recount(PB, "P0085") == 63
    assert source.sha256 == hashlib.sha256(PB.read_bytes()).hexdigest() and source.location == PB.name
    for item in by_key.values():  # every record is valid as its kind says
        item.kind.loader.load(json.loads(json.dumps(item.data, default=float)))


def recount(path: Path, project: str) -> int:
    """Ballots naming ``project``, counted here independently of the importer."""
    lines = path.read_text(encoding="utf-8").splitlines()
    ballots = lines[lines.index("VOTES") + 2 :]
    return sum(project in line.split(";")[1].split(",") for line in ballots if line.strip())


def test_pabulib_never_keeps_voters_or_their_attributes() -> None:
    text = pb_file(
        "project_id;cost;name;category;selected;votes\n"
        "1;400;Trees;urban greenery,public space;1;2\n"
        "2;700;Bench;benches;0;1\n",
        "voter_id;age;sex;vote;points\nvoter-8842;61;F;1,2;3,2\nvoter-1377;29;M;1;5\n",
    )
    items = pb_items(text)
    assert rejected(items) == []
    dumped = json.dumps([i.data for i in items if isinstance(i, Record)], default=str)
    for secret in ("voter-8842", "voter-1377", '"61"', '"29"', "points"):
        assert secret not in dumped
    by_key = records(items)
    trees = by_key["project", "narnia_cair_2024-1"].data
    assert trees["themes"] == ["green_spaces", "urban_planning"] and trees["selected"] is True
    assert by_key["proposal", "narnia_cair_2024-1"].data["status"] == "selected"
    bench = by_key["project", "narnia_cair_2024-2"].data
    assert "themes" not in bench and bench["selected"] is False  # "benches" maps to no theme
    assert by_key["proposal", "narnia_cair_2024-2"].data["vote_count"] == 1


def test_pabulib_counts_a_large_vote_as_a_stream() -> None:
    ballots = 40_000

    class Ballots(io.RawIOBase):
        """A .pb file made line by line as it is read: never whole in memory."""

        def __init__(self) -> None:
            head = pb_file("project_id;cost;name\n1;10;A\n2;20;B\n3;30;C\n", "voter_id;vote\n").encode()
            self.lines = itertools.chain(head.splitlines(keepends=True), self._votes())

        @staticmethod
        def _votes() -> Iterator[bytes]:
            for n in range(ballots):
                yield f"{n};{'1,3' if n % 4 else '2'}\n".encode()

        def readline(self, size: int | None = -1) -> bytes:
            return next(self.lines, b"")

    tracemalloc.start()
    try:
        items = list(pabulib.read(Ballots(), name="big.pb").items())  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    counts = {i.data["id"]: i.data["vote_count"] for i in items if isinstance(i, Record) and i.kind.name == "proposal"}
    assert counts == {"narnia_cair_2024-1": 30_000, "narnia_cair_2024-2": 10_000, "narnia_cair_2024-3": 30_000}
    assert peak < 1_000_000  # bytes: 40,000 ballots kept would take several megabytes


# -- Pabulib: malformed input, one case per class -----------------------------------------------


def test_pabulib_a_missing_section_is_malformed() -> None:
    text = pb_file("project_id;cost\n1;10\n", "").replace("VOTES\n", "")
    with pytest.raises(MalformedBody, match=r"test\.pb: no VOTES section"):
        pb_items(text)


def test_pabulib_sections_out_of_order_are_malformed() -> None:
    text = "PROJECTS\nproject_id;cost\n1;10\nMETA\nkey;value\nbudget;10\nVOTES\nvoter_id;vote\n"
    with pytest.raises(MalformedBody, match=r"line 1: PROJECTS where META was expected"):
        pb_items(text)


def test_pabulib_a_project_line_with_a_wrong_field_count_is_rejected() -> None:
    items = pb_items(pb_file("project_id;cost;name\n1;10;A\n2;20\n", "voter_id;vote\n7;1\n"))
    [bad] = rejected(items)
    assert (bad.line, bad.kind) == (12, "project") and "2 fields for the 3 columns" in bad.error.detail
    assert ("project", "narnia_cair_2024-1") in records(items)


def test_pabulib_a_vote_for_an_unknown_project_is_rejected_and_not_counted() -> None:
    items = pb_items(pb_file("project_id;cost\n1;10\n", "voter_id;vote\n7;1\n8;1,9\n"))
    [bad] = rejected(items)
    assert (bad.line, bad.kind, bad.local_id) == (15, "vote", None)
    assert "'9', not in PROJECTS" in bad.error.detail and "8" not in bad.error.detail.replace("'9'", "")
    assert records(items)["proposal", "narnia_cair_2024-1"].data["vote_count"] == 1


def test_pabulib_a_non_numeric_cost_is_rejected() -> None:
    items = pb_items(pb_file("project_id;cost\n1;lots\n2;8000,5\n", "voter_id;vote\n7;1\n"))
    [bad] = rejected(items)
    assert (bad.line, bad.kind, bad.local_id) == (11, "project", "narnia_cair_2024-1")
    assert bad.error.errors[0]["pointer"] == "#/cost/amount"
    assert records(items)["project", "narnia_cair_2024-2"].data["cost"]["amount"] == Decimal("8000.5")


def test_pabulib_a_count_that_contradicts_the_ballots_is_rejected() -> None:
    items = pb_items(pb_file("project_id;cost;votes\n1;10;5\n", "voter_id;vote\n7;1\n"))
    [bad] = rejected(items)
    assert (bad.kind, bad.error.errors[0]["pointer"]) == ("proposal", "#/vote_count")
    assert "proposals" not in records(items)["project", "narnia_cair_2024-1"].data


def test_pabulib_wrong_encoding_is_malformed() -> None:
    body = pb_file("project_id;cost;name\n1;10;Łąka\n", "voter_id;vote\n").encode("cp1250")
    with pytest.raises(MalformedBody, match=r"big\.pb, line 11: not UTF-8"):
        list(pabulib.read(body, name="big.pb").items())


def test_pabulib_unknown_currency_rejects_the_amounts() -> None:
    items = pb_items(pb_file("project_id;cost\n1;10\n", "voter_id;vote\n", meta=""))
    assert {(r.kind, r.error.errors[0]["pointer"]) for r in rejected(items)} == {
        ("project", "#/currency"),
        ("budget", "#/currency"),
    }
    assert records(pb_items(pb_file("project_id;cost\n1;10\n", "voter_id;vote\n", meta=""), currency="GBP"))


# -- Paris winning projects -------------------------------------------------------------------


def paris_items(body: bytes) -> list[Item]:
    return list(paris_bp.read(body, name="bp.csv").items())


def test_paris_sample_maps_editions_projects_and_departments() -> None:
    source = paris_bp.read(PARIS.read_bytes(), name=PARIS.name)
    items = list(source.items())
    by_key = records(items)
    assert Counter(kind for kind, _ in by_key) == {"project": 1209, "process": 9, "budget": 9, "organization": 14}
    # Five winners have no title in the file: reported, not loaded.
    assert [(r.line, r.local_id) for r in rejected(items)] == [
        (2, "paris-bp-2204"),
        (243, "paris-bp-11204"),
        (341, "paris-bp-8606"),
        (924, "paris-bp-2330"),
        (981, "paris-bp-8497"),
    ]
    eole = by_key["project", "paris-bp-3720"].data
    assert eole["title"] == "Une zone de remise en forme au jardin Eole" and "themes" not in eole  # Cadre de vie
    assert eole["cost"] == {"amount": Decimal(110000), "currency": "EUR"} and eole["selected"] is True
    assert eole["address"] == "jardin d'Eole, 75018 Paris" and eole["status"] == "completed"
    assert eole["process"] == eole["budget"] == "paris-bp-2017"
    assert eole["implemented_by"] == "paris-direction-des-espaces-verts-et-de-l-environnement"
    assert [(m["date"], m["title"]) for m in eole["milestones"]][:2] == [
        ("2017-11-01", "Début des études"),
        ("2018-04-01", "Lancement des procédures"),
    ]
    clean = by_key["project", "paris-bp-3780"].data
    assert clean["themes"] == ["cleanliness"] and clean["title"] == "#VillePlusPropre"
    centre = [r.data for r in by_key.values() if r.data.get("address", "").endswith("Paris Centre")]
    assert len(centre) == 33  # arrondissement 75123
    budget = by_key["budget", "paris-bp-2016"].data
    assert budget["amount"]["amount"] == edition_total(2016) and "219 projets" in budget["description"]
    assert source.sha256 == hashlib.sha256(PARIS.read_bytes()).hexdigest()
    for item in by_key.values():
        item.kind.loader.load(json.loads(json.dumps(item.data, default=float)))


def edition_total(year: int) -> int:
    with PARIS.open(encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(f, delimiter=";")
        return sum(int(r["Budget global du projet lauréat"]) for r in rows if r["Edition"] == str(year))


PARIS_HEAD = (
    "Identifiant du projet lauréat;Edition;Titre du projet lauréat;Budget global du projet lauréat;"
    "Arrondissement du projet lauréat;Avancement du projet\n"
)


def test_paris_a_non_numeric_cost_or_an_unknown_arrondissement_is_rejected() -> None:
    body = (
        PARIS_HEAD + "1;2021;Bancs;environ 5000;75011;FIN\n2;2021;Arbres;9000;69003;TRAVAUX\n3;2021;Jeux;100;75116;\n"
    )
    items = paris_items(body.encode())
    assert [(r.line, r.error.errors[0]["pointer"]) for r in rejected(items)] == [(2, "#/cost/amount"), (3, "#/address")]
    assert records(items)["project", "paris-bp-3"].data["address"] == "75116 Paris"


def test_paris_a_missing_column_is_malformed() -> None:
    with pytest.raises(MalformedBody, match="no column 'Edition'"):
        paris_items(PARIS_HEAD.replace("Edition;", "Année;").encode() + b"1;2021;A;10;75001;FIN\n")


def test_paris_wrong_encoding_is_malformed() -> None:
    body = PARIS_HEAD.encode() + b"1;2021;Caf\x81;10;75001;FIN\n"  # 0x81: neither UTF-8 nor Windows-1252
    with pytest.raises(MalformedBody, match=r"bp\.csv, line 2: not UTF-8 nor Windows-1252"):
        paris_items(body)
