"""Synthetic labelled examples for a classic task (sentiment, classification) from a label set and a
few seed examples, each kept only if it passes checks.

For each label in turn the model is shown up to four seed examples of that label and asked for one
new text (template ``synth_task.write``, kept as data). An attempt is kept when it passes, in order:

=============  ==============================================================================
check          what it asks
=============  ==============================================================================
``wellformed`` one line of 3 to 60 words, not a refusal, not talk about the task itself
               (labels, "text", "example", "write", "sentiment")
``novel``      not a near-copy of a seed (cosine < ``dedupe`` with every seed, no seed inside it)
``label``      the embedding classifier built from the seeds gives it the intended label
``unique``     not a near-duplicate of a kept text (cosine < ``dedupe``)
=============  ==============================================================================

Each row holds ``text``, ``label`` (and ``labels`` for classification), the checks it passed, the
generating model and ``messages``: the same example as a chat turn (instruction, text, label), which
is what tuning reads. The rows are also in the format ``genstack eval task --dataset`` reads.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InvalidParameter
from .qa import SynthReport

__all__ = ["synth_task", "TaskItem", "TASK_FILTERS", "TASKS", "load_seeds"]

TASKS = ("sentiment", "classify")
TASK_FILTERS = ("wellformed", "novel", "label", "unique")
_REFUSAL = ("i'm sorry", "i cannot", "i can't", "as an ai", "here is", "here's", "sure,", "let's", "original text")
# talk about the task instead of an example of it ("This text is clearly labelled positive")
_META = re.compile(r"\blabel(?:l?ed|s)?\b|\bsentiment\b|\bexamples?\b|\btexts?\b|\b(?:re)?write\b|\brewritten\b"
                   r"|\bresponse\b|\bcategor", re.I)


@dataclass
class TaskItem:
    text: str
    label: str
    task: str
    labels: list[str]
    messages: list[dict[str, str]]
    filters: dict[str, bool]
    label_score: float
    model: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.task == "sentiment":
            d.pop("labels")
        return d


def load_seeds(path: str | Path | None, task: str) -> list[tuple[str, str]]:
    """Seed examples ``(text, label)`` from a JSONL of ``{"text", "label"}``; for sentiment, no path
    means the shipped 36 anchors."""
    from ..rag.tasks import load_examples

    if path is None and task != "sentiment":
        raise InvalidParameter("classification needs seed examples: --seeds FILE.jsonl of {\"text\", \"label\"}")
    return load_examples(path)


def _instruction(task: str, labels: Sequence[str]) -> str:
    if task == "sentiment":
        return "Classify the sentiment of the text as positive, negative or neutral."
    return f"Classify the text into one of: {', '.join(labels)}."


def _wellformed(text: str, labels: Sequence[str]) -> bool:
    words = text.split()
    low = text.lower()
    quoted = any(f'"{lab.lower()}"' in low or f"'{lab.lower()}'" in low for lab in labels)
    return (3 <= len(words) <= 60 and not low.startswith(_REFUSAL) and not text.rstrip().endswith(":")
            and not _META.search(text) and not quoted)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _write_line(model, msgs, params) -> str:
    """The writer's reply as one clean line (list markers and wrapping quotes taken off)."""
    text = " ".join(model.stream(messages=msgs, params=params).collect().text.strip().lstrip("-* ").split())
    return text.strip('"')


def _novel(vec, text: str, seed_vecs, seed_norms: Sequence[str], dedupe: float) -> bool:
    """Not a near-copy of a seed: cosine below ``dedupe`` with every seed, and no seed inside it."""
    import numpy as np

    norm = _norm(text)
    return bool(float(np.max(seed_vecs @ vec)) < dedupe) and not any(x and x in norm for x in seed_norms)


def _unique(vec, kept_vecs: list, dedupe: float) -> bool:
    import numpy as np

    return not kept_vecs or float(np.max(np.stack(kept_vecs) @ vec)) < dedupe


def _chat_example(instruction: str, text: str, reply: str) -> list[dict[str, str]]:
    """An example as the chat turns tuning reads: the instruction, the text, the expected reply."""
    return [{"role": "system", "content": instruction}, {"role": "user", "content": text},
            {"role": "assistant", "content": reply}]


def _dropped(report, checks: dict[str, bool], filters: Sequence[str]) -> bool:
    """Count the attempt against the first check it failed; True if it failed one."""
    failed = next((f for f in filters if not checks.get(f, False)), None)
    if failed is not None:
        report.dropped[failed] += 1
    return failed is not None


def synth_task(task: str, *, labels: Sequence[str] | None = None, seeds: Sequence[tuple[str, str]] | None = None,
               n: int = 30, model=None, embedder=None, seed: int = 0, temperature: float = 0.9,
               dedupe: float = 0.9, max_attempts: int | None = None, settings=None, template=None,
               progress: Callable[[int, int], None] | None = None) -> SynthReport:
    """Up to ``n`` checked examples, an even share per label, within ``max_attempts`` (default 6n) model calls.

    The report is :class:`~genstack.synth.qa.SynthReport`'s, with its counts per label."""
    import numpy as np

    from ..config import load_settings
    from ..embeddings import get_embedder
    from ..generation import SamplingParams
    from ..models.registry import get_model
    from ..prompts.templates import PromptTemplate, resolve_template
    from ..rag.tasks import SENTIMENT_LABELS, _labels, _prototypes, load_examples, prototype_probs

    if task not in TASKS:
        raise InvalidParameter(f"the task must be one of {', '.join(TASKS)}, got {task!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameter(f"n must be a positive integer, got {n!r}")
    if not 0 < dedupe <= 1:
        raise InvalidParameter(f"dedupe must be in (0, 1], got {dedupe!r}")
    settings = settings or load_settings()
    labs = list(SENTIMENT_LABELS) if task == "sentiment" else _labels(labels or [])
    seed_rows = list(seeds) if seeds is not None else load_examples() if task == "sentiment" else []
    by_label = {lab: [t for t, l in seed_rows if l.lower() == lab.lower()] for lab in labs}
    missing = [lab for lab, ex in by_label.items() if not ex]
    if missing:
        raise InvalidParameter(f"give at least one seed example for every label; none for: {', '.join(missing)}")
    own_model = not hasattr(model, "stream")
    m = get_model(model or settings.default_model, settings=settings) if own_model else model
    emb = embedder if hasattr(embedder, "embed_queries") else get_embedder(embedder, settings=settings)
    t = template if isinstance(template, PromptTemplate) else resolve_template(template, "synth_task", "write",
                                                                                 data_dir=settings.data_dir)
    protos = _prototypes(emb, labs, [(x, lab) for lab in labs for x in by_label[lab]])
    seed_vecs = emb.embed_queries([x for lab in labs for x in by_label[lab]])
    rng = random.Random(seed)
    report = SynthReport([], model=getattr(m, "name", str(m)))
    kept_vecs: list[np.ndarray] = []
    budget = max_attempts or 6 * n
    quota = {lab: n // len(labs) + (1 if i < n % len(labs) else 0) for i, lab in enumerate(labs)}
    seed_norms = [_norm(t) for texts in by_label.values() for t in texts]
    instruction = _instruction(task, labs)
    t0 = time.perf_counter()
    try:
        attempt = 0
        while len(report.items) < n and attempt < budget:
            open_labels = [lab for lab in labs if report.kept[lab] < quota[lab]]
            lab = open_labels[attempt % len(open_labels)]
            examples = rng.sample(by_label[lab], min(4, len(by_label[lab])))
            msgs = t.render(label=lab, task=instruction, examples="\n".join(f"- {x}" for x in examples))
            params = SamplingParams(temperature=temperature, max_tokens=80, seed=seed * 100_003 + attempt, stop=("\n",))
            attempt += 1
            report.generated[lab] += 1
            text = _write_line(m, msgs, params)
            checks = {"wellformed": _wellformed(text, labs)}
            vec = emb.embed_queries([text])[0] if checks["wellformed"] else None
            if vec is not None:
                checks["novel"] = _novel(vec, text, seed_vecs, seed_norms, dedupe)
                probs = prototype_probs(protos, vec)
                checks["label"] = labs[max(range(len(labs)), key=probs.__getitem__)] == lab
                checks["unique"] = _unique(vec, kept_vecs, dedupe)
            if _dropped(report, checks, TASK_FILTERS):
                continue
            kept_vecs.append(vec)
            report.kept[lab] += 1
            report.items.append(TaskItem(
                text=text, label=lab, task=task, labels=labs,
                messages=_chat_example(instruction, text, lab),
                filters={f: True for f in TASK_FILTERS}, label_score=round(float(probs[labs.index(lab)]), 4),
                model=report.model))
            if progress is not None:
                progress(len(report.items), n)
    finally:
        if own_model:
            m.close()
    report.seconds = time.perf_counter() - t0
    return report

