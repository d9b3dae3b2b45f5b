"""The embedder interface: one required method, ``embed``, for a batch of texts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

__all__ = ["Embedder"]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    ``query_prefix`` / ``passage_prefix`` are prepended by :meth:`embed_queries`
    and :meth:`embed_passages` for models trained with them (E5, BGE, …);
    MiniLM needs none.
    """

    #: what a collection records and is reopened with: the model, and ``@bf16`` when its
    #: arithmetic differs from the model's own fp32 (see :func:`genstack.embeddings.split_precision`)
    name: str = "embedder"
    dim: int = 0
    #: declared capability (see genstack.models.capabilities)
    supports_embeddings: bool = True
    #: longest input in tokens; longer texts are truncated by the model
    max_tokens: int = 256
    query_prefix: str = ""
    passage_prefix: str = ""

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of unit vectors."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed([self.passage_prefix + t for t in texts])

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Token offsets in ``text`` with this model's tokenizer (for the splitter)."""
        from ..documents.splitter import WordTokenizer

        return WordTokenizer().offsets(text)

    @property
    def model_name(self) -> str:
        """The model, whatever its arithmetic: ``minilm-l6-v2`` for ``minilm-l6-v2@bf16``."""
        base, at, precision = self.name.rpartition("@")
        return base if at and precision in ("fp32", "bf16") else self.name

    def warm_up(self) -> None:
        """Load the model now rather than on first use."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dim={self.dim}>"


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms
