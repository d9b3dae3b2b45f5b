"""Generation benchmark: genstack vs raw llama-cpp-python on the same model.

    python benchmarks/generation.py              # genstack vs raw, alternating runs
    python benchmarks/generation.py --sweep      # llama.cpp settings and weight types for prefill

Each measurement runs in a fresh subprocess (so peak RSS is per path), and the
two paths alternate run by run so machine noise hits both alike. Both use the
same GGUF file, prompts, thread count and llama.cpp settings.

Measured:
* prefill tokens/s and time-to-first-token for a ~1,000-token prompt (a fresh
  prefix each trial, so no KV-cache reuse);
* decode tokens/s over 128 greedy tokens of a completion that does not stop early;
* peak RSS of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

PARA = (
    "The river ran through the old town, past the mill and the church, and on towards the sea. "
    "Fishermen mended their nets on the quay while gulls argued over scraps. "
)
DECODE_PROMPT = "The history of the Roman Empire"
PREFILL_TOKENS = 1000
DECODE_TOKENS = 128


def model_path() -> str:
    from genstack.models.registry import REGISTRY, spec_paths
    from genstack import load_settings

    return str(spec_paths(REGISTRY["smollm2-135m-instruct"], load_settings())[0])


def worker(impl: str, path: str, cfg: dict, trials: int) -> dict:
    from llama_cpp import Llama

    t0 = time.perf_counter()
    if impl == "raw":
        llm = Llama(model_path=path, verbose=False, **cfg)
    else:
        from genstack.models.llamacpp import LlamaCppModel

        model = LlamaCppModel(path, **cfg)
        model.warm_up()
        llm = model.llama
    load_s = time.perf_counter() - t0
    base = llm.tokenize((PARA * 40).encode(), add_bos=False)[:PREFILL_TOKENS]
    text = llm.detokenize(base).decode()

    ttft, prefill = [], []
    for i in range(trials):
        prompt = f"Trial {i}: {text}"  # a fresh prefix every time: no KV-cache reuse
        t = time.perf_counter()
        if impl == "raw":
            it = llm.create_completion(prompt, max_tokens=1, temperature=0.0, stream=True)
            next(iter(it))
            n_prompt = len(llm.tokenize(prompt.encode()))
        else:
            stream = model.stream(prompt, max_tokens=1, greedy=True)
            next(iter(stream))
            n_prompt = model.count_tokens(prompt)
        dt = time.perf_counter() - t
        ttft.append(dt)
        prefill.append(n_prompt / dt)

    decode, produced = [], []
    for i in range(max(1, trials // 2)):
        prompt = f"{DECODE_PROMPT}{' ' * i}"
        first = last = None
        n = 0
        if impl == "raw":
            pieces = (c["choices"][0]["text"] for c in llm.create_completion(
                prompt, max_tokens=DECODE_TOKENS, temperature=0.0, stream=True) if c["choices"][0]["text"])
        else:
            pieces = iter(model.stream(prompt, max_tokens=DECODE_TOKENS, greedy=True))
        for _ in pieces:
            now = time.perf_counter()
            first = first or now
            last = now
            n += 1
        decode.append((n - 1) / (last - first))
        produced.append(n)
    return {
        "impl": impl,
        "load_s": load_s,
        "prompt_tokens": n_prompt,
        "ttft_s": statistics.median(ttft),
        "prefill_tps": statistics.median(prefill),
        "decode_tps": statistics.median(decode),
        "decode_pieces": min(produced),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def spawn(impl: str, path: str, cfg: dict, trials: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", impl, "--path", path, "--cfg", json.dumps(cfg), "--trials", str(trials)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(args) -> None:
    from genstack import load_settings

    s = load_settings()
    threads, batch_threads = s.threads()
    cfg = {"n_ctx": 2048, "n_threads": threads, "n_threads_batch": batch_threads,
           "n_batch": s.n_batch, "n_ubatch": s.n_ubatch, "flash_attn": s.flash_attn}
    # the file genstack loads under the default settings (weights="auto" may re-encode it)
    from genstack.models.llamacpp import LlamaCppModel

    loaded = LlamaCppModel(model_path(), settings=s)
    path = str(loaded.path)
    print(f"model {os.path.basename(path)} ({loaded.info.quantization}, from {loaded.source_path.name}); "
          f"settings {cfg}; {args.rounds} alternating rounds")
    runs: dict[str, list[dict]] = {"genstack": [], "raw": []}
    for r in range(args.rounds):
        order = ("genstack", "raw") if r % 2 == 0 else ("raw", "genstack")
        for impl in order:
            runs[impl].append(spawn(impl, path, cfg, args.trials))
            print(f"  round {r + 1} {impl:8} " + json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                                           for k, v in runs[impl][-1].items() if k != "impl"}), flush=True)
    med = {impl: {k: statistics.median(x[k] for x in rs) for k in rs[0] if k != "impl"} for impl, rs in runs.items()}
    g, w = med["genstack"], med["raw"]
    print()
    print(f"| metric | genstack | raw llama-cpp-python | ratio (genstack/raw) |")
    print(f"|---|---|---|---|")
    for key, label, better in [("prefill_tps", "prefill tokens/s", "higher"), ("decode_tps", "decode tokens/s", "higher"),
                               ("ttft_s", f"time to first token, {int(g['prompt_tokens'])}-token prompt (s)", "lower"),
                               ("peak_rss_mb", "peak RSS (MB)", "lower"), ("load_s", "load (s)", "lower")]:
        print(f"| {label} | {g[key]:.2f} | {w[key]:.2f} | {g[key] / w[key]:.3f} ({better} is better) |")
    if args.json:
        print(json.dumps(med))


SWEEP = [
    ("llama-cpp-python defaults (n_threads=2)", {}, "original"),
    ("flash_attn", {"flash_attn": True}, "original"),
    ("n_batch=n_ubatch=256", {"n_batch": 256, "n_ubatch": 256}, "original"),
    ("n_batch=n_ubatch=1024", {"n_batch": 1024, "n_ubatch": 1024}, "original"),
    ("flash_attn, n_batch=n_ubatch=1024", {"flash_attn": True, "n_batch": 1024, "n_ubatch": 1024}, "original"),
    ("flash_attn, n_ubatch=256", {"flash_attn": True, "n_ubatch": 256}, "original"),
    ("flash_attn, n_threads=1", {"flash_attn": True, "n_threads": 1, "n_threads_batch": 1}, "original"),
    ("flash_attn, weights requantized Q8_0", {"flash_attn": True}, "q8_0"),
    ("flash_attn, weights requantized F16", {"flash_attn": True}, "f16"),
    ("flash_attn, weights requantized Q4_0", {"flash_attn": True}, "q4_0"),
]


def requantized(path: str, kind: str) -> str:
    import ctypes
    import tempfile

    import llama_cpp

    ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
             "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0}[kind]
    dst = os.path.join(tempfile.gettempdir(), f"genstack-bench-smollm2-{kind}.gguf")
    if not os.path.exists(dst):
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = ftype, True, 2
        if llama_cpp.llama_model_quantize(path.encode(), dst.encode(), ctypes.byref(params)) != 0:
            raise SystemExit(f"requantizing to {kind} failed")
    return dst


def sweep(args) -> None:
    path = model_path()
    print("| configuration | prefill tok/s | decode tok/s | TTFT (s) |")
    print("|---|---|---|---|")
    for label, extra, weights in SWEEP:
        cfg = {"n_ctx": 2048, "n_threads": 2, **extra}
        p = path if weights == "original" else requantized(path, weights)
        res = [spawn("raw", p, cfg, args.trials) for _ in range(args.rounds)]
        pre = statistics.median(r["prefill_tps"] for r in res)
        dec = statistics.median(r["decode_tps"] for r in res)
        ttft = statistics.median(r["ttft_s"] for r in res)
        print(f"| {label} | {pre:.0f} | {dec:.0f} | {ttft:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", action="store_true", help="sweep llama.cpp settings for prefill")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=["genstack", "raw"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--cfg", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, json.loads(args.cfg), args.trials)))
    elif args.sweep:
        sweep(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
