"""The arena's ratings beside FastChat's own code, on the same battles.

    .venv/bin/python benchmarks/arena.py [--battles FILE.jsonl] [--n 6000] [--bootstrap 100]

The peer is ``fastchat/serve/monitor/elo_analysis.py`` from the ``fschat`` package on PyPI
(the [arena-peer] extra): ``compute_elo`` (online Elo), ``compute_elo_mle_with_tie``
(Bradley–Terry by logistic regression) and ``get_bootstrap_result``.

1. Simulated battles: six models with known Bradley–Terry strengths, ``--n`` battles between
   random pairs, with ties (likelier between close models, so that a tie-as-half-a-win
   keeps the expected score at the BT probability). Reported: the largest difference
   between genstack's and FastChat's ratings for each method, each one's error against
   the true ratings (both centred on 1000), the 95% bootstrap intervals, and the time each
   takes on this machine.
2. Battles needed to recover the true order: for growing numbers of battles, the share of
   20 simulated logs whose ratings put all six models in the true order.
3. ``--battles FILE``: a real battle log in the public Chatbot Arena layout (JSON lines or
   FastChat's clean_battle JSON array), rated by both.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genstack.arena import bt_ratings, elo_ratings, leaderboard, simulate_battles

TRUE = {"model-1": 1250.0, "model-2": 1120.0, "model-3": 1050.0, "model-4": 1000.0, "model-5": 900.0,
        "model-6": 880.0}


def simulate(strengths, n, seed, tie_rate=0.15):
    return simulate_battles(strengths, n, seed=seed, tie_rate=tie_rate)


def centred(r):
    mean = sum(r.values()) / len(r)
    return {m: v - mean + 1000 for m, v in r.items()}


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def order_ok(r, truth):
    return sorted(r, key=r.get, reverse=True) == sorted(truth, key=truth.get, reverse=True)


def compare(battles, ea, bootstrap, truth=None):
    df = pd.DataFrame(battles, columns=["model_a", "model_b", "winner"])
    res = {"battles": len(battles)}
    g_elo, t_ge = timed(elo_ratings, battles, k=4)
    f_elo, t_fe = timed(ea.compute_elo, df, K=4)
    g_bt, t_gb = timed(bt_ratings, battles)
    f_bt, t_fb = timed(ea.compute_elo_mle_with_tie, df)
    res["elo_max_diff"] = max(abs(g_elo[m] - f_elo[m]) for m in g_elo)
    res["bt_max_diff"] = max(abs(g_bt[m] - f_bt[m]) for m in g_bt)
    res["seconds"] = {"genstack_elo": t_ge, "fastchat_elo": t_fe, "genstack_bt": t_gb, "fastchat_bt": t_fb}
    if truth:
        t = centred(truth)
        for name, r in (("genstack_bt", g_bt), ("fastchat_bt", dict(f_bt)), ("genstack_elo", g_elo),
                        ("fastchat_elo", f_elo)):
            c = centred(r)
            res.setdefault("rmse_vs_truth", {})[name] = math.sqrt(sum((c[m] - t[m]) ** 2 for m in t) / len(t))
    if bootstrap:
        board, t_gboot = timed(leaderboard, battles, method="bt", bootstrap=bootstrap, seed=0)
        np.random.seed(42)
        res["seconds"]["genstack_bt_bootstrap"] = t_gboot
        try:
            fboot, t_fboot = timed(ea.get_bootstrap_result, df, ea.compute_elo_mle_with_tie, bootstrap)
        except Exception as exc:  # e.g. a resample holding one outcome only: FastChat's fit refuses it
            res["fastchat_bootstrap_failed"] = f"{type(exc).__name__}: {exc}"
            res["intervals"] = {m: {"genstack": [round(board.lower[m], 1), round(board.upper[m], 1)]}
                                for m in board.models}
            return res
        res["seconds"]["fastchat_bt_bootstrap"] = t_fboot
        res["intervals"] = {m: {"genstack": [round(board.lower[m], 1), round(board.upper[m], 1)],
                                "fastchat": [round(float(fboot[m].quantile(0.025)), 1),
                                             round(float(fboot[m].quantile(0.975)), 1)]} for m in board.models}
        res["interval_max_diff"] = max(abs(a - b) for v in res["intervals"].values()
                                       for a, b in zip(v["genstack"], v["fastchat"]))
    return res


def needed(ea, sizes, logs=20):
    rows = []
    for n in sizes:
        hits = {"genstack_bt": 0, "fastchat_bt": 0, "genstack_elo": 0, "fastchat_elo": 0}
        for s in range(logs):
            b = simulate(TRUE, n, seed=1000 + s)
            df = pd.DataFrame(b, columns=["model_a", "model_b", "winner"])
            hits["genstack_bt"] += order_ok(bt_ratings(b), TRUE)
            hits["fastchat_bt"] += order_ok(dict(ea.compute_elo_mle_with_tie(df)), TRUE)
            hits["genstack_elo"] += order_ok(elo_ratings(b), TRUE)
            hits["fastchat_elo"] += order_ok(ea.compute_elo(df), TRUE)
        rows.append({"battles": n, **{k: v / logs for k, v in hits.items()}})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--battles", type=Path, help="A real battle log in the Chatbot Arena layout.")
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 200, 400, 800, 1600, 3200, 6400, 12800])
    args = ap.parse_args()
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    from fastchat.serve.monitor import elo_analysis as ea

    warm = simulate(TRUE, 200, seed=0)  # imports and first-call costs are not part of either figure
    bt_ratings(warm)
    ea.compute_elo_mle_with_tie(pd.DataFrame(warm, columns=["model_a", "model_b", "winner"]))
    print("== simulated", flush=True)
    print(json.dumps(compare(simulate(TRUE, args.n, seed=11), ea, args.bootstrap, TRUE), indent=1), flush=True)
    print("== battles needed to recover the true order (share of 20 logs)", flush=True)
    needed(ea, args.sizes)
    if args.battles:
        text = args.battles.read_text()
        recs = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]
        battles = [(r["model_a"], r["model_b"], r["winner"]) for r in recs]
        print(f"== {args.battles}", flush=True)
        print(json.dumps(compare(battles, ea, args.bootstrap), indent=1), flush=True)


if __name__ == "__main__":
    main()
