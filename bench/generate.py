"""Synthetic territories of any size, as the NDJSON a platform would push.

Uses the demo generator (importers/demo.py) with synthetic territory names, so the data has the
demo's realistic shape (proposals with locations, votes, threaded comments, meetings, projects)
scaled up. ``python -m bench.generate --quads 1000000 --territories 5 --out bench/data``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from importers.demo import DEMO_TERRITORIES, TerritorySpec, generate, territory_record

#: Quads per territory ≈ LINEAR·scale + VOTES·scale^1.5: proposals, comments and meetings grow
#: with the scale, votes faster (more proposals, more voters each). Fitted on stores of 1.2M and
#: 3.4M quads in 5 territories.
LINEAR, VOTES = 2_365, 8_194


def scale_for(quads_per_territory: float) -> float:
    """The demo generator's scale that yields about this many quads per territory."""
    low, high = 0.0, 10_000.0
    for _ in range(60):
        mid = (low + high) / 2
        if LINEAR * mid + VOTES * mid**1.5 < quads_per_territory:
            low = mid
        else:
            high = mid
    return max(low, 0.05)


def synthetic(n: int) -> list[TerritorySpec]:
    """n territories named bench-00…, shaped like the demo's three cities."""
    out = []
    for i in range(n):
        base = DEMO_TERRITORIES[i % len(DEMO_TERRITORIES)]
        out.append(
            replace(
                base, id=f"bench-{i:02d}", name=f"Bench {i:02d} ({base.name})", insee_cog=None, wikidata=None, nuts=None
            )
        )
    return out


def write(
    out: Path, quads: int, territories: int, seed: int = 7, *, counts_only: bool = False
) -> list[tuple[dict, Path, int]]:
    """Write one NDJSON file per territory; returns (territory record, file, number of lines).
    ``counts_only``: votes as counts, no individual (private) vote: ``quads`` are all published."""
    out.mkdir(parents=True, exist_ok=True)
    scale = quads / territories / LINEAR if counts_only else scale_for(quads / territories)
    files = []
    for spec in synthetic(territories):
        path = out / f"{spec.id}.ndjson"
        n = 0
        with path.open("w", encoding="utf-8") as f:
            for record in generate(spec, scale=scale, seed=seed, counts_only=counts_only):
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
        files.append((territory_record(spec), path, n))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quads", type=int, default=1_000_000, help="Approximate size of the store.")
    parser.add_argument("--territories", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/data"))
    args = parser.parse_args()
    for record, path, n in write(args.out, args.quads, args.territories):
        print(f"{record['id']}: {n} records → {path}")


if __name__ == "__main__":
    main()
