"""MiniLM-class sentence embedders on ONNX Runtime, fp32 or int8.

The ONNX graph is exported once from the local sentence-transformers folder
(``torch.onnx.export`` of the transformer; mean pooling and normalisation run
in numpy, as sentence-transformers does them) and cached under
``<data_dir>/models/onnx/``, keyed by the sha256 of the source weights. The
int8 variant is ONNX Runtime's dynamic quantization of that graph. Texts are
sorted by length and batched, so padding stays small.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .._cores import embedding_threads
from ..config import available_cores
from ..errors import GenstackError
from .base import normalize
from .sentence_transformers import SentenceTransformerEmbedder

__all__ = ["OnnxEmbedder", "export_onnx"]


def _weights_digest(folder: Path) -> str:
    h = hashlib.sha256()
    with (folder / "model.safetensors").open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:16]


def export_onnx(folder: Path, target: Path, quantize: bool) -> Path:
    """Export (and optionally int8-quantize) the transformer of a sentence-transformers folder."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_name(target.name.replace("-int8", "-fp32"))
    if not fp32.is_file():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        import transformers
        from transformers import AutoModel

        transformers.utils.logging.set_verbosity_error()
        bert = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()

        class Encoder(torch.nn.Module):  # keyword arguments: forward()'s positional order varies by version
            def __init__(self):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state

        import warnings

        ids = torch.ones((2, 16), dtype=torch.long)
        tmp = fp32.with_name(f".{fp32.name}.{os.getpid()}.partial")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Encoder().eval(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, fp32)
    if quantize:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.getLogger().setLevel(logging.ERROR)  # the quantizer warns on the root logger

        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        os.replace(tmp, target)
    return target


class OnnxEmbedder(SentenceTransformerEmbedder):
    """Same model, same tokenizer, same pooling as the sentence-transformers path; ONNX Runtime inference."""

    def __init__(self, path, *, name: str | None = None, quantize: bool = True, cache_dir: str | os.PathLike | None = None,
                 batch_size: int = 32, threads: int | None = None, **_ignored):
        super().__init__(path, name=name, batch_size=batch_size, threads=threads)
        self.quantize = quantize
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._session = None
        self._onnx_lock = threading.Lock()

    @property
    def session(self):
        if self._session is None:
            with self._onnx_lock:
                if self._session is None:
                    try:
                        import onnxruntime as ort
                    except ImportError:
                        raise GenstackError("the ONNX embedder needs onnxruntime: pip install onnxruntime") from None
                    cache = self.cache_dir or (self.path / ".onnx")
                    kind = "int8" if self.quantize else "fp32"
                    target = cache / f"{self.path.name}-{_weights_digest(self.path)}-{kind}.onnx"
                    export_onnx(self.path, target, self.quantize)
                    opts = ort.SessionOptions()
                    # the same rule as torch (genstack._cores): one thread beside a loaded llama.cpp model
                    opts.intra_op_num_threads = embedding_threads(self.threads) or available_cores()
                    opts.inter_op_num_threads = 1
                    opts.log_severity_level = 3
                    self._session = ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"])
        return self._session

    def warm_up(self) -> None:
        self.session  # noqa: B018

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tok = self.tokenizer
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        limit = self.max_tokens
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            encs = tok.encode_batch([texts[i] for i in idx], add_special_tokens=True)
            seqs = [e.ids[: limit - 1] + [e.ids[-1]] if len(e.ids) > limit else e.ids for e in encs]
            width = max(len(s) for s in seqs)
            ids = np.zeros((len(seqs), width), dtype=np.int64)
            mask = np.zeros((len(seqs), width), dtype=np.int64)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = s
                mask[r, : len(s)] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out[idx] = pooled
        return normalize(out)
