"""PIQA (physical commonsense): a goal and two solutions.

Prompt as in lm-evaluation-harness: ``Question: {goal}\\nAnswer:``.
"""

from .common import Example, Task, read_jsonl, register


def load(path):
    return [Example(r["query"].strip(), list(r["choices"]), int(r["gold"])) for r in read_jsonl(path)]


TASK = register(Task("piqa", "mc", load, "piqa.jsonl", prompt=lambda ex: f"{ex.context}\nAnswer:",
                     description="PIQA validation, 2-way multiple choice (acc, acc_norm)"))
