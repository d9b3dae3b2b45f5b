"""What every benchmark task shares: examples, prompt formats, few-shot sampling, scoring.

A task is one small file that turns its data into :class:`Example` objects
(a context, the choices, the gold answer) and says how an example reads as a
prompt. Scoring follows lm-evaluation-harness (``lm_eval/api/task.py``): each
choice is scored as the log-likelihood of ``" " + choice`` given the context;
``acc`` takes the argmax of the summed log-probabilities, ``acc_norm`` the
argmax of log-probability divided by the choice's length in characters.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ...errors import InvalidParameter

__all__ = ["Example", "Task", "DATA_DIR", "read_jsonl", "stderr_of_mean", "TASKS", "register"]

#: where the shared evaluation data lives, relative to a checkout (override with --data-dir)
DATA_DIR = Path(__file__).resolve().parents[5] / "shared" / "data" / "eval"


@dataclass
class Example:
    context: str  # the question part, without few-shot examples
    choices: list[str]
    gold: int | None = None  # index of the right choice (MC1-style)
    #: for MC2-style tasks: 1 for every true choice, 0 for false ones
    labels: list[int] | None = None
    target: str | None = None  # for loglikelihood-only tasks (LAMBADA): the continuation
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Task:
    name: str
    kind: str  # "mc" (acc, acc_norm), "mc2" (TruthfulQA MC2), "cloze" (LAMBADA: acc, perplexity)
    load: Callable[[Path], list[Example]]
    default_file: str
    #: how an example (or a few-shot example) reads as text before the answer
    prompt: Callable[[Example], str]
    #: the text of the answer a few-shot example shows
    answer: Callable[[Example], str] = lambda ex: ex.choices[ex.gold or 0]
    fewshot_separator: str = "\n\n"
    description: str = ""
    #: examples given up front (tasks from --task-file), instead of loading default_file
    preset: list[Example] | None = None

    def examples(self, data_dir: Path | None = None, file: Path | None = None) -> list[Example]:
        if self.preset is not None:
            return self.preset
        path = file or (Path(data_dir) if data_dir else DATA_DIR) / self.default_file
        if not path.is_file():
            raise InvalidParameter(f"data for task {self.name} not found: {path} (see --data-dir)")
        return self.load(path)

    def render(self, ex: Example, shots: Sequence[Example] = ()) -> str:
        parts = [self.prompt(s) + " " + self.answer(s) for s in shots]
        return self.fewshot_separator.join(parts + [self.prompt(ex)])


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def read_jsonl(path: Path) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidParameter(f"{path} line {n} is not valid JSON: {exc.msg}") from None
    return out


def stderr_of_mean(xs: Sequence[float]) -> float:
    """Sample standard error of the mean, as lm-evaluation-harness reports it."""
    n = len(xs)
    if n < 2:
        return 0.0
    mu = sum(xs) / n
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1) / n)


def sample_shots(pool: Sequence[Example], k: int, seed: int, exclude: Example | None = None) -> list[Example]:
    """``k`` few-shot examples drawn with ``seed``, never the example being asked."""
    if k <= 0:
        return []
    rng = random.Random(seed)
    candidates = [e for e in pool if e is not exclude]
    return rng.sample(candidates, min(k, len(candidates)))
