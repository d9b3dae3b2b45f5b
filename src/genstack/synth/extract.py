"""Synthetic extraction examples: new texts like a few seed texts, each with the fields extracted as
JSON for a schema, kept only if they pass checks.

Each attempt shows the writer up to four seed texts (template ``synth_task.write_like``, kept as
data) and asks for one more with new details; then the same model extracts the fields with
:func:`genstack.rag.tasks.extract` (grammar-constrained where the backend supports it, and always
validated against the schema). An attempt is kept when it passes, in order:

=============  ==============================================================================
check          what it asks
=============  ==============================================================================
``wellformed`` one line of 3 to 60 words, not a refusal, not talk about the task itself
``novel``      not a near-copy of a seed (cosine < ``dedupe`` with every seed, no seed inside it)
``parsed``     the extraction is JSON valid for the schema
``grounded``   at least one field has a value, and every string and number in it occurs in the
               text (case and spacing aside; numbers without thousands separators), each string
               a part of the text (at most half its words) and no two fields the same string:
               the label check of extraction, so no example teaches a made-up value
``complete``   for a schema with a numeric field, every number in the text is in the extraction:
               a text listing three products for a one-product schema is ambiguous
``unique``     not a near-duplicate of a kept text (cosine < ``dedupe``)
=============  ==============================================================================

Each row holds ``text``, ``fields`` (the extracted JSON), ``schema``, the checks, the generating
model and ``messages``: the instruction with the schema, the text, and the JSON as the assistant's
reply, which is what ``genstack tune sft`` reads.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import GenstackError, InvalidParameter
from .qa import SynthReport
from .task import _chat_example, _dropped, _norm, _novel, _unique, _wellformed, _write_line

__all__ = ["synth_extract", "ExtractItem", "EXTRACT_FILTERS", "load_texts", "grounded", "complete"]

EXTRACT_FILTERS = ("wellformed", "novel", "parsed", "grounded", "complete", "unique")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


@dataclass
class ExtractItem:
    text: str
    fields: Any
    schema: dict
    task: str
    messages: list[dict[str, str]]
    filters: dict[str, bool]
    model: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_texts(path: str | Path) -> list[str]:
    """Seed texts from a JSONL of ``{"text": ...}`` rows (other keys are ignored)."""
    from .._files import jsonl_objects, read_user_text

    where = str(path)
    out = []
    for n, row in jsonl_objects(read_user_text(path, "seeds file"), where):
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InvalidParameter(f"{where}, line {n}: a seed needs a non-empty \"text\" string")
        out.append(" ".join(row["text"].split()))
    if not out:
        raise InvalidParameter(f"{where} holds no seed texts")
    return out


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def grounded(value: Any, text: str) -> bool:
    """True if ``value`` has at least one string or number, and each of them occurs in ``text``.

    Strings are compared word by word (case, punctuation and spacing aside); numbers against the
    text's numbers with thousands separators removed (``1,200`` is 1200). Booleans and nulls are
    not checked: they cannot be found in a text. A string is a part of the text, not most of it
    (at most half its words, in a text of more than six), and two fields never share one string:
    a small model that copies the whole text into every field has extracted nothing."""
    norm = f" {_norm(text)} "
    n_words = len(norm.split())
    numbers = _numbers(text)
    seen, strings = 0, []
    for leaf in _leaves(value):
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, (int, float)):
            if _number_text(leaf) not in numbers:
                return False
            seen += 1
        elif isinstance(leaf, str):
            words = _norm(leaf)
            if not words:
                continue
            if f" {words} " not in norm or (n_words > 6 and len(words.split()) > n_words / 2):
                return False
            strings.append(words)
            seen += 1
    return seen > 0 and len(set(strings)) == len(strings)


def _numbers(text: str) -> set[str]:
    return {_number_text(float(m.replace(",", ""))) for m in _NUMBER.findall(text)}


def _has_number_field(schema: Any) -> bool:
    if isinstance(schema, dict):
        types = schema.get("type")
        if types in ("number", "integer") or (isinstance(types, list) and {"number", "integer"} & set(types)):
            return True
        return any(_has_number_field(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_number_field(v) for v in schema)
    return False


def complete(value: Any, text: str, schema: dict) -> bool:
    """For a schema with a numeric field: every number in ``text`` is in the extraction (as a number
    or inside a string). A text with more numbers than the example accounts for (an order of three
    products for a schema of one) is ambiguous, and would teach the model to pick one at random."""
    if not _has_number_field(schema):
        return True
    got = set()
    for leaf in _leaves(value):
        if isinstance(leaf, bool) or leaf is None:
            continue
        got |= {_number_text(leaf)} if isinstance(leaf, (int, float)) else _numbers(str(leaf))
    return _numbers(text) <= got


def synth_extract(schema: dict, *, seeds: Sequence[str], n: int = 30, model=None, embedder=None, seed: int = 0,
                  temperature: float = 0.9, dedupe: float = 0.9, max_attempts: int | None = None, settings=None,
                  template=None, extract_template=None, max_tokens: int = 256,
                  progress: Callable[[int, int], None] | None = None) -> SynthReport:
    """Up to ``n`` checked extraction examples within ``max_attempts`` (default 6n) written texts.

    The report is :class:`~genstack.synth.qa.SynthReport`'s, with its counts under ``"extract"``."""
    import numpy as np

    from ..config import load_settings
    from ..embeddings import get_embedder
    from ..generation import SamplingParams
    from ..models.registry import get_model
    from ..prompts.structured import check_schema
    from ..prompts.templates import PromptTemplate, resolve_template
    from ..rag.tasks import extract

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameter(f"n must be a positive integer, got {n!r}")
    if not 0 < dedupe <= 1:
        raise InvalidParameter(f"dedupe must be in (0, 1], got {dedupe!r}")
    check_schema(schema)
    seed_texts = [" ".join(s.split()) for s in seeds if isinstance(s, str) and s.strip()]
    if not seed_texts:
        raise InvalidParameter("give at least one seed text: --seeds FILE.jsonl of {\"text\"}")
    settings = settings or load_settings()
    own_model = not hasattr(model, "stream")
    m = get_model(model or settings.default_model, settings=settings) if own_model else model
    emb = embedder if hasattr(embedder, "embed_queries") else get_embedder(embedder, settings=settings)
    t = template if isinstance(template, PromptTemplate) else resolve_template(template, "synth_task", "write_like",
                                                                                 data_dir=settings.data_dir)
    seed_vecs = emb.embed_queries(seed_texts)
    seed_norms = [_norm(s) for s in seed_texts]
    rng = random.Random(seed)
    report = SynthReport([], model=getattr(m, "name", str(m)))
    kept_vecs: list[np.ndarray] = []
    budget = max_attempts or 6 * n
    instruction = f"Extract the fields of the text as JSON for this schema: {json.dumps(schema)}"
    t0 = time.perf_counter()
    try:
        attempt = 0
        while len(report.items) < n and attempt < budget:
            examples = rng.sample(seed_texts, min(4, len(seed_texts)))
            msgs = t.render(examples="\n".join(f"- {x}" for x in examples))
            params = SamplingParams(temperature=temperature, max_tokens=80, seed=seed * 100_003 + attempt, stop=("\n",))
            attempt += 1
            report.generated["extract"] += 1
            text = _write_line(m, msgs, params)
            checks = {"wellformed": _wellformed(text, [])}
            vec = value = None
            if checks["wellformed"]:
                vec = emb.embed_queries([text])[0]
                checks["novel"] = _novel(vec, text, seed_vecs, seed_norms, dedupe)
            if checks.get("novel"):
                try:
                    value, _ = extract(text, schema, m, template=extract_template, max_tokens=max_tokens,
                                       data_dir=settings.data_dir)
                    checks["parsed"] = True
                except GenstackError:
                    checks["parsed"] = False
            if checks.get("parsed"):
                checks["grounded"] = grounded(value, text)
                checks["complete"] = complete(value, text, schema)
                checks["unique"] = _unique(vec, kept_vecs, dedupe)
            if _dropped(report, checks, EXTRACT_FILTERS):
                continue
            kept_vecs.append(vec)
            report.kept["extract"] += 1
            report.items.append(ExtractItem(
                text=text, fields=value, schema=schema, task="extract",
                messages=_chat_example(instruction, text, json.dumps(value, ensure_ascii=False)),
                filters={f: True for f in EXTRACT_FILTERS}, model=report.model))
            if progress is not None:
                progress(len(report.items), n)
    finally:
        if own_model:
            m.close()
    report.seconds = time.perf_counter() - t0
    return report
