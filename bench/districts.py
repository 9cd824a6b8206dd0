"""District assignment benchmark: 100,000 random points located among 500 irregular polygons.

``python -m bench.districts [POINTS] [POLYGONS]`` builds a :class:`DistrictIndex` over a grid of
irregular polygons that tile a city-sized area (jittered corners, jittered vertices along each
shared edge: neighbours share their borders exactly, as real boundaries do), then assigns a
district to each random point in one vectorised query. Prints the seconds taken; the target is
2 s for the defaults.
"""

from __future__ import annotations

import math
import random
import sys
import time
from typing import Any

from server.ingest.districts import DistrictIndex

#: Where the grid lies (about Lyon): degrees.
ORIGIN = (4.77, 45.70)
CELL = 0.004
#: Vertices added along each edge, so that a polygon has ~30 like a real quartier outline.
EDGE_VERTICES = 6
TARGET_SECONDS = 2.0


def grid(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` districts (at least): cells of a jittered lattice, each edge a jittered polyline
    shared with the neighbour so that the cells tile the area with no gap or overlap."""
    rng = random.Random(seed)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    corner = {
        (i, j): (ORIGIN[0] + (i + rng.uniform(-0.25, 0.25)) * CELL, ORIGIN[1] + (j + rng.uniform(-0.25, 0.25)) * CELL)
        for i in range(cols + 1)
        for j in range(rows + 1)
    }
    edges: dict[tuple[tuple[int, int], tuple[int, int]], list[tuple[float, float]]] = {}

    def edge(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[float, float]]:
        """The vertices from corner a to corner b (b excluded), the same for both neighbours."""
        key = (a, b) if a < b else (b, a)
        if key not in edges:
            (x0, y0), (x1, y1) = corner[key[0]], corner[key[1]]
            # Offsets across the edge, small enough that no two edges of a cell can cross.
            nx, ny = y0 - y1, x1 - x0
            inner = []
            for k in range(1, EDGE_VERTICES + 1):
                t, wiggle = k / (EDGE_VERTICES + 1), rng.uniform(-0.08, 0.08)
                inner.append((x0 + (x1 - x0) * t + nx * wiggle, y0 + (y1 - y0) * t + ny * wiggle))
            edges[key] = [corner[key[0]], *inner]
        points = edges[key]
        return points if key == (a, b) else [corner[key[1]], *reversed(points[1:])]

    out = []
    for i in range(cols):
        for j in range(rows):
            ring = [
                *edge((i, j), (i + 1, j)),
                *edge((i + 1, j), (i + 1, j + 1)),
                *edge((i + 1, j + 1), (i, j + 1)),
                *edge((i, j + 1), (i, j)),
            ]
            ring.append(ring[0])
            coordinates = [[[round(x, 7), round(y, 7)] for x, y in ring]]
            out.append(
                {
                    "id": f"d{i:03d}-{j:03d}",
                    "level": "quartier",
                    "geometry": {"type": "Polygon", "coordinates": coordinates},
                }
            )
    return out[: max(count, 1)]


def run(points: int = 100_000, polygons: int = 500) -> dict[str, float]:
    districts = grid(polygons)
    rng = random.Random(11)
    side = math.ceil(math.sqrt(polygons)) * CELL
    lons = [ORIGIN[0] + rng.uniform(0, side) for _ in range(points)]
    lats = [ORIGIN[1] + rng.uniform(0, side) for _ in range(points)]
    started = time.perf_counter()
    index = DistrictIndex(districts)
    built = time.perf_counter()
    found = index.locate_many(lons, lats)
    done = time.perf_counter()
    located = sum(1 for f in found if f is not None)
    # Baseline, in the same run: one point at a time (the index queried per point, as a loop over
    # records would), on a tenth of the points, scaled up.
    sample = max(1, points // 10)
    loop_started = time.perf_counter()
    for lon, lat in zip(lons[:sample], lats[:sample], strict=True):
        index.locate(lon, lat)
    per_point_s = (time.perf_counter() - loop_started) * points / sample
    return {
        "per_point_loop_s": per_point_s,
        "build_s": built - started,
        "locate_s": done - built,
        "total_s": done - started,
        "located": located,
        "points": points,
        "polygons": len(districts),
    }


def report(result: dict[str, float]) -> str:
    verdict = "PASS" if result["total_s"] <= TARGET_SECONDS else "FAIL"
    return (
        f"district assignment: {result['points']:,} points among {result['polygons']} polygons in "
        f"{result['total_s']:.3f} s (index {result['build_s']:.3f} s, locate {result['locate_s']:.3f} s; "
        f"{result['located']:,} located); target ≤ {TARGET_SECONDS:g} s: {verdict}\n"
        f"  baseline, one point at a time: {result['per_point_loop_s']:.2f} s"
    )


def main() -> None:
    args = [int(a) for a in sys.argv[1:3]]
    print(report(run(*args)))


if __name__ == "__main__":
    main()
