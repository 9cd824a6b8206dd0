"""Which district of its territory a located record lies in.

A :class:`DistrictIndex` is built from a territory's district records: an STRtree over their
boundaries (shapely 2, prepared geometries), queried for many points at once. The loader fills the
``district`` of the proposals, meetings and projects it loads with a location and no district
(:meth:`DistrictIndex.assign`); when the boundaries change, :func:`reassign_ops` gives the merge
patches that put every located record of the territory in the district its coordinates are in.
:func:`place_in_districts` does both for a batch of operations: the loader's one call.

Where districts nest (a commune, its arrondissements, their quartiers, IRIS), a point gets the
finest one: the deepest level, then the smallest area, then the smallest id (a point on the border
of two districts of the same level gets one of them, always the same). A point on a boundary is in
the district (``intersects``, which for a point is ``covered_by`` and about twice as fast; not
``within``): rounding coordinates to 7 decimals must not make a record fall between two districts.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import shapely

from ..model.kinds import KINDS, RECORD_KINDS, Kind
from ..records import Op, Records
from ..records.edit import merge_patch

DISTRICT = KINDS["district"]
#: The kinds whose records have a location and name their district.
LOCATED_KINDS: tuple[Kind, ...] = tuple(
    k for k in RECORD_KINDS if "location" in k.mapping.by_name and "district" in k.mapping.by_name
)
_LOCATED = {k.name for k in LOCATED_KINDS}
#: How deep each level lies; ``other`` lies one below its parent (or at the top without one).
LEVEL_DEPTH = {"commune": 0, "arrondissement": 1, "quartier": 2, "iris": 3}
#: Records read per page when a territory's records are listed.
PAGE = 1000


class DistrictIndex:
    """The districts of one territory that have a boundary, ready to locate points in."""

    def __init__(self, districts: Iterable[dict[str, Any]]) -> None:
        by_id = {d["id"]: d for d in districts if d.get("geometry")}
        self.ids: list[str] = sorted(by_id)
        geometries = [shapely.from_geojson(json.dumps(by_id[i]["geometry"])) for i in self.ids]
        shapely.prepare(geometries)  # (the geometry objects themselves: the tree's predicates use them)
        self._tree = shapely.STRtree(geometries)
        depth: dict[str, int] = {}

        def depth_of(local_id: str, seen: frozenset[str] = frozenset()) -> int:
            if local_id not in depth:
                d = by_id[local_id]
                parent = d.get("parent")
                if d.get("level") in LEVEL_DEPTH:
                    depth[local_id] = LEVEL_DEPTH[d["level"]]
                elif parent in by_id and parent not in seen:  # (a cycle of parents is bad data, not a hang)
                    depth[local_id] = depth_of(parent, seen | {local_id}) + 1
                else:
                    depth[local_id] = 0
            return depth[local_id]

        areas = shapely.area(geometries).tolist() if self.ids else []
        order = sorted(range(len(self.ids)), key=lambda i: (-depth_of(self.ids[i]), areas[i], self.ids[i]))
        #: Lower is finer: the district a point gets is its containing district of lowest rank.
        self._rank = [0] * len(self.ids)
        for rank, i in enumerate(order):
            self._rank[i] = rank

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def for_territory(cls, records: Records, territory: str, pending: Iterable[dict[str, Any]] = ()) -> DistrictIndex:
        """The territory's stored districts, with ``pending`` ones (an import's, validated) in
        place of the stored ones of the same id."""
        by_id = {d["id"]: d for d in list_records(records, DISTRICT, territory)}
        by_id.update({d["id"]: d for d in pending})
        return cls(by_id.values())

    def locate(self, lon: float, lat: float) -> str | None:
        """The finest district containing the point, or None."""
        if not self.ids:
            return None
        hits = self._tree.query(shapely.points(lon, lat), predicate="intersects").tolist()
        return self.ids[min(hits, key=self._rank.__getitem__)] if hits else None

    def locate_many(self, lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        """:meth:`locate` for many points in one query of the tree (no Python loop over points)."""
        out: list[str | None] = [None] * len(lons)
        if not self.ids or not out:
            return out
        # One query for every point (the tree's C loop); then, of each point's hits, the finest.
        point_idx, tree_idx = self._tree.query(shapely.points(lons, lats), predicate="intersects").tolist()
        best: dict[int, int] = {}
        rank = self._rank
        for p, t in zip(point_idx, tree_idx, strict=True):
            b = best.get(p)
            if b is None or rank[t] < rank[b]:
                best[p] = t
        for p, t in best.items():
            out[p] = self.ids[t]
        return out

    def assign(self, records_data: list[dict[str, Any]]) -> None:
        """Fill ``district`` in the records that have a ``location`` and no district (a district
        the source gives is kept); a record whose point lies in no district is left without."""
        todo = [d for d in records_data if d.get("location") and not d.get("district")]
        found = self.locate_many([d["location"]["lon"] for d in todo], [d["location"]["lat"] for d in todo])
        for data, district in zip(todo, found, strict=True):
            if district is not None:
                data["district"] = district


#: Indexes of the territories' stored districts, per Records and territory, with the districts'
#: last change they were built at: a batch of located records costs one small query, not a listing.
_CACHE: weakref.WeakKeyDictionary[Records, dict[str, tuple[Any, DistrictIndex, list[dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary()
)
_CACHE_SIZE = 64


def stored_districts(records: Records, territory: str) -> tuple[DistrictIndex, list[dict[str, Any]]]:
    """The index of the territory's stored districts, and the districts (cached until they change)."""
    stamp = records.last_change(territory, [DISTRICT])
    cache = _CACHE.setdefault(records, {})
    hit = cache.get(territory)
    if hit is not None and hit[0] == stamp:
        return hit[1], hit[2]
    districts = list(list_records(records, DISTRICT, territory))
    index = DistrictIndex(districts)
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[territory] = (stamp, index, districts)
    return index, districts


def place_in_districts(records: Records, territory: str, ops: list[Op]) -> list[Op]:
    """The loader's one call, with a batch's operations before they are written: fills the district
    of each located record the batch writes without one (from the districts after the batch), and,
    when the batch writes or deletes districts, returns the patches that move the territory's
    other located records to their districts (:func:`reassign_ops`)."""
    changed = [op for op in ops if op.kind.name == DISTRICT.name]
    located = [
        op.data
        for op in ops
        if op.kind.name in _LOCATED and op.action == "upsert" and op.data and op.data.get("location")
    ]
    if not changed and all(d.get("district") for d in located):
        return []
    index, stored = stored_districts(records, territory)
    moved = False  # whether a boundary, level or parent changes (a snapshot re-read changes none)
    if changed:
        by_id = {d["id"]: d for d in stored}
        for op in changed:
            before = by_id.get(op.local_id)
            if op.action == "delete":
                by_id.pop(op.local_id, None)
            elif op.action == "upsert" and op.data is not None:
                by_id[op.local_id] = op.data
            elif op.action == "patch" and before is not None:
                by_id[op.local_id] = merge_patch(before, op.data or {})
            after = by_id.get(op.local_id)
            moved = moved or _shape(before) != _shape(after)
        if moved:
            stored = list(by_id.values())
            index = DistrictIndex(stored)
    index.assign(located)
    if not moved:
        return []
    in_batch = {(op.kind.name, op.local_id) for op in ops}
    return [op for op in reassign_ops(records, territory, stored) if (op.kind.name, op.local_id) not in in_batch]


def _shape(district: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What of a district decides which records lie in it."""
    if district is None:
        return None
    return district.get("geometry"), district.get("level"), district.get("parent")


def list_records(records: Records, kind: Kind, territory: str) -> Iterator[dict[str, Any]]:
    """Every live record of one kind of the territory, page by page (as the API returns them)."""
    cursor = None
    while True:
        page = records.list(kind, territories=[territory], cursor=cursor, limit=PAGE)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def reassign_ops(records: Records, territory: str, districts: Iterable[dict[str, Any]] | None = None) -> list[Op]:
    """After the territory's boundaries changed, the writes that put each located record in the
    district its coordinates are in: merge patches of ``district`` alone (a whole record written
    back would also rewrite the counts the server maintains). ``districts``: the territory's
    districts after the change (those of an import not yet written), else the stored ones.

    Coordinates win over a district a client set: the district becomes the finest one containing
    the point. A point in no district keeps its district if that district still exists (it may be
    just outside a simplified boundary), and loses it if the district is gone."""
    current = list(districts) if districts is not None else list(list_records(records, DISTRICT, territory))
    index = DistrictIndex(current)
    live = {d["id"] for d in current}
    ops: list[Op] = []
    for kind in LOCATED_KINDS:
        located = [r for r in list_records(records, kind, territory) if r.get("location")]
        found = index.locate_many([r["location"]["lon"] for r in located], [r["location"]["lat"] for r in located])
        for record, district in zip(located, found, strict=True):
            old = record.get("district")
            new = district if district is not None else (old if old in live else None)
            if new != old:
                ops.append(Op(kind, record["id"], "patch", {"district": new}, from_source=False))
    return ops
