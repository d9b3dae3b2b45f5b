"""Estimate the memory a model needs: weights, KV cache, activations, and for
training the gradients and optimizer state. Every figure is in bytes; every
assumption is returned alongside the numbers so the CLI can print them.

Formulas (decimal units: 1 GB = 10^9 bytes):

* weights = params × bytes/param (fp32 4, fp16/bf16 2, int8 1, int4 0.5);
* KV cache = 2 (K and V) × layers × context × kv_dim × batch × 2 bytes (fp16
  cache; fp32 when the weights are fp32), kv_dim = hidden × kv_heads / heads;
* inference activations: one layer's working set at a time,
  batch × context × (4·hidden + vocab-free) × 4 bytes, plus the logits of the
  last position, batch × vocab × 4 bytes;
* training activations (no recomputation), from Korthikanti et al. 2022,
  "Reducing Activation Recomputation in Large Transformer Models": per layer
  s·b·h·(34 + 5·a·s/h) bytes for 16-bit activations, twice that for fp32
  (training in fp32 weights keeps fp32 activations);
* training logits: batch × context × vocab × 4 bytes, three times (the fp32
  logits, their log-softmax and its gradient). For a small model with a big
  vocabulary this is a fifth of the total (SmolLM2: 49,152 tokens);
* training runtime: the libraries' own resident memory, a measured constant;
* full training with Adam: gradients in the weight dtype; optimizer state is
  two fp32 moments (8 bytes/param), plus an fp32 master copy (4 bytes/param)
  when the weights are 16-bit. That is the familiar 16 bytes/param either way;
* LoRA: frozen base weights, and adapters of rank r on the q, k, v and o
  projections: 2·r·hidden per projection per layer; adapters train in fp32
  (4 weight + 4 grad + 8 Adam bytes each).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InvalidParameter

__all__ = ["MemoryEstimate", "estimate_memory", "parse_count", "DTYPE_BYTES"]

#: resident memory of the training libraries (torch, transformers, peft) before any weights: their import's
#: peak RSS on Linux x86-64, measured 2026-12-03 (benchmarks/RESULTS.md, "Tuning")
TRAINING_RUNTIME_BYTES = 0.47e9

DTYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str | int | float) -> int:
    """'135M' -> 135_000_000, '1B' -> 10^9, '7.5b', '1e9', 1000."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbgt]?)\s*", str(text).lower())
        if not m:
            raise InvalidParameter(f"cannot read a parameter count from {text!r} (try 135M, 1B, 7.5B)")
        value = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise InvalidParameter(f"parameter count must be positive, got {text!r}")
    return int(round(value))


@dataclass
class Shape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    guessed: bool


def guess_shape(params: int) -> Shape:
    """A decoder shape for a parameter count, when the user gives none.

    Uses params ≈ 12·L·h² (attention 4h² + MLP 8h² per layer) with the
    aspect ratio h ≈ 128·L seen in small Llama-style models, heads of 64 dims,
    full multi-head attention (kv_heads = heads) and a 32k vocabulary.
    """
    layers = max(1, round((params / (12 * 128**2)) ** (1 / 3)))
    hidden = max(64, int(round(math.sqrt(params / (12 * layers)) / 64) * 64))
    heads = max(1, hidden // 64)
    return Shape(layers, hidden, heads, heads, 32000, True)


@dataclass
class MemoryEstimate:
    params: int
    dtype: str
    context: int
    batch: int
    training: str | None
    shape: Shape
    parts: dict[str, float] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def to_dict(self) -> dict:
        return {
            "params": self.params,
            "dtype": self.dtype,
            "context": self.context,
            "batch": self.batch,
            "training": self.training,
            "shape": {k: getattr(self.shape, k) for k in ("layers", "hidden", "heads", "kv_heads", "vocab")},
            "bytes": {**self.parts, "total": self.total},
            "assumptions": self.assumptions,
        }


def estimate_memory(
    params: str | int,
    dtype: str = "fp16",
    *,
    context: int = 2048,
    batch: int = 1,
    training: Literal["full", "lora"] | None = None,
    layers: int | None = None,
    hidden: int | None = None,
    heads: int | None = None,
    kv_heads: int | None = None,
    vocab: int | None = None,
    lora_rank: int = 16,
) -> MemoryEstimate:
    """Estimate bytes for weights, KV cache, activations, gradients and optimizer state.

    ``params`` is a count such as ``"1B"``; the shape (layers, hidden, heads)
    is guessed from it unless given. See the module docstring for the formulas.
    """
    n = parse_count(params)
    if dtype not in DTYPE_BYTES:
        raise InvalidParameter(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    if training not in (None, "full", "lora"):
        raise InvalidParameter(f"training must be full or lora, got {training!r}")
    for name, v in (("context", context), ("batch", batch), ("lora_rank", lora_rank)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidParameter(f"{name} must be a positive integer, got {v!r}")
    for name, v in (("layers", layers), ("hidden", hidden), ("heads", heads), ("kv_heads", kv_heads), ("vocab", vocab)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InvalidParameter(f"{name} must be a positive integer, got {v!r}")

    shape = guess_shape(n)
    given = {k: v for k, v in dict(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, vocab=vocab).items() if v}
    for k, v in given.items():
        setattr(shape, k, v)
    if heads and not kv_heads:
        shape.kv_heads = heads
    if shape.kv_heads > shape.heads or shape.heads % shape.kv_heads:
        raise InvalidParameter(f"kv_heads ({shape.kv_heads}) must divide heads ({shape.heads})")
    shape.guessed = len(given) < 3

    wb = DTYPE_BYTES[dtype]
    est = MemoryEstimate(n, dtype, context, batch, training, shape)
    a = est.assumptions
    a.append(f"1 GB = 10^9 bytes; weights at {wb:g} bytes/param ({dtype})")
    if shape.guessed:
        a.append(
            f"shape guessed from the parameter count: {shape.layers} layers, hidden {shape.hidden}, "
            f"{shape.heads} heads, {shape.kv_heads} KV heads, vocab {shape.vocab} "
            "(pass --layers/--hidden/--heads/--kv-heads/--vocab for a real model)"
        )
    est.parts["weights"] = n * wb

    kv_bytes = 4.0 if dtype == "fp32" else 2.0
    kv_dim = shape.hidden * shape.kv_heads // shape.heads
    est.parts["kv_cache"] = 2 * shape.layers * context * kv_dim * batch * kv_bytes

    if training is None:
        a.append(f"KV cache in {'fp32' if kv_bytes == 4 else 'fp16'} for {context} tokens × batch {batch}")
        est.parts["activations"] = batch * context * 4 * shape.hidden * 4.0 + batch * shape.vocab * 4.0
        a.append("inference activations: one layer's buffers at a time plus last-position logits, fp32")
        est.parts["gradients"] = 0.0
        est.parts["optimizer"] = 0.0
        return est

    s, b, h, heads_ = context, batch, shape.hidden, shape.heads
    act_scale = 2.0 if wb >= 4 else 1.0  # fp32 training keeps fp32 activations
    est.parts["activations"] = act_scale * shape.layers * s * b * h * (34 + 5 * heads_ * s / h)
    a.append(
        "training activations per Korthikanti et al. 2022: L·s·b·h·(34 + 5·a·s/h) bytes in 16-bit"
        + (", doubled for fp32" if act_scale > 1 else "")
        + ", no recomputation; flash attention removes the 5·a·s/h term, checkpointing most of the rest"
    )
    est.parts["logits"] = 3 * b * s * shape.vocab * 4.0
    est.parts["runtime"] = TRAINING_RUNTIME_BYTES
    a.append(f"training runtime: torch, transformers and peft resident, {TRAINING_RUNTIME_BYTES / 1e9:.2f} GB "
             "(measured on Linux, 2026-12-03)")
    a.append(f"training logits: batch × context × vocab ({shape.vocab}) × 4 bytes × 3 (logits, log-softmax, gradient)")
    est.parts["kv_cache"] = 0.0  # training does not keep a KV cache
    if training == "full":
        est.parts["gradients"] = n * wb
        master = 4.0 if wb < 4 else 0.0
        est.parts["optimizer"] = n * (8.0 + master)
        a.append(
            "full training with Adam: gradients in the weight dtype, two fp32 moments (8 B/param)"
            + (", plus an fp32 master copy (4 B/param)" if master else "")
        )
    else:
        lora_params = shape.layers * 4 * 2 * lora_rank * h
        est.parts["gradients"] = lora_params * 4.0
        est.parts["optimizer"] = lora_params * (8.0 + 4.0)
        a.append(
            f"LoRA rank {lora_rank} on q/k/v/o: {lora_params:,} trainable fp32 params "
            "(adapter weights counted with the optimizer state); base weights frozen"
        )
    return est
