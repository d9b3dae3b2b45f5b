"""The two shipped stores side by side: SQLite (default) and LanceDB, at 100k and 1M vectors.

    .venv/bin/python benchmarks/stores.py --sizes 100000 1000000

For each size both stores get the same chunks, written the way `genstack ingest`
writes them (one ``replace_source`` per source of 1,000 chunks), then:

- ingest seconds and disk size;
- dense query p50/p95 (exact scan, which both stores do by default) for 200 queries;
- LanceDB with its IVF-PQ index (``create_vector_index``): build seconds, p50/p95, and
  recall@10 against the exact scan;
- BM25 p50/p95 for 200 three-word queries.

Vectors: 384-d unit vectors drawn around 512 cluster centres (real embeddings cluster;
uniform random vectors are the worst case for an approximate index), with queries
near stored points. Texts: sentences of the SciFact corpus when ../shared/data holds
it, else generated words. No model runs: this measures the stores only.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from genstack.stores.base import Record
from genstack.stores.lancedb import LanceDBStore
from genstack.stores.sqlite import SQLiteStore

DIM = 384
PER_SOURCE = 1000
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval" / "scifact" / "corpus.jsonl"


def sentences(n: int, rng: random.Random) -> list[str]:
    pool: list[str] = []
    if SCIFACT.is_file():
        for line in SCIFACT.read_text(encoding="utf-8").splitlines():
            pool += [s.strip() for s in json.loads(line)["text"].split(". ") if len(s.split()) > 5]
    else:
        words = [f"w{i}" for i in range(20000)]
        pool = [" ".join(rng.choices(words, k=20)) for _ in range(50000)]
    return [pool[rng.randrange(len(pool))] for _ in range(n)]


def vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((512, DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        out[i:i + m] = centres[rng.integers(0, 512, m)] + 0.6 * rng.standard_normal((m, DIM)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def run(store, vecs: np.ndarray, texts: list[str], queries: np.ndarray, words: list[str]) -> dict:
    n = len(vecs)
    t0 = time.perf_counter()
    for s in range(0, n, PER_SOURCE):
        src = f"doc{s // PER_SOURCE:05d}.txt"
        store.replace_source(src, [Record(f"{s // PER_SOURCE:05d}:{j}", src, texts[s + j], vecs[s + j],
                                          {"page": j % 7}, f"h{s + j}") for j in range(min(PER_SOURCE, n - s))],
                             f"hash{s}")
    if hasattr(store, "optimize"):
        store.optimize()  # fold the writes into the full-text index (LanceDB does this on close)
    out = {"ingest_s": time.perf_counter() - t0}
    store.query(queries[0], k=10)  # load the cache
    lat, exact = [], []
    for q in queries:
        t = time.perf_counter()
        hits = store.query(q, k=10)
        lat.append(time.perf_counter() - t)
        exact.append([h.id for h in hits])
    out |= {"dense_p50_ms": pct(lat, 50), "dense_p95_ms": pct(lat, 95)}
    lat = []
    for w in words:
        t = time.perf_counter()
        store.search_text(w, k=10)
        lat.append(time.perf_counter() - t)
    out |= {"bm25_p50_ms": pct(lat, 50), "bm25_p95_ms": pct(lat, 95)}
    if isinstance(store, LanceDBStore):
        t = time.perf_counter()
        store.create_vector_index()
        out["index_s"] = time.perf_counter() - t
        lat, recall = [], []
        for q, ex in zip(queries, exact):
            t = time.perf_counter()
            hits = store.query(q, k=10)
            lat.append(time.perf_counter() - t)
            recall.append(len({h.id for h in hits} & set(ex)) / 10)
        out |= {"ann_p50_ms": pct(lat, 50), "ann_p95_ms": pct(lat, 95), "ann_recall@10": float(np.mean(recall))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(0)
    for n in args.sizes:
        vecs = vectors(n)
        texts = sentences(n, rng)
        qi = np.random.default_rng(1).integers(0, n, args.queries)
        queries = vecs[qi] + 0.05 * np.random.default_rng(2).standard_normal((args.queries, DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        words = [" ".join(rng.sample(texts[i].split(), 3)) for i in qi]
        results = {}
        for name in ("sqlite", "lancedb"):
            root = Path(tempfile.mkdtemp(prefix=f"stores-{name}-"))
            store = SQLiteStore(root / "store.sqlite", dim=DIM, embedder="bench") if name == "sqlite" else \
                LanceDBStore(root / "lance", dim=DIM, embedder="bench", auto_index=False)
            r = run(store, vecs, texts, queries, words)
            store.close()
            r["disk_mb"] = disk(root) / 1e6
            results[name] = r
            shutil.rmtree(root)
            gc.collect()
            print(json.dumps({"n": n, "store": name, **{k: round(v, 3) for k, v in r.items()}}), flush=True)
        s, lan = results["sqlite"], results["lancedb"]
        print(f"\n{n:,} vectors: lancedb/sqlite ingest {lan['ingest_s'] / s['ingest_s']:.2f}x, "
              f"dense p50 {lan['dense_p50_ms'] / s['dense_p50_ms']:.2f}x, bm25 p50 {lan['bm25_p50_ms'] / s['bm25_p50_ms']:.2f}x, "
              f"disk {lan['disk_mb'] / s['disk_mb']:.2f}x; IVF-PQ p50 {lan['ann_p50_ms']:.1f} ms at recall@10 "
              f"{lan['ann_recall@10']:.3f}\n", flush=True)


if __name__ == "__main__":
    main()
