"""The classic text tasks: sentiment, zero-shot classification, extraction, translation.

Labels are chosen by *scoring*, not by parsing free text: the model's
log-probability of each label as the reply is computed
(:meth:`~genstack.models.base.Model.score`) and normalised over the labels,
so the result is always one of the labels and its score is a probability.
Backends without logits fall back to generating the reply and matching it
to a label (the score is then ``None``).

Sentiment and classification can instead use the embedder (``method="embedding"``):
the text's cosine similarity to each label's *prototype*, softmaxed. A label's prototype
is the mean vector of its labelled examples (``examples``; sentiment ships 12 per class
in ``genstack/data/sentiment_anchors.jsonl``), or, for a label without examples, the
vector of "This text is about {label}.". On genstack's checked sets
(``genstack eval task``) this beats the bundled 135M model's label scores by far:
sentiment 0.93 against 0.45 accuracy, topics 0.975 against 0.45 (0.725 calibrated).
Extraction is grammar-constrained JSON validated against the schema.
"""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import GenstackError, InvalidParameter
from ..generation import Message, SamplingParams
from ..models.base import Model
from ..prompts.structured import check_schema, parse_json
from ..prompts.templates import PromptTemplate, resolve_template

__all__ = ["Label", "sentiment", "classify", "extract", "translate", "SENTIMENT_LABELS", "load_examples", "METHODS",
           "check_method", "prototype_probs"]

SENTIMENT_LABELS = ("positive", "negative", "neutral")
REASON_TOKENS = 96
CONTENT_FREE = "N/A"
METHODS = ("llm", "embedding")
SOFTMAX_TEMPERATURE = 0.05  # cosine gaps between prototypes are small


@dataclass
class Label:
    label: str
    score: float | None  # probability over the labels (None when the backend gives no logits)
    scores: dict[str, float] = field(default_factory=dict)
    prompt: str | None = None
    reasoning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"label": self.label, "score": None if self.score is None else round(self.score, 4),
             "scores": {k: round(v, 4) for k, v in self.scores.items()}}
        if self.reasoning:
            d["reasoning"] = self.reasoning
        return d


def _text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter("the text is empty")
    return text.strip()


def _template(spec, kind: str, data_dir=None) -> PromptTemplate:
    return spec if isinstance(spec, PromptTemplate) else resolve_template(spec, kind, "zero_shot", data_dir=data_dir)


def _softmax(logps: Sequence[float]) -> list[float]:
    m = max(logps)
    ex = [math.exp(x - m) for x in logps]
    s = sum(ex)
    return [e / s for e in ex]


def _reply_label(model: Model, labels: Sequence[str], prompt: str, reasoning: str | None, *,
                 messages: list[Message] | None = None) -> Label:
    """The label the model's greedy reply starts with (or names), when its scores are not available."""
    params = SamplingParams(greedy=True, max_tokens=16)
    out = model.generate(messages=messages, params=params) if messages else model.generate(prompt, params=params)
    reply = out.text.strip().lower()
    hit = next((lab for lab in labels if reply.startswith(lab.lower())), None)
    hit = hit or next((lab for lab in labels if lab.lower() in reply), None)
    if hit is None:
        raise GenstackError(f"the model replied {reply!r}, which is none of: {', '.join(labels)}")
    return Label(hit, None, {}, prompt, reasoning)


def choose_label(model: Model, messages: list[Message], labels: Sequence[str], *, reason: bool = False,
                 baseline: list[Message] | None = None) -> Label:
    """Pick one of ``labels`` as the model's reply to ``messages``.

    With ``baseline`` (the same prompt around a content-free text such as
    "N/A"), the label probabilities are divided by the baseline's and
    renormalised: *contextual calibration* (Zhao et al., 2021), which removes
    a small model's prior bias towards some labels.
    """
    from ..models.capabilities import UnsupportedCapability

    try:
        prompt = model.render_chat(messages)
    except UnsupportedCapability:  # a remote server that cannot show its chat template: its chat reply decides
        return _reply_label(model, labels, model.shown_prompt(messages), None, messages=messages)
    reasoning = None
    if reason:  # chain of thought: let the model reason, then score the label after a marker
        reasoning = model.generate(prompt, params=SamplingParams(greedy=True, max_tokens=REASON_TOKENS,
                                                                 stop=("Sentiment:", "Category:", "Answer:"))).text.strip()
        prompt = prompt + reasoning + "\nAnswer: "
    try:
        scored = model.score_tokens(prompt, list(labels))
    except GenstackError:  # no log-likelihoods (declared, or the server has none): the generated reply decides
        return _reply_label(model, labels, prompt, reasoning)
    # length-normalise so multi-token labels are not penalised for their length
    tok = [n for _, n in scored]
    probs = _softmax([lp / n for lp, n in scored])
    if baseline is not None and not reason:
        prior = _softmax([lp / n for lp, n in zip(model.score(model.render_chat(baseline), list(labels)), tok)])
        adj = [p / max(q, 1e-9) for p, q in zip(probs, prior)]
        probs = [a / sum(adj) for a in adj]
    best = max(range(len(labels)), key=lambda i: probs[i])
    return Label(labels[best], probs[best], dict(zip(labels, probs)), prompt, reasoning)


def check_method(method: str, name: str = "method") -> str:
    """``method`` if it is one of :data:`METHODS`, else a one-line error naming ``name`` (e.g. ``--method``)."""
    if method not in METHODS:
        raise InvalidParameter(f"{name} must be llm or embedding, got {method!r}")
    return method


def prototype_probs(protos, vector) -> list[float]:
    """Probabilities over the labels whose prototypes are the rows of ``protos``, for one text's vector."""
    return _softmax([float(v @ vector) / SOFTMAX_TEMPERATURE for v in protos])


def load_examples(path=None) -> list[tuple[str, str]]:
    """Labelled examples ``(text, label)`` from a JSONL of ``{"text", "label"}``; no path: the sentiment anchors."""
    from importlib import resources

    from .._files import jsonl_objects, read_user_text

    if path is None:
        text, where = resources.files("genstack.data").joinpath("sentiment_anchors.jsonl").read_text(encoding="utf-8"), "the sentiment anchors"
    else:
        text, where = read_user_text(path, "examples file"), str(path)
    out = []
    for n, row in jsonl_objects(text, where):
        if not all(isinstance(row.get(k), str) and row[k].strip() for k in ("text", "label")):
            raise InvalidParameter(f"{where}, line {n}: an example needs non-empty \"text\" and \"label\" strings")
        out.append((row["text"].strip(), row["label"].strip()))
    if not out:
        raise InvalidParameter(f"{where} holds no examples")
    return out


_PROTOTYPES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # embedder -> {key: matrix}; values only


def _prototypes(embedder, labels: Sequence[str], examples: Sequence[tuple[str, str]]):
    import numpy as np

    key = (tuple(labels), tuple(examples))
    try:
        cache = _PROTOTYPES.setdefault(embedder, {})
    except TypeError:  # an embedder that cannot be weakly referenced: no cache
        cache = {}
    if key not in cache:
        by_label = {lab.lower(): [t for t, l in examples if l.lower() == lab.lower()] for lab in labels}
        texts = [t for lab in labels for t in by_label[lab.lower()]]
        vecs = embedder.embed_queries(texts) if texts else None
        descs = embedder.embed_passages([f"This text is about {lab}." for lab in labels])
        rows, i = [], 0
        for j, lab in enumerate(labels):
            n = len(by_label[lab.lower()])
            v = vecs[i:i + n].mean(0) if n else descs[j]
            i += n
            rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
        cache[key] = np.stack(rows)
    return cache[key]


def _by_embedding(text: str, labels: Sequence[str], embedder, examples: Sequence[tuple[str, str]] = ()) -> Label:
    if embedder is None:
        raise InvalidParameter("embedding classification needs an embedder")
    unknown = sorted({l.lower() for _, l in examples} - {lab.lower() for lab in labels})
    if unknown:
        raise InvalidParameter(f"the examples use labels that are not given: {', '.join(unknown[:5])}")
    protos = _prototypes(embedder, labels, examples)
    probs = prototype_probs(protos, embedder.embed_queries([text])[0])
    best = max(range(len(labels)), key=lambda i: probs[i])
    return Label(labels[best], probs[best], dict(zip(labels, probs)))


def sentiment(text: str, model: Model | None = None, *, method: str = "llm", embedder=None, examples=None,
              template=None, labels: Sequence[str] = SENTIMENT_LABELS, data_dir=None, calibrate: bool = False) -> Label:
    """Sentiment of ``text``: POSITIVE, NEGATIVE or NEUTRAL with a probability.

    ``method="llm"`` scores the labels with ``model``; ``method="embedding"`` compares the text
    with prototypes of labelled ``examples`` (default: the 36 shipped anchors) using ``embedder``,
    the more accurate with the bundled models (see the module doc).
    """
    text = _text(text)
    if check_method(method) == "embedding":
        res = _by_embedding(text, list(labels), embedder, load_examples() if examples is None else list(examples))
    else:
        if model is None:
            raise InvalidParameter("LLM sentiment needs a model")
        t = _template(template, "sentiment", data_dir)
        res = choose_label(model, t.render(text=text), list(labels), reason=bool(t.options.get("reason")),
                           baseline=t.render(text=CONTENT_FREE) if calibrate else None)
    res.label = res.label.upper()
    res.scores = {k.upper(): v for k, v in res.scores.items()}
    return res


def _labels(labels: Sequence[str]) -> list[str]:
    out = [lab.strip() for lab in labels if lab and lab.strip()]
    if len(out) < 2:
        raise InvalidParameter("give at least two labels, e.g. --labels sports,politics,cooking")
    if len({lab.lower() for lab in out}) != len(out):
        raise InvalidParameter("the labels must be distinct")
    return out


def classify(text: str, labels: Sequence[str], *, model: Model | None = None, embedder=None,
             method: str = "llm", examples: Sequence[tuple[str, str]] = (), template=None, data_dir=None,
             calibrate: bool = False) -> Label:
    """Zero-shot classification into ``labels``, by the LLM's label scores or by embedding similarity.

    With ``method="embedding"``, labelled ``examples`` (``(text, label)`` pairs) turn it into
    few-shot classification: each label's prototype is the mean of its examples' vectors.
    """
    text, labels = _text(text), _labels(labels)
    if check_method(method) == "embedding":
        return _by_embedding(text, labels, embedder, list(examples))
    if model is None:
        raise InvalidParameter("LLM classification needs a model")
    t = _template(template, "classify", data_dir)
    return choose_label(model, t.render(text=text, labels=", ".join(labels)), labels, reason=bool(t.options.get("reason")),
                        baseline=t.render(text=CONTENT_FREE, labels=", ".join(labels)) if calibrate else None)


def extract(text: str, schema: dict, model: Model, *, template=None, max_tokens: int = 256, data_dir=None) -> tuple[Any, str]:
    """Fields from ``text`` as JSON valid for ``schema``; returns (value, prompt)."""
    text = _text(text)
    check_schema(schema)
    t = _template(template, "extract", data_dir)
    msgs = t.render(text=text, schema=json.dumps(schema))
    stream = model.stream(messages=msgs, params=SamplingParams(greedy=True, max_tokens=max_tokens), json_schema=schema)
    out = stream.collect()
    if out.finish_reason == "length":
        raise GenstackError(f"the JSON was cut off at {max_tokens} tokens; raise --max-tokens")
    return parse_json(out.text, schema), stream.prompt or ""


def translate(text: str, language: str, model: Model, *, template=None, max_tokens: int = 512, data_dir=None) -> tuple[str, str]:
    """``text`` translated into ``language``; returns (translation, prompt).

    The default template is ``zero_shot`` for a chat model and ``completion`` (a few-shot plain
    text) for a base model such as the bundled Gemma 3 270M, which translates far better than
    SmolLM2-135M (chrF 62 against 16 on the checked English-to-French set).
    """
    text = _text(text)
    if not isinstance(language, str) or not language.strip():
        raise InvalidParameter("give the target language, e.g. --to French")
    if template is None and not getattr(model, "is_chat", True):
        template = "completion"
    t = _template(template, "translate", data_dir)
    values = {"text": text, "language": language.strip()}
    if t.options.get("format") == "completion":
        stop = tuple(t.options.get("stop") or ())
        stream = model.stream(prompt=t.render_text(**values),
                              params=SamplingParams(greedy=True, max_tokens=max_tokens, stop=stop))
    else:
        stream = model.stream(messages=t.render(**values), params=SamplingParams(greedy=True, max_tokens=max_tokens))
    out = stream.collect().text.strip()
    marker = t.options.get("answer_marker")
    if marker and marker in out:
        out = out.split(marker, 1)[1].strip()
    return out, stream.prompt or ""
