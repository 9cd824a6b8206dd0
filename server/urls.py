"""The one place that builds IRIs and URLs.

Resource IRIs are ``{base}/id/{territory}/{kind}/{local-id}``; the territory itself is
``{base}/id/{territory}`` (docs/architecture.md, "Named graphs"). Public named graphs live under
``{base}/graph/``. Server bookkeeping graphs (record index, private votes, staging) live under
``{base}/_internal/``: no public surface serves them, and several instances can share one SPARQL
store without mixing their bookkeeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

#: Local identifiers are chosen by the territory's platform; they must be usable verbatim in IRIs,
#: URLs and file names, so they are restricted to RFC 3986 unreserved characters.
LOCAL_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}"
LOCAL_ID_RE = re.compile(rf"^{LOCAL_ID_PATTERN}$")  # use fullmatch: `$` also matches before a final "\n"
#: Territory identifiers are slugs: lower-case, digits and hyphens.
TERRITORY_ID_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
TERRITORY_ID_RE = re.compile(rf"^{TERRITORY_ID_PATTERN}$")


@dataclass(frozen=True)
class ResourceRef:
    """What an IRI of this instance names: a territory, or a resource of one kind in it."""

    territory: str
    kind: str | None = None
    local_id: str | None = None
    fragment: str | None = None


class Urls:
    """IRIs and URLs of one instance, built from its configured base IRI."""

    def __init__(self, base_iri: str, *, iris_of: str | None = None) -> None:
        self.base = base_iri.rstrip("/")
        #: Where resource IRIs start: this instance's base, or a peer's for the data of a territory
        #: replicated from it (``of_origin``), which keeps its origin's IRIs.
        self.iri_base = (iris_of or base_iri).rstrip("/")
        self._id_prefix = f"{self.iri_base}/id/"
        self._resource_re = re.compile(
            rf"^{re.escape(self._id_prefix)}(?P<t>{TERRITORY_ID_PATTERN})"
            rf"(?:/(?P<kind>[a-z_]+)/(?P<id>{LOCAL_ID_PATTERN}))?(?:#(?P<frag>.*))?$"
        )

    def of_origin(self, origin_base: str) -> Urls:
        """The IRIs of a territory replicated from the peer at ``origin_base`` (its resources keep
        the origin's IRIs), in this instance's graphs and URLs."""
        return Urls(self.base, iris_of=origin_base)

    # -- resources ---------------------------------------------------------------------------
    def territory(self, territory: str) -> str:
        return f"{self._id_prefix}{territory}"

    def source(self, territory: str, source_id: str) -> str:
        """An import source of a territory (its tables' qb:DataSet is ``#dataset``)."""
        return f"{self.territory(territory)}/source/{source_id}"

    def resource(self, territory: str, kind: str, local_id: str) -> str:
        if kind == "territory":
            return self.territory(territory)
        return f"{self._id_prefix}{territory}/{kind}/{local_id}"

    def account(self, territory: str, pseudonym: str) -> str:
        return f"{self._id_prefix}{territory}/account/{pseudonym}"

    def version(self, territory: str, time_us: int) -> str:
        """A version of a record in the territory's event stream: the one written at ``time_us``
        (record times are unique across the instance)."""
        return f"{self.base}/ldes/{territory}/version/{time_us}"

    def stream(self, territory: str) -> str:
        """The territory's event stream (an ``ldes:EventStream``), described on its root page."""
        return f"{self.base}/ldes/{territory}#stream"

    def stream_page(self, territory: str, from_us: int | None = None) -> str:
        """A page of the stream: the root (the first page), or the page of the members from ``from_us``."""
        return f"{self.base}/ldes/{territory}" + ("" if from_us is None else f"/{from_us}")

    def parse(self, iri: str) -> ResourceRef | None:
        """Which territory/kind/id an IRI of this instance names, or None for a foreign IRI."""
        m = self._resource_re.fullmatch(iri)
        if not m:
            return None
        return ResourceRef(m["t"], m["kind"], m["id"], m["frag"])

    # -- graphs ------------------------------------------------------------------------------
    @property
    def public_prefix(self) -> str:
        """Every public graph of this instance starts with it (server/sparql/dataset.py)."""
        return f"{self.base}/graph/"

    def territory_graph(self, territory: str) -> str:
        """The public graph holding a territory's own data."""
        return f"{self.public_prefix}{territory}"

    def source_graph(self, territory: str, source_id: str) -> str:
        """The public graph an imported source writes about itself (``server.ingest.Statements``):
        one per territory and source, so that imports into different territories never touch
        each other's."""
        return f"{self.public_prefix}source/{territory}/{source_id}"

    def sync_graph(self, territory: str) -> str:
        """The public graph where the syncs of a territory replicated from a peer are described
        (PROV-O), beside the replica's own graph, which holds only what the origin publishes."""
        return f"{self.public_prefix}sync/{territory}"

    def indicators_cube_graph(self, territory: str, *, public: bool = True) -> str:
        """The public graph of a territory's indicators, an RDF Data Cube (server/records/cube.py);
        an internal one for a territory replicated from a peer (its origin publishes its own)."""
        if public:
            return f"{self.public_prefix}indicators/{territory}"
        return f"{self.internal_prefix}indicator-cube/{territory}"

    def indicators_document(self, territory: str) -> str:
        """Where a territory's indicator cube is served; its data set and observations are its ``#`` nodes."""
        return f"{self.base}/indicators/{territory}"

    def receivability_graph(self, territory: str) -> str:
        """The public graph of a territory's receivability decisions (server/records/decisions.py),
        current and replaced: they outlive the rewrites of the proposals they are about."""
        return f"{self.public_prefix}receivability/{territory}"

    def receivability_document(self, territory: str, proposal: str) -> str:
        """Where a proposal's receivability decisions are served; each is a ``#`` node of it."""
        return f"{self.base}/receivability/{territory}/{proposal}"

    def sync_run(self, territory: str, run_id: str) -> str:
        return f"{self.base}/sync/{territory}/{run_id}"

    @property
    def internal_prefix(self) -> str:
        return f"{self.base}/_internal/"

    def private_graph(self, territory: str) -> str:
        """Pseudonymous individual votes: stored, never published (only their counts are)."""
        return f"{self.internal_prefix}private/{territory}"

    def index_graph(self, territory: str, kind: str) -> str:
        """Record bookkeeping for one kind in one territory: when each record last changed.

        One graph per (territory, kind) keeps every list query a single sorted triple pattern.
        """
        return f"{self.internal_prefix}index/{territory}/{kind}"

    def history_graph(self, territory: str) -> str:
        """Superseded versions of a territory's public records, for its event stream."""
        return f"{self.internal_prefix}history/{territory}"

    def indicators_graph(self, territory: str) -> str:
        """A territory's indicator values as every write keeps them (server/records/indicators.py):
        what comparisons read, and what its published indicators are made of."""
        return f"{self.internal_prefix}indicators/{territory}"

    @property
    def empty_graph(self) -> str:
        """A graph that never holds anything: the way to give a remote query an empty dataset part
        (an empty list of graphs there means "every graph")."""
        return f"{self.internal_prefix}empty"

    def is_internal_graph(self, graph: str) -> bool:
        # Staging graphs of remote-store writes (server/store/remote.py) are internal too.
        return graph.startswith(self.internal_prefix) or graph.startswith("urn:civicfed:staging:")

    def is_own_graph(self, graph: str) -> bool:
        """A graph of this instance (public or internal), as opposed to another's in a shared store."""
        return graph.startswith(self.public_prefix) or self.is_internal_graph(graph)

    # -- HTTP URLs ---------------------------------------------------------------------------
    def api(self, path: str, *, root: str | None = None, **params: str | int | None) -> str:
        """An absolute URL of the JSON API (``path`` relative to ``/api/v1``), under the base IRI
        or under ``root`` (where a client reached this server)."""
        query = {k: v for k, v in params.items() if v is not None}
        url = f"{(root or self.base).rstrip('/')}/api/v1/{path.lstrip('/')}"
        return f"{url}?{urlencode(sorted(query.items()))}" if query else url

    def dump(self, path: str) -> str:
        """A dump's download URL (``lyon.nq``, ``lyon/proposals.csv``)."""
        return f"{self.base}/dumps/{path}"

    def vocabulary(self) -> str:
        return f"{self.base}/ns"
