"""A large source is written batch by batch to a staged copy of the embedded store, which becomes
the store at the end: the same records as one write, still all or nothing, readers see the
store as it was until the end, and a copy that did not make it is removed."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from pyoxigraph import Literal, NamedNode, RdfFormat

from server.ingest import Deletion, Record, load
from server.model.kinds import KINDS
from server.store import Changeset, StoreError
from server.store.oxigraph import EmbeddedStore
from server.store.staging import live_dir

from .conftest import make_app, make_territory

PROCESS, PROPOSAL, COMMENT = KINDS["process"], KINDS["proposal"], KINDS["comment"]


def _items(n: int) -> list[Record]:
    """A process, then comments each about a proposal that comes after it, then the proposals."""
    items = [Record(PROCESS, {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"})]
    items += [
        Record(COMMENT, {"id": f"c{i}", "about": {"kind": "proposal", "id": f"p{i}"}, "body": f"Pour le {i}"}, line=i)
        for i in range(n)
    ]
    items += [Record(PROPOSAL, {"id": f"p{i}", "title": f"Idée {i}", "process": "bp"}, line=n + i) for i in range(n)]
    return items


def _records(svc: Any, territory: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record of the territory as the API gives it, but the times the write gave."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in (PROCESS, PROPOSAL, COMMENT):
        page = svc.records.list(kind, territories=[territory], limit=1000)
        out[kind.name] = {
            r["id"]: {k: v for k, v in r.items() if k not in ("record_modified", "record_created")} for r in page.items
        }
    return out


def _copies(svc: Any) -> list[str]:
    """The copies of the store in its directory (staged ones, replaced ones)."""
    return sorted(p.name for p in Path(svc.config["STORE"]).glob("store.*"))


@pytest.fixture
def embedded(svc: Any) -> Any:
    if not svc.store.stages:
        pytest.skip("staged writes are the embedded store's: a SPARQL server takes a run as one update")
    return svc


def test_a_source_written_in_batches_gives_what_one_write_gives(embedded: Any, tmp_path: Path) -> None:
    svc = embedded
    make_territory(svc, {"id": "paris", "name": "Paris", "country": "FR"}, ())
    staged = load(svc.records, "paris", _items(40), None, batch=7)
    assert staged.written and staged.counts["created"] == 81 and staged.rejected == 0, staged.to_dict()
    # The comments came before their proposals: each batch wrote what it could, the rest after.
    assert {c["about"]["id"] for c in _records(svc, "paris")["comment"].values()} == {f"p{i}" for i in range(40)}
    assert live_dir(Path(svc.config["STORE"])).name == "store.1"  # it was staged

    other = make_app(tmp_path / "other", None)
    try:
        with other.app_context():
            from server.services import services

            whole_svc = services()
            make_territory(whole_svc, {"id": "paris", "name": "Paris", "country": "FR"}, ())
            whole = load(whole_svc.records, "paris", _items(40), None)
            assert whole.counts == staged.counts
            assert _records(whole_svc, "paris") == _records(svc, "paris")
    finally:
        other.extensions["civicfed"].close()


def test_a_rejected_item_without_quarantine_writes_nothing_and_leaves_no_copy(embedded: Any) -> None:
    svc = embedded
    make_territory(svc, {"id": "paris", "name": "Paris", "country": "FR"}, ())
    before = svc.store.count()
    items = _items(20)
    items[5] = Record(PROPOSAL, {"id": "bad", "title": "", "process": "bp"}, line=999)  # (a comment was there)
    report = load(svc.records, "paris", items, None, batch=6)
    assert not report.written and report.rejected == 1
    assert report.errors[0]["line"] == 999 and report.errors[0]["id"] == "bad"
    assert svc.store.count() == before
    assert _copies(svc) == [] and live_dir(Path(svc.config["STORE"])) == Path(svc.config["STORE"])
    # With quarantine, the same source writes all but the bad item.
    report = load(svc.records, "paris", items, None, batch=6, partial=True)
    assert report.written and report.counts["created"] == 40 and report.rejected == 1


def test_a_line_retried_after_the_batches_never_wins_over_a_later_one(embedded: Any) -> None:
    """A comment about a proposal of a later batch is tried again at the end; given again by a
    later line (changed, or deleted), the later line is what the store keeps, as in one write."""
    svc = embedded
    make_territory(svc, {"id": "paris", "name": "Paris", "country": "FR"}, ())
    process = Record(PROCESS, {"id": "bp", "title": "Budget participatif", "type": "participatory_budget"})

    def comment(cid: str, body: str, line: int) -> Record:
        return Record(COMMENT, {"id": cid, "about": {"kind": "proposal", "id": "p0"}, "body": body}, line=line)

    filler = [Record(PROPOSAL, {"id": f"f{i}", "title": f"Idée {i}", "process": "bp"}, line=10 + i) for i in range(6)]
    p0 = Record(PROPOSAL, {"id": "p0", "title": "Idée 0", "process": "bp"}, line=30)
    items = [process, comment("c0", "OLD", 2), comment("c1", "kept", 3), *filler, p0]
    items += [comment("c0", "NEW", 40), Deletion(COMMENT, "c1", line=41)]
    report = load(svc.records, "paris", items, None, batch=4)
    assert report.written and report.rejected == 0, report.to_dict()
    comments = _records(svc, "paris")["comment"]
    assert comments["c0"]["body"] == "NEW" and "c1" not in comments


def test_a_batch_size_below_one_is_one_write(embedded: Any) -> None:
    svc = embedded
    make_territory(svc, {"id": "paris", "name": "Paris", "country": "FR"}, ())
    report = load(svc.records, "paris", _items(5), None, batch=0)
    assert report.written and report.read == 11 and report.counts["created"] == 11
    assert live_dir(Path(svc.config["STORE"])) == Path(svc.config["STORE"])  # not staged


def test_readers_see_the_store_as_before_until_the_copy_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "oxigraph"
    store = EmbeddedStore(path)
    cs = Changeset()
    cs.add("http://example.org/g", ['<http://example.org/s> <http://example.org/p> "new"'])
    seen_from_another_thread: list[int] = []

    def look() -> None:
        seen_from_another_thread.append(store.count())

    with store.staged() as stage:
        store.apply(cs)
        assert store.count() == 1  # this thread writes and reads the copy
        reader = threading.Thread(target=look)
        reader.start()
        reader.join()
        stage.keep()
    assert seen_from_another_thread == [0]
    reader = threading.Thread(target=look)
    reader.start()
    reader.join()
    assert seen_from_another_thread == [0, 1]
    assert live_dir(path) == path / "store.1"
    store.close()
    # Reopened, the store is the copy, and the store it replaced is gone.
    again = EmbeddedStore(path)
    quad = next(again.quads())
    assert (quad.subject, quad.object) == (NamedNode("http://example.org/s"), Literal("new"))
    assert sorted(p.name for p in path.iterdir()) == ["live", "store.1"]
    # A second staged write goes on from there; one not kept changes nothing.
    with again.staged():
        again.apply(cs)
        again.update("CLEAR ALL")
    assert again.count() == 1 and live_dir(path) == path / "store.1"
    assert sorted(p.name for p in path.iterdir()) == ["live", "store.1"]
    again.close()
    # A live copy gone missing (a partial restore) is an error, never a new empty store.
    shutil.rmtree(path / "store.1")
    with pytest.raises(StoreError, match="missing"):
        EmbeddedStore(path)
    assert (path / "live").exists()


def test_a_write_of_another_thread_waits_for_the_copy_to_replace_the_store(tmp_path: Path) -> None:
    """A territory's derived data (its indicators) is written outside the commit lock a staged
    import holds: such a write from another thread, landing in the live store while the copy is
    written, would be lost when the copy replaces it. It waits, and lands in the new store."""
    store = EmbeddedStore(tmp_path / "oxigraph")
    staged, derived = Changeset(), Changeset()
    staged.add("http://example.org/imported", ['<http://example.org/s> <http://example.org/p> "imported"'])
    derived.add("http://example.org/cube", ['<http://example.org/o> <http://example.org/p> "derived"'])
    writer = threading.Thread(target=store.apply, args=(derived,))
    with store.staged() as stage:
        store.apply(staged)
        writer.start()
        writer.join(timeout=1)
        assert writer.is_alive()  # held while the copy is written
        stage.keep()
    writer.join()
    assert {q.graph_name.value for q in store.quads()} == {"http://example.org/imported", "http://example.org/cube"}
    store.close()


def test_a_copy_a_killed_process_left_is_removed_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "oxigraph"
    store = EmbeddedStore(path)
    store.load('<http://example.org/s> <http://example.org/p> "kept" .', RdfFormat.N_TRIPLES)
    # What a staged write killed before its end leaves: a copy in the store, never named live.
    store.snapshot(path / "store.1")
    store.close()
    assert (path / "store.1").is_dir()
    again = EmbeddedStore(path)
    assert again.count() == 1 and live_dir(path) == path
    assert not (path / "store.1").exists()
    again.close()
