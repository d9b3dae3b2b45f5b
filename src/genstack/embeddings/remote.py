"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` (vLLM, Ollama, TEI, another
``genstack serve``, a cloud endpoint): ``--embedder openai:MODEL@BASE_URL``.

Texts go in batches of ``batch`` per request; vectors are L2-normalised here whatever the server
does. The dimension is learnt from the first answer. A collection records the embedder's full name
(model and URL), so searching it with another embedder, local or remote, is refused as for any
embedder. Splitting measures chunks in words (the server's tokenizer is not known here); keep
``--chunk-size`` well under the remote model's input limit.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InvalidParameter
from ..openai_client import OpenAIClient, RemoteError, parse_spec
from .base import Embedder, normalize

__all__ = ["OpenAIEmbedder"]


class OpenAIEmbedder(Embedder):
    def __init__(self, spec: str | None = None, *, model: str | None = None, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0, retries: int = 3, batch: int = 64,
                 transport=None, **_options: Any):
        if spec:
            model, base_url = parse_spec(spec)
        if not model or not base_url:
            raise InvalidParameter("a remote embedder needs a model name and a base URL (openai:MODEL@URL)")
        if batch < 1:
            raise InvalidParameter(f"batch must be at least 1, got {batch}")
        self.remote_model, self.batch = model, int(batch)
        self.name = f"openai:{model}@{base_url.rstrip('/')}"
        self.client = OpenAIClient(base_url, api_key_env=api_key_env, timeout=timeout, retries=retries,
                                   transport=transport)
        self._dim: int | None = None

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self.embed(["dimension probe"])
        return self._dim  # type: ignore[return-value]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch):
            part = list(texts[i:i + self.batch])
            resp = self.client.post("/embeddings", {"model": self.remote_model, "input": part,
                                                    "encoding_format": "float"})
            try:
                data = sorted(resp.json()["data"], key=lambda d: d["index"])
                vecs = np.asarray([d["embedding"] for d in data], dtype=np.float32)
            except (ValueError, KeyError, TypeError):
                raise RemoteError(f"{self.client.base_url}/embeddings: the answer is not an embeddings list") from None
            if vecs.ndim != 2 or len(vecs) != len(part):
                raise RemoteError(f"{self.client.base_url}/embeddings: {len(part)} texts sent, {len(vecs)} vectors back")
            if self._dim is None:
                self._dim = int(vecs.shape[1])
            elif vecs.shape[1] != self._dim:
                raise RemoteError(f"{self.client.base_url}/embeddings: vectors changed from {self._dim} to "
                                  f"{vecs.shape[1]} dimensions")
            out.append(normalize(vecs))
        return np.concatenate(out) if out else np.zeros((0, self._dim or 0), dtype=np.float32)
