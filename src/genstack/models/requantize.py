"""Derived weight files: a GGUF re-encoded into a type with faster CPU kernels.

llama.cpp's CPU backend has fast batched matmul paths (tinyBLAS, repacking)
for Q4_0, Q8_0 and F16 but not for Q4_1, the type the bundled SmolLM2 ships
in, so prompt processing (prefill) runs well below what the cores can do.
Re-encoding Q4_1 as Q8_0 or F16 is near-lossless (every Q4_1 value is
represented almost exactly) and raises prefill at some cost in decode speed;
see benchmarks/RESULTS.md. Lossy targets (Q4_0 and below) are not offered.

The default policy, ``auto``, re-encodes only files whose weights are in a
type without fast CPU kernels (Q4_1, Q5_0, Q5_1) to Q8_0, and loads every other
file as it is. ``original`` never re-encodes; ``q8_0`` and ``f16`` always do.

The derived file is written once under ``<data_dir>/models/derived/``, named
by the source file's sha256, written to a temporary name and renamed into
place, so an interrupted conversion never leaves a half-written model.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ..errors import GenstackError, InvalidParameter

__all__ = ["WEIGHT_TYPES", "QUANT_TYPES", "choose_weights", "derived_weights", "quantize_file"]

WEIGHT_TYPES = ("auto", "original", "q8_0", "f16")

#: GGUF file types whose matmuls have no fast batched CPU path in llama.cpp
SLOW_PREFILL_TYPES = {"Q4_1", "Q5_0", "Q5_1"}


def choose_weights(policy: str, file_type: str) -> str:
    """The weight type to load for a file of ``file_type`` under ``policy``."""
    if policy not in WEIGHT_TYPES:
        raise InvalidParameter(f"weights must be one of {', '.join(WEIGHT_TYPES)}, got {policy!r}")
    if policy == "auto":
        return "q8_0" if file_type in SLOW_PREFILL_TYPES else "original"
    return policy


def derived_weights(source: Path, kind: str, source_sha256: str, data_dir: Path) -> Path:
    """Return the path of ``source`` re-encoded as ``kind`` (creating it once)."""
    if kind not in WEIGHT_TYPES or kind == "auto":
        raise InvalidParameter(f"weights must be one of {', '.join(WEIGHT_TYPES)}, got {kind!r}")
    if kind == "original":
        return source
    target = data_dir / "models" / "derived" / f"{source_sha256[:16]}-{kind}.gguf"
    if target.is_file():
        return target
    return quantize_file(source, target, kind, allow_requantize=True)


#: the llama.cpp file types genstack writes (``quantize_file``)
QUANT_TYPES = ("f16", "q8_0", "q4_k_m")


def quantize_file(source: Path, target: Path, kind: str, *, allow_requantize: bool = False) -> Path:
    """Write ``source`` as ``kind`` to ``target`` with llama.cpp's own quantizer, through a temporary
    name, so an interrupted run never leaves a half-written model."""
    if kind not in QUANT_TYPES:
        raise InvalidParameter(f"quantization must be one of {', '.join(QUANT_TYPES)}, got {kind!r}")
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
             "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[kind]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = allow_requantize
    params.nthread = 0
    try:
        with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor
            rc = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0:
            raise GenstackError(f"could not write {source.name} as {kind} (llama.cpp returned {rc})")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
