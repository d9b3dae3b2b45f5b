"""Embedding arithmetic: the bundled MiniLM in fp32 against bf16 autocast, same run.

    .venv/bin/python benchmarks/embed_precision.py [--docs 256] [--rounds 2]

Embeds the first N SciFact abstracts (title + text) with
``get_embedder("minilm-l6-v2")`` (torch fp32, batches of 8) and
``get_embedder("minilm-l6-v2@bf16")`` (torch.autocast bf16, batches of 16),
alternating, and prints docs/s for each, the ratio, and the cosine of each bf16
vector to its fp32 twin. It prints whether this CPU has bf16 instructions
(AVX512-BF16 / AMX-BF16), which decides what ``embed_precision = "auto"`` picks:
without them torch emulates bf16 and it is slower than fp32.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "retrieval" / "scifact"


def scifact_texts(n: int) -> list[str]:
    """The first ``n`` SciFact abstracts, title and text, as the embedder sees them."""
    texts = []
    with (SCIFACT / "corpus.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            texts.append(f"{r['title']}\n{r['text']}")
            if len(texts) >= n:
                break
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not (SCIFACT / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact is not at {SCIFACT} (see ../shared/data/README)")
    from genstack.embeddings import cpu_has_bf16, default_embedder_spec, get_embedder

    texts = scifact_texts(args.docs)
    print(f"bf16 instructions: {cpu_has_bf16()}; embed_precision=auto picks {default_embedder_spec()}")
    engines = [get_embedder("minilm-l6-v2"), get_embedder("minilm-l6-v2@bf16")]
    for e in engines:
        e.embed(texts[:8])  # load and warm up
    rates = {e.name: [] for e in engines}
    vecs = {}
    for _ in range(args.rounds):
        for e in engines:
            t = time.perf_counter()
            vecs[e.name] = e.embed(texts)
            rates[e.name].append(len(texts) / (time.perf_counter() - t))
    cos = (vecs["minilm-l6-v2"] * vecs["minilm-l6-v2@bf16"]).sum(1)
    print("\n| engine | batch | docs/s (each round) |\n|---|---|---|")
    for e in engines:
        print(f"| {e.name} | {e.batch_size} | {', '.join(f'{r:.1f}' for r in rates[e.name])} |")
    ratio = max(rates["minilm-l6-v2@bf16"]) / max(rates["minilm-l6-v2"])
    print(f"\nbf16 / fp32 (best round each): {ratio:.2f}x; cosine bf16 to fp32: mean {cos.mean():.5f}, min {cos.min():.5f}")


if __name__ == "__main__":
    main()
