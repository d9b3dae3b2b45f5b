"""Does tuning help a classic task? SFT on a public labelled set, evaluated on a disjoint split.

    .venv/bin/python benchmarks/tune_classic.py [--work DIR] [--train 400] [--test 400] [--epochs 1]
        [--method lora|prompt-tuning] [--lr X] [--name NAME]

Data: ../shared/data/pii/enterprise_pii_classification.jsonl (llm-foundry's enterprise PII set:
"Does the passage below contain sensitive information? ... Answer:", choices no / yes, balanced).
A seeded shuffle gives --train rows for tuning and a disjoint --test split; no passage of the test
split is in the training rows (checked).

1. ``genstack.tune_sft`` on the training rows as chat turns (the question, then "no" or "yes"),
   LoRA (or, with ``--method prompt-tuning``, a 16-vector soft prompt) with the defaults;
2. both models answer each test question in chat, greedy, and the first word of the reply is read
   as the label (what a user of ``genstack generate`` gets): accuracy, and how often the reply is
   neither yes nor no;
3. ``genstack eval bench --task-file`` on the same test split (log-likelihood of " no" / " yes" after
   the raw prompt, no chat template: the lm-evaluation-harness way): accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "enterprise_pii_classification.jsonl"


def first_word(text: str) -> str | None:
    words = text.strip().lower().replace(".", " ").replace(",", " ").replace(")", " ").split()
    for w in words[:3]:
        if w in ("yes", "no"):
            return w
    return None


def chat_accuracy(model_name: str, rows, settings) -> tuple[float, float, float]:
    from genstack import SamplingParams, get_model

    m = get_model(model_name, settings=settings)
    ok = unparsed = 0
    t0 = time.monotonic()
    try:
        for r in rows:
            reply = m.stream(messages=[{"role": "user", "content": r["query"]}],
                             params=SamplingParams(temperature=0, max_tokens=4)).collect().text
            label = first_word(reply)
            unparsed += label is None
            ok += label == r["choices"][r["gold"]]
    finally:
        m.close()
    return ok / len(rows), unparsed / len(rows), time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/genstack-tune-classic"))
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--method", choices=("lora", "prompt-tuning"), default="lora")
    ap.add_argument("--lr", type=float, default=None, help="default: the method's (2e-4 LoRA, 3e-2 soft prompt)")
    ap.add_argument("--name", default="smollm2-pii")
    args = ap.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is absent (see ../shared/data/README.md)")
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["GENSTACK_HOME"] = str(args.work / "home")
    from genstack import load_settings
    from genstack.evaluation.bench import evaluate_task, file_task
    from genstack.models.registry import get_model
    from genstack.models.tuned import read_manifest
    from genstack.tune.sft import SFTConfig, sft

    settings = load_settings()
    rows = [json.loads(x) for x in DATA.read_text().splitlines() if x.strip()]
    random.Random(0).shuffle(rows)
    train, test = rows[: args.train], rows[args.train: args.train + args.test]
    assert not {r["query"] for r in train} & {r["query"] for r in test}
    train_file, test_file = args.work / "train.jsonl", args.work / "test.jsonl"
    train_file.write_text("".join(json.dumps({"prompt": r["query"], "completion": r["choices"][r["gold"]]}) + "\n"
                                  for r in train))
    test_file.write_text("".join(json.dumps(r) + "\n" for r in test))
    print(f"train {len(train)} (yes {sum(r['gold'] for r in train)}), test {len(test)} "
          f"(yes {sum(r['gold'] for r in test)})", flush=True)

    m = read_manifest(args.name, settings)
    if m is None:
        res = sft(train_file, output=args.name, config=SFTConfig(method=args.method, epochs=args.epochs, lr=args.lr,
                                                                  max_len=512),
                  settings=settings, overwrite=True,
                  progress=lambda e: print(e.get("message") or f"step {e['step']}/{e['max_steps']} "
                                           f"loss {e.get('loss', float('nan')):.3f} eval {e.get('eval_loss', float('nan')):.3f} "
                                           f"{e['tokens_per_second']:.0f} tok/s", file=sys.stderr, flush=True))
        m = res.manifest
    print(f"tuned: {m['train_rows']} rows, {m['steps']} steps, {m['tokens']} tokens, {m['seconds']:.0f} s, "
          f"{m['tokens_per_second']} tokens/s, train peak RSS {m.get('train_peak_rss_bytes', 0) / 1e9:.2f} GB, "
          f"held-out loss {m['eval_loss_before']:.3f} -> {m['eval_loss_after']:.3f}", flush=True)

    task = file_task(test_file)
    print("\n| model | chat accuracy (greedy reply) | replies neither yes nor no | log-likelihood acc (eval bench) | s |")
    print("|---|---|---|---|---|")
    for name in ("smollm2-135m-instruct", args.name):
        acc, unparsed, secs = chat_accuracy(name, test, settings)
        model = get_model(name, settings=settings)
        try:
            ll = evaluate_task(model, task)["metrics"]["acc"]["value"]
        finally:
            model.close()
        print(f"| {name} | {acc:.3f} | {unparsed:.3f} | {ll:.3f} | {secs:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
