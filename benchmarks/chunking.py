"""Chunk size and overlap on BEIR SciFact: dense and hybrid nDCG@10 on the train and test queries.

    .venv/bin/python benchmarks/chunking.py 128/0 144/16 128/16 200/32 200/64 [--langchain]

Each SIZE/OVERLAP (in the embedder's tokens) ingests the full corpus with genstack's defaults
otherwise, in a fresh process, and reports seconds, chunks and nDCG@10. Choose on the train
queries (809) and check on the test queries (300): the test split is what `benchmarks/ingest.py`
reports, so choosing on it would overfit it. ``--langchain`` adds the LangChain pipeline of
`benchmarks/ingest.py` (800 characters / 128 overlap, in .venv-compare) on both splits.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ingest import SCIFACT  # noqa: E402


def ndcg_both(rank_fn) -> dict:
    from genstack.evaluation.retrieval import load_beir, ndcg_at_k

    out = {}
    for split in ("train", "test"):
        data = load_beir(SCIFACT, split)
        out[split] = sum(ndcg_at_k(rank_fn(q), data.qrels[qid], 10) for qid, q in data.queries.items()) / len(data.queries)
    return out


def worker_genstack(size: int, overlap: int) -> dict:
    from genstack import load_settings
    from genstack.documents import LoaderOptions
    from genstack.ingestion import ingest
    from genstack.retrieval import Retriever

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        t = time.perf_counter()
        rep = ingest([SCIFACT / "corpus.jsonl"], "scifact", settings=settings, loader_options=LoaderOptions(),
                     chunk_size=size, overlap=overlap)
        seconds = time.perf_counter() - t
        ret = Retriever("scifact", settings)
        res = {"config": f"{size}/{overlap}", "seconds": seconds, "chunks": rep.chunks}
        for mode in ("dense", "hybrid"):
            res[mode] = ndcg_both(lambda q: list(dict.fromkeys(h.metadata["_id"] for h in ret.search(q, k=200, mode=mode))))
        ret.close()
    return res


def worker_langchain() -> dict:
    import ingest as bench

    bench.ndcg = lambda rank_fn, limit: ndcg_both(rank_fn)
    with tempfile.TemporaryDirectory() as tmp:
        res = bench.run_langchain(Path(tmp), None)
    return {"config": "LangChain 800 chars/128", "seconds": res["seconds"], "chunks": res["chunks"], "dense": res["ndcg@10"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", default=["128/0", "200/32"], help="SIZE/OVERLAP, in tokens")
    ap.add_argument("--langchain", action="store_true", help="add the LangChain pipeline (.venv-compare)")
    ap.add_argument("--langchain-python", default=str(HERE.parent / ".venv-compare" / "bin" / "python"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(2)
        if args.worker == "langchain":
            print(json.dumps(worker_langchain()))
        else:
            size, overlap = (int(x) for x in args.worker.split("/"))
            print(json.dumps(worker_genstack(size, overlap)))
        return
    if not (SCIFACT / "corpus.jsonl").is_file():
        sys.exit(f"SciFact is not at {SCIFACT} (see ../shared/data/README.md)")
    for c in args.configs:
        try:
            size, overlap = (int(x) for x in c.split("/"))
        except ValueError:
            sys.exit(f"expected SIZE/OVERLAP such as 128/0, got {c!r}")
    print("| chunking | seconds | chunks | dense train | dense test | hybrid train | hybrid test |")
    print("|---|---|---|---|---|---|---|")
    runs = [(sys.executable, c) for c in args.configs] + ([(args.langchain_python, "langchain")] if args.langchain else [])
    for python, w in runs:
        out = subprocess.run([python, __file__, "--worker", w], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{w} failed:\n{out.stderr[-2000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        h = r.get("hybrid")
        hybrid = f"{h['train']:.4f} | {h['test']:.4f}" if h else "— | —"
        print(f"| {r['config']} | {r['seconds']:.0f} | {r['chunks']:,} | {r['dense']['train']:.4f} | "
              f"{r['dense']['test']:.4f} | {hybrid} |", flush=True)


if __name__ == "__main__":
    main()
