"""Embedding engines for the bundled all-MiniLM-L6-v2, same texts, same run (issue 20).

    .venv/bin/python benchmarks/embed_engines.py [--docs 256] [--rounds 2] [--engines ...]
    .venv/bin/python benchmarks/embed_engines.py --ndcg onnx-int8-keep2 ...

Embeds the first N SciFact abstracts (title + text) with each engine, the
engines alternating round by round, and prints docs/s (each round), the ratio
to torch fp32, and the cosine of each engine's vectors to torch fp32's (mean
and min). Engines:

  torch-fp32            sentence-transformers, batches of 8 (the fp32 default)
  torch-bf16            the same under torch.autocast bf16, batches of 16
  torch-compile-fp32    the transformer through torch.compile (dynamic shapes)
  torch-compile-bf16    both
  onnx-fp32             ONNX Runtime, the same weights exported
  onnx-int8             dynamic int8 (weights per channel, MatMul only)
  onnx-int8-keepN       the same with the last N of the 6 layers left in fp32
  onnx-int8-static      static int8 (QDQ; activation ranges calibrated on the
                        bundled sample corpus), -keepN as above

With --ndcg ENGINE..., each named engine also embeds the whole SciFact corpus
(a scratch data dir) and its dense and hybrid nDCG@10 on the test queries are
printed beside torch fp32's recorded figures (0.6654 and 0.7252).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from embed_precision import SCIFACT, scifact_texts  # a sibling script: the same texts, the same data path

DEFAULT = ["torch-fp32", "torch-bf16", "torch-compile-fp32", "torch-compile-bf16", "onnx-fp32", "onnx-int8",
           "onnx-int8-keep1", "onnx-int8-keep2", "onnx-int8-static", "onnx-int8-static-keep2"]


def compiled(precision: str):
    """A sentence-transformers embedder whose transformer runs through torch.compile."""
    import torch

    from genstack.embeddings import get_embedder

    emb = get_embedder("minilm-l6-v2" + ("@bf16" if precision == "bf16" else ""))
    emb.model[0].auto_model = torch.compile(emb.model[0].auto_model, dynamic=True)
    emb.name = f"torch-compile-{precision}"
    return emb


def make(engine: str, cache: Path):
    from genstack.embeddings import get_embedder

    if engine == "torch-fp32":
        return get_embedder("minilm-l6-v2")
    if engine == "torch-bf16":
        return get_embedder("minilm-l6-v2@bf16")
    if engine.startswith("torch-compile-"):
        return compiled(engine.rsplit("-", 1)[1])
    if engine.startswith("onnx-"):
        from genstack.embeddings.onnx import OnnxEmbedder

        base = get_embedder("minilm-l6-v2")
        return OnnxEmbedder(base.path, name=engine, quantize=engine[len("onnx-"):], cache_dir=cache, batch_size=8)
    raise SystemExit(f"unknown engine {engine!r}; known: {', '.join(DEFAULT)}")


def ndcg(emb, tag: str) -> dict:
    from genstack import load_settings
    from genstack.evaluation.retrieval import evaluate_beir

    with tempfile.TemporaryDirectory() as d:
        settings = load_settings(data_dir=d)
        r = evaluate_beir(SCIFACT, split="test", modes=("dense", "hybrid"), settings=settings, embedder=emb,
                          collection=f"scifact-{tag}")
    return {m: r["modes"][m]["ndcg@10"] for m in ("dense", "hybrid")} | {"ingest_s": r["ingest_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=DEFAULT)
    ap.add_argument("--ndcg", nargs="*", default=[], help="engines to run on the whole SciFact corpus")
    ap.add_argument("--cache", default=str(Path(__file__).parent / "out" / "onnx"))
    args = ap.parse_args()
    if not (SCIFACT / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact is not at {SCIFACT} (see ../shared/data/README)")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(args.cache) / "inductor"))
    from genstack.embeddings import cpu_has_bf16

    cache = Path(args.cache)
    texts = scifact_texts(args.docs)
    print(f"bf16 instructions: {cpu_has_bf16()}; {args.docs} SciFact abstracts, {args.rounds} rounds")
    names = list(dict.fromkeys(["torch-fp32", *args.engines]))
    engines = {}
    for n in names:
        t = time.perf_counter()
        engines[n] = make(n, cache)
        engines[n].embed(texts[:16])  # load, convert or compile, and warm up
        engines[n].embed(texts[16:48])
        print(f"  {n}: ready in {time.perf_counter() - t:.1f} s", flush=True)
    rates = {n: [] for n in names}
    vecs = {}
    for _ in range(args.rounds):
        for n, e in engines.items():
            t = time.perf_counter()
            vecs[n] = e.embed(texts)
            rates[n].append(len(texts) / (time.perf_counter() - t))
    ref = max(rates["torch-fp32"])
    print("\n| engine | docs/s (each round) | best / torch fp32 | cosine to fp32: mean | min |\n|---|---|---|---|---|")
    for n in names:
        cos = (vecs[n] * vecs["torch-fp32"]).sum(1)
        print(f"| {n} | {', '.join(f'{r:.1f}' for r in rates[n])} | {max(rates[n]) / ref:.2f}x "
              f"| {cos.mean():.5f} | {cos.min():.5f} |")
    if args.ndcg:
        print("\n| engine | dense nDCG@10 | hybrid nDCG@10 | ingest s |\n|---|---|---|---|")
        for n in args.ndcg:
            emb = engines.get(n) or make(n, cache)
            r = ndcg(emb, n)
            print(f"| {n} | {r['dense']:.4f} ({r['dense'] - 0.6654:+.4f}) | {r['hybrid']:.4f} "
                  f"({r['hybrid'] - 0.7252:+.4f}) | {r['ingest_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
