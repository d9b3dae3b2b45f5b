"""Does tuning help grounded answers? SFT on synthetic grounded-answer rows, then `eval rag` before/after.

    .venv/bin/python benchmarks/tune_rag.py [--work DIR] [--seeds 0,1,2,3] [--n 60] [--epochs 3]

In a scratch genstack home (DIR/home; each stage's output is kept in DIR and reused on a rerun):

1. the sample corpus is ingested as collection ``sample``;
2. ``genstack.synth_qa`` writes question-answer items with the bundled SmolLM2 (one run per seed;
   questions repeated across runs are dropped);
3. ``genstack.tune.rag_data.rag_rows`` turns them into training rows in the pipeline's own prompt
   (the supporting sentence, cited, as the answer; NOT FOUND for unanswerable items);
4. ``genstack.tune_sft`` tunes SmolLM2 with LoRA (defaults, ``--epochs``);
5. ``genstack eval rag`` is run on the base and the tuned model over the built-in 44 questions and
   benchmarks/data/rag_heldout.jsonl (24), neither of which the synthetic items were drawn from.

Printed: the funnel, training figures, and a before/after table. Also how many evaluation questions
share a supporting fact with a training row (the corpus is small, so facts overlap: the questions
are written separately, the documents are the same).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "benchmarks" / "data" / "rag_heldout.jsonl"
KEYS = ("fact", "citation_precision", "abstention", "false_abstention", "seconds_median")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/genstack-tune-rag"))
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--name", default="smollm2-rag")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["GENSTACK_HOME"] = str(args.work / "home")

    from genstack import load_settings
    from genstack.evaluation.rag import evaluate_rag, load_rag_dataset, sample_corpus
    from genstack.ingestion import ingest
    from genstack.rag.pipeline import Asker
    from genstack.synth import synth_qa, write_jsonl
    from genstack.tune.rag_data import rag_rows, write_rows
    from genstack.tune.sft import SFTConfig, sft

    settings = load_settings()
    ingest([sample_corpus()], "sample", settings=settings)

    items_file = args.work / "items.jsonl"
    if not items_file.is_file():
        seen, items, t0 = set(), [], time.monotonic()
        for seed in [int(s) for s in args.seeds.split(",")]:
            rep = synth_qa("sample", n=args.n, seed=seed, settings=settings)
            print(f"synth seed {seed}: kept {len(rep.items)} ({dict(rep.kept)}), dropped {dict(rep.dropped)}", flush=True)
            for it in rep.items:
                if it.question.lower() not in seen:
                    seen.add(it.question.lower())
                    it.id = f"synth-{len(items) + 1}"
                    items.append(it)
        write_jsonl(items, items_file)
        print(f"{len(items)} distinct items in {time.monotonic() - t0:.0f} s -> {items_file}", flush=True)

    rows_file = args.work / "rows.jsonl"
    if not rows_file.is_file():
        rr = rag_rows(items_file, "sample", settings=settings)
        write_rows(rr, rows_file)
        print(f"training rows: {json.dumps(rr.to_dict())}", flush=True)
    rows = [json.loads(x) for x in rows_file.read_text().splitlines()]

    # overlap: evaluation questions whose key fact appears in a training answer
    evals = {"built-in": load_rag_dataset(None), "held-out": load_rag_dataset(HELDOUT)}
    answers = " ".join(r["messages"][-1]["content"].lower() for r in rows)
    for name, items in evals.items():
        ans = [it for it in items if it.answerable]
        shared = sum(any(f.lower() in answers for f in it.facts) for it in ans)
        print(f"{name}: {shared}/{len(ans)} answerable questions have a key fact that a training answer states")

    from genstack.models.tuned import read_manifest

    if read_manifest(args.name, settings) is None:
        res = sft(rows_file, output=args.name, config=SFTConfig(epochs=args.epochs, lr=args.lr, batch=4, max_len=1024),
                  settings=settings, overwrite=True,
                  progress=lambda e: print(e.get("message") or
                                           f"step {e['step']}/{e['max_steps']} loss {e.get('loss', float('nan')):.3f} "
                                           f"eval {e.get('eval_loss', float('nan')):.3f} {e['tokens_per_second']:.0f} tok/s",
                                           file=sys.stderr, flush=True) if ("loss" in e or "eval_loss" in e or "message" in e) else None)
        m = res.manifest
    else:
        m = read_manifest(args.name, settings)
    print(f"tuned: {m['train_rows']} rows, {m['steps']} steps, {m['tokens']} tokens, {m['seconds']:.0f} s, "
          f"{m['tokens_per_second']} tokens/s, peak RSS {m['peak_rss_bytes'] / 1e9:.2f} GB, "
          f"held-out loss {m['eval_loss_before']:.3f} -> {m['eval_loss_after']:.3f}", flush=True)

    print("\n| question set | model | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name, items in evals.items():
        for model in ("smollm2-135m-instruct", args.name):
            asker = Asker("sample", model=model, settings=settings)
            try:
                s = evaluate_rag(asker, items)["summary"]
            finally:
                asker.close()
            vals = " | ".join("-" if s.get(k) is None else f"{s[k]:.3f}" for k in KEYS)
            print(f"| {name} ({len(items)}) | {model} | {vals} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
