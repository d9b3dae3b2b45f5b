"""Load benchmark for `genstack serve`: 1, 4 and 16 concurrent streaming clients.

    python benchmarks/serve_load.py [--clients 1 4 16] [--requests 4] [--max-tokens 64] [--repeat 3]

Starts `genstack serve` as a subprocess (default model, default settings), then for
each concurrency level runs that many clients, each sending ``--requests`` streaming
chat requests one after another (different prompts, greedy). Reports aggregate
completion tokens/s over the level's wall time, p50/p99 time-to-first-token, p50/p99
latency and errors by status. In the same run, raw llama-cpp-python decodes on the
same GGUF file the server loaded, single stream, with the same thread count: its
decode tokens/s is the reference the aggregate is compared with. It is measured
before the first run and after every run, and each run is compared with the mean
of the two measurements around it (this shared VM's speed drifts by up to ±20%
over minutes). With ``--repeat N`` every level runs N times and the run with the
median ratio is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOPICS = ["a lighthouse keeper", "a lost kitten", "the first snow", "a city at night", "an old library",
          "a long train journey", "a storm at sea", "a mountain village", "a robot gardener", "a desert market",
          "a school play", "a broken clock", "a secret garden", "a river ferry", "a winter festival", "a bee hive"]


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[i]


def raw_decode(path: str, threads: int, tokens: int) -> float:
    """Single-stream decode tokens/s with raw llama-cpp-python (run in a subprocess)."""
    code = f"""
import time, json
from llama_cpp import Llama
llm = Llama(model_path={path!r}, n_ctx=2048, n_threads={threads}, n_threads_batch={threads}, verbose=False, flash_attn=True)
rates = []
for i in range(3):
    toks = llm.tokenize(("Write a long story about " + {TOPICS!r}[i] + ".").encode())
    llm.reset()
    n = 0
    t_first = None
    for tok in llm.generate(toks, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        n += 1
        if t_first is None:
            t_first = time.perf_counter()
        if n >= {tokens}:
            break
    rates.append((n - 1) / (time.perf_counter() - t_first))
print(json.dumps(sorted(rates)[1]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


async def one_client(client, url, cid: int, n: int, max_tokens: int, results: list):
    for j in range(n):
        topic = TOPICS[(cid * n + j) % len(TOPICS)]
        body = {"model": "smollm2-135m-instruct", "temperature": 0, "max_tokens": max_tokens, "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": f"Write a long story about {topic}."}]}
        t0 = time.perf_counter()
        ttft, tokens, status = None, 0, None
        try:
            async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
                status = r.status_code
                if status == 200:
                    async for line in r.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        # the client shares the server's 2 cores: decode JSON only for the events
                        # that matter (errors, usage, the first text), not for every token
                        if ttft is None or '"usage"' in line or '"error"' in line:
                            ev = json.loads(line[6:])
                            if "error" in ev:
                                status = ev["error"].get("code") or "error"
                                continue
                            if ev.get("usage"):
                                tokens = ev["usage"]["completion_tokens"]
                            if ev["choices"] and ev["choices"][0]["delta"].get("content") and ttft is None:
                                ttft = time.perf_counter() - t0
                else:
                    await r.aread()
        except Exception as exc:  # noqa: BLE001
            status = type(exc).__name__
        results.append({"status": status, "ttft": ttft, "latency": time.perf_counter() - t0, "tokens": tokens})


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc; 0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


async def level(url, clients: int, n: int, max_tokens: int, server_pid: int = 0) -> dict:
    import httpx

    results: list = []
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0, c0, s0 = time.perf_counter(), time.process_time(), cpu_seconds(server_pid)
        await asyncio.gather(*(one_client(client, url, c, n, max_tokens, results) for c in range(clients)))
        wall = time.perf_counter() - t0
        client_cpu, server_cpu = time.process_time() - c0, cpu_seconds(server_pid) - s0
    ok = [r for r in results if r["status"] == 200]
    errors: dict = {}
    for r in results:
        if r["status"] != 200:
            errors[str(r["status"])] = errors.get(str(r["status"]), 0) + 1
    tokens = sum(r["tokens"] for r in ok)
    return {"clients": clients, "requests": len(results), "ok": len(ok), "errors": errors, "wall_s": wall,
            "tokens": tokens, "tokens_per_s": tokens / wall,
            # where the 2 cores went: the load generator shares them with the server
            "client_cpu_share": client_cpu / wall, "server_cpu_share": server_cpu / wall,
            "ttft_p50": pct([r["ttft"] for r in ok if r["ttft"]], 50), "ttft_p99": pct([r["ttft"] for r in ok if r["ttft"]], 99),
            "latency_p50": pct([r["latency"] for r in ok], 50), "latency_p99": pct([r["latency"] for r in ok], 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=4, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--concurrency", type=int, default=1, help="genstack serve --concurrency")
    ap.add_argument("--batch", type=int, default=0, help="genstack serve --batch (continuous batching slots)")
    ap.add_argument("--guard", default="flag", help="genstack serve --guard (off, flag or block)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per level; the median is reported")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from genstack import get_model, load_settings

    settings = load_settings()
    model = get_model("smollm2-135m-instruct", settings=settings)
    path = str(model.path)  # the file the server loads (weights=auto may re-encode it once)
    threads = settings.threads()[0]

    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "genstack", "serve", "--port", str(args.port), "--rate-limit", "0",
                             "--queue", "256", "--no-access-log", "--no-log", "--concurrency", str(args.concurrency),
                             "--batch", str(args.batch), "--guard", args.guard],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=30).read()  # loads the model
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("server did not start; log: " + log.name)
        # warm-up, not measured: first requests pay one-time costs (graph allocation, the guard's embedder)
        asyncio.run(level(url, max(args.clients), 1, 8))
        # the peer is measured between the runs, so that each run is compared with the decode
        # speed of its own minutes (the speed of this shared VM drifts by up to ±20%)
        raws = [raw_decode(path, threads, 128)]
        rows = []
        for c in args.clients:
            runs = []
            for _ in range(args.repeat):
                r = asyncio.run(level(url, c, args.requests, args.max_tokens, proc.pid))
                raws.append(raw_decode(path, threads, 128))
                r["raw"] = (raws[-2] + raws[-1]) / 2
                r["ratio"] = r["tokens_per_s"] / r["raw"]
                runs.append(r)
            runs.sort(key=lambda r: r["ratio"])
            rows.append({**runs[len(runs) // 2], "runs": [(round(r["tokens_per_s"], 1), round(r["ratio"], 2)) for r in runs]})
    finally:
        proc.terminate()
        proc.wait(30)
    if args.json:
        print(json.dumps({"raw_decode_tokens_per_s": raws, "levels": rows, "model_file": path}, indent=2))
        return
    print(f"model file: {path}\nraw llama-cpp-python single-stream decode between runs: "
          f"{', '.join(f'{x:.1f}' for x in raws)} tokens/s\n")
    print("| clients | requests | ok | errors | aggregate tokens/s | raw decode | × raw decode | runs (tokens/s, ×) | TTFT p50 | TTFT p99 | latency p50 | latency p99 | CPU: server, client (cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        err = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
        print(f"| {r['clients']} | {r['requests']} | {r['ok']} | {err} | {r['tokens_per_s']:.1f} | "
              f"{r['raw']:.1f} | {r['ratio']:.2f} | {'; '.join(f'{t}, {x}' for t, x in r['runs'])} | {r['ttft_p50']:.2f} s | {r['ttft_p99']:.2f} s | "
              f"{r['latency_p50']:.2f} s | {r['latency_p99']:.2f} s | {r['server_cpu_share']:.2f}, {r['client_cpu_share']:.2f} |")


if __name__ == "__main__":
    main()
