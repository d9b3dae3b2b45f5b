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


#: what ``variant`` may be: fp32; int8 (dynamic: weights per channel, activations quantized per
#: batch as they come); int8-static (activations' ranges calibrated once, QDQ); a ``-keepN`` suffix
#: leaves the last N transformer layers in fp32
VARIANTS = ("fp32", "int8", "int8-static")


def _variant(quantize: bool | str) -> str:
    """The variant a ``quantize`` argument names: True is "int8", False "fp32", a string itself."""
    return "int8" if quantize is True else ("fp32" if not quantize else quantize)


def _split_variant(variant: str) -> tuple[str, int]:
    kind, _, keep = variant.partition("-keep")
    if kind not in VARIANTS or (keep and not keep.isdigit()) or (kind == "fp32" and keep):
        raise GenstackError(f"ONNX variant must be fp32, int8 or int8-static, optionally with -keepN, got {variant!r}")
    return kind, int(keep or 0)


def _kept_nodes(model_path: Path, keep: int) -> list[str]:
    """Names of the MatMul nodes in the last ``keep`` encoder layers (left in fp32)."""
    if not keep:
        return []
    import re

    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    layer = re.compile(r"/layer\.(\d+)/")
    layers = {int(m.group(1)) for n in graph.node if (m := layer.search(n.name))}
    if not layers:
        return []
    last = set(sorted(layers)[-keep:])
    return [n.name for n in graph.node if (m := layer.search(n.name)) and int(m.group(1)) in last]


def _calibration_texts() -> list[str]:
    """The texts static int8 calibrates activation ranges on: the bundled sample corpus, split into
    passages (fixed, shipped with genstack, so the same model always comes out)."""
    from importlib.resources import files

    texts = []
    for f in sorted(files("genstack.data").joinpath("sample").iterdir(), key=lambda f: f.name):
        if f.name.endswith(".md"):
            texts += [p.strip() for p in f.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40]
    return texts


def export_onnx(folder: Path, target: Path, quantize: bool | str = False, *, encode=None) -> Path:
    """Export the transformer of a sentence-transformers folder to ONNX, and quantize it to the
    ``quantize`` variant (True is "int8"; see :data:`VARIANTS`). ``encode(texts)`` yields the
    calibration feeds for int8-static."""
    variant = _variant(quantize)
    kind, keep = _split_variant(variant)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_name(target.name.replace(f"-{variant}.onnx", "-fp32.onnx"))
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
    if kind == "fp32":
        return fp32
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer warns on the root logger
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    exclude = _kept_nodes(fp32, keep)
    if kind == "int8":
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude)
    else:
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static

        if encode is None:
            raise GenstackError("int8-static needs calibration feeds (encode=)")
        feeds = list(encode(_calibration_texts()))

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(feeds)

            def get_next(self):
                return next(self.it, None)

        quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                        nodes_to_exclude=exclude, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    os.replace(tmp, target)
    return target


class OnnxEmbedder(SentenceTransformerEmbedder):
    """Same model, same tokenizer, same pooling as the sentence-transformers path; ONNX Runtime inference."""

    def __init__(self, path, *, name: str | None = None, quantize: bool | str = True,
                 cache_dir: str | os.PathLike | None = None, batch_size: int = 32, threads: int | None = None,
                 **_ignored):
        super().__init__(path, name=name, batch_size=batch_size, threads=threads)
        self.variant = _variant(quantize)
        _split_variant(self.variant)
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
                    target = cache / f"{self.path.name}-{_weights_digest(self.path)}-{self.variant}.onnx"
                    target = export_onnx(self.path, target, self.variant,
                                         encode=lambda texts: (feed for _, feed in self._feeds(texts)))
                    opts = ort.SessionOptions()
                    # the same rule as torch (genstack._cores): one thread beside a loaded llama.cpp model
                    opts.intra_op_num_threads = embedding_threads(self.threads) or available_cores()
                    opts.inter_op_num_threads = 1
                    opts.log_severity_level = 3
                    self._session = ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"])
        return self._session

    def warm_up(self) -> None:
        self.session  # noqa: B018

    def _feeds(self, texts: Sequence[str]):
        """The model's inputs for ``texts``, shortest first, one batch at a time: (the batch's
        indices in ``texts``, its feed)."""
        tok = self.tokenizer
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
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
            yield idx, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, feed in self._feeds(texts):
            hidden = self.session.run(None, feed)[0]
            m = feed["attention_mask"][:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out[idx] = pooled
        return normalize(out)
