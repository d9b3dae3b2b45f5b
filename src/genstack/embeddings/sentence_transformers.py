"""Embedders from a local sentence-transformers folder (the bundled MiniLM by default).

Offline by construction: the folder is loaded from disk with the hub disabled.
The tokenizer used for splitting is read straight from ``tokenizer.json`` with
the ``tokenizers`` library, so splitting never imports torch.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .._cores import apply_torch_threads
from ..errors import GenstackError
from .base import PRECISIONS, Embedder, normalize, with_precision

__all__ = ["SentenceTransformerEmbedder"]

# oneDNN (torch's CPU matmuls, bf16 autocast in particular) keeps one compiled primitive per
# input shape, up to 1024 by default. Ingest sends batches of many padded lengths, so the cache
# grows for the whole run: 1206 MB peak RSS over 1500 SciFact abstracts, 895-963 MB with 16
# entries, at the same speed (benchmarks/RESULTS.md). oneDNN reads the variable when it creates
# its first primitive, so it is set before torch runs anything; a value the user set is kept.
ONEDNN_CACHE_CAPACITY = "16"


def bound_onednn_cache() -> None:
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None, batch_size: int | None = None,
                 threads: int | None = None, precision: str = "fp32", **_ignored):
        if precision not in PRECISIONS:
            raise GenstackError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.path = Path(path)
        self.precision = precision
        self.name = name or with_precision(self.path.name, precision)
        # measured on SciFact abstracts, 2 cores: fp32 is fastest in small batches (8), bf16 at 16
        self.batch_size = batch_size or (8 if precision == "fp32" else 16)
        self.threads = threads
        cfg = self._json("config.json")
        self.dim = int(cfg.get("hidden_size", 0))
        self.max_tokens = int(self._json("sentence_bert_config.json").get("max_seq_length", 256))
        pooling = self._json("1_Pooling/config.json")
        if pooling.get("word_embedding_dimension"):
            self.dim = int(pooling["word_embedding_dimension"])
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _json(self, name: str) -> dict:
        p = self.path / name
        try:
            return json.loads(p.read_text()) if p.is_file() else {}
        except ValueError:
            raise GenstackError(f"{p} is not valid JSON") from None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                    bound_onednn_cache()
                    import torch  # noqa: F401 - imported first so apply_torch_threads sees it
                    import transformers
                    from sentence_transformers import SentenceTransformer

                    transformers.utils.logging.set_verbosity_error()
                    transformers.utils.logging.disable_progress_bar()

                    apply_torch_threads(self.threads)
                    self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        return self._model

    def warm_up(self) -> None:
        self.model  # noqa: B018

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        apply_torch_threads(self.threads)  # one thread while a llama.cpp model shares the process
        if self.precision == "bf16":
            import torch

            # autocast: matmuls in bf16 (oneDNN, AMX where present), layer norms, softmax and the
            # pooling stay fp32; the weights stay fp32, so the vectors are within 2e-5 cosine of fp32
            with torch.autocast("cpu", dtype=torch.bfloat16):
                vecs = model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                                    normalize_embeddings=True, show_progress_bar=False)
            return normalize(vecs.float().numpy())
        vecs = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        return normalize(vecs)
