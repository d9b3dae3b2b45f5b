"""ARC-Easy (AI2 Reasoning Challenge, easy set): grade-school science, 4 choices.

Prompt as in lm-evaluation-harness: ``Question: {question}\\nAnswer:``; each
choice is scored as `` {choice}``.
"""

from .common import Example, Task, read_jsonl, register


def load(path):
    return [Example(r["query"].strip(), list(r["choices"]), int(r["gold"])) for r in read_jsonl(path)]


TASK = register(Task("arc_easy", "mc", load, "arc_easy.jsonl", prompt=lambda ex: f"{ex.context}\nAnswer:",
                     description="ARC-Easy test, 4-way multiple choice (acc, acc_norm)"))
