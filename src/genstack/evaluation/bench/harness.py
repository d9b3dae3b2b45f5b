"""Run benchmark tasks on a model by log-likelihood; results as JSON and Markdown.

Each example's context (few-shot examples + prompt) is evaluated once and
shared by all its choices (:meth:`Model.loglikelihood`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

from ...errors import InvalidParameter
from ...models.base import Model
from .common import TASKS, Example, Task, sample_shots, stderr_of_mean

__all__ = ["evaluate_task", "get_task", "summary_markdown", "mc_scores"]


def get_task(name: str) -> Task:
    from . import arc_easy, lambada, piqa, truthfulqa  # noqa: F401 - registration

    if name not in TASKS:
        raise InvalidParameter(f"unknown task {name!r}; available: {', '.join(sorted(TASKS))} (or --task-file FILE)")
    return TASKS[name]


def mc_scores(logprobs: Sequence[float], choices: Sequence[str], gold: int) -> dict:
    """acc and acc_norm for one example, by the lm-evaluation-harness definitions."""
    acc = int(max(range(len(logprobs)), key=lambda i: logprobs[i]) == gold)
    norm = [lp / max(1, len(" " + c)) for lp, c in zip(logprobs, choices)]  # length of the scored text, in characters
    acc_norm = int(max(range(len(norm)), key=lambda i: norm[i]) == gold)
    return {"acc": acc, "acc_norm": acc_norm}


def mc2_score(logprobs: Sequence[float], labels: Sequence[int]) -> float:
    """TruthfulQA MC2: the probability mass on true answers, normalised over all answers."""
    m = max(logprobs)
    p = [math.exp(lp - m) for lp in logprobs]
    true = sum(pi for pi, lab in zip(p, labels) if lab)
    return true / sum(p)


def evaluate_task(model: Model, task: Task, *, limit: int | None = None, shots: int = 0, seed: int = 1234,
                  data_dir: Path | None = None, examples: list[Example] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Score ``model`` on a multiple-choice ``task`` by log-likelihood (lm-evaluation-harness's acc and
    acc_norm); few-shot examples are drawn with ``seed`` and never include the question asked."""
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise InvalidParameter(f"--limit must be a positive integer, got {limit!r}")
    if isinstance(shots, bool) or shots < 0:
        raise InvalidParameter(f"--shots must be 0 or more, got {shots!r}")
    pool = examples if examples is not None else task.examples(data_dir)
    items = pool[:limit] if limit else pool
    emit = progress or (lambda done, total: None)
    rows = []
    t0 = time.perf_counter()
    for i, ex in enumerate(items):
        shot_seed = seed + i  # per-example draw, reproducible from --seed
        context = task.render(ex, sample_shots(pool, shots, shot_seed, exclude=ex))
        if task.kind == "cloze":
            conts = [" " + (ex.target or "")]
        else:
            conts = [" " + c for c in ex.choices]
        ll = model.loglikelihood(context, conts)
        lps = [lp for lp, _ in ll]
        row = {"index": i, "logprobs": lps}
        if task.kind == "mc":
            row |= {"gold": ex.gold} | mc_scores(lps, ex.choices, ex.gold or 0)
        elif task.kind == "mc2":
            row |= {"labels": ex.labels, "mc2": mc2_score(lps, ex.labels or [])}
        else:
            row |= {"acc": int(bool(ll[0][1])), "target": ex.target,
                    "n_chars": len(conts[0])}
        rows.append(row)
        emit(i + 1, len(items))
    seconds = time.perf_counter() - t0
    metrics = {}
    keys = {"mc": ("acc", "acc_norm"), "mc2": ("mc2",), "cloze": ("acc",)}[task.kind]
    for k in keys:
        vals = [r[k] for r in rows]
        metrics[k] = {"value": sum(vals) / len(vals), "stderr": stderr_of_mean(vals)}
    if task.kind == "cloze":
        total_lp = sum(r["logprobs"][0] for r in rows)
        metrics["perplexity"] = {"value": math.exp(-total_lp / len(rows)), "stderr": None}
    return {"task": task.name, "model": model.name, "examples": len(rows), "shots": shots, "seed": seed,
            "metrics": metrics, "seconds": round(seconds, 3), "examples_per_s": round(len(rows) / seconds, 3) if seconds else None,
            "rows": rows}


def summary_markdown(results: Sequence[dict]) -> str:
    lines = ["| task | model | examples | shots | metric | value | ± stderr | examples/s |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for name, m in r["metrics"].items():
            v, se = m["value"], m["stderr"]
            pct = name != "perplexity"
            val = f"{100 * v:.2f}" if pct else f"{v:.3f}"
            err = "" if se is None else f"{100 * se:.2f}"
            lines.append(f"| {r['task']} | {r['model']} | {r['examples']} | {r['shots']} | {name} | {val} | {err} | {r['examples_per_s']} |")
    return "\n".join(lines) + "\n"


def write_outputs(results: Sequence[dict], out_dir: Path, plot: bool = False) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        p = out_dir / f"{r['task']}-{Path(r['model']).name}.json"
        p.write_text(json.dumps(r, indent=1))
        written.append(p)
    md = out_dir / "summary.md"
    md.write_text(summary_markdown(results))
    written.append(md)
    if plot:
        written += _plots(results, out_dir)
    return written


def _plots(results: Sequence[dict], out_dir: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidParameter("--plot needs matplotlib: pip install 'genstack[eval]'") from None
    out = []
    for r in results:
        names = [k for k in r["metrics"] if k != "perplexity"]
        vals = [100 * r["metrics"][k]["value"] for k in names]
        errs = [100 * (r["metrics"][k]["stderr"] or 0) for k in names]
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.bar(names, vals, yerr=errs, capsize=4, color="#4C72B0")
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title(f"{r['task']} — {Path(r['model']).name} ({r['examples']} ex.)", fontsize=9)
        fig.tight_layout()
        p = out_dir / f"{r['task']}-{Path(r['model']).name}.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        out.append(p)
    return out
