"""CONSUL Democracy through its public GraphQL API (``{instance}/graphql``): proposals and debates,
their supports and comment counts, their tags, and the comments on them.

CONSUL's documented limits are kept: 25 records a page (relay paging, ``after:`` the last
``endCursor``), a query depth of at most 8, at most two collections a query. A page of
proposals (or debates) with their tags is one query; the comments of the records of a page
that have any are then read two records a query (two ``comments`` collections). A page query
costs about 2,200 under graphql-ruby's connection complexity, within CONSUL 2.x's
``max_complexity 2500`` (tags: 25 a record, CONSUL allows 6 when one is created). The cursor is
written into the query text rather than sent as a GraphQL variable: CONSUL 1.x parses
``variables`` as a JSON *string*, later versions as an object, and a literal works with both.
Fields are asked for in snake case, which every CONSUL version answers (2.x also in camel case).

Mapping decisions (``docs/importing.md``): a debate becomes a proposal of a synthesised process
of type ``debate`` (a debate is a contribution people support and comment, with no action
attached); the proposals of an instance belong to a synthesised ``citizen_initiative`` process.
Geozones are not kept: no field of a proposal holds a district (``address`` is a postal
address), and districts are assigned from coordinates, which the API does not publish for
proposals. Individual votes are not imported: the API gives no voter, only counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from server.errors import BadRequest, MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Record, Rejected
from server.model.kinds import COMMENT, PROCESS, PROPOSAL

from .consul_map import SECTIONS, Instance, body_of, count, instance_for, moment, reply_to, themes_of
from .remote import Fetcher, SourceUnavailable

#: CONSUL's maximum (and default) page size.
PAGE = 25
_NODE = {
    "proposals": "id title summary description cached_votes_up comments_count public_created_at retired_at",
    "debates": "id title description cached_votes_up comments_count public_created_at",
}
_COMMENT = "id body ancestry public_created_at public_author { id }"


def page_query(section: str, cursor: str | None, size: int = PAGE) -> str:
    after = f", after: {json.dumps(cursor)}" if cursor else ""
    tags = f"tags(first: {PAGE}) {{ edges {{ node {{ name kind }} }} }}"
    return (
        f"{{ {section}(first: {size}{after}) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ "
        f"{_NODE[section]} public_author {{ id }} {tags} }} }} }} }}"
    )


def comments_query(kind: str, targets: list[tuple[str, str | None]]) -> str:
    """The comments of up to two records (two collections): aliases ``c0``, ``c1``."""
    parts = []
    for n, (platform_id, cursor) in enumerate(targets):
        after = f", after: {json.dumps(cursor)}" if cursor else ""
        parts.append(
            f"c{n}: {kind}(id: {json.dumps(platform_id)}) {{ comments(first: {PAGE}{after}) {{ "
            f"pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {_COMMENT} }} }} }} }}"
        )
    return "{ " + " ".join(parts) + " }"


@dataclass
class ConsulApiSource:
    """The proposals, debates and comments of one CONSUL instance, read through its API."""

    endpoint: str
    instance: Instance
    fetcher: Fetcher
    limit: int | None = None
    id: str = "consul"
    name: str = "CONSUL"
    sha256: str | None = None
    location: str | None = None
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)
    _position: int = 0

    def items(self) -> Iterator[Item]:
        for section in SECTIONS:
            yield from self._section(section)
        self.sha256, self.location = self._digest.hexdigest(), self.endpoint

    def _section(self, section: str) -> Iterator[Item]:
        kind = SECTIONS[section][0]
        cursor: str | None = None
        read = 0
        while self.limit is None or read < self.limit:
            size = PAGE if self.limit is None else min(PAGE, self.limit - read)
            connection = self._connection(self._query(page_query(section, cursor, size), f"{section} page"), section)
            nodes = [_node(edge, f"{section} page") for edge in connection["edges"]]
            if nodes and read == 0:
                yield self._record(PROCESS, self.instance.process(section))
            read += len(nodes)
            commented: list[str] = []
            for node in nodes:
                item = self._contribution(section, node)
                yield item
                if isinstance(item, Record) and node.get("comments_count") != 0:
                    commented.append(str(node["id"]))
            yield from self._comments(kind, commented)
            cursor = _next_cursor(connection, cursor, section)
            if cursor is None:
                return

    def _contribution(self, section: str, node: dict[str, Any]) -> Item:
        self._position += 1
        platform_id = str(node.get("id") or "")
        local_id = self.instance.local_id(SECTIONS[section][0], platform_id) if platform_id else None
        try:
            if not platform_id:
                raise ValidationFailed("a record without id", errors=[{"pointer": "#/id", "detail": "Missing."}])
            tags = [t["name"] for t in _edges(node.get("tags")) if isinstance(t.get("name"), str)]
            retired = node.get("retired_at")
            fields = {
                "title": (_text(node, "title") or "").strip() or None,
                "body": body_of(_text(node, "summary"), _text(node, "description")),
                "themes": themes_of(tags),
                "status": "withdrawn" if retired else None,
                "vote_count": count(node.get("cached_votes_up"), "#/vote_count"),
                "comment_count": count(node.get("comments_count"), "#/comment_count"),
                "created": moment(node.get("public_created_at"), self.instance.tz, "#/created"),
                "author": _author(node),
            }
            return Record(PROPOSAL, self.instance.contribution(section, platform_id, fields), self._position)
        except ValidationFailed as err:
            return Rejected(err, self._position, PROPOSAL.name, local_id)

    def _comments(self, kind: str, platform_ids: list[str]) -> Iterator[Item]:
        """The comments of these records, read to the last page of each, two records a query."""
        found: dict[str, list[dict[str, Any]]] = {p: [] for p in platform_ids}
        pending: list[tuple[str, str | None]] = [(p, None) for p in platform_ids]
        while pending:
            batch, pending = pending[:2], pending[2:]
            data = self._query(comments_query(kind, batch), f"comments of {kind}s {', '.join(p for p, _ in batch)}")
            for n, (platform_id, cursor) in enumerate(batch):
                connection = self._connection(data.get(f"c{n}"), "comments", f"{kind} {platform_id}")
                found[platform_id] += [_node(e, f"comments of {kind} {platform_id}") for e in connection["edges"]]
                following = _next_cursor(connection, cursor, f"comments of {kind} {platform_id}")
                if following:
                    pending.append((platform_id, following))
        for platform_id, comments in found.items():
            known = {str(c.get("id")) for c in comments}
            for node in comments:
                yield self._comment(self.instance.local_id(kind, platform_id), node, known)

    def _comment(self, about: str, node: dict[str, Any], known: set[str]) -> Item:
        self._position += 1
        platform_id = str(node.get("id") or "")
        try:
            if not platform_id:
                raise ValidationFailed("a comment without id", errors=[{"pointer": "#/id", "detail": "Missing."}])
            fields = {
                "body": body_of(_text(node, "body")),
                "created": moment(node.get("public_created_at"), self.instance.tz, "#/created"),
                "author": _author(node),
                "reply_to": reply_to(self.instance, node.get("ancestry"), known),
            }
            return Record(COMMENT, self.instance.comment(platform_id, about, fields), self._position)
        except ValidationFailed as err:
            local_id = self.instance.local_id("comment", platform_id) if platform_id else None
            return Rejected(err, self._position, COMMENT.name, local_id)

    def _record(self, kind: Any, data: dict[str, Any]) -> Record:
        self._position += 1
        return Record(kind, data, self._position)

    def _query(self, query: str, what: str) -> dict[str, Any]:
        answer = self.fetcher.request(
            "POST", self.endpoint, json={"query": query}, headers={"Accept": "application/json"}
        )
        self._digest.update(answer.content)
        try:
            body = json.loads(answer.content)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
            raise MalformedBody(f"{self.endpoint} answered the query for {what} with no JSON ({exc})") from exc
        if isinstance(body, dict) and body.get("errors"):
            errors = body["errors"] if isinstance(body["errors"], list) else [body["errors"]]
            messages = "; ".join(str(e.get("message", e) if isinstance(e, dict) else e) for e in errors)
            raise SourceUnavailable(f"{self.endpoint} refused the query for {what}: {messages} (query: {query})")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise MalformedBody(f"{self.endpoint} answered the query for {what} without a `data` object")
        return body["data"]

    def _connection(self, data: Any, name: str, where: str | None = None) -> dict[str, Any]:
        connection = data.get(name) if isinstance(data, dict) else None
        if not isinstance(connection, dict) or not isinstance(connection.get("edges"), list):
            raise MalformedBody(f"{self.endpoint}: no `{name}.edges` list in the answer for {where or name}")
        return connection


def _text(node: dict[str, Any], name: str) -> str | None:
    """A text field of a node (None when absent); another JSON type rejects the record."""
    value = node.get(name)
    if value is None or isinstance(value, str):
        return value
    detail = f"Not a text: {type(value).__name__}."
    raise ValidationFailed(f"{name}: {detail}", errors=[{"pointer": f"#/{name}", "detail": detail}])


def _author(node: dict[str, Any]) -> str | None:
    # The user id only (never the username): the loader pseudonymises it.
    author = node.get("public_author")
    return str(author["id"]) if isinstance(author, dict) and author.get("id") is not None else None


def _edges(connection: Any) -> list[dict[str, Any]]:
    edges = connection.get("edges") if isinstance(connection, dict) else None
    return [e["node"] for e in edges or () if isinstance(e, dict) and isinstance(e.get("node"), dict)]


def _node(edge: Any, where: str) -> dict[str, Any]:
    if not isinstance(edge, dict) or not isinstance(edge.get("node"), dict):
        raise MalformedBody(f"an edge without a node object in the answer for {where}")
    return edge["node"]


def _next_cursor(connection: dict[str, Any], cursor: str | None, where: str) -> str | None:
    info = connection.get("pageInfo") or {}
    if not isinstance(info, dict):
        raise MalformedBody(f"the answer for {where} has a pageInfo that is not an object")
    if not info.get("hasNextPage"):
        return None
    following = info.get("endCursor")
    if not isinstance(following, str) or following == cursor:
        # Asking again with the same cursor would loop for ever.
        raise MalformedBody(f"the answer for {where} has a next page but no new endCursor")
    return following


def read(
    source: str,
    *,
    fetcher: Fetcher | None = None,
    prefix: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
    limit: int | str | None = None,
    name: str | None = None,
) -> ConsulApiSource:
    """The CONSUL instance at ``source`` (its base URL, or its ``/graphql`` URL)."""
    if urlsplit(source).scheme not in ("http", "https"):
        raise BadRequest(f"{source!r} is not the http(s) URL of a CONSUL instance")
    base = source.rstrip("/").removesuffix("/graphql")
    instance = instance_for(base, prefix, language, timezone)
    if fetcher is None:
        fetcher = _configured_fetcher()
    cap = None if limit in (None, "") else int(limit) if str(limit).isdecimal() else -1
    if cap is not None and cap < 0:
        raise BadRequest(f"the limit {limit!r} is not a number of records")
    return ConsulApiSource(base + "/graphql", instance, fetcher, cap, f"consul-{instance.prefix}", name or source)


def _configured_fetcher() -> Fetcher:
    # The server's IMPORT_* settings when an application is running; else a fetcher that
    # refuses every host, with a message that says which setting allows one.
    from flask import current_app, has_app_context

    return Fetcher.from_config(current_app.config) if has_app_context() else Fetcher()


IMPORTER = Importer(
    "consul",
    "CONSUL Democracy GraphQL API: proposals, debates (as proposals of a debate process), comments, counts, tags",
    read,
    reads_file=False,
    options={
        "prefix": "Prefix of the local ids (default: the instance's host name).",
        "language": "Language tag of the texts (CONSUL does not say it).",
        "timezone": "IANA time zone of times given without offset (default UTC).",
        "limit": "Read at most this many proposals and this many debates.",
    },
    remote=True,
)
