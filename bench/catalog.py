"""The portal surfaces at 10,000 datasets: the DCAT-AP catalog and the CKAN Action API.

Synthetic territories (``--datasets`` / 8 of them, one example record of each kind, so that each
publishes its 8 datasets) are written in process, then ``civicfed serve`` answers over loopback
to one keep-alive client:

- the catalog prepared by the server at start, in the background (the dataset list built from the
  store, each dataset's Turtle and CKAN dict written): measured once the server says it is done;
- a catalog page of 100 in Turtle, every page once (distinct pages, so no answer is served twice),
  then the same pages again;
- ``package_search`` with an ``fq`` (one organization or one format) and ``rows=100``;
- ``package_show`` of random datasets;
- the catalog walked end to end by its ``hydra:next`` links.

Targets (issue #9): catalog page p50 ≤ 30 ms, package_search p50 ≤ 20 ms, package_show p50 ≤ 5 ms.
``python -m bench.catalog --datasets 10000`` runs this section alone.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from .run import Server, fresh_data_dir

TARGETS = {"catalog_page": 30.0, "catalog_page_again": 30.0, "package_search": 20.0, "package_show": 5.0}
KINDS_PER_TERRITORY = 8


def populate(data_dir: Path, datasets: int) -> list[str]:
    """Territories with one example record of each kind; returns their ids."""
    from server.app import create_app
    from server.model.examples import RECORDS
    from server.model.kinds import load_order
    from server.records import Op
    from server.services import services

    app = create_app({"DATA_DIR": str(data_dir), "BASE_URI": "https://bench.example", "RATELIMIT_ENABLED": False})
    ids = [f"t{i:05d}" for i in range(max(1, datasets // KINDS_PER_TERRITORY))]
    with app.app_context():
        records = services().records
        for i, territory in enumerate(ids):
            records.create_territory(
                {
                    "id": territory,
                    "name": f"Commune {i}",
                    "country": "FR",
                    "location": {"lat": 45 + i / 1e4, "lon": 4.8},
                }
            )
            ops = [
                Op(kind, RECORDS[kind.name]["id"], "upsert", records.prepare(kind, RECORDS[kind.name]))
                for kind in load_order()
            ]
            report = records.write_internal(territory, ops)
            if not report.written:
                raise RuntimeError(f"could not write the records of {territory}")
    app.extensions["civicfed"].close()
    return ids


def _p(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 99
    return {"n": len(ordered), "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "max_ms": ordered[-1] * 1000}


def _get(http: requests.Session, url: str, **kwargs: Any) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    resp = http.get(url, timeout=300, **kwargs)
    elapsed = time.perf_counter() - start
    if resp.status_code != 200:
        raise RuntimeError(f"{url}: {resp.status_code} {resp.text[:300]}")
    return elapsed, resp


def run_catalog(work: Path, threads: int, datasets: int = 10_000, samples: int = 100) -> dict[str, Any]:
    data_dir = fresh_data_dir(work / "catalog-data")
    started = time.perf_counter()
    territories = populate(data_dir, datasets)
    out: dict[str, Any] = {"territories": len(territories), "populate_s": time.perf_counter() - started}
    server = Server(data_dir, threads)
    rng = random.Random(9)
    try:
        with requests.Session() as http:
            base = server.url
            prepared = re.findall(
                rb"prepared its catalog: \d+ datasets in ([\d.]+) s", (data_dir / "server.log").read_bytes()
            )
            out["prepared_s"] = float(prepared[-1])
            first, resp = _get(http, f"{base}/catalog.ttl?page_size=100")
            out["first_request_s"] = first
            total = int(re.search(rb"hydra:totalItems \"?(\d+)", resp.content).group(1))  # type: ignore[union-attr]
            out["datasets"] = total
            last = max(1, -(-total // 100))
            pages = list(range(2, last + 1)) or [1]  # page 1 was the first request's
            rng.shuffle(pages)
            visited = pages[:samples]
            out["catalog_page"] = _p([_get(http, f"{base}/catalog.ttl?page={n}&page_size=100")[0] for n in visited])
            # A harvester's next visit: the same pages, their datasets' Turtle kept by the server.
            out["catalog_page_again"] = _p(
                [_get(http, f"{base}/catalog.ttl?page={n}&page_size=100")[0] for n in visited]
            )
            searches = []
            for i in range(samples):
                fq = f"organization:{rng.choice(territories)}" if i % 2 else "res_format:GeoJSON"
                searches.append(_get(http, f"{base}/api/3/action/package_search", params={"fq": fq, "rows": 100})[0])
            out["package_search"] = _p(searches)
            names = [f"{rng.choice(territories)}-{k}" for k in ("proposals", "comments", "meetings", "processes")]
            shows = [
                _get(http, f"{base}/api/3/action/package_show", params={"id": rng.choice(names)})[0]
                for _ in range(samples * 3)
            ]
            out["package_show"] = _p(shows)
            # End to end, as a harvester walks it.
            url: str | None = f"{base}/catalog.ttl?page_size=100"
            walked, start = 0, time.perf_counter()
            while url:
                _, resp = _get(http, url)
                walked += 1
                m = re.search(rb"hydra:next <([^>]+)>", resp.content)
                url = m.group(1).decode().replace("https://bench.example", base) if m else None
            out["walk"] = {"pages": walked, "seconds": time.perf_counter() - start}
    finally:
        server.stop()
    return out


def report(results: dict[str, Any]) -> str:
    lines = [
        "",
        f"portal surfaces at {results['datasets']:,} datasets ({results['territories']:,} territories, "
        f"written in {results['populate_s']:.0f} s)",
        f"  catalog prepared at start, in the background (dataset list, Turtle, CKAN dicts): "
        f"{results['prepared_s']:.1f} s; first request then {results['first_request_s'] * 1000:.0f} ms",
        f"  {'':36} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target",
    ]
    for key, label in (
        ("catalog_page", "catalog page of 100, Turtle"),
        ("catalog_page_again", "  the same pages again"),
        ("package_search", "package_search fq, rows=100"),
        ("package_show", "package_show"),
    ):
        s = results[key]
        verdict = "PASS" if s["p50_ms"] <= TARGETS[key] else "FAIL"
        lines.append(
            f"  {label:36} {s['n']:>5} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['max_ms']:>8.1f}"
            f"  p50 ≤ {TARGETS[key]:g} ms: {verdict}"
        )
    walk = results["walk"]
    lines.append(f"  the catalog walked end to end: {walk['pages']} pages in {walk['seconds']:.1f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="civicfed-bench-catalog-") as work:
        results = run_catalog(Path(work), args.threads, args.datasets, args.samples)
    print(report(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
