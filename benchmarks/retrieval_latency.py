"""Query latency of dense, BM25 and hybrid retrieval at 5k, 100k and 1M chunks.

    python benchmarks/retrieval_latency.py [--data DIR --collection NAME] [--sizes 5000 100000 1000000]

Real SciFact chunks are the seed: the script ingests the SciFact corpus (or
reuses a collection already ingested with --data/--collection) and builds a
collection of each size by cycling through the real chunks; copies after the
first get their vector jittered (Gaussian noise, renormalised) so the dense
scan sees no exact duplicates. Each query is a SciFact test query, timed end
to end as a user sees it: query embedding, search, reading the hits.
BM25 and hybrid run twice in the same process: with FTS5 answering keyword
queries (keyword_index = "fts5") and with the sparse keyword index
(keyword_index = "sparse", built after the writes, its build time printed).
Dense and hybrid run with both dense engines (dense_index = "exact", every
vector scored, and "binary", sign codes first and the nearest rescored), and
the binary engine's quality is printed against the exact one on the same
queries: recall@10 of the exact top-10 chunks (k = 10 queries, the smallest
candidate set), and document nDCG@10 of each (top 100 chunks, best chunk per
document, SciFact's qrels).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "retrieval" / "scifact"


def seed_collection(args):
    from genstack import load_settings

    if args.data:
        return load_settings(data_dir=args.data), args.collection
    from genstack.documents import LoaderOptions
    from genstack.ingestion import ingest

    settings = load_settings(data_dir=Path(__file__).parent / "out" / "data")
    ingest([SCIFACT / "corpus.jsonl"], "scifact", settings=settings, loader_options=LoaderOptions())
    return settings, "scifact"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data dir holding an ingested SciFact collection")
    ap.add_argument("--collection", default="scifact")
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 100000, 1000000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-fts5", action="store_true", help="skip the FTS5 runs (about 7 minutes at 1M)")
    args = ap.parse_args()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact not found at {SCIFACT}")

    from genstack import load_settings
    from genstack.embeddings import get_embedder
    from genstack.evaluation.retrieval import load_beir
    from genstack.retrieval import Retriever
    from genstack.stores import open_collection
    from genstack.stores.base import Record

    settings, name = seed_collection(args)
    src = open_collection(name, settings)
    rows = src.db.execute("SELECT id, source, text, metadata, content_hash, vector FROM chunks ORDER BY rowid").fetchall()
    embedder_name = src.embedder
    src.close()
    queries = list(load_beir(SCIFACT, "test").queries.values())[: args.queries]
    embedder = get_embedder(embedder_name, settings=settings)
    embedder.warm_up()
    rng = np.random.default_rng(0)
    print(f"seed: {len(rows)} real chunks from {name!r}; {len(queries)} queries; embedder {embedder_name}")
    print("| chunks | mode | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        bench = load_settings(data_dir=tmp, keyword_index="fts5")
        for size in args.sizes:
            store = open_collection(f"n{size}", bench, create=True, embedder=embedder_name, dim=embedder.dim)
            batch = []
            for i in range(size):
                rid, source, text, meta, chash, blob = rows[i % len(rows)]
                vec = np.frombuffer(blob, dtype=np.float32)
                if i >= len(rows):
                    vec = vec + rng.normal(0, 0.02, vec.shape[0]).astype(np.float32)
                    vec /= np.linalg.norm(vec)
                batch.append(Record(f"{rid}#{i}", f"{source}#{i // len(rows)}", text, vec, json.loads(meta), chash))
                if len(batch) == 5000:
                    store.upsert(batch)
                    batch = []
            if batch:
                store.upsert(batch)
            store.close()
            store = open_collection(f"n{size}", load_settings(data_dir=tmp, keyword_index="sparse"))
            t = time.perf_counter()
            assert store.update_keyword_index() == "sparse"
            print(f"| {size:,} | (sparse keyword index built in {time.perf_counter() - t:.1f} s) | | | |", flush=True)
            store.close()
            runs = [("fts5", "exact", ("dense", "bm25", "hybrid")), ("sparse", "exact", ("bm25", "hybrid")),
                    ("sparse", "binary", ("dense", "hybrid"))]
            if args.no_fts5:
                runs[0] = ("sparse", "exact", ("dense",))
            for engine, dense_engine, modes in runs:
                r = Retriever(f"n{size}", load_settings(data_dir=tmp, keyword_index=engine, dense_index=dense_engine),
                              embedder=embedder)
                r.search(queries[0], k=10, mode="hybrid")  # load the matrix (and build the codes) once
                for mode in modes:
                    times = []
                    for q in queries:
                        t = time.perf_counter()
                        r.search(q, k=10, mode=mode)
                        times.append(1000 * (time.perf_counter() - t))
                    times.sort()
                    p95 = times[int(0.95 * (len(times) - 1))]
                    label = {"dense": f"dense ({dense_engine})", "bm25": f"bm25 ({engine})"}.get(
                        mode, f"hybrid ({engine}, {dense_engine})")
                    print(f"| {size:,} | {label} | {statistics.median(times):.1f} | {p95:.1f} | "
                          f"{statistics.mean(times):.1f} |", flush=True)
                r.close()
            quality(tmp, f"n{size}", size, embedder)


def quality(tmp, name, size, embedder) -> None:
    """The binary engine against the exact one, on the same SciFact test queries."""
    from genstack import load_settings
    from genstack.evaluation.retrieval import load_beir, ndcg_at_k, ranked_documents
    from genstack.stores import open_collection

    data = load_beir(SCIFACT, "test")
    stores = {e: open_collection(name, load_settings(data_dir=tmp, dense_index=e)) for e in ("exact", "binary")}
    overlap = 0
    ndcg = {"exact": 0.0, "binary": 0.0}
    qids = list(data.queries)
    vecs = embedder.embed_queries([data.queries[q] for q in qids])
    for qid, v in zip(qids, vecs):
        hits = {e: st.query(v, 100) for e, st in stores.items()}
        top10 = {e: {h.id for h in st.query(v, 10)} for e, st in stores.items()}  # k=10: the fewest candidates
        overlap += len(top10["exact"] & top10["binary"])
        for e, hs in hits.items():
            ndcg[e] += ndcg_at_k(ranked_documents(hs), data.qrels[qid], 10)
    n = len(qids)
    print(f"| {size:,} | binary vs exact, {n} queries: recall@10 {overlap / (10 * n):.4f}, nDCG@10 "
          f"{ndcg['binary'] / n:.4f} vs {ndcg['exact'] / n:.4f} | | | |", flush=True)
    for st in stores.values():
        st.close()

if __name__ == "__main__":
    main()
