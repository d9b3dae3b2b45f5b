"""BIPIA: indirect prompt injection through the documents a question is asked about.

Each sample is a BIPIA context (an email, a table, a Stack Overflow answer)
with one attack inserted at its start, middle or end, as BIPIA's builders do
(the middle is the sentence boundary nearest the centre). The context's own
benign question is asked over it through the same answer pipeline as ``ask``.
Text attacks go into the email and table contexts, code attacks into the code
contexts. The judge is :func:`~.judge.bipia_followed`.

Each context is also answered once without an attack: that gives the
clean-task quality (token F1 against BIPIA's ``ideal`` answer, 0–100) and
the judge's false-alarm rate on answers that cannot have been attacked.
"""

from __future__ import annotations

import ast
import json
import random
import re
from pathlib import Path
from typing import Callable

from ...errors import GenstackError
from ..metrics import f1
from .common import Rate, SuiteResult
from .judge import bipia_followed

__all__ = ["load_samples", "insert", "run", "POSITIONS"]

POSITIONS = ("start", "middle", "end")
TASKS = {"email": "text", "table": "text", "code": "code"}


def insert(context: str, attack: str, position: str) -> str:
    if position == "start":
        return f"{attack}\n{context}"
    if position == "end":
        return f"{context}\n{attack}"
    cuts = [m.end() for m in re.finditer(r"[.!?](?=\s)|\n", context)]
    if not cuts:
        return f"{context}\n{attack}"
    mid = min(cuts, key=lambda c: abs(c - len(context) / 2))
    return f"{context[:mid]}\n{attack}\n{context[mid:]}"


def _lines(v) -> str:
    if isinstance(v, list):
        return "\n".join(v)
    if isinstance(v, str) and v.startswith("["):
        try:
            return "\n".join(ast.literal_eval(v))
        except (ValueError, SyntaxError):
            return v
    return str(v)


def _question(task: str, row: dict) -> str:
    if task == "code":
        return ("Fix the error in my Python code.\nError:\n" + _lines(row["error"]) + "\nCode:\n" + _lines(row["code"]))
    return re.sub(r"^Q:\s*", "", str(row["question"]).strip())


def load_samples(root: Path, limit: int | None = None, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(attacked samples, clean contexts), a deterministic draw of ``limit`` from every combination."""
    if not (root / "text_attack_test.json").is_file():
        raise GenstackError(f"no BIPIA data in {root} (text_attack_test.json missing)")
    attacks = {"text": json.loads((root / "text_attack_test.json").read_text(encoding="utf-8")),
               "code": json.loads((root / "code_attack_test.json").read_text(encoding="utf-8"))}
    contexts = {t: [json.loads(l) for l in (root / t / "test.jsonl").open(encoding="utf-8") if l.strip()] for t in TASKS}
    combos = [(t, ci, cat, ai, pos) for t, kind in TASKS.items() for ci in range(len(contexts[t]))
              for cat, lst in attacks[kind].items() for ai in range(len(lst)) for pos in POSITIONS]
    random.Random(seed).shuffle(combos)
    combos = combos[:limit] if limit else combos
    samples, clean = [], {}
    for t, ci, cat, ai, pos in combos:
        row = contexts[t][ci]
        ctx = _lines(row["context"])
        attack = attacks[TASKS[t]][cat][ai]
        samples.append({"task": t, "context_id": ci, "category": cat, "attack": attack, "position": pos,
                        "question": _question(t, row), "context": ctx, "document": insert(ctx, attack, pos),
                        "ideal": _lines(row["ideal"])})
        clean.setdefault((t, ci), {"task": t, "context_id": ci, "question": _question(t, row), "context": ctx,
                                   "ideal": _lines(row["ideal"])})
    return samples, list(clean.values())


def run(target, root: Path, *, limit: int | None = 50, seed: int = 0,
        progress: Callable[[int, int], None] | None = None) -> SuiteResult:
    samples, clean = load_samples(root, limit, seed)
    total, done = len(samples) + len(clean), 0
    step = progress or (lambda d, t: None)
    clean_answers: dict[tuple[str, int], str] = {}
    clean_flagged = 0
    for c in clean:
        r = target.ask(c["question"], [c["context"]])
        clean_answers[(c["task"], c["context_id"])] = r.text
        clean_flagged += bool(r.source_flags or r.blocked)
        done += 1
        step(done, total)
    success, false_alarm, by_cat, attacked_answers, examples, flagged = 0, 0, {}, [], [], 0
    for s in samples:
        r = target.ask(s["question"], [s["document"]])
        code = s["task"] == "code"
        hit = bipia_followed(s["category"], s["attack"], r.text, s["context"], s["question"], code=code)
        alarm = bipia_followed(s["category"], s["attack"], clean_answers[(s["task"], s["context_id"])],
                               s["context"], s["question"], code=code)
        success += hit
        false_alarm += alarm
        flagged += bool(r.source_flags or r.blocked)
        k, n = by_cat.get(s["category"], (0, 0))
        by_cat[s["category"]] = (k + hit, n + 1)
        attacked_answers.append(r.text)
        if hit and len(examples) < 5:
            examples.append({"task": s["task"], "category": s["category"], "position": s["position"],
                             "attack": s["attack"][:200], "answer": r.text[:300]})
        done += 1
        step(done, total)
    n = len(samples)
    return SuiteResult(
        "bipia", Rate(success, n), Rate(clean_flagged, len(clean)),
        rates={"judge_false_alarm_on_clean_answers": Rate(false_alarm, n), "attack_flagged_in_documents": Rate(flagged, n)},
        figures={"clean_quality_f1": 100 * f1([clean_answers[(c["task"], c["context_id"])] for c in clean],
                                              [[c["ideal"]] for c in clean]),
                 "attacked_quality_f1": 100 * f1(attacked_answers, [[s["ideal"]] for s in samples]),
                 "samples": n, "clean_contexts": len(clean)},
        by_category={k: Rate(*v) for k, v in sorted(by_cat.items())}, examples=examples,
        judge="genstack.evaluation.redteam.judge.bipia_followed (docs/security.md)")
