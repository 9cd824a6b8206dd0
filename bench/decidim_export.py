"""A Decidim open-data export of any size, for the importer's benchmark: the ZIP an instance
serves at ``/open-data/download``, written as Decidim writes it and streamed to disk.

Layout (Decidim 0.28-0.30, ``decidim-core/lib/decidim/open_data_exporter.rb``): one
``<host>-open-data-<entity>.csv`` per entity plus ``README.md`` and ``LICENSE.md``; ``;`` as
separator, a header row, nested keys flattened with ``/`` and one column per locale for
translatable fields (``title/ca``, ``title/es``, ``title/en``), arrays joined with ``", "``,
timestamps as Ruby writes them (``2024-03-01 10:00:00 UTC``). The entities written are
``participatory_processes`` (the spaces), ``proposals`` (the header of
``OpenDataProposalSerializer``) and ``proposal_comments`` (``CommentSerializer``), with authors
(``author/id``, ``author/name``, ``author/url``: made-up people) and HTML bodies, as the older
serializers and the admin export write them (0.30's open-data serializer writes plain text; the
importer reads both).

Votes: Decidim publishes no vote, only each proposal's count of them (its ``votes`` column; there
is no per-vote export, votes being secret). "N votes" is therefore represented as the ``votes``
column summing to exactly N over all proposals, spread unevenly (a few proposals get most, as on
a real instance). Comments are rows of ``proposal_comments`` (about a fifth of them replies to an
earlier comment on the same proposal), and each proposal's ``comments`` column is the number of
its rows there.

    python -m bench.decidim_export out.zip --proposals 100000 --comments 200000 --votes 1000000
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

HOST = "participa.example.org"
LOCALES = ("ca", "es", "en")
START = datetime(2023, 1, 9, 8, 0, tzinfo=UTC)

FIRST = ("Marta", "Jordi", "Núria", "Pau", "Laia", "Arnau", "Carme", "Oriol", "Montse", "Xavier", "Aina", "Joan")
LAST = ("Soler", "Puig", "Vila", "Ferrer", "Serra", "Roca", "Font", "Costa", "Mas", "Pujol", "Riera", "Camps")
TOPICS = (
    ("Més arbres al carrer", "Más árboles en la calle", "More trees in the street"),
    ("Carril bici segur", "Carril bici seguro", "A safe bike lane"),
    ("Bancs a la plaça", "Bancos en la plaza", "Benches in the square"),
    ("Fonts d'aigua potable", "Fuentes de agua potable", "Drinking fountains"),
    ("Horts urbans", "Huertos urbanos", "Urban gardens"),
    ("Il·luminació del parc", "Iluminación del parque", "Lighting in the park"),
)
STATES = ("", "", "", "evaluating", "accepted", "rejected", "withdrawn")


def _localized(stem: str) -> list[str]:
    return [f"{stem}/{locale}" for locale in LOCALES]


SPACE_HEADER = [
    "id", *_localized("title"), "slug", "reference", "created_at", "updated_at", "published_at", "follows_count",
    "hashtag", *_localized("short_description"), *_localized("description"), "promoted", "url",
    *_localized("subtitle"), "remote_hero_image_url", *_localized("announcement"), "start_date", "end_date",
    *_localized("developer_group"), *_localized("local_area"), *_localized("meta_scope"),
    *_localized("participatory_scope"), *_localized("participatory_structure"), *_localized("target"),
    "area/id", *_localized("area/name"), "participatory_process_group/id",
    *_localized("participatory_process_group/title"), "scope/id", *_localized("scope/name"), "scopes_enabled",
    "participatory_process_type/id", *_localized("participatory_process_type/title"),
]  # fmt: skip
PROPOSAL_HEADER = [
    "id", "author/id", "author/name", "author/url", "taxonomies/id", "taxonomies/name", "participatory_space/id",
    "participatory_space/url", "component/id", *_localized("title"), *_localized("body"), "address", "latitude",
    "longitude", "state", "state_published_at", "reference", *_localized("answer"), "answered_at", "votes",
    "likes/total_count", "likes/user_likes", "comments", "follows_count", "published_at", "url", "meeting_urls",
    "related_proposals", "is_amend", "original_proposal/title", "original_proposal/url", "withdrawn",
    "withdrawn_at", "created_at", "updated_at", "created_in_meeting", "coauthorships_count", "cost",
    *_localized("cost_report"), *_localized("execution_period"),
]  # fmt: skip
COMMENT_HEADER = [
    "id", "created_at", "body", "locale", "author/id", "author/name", "alignment", "depth", "user_group/id",
    *_localized("user_group/name"), "commentable_id", "commentable_type", "root_commentable_url",
]  # fmt: skip


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _person(rng: random.Random) -> tuple[int, str, str]:
    user = rng.randrange(1, 50_000)
    first, last = FIRST[user % len(FIRST)], LAST[(user // len(FIRST)) % len(LAST)]
    return user, f"{first} {last}", f"{first.lower()}_{last.lower()}_{user}"


def _spread(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split over ``parts`` unevenly (Pareto weights), summing to exactly ``total``."""
    if parts == 0:
        return []
    weights = [rng.paretovariate(1.2) for _ in range(parts)]
    scale = total / sum(weights)
    out = [int(w * scale) for w in weights]
    left = total - sum(out)  # what rounding down left: fewer than one per part
    if left >= 0:
        for i in rng.choices(range(parts), k=left):
            out[i] += 1
    else:  # float error the other way
        out[out.index(max(out))] += left
    return out


def _space_url(slug: str) -> str:
    return f"https://{HOST}/processes/{slug}"


def _spaces(count: int) -> Iterator[list[str]]:
    for n in range(1, count + 1):
        slug = f"pressupostos-{2022 + n}"
        created = _time(START + timedelta(days=n))
        row = {
            "id": str(n), "slug": slug, "reference": f"PA-PROC-{2022 + n}-01-{n}", "created_at": created,
            "updated_at": created, "published_at": created, "follows_count": str(40 * n), "promoted": "false",
            "url": _space_url(slug), "start_date": f"{2022 + n}-01-09", "end_date": f"{2022 + n}-11-30",
            "scopes_enabled": "false", "title/ca": f"Pressupostos participatius {2022 + n}",
            "title/es": f"Presupuestos participativos {2022 + n}", "title/en": f"Participatory budget {2022 + n}",
            "description/ca": "<p>Decidim com invertir <strong>5 milions d'euros</strong> als barris.</p>",
            "description/es": "<p>Decidimos cómo invertir <strong>5 millones de euros</strong> en los barrios.</p>",
            "description/en": "<p>We decide how to invest <strong>5 million euros</strong> in the districts.</p>",
        }  # fmt: skip
        yield [row.get(column, "") for column in SPACE_HEADER]


def _proposals(
    count: int, votes: list[int], comments: list[int], spaces: int, rng: random.Random
) -> Iterator[list[str]]:
    for n in range(1, count + 1):
        space = (n - 1) % spaces + 1
        slug = f"pressupostos-{2022 + space}"
        user, name, nickname = _person(rng)
        topic = TOPICS[n % len(TOPICS)]
        created = START + timedelta(seconds=rng.randrange(0, 300 * 86_400))
        state = STATES[n % len(STATES)]
        answered = _time(created + timedelta(days=30)) if state not in ("", "withdrawn") else ""
        row = {
            "id": str(n), "author/id": str(user), "author/name": name,
            "author/url": f"https://{HOST}/profiles/{nickname}", "taxonomies/id": str(10 + n % 6),
            "taxonomies/name": '{"ca"=>"Medi ambient", "es"=>"Medio ambiente", "en"=>"Environment"}',
            "participatory_space/id": str(space), "participatory_space/url": _space_url(slug),
            "component/id": str(100 + space), "address": f"Carrer Major {n % 200 + 1}, Barcelona",
            "latitude": f"{41.38 + rng.uniform(-0.05, 0.05):.6f}",
            "longitude": f"{2.17 + rng.uniform(-0.05, 0.05):.6f}",
            "state": "" if state == "withdrawn" else state, "state_published_at": answered,
            "reference": f"PA-PROP-{created:%Y-%m}-{n}", "answered_at": answered, "votes": str(votes[n - 1]),
            "likes/total_count": str(rng.randrange(0, 5)), "likes/user_likes": "", "comments": str(comments[n - 1]),
            "follows_count": str(rng.randrange(1, 20)), "published_at": _time(created),
            "url": f"https://{HOST}/processes/{slug}/f/{100 + space}/proposals/{n}", "meeting_urls": "",
            "related_proposals": "", "is_amend": "false", "original_proposal/title": "", "original_proposal/url": "",
            "withdrawn": "true" if state == "withdrawn" else "false",
            "withdrawn_at": _time(created + timedelta(days=3)) if state == "withdrawn" else "",
            "created_at": _time(created), "updated_at": _time(created + timedelta(days=31)),
            "created_in_meeting": "false", "coauthorships_count": "1",
            "cost": str(rng.randrange(5, 500) * 1000) if state == "accepted" else "",
        }  # fmt: skip
        for locale, title in zip(LOCALES, topic, strict=True):
            row[f"title/{locale}"] = f"{title} ({n})"
            row[f"body/{locale}"] = f"<p>{title}: <em>proposta {n}</em>.</p><p>{title} &amp; {title.lower()}.</p>"
        if answered:
            row["answer/ca"] = "<p>Proposta estudiada pels serveis tècnics.</p>"
        yield [row.get(column, "") for column in PROPOSAL_HEADER]


def _comments(counts: list[int], spaces: int, rng: random.Random) -> Iterator[list[str]]:
    next_id = 1
    for index, count in enumerate(counts):
        proposal = index + 1
        space = index % spaces + 1
        root = f"https://{HOST}/processes/pressupostos-{2022 + space}/f/{100 + space}/proposals/{proposal}"
        first = next_id
        for k in range(count):
            user, name, _ = _person(rng)
            reply = k > 0 and rng.random() < 0.2
            when = START + timedelta(seconds=rng.randrange(0, 330 * 86_400))
            parent = rng.randrange(first, next_id) if reply else proposal
            yield [
                str(next_id), _time(when), f"Hi estic d'acord, però cal pensar en el barri {k}.", "ca", str(user), name,
                str(rng.choice((-1, 0, 0, 1))), "1" if reply else "0", "", "", "", "", str(parent),
                "Decidim::Comments::Comment" if reply else "Decidim::Proposals::Proposal", root,
            ]  # fmt: skip
            next_id += 1


def _write(archive: zipfile.ZipFile, name: str, header: list[str], rows: Iterator[list[str]]) -> None:
    entry = zipfile.ZipInfo(name, date_time=START.timetuple()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(entry, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, "utf-8", newline="") as text:
        writer = csv.writer(text, delimiter=";", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_export(path: Path, proposals: int, comments: int, votes: int, seed: int = 1) -> None:
    """Write a Decidim open-data ZIP: ``proposals`` proposals whose ``votes`` columns sum to
    ``votes``, and ``comments`` comments on them, row by row (nothing held but the counts)."""
    rng = random.Random(seed)
    spaces = max(1, min(20, proposals // 5_000))
    vote_counts = _spread(votes, proposals, rng)
    comment_counts = _spread(comments if proposals else 0, proposals, rng)
    prefix = f"{HOST}-open-data-"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("README.md", f"# Open data of {HOST}\n\nOne CSV file per entity, `;`-separated.\n")
        archive.writestr("LICENSE.md", "# License\n\nOpen Database License (ODbL) 1.0 for the database.\n")
        _write(archive, f"{prefix}participatory_processes.csv", SPACE_HEADER, _spaces(spaces))
        rows = _proposals(proposals, vote_counts, comment_counts, spaces, rng)
        _write(archive, f"{prefix}proposals.csv", PROPOSAL_HEADER, rows)
        _write(archive, f"{prefix}proposal_comments.csv", COMMENT_HEADER, _comments(comment_counts, spaces, rng))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=200_000)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_export(args.path, args.proposals, args.comments, args.votes, args.seed)


if __name__ == "__main__":
    main()
