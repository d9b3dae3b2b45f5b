"""Grounded-answer training rows in the pipeline's own prompt, from question-answer items.

A model learns the task it is shown. ``genstack synth qa`` items carry a question, its source and
the sentence that answers it; this module runs each question through the same pipeline
``genstack ask`` runs on the collection (condense, retrieve, screen, focus, fit) and keeps the exact
messages the model would get (:meth:`genstack.rag.Pipeline.prepare`). The target answer is:

* answerable item: its supporting sentence, cited with the number the pipeline gave its source
  (``"Meals are covered up to 35 euros per day [2]."``), only if that sentence is among what the
  model is shown: a row whose answer the prompt does not hold would teach the model to invent;
* unanswerable item: the pipeline's abstention text.

Items the pipeline would not send to the model (retrieval too weak: it abstains by itself) are
skipped, as are answerable items whose source was not retrieved; every skip is counted by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import jsonl_objects, read_user_text
from ..config import Settings, load_settings
from ..errors import InvalidParameter

__all__ = ["RagRows", "rag_rows"]


@dataclass
class RagRows:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    items: int = 0

    def to_dict(self) -> dict[str, Any]:
        kinds = Counter("abstain" if r["meta"]["answer"] == "abstain" else "answer" for r in self.rows)
        return {"items": self.items, "rows": len(self.rows), "answer_rows": kinds["answer"],
                "abstain_rows": kinds["abstain"], "skipped": dict(self.skipped)}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _same_source(a: str, b: str) -> bool:
    return a == b or Path(a).name == Path(b).name


def _items(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for n, row in jsonl_objects(read_user_text(path, "items file"), str(path)):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise InvalidParameter(f"{path}, line {n}: needs a 'question'")
        out.append(row)
    if not out:
        raise InvalidParameter(f"{path} has no items")
    return out


def rag_rows(items: str | Path, collection: str, *, model: str | None = None, settings: Settings | None = None,
             **pipeline: Any) -> RagRows:
    """Training rows (``{"messages": [...], "meta": {...}}``) for ``collection``'s pipeline from the
    items in ``items`` (``genstack synth qa`` output, or any JSONL with ``question``, ``source`` (None
    when unanswerable) and ``supporting_sentence``). ``pipeline`` options go to the
    :class:`~genstack.rag.Asker` (k, mode, focus, template...), which must match how the tuned
    model will be asked."""
    from ..rag.checks import NOT_FOUND
    from ..rag.pipeline import Asker, RagRequest

    settings = settings or load_settings()
    rows = _items(items)
    out = RagRows(items=len(rows))
    asker = Asker(collection, model=model, settings=settings, **pipeline)
    try:
        for it in rows:
            run = asker.prepare(RagRequest(it["question"].strip()))
            if run.verdicts[-1].settled:
                out.skipped["pipeline abstains before the model"] += 1
                continue
            msgs = [{"role": m.role, "content": m.content} for m in run.messages]
            source = it.get("source")
            if not source:
                answer, kind = NOT_FOUND, "abstain"
            else:
                sentence = " ".join(str(it.get("supporting_sentence") or "").split())
                if not sentence:
                    out.skipped["no supporting sentence"] += 1
                    continue
                shown = [s.n for s in run.sources
                         if _same_source(s.hit.source, source) and _norm(sentence) in _norm(run.shown.get(s.n, ""))]
                if not shown:
                    out.skipped["answer not among the shown sources"] += 1
                    continue
                answer, kind = f"{sentence.rstrip('.!? ')} [{shown[0]}].", "answer"
            out.rows.append({"messages": msgs + [{"role": "assistant", "content": answer}],
                             "meta": {"question": it["question"], "source": source, "answer": kind,
                                      "id": it.get("id")}})
    finally:
        asker.close()
    return out


def write_rows(rows: RagRows, path: str | Path) -> Path:
    p = Path(path)
    tmp = p.with_name(p.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows.rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(p)
    return p
