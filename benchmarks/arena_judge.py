"""How good a judge the bundled models are: position consistency on real battles.

    .venv/bin/python benchmarks/arena_judge.py [--n 30] [--judges smollm2-135m-instruct,gemma3-270m]

Battles between the two bundled generators (SmolLM2-135M-Instruct and Gemma 3 270M base, greedy,
64 tokens) on the first N prompts of the red team's benign chat set, each judged twice with the
answers swapped (``genstack.arena.judge_battle``). Reported per judge: how often the two verdicts
agree (position-consistent), how often the first slot wins both times, and seconds per judgement.
A second check uses pairs with a known better answer: a reference summary against a sentence of
unrelated text (summaries_eval.jsonl), in both orders.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

from genstack import SamplingParams, get_model, load_settings
from genstack.arena import Arena, ArenaDB, judge_battle


def prompts(n):
    text = (resources.files("genstack.evaluation.redteam") / "data" / "benign_chat.txt").read_text()
    return [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")][:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--judges", default="smollm2-135m-instruct,gemma3-270m")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        arena = Arena(["smollm2-135m-instruct", "gemma3-270m"], settings=settings, db=ArenaDB(Path(tmp) / "a.db"),
                      seed=0)
        battles = [arena.battle(p, params=SamplingParams(greedy=True, max_tokens=64)) for p in prompts(args.n)]
        refs = [json.loads(x) for x in (resources.files("genstack") / "data" / "summaries_eval.jsonl").read_text().splitlines()
                if x.strip()]
        for name, calibrate in [(j, c) for j in args.judges.split(",") for c in (False, True)]:
            judge = get_model(name, settings=settings)
            t0 = time.perf_counter()
            vs = [judge_battle(judge, b.prompt, b.answer_a, b.answer_b, calibrate=calibrate) for b in battles]
            dt = (time.perf_counter() - t0) / max(1, 2 * len(vs))
            known = []
            for i, r in enumerate(refs):
                other = refs[(i + 1) % len(refs)]["input"].split(". ")[0] + "."
                q = r["input"]
                ref = r["reference"] if isinstance(r["reference"], str) else r["reference"][0]
                known.append(judge_battle(judge, q, ref, other, calibrate=calibrate).winner == "model_a")
                known.append(judge_battle(judge, q, other, ref, calibrate=calibrate).winner == "model_b")
            out = {"judge": name, "calibrate": calibrate, "battles": len(vs),
                   "position_consistent": sum(v.consistent for v in vs) / len(vs),
                   "first_slot_both_times": sum(v.first == "A" and v.swapped == "A" for v in vs) / len(vs),
                   "second_slot_both_times": sum(v.first == "B" and v.swapped == "B" for v in vs) / len(vs),
                   "winners": {w: sum(v.winner == w for v in vs) for w in ("model_a", "model_b", "tie")},
                   "known_better_picked": sum(known) / len(known), "known_pairs": len(known),
                   "seconds_per_judgement": round(dt, 3)}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
