"""Ray ingest vs local ingest on BEIR SciFact, same run, same machine.

    .venv/bin/python benchmarks/ingest_ray.py [--limit N] [--workers 1,2]

The first N SciFact abstracts (title + text), one .txt file each, ingested into a
fresh SQLite collection with the bundled all-MiniLM-L6-v2:

* local: `ingest(...)` in this process (load/split/write overlapped with embedding
  on one background thread, torch on every core);
* ray W: `ingest(..., ray=True, ray_workers=W)` on a local Ray cluster started
  once before the timed runs (its start-up is reported apart), W actors with one
  CPU and one torch thread each, this process the only writer.

Reported per engine: seconds (including each run's actor start-up, which loads
the model in every actor), docs/s, and the ratio to local. All runs must end
with the same chunks; the script checks it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "retrieval" / "scifact" / "corpus.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    if not SCIFACT.exists():
        raise SystemExit(f"SciFact corpus not found at {SCIFACT}")

    import ray

    from genstack import load_settings
    from genstack.ingestion import ingest
    from genstack.stores import open_collection

    root = Path(tempfile.mkdtemp(prefix="ingest-ray-"))
    docs = root / "docs"
    docs.mkdir()
    with SCIFACT.open() as f:
        for _, line in zip(range(args.limit), f):
            d = json.loads(line)
            (docs / f"{d['_id']}.txt").write_text(f"{d['title']}\n\n{d['text']}\n")

    def run(name, **kw):
        settings = load_settings(data_dir=root / name)
        t0 = time.perf_counter()
        report = ingest([docs], "sf", settings=settings, **kw)
        assert not report.failed, report.failed[:3]
        seconds = time.perf_counter() - t0
        store = open_collection("sf", settings)
        texts = [h.text for h in store.chunks()]
        store.close()
        return {"engine": name, "seconds": seconds, "docs": report.added, "chunks": report.chunks, "texts": texts}

    rows = [run("local")]
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    start = time.perf_counter() - t0
    for w in [int(x) for x in args.workers.split(",")]:
        rows.append(run(f"ray {w}", ray=True, ray_workers=w))
    ray.shutdown()

    base = rows[0]
    print(f"SciFact, {args.limit} abstracts; Ray cluster start {start:.1f} s (not in the rows)")
    print(f"{'engine':<8} {'seconds':>8} {'docs/s':>7} {'chunks':>7} {'local/this':>10}")
    for r in rows:
        assert r["texts"] == base["texts"], f"{r['engine']}: different chunks from local"
        print(f"{r['engine']:<8} {r['seconds']:>8.1f} {r['docs'] / r['seconds']:>7.1f} {r['chunks']:>7} "
              f"{base['seconds'] / r['seconds']:>10.2f}")


if __name__ == "__main__":
    main()
