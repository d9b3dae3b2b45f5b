"""The embedder interface: one required method, ``embed``, for a batch of texts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

__all__ = ["Embedder", "PRECISIONS", "split_precision", "with_precision", "mismatch"]

#: the arithmetic a sentence-transformers embedder can run in; fp32 is the unsuffixed name
PRECISIONS = ("fp32", "bf16")


def split_precision(name: str) -> tuple[str, str]:
    """``minilm-l6-v2@bf16`` -> (``minilm-l6-v2``, ``bf16``); an unsuffixed name is fp32."""
    base, at, precision = name.rpartition("@")
    if at and precision in PRECISIONS:
        return base, precision
    return name, "fp32"


def with_precision(name: str, precision: str) -> str:
    """The name a collection records for model ``name`` in ``precision`` (fp32: the name itself)."""
    return name if precision == "fp32" else f"{name}@{precision}"


def mismatch(collection: str, built: str, given: str) -> str:
    """The one-line refusal for using embedder ``given`` on a collection built with ``built``."""
    (b_model, b_prec), (g_model, g_prec) = split_precision(built), split_precision(given)
    if b_model == g_model:
        return (f"collection {collection!r} was built with {built} ({b_prec} arithmetic), not {given} ({g_prec}); "
                "vectors of two engines are never mixed in one collection: leave --embedder out to use the "
                "collection's own, or use a new collection")
    return f"collection {collection!r} was built with embedder {built}, not {given}; use the same embedder or a new collection"


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
        return split_precision(self.name)[0]

    def warm_up(self) -> None:
        """Load the model now rather than on first use."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dim={self.dim}>"


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms
