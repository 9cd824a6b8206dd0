"""The store interface: atomic changesets, graph replacement, descriptions — on the embedded
Oxigraph, and on the remote SPARQL server under test when CIVICFED_TEST_STORE names one."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyoxigraph import Literal, NamedNode, RdfFormat

from server.store import Changeset, StoreBusyError, StoreError, open_store
from server.store.base import Store

G = "http://example.org/graph/a"
S = "http://example.org/id/a/proposal/"


def _clean(store: Store) -> None:
    for g in store.graphs():
        if g.startswith("http://example.org/"):
            store.update(f"DROP SILENT GRAPH <{g}>")


@pytest.fixture
def store(tmp_path: Path, remote_store_url: str | None) -> Iterator[Store]:
    s = open_store(remote_store_url or str(tmp_path / "ox"))
    _clean(s)
    yield s
    _clean(s)
    s.close()


def dump(store: Store) -> list[bytes]:
    lines: list[bytes] = []
    for g in sorted(store.graphs()):
        if g.startswith("http://example.org/"):
            out = io.BytesIO()
            store.dump(out, RdfFormat.N_TRIPLES, graph=g)
            lines += [g.encode() + b" " + line for line in out.getvalue().splitlines()]
    return sorted(lines)


def seed(store: Store) -> None:
    cs = Changeset()
    cs.add(
        G,
        [
            f'<{S}1> <http://purl.org/dc/terms/title> "one"',
            f"<{S}1> <http://x/p> <{S}1#geo>",
            f'<{S}1#geo> <http://x/lat> "45.1"',
            f'<{S}2> <http://purl.org/dc/terms/title> "two"',
        ],
    )
    store.apply(cs)


def test_apply_inserts_and_replaces(store: Store) -> None:
    seed(store)
    assert store.count(G) == 4
    cs = Changeset()
    cs.drop(G, f"{S}1")
    cs.drop(G, f"{S}1#geo")
    cs.add(G, [f'<{S}1> <http://purl.org/dc/terms/title> "uno"'])
    store.apply(cs)
    titles = {q.object.value for q in store.quads(predicate="http://purl.org/dc/terms/title", graph=G)}
    assert titles == {"uno", "two"}
    assert store.count(G) == 2


def test_failing_changeset_leaves_store_quad_for_quad(store: Store) -> None:
    seed(store)
    before = dump(store)
    cs = Changeset()
    cs.drop(G, f"{S}1")  # valid deletion…
    cs.add(G, [f'<{S}3> <http://x/p> "fine"', "<not an iri> <http://x/p> broken"])  # …then garbage
    with pytest.raises(StoreError):
        store.apply(cs)
    assert dump(store) == before
    # Pure insertions take the other (load) path: equally all-or-nothing.
    cs = Changeset()
    cs.add(G, [f'<{S}4> <http://x/p> "fine"', f'<{S}5> <http://x/p> "unterminated'])
    with pytest.raises(StoreError):
        store.apply(cs)
    assert dump(store) == before


def test_describe_follows_hash_nodes_only(store: Store) -> None:
    seed(store)
    cs = Changeset()
    cs.add(G, [f"<{S}1> <http://x/rel> <{S}2>"])  # a link to another resource is not followed
    store.apply(cs)
    desc = store.describe([f"{S}1"], G)
    assert set(desc) == {f"{S}1", f"{S}1#geo"}
    assert store.describe([f"{S}404"], G) == {}


def test_replace_graph_is_atomic(store: Store) -> None:
    seed(store)
    n = store.replace_graph(G, f'<{S}9> <http://x/p> "new" .', RdfFormat.N_TRIPLES)
    assert n == 1 and store.count(G) == 1
    before = dump(store)
    with pytest.raises(StoreError):
        store.replace_graph(G, f'<{S}9> <http://x/p> "half', RdfFormat.N_TRIPLES)
    assert dump(store) == before


def test_literals_with_escapes_survive_both_paths(store: Store) -> None:
    from server.model.terms import literal

    tricky = 'quote " backslash \\ newline \n cr \r tab \t unicode é 😀 \\u0022 literal'
    cs = Changeset()
    cs.add(G, [f"<{S}1> <http://x/p> {literal(tricky)}"])
    store.apply(cs)  # load path
    cs = Changeset()
    cs.drop(G, f"{S}1")
    cs.add(G, [f"<{S}2> <http://x/p> {literal(tricky)}"])
    store.apply(cs)  # update path (SPARQL INSERT DATA)
    (q,) = list(store.quads(subject=f"{S}2"))
    assert q.object.value == tricky


def test_query_update_graphs(store: Store) -> None:
    seed(store)
    assert [g for g in store.graphs() if g.startswith("http://example.org/")] == [G]
    rows = store.select(f"SELECT ?t WHERE {{ GRAPH <{G}> {{ <{S}2> <http://purl.org/dc/terms/title> ?t }} }}")
    assert rows[0]["t"] == Literal("two")
    store.update(f'DELETE DATA {{ GRAPH <{G}> {{ <{S}2> <http://purl.org/dc/terms/title> "two" }} }}')
    assert store.count(G) == 3
    union = store.select(
        "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o FILTER(STRSTARTS(STR(?s), 'http://example.org/')) }",
        union_default_graph=True,
    )
    assert int(union[0]["n"].value) == 3
    assert next(iter(store.quads(subject=f"{S}1", predicate="http://x/p"))).object == NamedNode(f"{S}1#geo")


@pytest.mark.live
def test_second_process_is_refused_clearly(tmp_path: Path) -> None:
    """The embedded store belongs to one process (whatever backend the suite runs on)."""
    import subprocess
    import sys

    path = tmp_path / "ox"
    s = open_store(str(path))
    code = (
        "import sys\nfrom server.store import open_store, StoreBusyError\n"
        f"try:\n    open_store({str(path)!r})\nexcept StoreBusyError as e:\n    print(e); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    s.close()
    assert done.returncode == 3, done.stderr
    assert "another process" in done.stdout
    assert StoreBusyError.__mro__[1] is StoreError


def test_large_changesets_are_staged_then_swapped(shared_store: str) -> None:
    """Past the update size limit, a remote write goes through staging graphs; the result is the same
    and no staging graph is left behind."""
    store = open_store(shared_store, max_update_bytes=2000)
    _clean(store)
    seed(store)
    cs = Changeset()
    cs.drop(G, f"{S}1")
    cs.add(G, [f'<{S}{i}> <http://x/p> "{"long text " * 20}{i}"' for i in range(10, 400)])
    store.apply(cs)
    assert store.count(G) == 2 + 390  # S1's two triples gone; its #geo node (not dropped) and S2 stay
    assert not [g for g in store.graphs() if g.startswith("urn:civicfed:staging:")]
    n = store.replace_graph(G, "".join(f'<{S}{i}> <http://x/p> "v" .\n' for i in range(300)), RdfFormat.N_TRIPLES)
    assert n == 300 and store.count(G) == 300
    _clean(store)
    store.close()


def test_a_cleared_graph_is_replaced_in_the_same_atomic_write(store: Store, shared_store: str) -> None:
    """Changeset.clear_graph empties a graph before the insertions (an import's source graph): on
    the update path (any store) and, for a large write, through the staging graphs of a remote one."""
    other = "http://example.org/g/source"
    for target, big in ((store, False), (open_store(shared_store, max_update_bytes=2000), True)):
        seed(target)
        target.apply(_with_source(other, range(5), G, "first"))
        assert target.count(other) == 5
        cs = _with_source(other, range(100, 400 if big else 103), G, "second")
        target.apply(cs)
        values = {q.object.value for q in target.quads(graph=other)}
        assert values == {"second"} and target.count(other) == (300 if big else 3)
        assert target.count(G) == 3  # the rest of the write landed with it (S1 rewritten, S1#geo and S2 kept)
        assert not [g for g in target.graphs() if g.startswith("urn:civicfed:staging:")]
        _clean(target)
        if big:
            target.close()


def _with_source(graph: str, numbers: range, data_graph: str, label: str) -> Changeset:
    cs = Changeset()
    cs.clear_graph(graph)
    cs.add(graph, [f'<{S}src{i}> <http://x/p> "{label}"' for i in numbers])
    cs.drop(data_graph, f"{S}1")
    cs.add(data_graph, [f'<{S}1> <http://x/p> "{label}"'])
    return cs


def test_remote_errors_are_clear(shared_store: str) -> None:
    store = open_store(shared_store)
    with pytest.raises(StoreError, match="refused"):
        store.update("THIS IS NOT SPARQL")
    unreachable = open_store("http://127.0.0.1:9/query", retries=1, timeout=1)
    with pytest.raises(StoreError, match="did not answer"):
        unreachable.count()


def test_the_embedded_store_flushes_its_write_buffers_as_writes_add_up(tmp_path: Path) -> None:
    """Left to fill, RocksDB's write buffers grew a server that only writes by ~25 MiB an ingest,
    without bound (the soak benchmark: 119 -> 599 MiB over 33 ingests of 1,500 records; 109-340
    MiB with the flushes). Past ``flush_every`` quads the buffers go to disk: the write-ahead
    log, which holds what is not flushed, starts empty again."""
    from server.store.oxigraph import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store", flush_every=1_000)

    def write(n: int, start: int) -> None:
        cs = Changeset()
        cs.add("http://g.test/g", [f'<http://x.test/s{i}> <http://x.test/p> "{i}"' for i in range(start, start + n)])
        store.apply(cs)

    def unflushed_log() -> int:
        logs = sorted((tmp_path / "store").glob("*.log"), key=lambda p: int(p.stem))
        return logs[-1].stat().st_size if logs else 0

    write(600, 0)
    held = unflushed_log()  # below the threshold: in the buffers (and the log)
    assert held > 10_000
    write(600, 600)
    assert unflushed_log() < held / 10  # flushed (a new log; without the flush it would double)
    assert store.count("http://g.test/g") == 1_200
    store.close()


def test_a_transaction_virtuoso_reports_deadlocked_is_run_again() -> None:
    """Virtuoso answers an update that deadlocked with another writer's (several civicfed
    processes on one Virtuoso) with HTTP 500 and SQLSTATE 40001, having rolled it back: the
    update is sent again. Another error is not."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers: list[tuple[int, str]] = []
    received: list[bytes] = []

    class Virtuoso(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Virtuoso)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = open_store(f"http://127.0.0.1:{server.server_port}/sparql", retries=3)
        deadlocked = "Virtuoso 40001 Error SR172: Transaction deadlocked\n\nSPARQL query:\nINSERT DATA {}"
        answers += [(500, deadlocked), (500, deadlocked), (200, "")]
        store.update("INSERT DATA { <http://x/s> <http://x/p> 1 }")
        assert len(received) == 3 and len(set(received)) == 1  # the same update, until it went through
        received.clear()
        answers += [(500, "Virtuoso 42000 Error SR186: No permission to execute procedure")]
        with pytest.raises(StoreError, match="SR186"):
            store.update("INSERT DATA { <http://x/s> <http://x/p> 1 }")
        assert len(received) == 1
    finally:
        server.shutdown()
        server.server_close()
