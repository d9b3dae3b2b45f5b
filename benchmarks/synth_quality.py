"""Is a synthetic question set as good a yardstick as the hand-written one?

    .venv/bin/python benchmarks/synth_quality.py [--n 60] [--model smollm2-135m-instruct] [--out FILE]

On the sample corpus (ingested into a temporary home with the default embedder):

1. ``genstack.synth.synth_qa`` writes a set (factoid, quantity, unanswerable) with ``--model``.
2. Both sets, the synthetic one and the built-in 44 hand-written questions, rank nine retrieval
   configurations (dense / bm25 / hybrid × k = 1 / 2 / 4; at k = 8 every configuration finds
   every source of this small corpus) by hit@k, and the three modes by MRR@10 on their answerable
   questions; reported: each configuration's hit@k on both sets, Kendall's tau between the two
   rankings (scipy), and the hit@5 of the default hybrid search on both.
3. A check anyone can rerun on the written file: for each of the first 40 answerable items, the
   supporting sentence occurs in the stored source chunk and contains the answer.

The file is written to ``--out`` so that it can be read and graded by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from scipy.stats import kendalltau

from genstack import load_settings
from genstack.evaluation.rag import _is_gold, load_rag_dataset
from genstack.ingestion import ingest
from genstack.retrieval import Retriever
from genstack.synth import synth_qa, write_jsonl

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "genstack" / "data" / "sample"
CONFIGS = [(mode, k) for mode in ("dense", "bm25", "hybrid") for k in (1, 2, 4)]


def hit_rate(retriever, items, mode, k):
    ans = [it for it in items if it.answerable]
    return sum(any(_is_gold(h.source, it.source) for h in retriever.search(it.question, k=k, mode=mode))
               for it in ans) / len(ans)


def mrr(retriever, items, mode, k=10):
    ans = [it for it in items if it.answerable]
    total = 0.0
    for it in ans:
        for rank, h in enumerate(retriever.search(it.question, k=k, mode=mode), 1):
            if _is_gold(h.source, it.source):
                total += 1 / rank
                break
    return total / len(ans)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("synth_sample.jsonl"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["GENSTACK_HOME"] = home
        settings = load_settings()
        ingest([SAMPLE], "docs", settings=settings)
        t0 = time.perf_counter()
        report = synth_qa("docs", n=args.n, model=args.model, settings=settings, seed=args.seed,
                          kinds=["factoid", "quantity", "unanswerable"])
        print(json.dumps({**report.to_dict(), "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        write_jsonl(report.items, args.out)
        synthetic = load_rag_dataset(args.out)
        human = load_rag_dataset()
        retriever = Retriever("docs", settings=settings)
        rows = []
        for mode, k in CONFIGS:
            rows.append({"mode": mode, "k": k, "human": round(hit_rate(retriever, human, mode, k), 3),
                         "synthetic": round(hit_rate(retriever, synthetic, mode, k), 3)})
            print(json.dumps(rows[-1]), flush=True)
        mrrs = {m: {"human": round(mrr(retriever, human, m), 3), "synthetic": round(mrr(retriever, synthetic, m), 3)}
                for m in ("dense", "bm25", "hybrid")}
        print(json.dumps({"mrr@10": mrrs}), flush=True)
        tau = kendalltau([r["human"] for r in rows], [r["synthetic"] for r in rows])
        h5 = hit_rate(retriever, human, "hybrid", 5)
        s5 = hit_rate(retriever, synthetic, "hybrid", 5)
        chunks = {c.id: c.text for c in retriever.store.chunks()}
        checked = [it for it in report.items if it.source][:40]
        ok = sum(" ".join(it.supporting_sentence.split())[:60] in " ".join(chunks[it.chunk_id].split())
                 and it.answer in it.supporting_sentence for it in checked)
        print(json.dumps({"kendall_tau": round(float(tau.statistic), 3), "p_value": round(float(tau.pvalue), 4),
                          "hit@5_hybrid_human": round(h5, 3), "hit@5_hybrid_synthetic": round(s5, 3),
                          "answerable_synthetic": sum(i.answerable for i in synthetic),
                          "unanswerable_synthetic": sum(not i.answerable for i in synthetic),
                          "supporting_sentence_check": f"{ok}/{len(checked)}", "file": str(args.out)}), flush=True)


if __name__ == "__main__":
    main()
