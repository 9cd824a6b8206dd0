"""The store interface: atomic changesets, graph replacement, descriptions, on a real Oxigraph."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pyoxigraph import Literal, NamedNode, RdfFormat

from server.store import Changeset, StoreBusyError, StoreError, open_store
from server.store.base import Store

G = "http://example.org/graph/a"
S = "http://example.org/id/a/proposal/"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(str(tmp_path / "ox"))
    yield s
    s.close()


def dump(store: Store) -> list[bytes]:
    out = io.BytesIO()
    store.dump(out, RdfFormat.N_QUADS)
    return sorted(out.getvalue().splitlines())


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
    titles = {q.object.value for q in store.quads(predicate="http://purl.org/dc/terms/title")}
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
    from server.model.rdf import literal

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
    assert store.graphs() == [G]
    rows = store.select(f"SELECT ?t WHERE {{ GRAPH <{G}> {{ <{S}2> <http://purl.org/dc/terms/title> ?t }} }}")
    assert rows[0]["t"] == Literal("two")
    store.update(f'DELETE DATA {{ GRAPH <{G}> {{ <{S}2> <http://purl.org/dc/terms/title> "two" }} }}')
    assert store.count(G) == 3
    union = store.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", union_default_graph=True)
    assert int(union[0]["n"].value) == 3
    assert next(iter(store.quads(subject=f"{S}1", predicate="http://x/p"))).object == NamedNode(f"{S}1#geo")


def test_second_process_is_refused_clearly(tmp_path: Path) -> None:
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
