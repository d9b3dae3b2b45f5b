"""Checked sets for the classic tasks, and how well a model does on them.

Four hand-written sets ship in ``genstack/data/tasks/`` (or give a JSONL of your own, same fields):

============  =====  ==========================================  =====================================
set           items  fields                                       scored by
============  =====  ==========================================  =====================================
sentiment     42     ``text``, ``label`` (positive/negative/      accuracy, macro-F1, recall per class
                     neutral, 14 each)
classify      40     ``text``, ``labels``, ``label`` (5 topics)   accuracy, macro-F1
translate     36     ``text``, ``language``, ``reference``        chrF (sacrebleu, corpus level)
                     (English to French)
bullets       30     ``text``, ``reference`` (a list of bullets)  format, grounding, ROUGE-Lsum
============  =====  ==========================================  =====================================

A bullet summary passes the *format* check when it is 3 to 5 lines that each start with ``- ``
and it holds no code; a bullet is *grounded* when at least 60% of its content words are in the
text and every number in it is (the pipeline's own measure, :func:`genstack.rag.grounding.support`).
An item is *acceptable* when it passes both. None of the sets overlap the templates' examples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from .._files import jsonl_objects, read_user_text
from ..errors import GenstackError, InvalidParameter

__all__ = ["TASK_SETS", "load_task_set", "evaluate_task_set", "TaskEvalResult", "bullet_checks"]

TASK_SETS = ("sentiment", "classify", "translate", "bullets")
_FIELDS = {"sentiment": {"text": str, "label": str}, "classify": {"text": str, "labels": list, "label": str},
           "translate": {"text": str, "language": str, "reference": str},
           "bullets": {"text": str, "reference": list}}
def load_task_set(kind: str, path: str | Path | None = None) -> list[dict]:
    """The built-in set for ``kind`` (one of :data:`TASK_SETS`), or a JSONL file with the same fields."""
    if kind not in TASK_SETS:
        raise InvalidParameter(f"the task must be one of {', '.join(TASK_SETS)}, got {kind!r}")
    if path is None:
        text = resources.files("genstack.data").joinpath("tasks").joinpath(f"{kind}.jsonl").read_text(encoding="utf-8")
        where = f"the built-in {kind} set"
    else:
        text, where = read_user_text(path, "task set"), str(path)
    rows = []
    for n, row in jsonl_objects(text, where):
        for name, typ in _FIELDS[kind].items():
            if not isinstance(row.get(name), typ) or not row[name]:
                what = "a non-empty list" if typ is list else "a non-empty string"
                raise InvalidParameter(f"{where}, line {n}: \"{name}\" must be {what}")
        if kind == "classify" and row["label"] not in row["labels"]:
            raise InvalidParameter(f"{where}, line {n}: the label {row['label']!r} is not one of its labels")
        rows.append(row)
    if not rows:
        raise InvalidParameter(f"{where} holds no items")
    return rows


def _bullets(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip().splitlines() if ln.strip()]


def bullet_checks(summary: str, source: str) -> dict:
    """Format and grounding of one bullet summary against its source text (see the module doc)."""
    from ..rag.summaries import MAX_BULLETS, MIN_BULLETS, bullet_supported

    lines = _bullets(summary)
    fmt = MIN_BULLETS <= len(lines) <= MAX_BULLETS and all(ln.startswith("- ") for ln in lines) and "```" not in summary
    grounded = [bullet_supported(ln[2:] if ln.startswith("- ") else ln, source) for ln in lines]
    frac = sum(grounded) / len(grounded) if grounded else 0.0
    return {"bullets": len(lines), "format_ok": fmt, "grounded": frac, "all_grounded": bool(grounded) and all(grounded)}


def _macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> tuple[float, dict]:
    recall, f1s = {}, []
    for lab in labels:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        recall[lab] = rec
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s), recall


@dataclass
class TaskEvalResult:
    kind: str
    rows: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        rows, n = self.rows, len(self.rows)
        out: dict[str, Any] = {"task": self.kind, "items": n, **self.settings}
        if not n:
            return out
        out["errors"] = sum(bool(r.get("error")) for r in rows)
        if self.kind in ("sentiment", "classify"):
            gold = [r["gold"] for r in rows]
            pred = [r["prediction"] for r in rows]
            labels = sorted(set(gold))
            out["accuracy"] = sum(g == p for g, p in zip(gold, pred)) / n
            out["macro_f1"], out["recall"] = _macro_f1(gold, pred, labels)
        elif self.kind == "translate":
            from .metrics import chrf

            out["chrf"] = chrf([r["prediction"] for r in rows], [[r["reference"]] for r in rows])["chrf"]
        else:
            from .metrics import rouge

            out["format_ok"] = sum(r["format_ok"] for r in rows) / n
            out["grounded_bullets"] = sum(r["grounded"] for r in rows) / n
            out["acceptable"] = sum(r["format_ok"] and r["all_grounded"] for r in rows) / n
            out["dropped_per_item"] = sum(r.get("dropped", 0) for r in rows) / n
            out["extracted_per_item"] = sum(r.get("extracted", 0) for r in rows) / n
            out["rougeLsum"] = rouge([r["prediction"] for r in rows],
                                     [["\n".join(r["reference"])] for r in rows])["rougeLsum"]
        out["seconds_mean"] = sum(r["seconds"] for r in rows) / n
        return out

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "rows": self.rows}


def evaluate_task_set(kind: str, rows: Sequence[dict], *, model=None, embedder=None, method: str = "llm",
                  template=None, calibrate: bool | None = None, data_dir=None,
                  progress: Callable[[int, int], None] | None = None) -> TaskEvalResult:
    """Run ``rows`` of the ``kind`` set through the task functions and score them.

    ``method`` (sentiment, classify) is ``llm`` or ``embedding``; ``calibrate`` turns contextual
    calibration of the label scores on or off (llm method; None: the task function's default);
    ``template`` is a template name or :class:`~genstack.prompts.templates.PromptTemplate` as the
    task functions take it.
    """
    from ..rag import summaries, tasks

    if kind not in TASK_SETS:
        raise InvalidParameter(f"the task must be one of {', '.join(TASK_SETS)}, got {kind!r}")
    labelled = kind in ("sentiment", "classify")
    needs_model = not (labelled and method == "embedding")
    if needs_model and model is None:
        raise InvalidParameter(f"the {kind} set needs a model")
    res = TaskEvalResult(kind, settings={"template": getattr(template, "name", template) or "default"})
    cal = {} if calibrate is None else {"calibrate": calibrate}
    if labelled:
        res.settings["method"] = method
        if method == "llm":
            res.settings["calibrate"] = "default" if calibrate is None else calibrate
    for i, row in enumerate(rows):
        t0 = time.perf_counter()
        out: dict[str, Any] = {"text": row["text"]}
        try:
            if kind == "sentiment":
                lab = tasks.sentiment(row["text"], model, method=method, embedder=embedder, template=template,
                                      data_dir=data_dir, **cal)
                out.update(gold=row["label"].lower(), prediction=lab.label.lower(), score=lab.score)
            elif kind == "classify":
                lab = tasks.classify(row["text"], row["labels"], model=model, embedder=embedder, method=method,
                                     template=template, data_dir=data_dir, **cal)
                out.update(gold=row["label"], prediction=lab.label, score=lab.score)
            elif kind == "translate":
                text, _ = tasks.translate(row["text"], row["language"], model, template=template, max_tokens=96,
                                          data_dir=data_dir)
                out.update(reference=row["reference"], prediction=text)
            else:
                s = summaries.summarize(row["text"], model, style="bullets", max_words=60, template=template,
                                        data_dir=data_dir)
                out.update(reference=row["reference"], prediction=s.text, dropped=s.dropped, extracted=s.extracted,
                           **bullet_checks(s.text, row["text"]))
        except GenstackError as exc:  # a failed item counts as wrong, with its reason kept
            out.update(error=str(exc), prediction="", gold=row.get("label"), reference=row.get("reference"))
            if kind == "bullets":
                out.update(bullets=0, format_ok=False, grounded=0.0, all_grounded=False)
        out["seconds"] = round(time.perf_counter() - t0, 3)
        res.rows.append(out)
        if progress is not None:
            progress(i + 1, len(rows))
    return res
