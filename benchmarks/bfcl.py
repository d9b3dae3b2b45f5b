"""Function calling on the Berkeley Function Calling Leaderboard (BFCL v4), genstack beside llama.cpp's own server.

    .venv/bin/python benchmarks/bfcl.py [--categories simple,multiple,irrelevance] [--limit 100]
                                        [--models smollm2-135m-instruct,gemma3-270m] [--no-peer] [--free]
    .venv/bin/python benchmarks/bfcl.py --calibrate [--models ...]

Data: ../shared/data/tools/bfcl (its README says where it comes from); skipped with a message when absent.

For each model and category, greedy decoding, the same tools and user turn for every system:
* genstack auto: ``genstack.agents.calling.respond`` with ``tool_choice="auto"``: a call is made when
  log P(``<tool_call>``) reaches the model's calibrated ``tool_call_threshold``, or when the model opens
  one itself, and is generated under the grammar of the functions' JSON Schemas;
* genstack auto, free (``--free``): the same without the threshold (the model's own text decides);
* genstack required: ``tool_choice="required"`` (a call is forced; the grammar makes it valid);
* the peer: ``python -m llama_cpp.server --chat_format chatml-function-calling`` on the same GGUF,
  called through the official ``openai`` client with ``tools`` and ``tool_choice="auto"`` (for the
  SmolLM2 model only: it is a ChatML model; the Gemma base model has no chat format the peer can use).

``--calibrate`` picks each model's threshold on items the evaluation never sees (the last 100
simple, 100 multiple and 120 irrelevance items; the evaluation takes the first ``--limit``): the
log-probability that best separates "a function fits" (simple, multiple) from "none does"
(irrelevance), by balanced accuracy. The registry records the result.

Reported per row: call rate (a call was made), schema-valid rate (every call made names a given
function and its arguments validate against that function's schema; over all items), exact
match (BFCL's AST check, see genstack/evaluation/bfcl.py; for irrelevance: no call), and
seconds per item.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tools" / "bfcl"


def valid(calls, tools) -> bool:
    """Some calls were made, each names a given function and its arguments validate (the agent loop's check)."""
    from genstack.agents.loop import _invalid

    by = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    return bool(calls) and all(name in by and _invalid(args, by[name]) is None for name, args in calls)


def calibrate(model, data_dir) -> None:
    from genstack.agents.calling import Function, call_logprob, tool_messages
    from genstack.evaluation.bfcl import load_bfcl

    scored = []  # (log P(<tool_call>), a function fits)
    for cat, n in (("simple", 100), ("multiple", 100), ("irrelevance", 120)):
        for it in load_bfcl(data_dir, cat)[-n:]:
            msgs = tool_messages(it.messages, [Function.from_openai(t) for t in it.tools])
            scored.append((call_logprob(model, msgs), cat != "irrelevance"))
    pos = sum(1 for _, p in scored if p)
    neg = len(scored) - pos
    best = None
    for t in sorted({round(lp, 2) for lp, _ in scored}):
        tpr = sum(1 for lp, p in scored if p and lp >= t) / pos
        tnr = sum(1 for lp, p in scored if not p and lp < t) / neg
        if best is None or (tpr + tnr) / 2 > best[0]:
            best = ((tpr + tnr) / 2, t, tpr, tnr)
    bal, t, tpr, tnr = best
    print(f"{model.name}: tool_call_threshold={t:.2f} (held-out: calls on {tpr:.0%} of simple+multiple, "
          f"no call on {tnr:.0%} of irrelevance, balanced accuracy {bal:.2f}; {len(scored)} items)", flush=True)


def run_genstack(model, items, choice: str, threshold="model"):
    from genstack.agents.calling import Function, ToolCallError, respond
    from genstack.generation import SamplingParams

    params = SamplingParams(greedy=True, max_tokens=256, seed=0)
    out = []
    for it in items:
        functions = [Function.from_openai(t) for t in it.tools]
        t0 = time.perf_counter()
        try:
            *_, turn = respond(model, it.messages, functions, tool_choice=choice, params=params, threshold=threshold)
            calls = [(c.name, c.arguments) for c in turn.calls]
        except ToolCallError:
            calls = [("<unparsable>", None)]
        out.append((calls, time.perf_counter() - t0))
    return out


def run_peer(client, items):
    out = []
    for it in items:
        t0 = time.perf_counter()
        try:
            r = client.chat.completions.create(model="smol", messages=it.messages, tools=it.tools,
                                               tool_choice="auto", temperature=0, max_tokens=256, seed=0)
            calls = []
            for c in r.choices[0].message.tool_calls or []:
                try:
                    calls.append((c.function.name, json.loads(c.function.arguments)))
                except json.JSONDecodeError:
                    calls.append((c.function.name, None))
        except Exception as exc:  # a server error on an item counts against it
            print(f"  peer error on {it.id}: {str(exc)[:120]}", file=sys.stderr)
            calls = [("<error>", None)]
        out.append((calls, time.perf_counter() - t0))
    return out


def score(items, results):
    from genstack.evaluation.bfcl import check_calls

    n = len(items)
    made = sum(1 for calls, _ in results if calls)
    ok = sum(1 for it, (calls, _) in zip(items, results) if valid(calls, it.tools))
    exact = sum(1 for it, (calls, _) in zip(items, results)
                if None not in [a for _, a in calls] and check_calls(it, calls))
    secs = sum(s for _, s in results) / max(1, n)
    return {"n": n, "call_rate": made / n, "valid_rate": ok / n, "valid_of_calls": ok / made if made else None,
            "exact": exact / n, "s_per_item": secs}


def start_peer(path: str, threads: int):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open("/tmp/bfcl-llama-server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", path, "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "4096", "--chat_format", "chatml-function-calling",
                             "--n_threads", str(threads), "--model_alias", "smol"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2).read()
            return proc, url + "/v1"
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("llama_cpp.server did not start (see /tmp/bfcl-llama-server.log)")
            time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--categories", default="simple,multiple,irrelevance")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma3-270m")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--free", action="store_true", help="also run auto without the threshold")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    if not Path(args.data).is_dir():
        print(f"skipped: no BFCL data at {args.data} (see ../shared/data/README.md)")
        return
    from genstack import get_model
    from genstack.evaluation.bfcl import load_bfcl

    if args.calibrate:
        for name in args.models.split(","):
            model = get_model(name, n_ctx=4096)
            calibrate(model, args.data)
            model.close()
        return
    cats = args.categories.split(",")
    data = {c: load_bfcl(args.data, c, args.limit) for c in cats}
    rows = []
    for name in args.models.split(","):
        model = get_model(name, n_ctx=4096)
        model.warm_up()
        for c in cats:
            runs = [("auto", "model", "genstack auto")] + ([("auto", None, "genstack auto, free")] if args.free else [])
            runs += [("required", None, "genstack required")] if c != "irrelevance" else []
            for choice, threshold, label in runs:
                r = score(data[c], run_genstack(model, data[c], choice, threshold))
                rows.append((name, label, c, r))
                print(name, label, c, json.dumps(r), flush=True)
        if name.startswith("smollm2") and not args.no_peer:
            from openai import OpenAI

            proc, url = start_peer(str(model.path), model.settings_used["n_threads"])
            try:
                client = OpenAI(base_url=url, api_key="none", timeout=120)
                for c in cats:
                    r = score(data[c], run_peer(client, data[c]))
                    rows.append((name, "llama_cpp.server auto", c, r))
                    print(name, "peer", c, json.dumps(r), flush=True)
            finally:
                proc.terminate()
                proc.wait(20)
        model.close()
    print()
    print("| model | system | category | n | call rate | schema-valid | exact match | s/item |")
    print("|---|---|---|---|---|---|---|---|")
    for name, system, c, r in rows:
        print(f"| {name} | {system} | {c} | {r['n']} | {r['call_rate']:.0%} | {r['valid_rate']:.0%} | "
              f"{r['exact']:.0%} | {r['s_per_item']:.2f} |")


if __name__ == "__main__":
    main()
