"""A small learned classifier for confidential business content (OWASP LLM02).

Logistic regression on all-MiniLM-L6-v2 sentence embeddings: 384 weights and
a bias, shipped as JSON (``guard/data/confidential.json``) and trained by
``benchmarks/train_confidential.py`` on half of llm-foundry's enterprise PII
set. It finds what identifier patterns cannot: a named client contact beside
revenue figures, performance feedback on a named employee.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Sequence

import numpy as np

__all__ = ["ConfidentialClassifier"]


@lru_cache(maxsize=1)
def _params() -> dict:
    return json.loads(files("genstack.guard").joinpath("data/confidential.json").read_text())


class ConfidentialClassifier:
    def __init__(self, embedder=None):
        from ..errors import InvalidParameter

        p = _params()
        self.weights = np.asarray(p["weights"], dtype=np.float32)
        self.bias = float(p["bias"])
        self.threshold = float(p["threshold"])
        if embedder is None:
            from ..embeddings import get_embedder

            embedder = get_embedder(p["embedder"])
        if embedder.model_name != p["embedder"]:  # any arithmetic of the same model
            raise InvalidParameter(f"the confidential-content classifier needs the {p['embedder']} embedder, "
                                   f"not {embedder.name}")
        self.embedder = embedder

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text holds confidential content."""
        x = self.embedder.embed(list(texts)) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-x))

    def is_confidential(self, text: str) -> bool:
        return bool(self.scores([text])[0] >= self.threshold)
