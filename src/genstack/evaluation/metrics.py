"""Text metrics on predictions and references, from the reference implementations.

* ``bleu``: corpus BLEU from ``sacrebleu`` (13a tokenisation, 0–100), several
  references per example allowed;
* ``chrf``: corpus chrF from ``sacrebleu`` (character 6-grams, beta 2, 0–100), the usual
  translation metric for short sentences, where BLEU's word 4-grams are too sparse;
* ``rouge``: ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures from Google's
  ``rouge-score`` (Porter stemmer on), averaged over examples, 0–1; with
  several references an example takes its best;
* ``em`` and ``f1``: SQuAD v1.1 definitions — lower-case, strip punctuation and
  the articles a/an/the, collapse whitespace; F1 over bag-of-tokens overlap;
  the best over an example's references, averaged, 0–1;
* ``accuracy``: the prediction equals a reference after stripping whitespace
  (case-sensitive), 0–1.

Files: one example per line, or ``.jsonl`` whose lines are strings, lists of
strings (several references) or objects with a ``text``/``prediction``/
``reference``/``answers`` field.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path
from typing import Sequence

from .._files import read_user_text
from ..errors import GenstackError, InvalidParameter

__all__ = ["METRICS", "compute", "bleu", "chrf", "rouge", "exact_match", "f1", "accuracy", "normalize_answer", "read_texts"]

METRICS = ("bleu", "chrf", "rouge", "f1", "em", "accuracy")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalisation."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1_one(pred: str, ref: str) -> float:
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    common = Counter(p) & Counter(r)
    same = sum(common.values())
    if not p or not r:
        return float(p == r)
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(r)
    return 2 * precision * recall / (precision + recall)


def exact_match(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    return _mean(max(float(normalize_answer(p) == normalize_answer(r)) for r in rs) for p, rs in zip(preds, refs))


def f1(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    return _mean(max(_f1_one(p, r) for r in rs) for p, rs in zip(preds, refs))


def accuracy(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    return _mean(float(any(p.strip() == r.strip() for r in rs)) for p, rs in zip(preds, refs))


def _sacrebleu(metric: str):
    try:
        import sacrebleu
    except ImportError:
        raise GenstackError(f"{metric} needs sacrebleu: pip install 'genstack[eval]'") from None
    return sacrebleu


def _streams(refs: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants reference *streams*; examples with fewer references are padded with None."""
    width = max(len(rs) for rs in refs)
    return [[rs[i] if i < len(rs) else None for rs in refs] for i in range(width)]


def bleu(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> dict:
    scorer = _sacrebleu("BLEU").BLEU()
    res = scorer.corpus_score(list(preds), _streams(refs))
    return {"bleu": res.score, "precisions": res.precisions, "brevity_penalty": res.bp,
            "sys_len": res.sys_len, "ref_len": res.ref_len, "signature": str(scorer.get_signature())}


def chrf(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> dict:
    """Corpus chrF (character n-gram F-score, sacrebleu's defaults: n=6, beta=2), 0-100."""
    scorer = _sacrebleu("chrF").CHRF()
    res = scorer.corpus_score(list(preds), _streams(refs))
    return {"chrf": res.score, "signature": str(scorer.get_signature())}


def rouge(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> dict:
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise GenstackError("ROUGE needs rouge-score: pip install 'genstack[eval]'") from None
    kinds = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(kinds, use_stemmer=True)
    totals = {k: 0.0 for k in kinds}
    for p, rs in zip(preds, refs):
        # rougeLsum splits summaries on newlines
        best = scorer.score_multi(rs, p) if len(rs) > 1 else scorer.score(rs[0], p)
        for k in kinds:
            totals[k] += best[k].fmeasure
    return {k: v / len(preds) for k, v in totals.items()}


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def compute(metric: str, preds: Sequence[str], refs: Sequence[str | Sequence[str]]) -> dict:
    """``{name: value, ...}`` for one metric; ``refs[i]`` may be a string or a list of strings."""
    if metric not in METRICS:
        raise InvalidParameter(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if len(preds) != len(refs):
        raise InvalidParameter(f"{len(preds)} predictions but {len(refs)} references: they must pair up line by line")
    if not preds:
        raise InvalidParameter("there are no predictions to score")
    rs = [[r] if isinstance(r, str) else list(r) for r in refs]
    if any(not r for r in rs):
        raise InvalidParameter("every example needs at least one reference")
    if metric == "bleu":
        return bleu(preds, rs)
    if metric == "rouge":
        return rouge(preds, rs)
    if metric == "chrf":
        return chrf(preds, rs)
    fn = {"em": exact_match, "f1": f1, "accuracy": accuracy}[metric]
    return {metric: fn(preds, rs)}


_FIELDS = ("text", "prediction", "reference", "references", "answer", "answers", "output", "target")


def read_texts(path: str | Path, *, allow_lists: bool) -> list:
    """Examples from a text file (one per line) or JSONL (see the module docs)."""
    p = Path(path)
    raw = read_user_text(p)
    lines = raw.splitlines()
    if p.suffix.lower() != ".jsonl":
        return [line for line in lines]
    out: list = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            v = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"{p} line {n} is not valid JSON: {exc.msg}") from None
        if isinstance(v, dict):
            v = next((v[f] for f in _FIELDS if f in v), None)
        if isinstance(v, str) or (allow_lists and isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
            out.append(v)
        else:
            kind = "a string or a list of strings" if allow_lists else "a string"
            raise InvalidParameter(f"{p} line {n}: expected {kind} (or an object with a text field)")
    return out
