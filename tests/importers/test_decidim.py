"""The Decidim open-data importer on real exports of decidim.barcelona (tests/data/samples/decidim),
a ZIP built from them, generated exports of the newer layout, and one case per malformed input."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.decidim_export import write_export
from importers.decidim import read
from server.errors import MalformedBody
from server.ingest import Item, Record, Rejected
from server.model.kinds import KINDS

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "decidim"
HOST = "www.decidim.barcelona-open-data-"
PROJECTS = SAMPLES / f"{HOST}projects.head50.csv"
RESULT_COMMENTS = SAMPLES / f"{HOST}result_comments.csv"
MEETING_COMMENTS = SAMPLES / f"{HOST}meeting_comments.head200.csv"

#: A newer-layout meetings file (0.27+ columns) with two of the meetings the sample comments are on.
MEETINGS = (
    "id;participatory_space/id;participatory_space/url;component/id;title/ca;title/es;description/ca;"
    "description/es;start_time;end_time;attendees;address;location/ca;location/es;type_of_meeting;"
    "online_meeting_url;available_slots;url;related_proposals\n"
    "905;12;https://www.decidim.barcelona/processes/Repensem22a;120;Repensem la 22@;Repensemos el 22@;"
    '"<p>Sessió <b>oberta</b></p>";"<p>Sesión abierta</p>";2017-10-19 16:00:00;2017-10-19 18:00:00;35;'
    'Carrer de Pujades 1;Casal del Poblenou;"";in_person;"";0;'
    "https://www.decidim.barcelona/processes/Repensem22a/f/120/meetings/905;\n"
    "980;12;https://www.decidim.barcelona/processes/Repensem22a;120;Sessió en línia;Sesión en línea;"
    '"";"";2018-01-20 10:00:00;2018-01-20 12:00:00;0;Carrer de Pujades 1;"";"";online;'
    "https://meet.example.org/22a;40;https://www.decidim.barcelona/processes/Repensem22a/f/120/meetings/980;\n"
)


def items_of(path: Path, **options: Any) -> list[Item]:
    with path.open("rb") as f:
        return list(read(f, name=path.name, **options).items())


def records(items: list[Item], kind: str | None = None) -> list[Record]:
    return [i for i in items if isinstance(i, Record) and (kind is None or i.kind.name == kind)]


def valid(record: Record) -> dict[str, Any]:
    """The record as the loader's schema reads it (raises if it would be rejected)."""
    return KINDS[record.kind.name].loader.load(record.data)  # type: ignore[no-any-return]


def sample_zip(*extra: tuple[str, str | bytes], samples: bool = True) -> bytes:
    """A ZIP laid out as decidim.barcelona serves it: the sample files, README and LICENSE, and
    ``extra`` entries, comments first (the importer reads entities in its own order)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if samples:
            for path in (MEETING_COMMENTS, RESULT_COMMENTS, PROJECTS):
                archive.writestr(path.name.replace(".head200", "").replace(".head50", ""), path.read_bytes())
        for name, data in extra:
            archive.writestr(name, data)
        archive.writestr("README.md", "# Open data\n")
        archive.writestr("LICENSE.md", "ODbL 1.0\n")
    return out.getvalue()


# -- the real samples ----------------------------------------------------------------------------


def test_budgets_projects_sample() -> None:
    items = items_of(PROJECTS)
    assert Counter(type(i).__name__ for i in items) == {"Record": 53}
    projects, processes = records(items, "project"), records(items, "process")
    assert len(projects) == 50 and [p.data["id"] for p in projects[:3]] == ["project.1", "project.2", "project.3"]
    # The three participatory spaces the projects are in, named by their URLs (query string dropped).
    assert [p.data for p in processes] == [
        {
            "id": slug,
            "title": slug,
            "type": "other",
            "url": f"https://www.decidim.barcelona/processes/{slug}",
        }
        for slug in ("coproduccio-de-projectes-a-gracia", "prova-pilot-pressupostos-participatius",
                     "PressupostosParticipatius")
    ]  # fmt: skip
    first = projects[0]
    assert first.line == 2 and items.index(first) == 1  # its space comes just before it
    assert first.data == {
        "id": "project.1",
        "process": "coproduccio-de-projectes-a-gracia",
        "title": "Publicació del llibre ‘gent del nostre barri, vista per gent del nostre barri’",  # noqa: RUF001
        "description": "Imprimir el llibre del Grup d’Estudis Coll-Vallcarca. "  # noqa: RUF001
        "Per recuperar la memòria dels barris, "
        "difondre el llibre elaborat de manera col·lectiva i promoure la intergeneracionalitat dels barris.",
        "cost": {"amount": 18000, "currency": "EUR"},
        "url": "https://www.decidim.barcelona/processes/coproduccio-de-projectes-a-gracia/f/21/budgets/1/projects/1",
        "created": "2017-02-07T07:58:01Z",
    }
    # No budgets file in the export: budget/id 1 names nothing here. Related proposals likewise.
    assert not any("budget" in p.data or "proposals" in p.data for p in projects)
    assert projects[-1].data["id"] == "project.72" and projects[-1].data["process"] == "PressupostosParticipatius"
    with PROJECTS.open(newline="", encoding="utf-8") as f:
        amounts = [int(row["budget_amount"]) for row in csv.DictReader(f, delimiter=";")]
    assert [p.data["cost"]["amount"] for p in projects] == amounts
    for record in items:
        valid(record)  # type: ignore[arg-type]


def test_spaces_already_in_the_territory_are_not_written_again() -> None:
    items = items_of(PROJECTS, spaces="existing")
    assert len(items) == len(records(items, "project")) == 50
    assert records(items)[0].data["process"] == "coproduccio-de-projectes-a-gracia"


def test_languages_pick_the_translation() -> None:
    spanish = records(items_of(PROJECTS, languages="es,ca"), "project")[0]
    assert spanish.data["title"] == "Publicación del libro “gent del nostre barri, vista per gent del nostre barri”"
    assert spanish.data["description"].startswith("Imprimir el libro del Grupo de Estudios del Coll-Vallcarca.")


def test_result_comments_sample() -> None:
    items = items_of(RESULT_COMMENTS)
    comments = records(items, "comment")
    assert len(items) == len(comments) == 87
    assert comments[0].data == {
        "id": "18668",
        "about": {"kind": "project", "id": "result.6469"},
        "body": comments[0].data["body"],
        "alignment": 0,
        "language": "ca",
        "author": "24192",  # author/id: the write-only field, pseudonymised by the loader
        "created": "2016-07-02T17:40:43Z",
    }
    assert comments[0].data["body"].startswith("El barri de Navas està molt mancat de recursos")
    quoted = next(c for c in comments if c.data["id"] == "18678")
    assert quoted.line == 7 and '"incrementar i millorar funcionalment' in quoted.data["body"]
    # Replies are about the thread's root (from its URL) and answer their parent comment.
    replies = [c for c in comments if "reply_to" in c.data]
    assert len(replies) == 8
    assert replies[0].data["id"] == "20265" and replies[0].data["reply_to"] == "20264"
    assert replies[0].data["about"] == {"kind": "project", "id": "result.2618"}
    assert Counter(c.data["alignment"] for c in comments) == {0: 76, -1: 6, 1: 5}
    assert Counter(c.data["language"] for c in comments) == {"ca": 59, "es": 28}
    for comment in comments:
        valid(comment)


def test_meeting_comments_sample_keep_what_was_typed() -> None:
    comments = records(items_of(MEETING_COMMENTS), "comment")
    assert len(comments) == 200
    assert Counter(c.data["about"]["id"] for c in comments) == {"980": 199, "905": 1}
    by_id = {c.data["id"]: c.data for c in comments}
    assert by_id["19736"]["body"].startswith("Hola,\n\nhabra minutas despues de la reunion")
    # A comment is plain text: markup in it is what its author typed, kept as such.
    assert by_id["19896"]["body"] == "<script>alert(1);</script>"
    assert by_id["19837"]["body"] == "c:/Windows/system.ini"


def identities(*paths: Path) -> set[str]:
    """The participants' and groups' names in comment files, but those their comments also
    mention (a signature, "Pruebas"): those are in the text the comments are, by their authors."""
    names, texts = set(), []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter=";"):
                names |= {row["author/name"].strip(), row["user_group/name"].strip()}
                texts.append(row["body"])
    bodies = "\n".join(texts)
    return {n for n in names if n and n not in bodies}


def test_no_identity_outside_the_author_field() -> None:
    names = identities(RESULT_COMMENTS, MEETING_COMMENTS)
    # 66 names, made up here (SOURCES.md); all but the two that comments also mention.
    assert len(names) == 64 and "Participant 003" in names
    for path in (RESULT_COMMENTS, MEETING_COMMENTS):
        for comment in records(items_of(path)):
            public = str({k: v for k, v in comment.data.items() if k != "author"})
            assert not [name for name in names if name in public]


def test_digest_and_names() -> None:
    source = read(PROJECTS.read_bytes(), name=PROJECTS.name)
    assert source.sha256 is None
    list(source.items())
    assert source.sha256 == hashlib.sha256(PROJECTS.read_bytes()).hexdigest()
    assert source.id == "decidim-www.decidim.barcelona-projects"  # the same export's file, whatever its name
    assert source.location == source.name == PROJECTS.name


class Pipe(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_standard_input_is_read_once() -> None:
    data = sample_zip()
    source = read(Pipe(data), name="-")
    assert len(list(source.items())) == 340 and source.id == "decidim-www.decidim.barcelona"
    assert source.sha256 == hashlib.sha256(data).hexdigest()


# -- a ZIP of the samples ------------------------------------------------------------------------


def test_zip_of_the_samples() -> None:
    only_905 = MEETINGS.split("\n")[0] + "\n" + MEETINGS.split("\n")[1] + "\n"
    data = sample_zip((f"{HOST}meetings.csv", only_905))
    source = read(data, name="download.zip")
    items = list(source.items())
    assert source.sha256 == hashlib.sha256(data).hexdigest() and source.id == "decidim-www.decidim.barcelona"
    kinds = Counter(i.kind.name if isinstance(i, Record) else "rejected" for i in items)
    # 4 spaces (3 of the projects', 1 of the meeting's), 50 projects, 1 meeting, 87 + 1 comments;
    # the 199 comments on meeting 980, which the export's meetings file does not have, rejected.
    assert kinds == {"process": 4, "project": 50, "meeting": 1, "comment": 88, "rejected": 199}
    order = [i.kind.name for i in items if isinstance(i, Record)]
    assert order.index("meeting") < order.index("comment")  # meetings read before comments
    rejected = next(i for i in items if isinstance(i, Rejected))
    assert (rejected.kind, rejected.local_id, rejected.line) == ("comment", "19836", 9)
    assert "meeting 980 it is about is not in this export" in rejected.error.detail
    assert rejected.error.errors == [{"pointer": "#/about", "detail": rejected.error.detail}]
    meeting = records(items, "meeting")[0].data
    assert meeting == {
        "id": "905",
        "process": "Repensem22a",
        "title": "Repensem la 22@",
        "description": "Sessió oberta",
        "start": "2017-10-19T16:00:00Z",
        "end": "2017-10-19T18:00:00Z",
        "mode": "in_person",
        "place_name": "Casal del Poblenou",
        "address": "Carrer de Pujades 1",
        "attendees_count": 35,
        "language": "ca",
        "url": "https://www.decidim.barcelona/processes/Repensem22a/f/120/meetings/905",
    }
    online = records(list(read(sample_zip((f"{HOST}meetings.csv", MEETINGS)), name="x.zip").items()), "meeting")[1]
    assert online.data["mode"] == "online" and "address" not in online.data and online.data["capacity"] == 40


DEBATES = (
    "id;author/id;author/name;title/ca;description/ca;instructions/ca;start_time;end_time;participatory_space/id;"
    "participatory_space/url;component/id;reference;comments;url;last_comment_by/name;closed_at;created_at\n"
    "5;9;Anna Serra;Quin barri volem?;<p>Parlem-ne</p>;;2024-02-01 09:00:00 UTC;2024-03-01 09:00:00 UTC;2;"
    "https://h.example/assemblies/consell;31;H-DEB-2024-02-5;1;"
    "https://h.example/assemblies/consell/f/31/debates/5;Pere Roca;"
    "2024-03-02 10:00:00 UTC;2024-01-30 12:00:00 UTC\n"
)
RESULTS = (
    "id;title/ca;description/ca;start_date;end_date;status/id;status/key;status/name/ca;progress;created_at;url;"
    "proposal_urls\n"
    "7;Nova plaça;<p>Obres</p>;2024-01-15;2024-09-30;3;executing;En execució;62.5;2024-01-10 08:00:00 UTC;"
    '"https://h.example/processes/pam/f/8/results/7";"https://h.example/processes/pam/f/3/proposals/11, https://h.example/processes/pam/f/3/'
    'proposals/12"\n'
)


def test_debates_and_results() -> None:
    comments = (
        "id;created_at;body;locale;author/id;author/name;alignment;depth;commentable_id;commentable_type;"
        "root_commentable_url\n"
        "40;2024-02-02 10:00:00 UTC;Més verd;ca;9;Anna Serra;1;0;5;Decidim::Debates::Debate;https://h.example/assemblies/consell/f/31/debates/5\n"
        "41;2024-02-03 10:00:00 UTC;I ombra;ca;8;Pere Roca;-1;1;40;Decidim::Comments::Comment;https://h.example/assemblies/consell/f/31/debates/5\n"
        "42;2024-02-03 11:00:00 UTC;Quan?;ca;8;Pere Roca;0;0;7;Decidim::Accountability::Result;https://h.example/processes/pam/f/8/results/7\n"
    )  # fmt: skip
    data = sample_zip(
        ("h-open-data-debate_comments.csv", comments), ("h-open-data-debates.csv", DEBATES),
        ("h-open-data-results.csv", RESULTS), samples=False,
    )  # fmt: skip
    items = list(read(data, name="h.zip").items())
    assert [(i.kind.name, i.data["id"]) for i in records(items)] == [
        ("process", "pam"), ("project", "result.7"), ("process", "debate.5"),
        ("comment", "40"), ("comment", "41"), ("comment", "42"),
    ]  # fmt: skip
    debate, result = records(items, "process")[1].data, records(items, "project")[0].data
    assert debate == {
        "id": "debate.5",
        "title": "Quin barri volem?",
        "description": "Parlem-ne",
        "type": "debate",
        "status": "closed",
        "start_date": "2024-02-01",
        "end_date": "2024-03-01",
        "language": "ca",
        "url": "https://h.example/assemblies/consell/f/31/debates/5",
        "created": "2024-01-30T12:00:00Z",
    }
    # Its proposals are not in this export: the links are left out rather than dangling.
    assert result == {
        "id": "result.7",
        "process": "pam",
        "title": "Nova plaça",
        "description": "Obres",
        "start_date": "2024-01-15",
        "end_date": "2024-09-30",
        "progress": 62.5,
        "url": "https://h.example/processes/pam/f/8/results/7",
        "created": "2024-01-10T08:00:00Z",
    }
    about = [c.data["about"] for c in records(items, "comment")]
    assert about == [{"kind": "process", "id": "debate.5"}] * 2 + [{"kind": "project", "id": "result.7"}]
    assert records(items, "comment")[1].data["reply_to"] == "40"
    assert "Anna" not in str([r.data for r in records(items)]).replace("'author': '9'", "")
    for record in records(items):
        valid(record)


def test_a_comment_on_what_civicfed_has_no_kind_for_is_rejected() -> None:
    comments = (
        "id;created_at;body;locale;author/id;author/name;alignment;depth;commentable_id;commentable_type;"
        "root_commentable_url\n"
        "7;2024-01-02 10:00:00 UTC;Bon article;ca;3;Anna;0;0;12;Decidim::Blogs::Post;https://h/processes/a/f/9/posts/12\n"
    )
    [item] = list(read(comments.encode(), name=f"{HOST}post_comments.csv").items())
    assert isinstance(item, Rejected) and item.local_id == "7" and item.line == 2
    assert "a comment on Decidim::Blogs::Post: civicfed has no kind of record for it" in item.error.detail


# -- older and newer layouts ---------------------------------------------------------------------

OLD_PROPOSALS = (
    "id,category/id,category/name/ca,scope/id,scope/name/ca,participatory_space/id,participatory_space/url,"
    "component/id,title/ca,title/es,body/ca,body/es,state,reference,answer/ca,supports,endorsements/total_count,"
    "endorsements/user_endorsements,comments,attachments,followers,published_at,url,meeting_urls,related_proposals,"
    "is_amend,original_proposal/title,original_proposal/url\n"
    "11068,43,Cultura,6,Gràcia,4,https://h.example/processes/pp?participatory_process_slug=pp,3,Més bancs,"
    'Más bancos,"<p>Bancs a la <b>plaça</b> &amp; al parc</p>",<p>Bancos</p>,accepted,BCN-PROP-2017-02-11068,'
    '"",12,2,"Anna, Pere",3,0,4,2017-02-07 07:58:01 UTC,https://h.example/processes/pp/f/3/proposals/11068,,,'
    "false,,\n"
    "11069,,,,,4,https://h.example/processes/pp,3,Retirada,,,,withdrawn,BCN-PROP-2017-02-11069,,0,0,,0,0,0,"
    "2017-02-08 09:00:00 UTC,https://h.example/processes/pp/f/3/proposals/11069,,,false,,\n"
)


def test_older_layout_proposals_with_commas() -> None:
    items = list(read(OLD_PROPOSALS.encode(), name="h.example-open-data-proposals.csv").items())
    process, first, second = records(items)
    assert process.data == {"id": "pp", "title": "pp", "type": "other", "url": "https://h.example/processes/pp"}
    assert first.data == {
        "id": "11068",
        "process": "pp",
        "title": "Més bancs",
        "body": "Bancs a la plaça & al parc",
        "status": "accepted",
        "vote_count": 12,
        "comment_count": 3,
        "language": "ca",
        "url": "https://h.example/processes/pp/f/3/proposals/11068",
        "created": "2017-02-07T07:58:01Z",
    }
    assert second.data["status"] == "withdrawn" and second.data["vote_count"] == 0
    for record in (process, first, second):
        valid(record)


def test_newer_layout_export_counts_and_authors(tmp_path: Path) -> None:
    path = tmp_path / "participa.zip"
    write_export(path, proposals=30, comments=50, votes=400, seed=3)
    items = items_of(path)
    assert not [i for i in items if not isinstance(i, Record)]
    proposals, comments = records(items, "proposal"), records(items, "comment")
    assert len(records(items, "process")) == 1 and len(proposals) == 30 and len(comments) == 50
    # Votes are counts on proposals: the export's figure is their sum.
    assert sum(p.data.get("vote_count", 0) for p in proposals) == 400
    about = Counter(c.data["about"]["id"] for c in comments)
    assert all(p.data.get("comment_count", 0) == about[p.data["id"]] for p in proposals)
    assert any("reply_to" in c.data for c in comments)
    assert {p.data.get("status") for p in proposals} == {"published", "evaluating", "accepted", "rejected", "withdrawn"}
    # Decided proposals keep when (the days to a decision are counted to it); the others, those
    # still being evaluated (an answer that decides nothing) among them, have none.
    answered = [p for p in proposals if p.data.get("status") in ("accepted", "rejected")]
    assert answered and all(p.data["answered_at"] > p.data["created"] for p in answered)
    undecided = [p for p in proposals if p.data.get("status") in ("published", "evaluating")]
    assert any(p.data.get("status") == "evaluating" for p in undecided)
    assert not any("answered_at" in p.data for p in undecided)
    with zipfile.ZipFile(path) as archive:
        rows = archive.read("participa.example.org-open-data-proposals.csv").decode().splitlines()
    header = rows[0].split(";")
    first = rows[1].split(";")
    name, profile = first[header.index("author/name")], first[header.index("author/url")]
    assert proposals[0].data["author"] == first[header.index("author/id")]
    assert proposals[0].data["title"] == first[header.index("title/en")] and proposals[0].data["language"] == "en"
    assert "<" not in proposals[0].data["body"] and "location" in proposals[0].data
    assert not any(name in str(p.data) or profile in str(p.data) for p in proposals)
    for record in items:
        valid(record)  # type: ignore[arg-type]


def test_a_single_csv_names_its_entity() -> None:
    with pytest.raises(MalformedBody, match="which Decidim entity"):
        list(read(MEETINGS.encode(), name="export.csv").items())
    items = list(read(MEETINGS.encode(), name="export.csv", entity="meetings").items())
    assert [i.kind.name for i in records(items)] == ["process", "meeting", "meeting"]
    with pytest.raises(MalformedBody, match="not a Decidim entity"):
        read(MEETINGS.encode(), name="export.csv", entity="users")
    # An upload has no name: a ZIP is known by its signature.
    assert len(list(read(sample_zip()).items())) == 53 + 87 + 200


# -- malformed input: one case per class ---------------------------------------------------------


def test_broken_quoting() -> None:
    body = 'id;title/ca;participatory_space/url\n1;"Títol" trencat;https://h/processes/a\n'
    with pytest.raises(MalformedBody, match=r"h-open-data-proposals\.csv, line 2: .*broken quoting"):
        list(read(body.encode(), name="h-open-data-proposals.csv").items())


def test_wrong_encoding() -> None:
    body = "id;title/ca;participatory_space/url\n1;Plaça;https://h/processes/a\n2;Caféè;https://h/processes/a\n"
    with pytest.raises(MalformedBody, match=r"h-open-data-proposals\.csv, line 2: not UTF-8 text"):
        list(read(body.encode("latin-1"), name="h-open-data-proposals.csv").items())


def test_truncated_zip() -> None:
    data = sample_zip()
    with pytest.raises(MalformedBody, match=r"export\.zip is not a readable ZIP archive .*truncated"):
        read(data[: len(data) // 2], name="export.zip")


def test_corrupt_zip_entry() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(PROJECTS.name, PROJECTS.read_bytes())
    data = bytearray(out.getvalue())
    data[data.index(b"Publicaci")] ^= 0x01  # the CRC no longer matches
    with pytest.raises(MalformedBody, match=rf"export\.zip: {PROJECTS.name}: the entry cannot be read .*CRC"):
        list(read(bytes(data), name="export.zip").items())


def test_path_traversal_entry() -> None:
    data = sample_zip(("../../etc/h-open-data-proposals.csv", OLD_PROPOSALS))
    with pytest.raises(MalformedBody, match=r"entry '\.\./\.\./etc/h-open-data-proposals\.csv' names a path outside"):
        read(data, name="export.zip")
    with pytest.raises(MalformedBody, match="names a path outside"):
        read(sample_zip(("/tmp/h-open-data-proposals.csv", OLD_PROPOSALS), samples=False), name="export.zip")


def test_too_many_entries() -> None:
    data = sample_zip(*((f"notes/{n}.txt", "") for n in range(200)))
    with pytest.raises(MalformedBody, match="205 entries, more than the 200"):
        read(data, name="export.zip")


def test_entry_too_large_once_inflated() -> None:
    with pytest.raises(MalformedBody, match=r"is 110255 bytes uncompressed, more than the 100000 allowed"):
        read(sample_zip(), name="export.zip", max_entry_size="100000")


def test_missing_required_column() -> None:
    body = "\n".join(line.replace(";commentable_type", "") for line in MEETING_COMMENTS.read_text().split("\n")[:1])
    with pytest.raises(MalformedBody, match=r"no column 'commentable_type'"):
        list(read(body.encode() + b"\n", name=MEETING_COMMENTS.name).items())
