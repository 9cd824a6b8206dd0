"""DCAT catalogs: the datasets another portal describes, kept as RDF in the source's own graph
(the territory's catalog of external datasets, source kept).

``civicfed import dcat https://portal.example/catalog.ttl --territory t`` reads the catalog
(Turtle, RDF/XML, JSON-LD, N-Triples, N3, TriG or N-Quads, by its Content-Type after content
negotiation) and walks its Hydra paging in both styles — ``hydra:PartialCollectionView`` with
``hydra:next``, the older ``hydra:PagedCollection`` with ``hydra:nextPage`` — up to ``max_pages``
pages, stopping on a page seen before. ``civicfed import dcat saved/catalog.rdf`` reads a file
(one document: its paging links are not followed).

Every ``dcat:Dataset`` (and ``dcat:DatasetSeries``) keeps its own IRI and its description, with
what it refers to that the catalog describes (distributions, publisher, contact point, spatial
and temporal nodes, licence documents…); the paging triples are dropped, blank nodes get stable
IRIs (:func:`genid`), and each dataset says where it was read (``dct:source``,
``prov:wasDerivedFrom``). The items are :class:`~server.ingest.Statements`, one per dataset: the
loader writes them into the source's graph, replaced whole on each run.

Every fetch goes through the :class:`~importers.remote.Fetcher`; reading a document safely and
writing N-Triples terms are :mod:`importers.dcat_rdf`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import rdflib
from rdflib import BNode, Literal, URIRef

from server.errors import MalformedBody, ValidationFailed
from server.ingest import Importer, Item, Statements
from vocabularies import DCAT, DCT, FOAF, HYDRA, PROV, RDF, VCARD, XSD

from .dcat_rdf import ACCEPT, configured_fetcher, genid, guess_syntax, iri, parse, source_slug, text, typed_text
from .remote import Fetcher

#: Pages read at most by default (a portal's usual 100 datasets a page: 10,000 datasets).
MAX_PAGES = 100
_DATASET_CLASSES = (URIRef(DCAT.Dataset), URIRef(DCAT.DatasetSeries))
_RDF_TYPE = URIRef(RDF.type)

# -- the source ------------------------------------------------------------------------------------


@dataclass
class DcatSource:
    """A DCAT catalog at ``url`` (paged) or in the file ``path``."""

    id: str
    name: str
    location: str
    url: str | None = None
    path: Path | None = None
    fetcher: Fetcher | None = None
    max_pages: int = MAX_PAGES
    #: The pages read, in order (URLs after redirects).
    pages: list[str] = field(default_factory=list)
    sha256: str | None = None
    #: False when paging stopped early (``max_pages``, a page seen before): there may be more.
    complete: bool = True
    #: Why paging stopped early.
    stopped: str | None = None
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def items(self) -> Iterator[Item]:
        graph = rdflib.Graph()
        if self.path is not None:
            data = self.path.read_bytes()
            self._digest.update(data)
            syntax = guess_syntax("", self.path.name, data)
            graph += parse(data, syntax, self.path.resolve().as_uri(), self.path.name, self.fetcher)
            catalogs = {str(c) for c in graph.subjects(_RDF_TYPE, URIRef(DCAT.Catalog)) if isinstance(c, URIRef)}
            about = catalogs.pop() if len(catalogs) == 1 else None  # the catalog the file is a record of
        else:
            for page in self._pages():
                graph += page
            about = self.url
        for lines in dataset_statements(graph, self.location, about):
            yield Statements(tuple(lines))
        self.sha256 = self._digest.hexdigest()

    def _pages(self) -> Iterator[rdflib.Graph]:
        assert self.url and self.fetcher
        url: str | None = self.url
        seen_urls: set[str] = set()
        seen_bodies: set[str] = set()
        for number in range(1, self.max_pages + 1):
            assert url is not None
            fetched = self.fetcher.get(url, headers={"Accept": ACCEPT})
            body = hashlib.sha256(fetched.content).hexdigest()
            self._digest.update(fetched.content)
            label = f"{fetched.url} (page {number})"
            syntax = guess_syntax(fetched.media_type, fetched.url, fetched.content)
            page = parse(fetched.content, syntax, fetched.url, label, self.fetcher)
            seen_urls.update((_bare(url), _bare(fetched.url)))
            self.pages.append(fetched.url)
            yield page
            if body in seen_bodies:  # a server ignoring the page parameter answers the same again
                self._stop(f"{fetched.url} is the same as an earlier page")
                return
            seen_bodies.add(body)
            url = next_page(page, fetched.url)
            if url is None:
                return
            if _bare(url) in seen_urls:
                self._stop(f"{fetched.url} links to {url}, a page read before")
                return
        self._stop(f"stopped after max_pages={self.max_pages} pages")

    def _stop(self, why: str) -> None:
        self.complete, self.stopped = False, why


def next_page(page: rdflib.Graph, url: str) -> str | None:
    """The next page's URL: ``hydra:next`` of a PartialCollectionView, else ``hydra:nextPage``
    of a PagedCollection (an IRI or a literal, resolved against the page's URL); the view that
    names this page first when a page has several."""
    for cls, predicate in ((HYDRA.PartialCollectionView, HYDRA.next), (HYDRA.PagedCollection, HYDRA.nextPage)):
        views = sorted(page.subjects(_RDF_TYPE, URIRef(cls)), key=lambda v: (_bare(str(v)) != _bare(url), str(v)))
        for view in views:
            target = page.value(view, URIRef(predicate))
            if isinstance(target, URIRef | Literal) and str(target).strip():
                return urljoin(url, str(target).strip())
    return None


def _bare(url: str) -> str:
    return url.split("#", 1)[0]


# -- from the graph to statements --------------------------------------------------------------------


def dataset_statements(graph: rdflib.Graph, location: str, about: str | None) -> Iterator[list[str]]:
    """The statements of each dataset: its triples and those of the nodes it reaches that the
    catalog describes (not of other datasets: each is its own), Hydra's left out."""
    names = _Skolem(graph, location)
    roots = sorted(
        {s for cls in _DATASET_CLASSES for s in graph.subjects(_RDF_TYPE, cls)},
        key=lambda s: (isinstance(s, BNode), names.key(s)),
    )
    root_set = set(roots)
    done: set[Any] = set()
    source = iri(about) if about else None
    for root in roots:
        lines: list[str] = []
        queue = [root]
        while queue:
            subject = queue.pop(0)
            if subject in done:
                continue
            done.add(subject)
            s = names.term(subject)
            pairs = sorted(graph.predicate_objects(subject), key=lambda po: (str(po[0]), names.key(po[1])))
            for p, o in pairs:
                if str(p) in HYDRA or (p == _RDF_TYPE and str(o) in HYDRA):
                    continue  # paging, not the catalog's content
                if _a_person(graph, o):
                    continue  # a person's name, e-mail, phone: no clear identity is published
                if isinstance(o, BNode):
                    names.name(o, s)
                pt, ot = iri(str(p)), names.term(o)
                if s is None or pt is None or ot is None:
                    continue  # a term no store can hold (an IRI that is not absolute)
                lines.append(f"{s} {pt} {ot}")
                if p != _RDF_TYPE and o not in root_set and (isinstance(o, BNode) or (o, None, None) in graph):
                    queue.append(o)
        root_term = names.term(root)
        if source and root_term:
            lines += [f"{root_term} <{DCT.source}> {source}", f"{root_term} <{PROV.wasDerivedFrom}> {source}"]
        if lines:
            yield lines


#: Classes of a contact point, publisher or creator that is a person, not an organisation.
_PERSONS = frozenset(URIRef(c) for c in (VCARD.Individual, FOAF.Person))


def _a_person(graph: rdflib.Graph, node: Any) -> bool:
    """Whether a node the catalog describes is a person (a ``vcard:Individual`` contact point, a
    ``foaf:Person`` publisher): the link to it and what it says are left out, as the CKAN
    importer leaves out a package's author and maintainer."""
    return not isinstance(node, Literal) and any(t in _PERSONS for t in graph.objects(node, _RDF_TYPE))


class _Skolem:
    """Stable IRIs for blank nodes: from the source, the node that first refers to it and what it
    says (its triples, nested blank nodes by their own content), so that the same catalog gives
    the same statements on every run."""

    def __init__(self, graph: rdflib.Graph, location: str) -> None:
        self.graph, self.location = graph, location
        self.content: dict[BNode, str] = {}
        self.names: dict[BNode, str] = {}

    def key(self, term: Any) -> str:
        """A term's N3, or for a blank node a digest of its triples, a nested blank node by its own
        key (``_:cycle`` for one on the path to it). Depth first like a recursion, but with a
        stack of its own: a chain of thousands of blank nodes (a long RDF list) would exhaust
        Python's."""
        if not isinstance(term, BNode):
            return term.n3()
        if term in self.content:
            return self.content[term]
        # Each frame: a blank node, its pairs still to read, the parts read, the predicate waiting.
        frames: list[tuple[BNode, Iterator[Any], list[str], list[Any]]] = []
        path: set[BNode] = set()

        def enter(node: BNode) -> None:
            frames.append((node, iter(self.graph.predicate_objects(node)), [], [None]))
            path.add(node)

        enter(term)
        digest = ""
        while frames:
            node, pairs, parts, waiting = frames[-1]
            if waiting[0] is not None:  # a nested blank node's key, just computed
                parts.append(f"{waiting[0].n3()} {digest}")
                waiting[0] = None
            for p, o in pairs:
                if not isinstance(o, BNode):
                    parts.append(f"{p.n3()} {o.n3()}")
                elif o in self.content:
                    parts.append(f"{p.n3()} {self.content[o]}")
                elif o in path:
                    parts.append(f"{p.n3()} _:cycle")
                else:
                    waiting[0] = p
                    enter(o)
                    break
            else:
                digest = "_:" + hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()
                self.content[node] = digest
                frames.pop()
                path.discard(node)
        return digest

    def name(self, node: BNode, owner: str | None) -> None:
        if node not in self.names:
            self.names[node] = genid(self.location, owner or "", self.key(node))

    def term(self, term: Any) -> str | None:
        if isinstance(term, BNode):
            if term not in self.names:
                self.name(term, None)  # a dataset that is a blank node
            return f"<{self.names[term]}>"
        if isinstance(term, URIRef):
            return iri(str(term))
        if isinstance(term, Literal):
            if term.language:
                return text(str(term), term.language)
            # An ill-typed value ("2020-13-45" as a date) is kept as a string: a store may refuse it.
            if term.datatype is None or str(term.datatype) == XSD.string or term.ill_typed:
                return text(str(term))
            datatype = iri(str(term.datatype))
            return typed_text(str(term), datatype[1:-1]) if datatype else None
        return None


# -- the importer ------------------------------------------------------------------------------------


def read(source: str, *, fetcher: Fetcher | None = None, max_pages: int | str = MAX_PAGES) -> DcatSource:
    """A DCAT catalog: ``source`` is its URL (its first page) or a saved catalog file."""
    try:
        pages = int(max_pages)
    except ValueError:
        raise ValidationFailed("max_pages is a number") from None
    if pages < 1:
        raise ValidationFailed("max_pages is at least 1")
    if source.startswith(("http://", "https://")):
        if iri(source) != f"<{source}>":
            raise MalformedBody(f"{source!r} is not a URL (spaces, quotes…)")
        fetcher = fetcher or configured_fetcher()
        fetcher.check(source)  # refused now rather than when the run starts reading
        return DcatSource(
            "dcat-" + source_slug(source), f"DCAT {source}", source, url=source, fetcher=fetcher, max_pages=pages
        )
    path = Path(source)
    if not path.is_file():
        raise MalformedBody(f"{source!r} is neither an http(s) URL nor a file")
    return DcatSource("dcat-" + source_slug(path.stem), f"DCAT {path.name}", path.name, path=path, fetcher=fetcher)


IMPORTER = Importer(
    "dcat",
    "A DCAT catalog's datasets, kept as RDF in the source's graph (SOURCE: the catalog's URL, paged with "
    "Hydra, or a saved catalog file)",
    read,
    reads_file=False,
    options={"max_pages": f"Catalog pages read at most, following hydra:next / hydra:nextPage (default {MAX_PAGES})."},
    remote=True,
)
