"""Synthetic questions against human ones on BEIR SciFact: do they rank retrieval configurations alike?

    .venv/bin/python benchmarks/synth_beir.py [--docs 1000] [--n 40]

A subset of SciFact's corpus (every document a test query is judged relevant to, plus random others
up to ``--docs``) is ingested; ``synth_qa`` writes questions from it with the bundled model. Both the
human test queries and the synthetic questions score nine retrieval configurations (dense / bm25 /
hybrid × k = 1 / 3 / 10) by document-level hit@k; Kendall's tau compares the two rankings. Skips with
a reason when ../shared/data holds no SciFact.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval" / "scifact"
CONFIGS = [(m, k) for m in ("dense", "bm25", "hybrid") for k in (1, 3, 10)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (ROOT / "corpus.jsonl").is_file():
        sys.exit(f"skipped: no SciFact at {ROOT} (see ../shared/data/README.md)")
    from genstack import load_settings
    from genstack.documents import LoaderOptions
    from genstack.evaluation.retrieval import load_beir, ranked_documents
    from genstack.ingestion import ingest
    from genstack.retrieval import Retriever
    from genstack.synth import synth_qa, write_jsonl

    data = load_beir(ROOT, "test")
    wanted = {d for rels in data.qrels.values() for d in rels}
    docs = [json.loads(x) for x in (ROOT / "corpus.jsonl").read_text().splitlines() if x.strip()]
    rng = random.Random(0)
    rest = [d for d in docs if str(d["_id"]) not in wanted]
    rng.shuffle(rest)
    subset = [d for d in docs if str(d["_id"]) in wanted] + rest[: max(0, args.docs - len(wanted))]
    with tempfile.TemporaryDirectory() as home:
        os.environ["GENSTACK_HOME"] = home
        settings = load_settings()
        corpus = Path(home) / "scifact-subset.jsonl"
        corpus.write_text("".join(json.dumps(d) + "\n" for d in subset))
        t0 = time.perf_counter()
        ingest([corpus], "scifact", settings=settings, loader_options=LoaderOptions(text_field="text"))
        print(json.dumps({"docs": len(subset), "ingest_s": round(time.perf_counter() - t0, 1)}), flush=True)
        t0 = time.perf_counter()
        report = synth_qa("scifact", n=args.n, settings=settings, kinds=["factoid", "quantity"], seed=0)
        print(json.dumps({**report.to_dict(), "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        if args.out:
            write_jsonl(report.items, args.out)
        retriever = Retriever("scifact", settings=settings)
        doc_of = {c.id: str(c.metadata.get("_id")) for c in retriever.store.chunks()}
        human = [(text, {d for d, r in data.qrels[q].items() if r > 0}) for q, text in data.queries.items()]
        synthetic = [(it.question, {doc_of[it.chunk_id]}) for it in report.items if it.chunk_id]

        def hit(items, mode, k):
            ok = 0
            for q, gold in items:
                hits = retriever.search(q, k=k * 3, mode=mode)
                ranked = ranked_documents(hits)[:k]
                ok += bool(gold & set(ranked))
            return ok / len(items)

        rows = [{"mode": m, "k": k, "human": round(hit(human, m, k), 3), "synthetic": round(hit(synthetic, m, k), 3)}
                for m, k in CONFIGS]
        for r in rows:
            print(json.dumps(r), flush=True)
        tau = kendalltau([r["human"] for r in rows], [r["synthetic"] for r in rows])
        print(json.dumps({"kendall_tau": round(float(tau.statistic), 3), "p_value": round(float(tau.pvalue), 4),
                          "human_queries": len(human), "synthetic_questions": len(synthetic)}), flush=True)


if __name__ == "__main__":
    main()
