"""Generation quality: run the model on a dataset's inputs and score the outputs.

A dataset is JSONL with ``input`` and ``reference`` (a string or a list of
strings). Each input is sent as a user message (greedy, ``max_tokens``), and
the outputs are scored with :func:`genstack.evaluation.metrics.compute`. The
built-in set (``genstack/data/summaries_eval.jsonl``) has 8 one-sentence
summaries written for the tests.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import Callable

from .._files import read_user_text
from ..errors import InvalidParameter
from ..generation import SamplingParams
from .metrics import compute

__all__ = ["load_generation_dataset", "evaluate_generation"]


def load_generation_dataset(path: str | Path | None = None) -> list[dict]:
    if path is None:
        text = (resources.files("genstack") / "data" / "summaries_eval.jsonl").read_text(encoding="utf-8")
        where = "built-in summaries_eval.jsonl"
    else:
        text = read_user_text(path, "dataset")
        where = str(path)
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ok = isinstance(d.get("input"), str) and d["input"].strip() and (
                isinstance(d.get("reference"), str) or (isinstance(d.get("reference"), list) and d["reference"]
                                                        and all(isinstance(r, str) for r in d["reference"])))
        except (json.JSONDecodeError, AttributeError):
            ok = False
        if not ok:
            raise InvalidParameter(f"{where} line {n}: expected {{\"input\": str, \"reference\": str or [str, ...]}}")
        rows.append(d)
    if not rows:
        raise InvalidParameter(f"{where} holds no examples")
    return rows


def evaluate_generation(model, rows: list[dict], metrics: list[str], *, max_tokens: int = 96,
                        progress: Callable[[int, int], None] | None = None) -> dict:
    emit = progress or (lambda done, total: None)
    params = SamplingParams(greedy=True, max_tokens=max_tokens)
    outputs = []
    t0 = time.perf_counter()
    for i, r in enumerate(rows):
        outputs.append(model.generate(messages=[{"role": "user", "content": r["input"]}], params=params).text.strip())
        emit(i + 1, len(rows))
    seconds = time.perf_counter() - t0
    scores = {m: compute(m, outputs, [r["reference"] for r in rows]) for m in metrics}
    return {"examples": len(rows), "model": model.name, "metrics": scores, "seconds": round(seconds, 2),
            "outputs": [{"input": r["input"], "output": o, "reference": r["reference"]} for r, o in zip(rows, outputs)]}
