"""llama.cpp decode in a process that also embeds with torch: genstack's rule vs torch's default.

    python benchmarks/embed_beside_decode.py [--tokens 100] [--clients 1 16]

genstack embeds on one torch thread while a llama.cpp model is loaded in the
process (``genstack._cores``). The peer is the same process with torch left on
every core (an embedder built with ``threads=<cores>``, which genstack keeps as
asked). Each mode runs in a fresh subprocess: the bundled SmolLM2 with
continuous batching (16 slots), MiniLM embedding one short query before every
generation, as the server's guard and RAG retrieval do. Reported per mode:
decode tokens/s with 1 and 16 concurrent requests, and MiniLM's speed on 128
chunk-sized passages and on one short query, so the cost of the rule is
visible too. A third mode, no embedding at all, is the ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, sys, threading, time
from genstack import get_model, load_settings
from genstack.embeddings import get_embedder
from genstack.generation import SamplingParams
mode, tokens, clients = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]
s = load_settings()
m = get_model("smollm2-135m-instruct", settings=s)
m.enable_batching(16)
cores = len(os.sched_getaffinity(0))
e = None if mode == "none" else get_embedder(None, settings=s, **({"threads": cores} if mode == "torch-default" else {}))
out = {}
if e is not None:
    e.embed(["warm up"])
    passages = [("The quick brown fox jumps over the lazy dog near the river bank. " * 12) + str(i) for i in range(128)]
    t0 = time.perf_counter(); e.embed(passages); out["passages_per_s"] = 128 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(30):
        e.embed([f"how do I reset the router {i}"])
    out["query_ms"] = 1000 * (time.perf_counter() - t0) / 30
    import torch
    out["torch_threads"] = torch.get_num_threads()
params = SamplingParams(greedy=True, max_tokens=tokens)
def one(i):
    if e is not None:
        e.embed([f"Write a long story about topic number {i}."])
    toks = m.llama.tokenize(f"Write a long story about topic number {i}.".encode())
    n = 0
    for ch in m.batcher.submit(toks, params, tokens):
        n += ch.usage.completion_tokens if ch.usage else 0
    done.append(n)
for c in clients:
    done = []
    one(0)
    done = []
    t0 = time.perf_counter()
    ths = [threading.Thread(target=one, args=(i,)) for i in range(c)]
    [t.start() for t in ths]; [t.join() for t in ths]
    out[f"decode_{c}"] = sum(done) / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def run(mode: str, tokens: int, clients: list[int]) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, mode, str(tokens), ",".join(map(str, clients))],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    modes = ["none", "torch-default", "genstack"]
    res = {m: run(m, args.tokens, args.clients) for m in modes}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"cores: {len(os.sched_getaffinity(0))}; {args.tokens} greedy tokens per request, 16 batch slots\n")
    head = " | ".join(f"decode, {c} client{'s' if c > 1 else ''} (tokens/s)" for c in args.clients)
    print(f"| mode | torch threads | {head} | 128 passages (/s) | one query (ms) |")
    print("|---|---|" + "---|" * len(args.clients) + "---|---|")
    for m in modes:
        r = res[m]
        cells = " | ".join(f"{r[f'decode_{c}']:.1f}" for c in args.clients)
        print(f"| {m} | {r.get('torch_threads', '—')} | {cells} | {r.get('passages_per_s', float('nan')):.1f} | "
              f"{r.get('query_ms', float('nan')):.1f} |")
    g, t = res["genstack"], res["torch-default"]
    print("\ngenstack / torch-default: " + ", ".join(
        f"decode {c}: {g[f'decode_{c}'] / t[f'decode_{c}']:.2f}x" for c in args.clients)
        + f", passages {g['passages_per_s'] / t['passages_per_s']:.2f}x")


if __name__ == "__main__":
    main()
