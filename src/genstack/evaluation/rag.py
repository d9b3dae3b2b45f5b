"""End-to-end RAG evaluation: retrieval, answers, citations and abstention.

A dataset is JSONL, one question per line::

    {"id": "museum-2", "question": "How much is an adult ticket?",
     "source": "saltmere-maritime-museum.md", "facts": ["14 euros", "14"]}

``source`` is the file name of the gold document (``null`` for a question the
documents cannot answer) and ``facts`` are accepted spellings of the key fact.
The built-in dataset (44 questions, 12 of them unanswerable) is written for
the sample corpus in ``genstack/data/sample``.

Metrics:

* ``hit@k``: the gold source is among the top-k retrieved chunks (answerable);
* ``fact``: the answer contains the key fact (answerable; an abstention counts as a miss);
* ``citation_precision``: of the sources an answer cites, the share whose text
  contains the key fact (answerable questions, over all citations made);
* ``abstention``: the share of unanswerable questions answered with "not found";
* ``false_abstention``: the share of answerable questions answered with "not found".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from .._files import read_user_text
from ..errors import InvalidParameter

__all__ = ["RagItem", "load_rag_dataset", "evaluate_rag", "SAMPLE_CORPUS", "contains_fact"]


def sample_corpus() -> Path:
    return Path(str(resources.files("genstack") / "data" / "sample"))


SAMPLE_CORPUS = sample_corpus


@dataclass(frozen=True)
class RagItem:
    id: str
    question: str
    source: str | None
    facts: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        return self.source is not None


def load_rag_dataset(path: str | Path | None = None) -> list[RagItem]:
    """Questions from a JSONL file (``question``, ``source``, ``facts``), or the built-in 44 for the sample corpus."""
    if path is None:
        text = (resources.files("genstack") / "data" / "rag_eval.jsonl").read_text(encoding="utf-8")
        where = "built-in rag_eval.jsonl"
    else:
        text = read_user_text(path, "dataset")
        where = str(path)
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            q = d["question"]
            facts = tuple(d.get("facts") or ())
            if not isinstance(q, str) or not q.strip() or not all(isinstance(f, str) for f in facts):
                raise ValueError
            if d.get("source") and not facts:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise InvalidParameter(f"{where} line {n}: expected {{\"question\": str, \"source\": str|null, "
                                   f"\"facts\": [str, ...]}} (facts required when source is set)") from None
        items.append(RagItem(str(d.get("id", n)), q, d.get("source"), facts))
    if not items:
        raise InvalidParameter(f"{where} holds no questions")
    return items


def _norm(s: str) -> str:
    return " ".join(s.lower().replace("\u00a0", " ").split())


def contains_fact(text: str, facts: Sequence[str]) -> bool:
    t = _norm(text)
    return any(_norm(f) in t for f in facts)


def _is_gold(source: str, gold: str) -> bool:
    return source == gold or Path(source).name == gold or source.endswith("/" + gold)


def evaluate_rag(
    asker,
    items: Sequence[RagItem],
    *,
    hit_k: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every question through ``asker`` (a :class:`~genstack.rag.Pipeline`, e.g. an
    :class:`~genstack.rag.Asker`): the pipeline users run, with its own config, and score it."""
    rows = []
    emit = progress or (lambda done, total: None)
    emit(0, len(items))
    hit_k = hit_k or asker.config.hit_k
    for i, it in enumerate(items):
        hits = asker.retriever.search(it.question, k=hit_k, mode=asker.config.mode, filters=asker.filters)
        t0 = time.perf_counter()
        ans = asker.ask(it.question)
        elapsed = time.perf_counter() - t0
        row: dict[str, Any] = {
            "id": it.id, "question": it.question, "answerable": it.answerable, "answer": ans.text,
            "draft": ans.draft, "abstained": ans.abstained, "reason": ans.reason,
            "similarity": round(ans.similarity, 4), "cited": ans.cited, "attributed": ans.attributed,
            "checks": [v.to_dict() for v in ans.checks if not v.passed],
            "seconds": round(elapsed, 3), "ttft_s": round(ans.timings.get("ttft_s", elapsed), 3),
        }
        if it.answerable:
            row["hit"] = any(_is_gold(h.source, it.source) for h in hits)  # type: ignore[arg-type]
            row["fact"] = (not ans.abstained) and contains_fact(ans.text, it.facts)
            cited = [s for s in ans.sources if s.n in ans.cited] if not ans.abstained else []
            row["citations"] = len(cited)
            row["citations_ok"] = sum(contains_fact(s.hit.text, it.facts) for s in cited)
            row["model_citations"] = len([n for n in ans.cited if n not in ans.attributed]) if not ans.abstained else 0
        rows.append(row)
        emit(i + 1, len(items))
    ans_rows = [r for r in rows if r["answerable"]]
    un_rows = [r for r in rows if not r["answerable"]]

    def mean(xs):
        xs = list(xs)
        return round(sum(xs) / len(xs), 4) if xs else None

    n_cit = sum(r["citations"] for r in ans_rows)
    called = [r for r in rows if r["reason"] != "weak-retrieval"]
    summary = {
        "questions": len(rows), "answerable": len(ans_rows), "unanswerable": len(un_rows),
        f"hit@{hit_k}": mean(r["hit"] for r in ans_rows),
        "fact": mean(r["fact"] for r in ans_rows),
        "citation_precision": round(sum(r["citations_ok"] for r in ans_rows) / n_cit, 4) if n_cit else None,
        "citations": n_cit,
        "citations_by_model": sum(r["model_citations"] for r in ans_rows),
        "abstention": mean(r["abstained"] for r in un_rows),
        "false_abstention": mean(r["abstained"] for r in ans_rows),
        "ttft_s_median": _median([r["ttft_s"] for r in called]),
        "seconds_median": _median([r["seconds"] for r in called]),
    }
    return {"summary": summary, "rows": rows}


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    mid = len(xs) // 2
    return round(xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2, 3)
