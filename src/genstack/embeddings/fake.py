"""A deterministic embedder for tests: hash-seeded bag of words.

Each lower-cased word maps to a fixed pseudo-random unit vector seeded by its
hash; a text is the normalised sum of its words' vectors. So the same text
always gives the same vector, and texts sharing words are closer than texts
that share none, which makes dense-retrieval tests meaningful without weights.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Sequence

import numpy as np

from .base import Embedder, normalize

__all__ = ["FakeEmbedder"]

_WORD = re.compile(r"\w+")


class FakeEmbedder(Embedder):
    def __init__(self, dim: int = 64, name: str = "fake"):
        self.dim = dim
        self.name = name if dim == 64 else f"fake:{dim}"
        self.calls = 0  # texts embedded so far, for tests of re-embedding

    @lru_cache(maxsize=65536)
    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                out[i] += self._word(w)
        return normalize(out)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]
